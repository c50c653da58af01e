/*
 * One request step of a virtual user, from its beforeRequest hooks to the verdict its flow goes
 * on with: the bytes built (templates, cookies, a redirect's next hop), a connection taken from
 * the user's agent (agent.c) or waited for, the send, the response read and parsed (TLS
 * included), then what the response does: the expect checks, captures, Set-Cookie, a redirect
 * followed, the afterResponse hooks, and the counts (record.c). The flow (vu.c) starts a step
 * with load_exchange_start and hears of its end through the callback it gave.
 *
 * A request's latency runs from the instant it was due (vu->ready_ns: the scheduled arrival for
 * the first, the end of the previous step after that) to its last response byte, so a generator
 * that falls behind shows up as latency rather than as fewer requests.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/alloc.h"
#include "lib/bug.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/tls.h"
#include "load/engine_internal.h"
#include "load/capture.h"
#include "load/cookies.h"
#include "load/expect.h"
#include "load/node_headers.h"
#include "load/template.h"

/* One ciphertext write in flight (TLS sends handshake records and data as they come). */
struct tls_write {
    uv_write_t req;
    struct load_conn *c;
    struct buf data;
};

static void send_request(struct load_vu *vu, bool retry);

/* ---- connection -------------------------------------------------------------------------- */

/*
 * A connection was given back or closed: requests waiting for one in the agent go, first come
 * first served. A request that fails at once closes its connection and lands here again: the
 * outer call goes on with the queue, so the stack does not grow with it.
 */
static void agent_wake(struct load_agent *a)
{
    struct load_vu *vu;

    if (a->waking)
        return;
    a->waking = true;
    while ((vu = load_agent_next_waiter(a)) != NULL) {
        if (!vu->w->stopping) /* else the stop aborts it */
            send_request(vu, vu->queued_retry);
    }
    a->waking = false;
}

/* Cuts the connection loose from its VU and closes it. */
static void conn_drop(struct load_vu *vu)
{
    struct load_conn *c = vu->conn;
    struct load_agent *a;

    if (!c)
        return;
    vu->conn = NULL;
    a = c->agent;
    load_conn_close(c);
    agent_wake(a);
}

/* The response is complete: the connection goes back to the agent, unless it ends here. */
static void conn_release(struct load_vu *vu)
{
    struct load_conn *c = vu->conn;

    c->used = true;
    if (!c->keep_alive || c->until_close) {
        conn_drop(vu);
        return;
    }
    c->head_done = false;
    vu->conn = NULL;
    load_agent_give(c);
    agent_wake(vu->agent);
}

/* An idle connection read: the server closed it, or sent what nobody asked for. */
static void idle_read(struct load_conn *c, ssize_t nread);

static void redirect_clear(struct load_vu *vu);

/* The request failed: count the error, and the VU fails (Artillery ends the VU). */
static void request_failed(struct load_vu *vu, const char *code)
{
    uv_timer_stop(&vu->timer);
    redirect_clear(vu);
    load_record_error(vu, code);
    if (vu->req && vu->req->endpoint_rt)
        load_record_endpoint_error(vu->w, vu->req, code);
    conn_drop(vu);
    vu->req = NULL;
    json_decref(vu->params);
    vu->params = NULL;
    vu->req_done(vu, true);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    struct load_conn *c = CONTAINER_OF((uv_tcp_t *)h, struct load_conn, tcp);

    struct buf *dst = c->tls ? &c->raw : &c->in;

    (void)hint;
    buf_reserve(dst, 16384);
    b->base = dst->data + dst->len;
    b->len = dst->cap - dst->len - 1;
}

/* Wall-clock ms now, for cookie expiry. */
static int64_t epoch_ms(const struct load_engine *eng)
{
    return eng->start_epoch_ms + (int64_t)((uv_hrtime() - eng->start_ns) / 1000000u);
}

/* The Set-Cookie headers of a response into the user's jar. */
static void store_cookies(struct load_vu *vu, const struct load_conn *c,
                          const struct http_response_head *h)
{
    struct str path = {NULL, 0};
    char *p = NULL;

    for (size_t i = 0; i < h->num_headers; i++) {
        struct load_jar_url u;

        if (h->headers[i].name.n != 10 || strncasecmp(h->headers[i].name.p, "Set-Cookie", 10))
            continue;
        if (!p) {
            path = load_expect_path(c->wire, c->wire_len);
            p = xstrndup(path.p, path.n);
        }
        u = (struct load_jar_url){c->server_name, p, c->https};
        load_jar_set(vu->jar, h->headers[i].value.p, h->headers[i].value.n, &u,
                     epoch_ms(vu->w->eng));
    }
    free(p);
}

/* Artillery follows redirects (got's: 301, 302, 303, 307, 308 with a Location) unless the
 * request says followRedirect: false. The Location is kept for the next hop. */
static bool is_redirect(struct load_vu *vu, const struct http_response_head *h)
{
    const struct http_header *loc;
    int st = h->status;

    if (!vu->req->follow_redirect ||
        (st != 301 && st != 302 && st != 303 && st != 307 && st != 308))
        return false;
    if (!(loc = http_find_header(h->headers, h->num_headers, "Location")))
        return false;
    free(vu->location);
    vu->location = xstrndup(loc->value.p, loc->value.n);
    return true;
}

/* Header checks, header captures and X-Served-By: all while the head's slices are valid. */
static void on_head(struct load_vu *vu, struct load_conn *c, const struct http_response_head *h)
{
    const struct load_request *r = vu->req;
    const struct http_header *sb = http_find_header(h->headers, h->num_headers, "X-Served-By");
    json_t *headers = NULL; /* as Node gives them: made once for header captures and hooks */
    uint64_t now = uv_hrtime();

    c->status = h->status;
    load_expect_run_clear(&c->expect);
    store_cookies(vu, c, h);
    if ((c->redirect = is_redirect(vu, h)))
        goto served_by; /* checks, captures and hooks see the last response only */
    if (r->n_expects)
        load_expect_head(&c->expect, r, h, vu->vars, &vu->w->rng);
    if (r->n_captures) {
        if (!vu->found)
            vu->found = json_object();
        load_captures_head(r, h, &headers, vu->vars, &vu->w->rng, vu->found);
    }
    if (r->after.n) {
        json_decref(vu->res_headers);
        vu->res_headers = headers ? json_incref(headers) : load_node_headers(h);
    }
    json_decref(headers);
served_by:
    if (sb)
        load_record_served_by(vu->w, now, sb->value.p, sb->value.n < 128 ? sb->value.n : 128);
}

/* The request's captures into the user's variables; false when one failed the user. */
static bool captures(struct load_vu *vu, struct load_conn *c)
{
    const struct load_request *r = vu->req;
    bool ok;

    if (!r->n_captures)
        return true;
    if (!vu->found)
        vu->found = json_object();
    load_captures_body(r, &c->body, vu->vars, &vu->w->rng, vu->found);
    ok = load_captures_apply(r, vu->found, vu->vars, &vu->w->rng);
    json_object_clear(vu->found);
    return ok;
}

/*
 * After a response and its afterResponse hooks: the expect and capture verdicts. A failed check
 * fails the user only with reportFailuresAsErrors, as Artillery's plugin has it.
 */
static void response_next(struct load_vu *vu, bool expect_ok, bool capture_ok)
{
    const struct load_script *s = vu->w->eng->script;

    if (!expect_ok && s->expect_as_errors) {
        char *msg = xasprintf("Failed expectations for request %s%s", s->target,
                              vu->done_path ? vu->done_path : "");

        load_record_error(vu, msg);
        free(msg);
        FREE_NULL(vu->done_path);
        vu->req_done(vu, true);
        return;
    }
    FREE_NULL(vu->done_path);
    if (!capture_ok) {
        load_record_error(vu, "Failed capture or match");
        vu->req_done(vu, true);
        return;
    }
    vu->req_done(vu, false);
}

static void after_response(struct load_vu *vu, const struct load_request *r, json_t *res);

static void redirect_clear(struct load_vu *vu)
{
    FREE_NULL(vu->redirect_url);
    FREE_NULL(vu->location);
    vu->hops = 0;
    vu->redirect_get = false;
}

/* got's limit on the redirects of one request (maxRedirects). */
#define MAX_REDIRECTS 10

/*
 * A redirect that will be followed: counted as a response (its code and time, as each hop is
 * one in Artillery), then the next hop goes to its Location; the step is not over yet.
 */
static void follow_redirect(struct load_vu *vu, struct load_conn *c, uint64_t now, uint64_t us)
{
    struct str path = load_expect_path(c->wire, c->wire_len);
    int status = c->status;
    char *base;

    load_record_redirect(vu->w, c, now, us);
    base =
        xasprintf("%s://%s%.*s", c->https ? "https" : "http", c->host_header, (int)path.n, path.p);
    free(vu->redirect_url);
    vu->redirect_url = load_redirect_url(base, vu->location);
    free(base);
    /* got turns a 303 into a GET (without its body), and keeps the method of the others */
    vu->redirect_get |= status == 303;
    buf_reset(&c->body);
    conn_release(vu);
    vu->ready_ns = now;
    if (++vu->hops > MAX_REDIRECTS) {
        request_failed(vu, "ERR_TOO_MANY_REDIRECTS");
        return;
    }
    send_request(vu, false);
}

static void response_done(struct load_vu *vu, struct load_conn *c)
{
    const struct load_request *r = vu->req;
    uint64_t now = uv_hrtime();
    uint64_t us = (now - vu->ready_ns) / 1000;
    struct str path;
    bool expect_ok, capture_ok;
    int status = c->status;
    json_t *res = NULL;

    uv_timer_stop(&vu->timer);
    if (c->redirect) {
        follow_redirect(vu, c, now, us);
        return;
    }
    if (vu->location) /* the last hop of redirects */
        redirect_clear(vu);
    /* the plugin checks after the captures, which its templates may use */
    capture_ok = captures(vu, c);
    if (r->n_expects) {
        load_expect_body(&c->expect, r, &c->body, vu->vars, &vu->w->rng);
        load_expect_print(vu->w->eng->script, r, &c->expect, c->wire, c->wire_len, stdout);
    }
    expect_ok = c->expect.failed == 0;
    load_record_response(vu->w, r, c, now, us);
    if (!expect_ok && vu->w->eng->script->expect_as_errors) {
        path = load_expect_path(c->wire, c->wire_len);
        free(vu->done_path);
        vu->done_path = xstrndup(path.p, path.n);
    }
    load_expect_run_clear(&c->expect);
    if (r->after.n)
        res = load_hook_response(status, vu->res_headers, &c->body);
    buf_reset(&c->body);
    /* last: another user's request may take the connection at once */
    conn_release(vu);
    vu->req = NULL;
    vu->ready_ns = now;
    if (res) {
        vu->done_expect_ok = expect_ok;
        vu->done_capture_ok = capture_ok;
        after_response(vu, r, res);
        return;
    }
    json_decref(vu->params);
    vu->params = NULL;
    response_next(vu, expect_ok, capture_ok);
}

static void keep_body(struct load_vu *vu, struct load_conn *c, const char *p, size_t n)
{
    if (vu->req->needs_body && c->body.len + n <= LOAD_MAX_BODY)
        buf_append(&c->body, p, n);
    load_record_bytes(vu->w, n);
}

static int start_body(struct load_vu *vu, struct load_conn *c, const struct http_response_head *h)
{
    c->keep_alive = h->framing.keep_alive;
    c->chunked = c->until_close = false;
    c->body_left = 0;
    if (!http_response_has_body(h, strcmp(vu->req->method, "HEAD") == 0))
        return 0;
    if (h->framing.chunked) {
        c->chunked = true;
        c->dec = HTTP_CHUNKED_DECODER_INIT;
    } else if (h->framing.content_length >= 0) {
        c->body_left = h->framing.content_length;
    } else {
        c->until_close = true;
    }
    return 0;
}

/* Consumes what c->in holds; returns 1 when the response is complete, 0 for more, <0 bad. */
static int parse_input(struct load_vu *vu, struct load_conn *c)
{
    if (!c->head_done) {
        static __thread struct http_response_head head;
        struct http_limits lim = {.max_head_bytes = LOAD_MAX_HEAD};
        int n = http_parse_response(c->in.data, c->in.len, &lim, &head);

        if (n == HTTP_PARSE_INCOMPLETE)
            return 0;
        if (n < 0)
            return -1;
        if (head.status < 200) { /* 100 Continue and friends: skip */
            buf_consume(&c->in, (size_t)n);
            return parse_input(vu, c);
        }
        on_head(vu, c, &head);
        start_body(vu, c, &head);
        c->head_done = true;
        buf_consume(&c->in, (size_t)n);
    }
    if (c->chunked) {
        size_t len = c->in.len;
        ssize_t rc = http_decode_chunked(&c->dec, c->in.data, &len);

        if (rc == HTTP_PARSE_BAD)
            return -1;
        keep_body(vu, c, c->in.data, len);
        buf_reset(&c->in);
        return rc >= 0 ? 1 : 0;
    }
    if (c->until_close) {
        keep_body(vu, c, c->in.data, c->in.len);
        buf_reset(&c->in);
        return 0;
    }
    if (c->in.len) {
        size_t take = (uint64_t)c->body_left < c->in.len ? (size_t)c->body_left : c->in.len;

        keep_body(vu, c, c->in.data, take);
        c->body_left -= (int64_t)take;
        buf_consume(&c->in, take);
    }
    /* bytes past the response (nothing was pipelined) are dropped with the buffer */
    return c->body_left == 0 ? 1 : 0;
}

/*
 * A kept-alive connection that fails before any byte of the answer (EOF, reset, broken pipe)
 * was most likely closed by the server while idle: the request goes once more on a fresh
 * connection, as HTTP clients do. True when it did.
 */
static bool stale_reuse(struct load_vu *vu, struct load_conn *c)
{
    if (!vu->req || !c->used || c->got_byte)
        return false;
    conn_drop(vu);
    send_request(vu, true);
    return true;
}

/* The connection ended (EOF or an error): the end of a close-delimited body, or a failure. */
static void on_read_end(struct load_vu *vu, struct load_conn *c, int status)
{
    if (status == UV_EOF && c->until_close && c->head_done) {
        response_done(vu, c);
        return;
    }
    if (stale_reuse(vu, c))
        return;
    request_failed(vu, status == UV_EOF ? "ECONNRESET" : uv_err_name(status));
}

static void on_tls_write(uv_write_t *req, int status)
{
    struct tls_write *w = CONTAINER_OF(req, struct tls_write, req);
    struct load_conn *c = w->c;

    buf_free(&w->data);
    free(w);
    /* a closed connection cancels its writes before its close callback frees it */
    if (!c->vu || status == 0 || stale_reuse(c->vu, c))
        return;
    request_failed(c->vu, uv_err_name(status));
}

/* Writes the ciphertext the TLS engine has for the socket. 0 or a UV error. */
static int tls_flush(struct load_conn *c)
{
    struct tls_write *w = xcalloc(1, sizeof(*w));
    uv_buf_t b;
    int rc;

    if (tls_conn_take_output(c->tls, &w->data) == 0) {
        free(w);
        return 0;
    }
    w->c = c;
    b = uv_buf_init(w->data.data, (unsigned)w->data.len);
    rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_tls_write);
    if (rc < 0) {
        buf_free(&w->data);
        free(w);
    }
    return rc;
}

/*
 * Ciphertext in c->raw: decrypted into c->in. Returns 0, UV_EOF when the server closed the
 * session, UV_EPROTO for a failed handshake (a certificate that does not verify) or record.
 */
static int tls_input(struct load_conn *c)
{
    int rc = tls_conn_recv(c->tls, c->raw.data, c->raw.len, &c->in);

    buf_reset(&c->raw);
    if (rc == TLS_ERR_PROTO) {
        log_debug("mesh load: tls: %s", tls_conn_error(c->tls));
        return UV_EPROTO;
    }
    if (tls_flush(c) < 0)
        return UV_EPIPE;
    return rc == TLS_CLOSED ? UV_EOF : 0;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct load_conn *c = CONTAINER_OF((uv_tcp_t *)s, struct load_conn, tcp);
    struct load_vu *vu = c->vu;
    size_t before = c->in.len;
    int rc;

    (void)b;
    if (nread == 0)
        return;
    if (!vu) {
        idle_read(c, nread);
        return;
    }
    if (nread < 0) {
        on_read_end(vu, c, (int)nread);
        return;
    }
    if (c->tls) {
        c->raw.len += (size_t)nread;
        rc = tls_input(c);
        if (rc == UV_EPROTO) {
            request_failed(vu, "EPROTO");
            return;
        }
        if (rc < 0 && c->in.len == before) {
            on_read_end(vu, c, rc);
            return;
        }
        if (!c->tls_ns && c->connected_ns && tls_conn_handshake_done(c->tls))
            c->tls_ns = uv_hrtime();
        if (c->in.len == before) /* handshake or session tickets: no plaintext yet */
            return;
    } else {
        c->in.len += (size_t)nread;
    }
    c->in.data[c->in.len] = '\0';
    c->got_byte = true;
    rc = parse_input(vu, c);
    if (rc < 0)
        request_failed(vu, "EPROTO");
    else if (rc > 0)
        response_done(vu, c);
}

static void idle_read(struct load_conn *c, ssize_t nread)
{
    struct load_agent *a = c->agent;

    if (!a) /* closing */
        return;
    if (nread > 0 && c->tls) { /* session tickets and the like carry no plaintext */
        size_t before = c->in.len;

        c->raw.len += (size_t)nread;
        if (tls_input(c) == 0 && c->in.len == before)
            return;
    }
    load_conn_close(c);
    agent_wake(a);
}

static void on_write(uv_write_t *req, int status)
{
    struct load_conn *c = CONTAINER_OF(req, struct load_conn, wreq);

    if (!c->vu || status == 0 || stale_reuse(c->vu, c))
        return;
    request_failed(c->vu, uv_err_name(status));
}

static void write_request(struct load_vu *vu, struct load_conn *c)
{
    uv_buf_t b = uv_buf_init((char *)c->wire, (unsigned)c->wire_len);
    int rc;

    c->got_byte = false;
    c->head_done = false;
    if (vu->w->eng->script->extended_metrics)
        c->sent_ns = uv_hrtime();
    buf_reset(&c->in);
    if (c->tls) {
        rc = tls_conn_write(c->tls, c->wire, c->wire_len) < 0 ? UV_EPROTO : tls_flush(c);
    } else {
        rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    }
    if (rc < 0)
        request_failed(vu, uv_err_name(rc));
}

static void on_connect(uv_connect_t *req, int status)
{
    struct load_conn *c = CONTAINER_OF(req, struct load_conn, creq);
    struct load_vu *vu = c->vu;
    int rc;

    if (!vu)
        return;
    if (status < 0) {
        request_failed(vu, uv_err_name(status));
        return;
    }
    c->connected = true;
    c->connected_ns = uv_hrtime();
    uv_tcp_nodelay(&c->tcp, 1);
    if (c->https)
        c->tls = tls_conn_new(vu->w->eng->tls, c->server_name);
    if ((rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read)) < 0) {
        request_failed(vu, uv_err_name(rc));
        return;
    }
    write_request(vu, c);
}

/* ---- requests ---------------------------------------------------------------------------- */

/* Artillery's agent closes a socket silent this long when http.timeout is not set. */
#define SOCKET_FLOOR_MS 8000

static uint64_t request_timer_ms(const struct load_script *s)
{
    if (!s->timeout_set && s->timeout_ms > SOCKET_FLOOR_MS)
        return SOCKET_FLOOR_MS;
    return (uint64_t)s->timeout_ms;
}

/* The VU's timer, while its request is in flight. */
static void on_timeout(uv_timer_t *t)
{
    struct load_vu *vu = CONTAINER_OF(t, struct load_vu, timer);
    const struct load_script *s = vu->w->eng->script;

    if (MESH_BUG_ON(!vu->req)) /* stopped at each request's end */
        return;
    /* Without http.timeout, Artillery's keep-alive agent gives up on a socket that has been
     * silent for 8 s (ERR_SOCKET_TIMEOUT), before the 10 s request timeout (ETIMEDOUT). */
    if (!s->timeout_set && !vu->socket_checked) {
        vu->socket_checked = true;
        if (!vu->conn || !vu->conn->got_byte) {
            request_failed(vu, "ERR_SOCKET_TIMEOUT");
            return;
        }
        uv_timer_start(&vu->timer, on_timeout, (uint64_t)(s->timeout_ms - SOCKET_FLOOR_MS), 0);
        return;
    }
    request_failed(vu, "ETIMEDOUT");
}

/* The request as this hop sends it: a redirect's next hop has the Location's URL (never
 * rendered: it comes from the server), no query parameters of its own, and after a 303 is a GET
 * without a body. */
static const struct load_request *
redirect_request(const struct load_vu *vu, const struct load_request *r, struct load_request *tmp)
{
    *tmp = *r;
    tmp->wire = NULL;
    tmp->n_qs = 0;
    tmp->n_cookies = 0;
    if (vu->redirect_get && strcmp(r->method, "HEAD") != 0) {
        tmp->method = (char *)"GET";
        tmp->json = NULL;
        tmp->body = NULL;
        tmp->n_form = 0;
    }
    return tmp;
}

/* The request's cookie values into the jar, then the Cookie header for where it goes. */
static void request_cookies(struct load_vu *vu, const struct load_request *r,
                            const struct load_dest *d, const char *path, struct buf *out)
{
    struct load_jar_url u = {d->host, path, d->https};
    int64_t now = epoch_ms(vu->w->eng);

    for (size_t i = 0; i < r->n_cookies; i++) {
        struct buf line = BUF_INIT;

        buf_printf(&line, "%s=", r->cookies[i].name);
        load_tmpl_render(&line, r->cookies[i].value, vu->vars, &vu->w->rng);
        load_jar_set(vu->jar, line.data, line.len, &u, now);
        buf_free(&line);
    }
    if (vu->jar->n)
        load_jar_header(vu->jar, &u, now, out);
}

/*
 * Builds the request's bytes and sends them on a connection of the VU's agent, or leaves the
 * request waiting for one (agent_wake calls again). A retry (stale keep-alive connection) is not
 * counted as a second request. The timeout runs from the send, as got's does, not while waiting.
 */
static void send_request(struct load_vu *vu, bool retry)
{
    struct load_request hooked, hop;
    struct load_kv *hooked_headers = NULL;
    const struct load_request *r = vu->req;
    struct load_dest dest, *d = &dest;
    struct load_conn *c = NULL;
    struct buf url = BUF_INIT, pathbuf = BUF_INIT, cookie = BUF_INIT;
    const char *path = NULL, *bad = NULL;
    int rc = 0;

    MESH_BUG_ON(vu->conn); /* given back at the end of each response */
    if (vu->params) {
        load_hook_request(vu->req, vu->params, &hooked, &hooked_headers);
        r = &hooked;
    }
    if (vu->redirect_url)
        r = redirect_request(vu, r, &hop);
    if (r->wire && vu->jar->n == 0) {
        *d = vu->w->eng->target.dest;
    } else {
        if (vu->redirect_url)
            buf_append_cstr(&url, vu->redirect_url);
        else
            load_tmpl_render(&url, r->url, vu->vars, &vu->w->rng);
        rc = load_request_dest(&vu->w->eng->target, url.data ? url.data : "/", d, &path, &pathbuf);
        if (rc == 0)
            request_cookies(vu, r, d, path, &cookie);
    }
    if (rc == 0 && !vu->conn && !(vu->conn = load_agent_take(vu->agent, vu, d, &vu->w->loop)))
        vu->queued_retry = retry;
    if (rc == 0 && (c = vu->conn) != NULL) {
        if (r->wire && vu->jar->n == 0) {
            c->wire = r->wire;
            c->wire_len = r->wire_len;
        } else {
            buf_reset(&c->out);
            bad = load_request_append(&c->out, r, path, d->host_header, cookie.data, vu->vars,
                                      &vu->w->rng);
            c->wire = c->out.data;
            c->wire_len = c->out.len;
        }
    }
    if (hooked_headers)
        load_hook_request_free(&hooked, hooked_headers);
    buf_free(&url);
    buf_free(&pathbuf);
    buf_free(&cookie);
    if (rc != 0 || bad) { /* rc is 0, -1 or -2 (load_request_dest) */
        request_failed(vu, rc == -2 ? "ENOTFOUND" : rc != 0 ? "EINVALIDURL" : bad);
        return;
    }
    if (!c)
        return; /* waiting for a connection */
    vu->socket_checked = false;
    uv_timer_start(&vu->timer, on_timeout, request_timer_ms(vu->w->eng->script), 0);
    if (!retry)
        load_record_request(vu->w);
    if (c->connected) {
        write_request(vu, c);
        return;
    }
    c->connect_ns = uv_hrtime();
    rc = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&c->addr, on_connect);
    if (rc < 0)
        request_failed(vu, uv_err_name(rc));
}

/* ---- processor hooks ---------------------------------------------------------------------- */

/* A hook's error ends the step, and the user, as a failed request does. */
static void hook_failed(struct load_vu *vu)
{
    vu->req = NULL;
    json_decref(vu->params);
    vu->params = NULL;
    vu->req_done(vu, true);
}

static void on_before_reply(void *data, const json_t *reply)
{
    struct load_vu *vu = data;
    json_t *req = json_object_get(reply, "req");

    if (!load_hook_reply(vu, reply)) {
        hook_failed(vu);
        return;
    }
    if (json_is_object(req)) {
        json_decref(vu->params);
        vu->params = json_incref(req);
    }
    send_request(vu, false);
}

static void on_after_reply(void *data, const json_t *reply)
{
    struct load_vu *vu = data;

    if (!load_hook_reply(vu, reply)) {
        hook_failed(vu);
        return;
    }
    json_decref(vu->params);
    vu->params = NULL;
    response_next(vu, vu->done_expect_ok, vu->done_capture_ok);
}

/* vu->req's beforeRequest hooks; the request goes when they answer. */
static void before_request(struct load_vu *vu)
{
    json_t *msg = load_hook_msg(vu, "request", load_hook_names(&vu->req->before));

    json_decref(vu->params);
    vu->params = load_hook_params(vu, vu->req);
    json_object_set(msg, "req", vu->params);
    vu->call = load_proc_call(vu->w->proc, msg, on_before_reply, vu);
}

static void after_response(struct load_vu *vu, const struct load_request *r, json_t *res)
{
    json_t *msg = load_hook_msg(vu, "response", load_hook_names(&r->after));

    json_object_set_new(msg, "req", vu->params ? json_incref(vu->params) : load_hook_params(vu, r));
    json_object_set_new(msg, "res", res);
    vu->call = load_proc_call(vu->w->proc, msg, on_after_reply, vu);
}

/* ---- the step ------------------------------------------------------------------------------ */

void load_exchange_start(struct load_vu *vu, const struct load_request *r,
                         void (*done)(struct load_vu *vu, bool failed))
{
    vu->req = r;
    vu->req_done = done;
    if (r->before.n)
        before_request(vu);
    else
        send_request(vu, false);
}

void load_exchange_drop(struct load_vu *vu)
{
    conn_drop(vu);
}

void load_exchange_free(struct load_vu *vu)
{
    redirect_clear(vu);
    json_decref(vu->found);
    json_decref(vu->params);
    json_decref(vu->res_headers);
    free(vu->done_path);
}
