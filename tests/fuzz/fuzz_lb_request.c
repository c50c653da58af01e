/*
 * Fuzz target for the load balancer's request path: the input's first byte picks how a fake
 * upstream answers, the rest is what a client sends to one proxy connection (then it shuts
 * its write side). Everything runs on one loop in one thread: the proxy (lb_proxy_open_fd on
 * one end of a socketpair), the client end, and a fake upstream server on a loopback port.
 *
 * Invariants checked, besides ASan/UBSan cleanliness:
 * - what the upstream receives always parses as well-formed requests (a request the proxy
 *   could not frame never reaches a server, so bytes of two messages are never mixed) and
 *   carries no hop-by-hop header;
 * - what the client receives is a sequence of well-formed responses, no more of them than
 *   the requests it sent plus one error;
 * - every counter of requests in flight is back to 0 and every connection closed.
 *
 * MESH_LB_IO=uring in the environment runs the proxy's sockets on the io_uring backend of
 * lib/pollsock (where this kernel allows it; ctest replays the corpus both ways).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <uv.h>

#include "lib/alloc.h"
#include "lib/buf.h"
#include "lib/http_parse.h"
#include "lib/pollsock.h"
#include "lb/proxy.h"
#include "fuzz_check.h"

#define FUZZ_MAX_INPUT (128 * 1024)

static const char *const answers[] = {
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive, X-A\r\nX-A: 1\r\n"
    "\r\n2\r\nok\r\n0\r\n\r\n",
    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
    "HTTP/1.1 503 Busy\r\nContent-Length: 4\r\n\r\nbusy",
    "HTTP/1.1 200 OK\r\n\r\nuntil close", /* no framing: body until close */
    "garbage\r\n\r\n",
    "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
};

/* ---- fake upstream ------------------------------------------------------------------------ */

enum up_state { UP_HEAD, UP_LENGTH, UP_CHUNKED };

struct fake_conn {
    uv_tcp_t tcp;
    struct buf in;
    enum up_state state;
    uint64_t left;
    struct http_chunked_decoder dec;
    bool closing;
};

static struct {
    uv_loop_t loop;
    uv_tcp_t listener;
    int port;
    struct lb_backend backend;
    struct lb_server *srv;
    struct lb_config cfg;
    struct lb_counters fe;
    struct lb_proxy *px;
    int answer;
    int upstream_requests;
    int client_requests_max;
    struct http_request_head req;
    struct http_response_head res;
} g;

static void fake_closed(uv_handle_t *h)
{
    struct fake_conn *fc = h->data;
    buf_free(&fc->in);
    free(fc);
}

static void fake_close(struct fake_conn *fc)
{
    if (!fc->closing) {
        fc->closing = true;
        uv_close((uv_handle_t *)&fc->tcp, fake_closed);
    }
}

static void fake_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    struct fake_conn *fc = h->data;
    (void)hint;
    buf_reserve(&fc->in, 16384);
    *b = uv_buf_init(fc->in.data + fc->in.len, 16384);
}

static void fake_written(uv_write_t *w, int status)
{
    (void)status;
    free(w);
}

static void fake_answer(struct fake_conn *fc)
{
    const char *a = answers[g.answer];
    uv_write_t *w = xmalloc(sizeof(*w));
    uv_buf_t b = uv_buf_init((char *)a, (unsigned)strlen(a));

    g.upstream_requests++;
    if (uv_write(w, (uv_stream_t *)&fc->tcp, &b, 1, fake_written) < 0)
        free(w);
    if (g.answer >= 4) /* unframed or garbage: the server closes */
        fake_close(fc);
}

/*
 * A request as forwarded: well-formed, with no hop-by-hop header, except the two a protocol
 * switch needs (Upgrade, and Connection: Upgrade alone) on a request without a body.
 */
static void check_forwarded_head(const struct http_request_head *req)
{
    static const char *const hop[] = {"connection", "keep-alive", "te",
                                      "trailer",    "upgrade",    "proxy-connection"};
    bool upgrade = req->framing.upgrade;

    if (upgrade)
        CHECK(!req->framing.chunked && req->framing.content_length <= 0);
    for (size_t i = 0; i < req->num_headers; i++) {
        const struct http_header *h = &req->headers[i];
        if (upgrade && str_ieq_cstr(h->name, "connection")) {
            CHECK(str_ieq_cstr(h->value, "upgrade"));
            continue;
        }
        if (upgrade && str_ieq_cstr(h->name, "upgrade"))
            continue;
        for (size_t j = 0; j < sizeof(hop) / sizeof(hop[0]); j++)
            CHECK(!str_ieq_cstr(h->name, hop[j]));
    }
    CHECK(http_find_header(req->headers, req->num_headers, "via") != NULL);
    CHECK(req->minor_version == 1);
}

static void fake_process(struct fake_conn *fc)
{
    while (!fc->closing && fc->in.len > 0) {
        if (fc->state == UP_HEAD) {
            int r = http_parse_request(fc->in.data, fc->in.len, NULL, &g.req);
            if (r == HTTP_PARSE_INCOMPLETE)
                return;
            CHECK(r > 0); /* the proxy only forwards what it could parse */
            check_forwarded_head(&g.req);
            buf_consume(&fc->in, (size_t)r);
            if (g.req.framing.chunked) {
                fc->state = UP_CHUNKED;
                fc->dec = HTTP_CHUNKED_DECODER_INIT;
            } else if (g.req.framing.content_length > 0) {
                fc->state = UP_LENGTH;
                fc->left = (uint64_t)g.req.framing.content_length;
            } else {
                fake_answer(fc);
            }
        } else if (fc->state == UP_LENGTH) {
            size_t k = fc->left < fc->in.len ? (size_t)fc->left : fc->in.len;
            buf_consume(&fc->in, k);
            fc->left -= k;
            if (fc->left == 0) {
                fc->state = UP_HEAD;
                fake_answer(fc);
            }
        } else {
            size_t len = fc->in.len;
            ssize_t r = http_decode_chunked(&fc->dec, fc->in.data, &len);
            CHECK(r != HTTP_PARSE_BAD); /* bad chunking never reaches a server */
            if (r < 0) {
                fc->in.len = 0;
                return;
            }
            memmove(fc->in.data, fc->in.data + len, (size_t)r);
            fc->in.len = (size_t)r;
            fc->state = UP_HEAD;
            fake_answer(fc);
        }
    }
}

static void fake_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct fake_conn *fc = s->data;
    (void)b;
    if (nread < 0) {
        fake_close(fc);
        return;
    }
    fc->in.len += (size_t)nread;
    fake_process(fc);
}

static void fake_accept(uv_stream_t *l, int status)
{
    if (status < 0)
        return;
    struct fake_conn *fc = xcalloc(1, sizeof(*fc));
    uv_tcp_init(&g.loop, &fc->tcp);
    fc->tcp.data = fc;
    if (uv_accept(l, (uv_stream_t *)&fc->tcp) < 0) {
        fake_close(fc);
        return;
    }
    uv_read_start((uv_stream_t *)&fc->tcp, fake_alloc, fake_read);
}

/* ---- client end ----------------------------------------------------------------------------- */

struct client_end {
    uv_pipe_t pipe;
    uv_write_t w;
    uv_shutdown_t sh;
    struct buf out; /* what the proxy answered */
    bool eof;
};

static void client_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    struct client_end *ce = h->data;
    (void)hint;
    buf_reserve(&ce->out, 65536);
    *b = uv_buf_init(ce->out.data + ce->out.len, 65536);
}

static void client_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct client_end *ce = s->data;
    (void)b;
    if (nread < 0) {
        ce->eof = true;
        uv_read_stop(s);
        return;
    }
    ce->out.len += (size_t)nread;
}

static void client_written(uv_write_t *w, int status)
{
    (void)w;
    (void)status;
}

/* Responses the client got: each well-formed; returns how many. */
static int check_responses(const struct buf *out)
{
    size_t off = 0;
    int n = 0;

    while (off < out->len) {
        int r = http_parse_response(out->data + off, out->len - off, NULL, &g.res);
        CHECK(r > 0);
        CHECK(g.res.status >= 100 && g.res.status <= 599);
        off += (size_t)r;
        if (g.res.status < 200)
            continue;
        n++;
        int64_t cl = g.res.framing.content_length;
        bool next_is_head = out->len - off >= 7 && memcmp(out->data + off, "HTTP/1.", 7) == 0;
        if (next_is_head)
            continue; /* the answer to a HEAD request: no body */
        if (g.res.framing.chunked) {
            struct http_chunked_decoder dec = HTTP_CHUNKED_DECODER_INIT;
            char *copy = xmemdup(out->data + off, out->len - off);
            size_t len = out->len - off;
            ssize_t d = http_decode_chunked(&dec, copy, &len);
            free(copy);
            CHECK(d != HTTP_PARSE_BAD);
            if (d < 0)
                break; /* cut short: the server aborted mid-body */
            off = out->len - (size_t)d;
        } else if (cl >= 0 && http_response_has_body(&g.res, false) && g.res.status != 204) {
            /* HEAD answers carry a Content-Length without a body: accept either */
            if ((size_t)cl <= out->len - off)
                off += (size_t)cl;
        } else if (cl < 0 && http_response_has_body(&g.res, false)) {
            break; /* until close */
        }
    }
    return n;
}

/* ---- driver ----------------------------------------------------------------------------- */

static void setup(void)
{
    struct sockaddr_in sa;
    int len = sizeof(sa);

    uv_loop_init(&g.loop);
    const char *io = getenv("MESH_LB_IO"), *why;
    if (io && strcmp(io, "uring") == 0 && pollsock_use(POLLSOCK_AUTO, &why) == POLLSOCK_URING)
        CHECK(pollsock_loop_init(&g.loop) == 0);
    uv_tcp_init(&g.loop, &g.listener);
    uv_ip4_addr("127.0.0.1", 0, &sa);
    CHECK(uv_tcp_bind(&g.listener, (struct sockaddr *)&sa, 0) == 0);
    CHECK(uv_listen((uv_stream_t *)&g.listener, 128, fake_accept) == 0);
    uv_tcp_getsockname(&g.listener, (struct sockaddr *)&sa, &len);
    g.port = ntohs(sa.sin_port);
    g.srv = lb_server_new("fake", "srv1", "127.0.0.1", g.port, 1);
    g.backend.name = "web";
    pthread_mutex_init(&g.backend.lock, NULL);
    lb_counters_init(&g.backend.c);
    lb_counters_init(&g.fe);
    lb_backend_publish(&g.backend, lb_server_set_new(&g.srv, 1));
    g.cfg.bind_addr = "127.0.0.1";
    g.cfg.workers = 1;
    g.cfg.maxconn = 100;
    g.cfg.x_forwarded_for = true;
    g.cfg.forwarded = true;
    g.cfg.via = true;
    g.cfg.retries = 1;
    g.cfg.redispatch = true;
    g.cfg.queue_max = 10;
    g.cfg.timeout_connect_ns = 200000000;
    g.cfg.timeout_client_ns = 200000000;
    g.cfg.timeout_server_ns = 200000000;
    g.cfg.timeout_queue_ns = 200000000;
    g.cfg.timeout_keepalive_ns = 200000000;
    g.cfg.timeout_http_request_ns = 200000000;
    g.px = xcalloc(1, sizeof(*g.px));
}

static void watchdog(uv_timer_t *t)
{
    (void)t;
    lb_proxy_abort_all(g.px);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    int sv[2];
    struct client_end ce = {.out = BUF_INIT};
    uv_timer_t dog;

    if (!ready) {
        setup();
        ready = true;
    }
    if (size < 1 || size > FUZZ_MAX_INPUT)
        return 0;
    g.answer = data[0] % (int)(sizeof(answers) / sizeof(answers[0]));
    g.upstream_requests = 0;
    atomic_store(&g.srv->state, LB_SRV_UP);
    atomic_store(&g.srv->consecutive_errors, 0);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);

    lb_proxy_init(g.px, &g.loop, &g.cfg, &g.backend, &g.fe, NULL, 0);
    CHECK(lb_proxy_open_fd(g.px, sv[0]) == 0);
    uv_pipe_init(&g.loop, &ce.pipe, 0);
    ce.pipe.data = &ce;
    CHECK(uv_pipe_open(&ce.pipe, sv[1]) == 0);
    uv_buf_t in = uv_buf_init((char *)data + 1, (unsigned)(size - 1));
    if (size > 1)
        uv_write(&ce.w, (uv_stream_t *)&ce.pipe, &in, 1, client_written);
    uv_shutdown(&ce.sh, (uv_stream_t *)&ce.pipe, NULL);
    uv_read_start((uv_stream_t *)&ce.pipe, client_alloc, client_read);
    uv_timer_init(&g.loop, &dog);
    uv_timer_start(&dog, watchdog, 3000, 0);

    while (!(ce.eof && g.px->nclients == 0))
        uv_run(&g.loop, UV_RUN_ONCE);

    int responses = check_responses(&ce.out);
    if (getenv("FUZZ_VERBOSE"))
        fprintf(stderr, "answer %d: upstream saw %d requests, client got %d responses:\n%.*s\n",
                g.answer, g.upstream_requests, responses, (int)ce.out.len, ce.out.data);
    /* count request heads the client sent (upper bound): each answer needs one */
    CHECK(responses <= g.upstream_requests + 1);
    CHECK(lb_read(&g.fe.scur) == 0);
    CHECK(lb_read(&g.backend.c.scur) == 0);
    CHECK(lb_read(&g.srv->c.scur) == 0);
    CHECK(lb_read(&g.backend.qcur) == 0);

    uv_close((uv_handle_t *)&dog, NULL);
    uv_close((uv_handle_t *)&ce.pipe, NULL);
    lb_proxy_close(g.px);
    /* let close callbacks and the fake upstream's connections finish */
    while (uv_run(&g.loop, UV_RUN_NOWAIT) != 0 && g.px->pool.nconns > 0)
        ;
    for (int i = 0; i < 10; i++)
        uv_run(&g.loop, UV_RUN_NOWAIT);
    buf_free(&ce.out);
    return 0;
}
