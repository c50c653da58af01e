/*
 * The client runs on a loop in the test thread, against an http_server on the same loop or a
 * scripted raw server (blocking sockets in a second thread) for exact response bytes. Every
 * wait is bounded: run_until() by a deadline, the raw server by socket timeouts, each test by
 * alarm().
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
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
#include <unistd.h>

#include <cmocka.h>

#include "lib/alloc.h"
#include "lib/http_client.h"
#include "lib/http_server.h"

#define WAIT_MS 3000

/* ---- scripted raw server ----------------------------------------------------------------------
 */

/* One connection: for each request read, send replies[i]; a NULL reply closes without answer. */
struct raw_script {
    const char *replies[4];
    int n;
    bool close_after; /* close after the last reply instead of waiting for the client */
};

struct raw_server {
    int fd;
    int port;
    const struct raw_script *scripts;
    int nscripts;
    pthread_t thread;
    bool running;
    atomic_int accepted;
    atomic_int requests;
};

/* Reads one request head (requests sent to the raw server carry no body). */
static bool raw_read_request(int fd)
{
    char buf[8192];
    size_t len = 0;

    while (len < sizeof(buf) - 1) {
        ssize_t n = recv(fd, buf + len, 1, 0);
        if (n <= 0)
            return false;
        len += (size_t)n;
        buf[len] = '\0';
        if (len >= 4 && memcmp(buf + len - 4, "\r\n\r\n", 4) == 0)
            return true;
    }
    return false;
}

static void *raw_thread(void *arg)
{
    struct raw_server *rs = arg;

    for (int i = 0; i < rs->nscripts; i++) {
        struct pollfd p = {.fd = rs->fd, .events = POLLIN};
        if (poll(&p, 1, WAIT_MS) != 1)
            break;
        int fd = accept(rs->fd, NULL, NULL);
        if (fd < 0)
            break;
        atomic_fetch_add(&rs->accepted, 1);
        struct timeval tv = {.tv_sec = WAIT_MS / 1000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        const struct raw_script *s = &rs->scripts[i];
        bool open = true;
        for (int k = 0; k < s->n && open; k++) {
            if (!raw_read_request(fd))
                break;
            atomic_fetch_add(&rs->requests, 1);
            if (!s->replies[k]) {
                open = false;
                break;
            }
            send(fd, s->replies[k], strlen(s->replies[k]), MSG_NOSIGNAL);
        }
        if (open && !s->close_after) {
            char c;
            while (recv(fd, &c, 1, 0) > 0) /* until the client closes (bounded) */
                ;
        }
        close(fd);
    }
    close(rs->fd);
    return NULL;
}

static int listen_socket(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    *port = ntohs(sin.sin_port);
    return fd;
}

static int free_port(void)
{
    int port;
    close(listen_socket(&port));
    return port;
}

/* ---- fixture ----------------------------------------------------------------------------------
 */

struct result {
    int calls;
    int status;
    int http_status;
    char body[4096];
    size_t body_len;
    char x_peer[64];
    uint64_t at_ms;
};

struct fx {
    uv_loop_t loop;
    struct http_server srv;
    int port;
    struct http_client *client;
    uv_timer_t tick;
    struct raw_server raw;
    int parked;
    int aborted;
    int handled; /* requests the server saw */
};

static struct fx fx;

static void on_abort(struct http_request *req)
{
    fx.aborted++;
}

static void handler(struct http_request *req, void *data)
{
    fx.handled++;
    http_response_header(req, "X-Peer", "%s", req->peer);
    if (str_eq_cstr(req->path, "/park")) {
        req->on_abort = on_abort;
        fx.parked++;
        return;
    }
    if (str_eq_cstr(req->path, "/big")) {
        char big[1000];
        memset(big, 'b', sizeof(big));
        http_respond(req, 200, "text/plain", big, sizeof(big));
        return;
    }
    if (str_eq_cstr(req->path, "/echo")) {
        const struct http_header *h = http_request_header(req, "Host");
        http_response_header(req, "X-Host", "%.*s", STR_FMT(h->value));
        http_respond(req, 201, "application/octet-stream", req->body, req->body_len);
        return;
    }
    if (str_eq_cstr(req->path, "/missing")) {
        http_respond_text(req, 404, "nope\n");
        return;
    }
    http_respond_text(req, 200, "hello");
}

static void on_tick(uv_timer_t *t)
{
}

static int setup(void **state)
{
    struct err e;

    alarm(30);
    memset(&fx, 0, sizeof(fx));
    fx.raw.fd = -1;
    assert_int_equal(uv_loop_init(&fx.loop), 0);
    http_server_init(&fx.srv, &fx.loop, NULL, handler, NULL);
    fx.port = free_port();
    assert_int_equal(http_server_listen(&fx.srv, "127.0.0.1", fx.port, &e), 0);
    fx.client = http_client_new(&fx.loop);
    uv_timer_init(&fx.loop, &fx.tick);
    uv_timer_start(&fx.tick, on_tick, 20, 20); /* wakes run_until() */
    return 0;
}

static int teardown(void **state)
{
    if (fx.client)
        http_client_free(fx.client);
    fx.client = NULL;
    http_server_close(&fx.srv, NULL);
    uv_close((uv_handle_t *)&fx.tick, NULL);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    if (fx.raw.running)
        pthread_join(fx.raw.thread, NULL);
    int rc = uv_loop_close(&fx.loop);
    alarm(0);
    return rc == 0 ? 0 : -1;
}

static void raw_start(const struct raw_script *scripts, int n)
{
    fx.raw.fd = listen_socket(&fx.raw.port);
    assert_int_equal(listen(fx.raw.fd, 16), 0);
    fx.raw.scripts = scripts;
    fx.raw.nscripts = n;
    assert_int_equal(pthread_create(&fx.raw.thread, NULL, raw_thread, &fx.raw), 0);
    fx.raw.running = true;
}

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000;
}

static void run_until(const int *calls, int want)
{
    uint64_t end = now_ms() + WAIT_MS;
    while (*calls < want && now_ms() < end)
        uv_run(&fx.loop, UV_RUN_ONCE);
    assert_int_equal(*calls, want);
}

static void on_done(int status, const struct http_client_response *res, void *data)
{
    struct result *r = data;

    r->calls++;
    r->status = status;
    r->at_ms = now_ms();
    if (status == 0) {
        assert_non_null(res);
        r->http_status = res->status;
        assert_true(res->body_len < sizeof(r->body));
        memcpy(r->body, res->body, res->body_len);
        assert_int_equal(res->body[res->body_len], '\0');
        r->body_len = res->body_len;
        size_t n;
        const char *p = http_client_header(res, "x-peer", &n);
        if (p)
            snprintf(r->x_peer, sizeof(r->x_peer), "%.*s", (int)n, p);
    } else {
        assert_null(res);
    }
}

static struct http_client_request req_to(int port, const char *target)
{
    return (struct http_client_request){.host = "127.0.0.1", .port = port, .target = target};
}

static void assert_body(const struct result *r, const char *want)
{
    assert_int_equal(r->status, 0);
    assert_int_equal(r->body_len, strlen(want));
    assert_memory_equal(r->body, want, r->body_len);
}

/* ---- tests -------------------------------------------------------------------------------------
 */

static void test_consul_index(void **state)
{
    struct http_header h[2] = {
        {.name = STR_LIT("Content-Type"), .value = STR_LIT("application/json")},
        {.name = STR_LIT("x-consul-index"), .value = STR_LIT("18446744073709551615")}};
    struct http_client_response res = {.status = 200, .headers = h, .num_headers = 2};

    assert_true(http_client_index(&res) == UINT64_MAX);
    h[1].value = STR_LIT("12x");
    assert_true(http_client_index(&res) == 0);
    h[1].value = STR_LIT("");
    assert_true(http_client_index(&res) == 0);
    res.num_headers = 1;
    assert_true(http_client_index(&res) == 0);
}

static void test_get_and_post(void **state)
{
    struct result r1 = {0}, r2 = {0}, r3 = {0};
    struct http_client_request q = req_to(fx.port, "/hello");

    assert_non_null(http_client_send(fx.client, &q, on_done, &r1));
    assert_int_equal(r1.calls, 0); /* never from inside send */
    run_until(&r1.calls, 1);
    assert_int_equal(r1.http_status, 200);
    assert_body(&r1, "hello");

    q = req_to(fx.port, "/echo");
    q.method = "POST";
    q.body = "a\0bc";
    q.body_len = 4;
    http_client_send(fx.client, &q, on_done, &r2);
    run_until(&r2.calls, 1);
    assert_int_equal(r2.http_status, 201);
    assert_int_equal(r2.body_len, 4);
    assert_memory_equal(r2.body, "a\0bc", 4);

    q = req_to(fx.port, "/missing");
    http_client_send(fx.client, &q, on_done, &r3);
    run_until(&r3.calls, 1);
    assert_int_equal(r3.status, 0); /* an HTTP error status is still a response */
    assert_int_equal(r3.http_status, 404);
    assert_body(&r3, "nope\n");
}

static void on_echo_host(int status, const struct http_client_response *res, void *data)
{
    char *out = data;
    size_t n = 0;
    const char *p = status == 0 ? http_client_header(res, "X-Host", &n) : "";
    snprintf(out, 128, "%d %.*s", status, (int)n, p);
    assert_null(http_client_header(res, "X-Nothing", NULL));
}

static void test_host_header(void **state)
{
    char got[128] = "";
    char want[128];
    struct http_client_request q = req_to(fx.port, "/echo");

    http_client_send(fx.client, &q, on_echo_host, got);
    uv_run(&fx.loop, UV_RUN_ONCE);
    for (int i = 0; i < 200 && !got[0]; i++)
        uv_run(&fx.loop, UV_RUN_ONCE);
    snprintf(want, sizeof(want), "0 127.0.0.1:%d", fx.port);
    assert_string_equal(got, want);

    got[0] = '\0';
    struct http_header fields[] = {{.name = STR_LIT("X-A"), .value = STR_LIT("1")},
                                   {.name = STR_LIT("host"), .value = STR_LIT("vhost.example")}};
    q.headers = fields;
    q.num_headers = 2;
    http_client_send(fx.client, &q, on_echo_host, got);
    for (int i = 0; i < 200 && !got[0]; i++)
        uv_run(&fx.loop, UV_RUN_ONCE);
    assert_string_equal(got, "0 vhost.example");
}

/* Sends a second request from the first one's callback, when the connection is back in the
 * pool. */
struct chain {
    struct result first, second;
    struct http_client_request next;
};

static void on_first_then_send(int status, const struct http_client_response *res, void *data)
{
    struct chain *ch = data;
    on_done(status, res, &ch->first);
    http_client_send(fx.client, &ch->next, on_done, &ch->second);
}

static void test_keep_alive_reuse(void **state)
{
    struct chain ch = {0};
    struct http_client_request q = req_to(fx.port, "/a");
    struct result r3 = {0}, r4 = {0};

    ch.next = req_to(fx.port, "/b");
    http_client_send(fx.client, &q, on_first_then_send, &ch);
    run_until(&ch.second.calls, 1);
    assert_body(&ch.first, "hello");
    assert_body(&ch.second, "hello");
    assert_true(ch.first.x_peer[0]);
    assert_string_equal(ch.first.x_peer, ch.second.x_peer); /* one connection */
    assert_int_equal(fx.srv.num_conns, 1);

    /* Later, not from the callback: still the pooled connection. */
    http_client_send(fx.client, &q, on_done, &r3);
    run_until(&r3.calls, 1);
    assert_string_equal(r3.x_peer, ch.first.x_peer);

    /* no_keep_alive takes a fresh connection and does not pool it. */
    q.no_keep_alive = true;
    http_client_send(fx.client, &q, on_done, &r4);
    run_until(&r4.calls, 1);
    assert_body(&r4, "hello");
    assert_string_not_equal(r4.x_peer, ch.first.x_peer);
    for (int i = 0; i < 10; i++)
        uv_run(&fx.loop, UV_RUN_NOWAIT);
}

static void test_head_request(void **state)
{
    struct chain ch = {0};
    struct http_client_request q = req_to(fx.port, "/x");

    q.method = "HEAD";
    ch.next = req_to(fx.port, "/y");
    http_client_send(fx.client, &q, on_first_then_send, &ch);
    run_until(&ch.second.calls, 1);
    assert_int_equal(ch.first.http_status, 200);
    assert_int_equal(ch.first.body_len, 0);
    assert_body(&ch.second, "hello");
    assert_string_equal(ch.first.x_peer, ch.second.x_peer);
}

static void test_framings(void **state)
{
    static const struct raw_script scripts[] = {
        {{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4;x=y\r\ndefg\r\n"
          "0\r\nT: 1\r\n\r\n",
          "HTTP/1.1 204 No Content\r\n\r\n",
          "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close"},
         4,
         true},
    };
    struct result r[4] = {{0}};
    struct chain ch = {0};

    raw_start(scripts, 1);
    struct http_client_request q = req_to(fx.raw.port, "/");
    ch.next = q;
    http_client_send(fx.client, &q, on_first_then_send, &ch);
    run_until(&ch.second.calls, 1);
    assert_body(&ch.first, "hello");
    assert_body(&ch.second, "abcdefg");
    http_client_send(fx.client, &q, on_done, &r[0]);
    run_until(&r[0].calls, 1);
    assert_int_equal(r[0].http_status, 204);
    assert_body(&r[0], "");
    http_client_send(fx.client, &q, on_done, &r[1]);
    run_until(&r[1].calls, 1);
    assert_body(&r[1], "until close");
    assert_int_equal(atomic_load(&fx.raw.accepted), 1);
    assert_int_equal(atomic_load(&fx.raw.requests), 4);
}

/* An interim 100 and the final response in one read. */
static void test_interim_response(void **state)
{
    static const struct raw_script scripts[] = {
        {{"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"}, 1, true},
    };
    struct result r = {0};

    raw_start(scripts, 1);
    struct http_client_request q = req_to(fx.raw.port, "/");
    q.timeout_ms = 1000;
    http_client_send(fx.client, &q, on_done, &r);
    run_until(&r.calls, 1);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.http_status, 200);
    assert_body(&r, "ok");
}

static void test_retry_on_closed_pooled_conn(void **state)
{
    static const struct raw_script scripts[] = {
        {{"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na", NULL}, 2, false},
        {{"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb"}, 1, false},
    };
    struct chain ch = {0};

    raw_start(scripts, 2);
    struct http_client_request q = req_to(fx.raw.port, "/");
    ch.next = q;
    http_client_send(fx.client, &q, on_first_then_send, &ch);
    run_until(&ch.second.calls, 1);
    assert_body(&ch.first, "a");
    assert_body(&ch.second, "b");
    assert_int_equal(atomic_load(&fx.raw.accepted), 2);
    assert_int_equal(atomic_load(&fx.raw.requests), 3);
}

static void test_no_second_retry(void **state)
{
    static const struct raw_script scripts[] = {
        {{"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na", NULL}, 2, false},
        {{NULL}, 1, false},
        {{"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nc"}, 1, false},
    };
    struct chain ch = {0};

    raw_start(scripts, 3);
    struct http_client_request q = req_to(fx.raw.port, "/");
    ch.next = q;
    http_client_send(fx.client, &q, on_first_then_send, &ch);
    run_until(&ch.second.calls, 1);
    assert_body(&ch.first, "a");
    assert_true(ch.second.status == UV_EPROTO || ch.second.status == UV_ECONNRESET);
    assert_int_equal(atomic_load(&fx.raw.accepted), 2);
    /* A fresh connection that dies before answering is not retried either. */
    struct result r = {0};
    http_client_send(fx.client, &q, on_done, &r);
    run_until(&r.calls, 1);
    assert_body(&r, "c");
}

static void test_timeout(void **state)
{
    struct result r = {0};
    struct http_client_request q = req_to(fx.port, "/park");

    q.timeout_ms = 200;
    uint64_t t0 = now_ms();
    http_client_send(fx.client, &q, on_done, &r);
    run_until(&r.calls, 1);
    assert_int_equal(r.status, UV_ETIMEDOUT);
    assert_true(r.at_ms - t0 >= 150); /* loop time may lag the wall clock a little */
    assert_true(r.at_ms - t0 < 2000);
    assert_int_equal(fx.parked, 1);
    run_until(&fx.aborted, 1); /* the client dropped the connection */
}

static void test_refused(void **state)
{
    struct result r = {0};
    struct http_client_request q = req_to(free_port(), "/");

    http_client_send(fx.client, &q, on_done, &r);
    assert_int_equal(r.calls, 0);
    run_until(&r.calls, 1);
    assert_int_equal(r.status, UV_ECONNREFUSED);
}

static void test_bad_arguments(void **state)
{
    struct result r1 = {0}, r2 = {0};
    struct http_client_request q = req_to(0, "/");

    http_client_send(fx.client, &q, on_done, &r1);
    q = req_to(fx.port, "/");
    q.host = NULL;
    http_client_send(fx.client, &q, on_done, &r2);
    assert_int_equal(r1.calls + r2.calls, 0);
    run_until(&r2.calls, 1);
    assert_int_equal(r1.status, UV_EINVAL);
    assert_int_equal(r2.status, UV_EINVAL);
}

/* The detail of a failure, copied while the callback runs. */
static char fail_detail[256];

static void on_done_detail(int status, const struct http_client_response *res, void *data)
{
    const char *d = http_client_error(fx.client);
    snprintf(fail_detail, sizeof(fail_detail), "%s", d ? d : "");
    on_done(status, res, data);
}

/* A line break copied from a caller's input (a ?token= percent-decoded, say) into a field,
 * the method or the target never reaches the wire: the call fails before it connects. */
static void test_refuses_line_breaks(void **state)
{
    static const struct {
        const char *method, *target;
        struct http_header field;
        const char *detail;
    } cases[] = {
        {"GET",
         "/",
         {.name = STR_LIT("X-Consul-Token"), .value = STR_LIT("abc\r\nX-Injected: yes")},
         "net/http: invalid header field value for \"X-Consul-Token\""},
        {"GET",
         "/",
         {.name = STR_LIT("X-Consul-Token"), .value = STR_LIT("abc\nX")},
         "net/http: invalid header field value for \"X-Consul-Token\""},
        {"GET",
         "/",
         {.name = STR_LIT("X-Consul-Token"), .value = {"a\0b", 3}},
         "net/http: invalid header field value for \"X-Consul-Token\""},
        {"GET",
         "/",
         {.name = STR_LIT("X-A\r\nX-B"), .value = STR_LIT("1")},
         "net/http: invalid header field name \"X-A\""},
        {"GET",
         "/",
         {.name = STR_LIT(""), .value = STR_LIT("1")},
         "net/http: invalid header field name \"\""},
        {"GET",
         "/a HTTP/1.1\r\nX-Injected: yes\r\n\r\nGET /b",
         {.name = STR_LIT("X-A"), .value = STR_LIT("1")},
         "net/http: invalid request target \"/a\""},
        {"GET",
         "/a\rb",
         {.name = STR_LIT("X-A"), .value = STR_LIT("1")},
         "net/http: invalid request target \"/a\""},
        {"GET /x HTTP/1.1\r\n",
         "/",
         {.name = STR_LIT("X-A"), .value = STR_LIT("1")},
         "net/http: invalid method \"GET\""},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct result r = {0};
        struct http_client_request q = req_to(fx.port, cases[i].target);
        q.method = cases[i].method;
        q.headers = &cases[i].field;
        q.num_headers = 1;
        http_client_send(fx.client, &q, on_done_detail, &r);
        run_until(&r.calls, 1);
        assert_int_equal(r.status, UV_EINVAL);
        assert_string_equal(fail_detail, cases[i].detail);
    }
    /* A tab and obs-text are field bytes; the same call with a clean value goes through. */
    struct result ok = {0};
    struct http_header fine = {.name = STR_LIT("X-Consul-Token"), .value = STR_LIT("a\tb\xc3\xa9")};
    struct http_client_request q = req_to(fx.port, "/");
    q.headers = &fine;
    q.num_headers = 1;
    http_client_send(fx.client, &q, on_done, &ok);
    run_until(&ok.calls, 1);
    assert_body(&ok, "hello");
    assert_int_equal(fx.handled, 1);
}

static void test_malformed(void **state)
{
    static const struct raw_script scripts[] = {
        {{"HTTP/1.1 abc\r\n\r\n"}, 1, false},
        {{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"}, 1, false},
        {{"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"}, 1, true},
    };
    struct result r[3] = {{0}};

    raw_start(scripts, 3);
    struct http_client_request q = req_to(fx.raw.port, "/");
    for (int i = 0; i < 3; i++) {
        http_client_send(fx.client, &q, on_done, &r[i]);
        run_until(&r[i].calls, 1);
        assert_int_equal(r[i].status, UV_EPROTO);
    }
}

static void test_max_body(void **state)
{
    static const struct raw_script scripts[] = {
        {{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
          "40\r\n0123456789012345678901234567890123456789012345678901234567890123\r\n"
          "40\r\n0123456789012345678901234567890123456789012345678901234567890123\r\n0\r\n\r\n"},
         1,
         false},
        {{"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
          "0123456789012345678901234567890123456789012345678901234567890123"
          "0123456789012345678901234567890123456789012345678901234567890123"},
         1,
         true},
    };
    struct result r1 = {0}, r2 = {0}, r3 = {0}, r4 = {0};
    struct http_client_request q = req_to(fx.port, "/big");

    q.max_body = 999;
    http_client_send(fx.client, &q, on_done, &r1);
    run_until(&r1.calls, 1);
    assert_int_equal(r1.status, UV_E2BIG);
    q.max_body = 1000; /* exactly at the limit */
    http_client_send(fx.client, &q, on_done, &r2);
    run_until(&r2.calls, 1);
    assert_int_equal(r2.status, 0);
    assert_int_equal(r2.body_len, 1000);

    /* Chunked and read-until-close bodies, whole in one read, are bounded as well. */
    raw_start(scripts, 2);
    q = req_to(fx.raw.port, "/");
    q.max_body = 100;
    http_client_send(fx.client, &q, on_done, &r3);
    run_until(&r3.calls, 1);
    assert_int_equal(r3.status, UV_E2BIG);
    http_client_send(fx.client, &q, on_done, &r4);
    run_until(&r4.calls, 1);
    assert_int_equal(r4.status, UV_E2BIG);
}

static void on_cancel_timer(uv_timer_t *t)
{
    http_call_cancel(t->data);
    uv_close((uv_handle_t *)t, NULL);
}

static void test_cancel(void **state)
{
    struct result r1 = {0}, r2 = {0}, r3 = {0};
    struct http_client_request q = req_to(fx.port, "/park");
    uv_timer_t t;

    /* While connecting: the callback runs inside cancel. */
    struct http_call *call = http_client_send(fx.client, &q, on_done, &r1);
    http_call_cancel(call);
    assert_int_equal(r1.calls, 1);
    assert_int_equal(r1.status, UV_ECANCELED);

    /* While the server holds the request. */
    call = http_client_send(fx.client, &q, on_done, &r2);
    uv_timer_init(&fx.loop, &t);
    t.data = call;
    uv_timer_start(&t, on_cancel_timer, 100, 0);
    run_until(&r2.calls, 1);
    assert_int_equal(r2.status, UV_ECANCELED);
    assert_int_equal(fx.parked, 1);
    run_until(&fx.aborted, 1);

    /* While resolving a name. */
    q.host = "localhost";
    call = http_client_send(fx.client, &q, on_done, &r3);
    http_call_cancel(call);
    assert_int_equal(r3.status, UV_ECANCELED);
    for (int i = 0; i < 5; i++)
        uv_run(&fx.loop, UV_RUN_NOWAIT);
    assert_int_equal(r1.calls + r2.calls + r3.calls, 3); /* each exactly once */
}

static void test_localhost(void **state)
{
    struct result r = {0};
    struct http_client_request q = req_to(fx.port, "/hello");

    q.host = "localhost";
    http_client_send(fx.client, &q, on_done, &r);
    run_until(&r.calls, 1);
    assert_body(&r, "hello");

    struct result bad = {0};
    q.host = "no-such-host.invalid";
    http_client_send(fx.client, &q, on_done, &bad);
    run_until(&bad.calls, 1);
    assert_true(bad.status < 0);
}

static void on_free_timer(uv_timer_t *t)
{
    http_client_free(fx.client);
    fx.client = NULL;
    uv_close((uv_handle_t *)t, NULL);
}

static void test_free_with_calls_in_flight(void **state)
{
    struct result r1 = {0}, r2 = {0}, r3 = {0}, r4 = {0};
    struct http_client_request q = req_to(fx.port, "/park");
    uv_timer_t t;

    /* One pooled idle connection too. */
    struct http_client_request hello = req_to(fx.port, "/hello");
    http_client_send(fx.client, &hello, on_done, &r4);
    run_until(&r4.calls, 1);

    http_client_send(fx.client, &q, on_done, &r1); /* parked at the server */
    q.host = "localhost";
    http_client_send(fx.client, &q, on_done, &r2); /* parked too, by name */
    q = req_to(free_port(), "/");
    q.timeout_ms = 5000;
    uv_timer_init(&fx.loop, &t);
    uv_timer_start(&t, on_free_timer, 150, 0);
    run_until(&fx.parked, 2);
    http_client_send(fx.client, &q, on_done, &r3); /* connecting */
    run_until(&r1.calls, 1);
    assert_null(fx.client);
    assert_int_equal(r1.status, UV_ECANCELED);
    assert_int_equal(r2.status, UV_ECANCELED);
    assert_int_equal(r2.calls, 1);
    assert_int_equal(r3.calls, 1);
    assert_true(r3.status == UV_ECANCELED || r3.status == UV_ECONNREFUSED);
    run_until(&fx.aborted, 2);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_consul_index),
        T(test_get_and_post),
        T(test_host_header),
        T(test_keep_alive_reuse),
        T(test_head_request),
        T(test_framings),
        T(test_interim_response),
        T(test_retry_on_closed_pooled_conn),
        T(test_no_second_retry),
        T(test_timeout),
        T(test_refused),
        T(test_bad_arguments),
        T(test_refuses_line_breaks),
        T(test_malformed),
        T(test_max_body),
        T(test_cancel),
        T(test_localhost),
        T(test_free_with_calls_in_flight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
