/*
 * A virtual user: walks its scenario's flow (requests, think, loop, log) over the keep-alive
 * connections of its agent (agent.c): one of its own, as Artillery gives each VU an agent of one
 * socket, or with config.http.pool the worker's shared ones. A request's latency runs
 * from the instant it was due (the scheduled arrival for the first, the end of the previous
 * step after that) to its last response byte, so a generator that falls behind shows up as
 * latency rather than as fewer requests.
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
#include "lib/uuid.h"
#include "load/engine_internal.h"
#include "load/capture.h"
#include "load/cookies.h"
#include "load/expect.h"
#include "load/filtrex.h"
#include "load/template.h"

/* One ciphertext write in flight (TLS sends handshake records and data as they come). */
struct tls_write {
    uv_write_t req;
    struct load_conn *c;
    struct buf data;
};

static void vu_next(struct load_vu *vu);
static void vu_end(struct load_vu *vu, bool failed);
static void send_request(struct load_vu *vu, bool retry);

/* ---- recording --------------------------------------------------------------------------- */

#define STATS_LOCKED(w, now, sec, body)                                                            \
    do {                                                                                           \
        struct load_stats *st_ = &(w)->stats;                                                      \
        uv_mutex_lock(&st_->lock);                                                                 \
        struct load_sec *sec = load_stats_at(st_, load_sec_index((w)->eng, (now)));                \
        load_sec_touch(sec, (now));                                                                \
        body;                                                                                      \
        uv_mutex_unlock(&st_->lock);                                                               \
    } while (0)

/* Distinct endpoint counters a second keeps (codes and errors come from the peer). */
#define ENDPOINT_COUNTS_MAX 4096

/* metrics-by-endpoint: "<endpoint>.codes.200" and the response time, or "<endpoint>.errors.X". */
static void endpoint_record(struct load_sec *sec, const struct load_request *r, const char *what,
                            int status, const char *code, uint64_t us)
{
    char name[512];
    int n = code ? snprintf(name, sizeof(name), "%s%s.%s", r->endpoint_counters, what, code)
                 : snprintf(name, sizeof(name), "%s%s.%d", r->endpoint_counters, what, status);

    if (n > 0 && (size_t)n < sizeof(name))
        load_counts_add(&sec->user, name, (size_t)n, 1, ENDPOINT_COUNTS_MAX);
    if (!code)
        load_hists_record(&sec->hists, r->endpoint_rt, us, SIZE_MAX);
}

/* A check the plugin counts under a name of its own ("header x-id values equals"). */
static void expect_named_record(struct load_sec *sec, const struct load_expect_run *run, size_t i,
                                bool failed)
{
    const char *type = json_string_value(json_object_get(json_array_get(run->results, i), "type"));
    char name[512];
    int n = snprintf(name, sizeof(name), "plugins.expect.%s.%s", failed ? "failed" : "ok",
                     type ? type : "");

    if (n > 0 && (size_t)n < sizeof(name))
        load_counts_add(&sec->user, name, (size_t)n, 1, ENDPOINT_COUNTS_MAX);
}

static void record_error(struct load_vu *vu, const char *code)
{
    uint64_t now = uv_hrtime();

    STATS_LOCKED(vu->w, now, sec,
                 load_counts_add(&sec->errors, code, strlen(code), 1, LOAD_COUNTS_MAX));
    if (vu->w->hook) { /* the last one is what failed a before or after flow */
        free(vu->w->hook_error);
        vu->w->hook_error = xstrdup(code);
    }
}

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

/* The request failed: count the error, and the VU fails (Artillery ends the VU). */
static void redirect_clear(struct load_vu *vu);

static void request_failed(struct load_vu *vu, const char *code)
{
    uv_timer_stop(&vu->timer);
    redirect_clear(vu);
    record_error(vu, code);
    if (vu->req && vu->req->endpoint_rt) {
        uint64_t now = uv_hrtime();

        STATS_LOCKED(vu->w, now, sec, endpoint_record(sec, vu->req, "errors", 0, code, 0));
    }
    conn_drop(vu);
    vu->req = NULL;
    json_decref(vu->params);
    vu->params = NULL;
    vu_end(vu, true);
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

/* The response's headers as Node gives them: lower-case names, repeats joined by ", ". */
static void collect_headers(struct load_vu *vu, const struct http_response_head *h)
{
    json_decref(vu->res_headers);
    vu->res_headers = json_object();
    for (size_t i = 0; i < h->num_headers; i++) {
        char name[128];
        size_t n =
            h->headers[i].name.n < sizeof(name) - 1 ? h->headers[i].name.n : sizeof(name) - 1;
        const json_t *prev;
        json_t *v;

        for (size_t k = 0; k < n; k++)
            name[k] = (char)tolower((unsigned char)h->headers[i].name.p[k]);
        name[n] = '\0';
        v = json_stringn_nocheck(h->headers[i].value.p, h->headers[i].value.n);
        prev = json_object_get(vu->res_headers, name);
        if (prev) {
            char *joined = xasprintf("%s, %s", json_string_value(prev), json_string_value(v));

            json_decref(v);
            v = json_string_nocheck(joined);
            free(joined);
        }
        json_object_set_new_nocheck(vu->res_headers, name, v);
    }
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
        load_captures_head(r, h, vu->found);
    }
    if (r->after.n)
        collect_headers(vu, h);
served_by:
    if (sb) {
        size_t n = sb->value.n < 128 ? sb->value.n : 128;

        STATS_LOCKED(vu->w, now, sec,
                     load_counts_add(&sec->served_by, sb->value.p, n, 1, LOAD_COUNTS_MAX));
    }
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
    load_captures_body(r, &c->body, vu->found);
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

        record_error(vu, msg);
        free(msg);
        FREE_NULL(vu->done_path);
        vu_end(vu, true);
        return;
    }
    FREE_NULL(vu->done_path);
    if (!capture_ok) {
        record_error(vu, "Failed capture or match");
        vu_end(vu, true);
        return;
    }
    vu_next(vu);
}

static void after_response(struct load_vu *vu, const struct load_request *r, json_t *res);

/* Artillery's response time summaries by status class. */
static const char *const rt_class[] = {"http.response_time.2xx", "http.response_time.3xx",
                                       "http.response_time.4xx", "http.response_time.5xx"};

/* http.extendedMetrics, as Artillery records them per response: the phases of a connection
 * made for this request (0 for one reused, and for the name lookup, done once at start), and
 * the time from the send to the last byte. */
static void extended_record(struct load_sec *sec, struct load_conn *c, uint64_t now)
{
    bool fresh = c->connected_ns != 0;

    load_hists_record(&sec->hists, "http.dns", 0, SIZE_MAX);
    load_hists_record(&sec->hists, "http.tcp", fresh ? (c->connected_ns - c->connect_ns) / 1000 : 0,
                      SIZE_MAX);
    if (c->https)
        load_hists_record(&sec->hists, "http.tls",
                          fresh && c->tls_ns ? (c->tls_ns - c->connected_ns) / 1000 : 0, SIZE_MAX);
    load_hists_record(&sec->hists, "http.total", c->sent_ns ? (now - c->sent_ns) / 1000 : 0,
                      SIZE_MAX);
    c->connected_ns = c->tls_ns = 0;
}

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

    STATS_LOCKED(vu->w, now, sec, {
        sec->responses++;
        sec->codes[status]++;
        histogram_record(&sec->rt, us);
        load_hists_record(&sec->hists, rt_class[1], us, SIZE_MAX);
        if (vu->w->eng->script->extended_metrics)
            extended_record(sec, c, now);
    });
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
    STATS_LOCKED(vu->w, now, sec, {
        sec->responses++;
        sec->codes[status < LOAD_CODES ? status : 0]++;
        histogram_record(&sec->rt, us);
        if (r->endpoint_rt)
            endpoint_record(sec, r, "codes", status, NULL, us);
        if (status >= 200 && status < 600)
            load_hists_record(&sec->hists, rt_class[status / 100 - 2], us, SIZE_MAX);
        if (vu->w->eng->script->extended_metrics)
            extended_record(sec, c, now);
        for (size_t i = 0; i < r->n_expects; i++) {
            bool failed = c->expect.failed & (1u << i);

            if (failed)
                sec->expect_failed[r->expects[i].kind]++;
            else
                sec->expect_ok[r->expects[i].kind]++;
            if (r->expects[i].kind == LOAD_EXPECT_HEADER_EQUALS)
                expect_named_record(sec, &c->expect, i, failed);
        }
    });
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
    uint64_t now = uv_hrtime();

    if (vu->req->needs_body && c->body.len + n <= LOAD_MAX_BODY)
        buf_append(&c->body, p, n);
    STATS_LOCKED(vu->w, now, sec, sec->bytes += n);
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
        struct http_limits lim = {LOAD_MAX_HEAD, 0};
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

static void on_timeout(uv_timer_t *t)
{
    struct load_vu *vu = CONTAINER_OF(t, struct load_vu, timer);
    const struct load_script *s = vu->w->eng->script;

    /* Without http.timeout, Artillery's keep-alive agent gives up on a socket that has been
     * silent for 8 s (ERR_SOCKET_TIMEOUT), before the 10 s request timeout (ETIMEDOUT). */
    if (vu->req && !s->timeout_set && !vu->socket_checked) {
        vu->socket_checked = true;
        if (!vu->conn || !vu->conn->got_byte) {
            request_failed(vu, "ERR_SOCKET_TIMEOUT");
            return;
        }
        uv_timer_start(&vu->timer, on_timeout, (uint64_t)(s->timeout_ms - SOCKET_FLOOR_MS), 0);
        return;
    }
    if (vu->req) {
        request_failed(vu, "ETIMEDOUT");
        return;
    }
    /* Think time over: the next request's response time starts now, not at the last answer. */
    vu->ready_ns = uv_hrtime();
    vu_next(vu);
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
    if (!retry) {
        uint64_t now = uv_hrtime();

        STATS_LOCKED(vu->w, now, sec, sec->requests++);
    }
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

static json_t *hook_msg(struct load_vu *vu, const char *kind, json_t *fns)
{
    return json_pack("{s:s,s:I,s:o,s:O,s:s}", "kind", kind, "vu", (json_int_t)vu->uid, "fns", fns,
                     "vars", vu->vars, "scenario", vu->sc->name);
}

static json_t *hook_names(const struct load_hooks *h)
{
    json_t *a = json_array();

    for (size_t i = 0; i < h->n; i++)
        json_array_append_new(a, json_string(h->names[i]));
    return a;
}

/*
 * What every reply brings: the VU's vars as the functions left them, or their error, which
 * fails the VU as Artillery fails it (errors.<code or message>). False when the VU ended.
 */
static bool hook_done(struct load_vu *vu, const json_t *reply)
{
    json_t *vars = json_object_get(reply, "vars");
    const json_t *err = json_object_get(reply, "error");

    vu->call = 0;
    vu->ready_ns = uv_hrtime(); /* a function's time is not the next request's latency */
    if (json_is_object(vars)) { /* in place: a parallel step's branches share the object */
        json_object_clear(vu->vars);
        json_object_update(vu->vars, vars);
    }
    if (!err)
        return true;
    record_error(vu, json_is_string(err) ? json_string_value(err) : "processor error");
    vu->req = NULL;
    json_decref(vu->params);
    vu->params = NULL;
    vu_end(vu, true);
    return false;
}

static void on_function_reply(void *data, const json_t *reply)
{
    struct load_vu *vu = data;

    if (hook_done(vu, reply))
        vu_next(vu);
}

static void on_before_reply(void *data, const json_t *reply)
{
    struct load_vu *vu = data;
    json_t *req = json_object_get(reply, "req");

    if (!hook_done(vu, reply))
        return;
    if (json_is_object(req)) {
        json_decref(vu->params);
        vu->params = json_incref(req);
    }
    send_request(vu, false);
}

static void on_after_reply(void *data, const json_t *reply)
{
    struct load_vu *vu = data;

    if (!hook_done(vu, reply))
        return;
    json_decref(vu->params);
    vu->params = NULL;
    response_next(vu, vu->done_expect_ok, vu->done_capture_ok);
}

/* vu->req's beforeRequest hooks; the request goes when they answer. */
static void before_request(struct load_vu *vu)
{
    json_t *msg = hook_msg(vu, "request", hook_names(&vu->req->before));

    json_decref(vu->params);
    vu->params = load_hook_params(vu, vu->req);
    json_object_set(msg, "req", vu->params);
    vu->call = load_proc_call(vu->w->proc, msg, on_before_reply, vu);
}

static void after_response(struct load_vu *vu, const struct load_request *r, json_t *res)
{
    json_t *msg = hook_msg(vu, "response", hook_names(&r->after));

    json_object_set_new(msg, "req", vu->params ? json_incref(vu->params) : load_hook_params(vu, r));
    json_object_set_new(msg, "res", res);
    vu->call = load_proc_call(vu->w->proc, msg, on_after_reply, vu);
}

/* A function step; false when it had nothing to call (the processor lacks it). */
static bool run_function(struct load_vu *vu, const struct load_step *st)
{
    char err[300];

    if (st->fn_missing) { /* Artillery counts it and goes on */
        snprintf(err, sizeof(err), "Undefined function \"%s\"", st->fn);
        record_error(vu, err);
        return false;
    }
    vu->call = load_proc_call(vu->w->proc, hook_msg(vu, "function", json_pack("[s]", st->fn)),
                              on_function_reply, vu);
    return true;
}

/* ---- flow -------------------------------------------------------------------------------- */

static void run_log(struct load_vu *vu, const char *tmpl)
{
    struct buf b = BUF_INIT;

    load_tmpl_render(&b, tmpl, vu->vars, &vu->w->rng);
    fprintf(stdout, "%s\n", b.data ? b.data : "");
    buf_free(&b);
}

static void frame_pop(struct load_vu *vu)
{
    struct load_frame *f = &vu->stack[--vu->depth];

    json_decref(f->over);
    f->over = NULL;
}

static void frames_clear(struct load_vu *vu)
{
    while (vu->depth > 0)
        frame_pop(vu);
}

static void frame_push_flow(struct load_vu *vu)
{
    frames_clear(vu);
    vu->stack[0] = (struct load_frame){.steps = vu->sc->steps, .n = vu->sc->n_steps, .count = 1};
    vu->depth = 1;
}

/* A loop's variables for pass f->iter: $loopCount and $loopElement (or their new names). */
static void loop_vars(struct load_vu *vu, const struct load_frame *f)
{
    const struct load_step *st = f->loop;

    json_object_set_new(vu->vars, st->loop_value, json_integer(f->iter));
    if (!f->over)
        json_object_set_new(vu->vars, st->loop_element, json_integer(f->iter));
    else if ((size_t)f->iter < json_array_size(f->over)) /* over: [a, "{{ b }}"] renders b */
        json_object_set_new(
            vu->vars, st->loop_element,
            load_tmpl_json(json_array_get(f->over, (size_t)f->iter), vu->vars, &vu->w->rng));
    else
        json_object_del(vu->vars, st->loop_element);
}

/* Whether loop f makes pass f->iter (whileTrue asks after each pass, not here). */
static bool loop_test(const struct load_frame *f)
{
    if (f->loop->while_fn)
        return true;
    if (f->loop->over || f->loop->over_var)
        return f->over && (size_t)f->iter < json_array_size(f->over);
    return f->count < 0 || f->iter < f->count;
}

/* Enters loop st as Artillery's createLoopWithCount does; false when it makes no pass. */
static bool loop_enter(struct load_vu *vu, const struct load_step *st)
{
    struct load_frame *f;

    if (vu->depth >= LOAD_MAX_LOOP_NEST || st->n_steps == 0)
        return false;
    f = &vu->stack[vu->depth++];
    *f = (struct load_frame){.loop = st,
                             .steps = st->steps,
                             .n = st->n_steps,
                             .iter = st->count_from,
                             .count = st->count};
    if (st->count_tmpl) { /* a count that does not read as one makes no pass, as in Artillery */
        struct buf b = BUF_INIT;

        load_tmpl_render(&b, st->count_tmpl, vu->vars, &vu->w->rng);
        if (load_loop_count(b.data ? b.data : "", &f->iter, &f->count) < 0)
            f->iter = f->count = 0;
        buf_free(&b);
    }
    if (st->over) {
        f->over = json_incref(st->over);
    } else if (st->over_var) {
        json_t *v = (json_t *)load_vars_get(vu->vars, st->over_var);

        f->over = json_is_array(v) ? json_incref(v) : NULL;
    }
    loop_vars(vu, f);
    if (loop_test(f))
        return true;
    frame_pop(vu);
    return false;
}

static void on_while_reply(void *data, const json_t *reply);

/*
 * A loop's pass ended: the next one, or the end of the loop (popped). False when whileTrue was
 * asked: its reply goes on.
 */
static bool loop_next(struct load_vu *vu, struct load_frame *f)
{
    f->iter++;
    loop_vars(vu, f);
    if (f->loop->while_fn) {
        vu->call =
            load_proc_call(vu->w->proc, hook_msg(vu, "while", json_pack("[s]", f->loop->while_fn)),
                           on_while_reply, vu);
        return false;
    }
    f->idx = 0;
    if (!loop_test(f))
        frame_pop(vu);
    return true;
}

static void on_while_reply(void *data, const json_t *reply)
{
    struct load_vu *vu = data;

    if (!hook_done(vu, reply))
        return;
    if (json_is_true(json_object_get(reply, "result")))
        vu->stack[vu->depth - 1].idx = 0;
    else
        frame_pop(vu);
    vu_next(vu);
}

/* The next step to run, advancing through loops; NULL at the end of the flow or when a
 * whileTrue function was asked (vu->call). */
static const struct load_step *next_step(struct load_vu *vu)
{
    while (vu->depth > 0) {
        struct load_frame *f = &vu->stack[vu->depth - 1];

        if (f->idx < f->n)
            return &f->steps[f->idx++];
        if (!f->loop) {
            frame_pop(vu);
        } else if (!loop_next(vu, f)) {
            return NULL;
        }
    }
    return NULL;
}

/* A request step's ifTrue: false when the request is skipped, or when a function was asked. */
static const json_t *lookup_var(void *data, const char *name)
{
    return json_object_get(data, name);
}

static void on_if_reply(void *data, const json_t *reply);

static bool if_true(struct load_vu *vu, const struct load_request *r, bool *asked)
{
    struct err e;
    bool t = true;
    double n;

    *asked = false;
    if (r->if_true_fn) {
        vu->req = r;
        vu->call = load_proc_call(
            vu->w->proc, hook_msg(vu, "condition", json_pack("[s]", r->if_true)), on_if_reply, vu);
        *asked = true;
        return false;
    }
    /* an expression that fails at run time lets the request go, as in Artillery */
    if (load_fx_eval(r->if_true, lookup_var, vu->vars, &t, &n, &e) < 0)
        return true;
    return t;
}

static void start_request(struct load_vu *vu, const struct load_request *r)
{
    vu->req = r;
    if (r->before.n)
        before_request(vu);
    else
        send_request(vu, false);
}

static void on_if_reply(void *data, const json_t *reply)
{
    struct load_vu *vu = data;
    const struct load_request *r = vu->req;

    vu->req = NULL;
    if (!hook_done(vu, reply))
        return;
    if (json_is_true(json_object_get(reply, "result")))
        start_request(vu, r);
    else
        vu_next(vu);
}

/*
 * A think step: its time, rendered from the user's variables when it is a template. One that
 * does not read as a duration fails the user, as Artillery's think throws: with the ms
 * package's words for nothing at all (an unset variable), else naming what it read.
 */
static void think(struct load_vu *vu, const struct load_step *st)
{
    struct buf text = BUF_INIT, code = BUF_INIT;
    int64_t ms = st->think_ms;

    if (st->think_tmpl) {
        load_tmpl_render(&text, st->think_tmpl, vu->vars, &vu->w->rng);
        if (text.len == 0)
            buf_append_cstr(&code, "val is not a non-empty string or a valid number. "
                                   "val=undefined");
        else if (load_duration_ms(text.data, &ms) < 0)
            buf_printf(&code, "Invalid think time: %s", text.data);
    }
    if (code.len) {
        record_error(vu, code.data);
        vu_end(vu, true);
    } else {
        ms = load_think_jitter(vu->w->eng->script, ms,
                               (double)(load_rand(&vu->w->rng) >> 11) / 9007199254740992.0);
        uv_timer_start(&vu->timer, on_timeout, (uint64_t)ms, 0);
    }
    buf_free(&text);
    buf_free(&code);
}

/* ---- parallel ---------------------------------------------------------------------------- */

/* How many of a parallel step's branches run at once: async's parallelLimit as Artillery calls
 * it (its schema leaves no room for the step's own `limit`). */
#define PARALLEL_LIMIT 100

static void vu_unlink_close(struct load_vu *vu);

/* Starts the parallel step's next step as a branch of vu, on the next loop turn (so a branch
 * that ends at once does not end inside the loop that starts them). */
static void branch_start(struct load_vu *vu)
{
    struct load_vu *b = xcalloc(1, sizeof(*b));
    const struct load_step *st = &vu->par->steps[vu->par_next++];

    b->w = vu->w;
    b->sc = vu->sc;
    b->parent = vu;
    b->uid = vu->uid; /* the processor's context is the user's */
    b->vars = json_incref(vu->vars);
    b->jar = vu->jar;
    b->agent = vu->agent;
    load_agent_init(&b->own, 0);
    list_init(&b->branches);
    b->start_ns = b->ready_ns = vu->ready_ns;
    b->stack[0] = (struct load_frame){.steps = st, .n = 1, .count = 1};
    b->depth = 1;
    uv_timer_init(&vu->w->loop, &b->timer);
    list_insert_tail(&vu->branches, &b->branch_link);
    uv_timer_start(&b->timer, on_timeout, 0, 0);
}

/* Runs parallel step st; false when it has no steps. */
static bool parallel_start(struct load_vu *vu, const struct load_step *st)
{
    if (st->n_steps == 0)
        return false;
    vu->par = st;
    vu->par_next = 0;
    while (vu->par_next < st->n_steps && vu->par_next < PARALLEL_LIMIT)
        branch_start(vu);
    return true;
}

/* Ends vu's branches (vu failed or stops): what they have in flight is abandoned. */
static void branches_abort(struct load_vu *vu)
{
    struct load_vu *b;

    /* none may take a connection another gives back on its way out */
    LIST_FOR_EACH(b, &vu->branches, branch_link)
        load_agent_unqueue(b);
    while (!list_empty(&vu->branches)) {
        b = LIST_ENTRY(list_first(&vu->branches), struct load_vu, branch_link);
        uv_timer_stop(&b->timer);
        vu_unlink_close(b);
    }
    vu->par = NULL;
}

/*
 * Branch b's step ended. As async's parallel, the first failure fails the step, and so the
 * user; when every branch has ended, the user goes on with the step after the parallel one.
 */
static void branch_end(struct load_vu *b, bool failed)
{
    struct load_vu *vu = b->parent;

    if (failed) { /* ends b with its siblings */
        vu_end(vu, true);
        return;
    }
    vu_unlink_close(b);
    if (vu->par_next < vu->par->n_steps) {
        branch_start(vu);
    } else if (list_empty(&vu->branches)) {
        vu->par = NULL;
        vu->ready_ns = uv_hrtime();
        vu_next(vu);
    }
}

/* ---- the flow's walk --------------------------------------------------------------------- */

static void vu_next(struct load_vu *vu)
{
    const struct load_step *st;
    bool after_failure = vu->depth == 0; /* pool mode: vu_end emptied the stack */
    bool asked;

    while (!vu->w->stopping && (st = next_step(vu)) != NULL) {
        switch (st->kind) {
        case LOAD_STEP_REQUEST:
            if (vu->pool && uv_hrtime() >= vu->w->eng->pool_deadline_ns)
                goto done;
            if (st->req.if_true && !if_true(vu, &st->req, &asked)) {
                if (asked)
                    return;
                break;
            }
            start_request(vu, &st->req);
            return;
        case LOAD_STEP_FUNCTION:
            if (run_function(vu, st))
                return;
            break;
        case LOAD_STEP_THINK:
            think(vu, st);
            return;
        case LOAD_STEP_LOG:
            run_log(vu, st->log);
            break;
        case LOAD_STEP_LOOP:
            loop_enter(vu, st);
            break;
        case LOAD_STEP_PARALLEL:
            if (parallel_start(vu, st))
                return;
            break;
        }
    }
    if (vu->call) /* whileTrue was asked */
        return;
    /* pool mode: a connection runs the flow again and again until the deadline */
    if (vu->pool && !vu->w->stopping && uv_hrtime() < vu->w->eng->pool_deadline_ns &&
        vu->sc->n_steps > 0) {
        if (!after_failure)
            vu->failed = false; /* the flow ran to its end */
        frame_push_flow(vu);
        vu->ready_ns = uv_hrtime();
        vu_next(vu);
        return;
    }
done:
    /* a pool connection whose last flow failed ends failed, even when the deadline came
     * between the failure and the flow's restart */
    vu_end(vu, vu->pool && vu->failed);
}

static void vu_close_cb(uv_handle_t *h)
{
    struct load_vu *vu = CONTAINER_OF((uv_timer_t *)h, struct load_vu, timer);
    struct load_worker *w = vu->w;

    frames_clear(vu);
    redirect_clear(vu);
    load_jar_free(&vu->own_jar);
    json_decref(vu->found);
    json_decref(vu->vars);
    json_decref(vu->params);
    json_decref(vu->res_headers);
    free(vu->done_path);
    if (!vu->parent) /* a branch is not a user */
        load_worker_vu_ended(w);
    free(vu);
}

static void vu_unlink_close(struct load_vu *vu)
{
    struct load_worker *w = vu->w;

    branches_abort(vu); /* first: they hold connections of vu's agent */
    conn_drop(vu);
    load_agent_unqueue(vu);
    load_agent_close_idle(&vu->own);
    if (vu->call)
        load_proc_cancel(w->proc, vu->call);
    vu->call = 0;
    if (vu->parent) {
        list_remove(&vu->branch_link);
    } else {
        if (w->proc)
            load_proc_end_vu(w->proc, vu->uid);
        list_remove(&vu->link);
    }
    uv_close((uv_handle_t *)&vu->timer, vu_close_cb);
}

static void vu_end(struct load_vu *vu, bool failed)
{
    uint64_t now = uv_hrtime();

    if (vu->parent) {
        branch_end(vu, failed);
        return;
    }
    /* Pool mode: as wrk reconnects after an error, a failure costs the request (counted as an
     * error or a failed expect), not the connection. The flow starts over on the next loop turn,
     * so a failure that comes back at once cannot recurse. */
    if (failed && vu->pool && !vu->w->stopping && now < vu->w->eng->pool_deadline_ns) {
        vu->failed = true;
        branches_abort(vu);
        frames_clear(vu);
        uv_timer_start(&vu->timer, on_timeout, 0, 0);
        return;
    }
    if (vu->w->hook) {
        json_decref(vu->w->hook_vars);
        vu->w->hook_vars = json_incref(vu->vars);
        vu->w->hook_failed = failed;
    }
    STATS_LOCKED(vu->w, now, sec, {
        if (failed) {
            sec->failed++;
        } else {
            sec->completed++;
            histogram_record(&sec->session, (now - vu->start_ns) / 1000);
        }
    });
    vu_unlink_close(vu);
}

void load_vu_abort(struct load_vu *vu)
{
    uv_timer_stop(&vu->timer);
    vu_unlink_close(vu);
}

/*
 * What Artillery's createContext gives each user: target, $environment, $dirname and
 * $scenarioFile under everything else, and $uuid, the user's own id, over it. The id comes from
 * the worker's generator, not the kernel's: it names a user, it guards nothing.
 */
static void set_builtin_vars(struct load_vu *vu)
{
    const json_t *builtin = vu->w->eng->script->builtin_vars;
    uint64_t bits[2] = {load_rand(&vu->w->rng), load_rand(&vu->w->rng)};
    char uuid[UUID_STR_LEN + 1];

    if (builtin) {
        json_t *copy = json_deep_copy(builtin); /* the script's is shared by the workers */

        json_object_update_missing(vu->vars, copy);
        json_decref(copy);
    }
    uuid_format_v4((const unsigned char *)bits, uuid);
    json_object_set_new(vu->vars, "$uuid", json_string(uuid));
}

void load_vu_start(struct load_worker *w, const struct load_scenario *sc, uint64_t sched_ns,
                   bool pool)
{
    struct load_vu *vu = xcalloc(1, sizeof(*vu));
    uint64_t now = uv_hrtime();

    vu->w = w;
    vu->sc = sc;
    vu->pool = pool;
    vu->jar = &vu->own_jar;
    list_init(&vu->branches);
    load_agent_init(&vu->own, 1);
    vu->agent = w->agent.max ? &w->agent : &vu->own;
    vu->uid = ++w->next_uid;
    vu->vars = load_vars_new(w->eng->script->variables, &w->rng);
    if (w->eng->script->n_payloads) { /* config.variables win over a row, as in Artillery */
        json_t *row = json_object();

        load_payload_vars(w->eng->script->payloads, w->eng->script->n_payloads, row, &w->rng);
        json_object_update_missing(vu->vars, row);
        json_decref(row);
    }
    if (w->eng->context_vars) { /* under both, as Artillery lays them over before's */
        json_t *ctx = json_deep_copy(w->eng->context_vars);

        json_object_update_missing(vu->vars, ctx);
        json_decref(ctx);
    }
    set_builtin_vars(vu);
    vu->start_ns = vu->ready_ns = sched_ns < now ? sched_ns : now;
    frame_push_flow(vu);
    uv_timer_init(&w->loop, &vu->timer);
    list_insert_head(&w->vus, &vu->link);
    w->active++;
    STATS_LOCKED(w, now, sec, {
        sec->created++;
        load_counts_add(&sec->created_by, sc->name, strlen(sc->name), 1, SIZE_MAX);
    });
    vu_next(vu);
}
