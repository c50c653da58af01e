/*
 * One client connection's state machine:
 *
 *   HEAD --head parsed--> (QUEUED) --slot--> CONNECT --connected--> PROXY --response sent--> HEAD
 *     \--bad/too large/timeout--> ERROR --page written--> LINGER --EOF or timer--> closed
 *
 * A request asking for an Upgrade that the server grants with 101 turns PROXY into a tunnel:
 * bytes flow both ways unparsed (both "bodies" last until close) under one inactivity
 * timeout, and the connection ends when the server's side ends (see tunnel_start).
 *
 * Bytes move without copies: both sockets are read on readiness straight into the connection's
 * buffers (c->in from the client, c->rsp from the server: lib/pollsock.h), the part that
 * belongs to the current message is written to the other side (one send or sendmsg, a wait
 * for writable for any rest) and consumed once written. While a write is pending the source
 * is not read (backpressure bounded by one buffer), and a server is not timed while it waits
 * on the client. Framing is tracked (Content-Length, chunked through a decoder run on a
 * scratch copy) so the bytes of the next pipelined request are never sent to the server of
 * the current one.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <unistd.h>

#include "lib/alloc.h"
#include "lib/buf.h"
#include "lib/bug.h"
#include "lib/deadline.h"
#include "lib/http_parse.h"
#include "lib/pollsock.h"
#include "lb/proxy.h"
#include "lb/rewrite.h"

#define IO_LIMIT      65536 /* bytes buffered per direction; also the head size limit */
#define SMALL_BODY    1024  /* body bytes sent in one buffer with their head (response_bufs) */
#define READ_CHUNK    16384
#define LINGER_MS     1000
#define QUEUE_POLL_MS 10

enum client_state {
    CS_HEAD,    /* reading a request head (or idle between requests) */
    CS_QUEUED,  /* waiting for a server slot */
    CS_CONNECT, /* connecting to the server */
    CS_PROXY,   /* request and response flowing */
    CS_ERROR,   /* writing a generated response, then linger */
    CS_LINGER,  /* write side shut down, draining input until EOF so no RST eats the answer */
};

enum body_mode { BODY_NONE, BODY_LENGTH, BODY_CHUNKED, BODY_DECHUNK, BODY_UNTIL_CLOSE };

struct lb_client {
    struct pollsock io;    /* TCP, or a UNIX socket (lb_proxy_open_fd); its data is c */
    struct deadline timer; /* whichever timeout the state waits under (client_timer) */
    struct lb_proxy *px;
    struct list_node link;   /* in px->clients */
    struct lb_client *qnext; /* px queue */
    int open_handles;
    char ip[64];
    bool ipv6;

    enum client_state state;
    bool closing, cli_eof, first;
    struct buf in;      /* client bytes not yet forwarded (body, or the next request) */
    struct buf rsp;     /* server bytes not yet forwarded */
    struct buf uphead;  /* the rewritten request head (kept until sent, for retries) */
    struct buf clihead; /* the rewritten response head, or a generated response */
    struct buf added;   /* the proxy's own request fields for this client (lb_rewrite_added) */

    /* How far a head at the front of in / rsp was searched: each read scans only new bytes. */
    struct http_head_scan req_scan, rsp_scan;

    /* current request */
    bool is_head, idempotent, cli_keep, req_done, head_sent, minor0;
    bool upgrade_req; /* asks to switch protocols (Connection: upgrade + Upgrade) */
    bool tunnel;      /* the server answered 101: relaying bytes both ways */
    bool up_shut;     /* tunnel: the client's half-close was passed on to the server */
    enum body_mode req_mode;
    uint64_t req_left;
    struct http_chunked_decoder req_dec;
    uint64_t req_body_sent;
    bool up_write_busy;
    size_t up_write_consume;
    int retries_left;

    /* upstream */
    struct lb_upconn *up;
    struct lb_server *srv;        /* holds a slot and a reference */
    struct lb_server *queued_srv; /* reference while queued */
    bool in_backend;              /* backend scur counted */

    /* when the current request reached each phase (loop_now_ns; 0 = not yet): lb_times */
    uint64_t t_req, t_slot, t_connect, t_ready, t_rsp_head;

    /* current response */
    uint64_t rsp_bytes;
    bool rsp_head_done, rsp_done, up_keep, clihead_pending;
    bool rsp_started; /* a byte of the answer (an interim head too) went to the client */
    enum body_mode rsp_mode;
    uint64_t rsp_left;
    struct http_chunked_decoder rsp_dec;
    bool cli_write_busy;
    size_t cli_write_consume;
    int status;
};

static void client_process(struct lb_client *c);
static void rsp_pump(struct lb_client *c);
static void req_pump(struct lb_client *c);
static void dispatch(struct lb_client *c, struct lb_server *avoid);
static void send_error(struct lb_client *c, int status);
static void client_close(struct lb_client *c);
static void update_reading(struct lb_client *c);
static bool client_eof_check(struct lb_client *c);
static void count_client_abort(struct lb_client *c);
static void queue_try(struct lb_proxy *px);

/*
 * The time of the loop iteration under way, in nanoseconds, for the phases of requests
 * (lb_times): read at the first need after each poll and shared by every event of its batch,
 * instead of one clock read per phase of every request. The phases are thus as precise as one
 * loop iteration (well under the histograms' 0.5 ms first bound), as HAProxy's, which reads
 * its clock once per poll too.
 */
static uint64_t loop_now_ns(struct lb_proxy *px)
{
    if (px->now_stale) {
        px->now_ns = uv_hrtime();
        px->now_stale = false;
    }
    return px->now_ns;
}

static void loop_tick(uv_prepare_t *p)
{
    struct lb_proxy *px = p->data;
    px->now_stale = true;
}

static uint64_t ns_to_ms(int64_t ns)
{
    return ns <= 0 ? 0 : (uint64_t)((ns + 999999) / 1000000);
}

/* The part of counter set c this proxy's worker writes (lb.h: struct lb_shard). */
static struct lb_shard *mine(const struct lb_proxy *px, struct lb_counters *c)
{
    return lb_shard_of(c, px->worker);
}

static void count_status(struct lb_proxy *px, struct lb_counters *c, int status)
{
    int cls = status / 100;
    lb_shard_add(&mine(px, c)->hrsp[cls >= 1 && cls <= 5 ? cls : 0], 1);
}

static void note_qmax(lb_counter *qcur, lb_counter *qmax)
{
    uint64_t cur = lb_read(qcur), max = lb_read(qmax);
    while (cur > max && !atomic_compare_exchange_weak_explicit(
                            qmax, &max, cur, memory_order_relaxed, memory_order_relaxed))
        ;
}

/* Passive ejection: a streak of failures takes the server DOWN until health checks restore it. */
static void note_failure(struct lb_proxy *px, struct lb_server *s)
{
    int limit = px->cfg->eject_after_errors;
    int n = atomic_fetch_add_explicit(&s->consecutive_errors, 1, memory_order_relaxed) + 1;

    if (limit > 0 && n >= limit &&
        atomic_load_explicit(&s->state, memory_order_relaxed) == LB_SRV_UP)
        lb_server_set_state(s, LB_SRV_DOWN);
}

static void note_success(struct lb_server *s)
{
    /* Read first: a store on every response would bounce the cache line between workers. */
    if (atomic_load_explicit(&s->consecutive_errors, memory_order_relaxed) != 0)
        atomic_store_explicit(&s->consecutive_errors, 0, memory_order_relaxed);
}

static void on_cli_write(struct pollsock *ps, int status);
static void on_up_write(struct pollsock *ps, int status);

/*
 * Every write to the client goes through here, one at a time: the buffers of a write whose
 * rest waits (c->clihead, c->rsp) must not change until on_cli_write. Returns as
 * pollsock_write; cli_write_busy is set while the rest waits.
 */
static int cli_send(struct lb_client *c, uv_buf_t *bufs, unsigned nb)
{
    if (MESH_BUG_ON(c->cli_write_busy))
        return UV_EBUSY;
    int r = pollsock_write(&c->io, bufs, nb, on_cli_write);
    if (r == 0)
        c->cli_write_busy = true;
    return r;
}

/* The same for the server side, over c->uphead and c->in. */
static int up_send(struct lb_client *c, uv_buf_t *bufs, unsigned nb)
{
    if (MESH_BUG_ON(c->up_write_busy || !c->up || !c->up->connected))
        return UV_EBUSY;
    int r = pollsock_write(&c->up->sock, bufs, nb, on_up_write);
    if (r == 0)
        c->up_write_busy = true;
    return r;
}

/* ---- client timers ------------------------------------------------------------------------ */

static void client_timeout(struct deadline *d);

/* Re-armed on every request, so a deadline (lib/deadline.h): moving it later costs nothing. */
static void client_timer(struct lb_client *c, int64_t ns)
{
    /* a tunnel has one inactivity timeout for both sides, whatever the caller waits for */
    if (c->tunnel)
        ns = c->px->cfg->timeout_tunnel_ns;

    uint64_t ms = ns_to_ms(ns);

    if (ms)
        deadline_set(&c->timer, ms);
    else
        deadline_clear(&c->timer);
}

/* The timer of the HEAD state: keep-alive while idle, http-request once bytes arrived. */
static void head_timer(struct lb_client *c)
{
    const struct lb_config *cfg = c->px->cfg;

    if (c->in.len == 0 && !c->first)
        client_timer(c, cfg->timeout_keepalive_ns);
    else
        client_timer(c, cfg->timeout_http_request_ns);
}

static void client_timeout(struct deadline *d)
{
    struct lb_client *c = d->data;
    struct lb_proxy *px = c->px;

    switch (c->state) {
    case CS_HEAD:
        if (c->in.len == 0)
            client_close(c);
        else
            send_error(c, 408);
        break;
    case CS_QUEUED:
        send_error(c, 503);
        break;
    case CS_CONNECT:
    case CS_PROXY:
        if (c->tunnel) {
            client_close(c); /* an idle tunnel ending is not an abort */
            break;
        }
        lb_count(&px->fe->cli_abrt, 1);
        lb_count(&px->backend->c.cli_abrt, 1);
        if (c->srv)
            lb_count(&c->srv->c.cli_abrt, 1);
        client_close(c);
        break;
    default:
        client_close(c);
        break;
    }
}

/* ---- requests ---------------------------------------------------------------------------- */

/* Upgrade is hop-by-hop, but passed on (with Connection: Upgrade) when switching protocols. */
/* A protocol switch the proxy can relay: asked for properly, by HTTP/1.1, without a body. */
static bool wants_upgrade(const struct http_request_head *req)
{
    if (!req->framing.upgrade || req->minor_version == 0 || req->framing.chunked ||
        req->framing.content_length > 0)
        return false;
    for (size_t i = 0; i < req->num_headers; i++)
        if (req->headers[i].id == HTTP_FIELD_UPGRADE && req->headers[i].value.n > 0)
            return true;
    return false;
}

static bool method_idempotent(struct str m)
{
    static const char *const ok[] = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"};

    for (size_t i = 0; i < ARRAY_LEN(ok); i++)
        if (str_eq_cstr(m, ok[i]))
            return true;
    return false;
}

/* ---- body framing ------------------------------------------------------------------------- */

/*
 * How many of the n bytes at p belong to the current body, advancing the framing state.
 * *done is set when the body ends within them. -1 on malformed chunked framing.
 */
static ssize_t body_span(struct lb_proxy *px, enum body_mode mode, uint64_t *left,
                         struct http_chunked_decoder *dec, const char *p, size_t n, bool *done)
{
    *done = false;
    switch (mode) {
    case BODY_NONE:
        *done = true;
        return 0;
    case BODY_LENGTH: {
        size_t k = *left < n ? (size_t)*left : n;
        *left -= k;
        *done = *left == 0;
        return (ssize_t)k;
    }
    case BODY_CHUNKED: {
        /* The decoder works in place: run it on a copy to find the end, forward the original. */
        size_t k = n < sizeof(px->scratch) ? n : sizeof(px->scratch);
        size_t len = k;
        memcpy(px->scratch, p, k);
        ssize_t r = http_decode_chunked(dec, px->scratch, &len);
        if (r == HTTP_PARSE_BAD)
            return -1;
        if (r >= 0) {
            *done = true;
            return (ssize_t)(k - (size_t)r);
        }
        return (ssize_t)k;
    }
    default: /* BODY_UNTIL_CLOSE (responses) */
        return (ssize_t)n;
    }
}

/* ---- upstream ----------------------------------------------------------------------------- */

static void release_upstream(struct lb_client *c, bool keep)
{
    struct lb_proxy *px = c->px;
    struct lb_upconn *u = c->up;

    if (u) {
        c->up = NULL;
        lb_upconn_timeout(u, 0);
        if (keep && !u->closing) {
            lb_pool_put(u);
        } else {
            lb_upconn_close(u);
        }
    }
    c->up_write_busy = false;
    if (c->tunnel) {
        atomic_fetch_sub_explicit(&px->backend->c.tunnel_cur, 1, memory_order_relaxed);
        atomic_fetch_sub_explicit(&c->srv->c.tunnel_cur, 1, memory_order_relaxed);
        c->tunnel = false;
    }
    if (c->srv) {
        lb_server_release(c->srv);
        lb_server_unref(c->srv);
        c->srv = NULL;
        /* A slot freed: a queued request of this worker may take it. */
        if (px->queue_head)
            queue_try(px);
    }
}

static void leave_backend(struct lb_client *c)
{
    if (c->in_backend) {
        lb_scur_dec(&c->px->backend->c);
        c->in_backend = false;
    }
}

static void up_timer(struct lb_client *c, int64_t ns)
{
    uint64_t ms = ns_to_ms(ns);

    if (!c->up)
        return;
    if (c->tunnel) {
        /* the server's activity keeps the tunnel alive: one timer, the client's */
        lb_upconn_timeout(c->up, 0);
        client_timer(c, 0);
        return;
    }
    lb_upconn_timeout(c->up, ms);
}

/* The connection to the server failed before the response started: retry or answer. */
static void upstream_failed(struct lb_client *c, bool connecting)
{
    struct lb_proxy *px = c->px;
    const struct lb_config *cfg = px->cfg;
    struct lb_server *s = c->srv;
    bool reused = c->up && c->up->reused;
    bool nothing_sent = c->req_body_sent == 0;
    bool retryable = connecting || (c->rsp_bytes == 0 && nothing_sent);

    if (c->up) {
        lb_upconn_close(c->up);
        c->up = NULL;
    }
    c->up_write_busy = false;
    if (!retryable) {
        lb_count(&s->c.srv_abrt, 1);
        lb_count(&px->backend->c.srv_abrt, 1);
        send_error(c, 502);
        return;
    }
    if (reused && !connecting) {
        /* A pooled connection the server had closed: not the server's fault, not a retry. */
        c->state = CS_CONNECT;
        dispatch(c, NULL);
        return;
    }
    if (connecting) {
        lb_count(&s->c.econ, 1);
        lb_count(&px->backend->c.econ, 1);
        note_failure(px, s);
    }
    if (c->retries_left <= 0) {
        send_error(c, connecting ? 503 : 502);
        return;
    }
    c->retries_left--;
    lb_count(&s->c.wretr, 1);
    lb_count(&px->backend->c.wretr, 1);
    if (cfg->redispatch) {
        lb_count(&s->c.wredis, 1);
        lb_count(&px->backend->c.wredis, 1);
        /* keep s alive while avoiding it */
        struct lb_server *old = lb_server_ref(s);
        release_upstream(c, false);
        dispatch(c, old);
        lb_server_unref(old);
        return;
    }
    c->srv = s;
    c->state = CS_CONNECT;
    dispatch(c, NULL);
}

static void up_timeout(struct lb_upconn *u)
{
    struct lb_client *c = u->owner;

    if (c->state == CS_CONNECT) {
        upstream_failed(c, true);
        return;
    }
    lb_count(&c->srv->c.srv_abrt, 1);
    lb_count(&c->px->backend->c.srv_abrt, 1);
    send_error(c, 504);
}

/* EOF or error from the server while it was lent to c. */
static void upstream_eof(struct lb_client *c)
{
    struct lb_proxy *px = c->px;

    if (c->rsp_done) {
        c->up_keep = false; /* closed after a complete response: just not reusable */
        return;
    }
    if (c->rsp_bytes == 0) {
        upstream_failed(c, false);
        return;
    }
    if (c->rsp_head_done && c->rsp_mode == BODY_UNTIL_CLOSE) {
        c->rsp_done = true;
        c->up_keep = false;
        rsp_pump(c);
        return;
    }
    lb_count(&c->srv->c.srv_abrt, 1);
    lb_count(&px->backend->c.srv_abrt, 1);
    send_error(c, 502);
}

/* The server's connection is readable (reading is on only while c->rsp has room). */
static void up_read(struct lb_upconn *u)
{
    struct lb_client *c = u->owner;
    size_t room = IO_LIMIT - c->rsp.len;
    size_t want = room < READ_CHUNK ? room : READ_CHUNK;

    buf_reserve(&c->rsp, want);
    ssize_t nread = pollsock_recv(&u->sock, c->rsp.data + c->rsp.len, want);
    if (nread == UV_EAGAIN)
        return;
    if (nread < 0) {
        upstream_eof(c);
        return;
    }
    c->rsp.len += (size_t)nread;
    c->rsp_bytes += (uint64_t)nread;
    lb_shard_add(&mine(c->px, &c->srv->c)->bout, (uint64_t)nread);
    lb_shard_add(&mine(c->px, &c->px->backend->c)->bout, (uint64_t)nread);
    up_timer(c, c->px->cfg->timeout_server_ns);
    rsp_pump(c);
}

static void on_up_write(struct pollsock *ps, int status)
{
    struct lb_upconn *u = ps->data;
    struct lb_client *c = u->owner;

    if (u->closing || !c)
        return;
    c->up_write_busy = false;
    if (status < 0) {
        upstream_eof(c);
        return;
    }
    if (MESH_BUG_ON(c->up_write_consume > c->in.len)) {
        client_close(c);
        return;
    }
    buf_consume(&c->in, c->up_write_consume);
    c->up_write_consume = 0;
    up_timer(c, c->px->cfg->timeout_server_ns);
    req_pump(c);
    update_reading(c);
}

/*
 * Forwards what c->in holds of the request body (after the head when it is not sent yet),
 * until the body ends, the buffer is empty or a write is pending.
 */
static void req_pump(struct lb_client *c)
{
    struct lb_proxy *px = c->px;

    while (c->up && c->up->connected && !c->up_write_busy && (!c->head_sent || !c->req_done)) {
        uv_buf_t bufs[2];
        unsigned nb = 0;
        bool done = c->req_done;
        ssize_t n = 0;

        if (!c->head_sent)
            bufs[nb++] = uv_buf_init(c->uphead.data, (unsigned)c->uphead.len);
        if (!c->req_done && c->in.len > 0) {
            n = body_span(px, c->req_mode, &c->req_left, &c->req_dec, c->in.data, c->in.len, &done);
            if (n < 0) {
                /* malformed chunked body: the server has seen part of it, drop the connection */
                release_upstream(c, false);
                send_error(c, 400);
                return;
            }
            if (n > 0)
                bufs[nb++] = uv_buf_init(c->in.data, (unsigned)n);
        }
        if (nb == 0)
            break;
        size_t total = (c->head_sent ? 0 : c->uphead.len) + (size_t)n;
        c->head_sent = true;
        c->req_body_sent += (uint64_t)n;
        c->req_done = done;
        if (done && !c->cli_write_busy)
            deadline_clear(&c->timer); /* the client owes nothing until the response is out */
        lb_shard_add(&mine(px, &c->srv->c)->bin, total);
        lb_shard_add(&mine(px, &px->backend->c)->bin, total);
        int r = up_send(c, bufs, nb);
        if (r < 0) {
            upstream_eof(c);
            return;
        }
        if (r == 0) {
            c->up_write_consume = (size_t)n;
            break;
        }
        buf_consume(&c->in, (size_t)n);
    }
    client_eof_check(c);
}

/* The connection is ready (fresh or from the pool): send the head and start reading. */
static void upstream_ready(struct lb_client *c)
{
    c->t_ready = loop_now_ns(c->px);
    c->state = CS_PROXY;
    c->head_sent = false;
    c->rsp_bytes = 0;
    up_timer(c, c->px->cfg->timeout_server_ns);
    if (!c->req_done)
        client_timer(c, c->px->cfg->timeout_client_ns);
    req_pump(c);
    update_reading(c);
}

static void up_connected(struct lb_upconn *u, int status)
{
    struct lb_client *c = u->owner;

    if (status < 0) {
        upstream_failed(c, true);
        return;
    }
    upstream_ready(c);
}

/* c holds a slot on c->srv: get a pooled connection or open one. */
static void connect_server(struct lb_client *c)
{
    struct lb_proxy *px = c->px;
    int rc = 0;

    c->t_connect = loop_now_ns(px);
    if (!c->t_slot)
        c->t_slot = c->t_connect; /* the end of the queue time; a retry does not move it */
    lb_shard_add(&mine(px, &c->srv->c)->req_tot, 1);
    c->up = lb_pool_get(&px->pool, c->srv, c);
    if (c->up) {
        upstream_ready(c);
        return;
    }
    c->state = CS_CONNECT;
    c->up = lb_pool_connect(&px->pool, c->srv, c, &rc);
    if (!c->up) {
        upstream_failed(c, true);
        return;
    }
    up_timer(c, px->cfg->timeout_connect_ns);
}

/* ---- queue -------------------------------------------------------------------------------- */

static void unqueue(struct lb_client *c)
{
    struct lb_proxy *px = c->px;
    struct lb_client **pp = &px->queue_head, *prev = NULL;

    if (c->state != CS_QUEUED || !c->queued_srv)
        return;
    for (; *pp && *pp != c; pp = &(*pp)->qnext)
        prev = *pp;
    if (*pp) {
        *pp = c->qnext;
        if (px->queue_tail == c)
            px->queue_tail = prev;
        px->queued--;
    }
    c->qnext = NULL;
    atomic_fetch_sub_explicit(&px->backend->qcur, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&c->queued_srv->qcur, 1, memory_order_relaxed);
    lb_server_unref(c->queued_srv);
    c->queued_srv = NULL;
    if (!px->queue_head)
        uv_timer_stop(&px->queue_timer);
}

static void queue_poll(uv_timer_t *t)
{
    queue_try(t->data);
}

static void enqueue(struct lb_client *c, struct lb_server *full)
{
    struct lb_proxy *px = c->px;
    struct lb_backend *b = px->backend;

    if (lb_read(&b->qcur) >= (uint64_t)(px->cfg->queue_max > 0 ? px->cfg->queue_max : 0)) {
        send_error(c, 503);
        return;
    }
    c->state = CS_QUEUED;
    c->queued_srv = lb_server_ref(full);
    c->qnext = NULL;
    if (px->queue_tail)
        px->queue_tail->qnext = c;
    else
        px->queue_head = c;
    px->queue_tail = c;
    px->queued++;
    lb_count(&b->qcur, 1);
    lb_count(&full->qcur, 1);
    note_qmax(&b->qcur, &b->qmax);
    note_qmax(&full->qcur, &full->qmax);
    client_timer(c, px->cfg->timeout_queue_ns);
    if (!uv_is_active((uv_handle_t *)&px->queue_timer))
        uv_timer_start(&px->queue_timer, queue_poll, QUEUE_POLL_MS, QUEUE_POLL_MS);
}

/*
 * Gives free slots to queued requests in order. Slots freed by other workers are seen by the
 * poll timer, which runs only while the queue is not empty.
 */
static void queue_try(struct lb_proxy *px)
{
    while (!px->closing && px->queue_head) {
        struct lb_client *c = px->queue_head;
        struct lb_server *full = NULL;
        lb_picker_sync(&px->picker, px->backend);
        struct lb_server *s = lb_picker_pick(&px->picker, px->cfg->server_maxconn, NULL, &full);
        if (!s && full)
            return;
        unqueue(c);
        if (!s) {
            send_error(c, 503);
            continue;
        }
        c->srv = lb_server_ref(s);
        connect_server(c);
    }
}

/* Picks a server for the parsed request (avoid: the one that just failed, may be NULL). */
static void dispatch(struct lb_client *c, struct lb_server *avoid)
{
    struct lb_proxy *px = c->px;
    struct lb_server *full = NULL;

    if (!c->in_backend) {
        lb_scur_inc(&px->backend->c);
        lb_shard_add(&mine(px, &px->backend->c)->req_tot, 1);
        c->in_backend = true;
    }
    if (c->srv) {
        connect_server(c);
        return;
    }
    lb_picker_sync(&px->picker, px->backend);
    struct lb_server *s = lb_picker_pick(&px->picker, px->cfg->server_maxconn, avoid, &full);
    if (!s) {
        if (full)
            enqueue(c, full);
        else
            send_error(c, 503);
        return;
    }
    c->srv = lb_server_ref(s);
    connect_server(c);
}

/* ---- responses ---------------------------------------------------------------------------- */

/* The response head for the client (c->clihead), from the server's parsed one. */
static void build_response_head(struct lb_client *c, const struct http_response_head *res,
                                const char *fields_end, bool final)
{
    enum lb_rewrite_conn conn = LB_CONN_NONE;

    if (c->tunnel)
        conn = LB_CONN_UPGRADE;
    else if (final && !c->cli_keep)
        conn = LB_CONN_CLOSE;
    else if (final && c->minor0)
        conn = LB_CONN_KEEP_ALIVE;
    lb_rewrite_response(&c->clihead, res, fields_end, c->rsp_mode == BODY_DECHUNK, conn);
    c->clihead_pending = true;
}

/* A final response head arrived: decide its framing and what to do with both connections. */
static void response_head(struct lb_client *c, const struct http_response_head *res,
                          const char *fields_end)
{
    struct lb_proxy *px = c->px;

    c->status = res->status;
    if (!http_response_has_body(res, c->is_head)) {
        c->rsp_mode = BODY_NONE;
    } else if (res->framing.chunked) {
        c->rsp_mode = c->minor0 ? BODY_DECHUNK : BODY_CHUNKED;
        if (c->minor0)
            c->cli_keep = false; /* an HTTP/1.0 client sees the end of the body as the close */
    } else if (res->framing.content_length >= 0) {
        c->rsp_mode = res->framing.content_length > 0 ? BODY_LENGTH : BODY_NONE;
        c->rsp_left = (uint64_t)res->framing.content_length;
    } else {
        c->rsp_mode = BODY_UNTIL_CLOSE;
        c->cli_keep = false;
    }
    c->up_keep = res->framing.keep_alive && c->rsp_mode != BODY_UNTIL_CLOSE;
    if (!c->req_done)
        c->cli_keep = false; /* the rest of the request body would be taken for a request */
    if (px->draining)
        c->cli_keep = false;
    c->rsp_dec = HTTP_CHUNKED_DECODER_INIT;
    c->rsp_head_done = true;
    c->t_rsp_head = loop_now_ns(px);
    c->rsp_done = c->rsp_mode == BODY_NONE;
    count_status(px, px->fe, res->status);
    count_status(px, &px->backend->c, res->status);
    count_status(px, &c->srv->c, res->status);
    if (res->status >= 500)
        note_failure(px, c->srv);
    else
        note_success(c->srv);
    build_response_head(c, res, fields_end, true);
}

/*
 * The server switched protocols (101, to a request that asked): from here on the connection is
 * a tunnel, as HAProxy's after a 101. Both directions are relayed unparsed ("bodies" that last
 * until close) under timeout_tunnel alone. The client's half-close is passed on to the server
 * (tunnel_pass_eof); the server's end ends the client's connection once its bytes are out.
 */
static void tunnel_start(struct lb_client *c, const struct http_response_head *res,
                         const char *fields_end)
{
    struct lb_proxy *px = c->px;

    c->tunnel = true;
    c->up_shut = false;
    c->status = res->status;
    c->rsp_head_done = true;
    c->t_rsp_head = loop_now_ns(px);
    c->rsp_mode = c->req_mode = BODY_UNTIL_CLOSE;
    c->rsp_done = c->req_done = false;
    c->cli_keep = c->up_keep = false;
    count_status(px, px->fe, res->status);
    count_status(px, &px->backend->c, res->status);
    count_status(px, &c->srv->c, res->status);
    note_success(c->srv);
    lb_count(&px->backend->c.tunnel_cur, 1);
    lb_count(&px->backend->c.tunnel_tot, 1);
    lb_count(&c->srv->c.tunnel_cur, 1);
    lb_count(&c->srv->c.tunnel_tot, 1);
    lb_upconn_timeout(c->up, 0);
    client_timer(c, 0);
    build_response_head(c, res, fields_end, false);
}

/* Parses a response head from c->rsp. 1 parsed (consumed), 0 incomplete, -1 answered 502. */
static int parse_response_head(struct lb_client *c)
{
    struct lb_proxy *px = c->px;
    struct http_response_head *res = &px->reshead;
    int r = http_scan_response(&c->rsp_scan, c->rsp.data, c->rsp.len, NULL, res);

    if (r == HTTP_PARSE_INCOMPLETE && c->rsp.len < IO_LIMIT)
        return 0;
    if (r < 0 || (res->status == 101 && !c->upgrade_req)) {
        lb_count(&c->srv->c.eresp, 1);
        lb_count(&px->backend->c.eresp, 1);
        note_failure(px, c->srv);
        send_error(c, 502);
        return -1;
    }
    const char *fields_end = c->rsp.data + r - 2; /* before the blank line */
    if (res->status == 101) {
        tunnel_start(c, res, fields_end);
    } else if (res->status < 200) {
        /* interim response (100 Continue, 103): HTTP/1.0 clients do not get them */
        if (c->minor0)
            c->clihead_pending = false;
        else
            build_response_head(c, res, fields_end, false);
    } else {
        response_head(c, res, fields_end);
    }
    buf_consume(&c->rsp, (size_t)r);
    c->rsp_scan = HTTP_HEAD_SCAN_INIT;
    return 1;
}

static void finish_request(struct lb_client *c);

static void on_cli_write(struct pollsock *ps, int status)
{
    struct lb_client *c = ps->data;

    if (c->closing)
        return;
    c->cli_write_busy = false;
    if (status < 0) {
        if (c->state != CS_ERROR && c->state != CS_LINGER)
            lb_count(&c->px->fe->cli_abrt, 1);
        client_close(c);
        return;
    }
    if (c->state == CS_ERROR && c->cli_eof) {
        client_close(c);
        return;
    }
    if (c->state == CS_ERROR) {
        c->state = CS_LINGER;
        update_reading(c);
        pollsock_shutdown(&c->io); /* an error shows as the linger's EOF or its timer */
        deadline_set(&c->timer, LINGER_MS);
        return;
    }
    client_timer(c, 0); /* stopped, or the tunnel's re-armed */
    if (MESH_BUG_ON(c->cli_write_consume > c->rsp.len)) {
        client_close(c);
        return;
    }
    buf_consume(&c->rsp, c->cli_write_consume);
    c->cli_write_consume = 0;
    rsp_pump(c);
}

/*
 * The buffers of the next write to the client: the pending head, then n body bytes of c->rsp.
 * A small body is copied behind the head, so that one send carries both: a copy of up to
 * SMALL_BODY bytes costs less than the kernel's sendmsg of two buffers (importing the msghdr
 * and the iovec). The body's bytes are consumed from c->rsp as when they are sent from there.
 */
static unsigned response_bufs(struct lb_client *c, size_t n, uv_buf_t bufs[2])
{
    unsigned nb = 0;

    if (c->clihead_pending && n > 0 && n <= SMALL_BODY) {
        buf_append(&c->clihead, c->rsp.data, n);
        n = 0;
    }
    if (c->clihead_pending)
        bufs[nb++] = uv_buf_init(c->clihead.data, (unsigned)c->clihead.len);
    if (n > 0)
        bufs[nb++] = uv_buf_init(c->rsp.data, (unsigned)n);
    return nb;
}

/* Moves response bytes from c->rsp to the client, one write at a time. */
static void rsp_pump(struct lb_client *c)
{
    struct lb_proxy *px = c->px;

    while (!c->cli_write_busy && c->state == CS_PROXY) {
        if (!c->rsp_head_done) {
            int r = parse_response_head(c);
            if (r < 0)
                return;
            if (r == 0 && !c->clihead_pending)
                break;
            if (r == 1 && !c->clihead_pending)
                continue; /* an interim response an HTTP/1.0 client does not get */
        }
        uv_buf_t bufs[2];
        ssize_t n = 0;
        if (c->rsp_head_done && !c->rsp_done && c->rsp.len > 0) {
            bool done = false;
            if (c->rsp_mode == BODY_DECHUNK) {
                size_t len = c->rsp.len;
                ssize_t r = http_decode_chunked(&c->rsp_dec, c->rsp.data, &len);
                if (r == HTTP_PARSE_BAD) {
                    lb_count(&c->srv->c.eresp, 1);
                    lb_count(&px->backend->c.eresp, 1);
                    send_error(c, 502);
                    return;
                }
                done = r >= 0;
                c->rsp.len = len; /* bytes after the body are dropped (and the link too) */
                if (r > 0)
                    c->up_keep = false;
                n = (ssize_t)len;
            } else {
                n = body_span(px, c->rsp_mode, &c->rsp_left, &c->rsp_dec, c->rsp.data, c->rsp.len,
                              &done);
                if (n < 0) {
                    lb_count(&c->srv->c.eresp, 1);
                    lb_count(&px->backend->c.eresp, 1);
                    send_error(c, 502);
                    return;
                }
            }
            c->rsp_done = done;
        }
        size_t total = (c->clihead_pending ? c->clihead.len : 0) + (size_t)n;
        unsigned nb = response_bufs(c, (size_t)n, bufs);
        if (nb == 0)
            break;
        /* From here on an error can only close: the client has part of an answer (an interim
         * head counts, and its write may still be in flight over c->clihead). */
        c->rsp_started = true;
        c->clihead_pending = false;
        lb_shard_add(&mine(px, px->fe)->bout, total);
        int r = cli_send(c, bufs, nb);
        if (r < 0) {
            lb_count(&px->fe->cli_abrt, 1);
            client_close(c);
            return;
        }
        if (r == 0) {
            c->cli_write_consume = (size_t)n;
            client_timer(c, px->cfg->timeout_client_ns);
            break;
        }
        buf_consume(&c->rsp, (size_t)n);
    }
    if (c->state == CS_PROXY && c->rsp_done && !c->cli_write_busy) {
        finish_request(c);
        return;
    }
    /* a tunnel that just opened: what the client sent after its request goes over now */
    if (c->tunnel && c->in.len > 0 && !c->up_write_busy) {
        req_pump(c);
        if (c->closing)
            return;
    }
    update_reading(c);
}

static void reset_request(struct lb_client *c)
{
    c->is_head = c->idempotent = c->cli_keep = c->req_done = c->head_sent = c->minor0 = false;
    c->upgrade_req = c->up_shut = false;
    c->req_mode = BODY_NONE;
    c->req_left = 0;
    c->req_dec = HTTP_CHUNKED_DECODER_INIT;
    c->req_body_sent = 0;
    c->up_write_consume = 0;
    c->rsp_bytes = 0;
    c->rsp_head_done = c->rsp_started = c->rsp_done = c->up_keep = c->clihead_pending = false;
    c->rsp_mode = BODY_NONE;
    c->rsp_left = 0;
    c->rsp_dec = HTTP_CHUNKED_DECODER_INIT;
    c->cli_write_consume = 0;
    c->status = 0;
}

/* The response is fully written: recycle the server connection, then the next request. */
/* A request answered by its server: its phases go into the server's and backend's times. */
static void record_times(struct lb_client *c)
{
    uint64_t now = loop_now_ns(c->px);

    if (!c->t_rsp_head || !c->srv ||
        MESH_BUG_ON(c->t_slot < c->t_req || c->t_ready < c->t_connect ||
                    c->t_rsp_head < c->t_ready))
        return;
    struct lb_time_sample s = {{
        [LB_PHASE_QUEUE] = (c->t_slot - c->t_req) / 1000,
        [LB_PHASE_CONNECT] = (c->t_ready - c->t_connect) / 1000,
        [LB_PHASE_RESPONSE] = (c->t_rsp_head - c->t_ready) / 1000,
        [LB_PHASE_TOTAL] = (now - c->t_req) / 1000,
    }};
    lb_times_record(&mine(c->px, &c->srv->c)->times, &s);
    lb_times_record(&mine(c->px, &c->px->backend->c)->times, &s);
}

static void finish_request(struct lb_client *c)
{
    struct lb_proxy *px = c->px;
    bool keep = c->cli_keep && c->req_done && !px->draining;

    /* the next request reuses c->rsp and c->clihead: nothing may still be written from them */
    if (MESH_BUG_ON(c->cli_write_busy)) {
        client_close(c);
        return;
    }
    record_times(c);
    release_upstream(c, c->up_keep && c->req_done && c->rsp.len == 0 && !px->draining);
    leave_backend(c);
    buf_reset(&c->rsp);
    c->rsp_scan = HTTP_HEAD_SCAN_INIT;
    if (!keep || (c->cli_eof && c->in.len == 0)) {
        if (c->cli_eof) {
            client_close(c);
            return;
        }
        c->state = CS_LINGER;
        pollsock_shutdown(&c->io);
        deadline_set(&c->timer, LINGER_MS);
        update_reading(c);
        return;
    }
    reset_request(c);
    c->state = CS_HEAD;
    head_timer(c);
    if (c->in.len)
        client_process(c);
    else
        update_reading(c);
}

/* Answers a generated response (then closes). status is 400, 408, 431, 502, 503 or 504. */
static void send_error(struct lb_client *c, int status)
{
    struct lb_proxy *px = c->px;
    struct buf *b = &c->clihead;

    unqueue(c);
    release_upstream(c, false);
    if (c->rsp_started || c->state == CS_ERROR || c->state == CS_LINGER) {
        /* part of a response is out already: the client sees a truncated message */
        client_close(c);
        return;
    }
    /* nothing went out for this request, so no write of ours can be in flight */
    if (MESH_BUG_ON(c->cli_write_busy)) {
        client_close(c);
        return;
    }
    c->state = CS_ERROR;
    c->cli_keep = false;
    buf_reset(b);
    if (status == 503 && px->page503_len >= 5 && memcmp(px->page503, "HTTP/", 5) == 0) {
        buf_append(b, px->page503, px->page503_len);
    } else {
        char body[256];
        const char *page = body;
        size_t len;
        if (status == 503) {
            page = px->page503; /* an HTML body of the operator's */
            len = px->page503_len;
        } else {
            int n = snprintf(body, sizeof(body), "<html><body><h1>%d %s</h1>\n</body></html>\n",
                             status, http_status_reason(status));
            len = n > 0 && (size_t)n < sizeof(body) ? (size_t)n : 0;
        }
        buf_printf(b,
                   "HTTP/1.1 %d %s\r\nContent-Type: text/html\r\nContent-Length: %zu\r\n"
                   "Cache-Control: no-cache\r\nConnection: close\r\n\r\n",
                   status, http_status_reason(status), len);
        if (!c->is_head)
            buf_append(b, page, len);
    }
    count_status(px, px->fe, status);
    if (status >= 500)
        count_status(px, &px->backend->c, status);
    else
        lb_count(&px->fe->ereq, 1);
    leave_backend(c);
    lb_shard_add(&mine(px, px->fe)->bout, b->len);
    update_reading(c);
    uv_buf_t buf = uv_buf_init(b->data, (unsigned)b->len);
    int r = cli_send(c, &buf, 1);
    if (r < 0)
        client_close(c);
    else if (r == 1)
        on_cli_write(&c->io, 0);
    else
        client_timer(c, px->cfg->timeout_client_ns);
}

/* ---- client side ------------------------------------------------------------------------ */

/*
 * The proxy adds up to four fields to a request head (X-Forwarded-For, X-Forwarded-Proto, Via,
 * Forwarded), joining the client's values of each into one line (lb/rewrite.h). A client's
 * head is held to the default limits minus that much, so what a server receives is within
 * them too: a
 * server with the same limits (the webapp, Python's http.server: 100 fields) would otherwise
 * refuse a request the proxy accepted.
 */
#define ADDED_FIELDS     4
#define ADDED_HEAD_BYTES (2 * HTTP_MAX_HEADERS + 512)
static const struct http_limits client_head_limits = {
    .max_head_bytes = HTTP_DEFAULT_MAX_HEAD - ADDED_HEAD_BYTES,
    .max_headers = HTTP_MAX_HEADERS - ADDED_FIELDS,
    .same_hosts = true, /* HAProxy's: a Host line repeating the first is dropped, not a 400 */
};

/*
 * Host against the request-target, as HAProxy 2.6 reads them (h1.c h1_headers_to_hdr_list):
 * a target naming an authority ("http://a/p") whose Host field names another is a 400 (two
 * names: the server could pick either), its authority read as HAProxy reads it, up to the
 * first '/' ("http://a?x" names "a?x"); a request without Host is passed on, HTTP/1.1 too.
 * Returns 0, or the status to answer: 431 for an HTTP/1.0 request without Host that leaves no
 * room for the one lb_rewrite_request adds.
 */
static int check_host(const struct http_request_head *req)
{
    const struct http_header *host = NULL;
    struct str authority;

    for (size_t i = 0; i < req->num_headers && !host; i++)
        if (req->headers[i].id == HTTP_FIELD_HOST)
            host = &req->headers[i];
    if (!host)
        return req->minor_version == 0 && req->num_headers >= client_head_limits.max_headers ? 431
                                                                                             : 0;
    authority = http_target_proxy_authority(req->target);
    return authority.n && !str_ieq(authority, host->value) ? 400 : 0;
}

static void parse_request(struct lb_client *c)
{
    struct lb_proxy *px = c->px;
    struct http_request_head *req = &px->reqhead;
    int r = http_scan_request(&c->req_scan, c->in.data, c->in.len, &client_head_limits, req);

    if (r == HTTP_PARSE_INCOMPLETE) {
        if (c->cli_eof)
            client_close(c); /* half a request and nothing more to come */
        else if (c->in.len >= IO_LIMIT)
            send_error(c, 431);
        return;
    }
    lb_shard_add(&mine(px, px->fe)->req_tot, 1);
    if (r == HTTP_PARSE_TOO_LARGE) {
        send_error(c, 431);
        return;
    }
    if (r < 0) {
        send_error(c, 400);
        return;
    }
    int refused = check_host(req);
    if (refused) {
        send_error(c, refused);
        return;
    }
    /* the previous request gave its server back (finish_request or send_error) */
    if (MESH_BUG_ON(c->up || c->srv || c->in_backend)) {
        client_close(c);
        return;
    }
    c->first = false;
    c->is_head = str_eq_cstr(req->method, "HEAD");
    c->idempotent = method_idempotent(req->method);
    c->minor0 = req->minor_version == 0;
    c->cli_keep = req->framing.keep_alive && !px->draining;
    if (req->framing.chunked) {
        c->req_mode = BODY_CHUNKED;
    } else if (req->framing.content_length > 0) {
        c->req_mode = BODY_LENGTH;
        c->req_left = (uint64_t)req->framing.content_length;
    } else {
        c->req_mode = BODY_NONE;
    }
    c->req_done = c->req_mode == BODY_NONE;
    c->req_dec = HTTP_CHUNKED_DECODER_INIT;
    c->upgrade_req = wants_upgrade(req);
    c->retries_left = px->cfg->retries;
    c->t_req = loop_now_ns(px);
    c->t_slot = c->t_rsp_head = 0;
    struct lb_rewrite_client client = {c->ip, c->ipv6, c->upgrade_req, buf_str(&c->added)};
    lb_rewrite_request(&c->uphead, req, c->in.data + r - 2, px->cfg, &client);
    buf_consume(&c->in, (size_t)r);
    c->req_scan = HTTP_HEAD_SCAN_INIT;
    deadline_clear(&c->timer);
    c->state = CS_CONNECT;
    dispatch(c, NULL);
}

static void client_process(struct lb_client *c)
{
    if (c->state == CS_HEAD && c->in.len > 0) {
        parse_request(c);
    } else if (c->state == CS_PROXY && !c->req_done) {
        client_timer(c, c->px->cfg->timeout_client_ns);
        req_pump(c);
    } else if (c->state == CS_LINGER) {
        c->in.len = 0; /* discarded */
    }
    if (!c->closing)
        update_reading(c);
}

/* The client's socket is readable (reading is on only while c->in has room). */
static void client_read(struct pollsock *ps)
{
    struct lb_client *c = ps->data;
    struct lb_proxy *px = c->px;
    size_t room = IO_LIMIT - c->in.len;
    size_t want = room < READ_CHUNK ? room : READ_CHUNK;

    buf_reserve(&c->in, want);
    ssize_t nread = pollsock_recv(ps, c->in.data + c->in.len, want);
    if (nread == UV_EAGAIN)
        return;
    if (nread > 0) {
        bool head_begins = c->state == CS_HEAD && c->in.len == 0;
        c->in.len += (size_t)nread;
        c->in.data[c->in.len] = '\0';
        lb_shard_add(&mine(px, px->fe)->bin, (uint64_t)nread);
        client_process(c);
        /* Part of a head came: it has timeout_http_request to complete. A whole head was
         * parsed already, without moving the keep-alive deadline earlier and back. */
        if (head_begins && !c->closing && c->state == CS_HEAD && c->in.len > 0)
            client_timer(c, px->cfg->timeout_http_request_ns);
        return;
    }
    c->cli_eof = true;
    switch (c->state) {
    case CS_QUEUED:
    case CS_CONNECT:
    case CS_PROXY:
        if (nread != UV_EOF) {
            count_client_abort(c);
            client_close(c);
            return;
        }
        /* half-close: what is buffered is still forwarded, and a whole request answered */
        if (client_eof_check(c))
            return;
        break;
    case CS_ERROR:
        break;
    default:
        client_close(c);
        return;
    }
    update_reading(c);
}

static void count_client_abort(struct lb_client *c)
{
    lb_count(&c->px->fe->cli_abrt, 1);
    lb_count(&c->px->backend->c.cli_abrt, 1);
    if (c->srv)
        lb_count(&c->srv->c.cli_abrt, 1);
}

/*
 * A tunnel's client shut its side down: once what it sent is written, shut the server's side
 * down too, so the server sees the end (and ends its side in turn).
 */
static void tunnel_pass_eof(struct lb_client *c)
{
    if (!c->cli_eof || c->up_shut || c->in.len > 0 || c->up_write_busy || !c->up)
        return;
    c->up_shut = true;
    /* the server's answer to it (its EOF) is what ends the tunnel; a failure shows there too */
    pollsock_shutdown(&c->up->sock);
}

/*
 * The client shut its side down: fine once the whole request is forwarded (the answer still
 * goes out), an abort when the body can no longer complete. True when c was closed.
 */
static bool client_eof_check(struct lb_client *c)
{
    if (c->tunnel) {
        tunnel_pass_eof(c);
        return false;
    }
    if (!c->cli_eof || c->req_done || c->state != CS_PROXY || c->up_write_busy || c->in.len > 0)
        return false;
    count_client_abort(c);
    client_close(c);
    return true;
}

static void update_reading(struct lb_client *c)
{
    if (c->closing)
        return;
    bool want = !c->cli_eof && !c->up_write_busy && c->in.len < IO_LIMIT && c->state != CS_ERROR;
    if (want != c->io.reading)
        pollsock_read(&c->io, want);
    /* The server's bytes land in c->rsp, which must not move while a write from it is
     * pending. Bytes after a complete response are not forwarded: they keep the connection
     * out of the pool (finish_request). */
    if (c->up && c->up->connected) {
        bool room = !c->cli_write_busy && c->rsp.len < IO_LIMIT;

        /* As HAProxy's: while the client does not take the answer the server cannot be idle,
         * so its timeout stops (-timeout-client bounds the wait) and starts over when reading
         * resumes. A request write the server has not taken keeps it. */
        if (!room && !c->up_write_busy)
            lb_upconn_timeout(c->up, 0);
        else if (room && !c->up->sock.reading)
            up_timer(c, c->px->cfg->timeout_server_ns);
        lb_upconn_read(c->up, room);
    }
}

static void client_handle_closed(uv_handle_t *h)
{
    struct lb_client *c = h->data;
    struct lb_proxy *px = c->px;

    if (--c->open_handles > 0)
        return;
    buf_free(&c->in);
    buf_free(&c->rsp);
    buf_free(&c->uphead);
    buf_free(&c->clihead);
    buf_free(&c->added);
    free(c);
    if (px->draining && px->nclients == 0 && px->on_idle)
        px->on_idle(px);
}

static void client_close(struct lb_client *c)
{
    struct lb_proxy *px = c->px;

    if (c->closing)
        return;
    unqueue(c);
    release_upstream(c, false);
    leave_backend(c);
    c->closing = true;
    list_remove(&c->link);
    px->nclients--;
    lb_scur_dec(px->fe);
    if (px->on_client_close)
        px->on_client_close(px);
    deadline_close(&c->timer, client_handle_closed);
    pollsock_close(&c->io, client_handle_closed);
}

/* A client on fd (taken over, closed on failure), listed and counted; NULL with *rc set. */
static struct lb_client *client_new(struct lb_proxy *px, int fd, int *rc)
{
    struct lb_client *c = xcalloc(1, sizeof(*c));

    *rc = pollsock_open(&c->io, px->loop, fd, client_read);
    if (*rc < 0) {
        free(c);
        close(fd);
        if (px->on_client_close)
            px->on_client_close(px); /* its worker counted it on the way here */
        return NULL;
    }
    c->px = px;
    c->io.data = c;
    c->open_handles = 2;
    c->first = true;
    c->state = CS_HEAD;
    deadline_init(&c->timer, px->loop, client_timeout, c);
    list_insert_head(&px->clients, &c->link);
    px->nclients++;
    lb_scur_inc(px->fe);
    snprintf(c->ip, sizeof(c->ip), "unknown");
    return c;
}

/* The client's address for the added fields: peer's (borrowed), else the socket's. */
static void client_peer(struct lb_client *c, const struct sockaddr *peer)
{
    struct sockaddr_storage ss = {0}; /* scan-build cannot see getpeername fill it */
    socklen_t len = sizeof(ss);

    if (!peer || peer->sa_family == AF_UNSPEC) {
        if (getpeername(c->io.fd, (struct sockaddr *)&ss, &len) != 0)
            return;
        peer = (const struct sockaddr *)&ss;
    }
    if (peer->sa_family == AF_INET) {
        uv_ip4_name((const struct sockaddr_in *)peer, c->ip, sizeof(c->ip));
    } else if (peer->sa_family == AF_INET6) {
        uv_ip6_name((const struct sockaddr_in6 *)peer, c->ip, sizeof(c->ip));
        c->ipv6 = true;
    }
}

static void client_start(struct lb_client *c)
{
    struct lb_proxy *px = c->px;

    if (px->draining || (px->cfg->maxconn > 0 && px->nclients > (size_t)px->cfg->maxconn)) {
        client_close(c);
        return;
    }
    struct lb_rewrite_client client = {c->ip, c->ipv6, false, {NULL, 0}};
    lb_rewrite_added(&c->added, px->cfg, &client);
    client_timer(c, px->cfg->timeout_http_request_ns);
    update_reading(c);
}

int lb_proxy_open_tcp(struct lb_proxy *px, int fd, const struct sockaddr *peer)
{
    int one = 1, rc;
    struct lb_client *c = client_new(px, fd, &rc);

    if (!c)
        return rc;
    /* every answer leaves in one send: nothing to gain from waiting for more */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    client_peer(c, peer);
    client_start(c);
    return 0;
}

int lb_proxy_open_fd(struct lb_proxy *px, int fd)
{
    struct sockaddr_storage ss = {.ss_family = AF_UNSPEC};
    socklen_t len = sizeof(ss);

    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0 || ss.ss_family != AF_UNIX)
        return lb_proxy_open_tcp(px, fd, NULL);

    int rc;
    struct lb_client *c = client_new(px, fd, &rc);
    if (!c)
        return rc;
    client_start(c);
    return 0;
}

static const struct lb_upconn_ops upconn_ops = {up_read, up_timeout, up_connected};

void lb_proxy_init(struct lb_proxy *px, uv_loop_t *loop, const struct lb_config *cfg,
                   struct lb_backend *backend, struct lb_counters *fe, const char *page503,
                   size_t page503_len)
{
    memset(px, 0, sizeof(*px));
    px->loop = loop;
    px->cfg = cfg;
    px->backend = backend;
    px->fe = fe;
    px->page503 = page503 ? page503 : lb_default_503;
    px->page503_len = page503 ? page503_len : strlen(lb_default_503);
    list_init(&px->clients);
    lb_picker_init(&px->picker, backend->balance, (uint64_t)(uintptr_t)px ^ uv_hrtime());
    lb_pool_init(&px->pool, loop, ns_to_ms(cfg->timeout_keepalive_ns), &upconn_ops);
    uv_timer_init(loop, &px->queue_timer);
    px->queue_timer.data = px;
    px->now_stale = true;
    uv_prepare_init(loop, &px->tick);
    px->tick.data = px;
    uv_prepare_start(&px->tick, loop_tick);
    uv_unref((uv_handle_t *)&px->tick); /* it does not keep the loop alive */
}

void lb_proxy_drain(struct lb_proxy *px)
{
    px->draining = true;
    lb_pool_close_idle(&px->pool);
    struct lb_client *c;
    LIST_FOR_EACH(c, &px->clients, link) {
        if (c->state == CS_HEAD && c->in.len == 0)
            client_close(c);
    }
    if (px->nclients == 0 && px->on_idle)
        px->on_idle(px);
}

void lb_proxy_abort_all(struct lb_proxy *px)
{
    px->closing = true;
    struct lb_client *c;
    while ((c = LIST_ENTRY(list_first(&px->clients), struct lb_client, link)))
        client_close(c);
    lb_pool_close(&px->pool);
}

void lb_proxy_close(struct lb_proxy *px)
{
    lb_proxy_abort_all(px);
    lb_picker_close(&px->picker);
    if (!uv_is_closing((uv_handle_t *)&px->queue_timer))
        uv_close((uv_handle_t *)&px->queue_timer, NULL);
    if (!uv_is_closing((uv_handle_t *)&px->tick))
        uv_close((uv_handle_t *)&px->tick, NULL);
}
