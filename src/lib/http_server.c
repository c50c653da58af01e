#include "lib/http_server.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <zlib.h>
#include <unistd.h>

#include "lib/alloc.h"
#include "lib/bug.h"
#include "lib/deadline.h"
#include "lib/log.h"
#include "lib/net.h"
#include "lib/tls.h"

enum conn_state {
    CONN_READ_HEAD = 0,
    CONN_READ_BODY,    /* Content-Length body */
    CONN_READ_CHUNKED, /* chunked body */
    CONN_DISPATCHED,   /* the handler has the request */
    CONN_CLOSING,      /* an error answer is on its way, or the peer is gone */
};

/*
 * One connection's unsent bytes count against its client address for at most this share of
 * max_unsent_per_client. An address is many clients when it is 127.0.0.1, so one of them that
 * never reads an answer bigger than the cap must not make the others wait for the write
 * timeout; it takes this many stalled connections together to hold the address back, and a
 * flood of connections from one address is still bounded (each holds at most one answer).
 */
#define UNSENT_SHARES 4

/*
 * One client address: how many connections it holds (max_conns_per_client) and how many bytes
 * of answers to it the sockets have not taken yet, each connection's counted up to its share
 * (unsent_counted). Lives while it has a connection or unsent bytes; the bytes of a closed
 * connection leave when libuv cancels its writes, after the close.
 */
struct http_client {
    size_t conns;
    size_t unsent; /* the sum of unsent_counted() over its connections */
    /* Connections holding a request back until unsent drains under the cap, oldest first. */
    struct list_node waiting;
    bool waking; /* client_wake() is on the stack: not freed under it */
    char ip[64];
};

struct http_conn {
    uv_tcp_t tcp;
    /* Head, idle and request timeouts: moved on every request, a timer-heap operation only
     * now and then (lib/deadline.h). */
    struct deadline timer;
    struct http_server *srv;
    struct list_node link;      /* in srv->conns */
    struct buf in;              /* bytes read and not yet consumed */
    struct http_head_scan scan; /* how far the head at the front of in was searched */
    enum conn_state state;
    struct http_request *req; /* being read or dispatched */
    struct http_chunked_decoder dec;
    uint64_t body_left;
    int writes_pending;
    int handles_open;
    bool close_after_write;
    bool in_process; /* process_input() is on the stack */
    bool reading;
    bool closed;
    char peer[64];
    struct tls_conn *tls; /* NULL on a plain connection */
    bool tls_sniffed;     /* the first bytes were checked for plain HTTP */
    /* Linked in srv->idle while waiting for a request. */
    struct list_node idle_link;
    /* The client address it counts under; NULL for a connection refused at accept. */
    struct http_client *client;
    struct list_node wait_link; /* in client->waiting */
    size_t unsent;              /* bytes queued for the socket, copied (the writes_pending) */
    size_t write_left;          /* the socket's write queue at the last sign of progress */
};

struct write_req {
    uv_write_t w;
    struct http_conn *conn;
    struct buf data;
};

#define READ_CHUNK 16384

static void process_input(struct http_conn *c);
static void conn_close(struct http_conn *c);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);

static void config_defaults(struct http_server_config *cfg)
{
    if (!cfg->max_head_bytes)
        cfg->max_head_bytes = 64 * 1024;
    if (!cfg->max_headers || cfg->max_headers > HTTP_MAX_HEADERS)
        cfg->max_headers = HTTP_MAX_HEADERS;
    if (!cfg->max_body_bytes)
        cfg->max_body_bytes = 1024 * 1024;
    if (!cfg->head_timeout_ms)
        cfg->head_timeout_ms = 10000;
    if (!cfg->idle_timeout_ms)
        cfg->idle_timeout_ms = 120000;
    if (!cfg->max_conns)
        cfg->max_conns = 10000;
    if (!cfg->max_unsent_per_client)
        cfg->max_unsent_per_client = HTTP_DEFAULT_MAX_UNSENT;
    if (!cfg->write_timeout_ms)
        cfg->write_timeout_ms = 60000;
}

void http_server_init(struct http_server *srv, uv_loop_t *loop,
                      const struct http_server_config *cfg, http_handler_cb handler, void *data)
{
    memset(srv, 0, sizeof(*srv));
    srv->loop = loop;
    if (cfg)
        srv->cfg = *cfg;
    config_defaults(&srv->cfg);
    srv->handler = handler;
    srv->handler_data = data;
    list_init(&srv->conns);
    list_init(&srv->idle);
    if (srv->cfg.tls)
        srv->tls_scratch = xmalloc(READ_CHUNK);
}

/* ---- idle connections and clients -------------------------------------------------------- */

/* c waits for a request: it joins the idle list as its newest member. */
static void idle_enter(struct http_conn *c)
{
    if (!list_linked(&c->idle_link) && !c->closed)
        list_insert_tail(&c->srv->idle, &c->idle_link);
}

static void idle_leave(struct http_conn *c)
{
    if (list_linked(&c->idle_link))
        list_remove(&c->idle_link);
}

/* The client at ip, created on its first connection. */
static struct http_client *client_get(struct http_server *srv, const char *ip)
{
    struct http_client *cl = smap_get(&srv->per_client, ip);

    if (!cl) {
        cl = xcalloc(1, sizeof(*cl));
        list_init(&cl->waiting);
        snprintf(cl->ip, sizeof(cl->ip), "%s", ip);
        smap_put(&srv->per_client, ip, cl);
    }
    return cl;
}

/* Forgets cl once nothing refers to it: no connection, no byte unsent, no wake-up running. */
static void client_maybe_free(struct http_server *srv, struct http_client *cl)
{
    if (cl->conns || cl->unsent || cl->waking)
        return;
    MESH_BUG_ON(!list_empty(&cl->waiting));
    smap_del(&srv->per_client, cl->ip);
    free(cl);
}

static bool client_over_cap(const struct http_server *srv, const struct http_client *cl)
{
    return cl && cl->unsent >= srv->cfg.max_unsent_per_client;
}

/* What a connection with unsent bytes queued counts against its client (non-zero when they
 * are, so a client with a connection holding bytes is not freed). */
static size_t unsent_counted(const struct http_server *srv, size_t unsent)
{
    size_t share = srv->cfg.max_unsent_per_client / UNSENT_SHARES;

    if (share == 0)
        share = 1;
    return unsent < share ? unsent : share;
}

/* ---- requests ---------------------------------------------------------------------------- */

static void request_free(struct http_request *req)
{
    free(req->_raw);
    free(req->_target);
    buf_free(&req->_body);
    buf_free(&req->_headers);
    free(req);
}

const struct http_header *http_request_header(const struct http_request *req, const char *name)
{
    return http_find_header(req->headers, req->num_headers, name);
}

/* Appends "name: value\r\n" to b, or nothing and -EINVAL when it is not a valid field. */
static int append_field(struct buf *b, const char *name, const char *fmt, va_list ap)
{
    size_t start = b->len;

    buf_append_cstr(b, name);
    buf_append(b, ": ", 2);
    size_t value = b->len;
    buf_vprintf(b, fmt, ap);
    struct str v = {b->data + value, b->len - value};
    if (!http_valid_token(str_from(name)) || !http_valid_field_value(v)) {
        b->len = start;
        b->data[start] = '\0';
        return -EINVAL;
    }
    buf_append(b, "\r\n", 2);
    return 0;
}

int http_response_header(struct http_request *req, const char *name, const char *fmt, ...)
{
    va_list ap;

    if (req->_headers.cap == 0) /* room for a handler's few headers in one allocation */
        buf_reserve(&req->_headers, 256);
    va_start(ap, fmt);
    int rc = append_field(&req->_headers, name, fmt, ap);
    va_end(ap);
    if (rc < 0) {
        log_warn("%.*s %.*s: refused response header %s (not a token, or a control byte in its "
                 "value)",
                 STR_FMT(req->method), STR_FMT(req->path), name);
        req->_bad_header = true;
    }
    return rc;
}

/*
 * Whether a weight ("1", "0.5", "0.000") is above 0. A malformed one is taken as 0, as Go's
 * strconv.ParseFloat failing leaves it: a coding the client named oddly is not risked.
 */
static bool qvalue_positive(struct str v)
{
    bool digits = false, positive = false, dot = false;

    for (size_t i = 0; i < v.n; i++) {
        if (v.p[i] == '.' && !dot) {
            dot = true;
            continue;
        }
        if (v.p[i] < '0' || v.p[i] > '9')
            return false;
        digits = true;
        positive |= v.p[i] != '0';
    }
    return digits && positive;
}

/*
 * Splits a list element ("gzip;foo=1 ; Q = 0") into its coding name and whether its weight is
 * above 0: the q parameter among any others (first one wins), either case, with whitespace
 * around ';' and '='; no q means 1.
 */
static struct str coding_of(struct str elem, bool *acceptable)
{
    const char *semi = memchr(elem.p, ';', elem.n);
    struct str name = str_trim((struct str){elem.p, semi ? (size_t)(semi - elem.p) : elem.n});

    *acceptable = true;
    while (semi) {
        struct str rest = str_skip(elem, (size_t)(semi + 1 - elem.p));
        semi = memchr(rest.p, ';', rest.n);
        struct str param = str_trim((struct str){rest.p, semi ? (size_t)(semi - rest.p) : rest.n});
        if (param.n == 0 || (param.p[0] != 'q' && param.p[0] != 'Q'))
            continue;
        struct str eq = str_trim(str_skip(param, 1));
        if (eq.n == 0 || eq.p[0] != '=')
            continue; /* a parameter whose name only starts with q */
        *acceptable = qvalue_positive(str_trim(str_skip(eq, 1)));
        break;
    }
    return name;
}

bool http_request_accepts_gzip(const struct http_request *req)
{
    const struct http_header *h = http_request_header(req, "Accept-Encoding");
    bool gzip = false;

    if (!h || str_eq_cstr(req->method, "HEAD"))
        return false;
    /* Only gzip by name, its last mention deciding, as the gzip handler Consul's HTTP server
     * wraps its API in (NYTimes gziphandler) reads the field: "*" alone is not taken as gzip,
     * which RFC 9110 would allow but no Consul client relies on. */
    struct str list = h->value, elem;
    while (http_list_next(&list, &elem)) {
        bool ok;
        struct str name = coding_of(elem, &ok);
        if (str_ieq_cstr(name, "gzip"))
            gzip = ok;
    }
    return gzip;
}

/*
 * Compresses len bytes at p into out (gzip format, zlib's default level) with srv's deflate
 * state: made at the first answer, reset after each, freed with the server. deflateInit2
 * allocates about 256 KiB of windows and hash chains in five pieces; an answer of a few KiB
 * costs less to compress than to set that up. Returns 0 or -ENOMEM.
 */
static int gzip_compress(struct http_server *srv, const void *p, size_t len, struct buf *out)
{
    z_stream *zs = srv->gzip;

    if (!zs) {
        zs = xcalloc(1, sizeof(*zs));
        if (deflateInit2(zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
            Z_OK) {
            free(zs);
            return -ENOMEM;
        }
        srv->gzip = zs;
    }
    /* One call: deflateBound is enough for the whole stream, its gzip header and trailer. */
    buf_reset(out);
    buf_reserve(out, deflateBound(zs, len) + 1);
    zs->next_in = (Bytef *)p;
    zs->avail_in = (uInt)len;
    zs->next_out = (Bytef *)out->data;
    zs->avail_out = (uInt)(out->cap - 1);
    int rc = deflate(zs, Z_FINISH);
    out->len = zs->total_out;
    out->data[out->len] = '\0';
    /* ready for the next answer, and holding no pointer into this one */
    if (deflateReset(zs) != Z_OK) {
        deflateEnd(zs);
        FREE_NULL(srv->gzip);
    }
    return rc == Z_STREAM_END ? 0 : -ENOMEM;
}

/* "Date:" value, formatted at most once per second. */
static const char *http_date(void)
{
    static _Thread_local char cached[64]; /* per thread: servers run on several loops */
    static _Thread_local time_t cached_at;
    time_t now = time(NULL);

    if (now != cached_at) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(cached, sizeof(cached), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        cached_at = now;
    }
    return cached;
}

/* ---- writing ----------------------------------------------------------------------------- */

static void arm_timer(struct http_conn *c, uint64_t ms);
static void park_timer(struct http_conn *c);

/*
 * A connection whose request was held back (its previous answer unsent, or its client over
 * max_unsent_per_client) takes it up: reading again, its timer that of a head.
 */
static void conn_resume(struct http_conn *c)
{
    if (c->closed || c->state != CONN_READ_HEAD)
        return;
    arm_timer(c, c->in.len ? c->srv->cfg.head_timeout_ms : c->srv->cfg.idle_timeout_ms);
    if (!c->reading)
        c->reading = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0;
    if (!c->in_process)
        process_input(c);
}

/*
 * Bytes of cl's answers left the process: its connections waiting under the cap take their
 * requests up, oldest first, while it stays under (each answer they send counts at once). Each
 * turn takes one connection off the list, and one goes back on only over the cap, which ends
 * the loop.
 */
static void client_wake(struct http_server *srv, struct http_client *cl)
{
    cl->waking = true;
    while (!client_over_cap(srv, cl) && !list_empty(&cl->waiting)) {
        struct http_conn *c = LIST_ENTRY(list_first(&cl->waiting), struct http_conn, wait_link);
        list_remove(&c->wait_link);
        conn_resume(c);
    }
    cl->waking = false;
    client_maybe_free(srv, cl);
}

/* n queued bytes of c are gone, written or cancelled. */
static void conn_unsent_sub(struct http_conn *c, size_t n)
{
    struct http_client *cl = c->client;

    MESH_BUG_ON(c->unsent < n);
    c->unsent -= n;
    if (!cl)
        return;
    bool was_over = client_over_cap(c->srv, cl);
    size_t gone = unsent_counted(c->srv, c->unsent + n) - unsent_counted(c->srv, c->unsent);
    MESH_BUG_ON(cl->unsent < gone);
    cl->unsent -= gone;
    if (c->closed && c->unsent == 0)
        c->client = NULL; /* its last reference to cl, which may go now */
    if (was_over && !client_over_cap(c->srv, cl))
        client_wake(c->srv, cl);
    else
        client_maybe_free(c->srv, cl);
}

static void on_write(uv_write_t *w, int status)
{
    struct write_req *wr = CONTAINER_OF(w, struct write_req, w);
    struct http_conn *c = wr->conn;

    size_t n = wr->data.len;
    buf_free(&wr->data);
    free(wr);
    c->writes_pending--;
    conn_unsent_sub(c, n);
    if (status < 0 || (c->close_after_write && c->writes_pending == 0)) {
        conn_close(c);
        return;
    }
    if (c->writes_pending > 0 || c->closed)
        return;
    if (c->state == CONN_DISPATCHED)
        park_timer(c);
    else if (c->state == CONN_READ_HEAD)
        conn_resume(c); /* the next request, held back while this answer was unsent */
    else
        arm_timer(c, c->srv->cfg.head_timeout_ms); /* a body after "100 Continue" */
}

/*
 * Queues bytes for the socket (taken over) behind what is queued already. They count against
 * the connection and its client until written; the first arms the write timeout.
 */
static void conn_queue_raw(struct http_conn *c, struct buf *data)
{
    struct write_req *wr = xcalloc(1, sizeof(*wr));
    wr->conn = c;
    wr->data = *data;
    *data = BUF_INIT;
    uv_buf_t b = uv_buf_init(wr->data.data, (unsigned)wr->data.len);
    c->writes_pending++;
    int rc = uv_write(&wr->w, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc < 0) {
        c->writes_pending--;
        buf_free(&wr->data);
        free(wr);
        conn_close(c);
        return;
    }
    size_t counted = unsent_counted(c->srv, c->unsent);
    c->unsent += wr->data.len;
    if (c->client)
        c->client->unsent += unsent_counted(c->srv, c->unsent) - counted;
    if (c->writes_pending == 1) {
        c->write_left = uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp);
        arm_timer(c, c->srv->cfg.write_timeout_ms);
    } else {
        c->write_left += wr->data.len;
    }
}

/*
 * Sends bufs (borrowed) after what is queued: the socket takes what it can at once, in one
 * send or sendmsg, and only the rest is copied and queued. So an answer that fits the socket
 * buffer costs one system call and no allocation, and leaves libuv nothing to complete (a
 * completed uv_write re-registers the socket with epoll). Closes the connection on an error,
 * or once all is written when close_after_write.
 */
static void conn_send_raw(struct http_conn *c, uv_buf_t *bufs, unsigned n)
{
    size_t total = 0, done = 0;

    if (c->closed)
        return;
    for (unsigned i = 0; i < n; i++)
        total += bufs[i].len;
    int rc = net_try_send((uv_stream_t *)&c->tcp, bufs, n);
    if (rc < 0 && rc != UV_EAGAIN && rc != UV_ENOSYS) {
        conn_close(c);
        return;
    }
    done = rc > 0 ? (size_t)rc : 0;
    if (done == total) {
        if (c->close_after_write && c->writes_pending == 0)
            conn_close(c);
        return;
    }
    struct buf rest = BUF_INIT;
    buf_reserve(&rest, total - done);
    for (unsigned i = 0; i < n; i++) {
        size_t skip = done < bufs[i].len ? done : bufs[i].len;
        buf_append(&rest, bufs[i].base + skip, bufs[i].len - skip);
        done -= skip;
    }
    conn_queue_raw(c, &rest);
}

/* Sends bytes (taken over) to the socket. */
static void conn_write_raw(struct http_conn *c, struct buf *data)
{
    uv_buf_t b = uv_buf_init(data->data, (unsigned)data->len);

    conn_send_raw(c, &b, 1);
    buf_free(data);
}

/* Writes what TLS has ready for the peer (handshake records, alerts). */
static void conn_flush_tls(struct http_conn *c)
{
    struct buf out = BUF_INIT;

    if (tls_conn_take_output(c->tls, &out))
        conn_write_raw(c, &out);
    buf_free(&out);
}

/* Sends plaintext bufs (borrowed) on the connection, encrypted on a TLS one. */
static void conn_send(struct http_conn *c, uv_buf_t *bufs, unsigned n)
{
    if (!c->tls) {
        conn_send_raw(c, bufs, n);
        return;
    }
    for (unsigned i = 0; i < n; i++) {
        if (c->closed || tls_conn_write(c->tls, bufs[i].base, bufs[i].len) < 0) {
            conn_close(c);
            return;
        }
    }
    conn_flush_tls(c);
}

/* Sends plaintext (taken over) on the connection. */
static void conn_write(struct http_conn *c, struct buf *data)
{
    uv_buf_t b = uv_buf_init(data->data, (unsigned)data->len);

    conn_send(c, &b, 1);
    buf_free(data);
}

/* Answers an error the server found itself and closes once it is written. */
static void conn_fail(struct http_conn *c, int status, const char *text)
{
    struct buf out = BUF_INIT;

    buf_printf(&out,
               "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
               "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
               status, http_status_reason(status), strlen(text), text);
    if (c->req && c->state != CONN_DISPATCHED) {
        request_free(c->req);
        c->req = NULL;
    }
    c->state = CONN_CLOSING;
    c->close_after_write = true;
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
    deadline_clear(&c->timer);
    conn_write(c, &out);
}

/* Answers 500 instead of a response with a field http_response_header refused. */
static void respond_invalid_header(struct http_request *req)
{
    static const char text[] = "invalid response header\n";

    req->_bad_header = false;
    buf_reset(&req->_headers);
    http_respond(req, 500, "text/plain; charset=utf-8", text, sizeof(text) - 1);
}

/*
 * Ends the head begun in the server's scratch with what is the request's own (its fields and
 * Connection: close), sends it and body (borrowed), and releases req.
 */
static void send_response(struct http_request *req, int status, const void *body, size_t len)
{
    struct http_conn *c = req->conn;
    struct buf *head = &req->server->head_scratch;
    bool head_only = str_eq_cstr(req->method, "HEAD");

    buf_append(head, req->_headers.data, req->_headers.len);
    if (!req->_keep_alive)
        buf_append_cstr(head, "Connection: close\r\n");
    buf_append(head, "\r\n", 2);
    /* The body goes out as it is, behind the head, in the same write: a blocking query's
     * answer rendered once for many watchers is never copied per connection. */
    uv_buf_t out[2] = {uv_buf_init(head->data, (unsigned)head->len), uv_buf_init(NULL, 0)};
    if (!head_only && len && status != 304)
        out[1] = uv_buf_init((char *)body, (unsigned)len);

    c->req = NULL;
    bool keep_alive = req->_keep_alive;
    if (c->state == CONN_CLOSING) {
        request_free(req);
        return;
    }
    if (!keep_alive) {
        c->state = CONN_CLOSING;
        c->close_after_write = true;
    } else {
        c->state = CONN_READ_HEAD;
        arm_timer(c, c->in.len ? c->srv->cfg.head_timeout_ms : c->srv->cfg.idle_timeout_ms);
        if (c->in.len == 0)
            idle_enter(c);
    }
    conn_send(c, out, out[1].len ? 2 : 1);
    request_free(req); /* only now: body may point into it */
    /* on_read stops reading while pipelined bytes pile up behind a parked request: resume. */
    if (keep_alive && !c->reading && !c->closed)
        c->reading = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0;
    if (keep_alive && !c->in_process && !c->closed)
        process_input(c);
}

void http_respond(struct http_request *req, int status, const char *content_type, const void *body,
                  size_t len)
{
    struct buf *head = &req->server->head_scratch;

    if (!req->conn) { /* the peer is gone; nothing to send */
        request_free(req);
        return;
    }
    if (req->_bad_header || (content_type && !http_valid_field_value(str_from(content_type)))) {
        respond_invalid_header(req);
        return;
    }
    buf_reset(head);
    buf_printf(head, "HTTP/1.1 %d %s\r\nDate: %s\r\n", status, http_status_reason(status),
               http_date());
    if (content_type)
        buf_printf(head, "Content-Type: %s\r\n", content_type);
    /* A 304 carries no body; a Content-Length there would have to be the 200's (RFC 9110
     * 8.6), so leave it out. */
    if (status != 304)
        buf_printf(head, "Content-Length: %zu\r\n", len);
    send_response(req, status, body, len);
}

struct http_shared_response *http_shared_response_new(int status, const char *content_type,
                                                      struct buf *body)
{
    struct http_shared_response *r = xcalloc(1, sizeof(*r));

    r->refs = 1;
    r->status = status;
    r->body = *body;
    *body = BUF_INIT;
    buf_printf(&r->head, "HTTP/1.1 %d %s\r\n", status, http_status_reason(status));
    r->status_len = r->head.len;
    if (content_type && http_shared_response_header(r, "Content-Type", "%s", content_type) < 0)
        return r;
    r->length_at = r->head.len;
    if (status != 304) /* as http_respond */
        buf_printf(&r->head, "Content-Length: %zu\r\n", r->body.len);
    r->length_len = r->head.len - r->length_at;
    return r;
}

void http_shared_response_gzip(struct http_shared_response *r, size_t min_size)
{
    r->gzip_min = min_size ? min_size : 1;
    http_shared_response_header(r, "Vary", "%s", "Accept-Encoding");
}

/* r's compressed form: its head with the compressed length and Content-Encoding. NULL when
 * compression failed (the answer then goes out plain). */
static struct http_shared_response *shared_gzip(struct http_server *srv,
                                                struct http_shared_response *r)
{
    struct buf z = BUF_INIT;

    if (r->gz || gzip_compress(srv, r->body.data, r->body.len, &z) < 0) {
        buf_free(&z);
        return r->gz;
    }
    struct http_shared_response *g = xcalloc(1, sizeof(*g));
    g->refs = 1;
    g->status = r->status;
    g->status_len = r->status_len;
    g->body = z;
    buf_append(&g->head, r->head.data, r->length_at);
    buf_printf(&g->head, "Content-Length: %zu\r\nContent-Encoding: gzip\r\n", z.len);
    size_t after = r->length_at + r->length_len;
    buf_append(&g->head, r->head.data + after, r->head.len - after);
    r->gz = g;
    return g;
}

int http_shared_response_header(struct http_shared_response *r, const char *name, const char *fmt,
                                ...)
{
    va_list ap;

    va_start(ap, fmt);
    int rc = append_field(&r->head, name, fmt, ap);
    va_end(ap);
    if (rc < 0) {
        log_warn("refused response header %s (not a token, or a control byte in its value)", name);
        r->bad_header = true;
    }
    return rc;
}

struct http_shared_response *http_shared_response_ref(struct http_shared_response *r)
{
    r->refs++;
    return r;
}

void http_shared_response_unref(struct http_shared_response *r)
{
    if (MESH_BUG_ON(r->refs == 0) || --r->refs > 0)
        return;
    if (r->gz)
        http_shared_response_unref(r->gz);
    buf_free(&r->head);
    buf_free(&r->body);
    free(r);
}

void http_respond_shared(struct http_request *req, struct http_shared_response *r)
{
    struct buf *head = &req->server->head_scratch;

    if (!req->conn) {
        request_free(req);
        return;
    }
    if (req->_bad_header || r->bad_header) {
        respond_invalid_header(req);
        return;
    }
    if (r->gzip_min && r->body.len >= r->gzip_min && http_request_accepts_gzip(req)) {
        struct http_shared_response *g = shared_gzip(req->server, r);
        r = g ? g : r;
    }
    /* Copies of ready bytes only: the status line, Date (formatted once a second), the rest. */
    buf_reset(head);
    buf_append(head, r->head.data, r->status_len);
    buf_append(head, "Date: ", 6);
    buf_append_cstr(head, http_date());
    buf_append(head, "\r\n", 2);
    buf_append(head, r->head.data + r->status_len, r->head.len - r->status_len);
    send_response(req, r->status, r->body.data, r->body.len);
}

void http_respond_gzip(struct http_request *req, int status, const char *content_type,
                       const void *body, size_t len, size_t min_size)
{
    struct buf z = BUF_INIT;

    http_response_header(req, "Vary", "Accept-Encoding");
    if (len >= min_size && len && http_request_accepts_gzip(req) &&
        gzip_compress(req->server, body, len, &z) == 0) {
        http_response_header(req, "Content-Encoding", "gzip");
        body = z.data;
        len = z.len;
    }
    http_respond(req, status, content_type, body, len);
    buf_free(&z);
}

void http_respond_text(struct http_request *req, int status, const char *text)
{
    http_respond(req, status, "text/plain; charset=utf-8", text, strlen(text));
}

/* ---- reading ----------------------------------------------------------------------------- */

static void arm_timer(struct http_conn *c, uint64_t ms)
{
    deadline_set(&c->timer, ms);
}

/*
 * A dispatched request has no timeout, yet its timer stays armed, firing for nothing once per
 * idle timeout: answering it then moves the deadline later, which costs no timer-heap insertion.
 * A cleared deadline's timer would stop at its next expiry (the head timeout's, 10 s after the
 * connection came), and every woken watcher of a blocking query parked longer than that would
 * insert its timer anew at the wake-up, all of them in the same loop iteration.
 */
static void park_timer(struct http_conn *c)
{
    arm_timer(c, c->srv->cfg.idle_timeout_ms);
}

/*
 * With an answer queued the timer is the write timeout: the peer took some of it since the
 * last expiry, or the connection goes (what it holds is then freed).
 */
static void on_write_timer(struct http_conn *c)
{
    size_t left = uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp);

    if (left < c->write_left) {
        c->write_left = left;
        arm_timer(c, c->srv->cfg.write_timeout_ms);
        return;
    }
    log_debug("%s: took none of %zu bytes in %llu ms: closing", c->peer, left,
              (unsigned long long)c->srv->cfg.write_timeout_ms);
    conn_close(c);
}

static void on_timer(struct deadline *d)
{
    struct http_conn *c = d->data;

    if (c->writes_pending > 0)
        on_write_timer(c);
    else if (c->state == CONN_READ_HEAD && c->in.len == 0)
        conn_close(c); /* idle keep-alive connection */
    else if (c->state == CONN_DISPATCHED)
        park_timer(c);
    else if (c->state != CONN_CLOSING)
        conn_fail(c, 408, "request timeout\n");
}

static void dispatch(struct http_conn *c)
{
    struct http_request *req = c->req;
    struct http_server *srv = c->srv;

    c->state = CONN_DISPATCHED;
    park_timer(c);
    req->body = req->_body.data ? req->_body.data : "";
    req->body_len = req->_body.len;
    srv->handler(req, srv->handler_data);
    /* A request left unanswered is parked (a blocking query) and may stay so for minutes:
     * it owns its head and body, so an empty input buffer goes back to the allocator, as
     * READ_CHUNK bytes for every one of thousands of watchers would be most of their cost.
     * The next read reserves it again. */
    if (c->state == CONN_DISPATCHED && c->in.len == 0)
        buf_free(&c->in);
}

/* The same bytes as s, which points into from[0..len), in the copy to[0..len). */
static struct str rebase(struct str s, const char *from, const char *to, size_t len)
{
    uintptr_t off = (uintptr_t)s.p - (uintptr_t)from;

    if (s.n == 0 && off > len)
        return (struct str){to, 0};
    MESH_BUG_ON(off > len || s.n > len - off); /* the parser slices the buffer it was given */
    return (struct str){to + off, s.n};
}

/*
 * Whether a Host value holds only bytes of a host name, an IP literal and a port, pct-encoded
 * ones and sub-delims, as Go's httpguts.ValidHostHeader has them (lenient about their order).
 */
static bool valid_host(struct str v)
{
    static const bool host_byte[256] = {
        ['0' ... '9'] = true, ['a' ... 'z'] = true, ['A' ... 'Z'] = true, ['!'] = true,
        ['$'] = true,         ['%'] = true,         ['&'] = true,         ['('] = true,
        [')'] = true,         ['*'] = true,         ['+'] = true,         [','] = true,
        ['-'] = true,         ['.'] = true,         [':'] = true,         [';'] = true,
        ['='] = true,         ['['] = true,         ['\''] = true,        [']'] = true,
        ['_'] = true,         ['~'] = true,
    };

    for (size_t i = 0; i < v.n; i++)
        if (!host_byte[(unsigned char)v.p[i]])
            return false;
    return true;
}

/*
 * Go's net/http's rules for the request line and Host (server.go readRequest, request.go
 * readRequest): an HTTP/1.1 request needs a Host field, also with an absolute-form target,
 * whose authority then stands for it; a Host holds only valid_host's bytes; a target is "/...", "*"
 * or an absolute URI ("invalid URI for request" otherwise), but for CONNECT. Returns NULL, with
 * *t the target's parse for start_request, or the text of the 400 (Go's words).
 */
static const char *refusal(const struct http_server *srv, const struct http_request_head *h,
                           struct http_target *t)
{
    bool connect = str_eq_cstr(h->method, "CONNECT");
    bool has_host = h->framing.fields & (1u << HTTP_FIELD_HOST);

    if (h->minor_version == 1 && !has_host && !connect && !srv->cfg.host_optional)
        return "400 Bad Request: missing required Host header";
    for (size_t i = 0; has_host && i < h->num_headers; i++)
        if (h->headers[i].id == HTTP_FIELD_HOST && !valid_host(h->headers[i].value))
            return "400 Bad Request: malformed Host header";
    http_target_parse(h->target, t);
    if (t->form == HTTP_TARGET_OTHER && !connect)
        return "400 Bad Request: invalid URI for request";
    return NULL;
}

/* Sets req's target to the origin-form part of its target (origin, the parse's, moved onto
 * req's copy), then its path and query. */
static void split_target(struct http_request *req, enum http_target_form form, struct str origin)
{
    if (form == HTTP_TARGET_ABSOLUTE && origin.n && origin.p[0] == '/') {
        req->target = origin;
    } else if (form == HTTP_TARGET_ABSOLUTE) {
        req->_target = xasprintf("/%.*s", STR_FMT(origin));
        req->target = str_from(req->_target);
    }
    const char *q = memchr(req->target.p, '?', req->target.n);
    if (q) {
        req->path = (struct str){req->target.p, (size_t)(q - req->target.p)};
        req->query = (struct str){q + 1, req->target.n - req->path.n - 1};
    } else {
        req->path = req->target;
        req->query = (struct str){req->target.p + req->target.n, 0};
    }
}

/*
 * The complete head at the front of c->in, parsed as head and its target as t (their slices
 * point into c->in): makes a request that owns a copy of the bytes, the slices moved onto it.
 */
static void start_request(struct http_conn *c, size_t head_len,
                          const struct http_request_head *head, const struct http_target *t)
{
    size_t n = head->num_headers;
    struct http_request *req = xcalloc(1, sizeof(*req) + n * sizeof(req->_fields[0]));
    const char *in = c->in.data;
    char *raw = req->_raw = xmemdup(in, head_len);

    req->method = rebase(head->method, in, raw, head_len);
    req->target = rebase(head->target, in, raw, head_len);
    for (size_t i = 0; i < n; i++) {
        req->_fields[i] = head->headers[i];
        req->_fields[i].name = rebase(head->headers[i].name, in, raw, head_len);
        req->_fields[i].value = rebase(head->headers[i].value, in, raw, head_len);
    }
    req->headers = req->_fields;
    req->num_headers = n;
    req->_framing = head->framing;
    buf_consume(&c->in, head_len);
    c->srv->head_bytes_examined += c->scan.examined;
    c->scan = HTTP_HEAD_SCAN_INIT;
    req->server = c->srv;
    req->conn = c;
    req->_keep_alive = head->framing.keep_alive && !c->srv->closing;
    split_target(req, t->form, rebase(t->origin, in, raw, head_len));
    memcpy(req->peer, c->peer, sizeof(req->peer));
    c->req = req;
}

static const char continue_line[] = "HTTP/1.1 100 Continue\r\n\r\n";

static void send_continue(struct http_conn *c)
{
    struct buf out = BUF_INIT;
    buf_append(&out, continue_line, sizeof(continue_line) - 1);
    conn_write(c, &out);
}

/* Reads a head; returns true when the caller should keep processing. */
static bool process_head(struct http_conn *c)
{
    const struct http_server_config *cfg = &c->srv->cfg;
    struct http_limits limits = {.max_head_bytes = cfg->max_head_bytes,
                                 .max_headers = cfg->max_headers};
    struct http_request_head head;

    if (c->in.len == 0)
        return false;
    /* A client that does not read must not make the server render without bound: the next
     * request waits until this connection's answer is out, and until its client's unsent
     * answers are under the cap. */
    if (c->writes_pending > 0)
        return false;
    if (client_over_cap(c->srv, c->client)) {
        if (!list_linked(&c->wait_link))
            list_insert_tail(&c->client->waiting, &c->wait_link);
        deadline_clear(&c->timer); /* bounded by the write timeouts of the ones it waits on */
        return false;
    }
    int rc = http_scan_request(&c->scan, c->in.data, c->in.len, &limits, &head);
    if (rc == HTTP_PARSE_INCOMPLETE) {
        if (c->in.len > cfg->max_head_bytes) {
            conn_fail(c, 431, "request header fields too large\n");
            return false;
        }
        return false;
    }
    if (rc == HTTP_PARSE_TOO_LARGE) {
        conn_fail(c, 431, "request header fields too large\n");
        return false;
    }
    struct http_target target = {0};
    const char *why = rc < 0 ? "malformed HTTP request\n" : refusal(c->srv, &head, &target);
    if (why) {
        conn_fail(c, 400, why);
        return false;
    }
    start_request(c, (size_t)rc, &head, &target);
    const struct http_framing *f = &c->req->_framing;
    if (f->chunked) {
        c->dec = HTTP_CHUNKED_DECODER_INIT;
        c->state = CONN_READ_CHUNKED;
    } else if (f->content_length > 0) {
        if ((uint64_t)f->content_length > cfg->max_body_bytes) {
            conn_fail(c, 413, "request body too large\n");
            return false;
        }
        c->body_left = (uint64_t)f->content_length;
        buf_reserve(&c->req->_body, (size_t)c->body_left);
        c->state = CONN_READ_BODY;
    } else {
        dispatch(c);
        return true;
    }
    if (f->expect_continue && c->in.len == 0)
        send_continue(c);
    return true;
}

static bool process_body(struct http_conn *c)
{
    size_t n = c->in.len < c->body_left ? c->in.len : (size_t)c->body_left;

    buf_append(&c->req->_body, c->in.data, n);
    buf_consume(&c->in, n);
    c->body_left -= n;
    if (c->body_left)
        return false;
    dispatch(c);
    return true;
}

static bool process_chunked(struct http_conn *c)
{
    size_t len = c->in.len;

    if (len == 0)
        return false;
    ssize_t rc = http_decode_chunked(&c->dec, c->in.data, &len);
    if (rc == HTTP_PARSE_BAD) {
        conn_fail(c, 400, "malformed chunked body\n");
        return false;
    }
    buf_append(&c->req->_body, c->in.data, len);
    /* A chunk announced past the limit is refused with its size line, as a Content-Length past
     * it is, rather than held open until the head timeout waiting for bytes it cannot take. */
    if (c->req->_body.len > c->srv->cfg.max_body_bytes ||
        c->dec.bytes_left_in_chunk > c->srv->cfg.max_body_bytes - c->req->_body.len) {
        conn_fail(c, 413, "request body too large\n");
        return false;
    }
    if (rc == HTTP_PARSE_INCOMPLETE) {
        buf_reset(&c->in);
        return false;
    }
    /* Bytes after the body (a pipelined request) follow the decoded data: keep only them. */
    buf_consume(&c->in, len);
    c->in.len = (size_t)rc;
    c->in.data[c->in.len] = '\0';
    dispatch(c);
    return true;
}

static void process_input(struct http_conn *c)
{
    bool more = true;

    c->in_process = true;
    while (more && !c->closed) {
        switch (c->state) {
        case CONN_READ_HEAD:
            more = process_head(c);
            break;
        case CONN_READ_BODY:
            more = process_body(c);
            break;
        case CONN_READ_CHUNKED:
            more = process_chunked(c);
            break;
        default:
            more = false;
        }
    }
    c->in_process = false;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct http_conn *c = h->data;

    if (c->tls) { /* on_read follows at once, so one buffer serves every connection */
        *b = uv_buf_init(c->srv->tls_scratch, READ_CHUNK);
        return;
    }
    buf_reserve(&c->in, READ_CHUNK);
    *b = uv_buf_init(c->in.data + c->in.len, (unsigned)(c->in.cap - c->in.len - 1));
}

/*
 * Plain HTTP sent to a TLS port gets Go's net/http answer, as Consul gives it: the first five
 * bytes are checked like Go's tlsRecordHeaderLooksLikeHTTP (a TLS record starts with 0x16).
 */
static bool plain_http_on_tls(struct http_conn *c, const char *data, size_t len)
{
    static const char answer[] =
        "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";
    static const char *const methods[] = {"GET /", "HEAD ", "POST ", "PUT /", "OPTIO"};
    bool http = false;

    c->tls_sniffed = true;
    for (size_t i = 0; len >= 5 && i < sizeof(methods) / sizeof(methods[0]); i++)
        http = http || memcmp(data, methods[i], 5) == 0;
    if (!http)
        return false;
    struct buf out = BUF_INIT;
    buf_append(&out, answer, sizeof(answer) - 1);
    c->state = CONN_CLOSING;
    c->close_after_write = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
    deadline_clear(&c->timer);
    conn_write_raw(c, &out);
    return true;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct http_conn *c = s->data;

    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (nread > 0)
        idle_leave(c);
    if (c->tls && !c->tls_sniffed && nread > 0 &&
        plain_http_on_tls(c, c->srv->tls_scratch, (size_t)nread))
        return;
    if (c->tls) {
        size_t before = c->in.len;
        int rc = tls_conn_recv(c->tls, c->srv->tls_scratch, (size_t)nread, &c->in);
        conn_flush_tls(c);
        if (rc < 0) {
            if (rc != TLS_CLOSED)
                log_debug("tls %s: %s", c->peer, tls_conn_error(c->tls));
            conn_close(c);
            return;
        }
        nread = (ssize_t)(c->in.len - before);
        if (nread == 0)
            return;
    } else {
        c->in.len += (size_t)nread;
        c->in.data[c->in.len] = '\0';
    }
    if (c->state == CONN_READ_HEAD && c->in.len == (size_t)nread && nread > 0)
        arm_timer(c, c->srv->cfg.head_timeout_ms); /* first bytes of a new head */
    if (c->state == CONN_DISPATCHED ||
        (c->state == CONN_READ_HEAD && (c->writes_pending > 0 || list_linked(&c->wait_link)))) {
        /* Pipelined bytes wait for the answer, or for answers to leave; stop reading past a
         * bound rather than buffer without limit (the peer then sees TCP backpressure). */
        if (c->in.len > c->srv->cfg.max_head_bytes) {
            uv_read_stop(s);
            c->reading = false;
        }
        return;
    }
    if (!c->in_process)
        process_input(c);
}

/* ---- connection lifecycle ---------------------------------------------------------------- */

static void maybe_server_closed(struct http_server *srv)
{
    if (!srv->closing || srv->num_conns > 0 || srv->listening)
        return;
    FREE_NULL(srv->tls_scratch);
    buf_free(&srv->head_scratch);
    if (srv->gzip) {
        deflateEnd(srv->gzip);
        FREE_NULL(srv->gzip);
    }
    MESH_BUG_ON(srv->per_client.n != 0); /* each left with its last connection and byte */
    smap_free(&srv->per_client);
    if (srv->on_closed) {
        void (*cb)(struct http_server *) = srv->on_closed;
        srv->on_closed = NULL;
        cb(srv);
    }
}

static void on_conn_handle_closed(uv_handle_t *h)
{
    struct http_conn *c = h->data;

    if (--c->handles_open > 0)
        return;
    struct http_server *srv = c->srv;
    srv->head_bytes_examined += c->scan.examined;
    MESH_BUG_ON(c->unsent != 0); /* libuv cancelled its writes before this callback */
    buf_free(&c->in);
    if (c->tls)
        tls_conn_free(c->tls);
    free(c);
    srv->num_conns--;
    maybe_server_closed(srv);
}

static void conn_close(struct http_conn *c)
{
    if (c->closed)
        return;
    c->closed = true;
    c->state = CONN_CLOSING;
    idle_leave(c);
    if (list_linked(&c->wait_link))
        list_remove(&c->wait_link);
    struct http_client *cl = c->client;
    if (cl) {
        cl->conns--;
        /* Its unsent bytes stay counted until libuv cancels its writes, after the close. */
        if (c->unsent == 0)
            c->client = NULL;
        client_maybe_free(c->srv, cl);
    }
    if (c->req) {
        struct http_request *req = c->req;
        c->req = NULL;
        req->conn = NULL;
        if (req->on_abort)
            req->on_abort(req);
        request_free(req);
    }
    list_remove(&c->link);
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    deadline_close(&c->timer, on_conn_handle_closed);
}

/* The client's address, without the port ("" when unknown). */
static void peer_ip(const uv_tcp_t *tcp, char *out, size_t n)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);

    out[0] = '\0';
    if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &len) == 0)
        uv_ip_name((const struct sockaddr *)&ss, out, n);
}

/* A client over max_conns_per_client: Consul's answer, then the close. */
static void refuse_client(struct http_conn *c)
{
    static const char text[] = "too many connections from this client\n";
    struct buf out = BUF_INIT;

    log_debug("%s: over %zu connections from one client: 429", c->peer,
              c->srv->cfg.max_conns_per_client);
    if (c->srv->cfg.tls) { /* a TLS client could not read a plaintext answer */
        conn_close(c);
        return;
    }
    buf_printf(&out,
               "HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain; charset=utf-8\r\n"
               "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
               sizeof(text) - 1, text);
    c->state = CONN_CLOSING;
    c->close_after_write = true;
    conn_write_raw(c, &out);
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct http_server *srv = listener->data;

    if (status < 0) {
        log_warn("accept: %s", uv_strerror(status));
        return;
    }
    struct http_conn *c = xcalloc(1, sizeof(*c));
    c->srv = srv;
    uv_tcp_init(srv->loop, &c->tcp);
    deadline_init(&c->timer, srv->loop, on_timer, c);
    c->tcp.data = c;
    c->handles_open = 2;
    list_insert_head(&srv->conns, &c->link);
    srv->num_conns++;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) < 0 || srv->closing) {
        conn_close(c);
        return;
    }
    /* At the cap the longest-idle connection makes room; with none idle the newcomer goes. */
    if (srv->num_conns > srv->cfg.max_conns) {
        struct http_conn *oldest = LIST_ENTRY(list_first(&srv->idle), struct http_conn, idle_link);
        if (!oldest) {
            conn_close(c);
            return;
        }
        log_debug("%zu connections: closing the longest idle one", srv->cfg.max_conns);
        conn_close(oldest);
    }
    uv_tcp_nodelay(&c->tcp, 1);
    net_peer_name(&c->tcp, c->peer, sizeof(c->peer));
    char ip[64];
    peer_ip(&c->tcp, ip, sizeof(ip));
    struct http_client *cl = client_get(srv, ip);
    if (srv->cfg.max_conns_per_client && cl->conns >= srv->cfg.max_conns_per_client) {
        client_maybe_free(srv, cl);
        refuse_client(c);
        return;
    }
    cl->conns++;
    c->client = cl;
    if (srv->cfg.tls)
        c->tls = tls_conn_new(srv->cfg.tls, NULL);
    c->reading = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0;
    /* A new connection sends its head within head_timeout_ms; the idle timeout is for
     * keep-alive connections between requests. */
    arm_timer(c, srv->cfg.head_timeout_ms);
    idle_enter(c);
}

int http_server_listen(struct http_server *srv, const char *host, int port, struct err *e)
{
    struct sockaddr_storage ss;
    int rc = net_parse_addr(host, port, &ss);

    if (rc < 0)
        return err_set(e, "invalid listen address %s", host), rc;
    uv_tcp_init(srv->loop, &srv->listener);
    srv->listener.data = srv;
    rc = uv_tcp_bind(&srv->listener, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&srv->listener, net_listen_backlog(), on_connection);
    if (rc < 0) {
        err_set(e, "listen %s:%d: %s", host, port, uv_strerror(rc));
        uv_close((uv_handle_t *)&srv->listener, NULL);
        return rc;
    }
    srv->listening = true;
    return 0;
}

int http_server_listen_fd(struct http_server *srv, int fd, struct err *e)
{
    int rc;

    uv_tcp_init(srv->loop, &srv->listener);
    srv->listener.data = srv;
    rc = uv_tcp_open(&srv->listener, fd);
    if (rc < 0) {
        close(fd);
        goto err;
    }
    rc = uv_listen((uv_stream_t *)&srv->listener, net_listen_backlog(), on_connection);
    if (rc < 0)
        goto err;
    srv->listening = true;
    return 0;

err:
    err_setf(e, "listen on descriptor %d: %s", fd, uv_strerror(rc));
    uv_close((uv_handle_t *)&srv->listener, NULL);
    return rc;
}

static void on_listener_closed(uv_handle_t *h)
{
    struct http_server *srv = h->data;
    srv->listening = false;
    maybe_server_closed(srv);
}

void http_server_answer_held(struct http_server *srv, int status, const char *text)
{
    struct http_conn *c;

    LIST_FOR_EACH(c, &srv->conns, link) {
        if (c->state != CONN_DISPATCHED || !c->req)
            continue;
        struct http_request *req = c->req;
        http_abort_cb abort = req->on_abort;
        req->on_abort = NULL;
        if (abort)
            abort(req);
        req->data = NULL;
        req->_keep_alive = false;
        req->_bad_header = false;
        buf_reset(&req->_headers);
        http_respond_text(req, status, text);
    }
}

void http_server_close(struct http_server *srv, void (*on_closed)(struct http_server *srv))
{
    srv->closing = true;
    srv->on_closed = on_closed;
    /* Connections still writing a response (e.g. the 200 of a "leave" request) finish it
     * first; the others close now. */
    struct http_conn *c;
    LIST_FOR_EACH(c, &srv->conns, link) {
        if (c->writes_pending > 0 && c->state != CONN_DISPATCHED) {
            c->close_after_write = true;
            c->state = CONN_CLOSING;
            if (c->reading) {
                uv_read_stop((uv_stream_t *)&c->tcp);
                c->reading = false;
            }
            deadline_clear(&c->timer);
        } else {
            conn_close(c);
        }
    }
    if (srv->listening)
        uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
    else
        maybe_server_closed(srv);
}
