/*
 * The server runs on a libuv loop in a second thread; the test body drives it from the main
 * thread with plain blocking sockets (every read bounded by SO_RCVTIMEO), so cmocka's asserts
 * stay on the main thread. alarm() bounds each test as a last resort.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "lib/alloc.h"
#include "lib/buf.h"
#include "lib/http_parse.h"
#include "lib/http_server.h"
#include "lib/net.h"

#define WAIT_MS 3000
/* Over the most a loopback socket buffers (net.ipv4.tcp_wmem's maximum, 4 MiB by default). */
#define BIG_BODY (9u << 20)

static char big_byte(size_t i)
{
    return (char)('a' + i % 23);
}

/* The body of /gzip?n and /gzip-shared?n: text that depends on n, so that each answer
 * compresses differently. */
static void gzip_body(size_t n, struct buf *out)
{
    buf_reset(out);
    for (size_t i = 0; out->len < n; i++)
        buf_printf(out, "%zu:%zu ", n, i * i % 977);
    out->len = n;
}

struct fx {
    uv_loop_t loop;
    struct http_server srv;
    uv_async_t close_async;
    pthread_t thread;
    int port;
    bool running;
    atomic_bool close_sent;
    atomic_int requests;
    atomic_int parked;
    atomic_int aborted;
    atomic_int closed_cb;
    atomic_int armed_at_answer; /* timers armed when /later answered, its own not counted */
    struct http_shared_response *shared; /* /shared's answer, built once (loop thread) */
};

static struct fx fx;

/* ---- loop thread ----------------------------------------------------------------------------- */

static void on_later_timer_closed(uv_handle_t *h)
{
    free(h);
}

static void count_armed_timer(uv_handle_t *h, void *arg)
{
    if (h->type == UV_TIMER && h != arg && uv_is_active(h))
        atomic_fetch_add(&fx.armed_at_answer, 1);
}

static void on_later(uv_timer_t *t)
{
    struct http_request *req = t->data;
    atomic_store(&fx.armed_at_answer, 0);
    uv_walk(t->loop, count_armed_timer, t);
    req->on_abort = NULL;
    http_respond_text(req, 200, "later");
    uv_close((uv_handle_t *)t, on_later_timer_closed);
}

static void on_abort(struct http_request *req)
{
    if (req->data) { /* a /later timer */
        uv_timer_t *t = req->data;
        uv_close((uv_handle_t *)t, on_later_timer_closed);
    }
    atomic_fetch_add(&fx.aborted, 1);
}

static void handler(struct http_request *req, void *data)
{
    struct fx *f = data;
    atomic_fetch_add(&f->requests, 1);

    if (str_eq_cstr(req->path, "/park")) {
        req->on_abort = on_abort;
        atomic_fetch_add(&f->parked, 1);
        return;
    }
    if (str_eq_cstr(req->path, "/later") || str_eq_cstr(req->path, "/later-long")) {
        uv_timer_t *t = xcalloc(1, sizeof(*t));
        uv_timer_init(&f->loop, t);
        t->data = req;
        req->data = t;
        req->on_abort = on_abort;
        uv_timer_start(t, on_later, str_eq_cstr(req->path, "/later") ? 150 : 400, 0);
        return;
    }
    if (str_eq_cstr(req->path, "/answer-held")) { /* a process about to exec */
        http_server_answer_held(&f->srv, 500, "going away");
        return; /* req is answered and freed with the others */
    }
    if (str_eq_cstr(req->path, "/304")) { /* a body given by mistake must not be sent */
        http_respond(req, 304, NULL, "stray", 5);
        return;
    }
    if (str_eq_cstr(req->path, "/inject")) { /* a handler copying input into a field */
        int rc = http_response_header(req, "X-Echo", "a\r\nX-Injected: %s", "yes");
        http_response_header(req, "X-Rc", "%d", rc);
        http_respond_text(req, 200, "ok");
        return;
    }
    if (str_eq_cstr(req->path, "/inject-type")) {
        http_respond(req, 200, "text/plain\r\nX-Injected: yes", "ok", 2);
        return;
    }
    if (str_eq_cstr(req->path, "/big")) { /* more than a socket takes at once */
        char *body = xmalloc(BIG_BODY);
        for (size_t i = 0; i < BIG_BODY; i++)
            body[i] = big_byte(i);
        http_respond(req, 200, "application/octet-stream", body, BIG_BODY);
        free(body); /* borrowed for the call only */
        return;
    }
    if (str_eq_cstr(req->path, "/shared")) { /* one answer reused for every request */
        if (!f->shared) {
            struct buf body = BUF_INIT;
            buf_append_cstr(&body, "{\"shared\":true}");
            f->shared = http_shared_response_new(200, "application/json", &body);
            http_shared_response_header(f->shared, "X-Index", "%d", 7);
        }
        http_response_header(req, "X-Own", "%d", atomic_load(&f->requests));
        http_respond_shared(req, f->shared);
        return;
    }
    if (str_eq_cstr(req->path, "/shared-bad")) {
        struct buf body = BUF_INIT;
        buf_append_cstr(&body, "never sent");
        struct http_shared_response *r = http_shared_response_new(200, "text/plain", &body);
        http_response_header(req, "X-Own", "1");
        http_shared_response_header(r, "X-Echo", "a\r\nX-Injected: yes"); /* refused */
        http_respond_shared(req, http_shared_response_ref(r));
        http_shared_response_unref(r); /* the reference taken for the call */
        http_shared_response_unref(r);
        return;
    }
    if (str_eq_cstr(req->path, "/gzip") || str_eq_cstr(req->path, "/gzip-shared")) {
        struct buf body = BUF_INIT;
        gzip_body(strtoul(req->query.p, NULL, 10), &body);
        if (str_eq_cstr(req->path, "/gzip")) {
            http_respond_gzip(req, 200, "text/plain", body.data, body.len, HTTP_GZIP_MIN_SIZE);
            buf_free(&body);
            return;
        }
        struct http_shared_response *r = http_shared_response_new(200, "text/plain", &body);
        http_shared_response_gzip(r, HTTP_GZIP_MIN_SIZE);
        http_respond_shared(req, r);
        http_shared_response_unref(r);
        return;
    }
    if (str_eq_cstr(req->path, "/echo")) {
        http_response_header(req, "X-Len", "%zu", req->body_len);
        http_respond(req, 200, "application/octet-stream", req->body, req->body_len);
        return;
    }
    struct buf b = BUF_INIT;
    buf_printf(&b, "%.*s %.*s q=%.*s peer=%s", STR_FMT(req->method), STR_FMT(req->path),
               STR_FMT(req->query), req->peer);
    const struct http_header *h = http_request_header(req, "x-test");
    if (h)
        buf_printf(&b, " x-test=%.*s", STR_FMT(h->value));
    http_response_header(req, "X-Seq", "%d", atomic_load(&f->requests));
    http_respond(req, 200, "text/plain", b.data, b.len);
    buf_free(&b);
}

static void on_server_closed(struct http_server *srv)
{
    atomic_fetch_add(&fx.closed_cb, 1);
}

static void on_close_async(uv_async_t *a)
{
    if (fx.shared)
        http_shared_response_unref(fx.shared);
    fx.shared = NULL;
    http_server_close(&fx.srv, on_server_closed);
    uv_close((uv_handle_t *)a, NULL);
}

static void *loop_thread(void *arg)
{
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    return NULL;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    close(fd);
    return ntohs(sin.sin_port);
}

static void start_server(const struct http_server_config *cfg)
{
    struct err e;

    memset(&fx, 0, sizeof(fx));
    assert_int_equal(uv_loop_init(&fx.loop), 0);
    http_server_init(&fx.srv, &fx.loop, cfg, handler, &fx);
    fx.port = free_port();
    assert_int_equal(http_server_listen(&fx.srv, "127.0.0.1", fx.port, &e), 0);
    assert_int_equal(uv_async_init(&fx.loop, &fx.close_async, on_close_async), 0);
    assert_int_equal(pthread_create(&fx.thread, NULL, loop_thread, NULL), 0);
    fx.running = true;
}

/* Asks the loop thread to close the server (once). */
static void request_close(void)
{
    if (!atomic_exchange(&fx.close_sent, true))
        uv_async_send(&fx.close_async);
}

static void stop_server(void)
{
    if (!fx.running)
        return;
    fx.running = false;
    request_close();
    pthread_join(fx.thread, NULL);
    assert_int_equal(uv_loop_close(&fx.loop), 0);
}

static int setup(void **state)
{
    alarm(30);
    return 0;
}

static void client_close_all(void);

static int teardown(void **state)
{
    client_close_all(); /* after a failed assert */
    stop_server();
    alarm(0);
    return 0;
}

/* ---- client side ----------------------------------------------------------------------------- */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Waits (bounded) until *v reaches want. */
static void wait_for(atomic_int *v, int want)
{
    uint64_t end = now_ms() + WAIT_MS;
    while (atomic_load(v) < want && now_ms() < end)
        usleep(2000);
    assert_int_equal(atomic_load(v), want);
}

struct client {
    int fd;
    struct buf in;
};

/* Clients still open, so a failed test does not leak them. */
static struct client *open_clients[8];

struct resp {
    int status;
    int64_t content_length;
    bool keep_alive;
    char headers[1024]; /* the raw head */
    char body[4096];
    size_t body_len;
};

/* Connects c; with rcvbuf > 0, its receive buffer (and so the window it offers) is that. */
static void client_open_rcvbuf(struct client *c, int rcvbuf)
{
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons((uint16_t)fx.port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {.tv_sec = WAIT_MS / 1000};

    c->in = BUF_INIT;
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(c->fd >= 0);
    assert_int_equal(setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    if (rcvbuf > 0) /* before connecting: a window once offered is never taken back */
        assert_int_equal(setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
    for (size_t i = 0; i < ARRAY_LEN(open_clients); i++) {
        if (!open_clients[i]) {
            open_clients[i] = c;
            break;
        }
    }
    assert_int_equal(connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
}

static void client_open(struct client *c)
{
    client_open_rcvbuf(c, 0);
}

static void client_close(struct client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    buf_free(&c->in);
    for (size_t i = 0; i < ARRAY_LEN(open_clients); i++) {
        if (open_clients[i] == c)
            open_clients[i] = NULL;
    }
}

static void client_close_all(void)
{
    for (size_t i = 0; i < ARRAY_LEN(open_clients); i++) {
        if (open_clients[i])
            client_close(open_clients[i]);
    }
}

static void client_send(struct client *c, const char *s)
{
    size_t n = strlen(s), off = 0;
    while (off < n) {
        ssize_t w = send(c->fd, s + off, n - off, MSG_NOSIGNAL);
        assert_true(w > 0);
        off += (size_t)w;
    }
}

/* Reads more bytes; returns what recv returned (0 at EOF, <0 on timeout or reset). */
static ssize_t client_fill(struct client *c)
{
    buf_reserve(&c->in, 4096);
    ssize_t n = recv(c->fd, c->in.data + c->in.len, 4096, 0);
    if (n > 0) {
        c->in.len += (size_t)n;
        c->in.data[c->in.len] = '\0';
    }
    return n;
}

/* Reads one whole response (the server always frames with Content-Length). */
static void client_read(struct client *c, struct resp *r, bool head_request)
{
    struct http_response_head h;
    int rc;

    memset(r, 0, sizeof(*r));
    while ((rc = http_parse_response(c->in.data, c->in.len, NULL, &h)) == HTTP_PARSE_INCOMPLETE) {
        if (client_fill(c) <= 0)
            fail_msg("no complete response head; got %zu bytes: %.*s", c->in.len, (int)c->in.len,
                     c->in.data ? c->in.data : "");
    }
    assert_true(rc > 0);
    r->status = h.status;
    r->content_length = h.framing.content_length;
    r->keep_alive = h.framing.keep_alive;
    assert_true((size_t)rc < sizeof(r->headers));
    memcpy(r->headers, c->in.data, (size_t)rc);
    buf_consume(&c->in, (size_t)rc);
    size_t want = 0;
    if (http_response_has_body(&h, head_request)) {
        assert_true(r->content_length >= 0);
        want = (size_t)r->content_length;
    }
    assert_true(want < sizeof(r->body));
    while (c->in.len < want)
        assert_true(client_fill(c) > 0);
    memcpy(r->body, c->in.data, want);
    r->body_len = want;
    buf_consume(&c->in, want);
}

/* Expects the server to close: EOF (or reset) with nothing more to read. */
static void client_expect_close(struct client *c)
{
    ssize_t n = client_fill(c);
    if (n > 0)
        fail_msg("unexpected bytes: %.*s", (int)c->in.len, c->in.data);
    assert_true(n == 0 || errno == ECONNRESET);
    assert_int_equal(c->in.len, 0);
}

/* Expects no bytes and no close for ms milliseconds. */
static void client_expect_quiet(struct client *c, int ms)
{
    struct timeval tv = {.tv_sec = 0, .tv_usec = ms * 1000};
    struct timeval back = {.tv_sec = WAIT_MS / 1000};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ssize_t n = client_fill(c);
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &back, sizeof(back));
    assert_int_equal(n, -1);
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
}

static bool has_header(const struct resp *r, const char *line)
{
    return strstr(r->headers, line) != NULL;
}

/* ---- tests ----------------------------------------------------------------------------------- */

static void test_get(void **state)
{
    struct client c;
    struct resp r;

    start_server(NULL);
    client_open(&c);
    client_send(&c, "GET /hello?x=1&y HTTP/1.1\r\nHost: a\r\nX-Test:  v1 \r\n\r\n");
    client_read(&c, &r, false);
    assert_int_equal(r.status, 200);
    assert_true(r.keep_alive);
    assert_true(has_header(&r, "HTTP/1.1 200 OK\r\n"));
    assert_true(has_header(&r, "Content-Type: text/plain\r\n"));
    assert_true(has_header(&r, "\r\nDate: "));
    assert_true(has_header(&r, "X-Seq: 1\r\n"));
    assert_false(has_header(&r, "Connection: close"));
    char want[128];
    snprintf(want, sizeof(want), "GET /hello q=x=1&y peer=127.0.0.1:");
    assert_int_equal(strncmp(r.body, want, strlen(want)), 0);
    assert_non_null(strstr(r.body, " x-test=v1"));
    assert_int_equal(r.content_length, (int64_t)r.body_len);
    client_close(&c);
}

/* A response field the handler built with a line break is refused, never sent: the answer
 * becomes a 500 and the connection stays usable. */
static void test_refuses_line_breaks_in_response(void **state)
{
    static const char *const paths[] = {"/inject", "/inject-type"};
    struct client c;
    struct resp r;

    start_server(NULL);
    client_open(&c);
    for (size_t i = 0; i < ARRAY_LEN(paths); i++) {
        char req[128];
        snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: a\r\n\r\n", paths[i]);
        client_send(&c, req);
        client_read(&c, &r, false);
        assert_int_equal(r.status, 500);
        assert_false(has_header(&r, "X-Injected"));
        assert_false(has_header(&r, "X-Echo"));
        assert_string_equal(r.body, "invalid response header\n");
    }
    client_send(&c, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n");
    client_read(&c, &r, false);
    assert_int_equal(r.status, 200);
    client_close(&c);
}

static void test_keep_alive_sequential(void **state)
{
    struct client c;
    struct resp r1, r2;

    start_server(NULL);
    client_open(&c);
    client_send(&c, "GET /one HTTP/1.1\r\nHost: a\r\n\r\n");
    client_read(&c, &r1, false);
    client_send(&c, "GET /two HTTP/1.1\r\nHost: a\r\n\r\n");
    client_read(&c, &r2, false);
    assert_int_equal(r1.status, 200);
    assert_int_equal(r2.status, 200);
    assert_non_null(strstr(r1.body, "GET /one"));
    assert_non_null(strstr(r2.body, "GET /two"));
    /* Same peer address: both requests came over one connection. */
    assert_string_equal(strstr(r1.body, "peer="), strstr(r2.body, "peer="));
    assert_int_equal(atomic_load(&fx.requests), 2);
    client_close(&c);
}

static void test_pipelining(void **state)
{
    struct client c;
    struct resp r[3];

    start_server(NULL);
    client_open(&c);
    client_send(&c, "GET /p1 HTTP/1.1\r\nHost: a\r\n\r\n"
                    "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody"
                    "GET /p3 HTTP/1.1\r\nHost: a\r\n\r\n");
    for (int i = 0; i < 3; i++)
        client_read(&c, &r[i], false);
    assert_non_null(strstr(r[0].body, "GET /p1"));
    assert_int_equal(r[1].body_len, 4);
    assert_memory_equal(r[1].body, "body", 4);
    assert_non_null(strstr(r[2].body, "GET /p3"));
    client_close(&c);
}

static void test_pipelining_after_later_answer(void **state)
{
    struct client c;
    struct resp r1, r2;

    start_server(NULL);
    client_open(&c);
    client_send(&c, "GET /later HTTP/1.1\r\nHost: a\r\n\r\nGET /after HTTP/1.1\r\nHost: a\r\n\r\n");
    client_read(&c, &r1, false);
    client_read(&c, &r2, false);
    assert_int_equal(r1.body_len, 5);
    assert_memory_equal(r1.body, "later", 5);
    assert_non_null(strstr(r2.body, "GET /after"));
    client_close(&c);
}

/*
 * Pipelined bytes that arrive while a request is parked stop the reading past max_head_bytes;
 * answering must start it again, or the connection hangs on its next request.
 */
static void test_pipelining_backpressure_resumes(void **state)
{
    struct http_server_config cfg = {.max_head_bytes = 1024};
    struct client c;
    struct resp r;
    struct buf batch = BUF_INIT;
    char pad[150];

    memset(pad, 'p', sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    start_server(&cfg);
    client_open(&c);
    client_send(&c, "GET /later HTTP/1.1\r\nHost: a\r\n\r\n");
    usleep(50 * 1000); /* parked now */
    for (int i = 0; i < 12; i++)
        buf_printf(&batch, "GET /b%d HTTP/1.1\r\nHost: a\r\nX-Pad: %s\r\n\r\n", i, pad);
    assert_true(batch.len > 2 * cfg.max_head_bytes);
    client_send(&c, batch.data);
    buf_free(&batch);
    client_read(&c, &r, false);
    assert_memory_equal(r.body, "later", 5);
    for (int i = 0; i < 12; i++) {
        char want[32];
        client_read(&c, &r, false);
        snprintf(want, sizeof(want), "GET /b%d ", i);
        assert_non_null(strstr(r.body, want));
    }
    client_send(&c, "GET /next HTTP/1.1\r\nHost: a\r\n\r\n");
    client_read(&c, &r, false);
    assert_non_null(strstr(r.body, "GET /next"));
    client_close(&c);
}

/* Reads a response whose body may be large into body (the client's own buffer). */
static void client_read_big(struct client *c, int *status, bool *keep_alive, struct buf *body)
{
    struct http_response_head h;
    int rc;

    while ((rc = http_parse_response(c->in.data, c->in.len, NULL, &h)) == HTTP_PARSE_INCOMPLETE)
        assert_true(client_fill(c) > 0);
    assert_true(rc > 0);
    *status = h.status;
    *keep_alive = h.framing.keep_alive;
    buf_consume(&c->in, (size_t)rc);
    assert_true(h.framing.content_length >= 0);
    size_t want = (size_t)h.framing.content_length;
    while (c->in.len < want)
        assert_true(client_fill(c) > 0);
    buf_append(body, c->in.data, want);
    buf_consume(&c->in, want);
}

/*
 * An answer larger than the socket takes at once: what is not sent at once is queued, the
 * whole body arrives intact, and what follows it (a pipelined answer, or the close asked for
 * by "Connection: close") comes only after its last byte.
 */
static void test_answer_larger_than_the_socket_takes(void **state)
{
    struct buf body = BUF_INIT;
    struct client c;
    struct resp r;
    int status;
    bool keep_alive;

    start_server(NULL);
    for (int close_it = 0; close_it < 2; close_it++) {
        /* a small window: the server's socket fills long before the body is out */
        client_open_rcvbuf(&c, 4096);
        if (close_it)
            client_send(&c, "GET /big HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
        else
            client_send(&c, "GET /big HTTP/1.1\r\nHost: a\r\n\r\n"
                            "GET /after HTTP/1.1\r\nHost: a\r\n\r\n");
        usleep(100 * 1000); /* the answer meets a full socket */
        buf_reset(&body);
        client_read_big(&c, &status, &keep_alive, &body);
        assert_int_equal(status, 200);
        assert_int_equal(body.len, BIG_BODY);
        for (size_t i = 0; i < BIG_BODY; i++)
            if (body.data[i] != big_byte(i))
                fail_msg("byte %zu of the body differs", i);
        if (close_it) {
            assert_false(keep_alive);
            client_expect_close(&c);
        } else {
            client_read(&c, &r, false);
            assert_non_null(strstr(r.body, "GET /after"));
        }
        client_close(&c);
    }
    buf_free(&body);
}

static void test_content_length_body(void **state)
{
    struct client c;
    struct resp r;

    start_server(NULL);
    client_open(&c);
    /* Head and body in separate writes, the body itself split. */
    client_send(&c, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n");
    usleep(20 * 1000);
    client_send(&c, "hello");
    usleep(20 * 1000);
    client_send(&c, " world");
    client_read(&c, &r, false);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 11);
    assert_memory_equal(r.body, "hello world", 11);
    assert_true(has_header(&r, "X-Len: 11\r\n"));
    /* Binary body with a NUL. */
    client_send(&c, "PUT /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n");
    assert_int_equal(send(c.fd, "a\0b", 3, MSG_NOSIGNAL), 3);
    client_read(&c, &r, false);
    assert_int_equal(r.body_len, 3);
    assert_memory_equal(r.body, "a\0b", 3);
    client_close(&c);
}

static void test_chunked_body(void **state)
{
    struct client c;
    struct resp r;

    start_server(NULL);
    client_open(&c);
    client_send(&c, "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "5\r\nhello\r\n");
    usleep(20 * 1000);
    client_send(&c, "6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n"
                    "GET /after HTTP/1.1\r\nHost: a\r\n\r\n");
    client_read(&c, &r, false);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 11);
    assert_memory_equal(r.body, "hello world", 11);
    client_read(&c, &r, false);
    assert_non_null(strstr(r.body, "GET /after"));
    client_close(&c);
}

static void test_expect_continue(void **state)
{
    struct client c;
    struct resp r;

    start_server(NULL);
    client_open(&c);
    client_send(&c, "POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
                    "Content-Length: 5\r\n\r\n");
    client_read(&c, &r, false);
    assert_int_equal(r.status, 100);
    assert_int_equal(c.in.len, 0); /* nothing else before the body was sent */
    client_send(&c, "12345");
    client_read(&c, &r, false);
    assert_int_equal(r.status, 200);
    assert_memory_equal(r.body, "12345", 5);
    client_close(&c);
}

static void expect_error(const char *note, const char *request, int status)
{
    struct client c;
    struct resp r;

    client_open(&c);
    client_send(&c, request);
    client_read(&c, &r, false);
    if (r.status != status)
        print_error("%s: got %d\n", note, r.status);
    assert_int_equal(r.status, status);
    assert_false(r.keep_alive);
    assert_true(has_header(&r, "Connection: close\r\n"));
    assert_true(has_header(&r, "Content-Type: text/plain"));
    client_expect_close(&c);
    client_close(&c);
}

static void test_bad_requests(void **state)
{
    start_server(NULL);
    expect_error("request line", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    expect_error("version", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 400);
    expect_error("CL+TE",
                 "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                 400);
    expect_error("bad chunk",
                 "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400);
    assert_int_equal(atomic_load(&fx.requests), 0);
}

/* Expects request answered 200 with the echo handler's "METHOD PATH q=QUERY" first. */
static void expect_echo(const char *request, const char *want)
{
    struct client c;
    struct resp r;

    client_open(&c);
    client_send(&c, request);
    client_read(&c, &r, false);
    assert_int_equal(r.status, 200);
    if (strncmp(r.body, want, strlen(want)) != 0)
        fail_msg("%s: got %.*s", want, (int)r.body_len, r.body);
    client_close(&c);
}

/* Go's net/http: HTTP/1.1 needs Host, HTTP/1.0 does not; an absolute-form target is routed by
 * its path (its authority stands for Host, which must be there all the same). */
static void test_host_and_request_target(void **state)
{
    static const char missing[] = "400 Bad Request: missing required Host header";
    struct client c;
    struct resp r;

    start_server(NULL);
    client_open(&c);
    client_send(&c, "GET /x HTTP/1.1\r\nX: 1\r\n\r\n");
    client_read(&c, &r, false);
    assert_int_equal(r.status, 400);
    assert_int_equal(r.body_len, strlen(missing));
    assert_memory_equal(r.body, missing, r.body_len);
    client_expect_close(&c);
    client_close(&c);
    expect_error("absolute-form without Host", "GET http://a/x HTTP/1.1\r\n\r\n", 400);
    expect_error("no scheme", "GET a/x HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    expect_error("opaque", "GET mailto:x HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    expect_error("Host with a space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400);
    expect_error("Host with a slash", "GET / HTTP/1.0\r\nHost: a/b\r\n\r\n", 400);
    expect_error("Host with userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400);
    assert_int_equal(atomic_load(&fx.requests), 0);
    expect_echo("GET /x?y HTTP/1.0\r\n\r\n", "GET /x q=y ");
    expect_echo("GET http://u@other:80/v1/kv/x?recurse HTTP/1.1\r\nHost: a\r\n\r\n",
                "GET /v1/kv/x q=recurse ");
    expect_echo("GET HTTP://a?k=v HTTP/1.1\r\nHost: a\r\n\r\n", "GET / q=k=v ");
    expect_echo("GET http:/p HTTP/1.1\r\nHost: a\r\n\r\n", "GET /p q= ");
    expect_echo("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", "OPTIONS * q= ");
    expect_echo("CONNECT a:443 HTTP/1.1\r\n\r\n", "CONNECT a:443 q= ");
    expect_echo("GET / HTTP/1.1\r\nHost: [fe80::1%25eth0]:80\r\n\r\n", "GET / q= ");
    expect_echo("GET / HTTP/1.1\r\nHost: \r\n\r\n", "GET / q= "); /* empty: valid in Go */
    stop_server();

    /* HAProxy's way, for the lb's stats page */
    struct http_server_config cfg = {.host_optional = true};
    start_server(&cfg);
    expect_echo("GET /x HTTP/1.1\r\n\r\n", "GET /x q= ");
}

static void test_limits(void **state)
{
    struct http_server_config cfg = {
        .max_head_bytes = 512, .max_body_bytes = 100, .max_headers = 5};
    char req[2048];
    char big[1000];

    memset(big, 'h', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    start_server(&cfg);
    snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: a\r\nX-Big: %s\r\n\r\n", big);
    expect_error("head size", req, 431);
    /* A head over the limit that has not even ended yet. */
    snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: a\r\nX-Big: %s", big);
    expect_error("unfinished head", req, 431);
    expect_error("header count",
                 "GET / HTTP/1.1\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\nF: 1\r\n\r\n", 431);
    expect_error("content-length", "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n",
                 413);
    char chunk[300];
    snprintf(chunk, sizeof(chunk),
             "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n%.101s\r\n",
             big);
    expect_error("chunked", chunk, 413);

    /* At the limit is fine. */
    struct client c;
    struct resp r;
    client_open(&c);
    snprintf(req, sizeof(req),
             "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n%.100s", big);
    client_send(&c, req);
    client_read(&c, &r, false);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 100);
    client_close(&c);
}

/*
 * Issue 12: the head parser re-ran from byte 0 on every read, so a 63 KB head trickled one byte
 * per write cost the loop O(n^2) (~2 GB looked at, seconds of CPU per slow client). However the
 * writes are coalesced into reads, the bytes the server examines stay within a few times n.
 */
static void test_head_one_byte_per_write_costs_linear(void **state)
{
    struct http_server_config cfg = {.head_timeout_ms = 20000};
    struct buf head = BUF_INIT;
    struct client c;
    struct resp r;
    int one = 1;

    buf_append_cstr(&head, "GET /trickle HTTP/1.1\r\nHost: a\r\n");
    for (int i = 0; i < 63; i++) {
        buf_printf(&head, "X-Pad-%02d: ", i);
        for (int k = 0; k < 1024; k++)
            buf_append(&head, "p", 1);
        buf_append(&head, "\r\n", 2);
    }
    buf_append(&head, "\r\n", 2);
    assert_true(head.len > 63 * 1024 && head.len < 64 * 1024);
    start_server(&cfg);
    client_open(&c);
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    for (size_t i = 0; i < head.len; i++)
        assert_int_equal(send(c.fd, head.data + i, 1, MSG_NOSIGNAL), 1);
    client_read(&c, &r, false);
    assert_int_equal(r.status, 200);
    client_close(&c);
    stop_server(); /* joins the loop thread: its counter is final */
    uint64_t examined = fx.srv.head_bytes_examined;
    if (examined > 3 * (uint64_t)head.len)
        fail_msg("examined %llu bytes for a %zu-byte head", (unsigned long long)examined, head.len);
    buf_free(&head);
}

static void test_head_timeout(void **state)
{
    struct http_server_config cfg = {.head_timeout_ms = 200};
    struct client c;
    struct resp r;

    start_server(&cfg);
    client_open(&c);
    uint64_t t0 = now_ms();
    client_send(&c, "GET / HTTP/1.1\r\nHo");
    client_read(&c, &r, false);
    uint64_t dt = now_ms() - t0;
    assert_int_equal(r.status, 408);
    assert_true(dt >= 150);
    assert_true(dt < 2000);
    client_expect_close(&c);
    client_close(&c);
}

static void test_idle_timeout(void **state)
{
    struct http_server_config cfg = {.idle_timeout_ms = 200};
    struct client c;
    struct resp r;

    start_server(&cfg);
    client_open(&c);
    client_send(&c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    client_read(&c, &r, false);
    assert_int_equal(r.status, 200);
    uint64_t t0 = now_ms();
    client_expect_close(&c); /* silently, no 408 */
    uint64_t dt = now_ms() - t0;
    assert_true(dt >= 150);
    assert_true(dt < 2000);
    client_close(&c);
}

/* A new connection has head_timeout_ms for its head, not the keep-alive idle timeout: idle
 * sockets opened by the thousand cannot sit on the server for minutes (issue 12). */
static void test_new_connection_gets_the_head_timeout(void **state)
{
    struct http_server_config cfg = {.head_timeout_ms = 200, .idle_timeout_ms = 60000};
    struct client c;

    start_server(&cfg);
    client_open(&c);
    client_expect_close(&c); /* silently, nothing was sent */
    client_close(&c);
}

/*
 * A request parked past the head timeout and the idle timeout (a blocking query's usual wait)
 * is answered, not failed with 408, and its connection's timer is still armed at the answer, so
 * the answer moves a deadline instead of inserting a timer (once per woken watcher otherwise);
 * the idle timeout then still closes the connection.
 */
static void test_parked_request_keeps_its_timer_armed(void **state)
{
    struct http_server_config cfg = {.head_timeout_ms = 100, .idle_timeout_ms = 200};
    struct client c;
    struct resp r;

    start_server(&cfg);
    client_open(&c);
    client_send(&c, "GET /later-long HTTP/1.1\r\nHost: a\r\n\r\n");
    client_read(&c, &r, false);
    assert_int_equal(r.status, 200);
    assert_true(r.keep_alive);
    assert_int_equal(r.body_len, 5);
    assert_memory_equal(r.body, "later", 5);
    assert_int_equal(atomic_load(&fx.armed_at_answer), 1); /* the connection's */
    client_expect_close(&c);                               /* the idle timeout, silently */
    client_close(&c);
}

static void get_ok(struct client *c)
{
    struct resp r;

    client_send(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    client_read(c, &r, false);
    assert_int_equal(r.status, 200);
}

/* One client address holds at most max_conns_per_client connections: the next is answered
 * 429 and closed, as Consul's limits.http_max_conns_per_client does. */
static void test_connections_per_client_limited(void **state)
{
    struct http_server_config cfg = {.max_conns_per_client = 2};
    struct client a, b, c;
    struct resp r;

    start_server(&cfg);
    client_open(&a);
    client_open(&b);
    get_ok(&a);
    get_ok(&b);
    client_open(&c);
    client_read(&c, &r, false); /* said at once: a request sent meanwhile could meet a reset */
    assert_int_equal(r.status, 429);
    assert_string_equal(r.body, "too many connections from this client\n");
    client_expect_close(&c);
    client_close(&c);
    /* A slot given back is free again (the close reaches the server a little later). */
    client_close(&a);
    for (int i = 0; i < 100; i++) {
        client_open(&c);
        client_send(&c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        client_read(&c, &r, false);
        if (r.status == 200)
            break;
        client_close(&c);
        usleep(10000);
    }
    assert_int_equal(r.status, 200);
    client_close(&c);
    client_close(&b);
}

/* At max_conns a newcomer is served and the connection idle the longest gives way, as nginx
 * reuses idle keep-alive connections; before, the newcomer was closed. */
static void test_newcomer_takes_the_longest_idle_place(void **state)
{
    struct http_server_config cfg = {.max_conns = 3};
    struct client a, b, c, d;

    start_server(&cfg);
    client_open(&a);
    get_ok(&a); /* idle from here on: the longest */
    client_open(&b);
    get_ok(&b);
    client_open(&c);
    get_ok(&c);
    client_open(&d);
    get_ok(&d);
    client_expect_close(&a);
    get_ok(&b);
    get_ok(&c);
    client_close(&a);
    client_close(&b);
    client_close(&c);
    client_close(&d);
}

static void test_abort_on_disconnect(void **state)
{
    struct client c;

    start_server(NULL);
    client_open(&c);
    client_send(&c, "GET /park HTTP/1.1\r\nHost: a\r\n\r\n");
    wait_for(&fx.parked, 1);
    assert_int_equal(atomic_load(&fx.aborted), 0);
    client_close(&c);
    wait_for(&fx.aborted, 1);

    /* A parked /later whose client leaves: abort, and its timer never answers. */
    client_open(&c);
    client_send(&c, "GET /later HTTP/1.1\r\nHost: a\r\n\r\n");
    wait_for(&fx.requests, 2);
    client_close(&c);
    wait_for(&fx.aborted, 2);
}

static void test_head_method(void **state)
{
    struct client c;
    struct resp r;

    start_server(NULL);
    client_open(&c);
    client_send(&c, "HEAD /x HTTP/1.1\r\nHost: a\r\n\r\n");
    client_read(&c, &r, true);
    assert_int_equal(r.status, 200);
    assert_true(r.content_length > 0); /* the length of the GET body */
    assert_int_equal(r.body_len, 0);
    /* No body bytes follow: the next response starts right after the head. */
    client_send(&c, "GET /y HTTP/1.1\r\nHost: a\r\n\r\n");
    client_read(&c, &r, false);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "GET /y"));
    client_close(&c);
}

static void test_not_modified(void **state)
{
    struct client c;
    struct resp r;

    start_server(NULL);
    client_open(&c);
    client_send(&c, "GET /304 HTTP/1.1\r\nHost: a\r\n\r\n");
    client_read(&c, &r, false);
    assert_int_equal(r.status, 304);
    assert_null(strstr(r.headers, "Content-Length"));
    /* Nothing follows the head: the next response on the connection parses cleanly. */
    client_send(&c, "GET /y HTTP/1.1\r\nHost: a\r\n\r\n");
    client_read(&c, &r, false);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "GET /y"));
    client_close(&c);
}

static void assert_shared_fields(const struct resp *r)
{
    assert_int_equal(r->status, 200);
    assert_true(has_header(r, "HTTP/1.1 200 OK\r\nDate: "));
    assert_true(has_header(r, "\r\nContent-Type: application/json\r\n"));
    assert_true(has_header(r, "\r\nX-Index: 7\r\n"));
    assert_int_equal(r->content_length, 15);
}

/* A shared response answers each request with the same fields and body, and each request's
 * own fields, Date and framing. */
static void test_shared_response(void **state)
{
    struct client c;
    struct resp r, h, last;

    start_server(NULL);
    client_open(&c);
    client_send(&c, "GET /shared HTTP/1.1\r\nHost: a\r\n\r\n");
    client_read(&c, &r, false);
    client_send(&c, "HEAD /shared HTTP/1.1\r\nHost: a\r\n\r\n");
    client_read(&c, &h, true);
    client_send(&c, "GET /shared HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    client_read(&c, &last, false);
    client_expect_close(&c);
    client_close(&c);
    assert_shared_fields(&r);
    assert_shared_fields(&h);
    assert_shared_fields(&last);
    assert_string_equal(r.body, "{\"shared\":true}");
    assert_int_equal(h.body_len, 0);
    assert_string_equal(last.body, "{\"shared\":true}");
    assert_true(has_header(&r, "\r\nX-Own: 1\r\n") && has_header(&h, "\r\nX-Own: 2\r\n"));
    assert_true(has_header(&last, "\r\nX-Own: 3\r\nConnection: close\r\n"));
    assert_true(r.keep_alive && h.keep_alive && !last.keep_alive);
}

/* A field the shared response refused makes every answer a 500, and nothing of it is sent. */
static void test_shared_response_refuses_line_breaks(void **state)
{
    struct client c;
    struct resp r;

    start_server(NULL);
    client_open(&c);
    client_send(&c, "GET /shared-bad HTTP/1.1\r\nHost: a\r\n\r\n");
    client_read(&c, &r, false);
    assert_int_equal(r.status, 500);
    assert_false(has_header(&r, "X-Injected"));
    assert_false(has_header(&r, "X-Own"));
    assert_string_equal(r.body, "invalid response header\n");
    client_send(&c, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n");
    client_read(&c, &r, false);
    assert_int_equal(r.status, 200);
    client_close(&c);
}

static void test_connection_close(void **state)
{
    struct client c;
    struct resp r;

    start_server(NULL);
    client_open(&c);
    client_send(&c, "GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    client_read(&c, &r, false);
    assert_int_equal(r.status, 200);
    assert_true(has_header(&r, "Connection: close\r\n"));
    client_expect_close(&c);
    client_close(&c);

    /* HTTP/1.0 without keep-alive closes too. */
    client_open(&c);
    client_send(&c, "GET /x HTTP/1.0\r\n\r\n");
    client_read(&c, &r, false);
    assert_int_equal(r.status, 200);
    client_expect_close(&c);
    client_close(&c);

    /* HTTP/1.0 with keep-alive stays open. */
    client_open(&c);
    client_send(&c, "GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    client_read(&c, &r, false);
    assert_false(has_header(&r, "Connection: close"));
    client_expect_quiet(&c, 100);
    client_close(&c);
}

static void test_close_with_parked_request(void **state)
{
    struct client c, idle;
    struct resp r;

    start_server(NULL);
    client_open(&idle);
    client_send(&idle, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    client_read(&idle, &r, false);
    client_open(&c);
    client_send(&c, "GET /park HTTP/1.1\r\nHost: a\r\n\r\n");
    wait_for(&fx.parked, 1);
    request_close();
    wait_for(&fx.aborted, 1);
    wait_for(&fx.closed_cb, 1);
    client_expect_close(&c);
    client_expect_close(&idle);
    client_close(&c);
    client_close(&idle);
    stop_server();
    assert_int_equal(atomic_load(&fx.closed_cb), 1);
}

/* Before an exec every held request gets the answer, its owner told first; none is cut off. */
static void test_answer_held_answers_parked_requests(void **state)
{
    struct client parked, last;
    struct resp r;

    start_server(NULL);
    client_open(&parked);
    client_send(&parked, "GET /park HTTP/1.1\r\nHost: a\r\n\r\n");
    wait_for(&fx.parked, 1);
    client_open(&last);
    client_send(&last, "GET /answer-held HTTP/1.1\r\nHost: a\r\n\r\n");
    client_read(&parked, &r, false);
    assert_int_equal(r.status, 500);
    assert_false(r.keep_alive);
    assert_int_equal(r.body_len, 10);
    assert_memory_equal(r.body, "going away", 10);
    assert_int_equal(atomic_load(&fx.aborted), 1);
    client_expect_close(&parked);
    client_read(&last, &r, false); /* the caller's own request is held too */
    assert_int_equal(r.status, 500);
    client_expect_close(&last);
    client_close(&parked);
    client_close(&last);
    stop_server();
}

static void test_listen_errors(void **state)
{
    uv_loop_t loop;
    struct http_server a, b;
    struct err e = {{0}};

    assert_int_equal(uv_loop_init(&loop), 0);
    http_server_init(&a, &loop, NULL, handler, NULL);
    assert_int_equal(http_server_listen(&a, "not-an-ip", 80, &e), UV_EINVAL);
    assert_non_null(strstr(e.msg, "not-an-ip"));
    int port = free_port();
    http_server_init(&a, &loop, NULL, handler, NULL);
    assert_int_equal(http_server_listen(&a, "127.0.0.1", port, &e), 0);
    http_server_init(&b, &loop, NULL, handler, NULL);
    assert_int_equal(http_server_listen(&b, "127.0.0.1", port, &e), UV_EADDRINUSE);
    assert_non_null(strstr(e.msg, "address already in use"));
    http_server_close(&a, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);

    /* On descriptors of net_listen_shared, two servers hold one port. */
    struct sockaddr_storage ss;
    assert_int_equal(net_parse_addr("127.0.0.1", free_port(), &ss), 0);
    http_server_init(&a, &loop, NULL, handler, NULL);
    assert_int_equal(http_server_listen_fd(&a, net_listen_shared(&ss, &e), &e), 0);
    http_server_init(&b, &loop, NULL, handler, NULL);
    assert_int_equal(http_server_listen_fd(&b, net_listen_shared(&ss, &e), &e), 0);
    http_server_close(&a, NULL);
    http_server_close(&b, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* Inflates a gzip body into out; false when it is not one whole gzip stream. */
static bool gunzip(const char *p, size_t n, struct buf *out)
{
    z_stream zs = {0};
    bool ok = inflateInit2(&zs, 15 + 16) == Z_OK;

    buf_reset(out);
    buf_reserve(out, 64 * 1024);
    zs.next_in = (Bytef *)p;
    zs.avail_in = (uInt)n;
    zs.next_out = (Bytef *)out->data;
    zs.avail_out = (uInt)(out->cap - 1);
    ok = ok && inflate(&zs, Z_FINISH) == Z_STREAM_END && zs.avail_in == 0;
    out->len = zs.total_out;
    inflateEnd(&zs);
    return ok;
}

/*
 * Answers compressed one after the other with the server's one deflate state each read back
 * whole, as their own bodies, plain and shared alike: nothing of an answer leaks into the
 * next. Under ASan the state is freed with the server (ctest runs with leak checks).
 */
static void test_gzip_answers_in_a_row(void **state)
{
    static const size_t sizes[] = {3000, 1400, 2500, 1399, 3000, 1500};
    struct buf want = BUF_INIT, got = BUF_INIT;
    char req[128];
    struct client c;
    struct resp r;

    start_server(NULL);
    client_open(&c);
    for (size_t i = 0; i < 2 * ARRAY_LEN(sizes); i++) {
        size_t n = sizes[i % ARRAY_LEN(sizes)];
        const char *path = i < ARRAY_LEN(sizes) ? "/gzip" : "/gzip-shared";
        snprintf(req, sizeof(req),
                 "GET %s?%zu HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n\r\n", path, n);
        client_send(&c, req);
        client_read(&c, &r, false);
        assert_int_equal(r.status, 200);
        gzip_body(n, &want);
        if (n < HTTP_GZIP_MIN_SIZE) { /* under the floor: sent as it is */
            assert_false(has_header(&r, "Content-Encoding"));
            assert_int_equal(r.body_len, n);
            assert_memory_equal(r.body, want.data, n);
            continue;
        }
        assert_true(has_header(&r, "\r\nContent-Encoding: gzip\r\n"));
        assert_true(r.body_len < n);
        assert_true(gunzip(r.body, r.body_len, &got));
        assert_int_equal(got.len, n);
        assert_memory_equal(got.data, want.data, n);
    }
    client_close(&c);
    buf_free(&want);
    buf_free(&got);
}

/* Whether an Accept-Encoding value takes gzip, for a GET. */
static bool takes_gzip(const char *accept)
{
    struct http_header h = {STR_LIT("Accept-Encoding"), str_from(accept), HTTP_FIELD_OTHER};
    struct http_request req = {.method = STR_LIT("GET"), .headers = &h, .num_headers = 1};

    return http_request_accepts_gzip(&req);
}

static void test_accepts_gzip(void **state)
{
    (void)state;
    struct http_request get = {.method = STR_LIT("GET")};
    assert_false(http_request_accepts_gzip(&get)); /* no Accept-Encoding */
    assert_true(takes_gzip("gzip"));
    assert_true(takes_gzip("GZip"));
    assert_true(takes_gzip("deflate;q=0.5, gzip;q=0.8"));
    assert_true(takes_gzip("br,gzip;q=0.001"));
    assert_false(takes_gzip("deflate, br"));
    assert_false(takes_gzip(""));
    /* q=0: not acceptable, however the zero is written */
    assert_false(takes_gzip("gzip;q=0"));
    assert_false(takes_gzip("gzip;q=0.000"));
    assert_false(takes_gzip("gzip;q=0."));
    /* the weight among other parameters, either case, whitespace around ';' and '=' */
    assert_false(takes_gzip("gzip;foo=1;q=0"));
    assert_false(takes_gzip("gzip ; Q=0"));
    assert_false(takes_gzip("gzip;q = 0"));
    assert_false(takes_gzip("gzip\t;\tfoo=1 ;  q=\t0 "));
    assert_true(takes_gzip("gzip;foo=0;q=1"));
    assert_true(takes_gzip("gzip;quality=0")); /* a parameter that is not q */
    /* a malformed weight counts as 0 */
    assert_false(takes_gzip("gzip;q=abc"));
    assert_false(takes_gzip("gzip;q="));
    /* only gzip by name, as Consul's gzip handler: "*" is not taken for it */
    assert_false(takes_gzip("*"));
    assert_false(takes_gzip("br, *;q=0.1"));
    assert_false(takes_gzip("gzip;q=0, *"));
    assert_true(takes_gzip("*;q=0, gzip"));
    /* named twice, the last mention decides (that handler keeps the last in a map) */
    assert_true(takes_gzip("gzip;q=0, gzip"));
    assert_false(takes_gzip("gzip, gzip;q=0"));
    /* identity says nothing about gzip */
    assert_true(takes_gzip("identity;q=0, gzip"));
    assert_false(takes_gzip("identity"));
    /* HEAD answers carry no body to compress */
    struct http_header h = {STR_LIT("Accept-Encoding"), STR_LIT("gzip"), HTTP_FIELD_OTHER};
    struct http_request head = {.method = STR_LIT("HEAD"), .headers = &h, .num_headers = 1};
    assert_false(http_request_accepts_gzip(&head));
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_get),
        T(test_keep_alive_sequential),
        T(test_refuses_line_breaks_in_response),
        T(test_head_one_byte_per_write_costs_linear),
        T(test_pipelining),
        T(test_pipelining_after_later_answer),
        T(test_pipelining_backpressure_resumes),
        T(test_content_length_body),
        T(test_answer_larger_than_the_socket_takes),
        T(test_chunked_body),
        T(test_expect_continue),
        T(test_bad_requests),
        T(test_host_and_request_target),
        T(test_limits),
        T(test_head_timeout),
        T(test_idle_timeout),
        T(test_new_connection_gets_the_head_timeout),
        T(test_parked_request_keeps_its_timer_armed),
        T(test_connections_per_client_limited),
        T(test_newcomer_takes_the_longest_idle_place),
        T(test_abort_on_disconnect),
        T(test_head_method),
        T(test_not_modified),
        T(test_shared_response),
        T(test_shared_response_refuses_line_breaks),
        T(test_connection_close),
        T(test_close_with_parked_request),
        T(test_answer_held_answers_parked_requests),
        T(test_listen_errors),
        cmocka_unit_test(test_accepts_gzip),
        T(test_gzip_answers_in_a_row),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
