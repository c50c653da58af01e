/*
 * The DNS listeners: one UDP socket and one TCP listener on the same address and port. UDP
 * answers go out as they are built (trimmed to fit, dns.c); TCP carries length-prefixed
 * messages (RFC 1035 4.2.2), several per connection, and exists for clients that retry a
 * truncated UDP answer or want every record.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/list.h"
#include "lib/log.h"
#include "lib/net.h"
#include "registry/dns/dns.h"
#include "registry/settings/settings.h"

#define TCP_MAX_CONNS   256   /* at the cap the longest-idle connection gives way (conn_evict) */
#define TCP_IDLE_MS     10000 /* a connection with no complete query for this long is closed */
#define TCP_MAX_PENDING 16    /* queries in progress on one connection before it stops reading */
#define UDP_MAX_PENDING 1024  /* UDP queries a client agent's server has not answered yet */

struct reg_dns_listeners {
    struct reg_dns *dns; /* the context it answers in */
    uv_udp_t udp;
    uv_tcp_t tcp;
    bool udp_open, tcp_open;
    int handles; /* open handles (listeners and connections): freed at zero after close */
    int lookups; /* UDP queries whose answer is still to come */
    bool closing;
    struct list_node conns; /* most recently active first: the idle tail gives way at the cap */
    size_t nconns;
    uint8_t rbuf[DNS_MSG_MAX]; /* UDP datagrams land here, one at a time */
};

struct reg_dns_conn {
    uv_tcp_t tcp;
    uv_timer_t idle;
    struct reg_dns_listeners *d;
    struct list_node link; /* in d->conns */
    uint8_t in[2 + DNS_MSG_MAX];
    size_t in_len;
    int pending; /* queries whose answer is not written yet (looked up or being written) */
    int lookups; /* of those, queries whose answer is still to come */
    int closing_handles;
    bool closed;    /* its handles are closed: freed when the last lookup ends */
    bool answering; /* inside conn_answer (a server answers within reg_dns_query) */
    bool eof;       /* the client sent all it will: closed once the pending answers are out */
};

struct udp_query {
    struct reg_dns_listeners *d;
    struct sockaddr_storage from;
};

struct tcp_send {
    uv_write_t req;
    struct reg_dns_conn *conn;
    uint8_t data[];
};

static void maybe_free(struct reg_dns_listeners *d)
{
    if (d->handles == 0 && d->lookups == 0 && d->closing)
        free(d);
}

static void handle_closed(struct reg_dns_listeners *d)
{
    d->handles--;
    maybe_free(d);
}

static void on_listener_closed(uv_handle_t *h)
{
    handle_closed(h->data);
}

/* ---- UDP --------------------------------------------------------------------------------- */

static void on_udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct reg_dns_listeners *d = h->data;
    (void)suggested;
    *buf = uv_buf_init((char *)d->rbuf, sizeof(d->rbuf));
}

static void on_udp_sent(uv_udp_send_t *req, int status)
{
    (void)status; /* a lost UDP answer is the client's to retry */
    free(req->data);
}

static void on_udp_answer(const uint8_t *answer, size_t len, void *data)
{
    struct udp_query *uq = data;
    struct reg_dns_listeners *d = uq->d;

    d->lookups--;
    if (len && !d->closing) {
        uint8_t *copy = xmalloc(sizeof(uv_udp_send_t) + len);
        uv_udp_send_t *req = (uv_udp_send_t *)copy;
        memcpy(copy + sizeof(*req), answer, len);
        uv_buf_t out = uv_buf_init((char *)copy + sizeof(*req), (unsigned)len);
        req->data = copy;
        if (uv_udp_send(req, &d->udp, &out, 1, (const struct sockaddr *)&uq->from, on_udp_sent) < 0)
            free(copy);
    }
    free(uq);
    maybe_free(d);
}

static void on_udp_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                        const struct sockaddr *from, unsigned flags)
{
    struct reg_dns_listeners *d = h->data;

    if (nread <= 0 || !from || (flags & UV_UDP_PARTIAL) || d->closing ||
        d->lookups >= UDP_MAX_PENDING)
        return;
    struct udp_query *uq = xmalloc(sizeof(*uq));
    uq->d = d;
    memcpy(&uq->from, from,
           from->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
    d->lookups++;
    reg_dns_query(d->dns, (const uint8_t *)buf->base, (size_t)nread, false, on_udp_answer, uq);
}

/* ---- TCP --------------------------------------------------------------------------------- */

static void conn_free(struct reg_dns_conn *c)
{
    struct reg_dns_listeners *d = c->d;

    free(c);
    handle_closed(d);
}

static void conn_closed(uv_handle_t *h)
{
    struct reg_dns_conn *c = h->data;

    if (--c->closing_handles > 0)
        return;
    c->closed = true;
    if (c->lookups == 0)
        conn_free(c);
}

/* A complete query arrived: the connection moves to the front, away from eviction. */
static void conn_touch(struct reg_dns_conn *c)
{
    list_remove(&c->link);
    list_insert_head(&c->d->conns, &c->link);
    uv_timer_again(&c->idle);
}

static void conn_close(struct reg_dns_conn *c)
{
    struct reg_dns_listeners *d = c->d;

    if (c->closing_handles || c->closed)
        return;
    list_remove(&c->link);
    d->nconns--;
    c->closing_handles = 2;
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
    uv_close((uv_handle_t *)&c->idle, conn_closed);
}

static void on_conn_idle(uv_timer_t *t)
{
    conn_close(t->data);
}

static void on_tcp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct reg_dns_conn *c = h->data;
    (void)suggested;
    *buf = uv_buf_init((char *)c->in + c->in_len, (unsigned)(sizeof(c->in) - c->in_len));
}

static void on_tcp_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);
static void conn_answer(struct reg_dns_conn *c);

static bool conn_gone(const struct reg_dns_conn *c)
{
    return c->closing_handles || c->closed;
}

/* One query is done with: a connection that had stopped reading at the limit reads again; one
 * whose client half-closed closes after its last answer. */
static void conn_release(struct reg_dns_conn *c)
{
    if (--c->pending == 0 && c->eof && !conn_gone(c)) {
        conn_close(c);
        return;
    }
    if (c->pending + 1 == TCP_MAX_PENDING && !conn_gone(c) && !c->answering && !c->eof) {
        uv_read_start((uv_stream_t *)&c->tcp, on_tcp_alloc, on_tcp_read);
        conn_answer(c);
    }
}

static void on_tcp_written(uv_write_t *req, int status)
{
    struct tcp_send *s = req->data;
    struct reg_dns_conn *c = s->conn;

    free(s);
    if (conn_gone(c))
        return;
    if (status < 0)
        conn_close(c);
    else
        conn_release(c);
}

static void on_tcp_answer(const uint8_t *answer, size_t len, void *data)
{
    struct reg_dns_conn *c = data;

    c->lookups--;
    if (c->closed) {
        if (c->lookups == 0)
            conn_free(c);
        return;
    }
    if (c->closing_handles)
        return;
    if (len == 0) {
        conn_release(c);
        return;
    }
    struct tcp_send *s = xmalloc(sizeof(*s) + 2 + len);
    s->data[0] = (uint8_t)(len >> 8);
    s->data[1] = (uint8_t)len;
    memcpy(s->data + 2, answer, len);
    s->conn = c;
    s->req.data = s;
    uv_buf_t out = uv_buf_init((char *)s->data, (unsigned)(len + 2));
    if (uv_write(&s->req, (uv_stream_t *)&c->tcp, &out, 1, on_tcp_written) < 0) {
        free(s);
        conn_close(c);
    }
}

/* Starts answering every complete message in the input buffer. */
static void conn_answer(struct reg_dns_conn *c)
{
    size_t off = 0;

    c->answering = true;
    while (c->in_len - off >= 2 && c->pending < TCP_MAX_PENDING && !conn_gone(c)) {
        size_t mlen = (size_t)c->in[off] << 8 | c->in[off + 1];
        if (c->in_len - off - 2 < mlen)
            break;
        conn_touch(c);
        c->pending++;
        c->lookups++;
        reg_dns_query(c->d->dns, c->in + off + 2, mlen, true, on_tcp_answer, c);
        off += 2 + mlen;
    }
    c->answering = false;
    if (conn_gone(c))
        return;
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    if (c->pending >= TCP_MAX_PENDING) /* a client that sends and never reads: stop reading */
        uv_read_stop((uv_stream_t *)&c->tcp);
}

static void on_tcp_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct reg_dns_conn *c = st->data;

    (void)buf;
    /* A client may half-close after its last query: the answers still due go out first, as
     * Consul's server writes each answer before it reads on. */
    if (nread == UV_EOF && c->pending > 0) {
        c->eof = true;
        uv_read_stop(st);
        return;
    }
    if (nread < 0) {
        conn_close(c);
        return;
    }
    c->in_len += (size_t)nread;
    conn_answer(c);
}

/*
 * At the cap, the connection idle the longest (no answer in progress) is closed so that
 * sockets opened and held silent cannot lock resolvers out; true if one made room. With every
 * connection busy answering, the newcomer is the one refused.
 */
static bool conn_evict_idlest(struct reg_dns_listeners *d)
{
    struct reg_dns_conn *c;

    LIST_FOR_EACH_REVERSE(c, &d->conns, link) { /* from the least recently active */
        if (c->pending == 0) {
            log_debug("dns: %d tcp connections: closing the longest idle one", TCP_MAX_CONNS);
            conn_close(c);
            return true;
        }
    }
    return false;
}

static void on_tcp_connection(uv_stream_t *server, int status)
{
    struct reg_dns_listeners *d = server->data;

    if (status < 0 || d->closing)
        return;
    bool room = d->nconns < TCP_MAX_CONNS || conn_evict_idlest(d);
    struct reg_dns_conn *c = xcalloc(1, sizeof(*c));
    c->d = d;
    uv_tcp_init(d->dns->loop, &c->tcp);
    uv_timer_init(d->dns->loop, &c->idle);
    c->tcp.data = c->idle.data = c;
    list_insert_head(&d->conns, &c->link);
    d->nconns++;
    d->handles++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 || !room) {
        conn_close(c);
        return;
    }
    uv_timer_start(&c->idle, on_conn_idle, TCP_IDLE_MS, TCP_IDLE_MS);
    uv_read_start((uv_stream_t *)&c->tcp, on_tcp_alloc, on_tcp_read);
}

/* ---- lifecycle --------------------------------------------------------------------------- */

static int open_listeners(struct reg_dns_listeners *d, const char *host, int port, struct err *e)
{
    struct sockaddr_storage ss;
    int rc = net_parse_addr(host, port, &ss);

    if (rc < 0)
        return err_set(e, "dns: invalid client address \"%s\"", host), rc;
    uv_udp_init(d->dns->loop, &d->udp);
    uv_tcp_init(d->dns->loop, &d->tcp);
    d->udp.data = d->tcp.data = d;
    d->udp_open = d->tcp_open = true;
    d->handles = 2;
    rc = uv_udp_bind(&d->udp, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_udp_recv_start(&d->udp, on_udp_alloc, on_udp_recv);
    if (rc == 0)
        rc = uv_tcp_bind(&d->tcp, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&d->tcp, 128, on_tcp_connection);
    if (rc < 0)
        err_set(e, "dns: listen %s:%d: %s", host, port, uv_strerror(rc));
    return rc;
}

int reg_dns_start(struct reg_dns *dns, struct err *e)
{
    const struct reg_settings *cfg = dns->cfg;

    if (cfg->dns_port < 0)
        return 0;
    struct reg_dns_listeners *d = xcalloc(1, sizeof(*d));
    d->dns = dns;
    list_init(&d->conns);
    dns->listeners = d;
    int rc = open_listeners(d, cfg->client_addr, cfg->dns_port, e);
    if (rc < 0) {
        reg_dns_close(dns);
        return rc;
    }
    log_info("dns on %s:%d (udp and tcp), domain %s", cfg->client_addr, cfg->dns_port, cfg->domain);
    return 0;
}

void reg_dns_close(struct reg_dns *dns)
{
    struct reg_dns_listeners *d = dns->listeners;

    if (!d)
        return;
    dns->listeners = NULL;
    d->closing = true;
    struct reg_dns_conn *c;
    LIST_FOR_EACH(c, &d->conns, link)
        conn_close(c);
    if (d->udp_open) {
        uv_close((uv_handle_t *)&d->udp, on_listener_closed);
        uv_close((uv_handle_t *)&d->tcp, on_listener_closed);
    }
    maybe_free(d);
}
