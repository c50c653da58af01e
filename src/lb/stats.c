/*
 * The stats and admin HTTP server of `mesh lb` (see stats.h): routing, Basic auth, the admin
 * API, and the 1 s timer that turns request counts into rates. Renderings are in stats_csv.c
 * (CSV, JSON, Prometheus) and stats_html.c.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "lib/alloc.h"
#include "lib/base64.h"
#include "lib/http_server.h"
#include "lib/json.h"
#include "lib/url.h"
#include "lb/stats.h"

#define RATE_INTERVAL_MS 1000
#define MAX_AUTH_HEADER  1024

struct lb_stats {
    uv_loop_t *loop;
    const struct lb_config *cfg;
    struct lb_backend *b;
    struct lb_counters *fe;
    struct http_server http;
    uv_timer_t timer;
    uv_idle_t reaper;  /* a second handle to order the frees after a failed listen */
    char *credentials; /* "user:password", NULL when auth is off */
    char *path;        /* a copy of cfg->stats_path (or "/stats"): a reload may free cfg's */
    /* rates: req_tot as seen at the previous tick */
    uint64_t fe_prev, be_prev;
    struct lb_server_set *prev_set; /* held; prev_req[i] belongs to prev_set->v[i] */
    uint64_t *prev_req;
    int open_handles;
};

static uint64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

/* ---- rates ------------------------------------------------------------------------------ */

static void store_rate(struct lb_counters *c, uint64_t prev, uint64_t now)
{
    uint64_t rate = now >= prev ? now - prev : 0;

    /* only this thread writes the rates, so plain stores are enough */
    atomic_store_explicit(&c->rate_last, rate, memory_order_relaxed);
    if (rate > lb_read(&c->rate_max))
        atomic_store_explicit(&c->rate_max, rate, memory_order_relaxed);
}

/*
 * req_tot of srv at the previous tick (or at start). A server not seen then is new: the
 * registry watch creates servers with zeroed counters, so all its requests are recent.
 */
static uint64_t prev_req_of(const struct lb_stats *s, const struct lb_server *srv, size_t i)
{
    const struct lb_server_set *p = s->prev_set;

    if (!p)
        return 0;
    if (i < p->n && p->v[i] == srv) /* sets usually keep their order */
        return s->prev_req[i];
    for (size_t k = 0; k < p->n; k++)
        if (p->v[k] == srv)
            return s->prev_req[k];
    return 0;
}

static uint64_t requests(const struct lb_counters *c)
{
    struct lb_totals t;

    lb_counters_sum(c, &t);
    return t.req_tot;
}

/* Remembers the current request counts; with update, stores the rates since the last call. */
static void rate_sample(struct lb_stats *s, bool update)
{
    struct lb_server_set *set = lb_backend_acquire(s->b);
    uint64_t *req = set ? xcalloc(set->n ? set->n : 1, sizeof(*req)) : NULL;
    uint64_t fe = requests(s->fe), be = requests(&s->b->c);

    if (update) {
        store_rate(s->fe, s->fe_prev, fe);
        store_rate(&s->b->c, s->be_prev, be);
    }
    s->fe_prev = fe;
    s->be_prev = be;
    for (size_t i = 0; set && i < set->n; i++) {
        struct lb_server *srv = set->v[i];
        req[i] = requests(&srv->c);
        if (update)
            store_rate(&srv->c, prev_req_of(s, srv, i), req[i]);
    }
    lb_server_set_unref(s->prev_set);
    free(s->prev_req);
    s->prev_set = set;
    s->prev_req = req;
}

static void on_rate_tick(uv_timer_t *t)
{
    rate_sample(t->data, true);
}

/* ---- auth ------------------------------------------------------------------------------- */

static bool authorized(const struct lb_stats *s, const struct http_request *req)
{
    const struct http_header *h = http_request_header(req, "Authorization");
    char enc[MAX_AUTH_HEADER];
    bool ok = false;

    if (!s->credentials)
        return true;
    if (!h || h->value.n < 6 || h->value.n >= sizeof(enc) + 6 ||
        strncasecmp(h->value.p, "Basic ", 6) != 0)
        return false;
    struct str b64 = str_trim(str_skip(h->value, 6));
    memcpy(enc, b64.p, b64.n);
    enc[b64.n] = '\0';
    size_t len = 0;
    unsigned char *dec = base64_decode(enc, &len);
    if (dec && len == strlen(s->credentials)) {
        unsigned char diff = 0; /* the same time whatever the first wrong byte */
        for (size_t i = 0; i < len; i++)
            diff |= (unsigned char)(dec[i] ^ (unsigned char)s->credentials[i]);
        ok = diff == 0;
    }
    free(dec);
    return ok;
}

/* ---- read-only pages -------------------------------------------------------------------- */

enum stats_format { FMT_HTML, FMT_CSV, FMT_JSON, FMT_PROMETHEUS };

static bool is_read_method(const struct http_request *req)
{
    return str_eq_cstr(req->method, "GET") || str_eq_cstr(req->method, "HEAD");
}

static void respond_405(struct http_request *req, const char *allow)
{
    http_response_header(req, "Allow", "%s", allow);
    http_respond_text(req, 405, "method not allowed\n");
}

static void serve_rows(struct lb_stats *s, struct http_request *req, enum stats_format fmt,
                       int refresh_s)
{
    struct lb_stats_view view = {.cfg = s->cfg,
                                 .b = s->b,
                                 .fe = s->fe,
                                 .set = lb_backend_acquire(s->b),
                                 .now_ms = wall_ms()};
    struct buf out = BUF_INIT;
    size_t n = 0;
    struct lb_stat_row *rows = lb_stats_rows(&view, &n);
    const char *type = "text/html; charset=utf-8";

    switch (fmt) {
    case FMT_HTML:
        lb_stats_html(&out, &view, rows, n, refresh_s);
        break;
    case FMT_CSV:
        lb_stats_csv(&out, rows, n);
        type = "text/plain; charset=utf-8";
        break;
    case FMT_JSON:
        lb_stats_json(&out, rows, n);
        type = "application/json";
        break;
    case FMT_PROMETHEUS:
        lb_stats_prometheus(&out, rows, n);
        type = "text/plain; version=0.0.4; charset=utf-8";
        break;
    }
    http_response_header(req, "Cache-Control", "no-cache");
    http_respond(req, 200, type, out.data, out.len);
    buf_free(&out);
    free(rows);
    lb_server_set_unref(view.set);
}

/* <path>[;csv|;json][;norefresh]: HAProxy's URI options; others are refused with 404. */
static void serve_stats(struct lb_stats *s, struct http_request *req, struct str opts)
{
    enum stats_format fmt = FMT_HTML;
    int refresh = s->cfg->stats_refresh_s;

    if (!is_read_method(req)) {
        respond_405(req, "GET, HEAD");
        return;
    }
    while (opts.n > 0) {
        opts = str_skip(opts, 1); /* the ';' */
        const char *semi = memchr(opts.p, ';', opts.n);
        struct str opt = {opts.p, semi ? (size_t)(semi - opts.p) : opts.n};
        opts = str_skip(opts, opt.n);
        if (str_eq_cstr(opt, "csv")) {
            fmt = FMT_CSV;
        } else if (str_eq_cstr(opt, "json")) {
            fmt = FMT_JSON;
        } else if (str_eq_cstr(opt, "norefresh")) {
            refresh = 0;
        } else {
            http_respond_text(req, 404, "unknown stats option (want ;csv, ;json or ;norefresh)\n");
            return;
        }
    }
    serve_rows(s, req, fmt, refresh);
}

/* ---- admin ------------------------------------------------------------------------------ */

enum admin_action { ACT_DRAIN, ACT_MAINT, ACT_READY, ACT_WEIGHT, ACT_UNKNOWN };

static enum admin_action parse_action(const char *a)
{
    static const char *const names[] = {"drain", "maint", "ready", "weight"};
    for (int i = 0; i < ACT_UNKNOWN; i++)
        if (strcmp(a, names[i]) == 0)
            return (enum admin_action)i;
    return ACT_UNKNOWN;
}

/* 0..256 as HAProxy's "set weight"; -1 when absent or malformed. */
static int parse_weight(const char *w)
{
    unsigned long long v;

    if (!w || !str_to_u64(str_from(w), &v) || v > 256)
        return -1;
    return (int)v;
}

static struct lb_server *find_server(struct lb_server_set *set, const char *name)
{
    for (size_t i = 0; set && i < set->n; i++)
        if (strcmp(set->v[i]->name, name) == 0)
            return set->v[i];
    return NULL;
}

static void admin_answer(struct http_request *req, const struct lb_server *srv)
{
    struct buf out = BUF_INIT;
    json_t *o = json_pack("{s:s, s:s, s:i}", "server", srv->name, "state",
                          lb_server_state_name((enum lb_server_state)atomic_load(&srv->state)),
                          "weight", atomic_load(&srv->weight));

    json_append(&out, o, false);
    buf_append_cstr(&out, "\n");
    http_respond(req, 200, "application/json", out.data, out.len);
    json_decref(o);
    buf_free(&out);
}

/* Applies the action to the server; returns NULL or the reason for a 400 (weight). */
static const char *admin_apply(struct lb_server *srv, enum admin_action act, const char *weight)
{
    static const enum lb_server_state states[] = {LB_SRV_DRAIN, LB_SRV_MAINT, LB_SRV_UP};
    int w;

    if (act != ACT_WEIGHT) {
        lb_server_set_state(srv, states[act]);
        return NULL;
    }
    if ((w = parse_weight(weight)) < 0)
        return "weight must be an integer from 0 to 256\n";
    lb_server_set_weight(srv, w);
    return NULL;
}

static void admin_server(struct lb_stats *s, struct http_request *req, struct str name_enc)
{
    struct buf name = BUF_INIT;
    struct url_query q = {0};
    struct lb_server_set *set = NULL;
    const char *action, *reason;

    if (!str_eq_cstr(req->method, "POST") && !str_eq_cstr(req->method, "PUT")) {
        respond_405(req, "POST, PUT");
        return;
    }
    /* A NUL or invalid UTF-8 in the name is a bad request, not a shorter name. */
    int rc = url_decode(name_enc, false, &name);
    if (rc == -EILSEQ) {
        http_respond_text(req, 400, "server name is not UTF-8 text (NUL or invalid byte)\n");
        goto out;
    }
    if (rc < 0 || name.len == 0 || memchr(name.data, '/', name.len)) {
        http_respond_text(req, 404, "no such server\n");
        goto out;
    }
    /* parameters in the query, or a form body (curl -d action=drain) */
    if (url_query_parse(req->query, &q) < 0 ||
        (!url_query_has(&q, "action") && req->body_len > 0 &&
         (url_query_free(&q), url_query_parse((struct str){req->body, req->body_len}, &q)) < 0)) {
        http_respond_text(req, 400, "malformed query (bad escape, NUL or invalid UTF-8)\n");
        goto out;
    }
    action = url_query_get(&q, "action");
    if (!action || parse_action(action) == ACT_UNKNOWN) {
        http_respond_text(req, 400, "action must be drain, maint, ready or weight\n");
        goto out;
    }
    set = lb_backend_acquire(s->b);
    struct lb_server *srv = find_server(set, name.data);
    if (!srv) {
        struct buf msg = BUF_INIT;
        buf_printf(&msg, "no server %s in backend %s\n", name.data, s->b->name);
        http_respond_text(req, 404, msg.data);
        buf_free(&msg);
        goto out;
    }
    reason = admin_apply(srv, parse_action(action), url_query_get(&q, "weight"));
    if (reason)
        http_respond_text(req, 400, reason);
    else
        admin_answer(req, srv);
out:
    lb_server_set_unref(set);
    url_query_free(&q);
    buf_free(&name);
}

/* ---- routing ---------------------------------------------------------------------------- */

static void on_request(struct http_request *req, void *data)
{
    struct lb_stats *s = data;
    struct str path = req->path;
    struct str base = str_from(s->path);
    static const char admin[] = "/admin/server/";

    if (!authorized(s, req)) {
        http_response_header(req, "WWW-Authenticate", "Basic realm=\"HAProxy Statistics\"");
        http_respond_text(req, 401, "401 Unauthorized\n");
        return;
    }
    if (str_eq_cstr(path, "/metrics")) {
        if (is_read_method(req))
            serve_rows(s, req, FMT_PROMETHEUS, 0);
        else
            respond_405(req, "GET, HEAD");
        return;
    }
    if (str_has_prefix(path, base)) {
        struct str rest = str_skip(path, base.n);
        if (rest.n == 0 || rest.p[0] == ';') {
            serve_stats(s, req, rest);
            return;
        }
        if (str_has_prefix(rest, STR_LIT(admin))) {
            admin_server(s, req, str_skip(rest, sizeof(admin) - 1));
            return;
        }
    }
    if (str_eq_cstr(path, "/") && is_read_method(req)) {
        http_response_header(req, "Location", "%s", s->path);
        http_respond_text(req, 302, "see the stats page\n");
        return;
    }
    http_respond_text(req, 404, "not found\n");
}

/* ---- life ------------------------------------------------------------------------------- */

static void stats_free(struct lb_stats *s)
{
    lb_server_set_unref(s->prev_set);
    free(s->prev_req);
    free(s->credentials);
    free(s->path);
    free(s);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct lb_stats *s = h->data;
    if (--s->open_handles == 0)
        stats_free(s);
}

static void on_http_closed(struct http_server *srv)
{
    struct lb_stats *s = (struct lb_stats *)((char *)srv - offsetof(struct lb_stats, http));
    if (--s->open_handles == 0)
        stats_free(s);
}

/*
 * After a failed listen, http_server has a close of its listener pending (no callback). Closes
 * run last-queued first, so s is freed from a close queued one pass later: reaper's callback
 * closes the timer, whose callback frees.
 */
static void on_reaper_closed(uv_handle_t *h)
{
    struct lb_stats *s = h->data;
    uv_close((uv_handle_t *)&s->timer, on_handle_closed);
}

int lb_stats_start(struct lb_stats **out, uv_loop_t *loop, const struct lb_config *cfg,
                   struct lb_backend *b, struct lb_counters *frontend, struct err *e)
{
    struct lb_stats *s = xcalloc(1, sizeof(*s));
    const char *addr = cfg->stats_addr ? cfg->stats_addr : "0.0.0.0";
    /* HAProxy serves its stats page to an HTTP/1.1 request without Host, as any other */
    struct http_server_config hc = {
        .max_body_bytes = 64 * 1024, .max_conns = 256, .host_optional = true};
    int rc;

    s->loop = loop;
    s->cfg = cfg;
    s->b = b;
    s->fe = frontend;
    s->path = xstrdup(cfg->stats_path && cfg->stats_path[0] ? cfg->stats_path : "/stats");
    if (cfg->stats_user && cfg->stats_user[0]) {
        struct buf c = BUF_INIT;
        buf_printf(&c, "%s:%s", cfg->stats_user, cfg->stats_password ? cfg->stats_password : "");
        s->credentials = buf_steal(&c);
    }
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    s->open_handles = 1;
    http_server_init(&s->http, loop, &hc, on_request, s);
    rc = http_server_listen(&s->http, addr, cfg->stats_port, e);
    if (rc < 0) {
        err_prefix(e, "stats");
        uv_idle_init(loop, &s->reaper);
        s->reaper.data = s;
        uv_close((uv_handle_t *)&s->reaper, on_reaper_closed);
        *out = NULL;
        return rc;
    }
    s->open_handles = 2;
    rate_sample(s, false);
    uv_timer_start(&s->timer, on_rate_tick, RATE_INTERVAL_MS, RATE_INTERVAL_MS);
    *out = s;
    return 0;
}

void lb_stats_close(struct lb_stats *s)
{
    if (!s)
        return;
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, on_handle_closed);
    http_server_close(&s->http, on_http_closed);
}
