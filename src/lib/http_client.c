#include "lib/http_client.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/bug.h"
#include "lib/net.h"
#include "lib/tls.h"

#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_MAX_BODY   (16u << 20)
#define READ_CHUNK         16384

struct client_conn {
    uv_tcp_t tcp;
    struct http_client *client;
    struct client_conn *next_idle;
    struct http_call *call; /* NULL while idle in the pool */
    char *key;              /* the pool key of the call that opened it */
    struct buf in;          /* plaintext read and not yet consumed */
    struct tls_conn *tls;   /* NULL for plain http */
    bool closing;
    bool eof; /* the server ended the stream: never pool */
};

/* A write of ciphertext: the buffer lives with the request. */
struct tls_write {
    uv_write_t w;
    struct buf data;
};

/* One TLS context per distinct set of client TLS settings. */
struct client_tls_ctx {
    struct client_tls_ctx *next;
    char *key;
    struct tls_ctx *ctx;
};

enum call_phase {
    CALL_RESOLVING = 0,
    CALL_CONNECTING,
    CALL_HEAD,    /* request sent or being sent; reading the response head */
    CALL_BODY,    /* Content-Length body */
    CALL_CHUNKED, /* chunked body */
    CALL_TO_EOF,  /* body delimited by the connection closing */
    CALL_DONE,
};

struct http_call {
    struct http_client *client;
    struct http_call *next;
    struct http_call **pprev;
    http_client_cb cb;
    void *data;
    char *host;
    int port;
    char *key;               /* pool key: "host:port" plus the TLS settings */
    struct tls_ctx *tls_ctx; /* borrowed from the client; NULL for plain http */
    char *tls_name;          /* certificate name and SNI */
    char error[640];         /* detail for http_client_error(); "" when none */
    size_t max_body;
    bool no_keep_alive;
    bool head_request;
    bool retried;
    enum call_phase phase;
    struct buf out; /* the serialised request */
    uv_timer_t timer;
    uv_getaddrinfo_t gai;
    uv_connect_t connect;
    struct client_conn *conn;
    struct http_response_head head;
    struct http_head_scan scan; /* how far the head at the front of conn->in was searched */
    char *head_raw;             /* copy of the head bytes the parsed slices point into */
    struct buf body;
    uint64_t body_left;
    struct http_chunked_decoder dec;
    bool got_bytes;
    int early_status; /* a failure found before any I/O, reported from the timer */
    /* The call is freed when the last of these is done: its timer handle, a getaddrinfo or a
     * connect in flight (their callbacks still point at the call after it finished). */
    int refs;
};

struct http_client {
    uv_loop_t *loop;
    struct client_conn *idle;
    struct http_call *calls;
    struct client_tls_ctx *tls_ctxs;
    bool has_error; /* error holds the detail of the failure being reported */
    char error[640];
    char scratch[READ_CHUNK]; /* ciphertext read, before decryption */
};

static void conn_close(struct client_conn *conn);
static void call_finish(struct http_call *call, int status);
static void call_connect_fresh(struct http_call *call);
static void call_fail_soon(struct http_call *call, int status);

struct http_client *http_client_new(uv_loop_t *loop)
{
    struct http_client *c = xcalloc(1, sizeof(*c));
    c->loop = loop;
    return c;
}

void http_client_free(struct http_client *c)
{
    while (c->calls)
        http_call_cancel(c->calls);
    while (c->idle) {
        struct client_conn *conn = c->idle;
        c->idle = conn->next_idle;
        conn->next_idle = NULL;
        conn_close(conn);
    }
    while (c->tls_ctxs) {
        struct client_tls_ctx *t = c->tls_ctxs;
        c->tls_ctxs = t->next;
        tls_ctx_free(t->ctx);
        free(t->key);
        free(t);
    }
    free(c);
}

const char *http_client_error(const struct http_client *c)
{
    return c->has_error ? c->error : NULL;
}

const char *http_client_header(const struct http_client_response *res, const char *name,
                               size_t *len)
{
    const struct http_header *h = http_find_header(res->headers, res->num_headers, name);
    if (!h)
        return NULL;
    if (len)
        *len = h->value.n;
    return h->value.p;
}

uint64_t http_client_index(const struct http_client_response *res)
{
    size_t len;
    const char *v = http_client_header(res, "X-Consul-Index", &len);
    unsigned long long idx = 0;

    if (!v || !str_to_u64((struct str){v, len}, &idx))
        return 0;
    return idx;
}

/* ---- connections --------------------------------------------------------------------------- */

static void on_conn_closed(uv_handle_t *h)
{
    struct client_conn *conn = h->data;
    buf_free(&conn->in);
    if (conn->tls)
        tls_conn_free(conn->tls);
    free(conn->key);
    free(conn);
}

static void pool_remove(struct client_conn *conn)
{
    struct client_conn **pp = &conn->client->idle;
    while (*pp && *pp != conn)
        pp = &(*pp)->next_idle;
    if (*pp)
        *pp = conn->next_idle;
    conn->next_idle = NULL;
}

static void conn_close(struct client_conn *conn)
{
    if (conn->closing)
        return;
    conn->closing = true;
    if (!conn->call)
        pool_remove(conn);
    uv_close((uv_handle_t *)&conn->tcp, on_conn_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct client_conn *conn = h->data;
    /* libuv calls on_read right after on_alloc, so one scratch buffer serves every TLS
     * connection of the client. */
    if (conn->tls) {
        *b = uv_buf_init(conn->client->scratch, sizeof(conn->client->scratch));
        return;
    }
    buf_reserve(&conn->in, READ_CHUNK);
    *b = uv_buf_init(conn->in.data + conn->in.len, (unsigned)(conn->in.cap - conn->in.len - 1));
}

static void call_process(struct http_call *call);

static void on_tls_write(uv_write_t *w, int status)
{
    struct tls_write *tw = CONTAINER_OF(w, struct tls_write, w);
    struct client_conn *conn = w->data;

    buf_free(&tw->data);
    free(tw);
    if (status < 0 && conn->call)
        call_finish(conn->call, status);
}

/* Writes the ciphertext TLS has ready (handshake records, encrypted requests). */
static int conn_flush_tls(struct client_conn *conn)
{
    struct tls_write *tw = xcalloc(1, sizeof(*tw));

    if (conn->closing || !tls_conn_take_output(conn->tls, &tw->data)) {
        buf_free(&tw->data);
        free(tw);
        return 0;
    }
    tw->w.data = conn;
    uv_buf_t b = uv_buf_init(tw->data.data, (unsigned)tw->data.len);
    int rc = uv_write(&tw->w, (uv_stream_t *)&conn->tcp, &b, 1, on_tls_write);
    if (rc < 0) {
        buf_free(&tw->data);
        free(tw);
    }
    return rc;
}

/* Fails the call with the TLS layer's reason (Go's words for a plain-http server). */
static void call_fail_tls(struct http_call *call, struct client_conn *conn)
{
    if (!tls_conn_handshake_done(conn->tls) && strncmp(call->client->scratch, "HTTP/", 5) == 0)
        snprintf(call->error, sizeof(call->error),
                 "http: server gave HTTP response to HTTPS "
                 "client");
    else
        snprintf(call->error, sizeof(call->error), "%s", tls_conn_error(conn->tls));
    call_finish(call, UV_EPROTO);
}

/* The stream ended (end < 0) while a call was on it. */
static void call_on_end(struct http_call *call, struct client_conn *conn, int end)
{
    if (call->phase == CALL_TO_EOF) {
        call_finish(call, 0);
    } else if (!call->got_bytes && !call->retried && conn->in.len == 0) {
        call->conn = NULL;
        conn->call = NULL;
        conn->closing = true;
        uv_close((uv_handle_t *)&conn->tcp, on_conn_closed);
        call->retried = true;
        call_connect_fresh(call);
    } else {
        if (conn->tls && !tls_conn_handshake_done(conn->tls) && end == UV_EOF)
            snprintf(call->error, sizeof(call->error), "EOF"); /* as Go says it */
        call_finish(call, end == UV_EOF ? UV_EPROTO : end);
    }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct client_conn *conn = s->data;
    struct http_call *call = conn->call;
    size_t plain_before = conn->in.len;
    int end = nread < 0 ? (int)nread : 0; /* UV_EOF or a read error */
    bool tls_failed = false;

    if (nread > 0 && conn->tls) {
        int rc = tls_conn_recv(conn->tls, conn->client->scratch, (size_t)nread, &conn->in);
        conn_flush_tls(conn);
        if (rc == TLS_CLOSED)
            end = UV_EOF;
        tls_failed = rc < 0 && rc != TLS_CLOSED;
    } else if (nread > 0) {
        conn->in.len += (size_t)nread;
        conn->in.data[conn->in.len] = '\0';
    }
    bool got = conn->in.len > plain_before;
    conn->eof = conn->eof || end < 0 || tls_failed;

    if (!call) { /* idle: the server closed it or sent junk (TLS session tickets are fine) */
        if (conn->eof || got)
            conn_close(conn);
        return;
    }
    if (got) {
        call->got_bytes = true;
        call_process(call);
    }
    if (!conn->eof)
        return;
    if (conn->call != call) { /* the call finished on what arrived before the end */
        conn_close(conn);
        return;
    }
    if (tls_failed)
        call_fail_tls(call, conn);
    else
        call_on_end(call, conn, end);
}

/* The write request names the connection, not the call: a cancelled write reports after the
 * call may be gone, but never after its connection's close callback. */
static void on_write(uv_write_t *w, int status)
{
    struct client_conn *conn = w->data;
    free(w);
    if (status < 0 && conn->call)
        call_finish(conn->call, status);
}

static void call_send(struct http_call *call)
{
    struct client_conn *conn = call->conn;
    uv_write_t *w = xcalloc(1, sizeof(*w));
    uv_buf_t b = uv_buf_init(call->out.data, (unsigned)call->out.len);

    w->data = conn;
    call->phase = CALL_HEAD;
    if (conn->tls) {
        /* Queued until the handshake is over, then sent encrypted. */
        free(w);
        int rc = tls_conn_write(conn->tls, call->out.data, call->out.len);
        if (rc < 0) {
            call_fail_tls(call, conn);
            return;
        }
        rc = conn_flush_tls(conn);
        if (rc < 0)
            call_fail_soon(call, rc);
        return;
    }
    int rc = uv_write(w, (uv_stream_t *)&conn->tcp, &b, 1, on_write);
    if (rc < 0) {
        free(w);
        call_fail_soon(call, rc);
    }
}

/* ---- response parsing ---------------------------------------------------------------------- */

static void process_head(struct http_call *call)
{
    struct client_conn *conn = call->conn;
    int rc;

    /* Skip interim (1xx) responses; the final one may have come in the same read. */
    for (;;) {
        rc = http_scan_response(&call->scan, conn->in.data, conn->in.len, NULL, &call->head);
        if (rc == HTTP_PARSE_INCOMPLETE)
            return;
        if (rc < 0) {
            call_finish(call, UV_EPROTO);
            return;
        }
        call->scan = HTTP_HEAD_SCAN_INIT; /* the next head starts after this one */
        if (call->head.status >= 200)
            break;
        buf_consume(&conn->in, (size_t)rc);
    }
    call->head_raw = xmemdup(conn->in.data, (size_t)rc);
    http_parse_response(call->head_raw, (size_t)rc, NULL, &call->head);
    buf_consume(&conn->in, (size_t)rc);
    const struct http_framing *f = &call->head.framing;
    if (!http_response_has_body(&call->head, call->head_request)) {
        call_finish(call, 0);
    } else if (f->chunked) {
        call->phase = CALL_CHUNKED;
    } else if (f->content_length >= 0) {
        if ((uint64_t)f->content_length > call->max_body) {
            call_finish(call, UV_E2BIG);
            return;
        }
        call->body_left = (uint64_t)f->content_length;
        call->phase = CALL_BODY;
        if (call->body_left == 0)
            call_finish(call, 0);
    } else {
        call->phase = CALL_TO_EOF;
    }
}

static void call_process(struct http_call *call)
{
    struct client_conn *conn = call->conn;

    if (call->phase == CALL_HEAD)
        process_head(call);
    if (call->phase == CALL_DONE || !call->conn)
        return;
    if (call->phase == CALL_BODY || call->phase == CALL_TO_EOF) {
        size_t n = conn->in.len;
        if (call->phase == CALL_BODY && n > call->body_left)
            n = (size_t)call->body_left;
        buf_append(&call->body, conn->in.data, n);
        buf_consume(&conn->in, n);
        if (call->body.len > call->max_body) {
            call_finish(call, UV_E2BIG);
            return;
        }
        if (call->phase == CALL_BODY && (call->body_left -= n) == 0)
            call_finish(call, 0);
    } else if (call->phase == CALL_CHUNKED && conn->in.len) {
        size_t len = conn->in.len;
        ssize_t rc = http_decode_chunked(&call->dec, conn->in.data, &len);
        if (rc == HTTP_PARSE_BAD) {
            call_finish(call, UV_EPROTO);
            return;
        }
        buf_append(&call->body, conn->in.data, len);
        if (rc == HTTP_PARSE_INCOMPLETE) {
            buf_reset(&conn->in);
        } else {
            buf_consume(&conn->in, len);
            conn->in.len = (size_t)rc;
            call_finish(call, call->body.len > call->max_body ? UV_E2BIG : 0);
            return;
        }
        if (call->body.len > call->max_body)
            call_finish(call, UV_E2BIG);
    }
}

/* ---- call lifecycle ------------------------------------------------------------------------ */

static void call_free(struct http_call *call)
{
    buf_free(&call->out);
    buf_free(&call->body);
    free(call->head_raw);
    free(call->host);
    free(call->key);
    free(call->tls_name);
    free(call);
}

static void call_unref(struct http_call *call)
{
    if (--call->refs == 0)
        call_free(call);
}

static void on_timer_closed(uv_handle_t *h)
{
    call_unref(h->data);
}

/* Hands the connection back to the pool when it can carry another request, else closes it. */
static void release_conn(struct http_call *call, bool reusable)
{
    struct client_conn *conn = call->conn;

    if (!conn)
        return;
    call->conn = NULL;
    conn->call = NULL;
    if (reusable && conn->in.len == 0 && !conn->closing && !conn->eof) {
        conn->next_idle = conn->client->idle;
        conn->client->idle = conn;
    } else {
        conn_close(conn);
    }
}

static void call_finish(struct http_call *call, int status)
{
    if (call->phase == CALL_DONE)
        return;
    bool ok = status == 0;
    bool reusable =
        ok && !call->no_keep_alive && call->head.framing.keep_alive && call->phase != CALL_TO_EOF;
    call->phase = CALL_DONE;
    *call->pprev = call->next;
    if (call->next)
        call->next->pprev = call->pprev;
    uv_timer_stop(&call->timer);
    release_conn(call, reusable);
    /* The client may be freed by the callback: set the detail before, never touch it after. */
    call->client->has_error = !ok && call->error[0];
    if (call->client->has_error)
        snprintf(call->client->error, sizeof(call->client->error), "%s", call->error);
    if (ok) {
        struct http_client_response res = {
            .status = call->head.status,
            .reason = call->head.reason,
            .headers = call->head.headers,
            .num_headers = call->head.num_headers,
            .body = call->body.data ? call->body.data : "",
            .body_len = call->body.len,
        };
        call->cb(0, &res, call->data);
    } else {
        call->cb(status, NULL, call->data);
    }
    uv_close((uv_handle_t *)&call->timer, on_timer_closed);
}

static void on_timeout(uv_timer_t *t)
{
    call_finish(t->data, UV_ETIMEDOUT);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct http_call *call = req->data;
    struct client_conn *conn = CONTAINER_OF(req->handle, struct client_conn, tcp);

    if (call->phase == CALL_DONE) { /* cancelled or timed out while connecting */
        conn_close(conn);
        call_unref(call);
        return;
    }
    /* Not done, so the caller's reference outlives the connect's. */
    if (MESH_BUG_ON(call->refs < 2))
        return;
    call_unref(call);
    if (status < 0) {
        call->conn = NULL;
        conn->call = NULL;
        conn_close(conn);
        call_finish(call, status);
        return;
    }
    uv_tcp_nodelay(&conn->tcp, 1);
    if (call->tls_ctx)
        conn->tls = tls_conn_new(call->tls_ctx, call->tls_name);
    uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_read);
    call_send(call);
}

/* Reports a failure found synchronously from the loop instead, so that the callback never
 * runs inside http_client_send(). */
static void on_early_failure(uv_timer_t *t)
{
    struct http_call *call = t->data;
    call_finish(call, call->early_status);
}

static void call_fail_soon(struct http_call *call, int status)
{
    call->early_status = status;
    uv_timer_start(&call->timer, on_early_failure, 0, 0);
}

static void call_connect_addr(struct http_call *call, const struct sockaddr *sa)
{
    struct client_conn *conn = xcalloc(1, sizeof(*conn));

    conn->client = call->client;
    conn->key = xstrdup(call->key);
    uv_tcp_init(call->client->loop, &conn->tcp);
    conn->tcp.data = conn;
    conn->call = call;
    call->conn = conn;
    call->phase = CALL_CONNECTING;
    call->connect.data = call;
    int rc = uv_tcp_connect(&call->connect, &conn->tcp, sa, on_connect);
    if (rc < 0) {
        call->conn = NULL;
        conn->call = NULL;
        conn_close(conn);
        call_fail_soon(call, rc);
        return;
    }
    call->refs++;
}

static void on_resolved(uv_getaddrinfo_t *gai, int status, struct addrinfo *res)
{
    struct http_call *call = gai->data;

    if (call->phase == CALL_DONE) {
        call_unref(call);
        uv_freeaddrinfo(res);
        return;
    }
    /* Not done, so the caller's reference outlives the lookup's. */
    if (MESH_BUG_ON(call->refs < 2)) {
        uv_freeaddrinfo(res);
        return;
    }
    call_unref(call);
    if (status < 0 || !res) {
        uv_freeaddrinfo(res);
        call_finish(call, status < 0 ? status : UV_EAI_NONAME);
        return;
    }
    struct sockaddr_storage ss;
    memcpy(&ss, res->ai_addr, res->ai_addrlen);
    uv_freeaddrinfo(res);
    ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)call->port); /* same offset in v6 */
    call_connect_addr(call, (struct sockaddr *)&ss);
}

static void call_connect_fresh(struct http_call *call)
{
    struct sockaddr_storage ss;

    call->scan = HTTP_HEAD_SCAN_INIT; /* a retry reads its head from a new connection */
    if (net_parse_addr(call->host, call->port, &ss) == 0) {
        call_connect_addr(call, (struct sockaddr *)&ss);
        return;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    char port[16];
    snprintf(port, sizeof(port), "%d", call->port);
    call->gai.data = call;
    call->phase = CALL_RESOLVING;
    int rc = uv_getaddrinfo(call->client->loop, &call->gai, on_resolved, call->host, port, &hints);
    if (rc < 0)
        call_fail_soon(call, rc);
    else
        call->refs++;
}

static struct client_conn *pool_take(struct http_client *c, const char *key)
{
    for (struct client_conn **pp = &c->idle; *pp; pp = &(*pp)->next_idle) {
        struct client_conn *conn = *pp;
        if (strcmp(conn->key, key) == 0) {
            *pp = conn->next_idle;
            conn->next_idle = NULL;
            return conn;
        }
    }
    return NULL;
}

/*
 * Checks what the caller supplied before anything is sent: one bad byte would let it end a
 * field or the request line and inject its own. Returns 0, or -EINVAL with call->error set in
 * Go's words ("net/http: invalid header field value for ...").
 */
static int check_request(struct http_call *call, const struct http_client_request *r)
{
    const char *what = NULL;
    struct str bad = STR_NULL;

    if (r->method && !http_valid_token(str_from(r->method)))
        what = "method", bad = str_from(r->method);
    else if (r->target && !http_valid_target(str_from(r->target)))
        what = "request target", bad = str_from(r->target);
    for (size_t i = 0; !what && i < r->num_headers; i++) {
        const struct http_header *h = &r->headers[i];
        if (!http_valid_token(h->name))
            what = "header field name", bad = h->name;
        else if (!http_valid_field_value(h->value))
            what = "header field value for", bad = h->name;
    }
    if (!what)
        return 0;
    /* The name is quoted as Go does; a name that is itself bad is cut at its first bad byte. */
    size_t shown = 0;
    while (shown < bad.n && shown < 64 && (unsigned char)bad.p[shown] > 0x20 &&
           bad.p[shown] != 0x7f)
        shown++;
    snprintf(call->error, sizeof(call->error), "net/http: invalid %s \"%.*s\"", what, (int)shown,
             bad.p);
    return -EINVAL;
}

static void serialise(struct http_call *call, const struct http_client_request *r)
{
    const char *method = r->method ? r->method : "GET";
    bool v6 = strchr(r->host, ':') != NULL;

    buf_printf(&call->out, "%s %s HTTP/1.1\r\n", method, r->target ? r->target : "/");
    /* A caller's Host field names a virtual host; two Host fields would be a 400. */
    if (!http_find_header(r->headers, r->num_headers, "Host"))
        buf_printf(&call->out, "Host: %s%s%s:%d\r\n", v6 ? "[" : "", r->host, v6 ? "]" : "",
                   r->port);
    for (size_t i = 0; i < r->num_headers; i++)
        buf_printf(&call->out, "%.*s: %.*s\r\n", STR_FMT(r->headers[i].name),
                   STR_FMT(r->headers[i].value));
    if (r->no_keep_alive)
        buf_append_cstr(&call->out, "Connection: close\r\n");
    if (r->body_len || strcmp(method, "PUT") == 0 || strcmp(method, "POST") == 0)
        buf_printf(&call->out, "Content-Length: %zu\r\n", r->body_len);
    buf_append(&call->out, "\r\n", 2);
    if (r->body_len)
        buf_append(&call->out, r->body, r->body_len);
    call->head_request = strcmp(method, "HEAD") == 0;
}

/* The client's TLS context for the request's settings, made on first use. NULL with call->error
 * set when the files cannot be used. */
static struct tls_ctx *client_tls_ctx(struct http_client *c, const struct http_client_request *r,
                                      struct http_call *call)
{
    struct buf key = BUF_INIT;
    struct tls_ctx *ctx = NULL;

    /* Newlines cannot occur in the paths that matter; they only keep the fields apart. */
    buf_printf(&key, "%d\n%s\n%s\n%s", r->tls_skip_verify, r->tls_ca_file ? r->tls_ca_file : "",
               r->tls_cert_file ? r->tls_cert_file : "", r->tls_key_file ? r->tls_key_file : "");
    for (struct client_tls_ctx *t = c->tls_ctxs; t; t = t->next) {
        if (strcmp(t->key, key.data) == 0) {
            ctx = t->ctx;
            goto out;
        }
    }
    struct tls_ctx_config cfg = {
        .ca_file = r->tls_ca_file,
        .cert_file = r->tls_cert_file,
        .key_file = r->tls_key_file,
        .verify_peer = !r->tls_skip_verify,
    };
    struct err e;
    if (tls_ctx_new(&cfg, &ctx, &e) < 0) {
        snprintf(call->error, sizeof(call->error), "tls: %s", e.msg);
        goto out;
    }
    struct client_tls_ctx *t = xcalloc(1, sizeof(*t));
    t->key = buf_steal(&key);
    t->ctx = ctx;
    t->next = c->tls_ctxs;
    c->tls_ctxs = t;
out:
    buf_free(&key);
    return ctx;
}

/* "host:port", plus for https the name to verify and the context's settings. */
static void call_set_key(struct http_call *call, const struct http_client_request *r)
{
    struct buf key = BUF_INIT;

    buf_printf(&key, "%s:%d", call->host, call->port);
    if (call->tls_name)
        buf_printf(&key, "\ntls\n%s\n%d\n%s\n%s\n%s", call->tls_name, r->tls_skip_verify,
                   r->tls_ca_file ? r->tls_ca_file : "", r->tls_cert_file ? r->tls_cert_file : "",
                   r->tls_key_file ? r->tls_key_file : "");
    call->key = buf_steal(&key);
}

struct http_call *http_client_send(struct http_client *c, const struct http_client_request *r,
                                   http_client_cb cb, void *data)
{
    struct http_call *call = xcalloc(1, sizeof(*call));

    call->client = c;
    call->cb = cb;
    call->data = data;
    call->host = xstrdup(r->host ? r->host : "");
    call->port = r->port;
    call->max_body = r->max_body ? r->max_body : DEFAULT_MAX_BODY;
    call->no_keep_alive = r->no_keep_alive;
    if (r->tls)
        call->tls_name =
            xstrdup(r->tls_server_name && r->tls_server_name[0] ? r->tls_server_name : call->host);
    call_set_key(call, r);
    call->next = c->calls;
    if (call->next)
        call->next->pprev = &call->next;
    call->pprev = &c->calls;
    c->calls = call;
    uv_timer_init(c->loop, &call->timer);
    call->timer.data = call;
    call->refs = 1;
    if (r->tls && r->host && r->host[0])
        call->tls_ctx = client_tls_ctx(c, r, call);
    if (!r->host || !r->host[0] || r->port <= 0 || r->port > 65535 || (r->tls && !call->tls_ctx) ||
        check_request(call, r) < 0) {
        call_fail_soon(call, UV_EINVAL);
        return call;
    }
    serialise(call, r);
    uv_timer_start(&call->timer, on_timeout, r->timeout_ms ? r->timeout_ms : DEFAULT_TIMEOUT_MS, 0);
    struct client_conn *conn = r->no_keep_alive ? NULL : pool_take(c, call->key);
    if (conn) {
        conn->call = call;
        call->conn = conn;
        call_send(call);
    } else {
        call->retried = true; /* a fresh connection gets no retry */
        call_connect_fresh(call);
    }
    return call;
}

void http_call_cancel(struct http_call *call)
{
    call_finish(call, UV_ECANCELED);
}
