/*
 * Active health checks: one small state machine per server, on the control loop.
 *
 *   idle --timer--> connecting --connected--> waiting for the status line --> idle
 *
 * The check's one timer is the interval timer while idle and the timeout while a check runs.
 * A check ends by closing its socket; the next one is armed from the close callback, so a
 * socket is never reused while libuv still holds it.
 */
#include "lb/health.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "lib/alloc.h"
#include "lib/duration.h"
#include "lib/http_parse.h"
#include "lib/log.h"
#include "lib/net.h"

#define CHECK_READ_MAX 4096 /* the status line and headers; the body is not read */

struct lb_check {
    struct lb_health *h;   /* NULL once removed */
    struct lb_server *srv; /* a reference */
    struct lb_check *next;
    uv_timer_t timer;
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_write_t write;
    bool running;   /* a check is in flight */
    bool connected; /* the running check's connection is up (timeouts are L7 from here) */
    bool tcp_open;  /* tcp is initialized and not yet closed */
    bool timer_open;
    int last_state; /* the server's state after our last verdict */
    uint64_t start_ms;
    char *request;
    size_t rlen;
    char rbuf[CHECK_READ_MAX];
};

struct lb_health {
    uv_loop_t *loop;
    struct lb_backend *b;
    struct lb_check *checks;
    uint64_t rng;
    /* settings, copied from the config */
    bool enabled;
    char *path;
    uint64_t inter_ms, timeout_ms, eject_for_ms;
    int rise, fall;
};

static void check_arm(struct lb_check *c, uint64_t delay_ms);

static uint64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

static uint64_t next_random(struct lb_health *h)
{
    /* xorshift64: spreading first checks needs no quality, only no shared state */
    h->rng ^= h->rng << 13;
    h->rng ^= h->rng >> 7;
    h->rng ^= h->rng << 17;
    return h->rng;
}

static void check_maybe_free(struct lb_check *c)
{
    if (c->h || c->tcp_open || c->timer_open)
        return;
    lb_server_unref(c->srv);
    c->srv = NULL;
    free(c->request);
    free(c);
}

/* ---- verdicts ---------------------------------------------------------------------------- */

/* Records one check's outcome on the server and moves it between UP and DOWN. */
static void check_verdict(struct lb_check *c, bool ok, const char *status, int code)
{
    struct lb_health *h = c->h;
    struct lb_server *s = c->srv;
    int st = atomic_load(&s->state);

    snprintf(s->check_status, sizeof(s->check_status), "%s", status);
    s->check_code = code;
    s->check_duration_ms = wall_ms() - c->start_ms;
    /* Ejected by the workers since our last verdict: it must earn `rise` passes again. */
    if (st == LB_SRV_DOWN && c->last_state != LB_SRV_DOWN)
        s->check_rise = 0;
    if (ok) {
        s->check_fall = 0;
        if (s->check_rise < 1000000)
            s->check_rise++;
        if (st == LB_SRV_DOWN && s->check_rise >= h->rise) {
            lb_server_set_state(s, LB_SRV_UP);
            log_info("server %s/%s is UP (%s, %d passing checks)", h->b->name, s->name, status,
                     s->check_rise);
        }
    } else {
        lb_count(&s->chkfail, 1);
        s->check_rise = 0;
        if (s->check_fall < 1000000)
            s->check_fall++;
        if (st == LB_SRV_UP && s->check_fall >= h->fall) {
            lb_server_set_state(s, LB_SRV_DOWN);
            lb_count(&s->chkdown, 1);
            log_warn("server %s/%s is DOWN (%s%s%.0d, %d failed checks)", h->b->name, s->name,
                     status, code ? " " : "", code, s->check_fall);
        }
    }
    c->last_state = atomic_load(&s->state);
}

static void on_tcp_closed(uv_handle_t *handle)
{
    struct lb_check *c = handle->data;

    c->tcp_open = false;
    if (c->h)
        check_arm(c, c->h->inter_ms);
    else
        check_maybe_free(c);
}

/* Ends the running check: verdict (when still wanted), close the socket. */
static void check_finish(struct lb_check *c, bool ok, const char *status, int code)
{
    if (!c->running)
        return;
    c->running = false;
    uv_timer_stop(&c->timer);
    if (c->h)
        check_verdict(c, ok, status, code);
    if (c->tcp_open && !uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
}

/* ---- one check --------------------------------------------------------------------------- */

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct lb_check *c = handle->data;

    (void)suggested;
    buf->base = c->rbuf + c->rlen;
    buf->len = sizeof(c->rbuf) - c->rlen;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct lb_check *c = stream->data;
    struct http_response_head head;

    (void)buf;
    if (!c->running || nread == 0)
        return;
    if (nread < 0) {
        check_finish(c, false, "L7RSP", 0); /* closed or reset before a whole status head */
        return;
    }
    c->rlen += (size_t)nread;
    struct http_limits limits = {.max_head_bytes = sizeof(c->rbuf)};
    int n = http_parse_response(c->rbuf, c->rlen, &limits, &head);
    if (n > 0) {
        bool ok = head.status >= 200 && head.status < 400;
        check_finish(c, ok, ok ? "L7OK" : "L7STS", head.status);
    } else if (n != HTTP_PARSE_INCOMPLETE || c->rlen == sizeof(c->rbuf)) {
        check_finish(c, false, "L7RSP", 0);
    }
}

static void on_written(uv_write_t *req, int status)
{
    struct lb_check *c = req->data;

    if (status < 0 && status != UV_ECANCELED)
        check_finish(c, false, "SOCKERR", 0);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct lb_check *c = req->data;

    if (!c->running || status == UV_ECANCELED)
        return;
    if (status < 0) {
        check_finish(c, false, "L4CON", 0);
        return;
    }
    c->connected = true;
    uv_buf_t b = uv_buf_init(c->request, (unsigned)strlen(c->request));
    c->write.data = c;
    if (uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
        check_finish(c, false, "SOCKERR", 0);
}

static void on_timeout(uv_timer_t *t)
{
    struct lb_check *c = t->data;

    check_finish(c, false, c->connected ? "L7TOUT" : "L4TOUT", 0);
}

static void check_start(struct lb_check *c)
{
    struct lb_health *h = c->h;
    char addr[80];

    net_addr_name((const struct sockaddr *)&c->srv->sa, addr, sizeof(addr));
    free(c->request);
    c->request = xasprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: mesh-lb-check\r\n"
                           "Accept: */*\r\nConnection: close\r\n\r\n",
                           h->path, addr);
    c->running = true;
    c->connected = false;
    c->rlen = 0;
    c->start_ms = wall_ms();
    uv_tcp_init(h->loop, &c->tcp);
    c->tcp.data = c;
    c->tcp_open = true;
    c->connect.data = c;
    uv_timer_start(&c->timer, on_timeout, h->timeout_ms, 0);
    if (uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr *)&c->srv->sa, on_connect) < 0)
        check_finish(c, false, "SOCKERR", 0);
}

/* Without active checks, an ejected server comes back once it has been out eject_for. */
static void check_eject_expiry(struct lb_check *c)
{
    struct lb_server *s = c->srv;

    if (atomic_load(&s->state) == LB_SRV_DOWN &&
        wall_ms() - atomic_load(&s->last_change_ms) >= c->h->eject_for_ms) {
        lb_server_set_state(s, LB_SRV_UP);
        log_info("server %s/%s is UP (ejection over)", c->h->b->name, s->name);
    }
}

static void on_tick(uv_timer_t *t)
{
    struct lb_check *c = t->data;
    struct lb_health *h = c->h;

    if (!h->enabled) {
        check_eject_expiry(c);
        check_arm(c, h->eject_for_ms < 1000 ? h->eject_for_ms : 1000);
        return;
    }
    check_start(c);
}

static void check_arm(struct lb_check *c, uint64_t delay_ms)
{
    uv_timer_start(&c->timer, on_tick, delay_ms ? delay_ms : 1, 0);
}

/* ---- the set of checks ------------------------------------------------------------------- */

static void on_timer_closed(uv_handle_t *handle)
{
    struct lb_check *c = handle->data;

    c->timer_open = false;
    check_maybe_free(c);
}

static void check_add(struct lb_health *h, struct lb_server *s)
{
    struct lb_check *c = xcalloc(1, sizeof(*c));

    c->h = h;
    c->srv = lb_server_ref(s);
    c->last_state = atomic_load(&s->state);
    uv_timer_init(h->loop, &c->timer);
    c->timer.data = c;
    c->timer_open = true;
    c->next = h->checks;
    h->checks = c;
    check_arm(c, h->inter_ms ? next_random(h) % h->inter_ms : 0);
}

/* Stops c (already unlinked); it frees itself once its handles are closed. */
static void check_remove(struct lb_check *c)
{
    c->h = NULL;
    check_finish(c, false, "", 0);
    if (c->tcp_open && !uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

static bool set_has(const struct lb_server_set *set, const struct lb_server *s)
{
    for (size_t i = 0; set && i < set->n; i++)
        if (set->v[i] == s)
            return true;
    return false;
}

void lb_health_sync(struct lb_health *h)
{
    struct lb_server_set *set = lb_backend_acquire(h->b);

    for (struct lb_check **p = &h->checks; *p;) {
        struct lb_check *c = *p;
        if (set_has(set, c->srv)) {
            p = &c->next;
            continue;
        }
        *p = c->next;
        check_remove(c);
    }
    for (size_t i = 0; set && i < set->n; i++) {
        bool known = false;
        for (struct lb_check *c = h->checks; c && !known; c = c->next)
            known = c->srv == set->v[i];
        if (!known)
            check_add(h, set->v[i]);
    }
    lb_server_set_unref(set);
}

void lb_health_configure(struct lb_health *h, const struct lb_config *cfg)
{
    free(h->path);
    h->path = xstrdup(cfg->check_path);
    h->enabled = cfg->check;
    h->inter_ms = (uint64_t)(cfg->check_inter_ns / DURATION_MS);
    h->timeout_ms = (uint64_t)(cfg->check_timeout_ns / DURATION_MS);
    if (h->timeout_ms == 0)
        h->timeout_ms = 1;
    h->eject_for_ms = (uint64_t)(cfg->eject_for_ns / DURATION_MS);
    h->rise = cfg->check_rise > 0 ? cfg->check_rise : 1;
    h->fall = cfg->check_fall > 0 ? cfg->check_fall : 1;
}

struct lb_health *lb_health_new(uv_loop_t *loop, const struct lb_config *cfg, struct lb_backend *b)
{
    struct lb_health *h = xcalloc(1, sizeof(*h));

    h->loop = loop;
    h->b = b;
    h->rng = uv_hrtime() | 1;
    lb_health_configure(h, cfg);
    lb_health_sync(h);
    return h;
}

void lb_health_free(struct lb_health *h)
{
    if (!h)
        return;
    while (h->checks) {
        struct lb_check *c = h->checks;
        h->checks = c->next;
        check_remove(c);
    }
    free(h->path);
    free(h);
}
