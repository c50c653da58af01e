/*
 * The stats rows (HAProxy's columns, filled from lb.h's counters) and the machine-readable
 * renderings of them: CSV as HAProxy 2.6 prints it, JSON, and Prometheus with promex's names.
 * Column names and order are HAProxy 2.6.12's stat_fields[] and its module columns, taken from
 * the Debian 12 binary, so tools written for HAProxy (Python's csv, haproxy_exporter, scripts
 * indexing columns by number) read ours unchanged.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/json.h"
#include "lb/stats.h"

const char *const lb_stat_col_names[LB_ST_NCOLS] = {
    "pxname",
    "svname",
    "qcur",
    "qmax",
    "scur",
    "smax",
    "slim",
    "stot",
    "bin",
    "bout",
    "dreq",
    "dresp",
    "ereq",
    "econ",
    "eresp",
    "wretr",
    "wredis",
    "status",
    "weight",
    "act",
    "bck",
    "chkfail",
    "chkdown",
    "lastchg",
    "downtime",
    "qlimit",
    "pid",
    "iid",
    "sid",
    "throttle",
    "lbtot",
    "tracked",
    "type",
    "rate",
    "rate_lim",
    "rate_max",
    "check_status",
    "check_code",
    "check_duration",
    "hrsp_1xx",
    "hrsp_2xx",
    "hrsp_3xx",
    "hrsp_4xx",
    "hrsp_5xx",
    "hrsp_other",
    "hanafail",
    "req_rate",
    "req_rate_max",
    "req_tot",
    "cli_abrt",
    "srv_abrt",
    "comp_in",
    "comp_out",
    "comp_byp",
    "comp_rsp",
    "lastsess",
    "last_chk",
    "last_agt",
    "qtime",
    "ctime",
    "rtime",
    "ttime",
    "agent_status",
    "agent_code",
    "agent_duration",
    "check_desc",
    "agent_desc",
    "check_rise",
    "check_fall",
    "check_health",
    "agent_rise",
    "agent_fall",
    "agent_health",
    "addr",
    "cookie",
    "mode",
    "algo",
    "conn_rate",
    "conn_rate_max",
    "conn_tot",
    "intercepted",
    "dcon",
    "dses",
    "wrew",
    "connect",
    "reuse",
    "cache_lookups",
    "cache_hits",
    "srv_icur",
    "src_ilim",
    "qtime_max",
    "ctime_max",
    "rtime_max",
    "ttime_max",
    "eint",
    "idle_conn_cur",
    "safe_conn_cur",
    "used_conn_cur",
    "need_conn_est",
    "uweight",
    "agg_server_status",
    "agg_server_check_status",
    "agg_check_status",
};

/*
 * After the static fields HAProxy prints "-" and then each stats module's columns (ssl, h2, h1
 * in a 2.6 build). We have no such counters: the columns are there, empty, so a row has as many
 * fields as HAProxy's.
 */
static const char *const module_cols[] = {
    "ssl_sess",
    "ssl_reused_sess",
    "ssl_failed_handshake",
    "h2_headers_rcvd",
    "h2_data_rcvd",
    "h2_settings_rcvd",
    "h2_rst_stream_rcvd",
    "h2_goaway_rcvd",
    "h2_detected_conn_protocol_errors",
    "h2_detected_strm_protocol_errors",
    "h2_rst_stream_resp",
    "h2_goaway_resp",
    "h2_open_connections",
    "h2_backend_open_streams",
    "h2_total_connections",
    "h2_backend_total_streams",
    "h1_open_connections",
    "h1_open_streams",
    "h1_total_connections",
    "h1_total_streams",
    "h1_bytes_in",
    "h1_bytes_out",
    "h1_spliced_bytes_in",
    "h1_spliced_bytes_out",
};

#define NMODULE_COLS (sizeof(module_cols) / sizeof(module_cols[0]))

/* ---- rows ------------------------------------------------------------------------------- */

static void set_u(struct lb_stat_row *r, enum lb_stat_col c, uint64_t v)
{
    r->f[c] = (struct lb_stat_field){.kind = LB_STAT_U64, .u = v};
}

static void set_s(struct lb_stat_row *r, enum lb_stat_col c, const char *s)
{
    r->f[c] = (struct lb_stat_field){.kind = LB_STAT_STR, .s = s};
}

/* Columns every row type fills from a struct lb_counters and its shards' totals. */
static void fill_traffic(struct lb_stat_row *r, const struct lb_counters *c,
                         const struct lb_totals *t)
{
    set_u(r, LB_ST_SCUR, lb_read(&c->scur));
    set_u(r, LB_ST_SMAX, lb_read(&c->smax));
    set_u(r, LB_ST_STOT, lb_read(&c->stot));
    set_u(r, LB_ST_BIN, t->bin);
    set_u(r, LB_ST_BOUT, t->bout);
    set_u(r, LB_ST_DRESP, 0);
    set_u(r, LB_ST_PID, 1);
    set_u(r, LB_ST_RATE, lb_read(&c->rate_last));
    set_u(r, LB_ST_RATE_MAX, lb_read(&c->rate_max));
    set_u(r, LB_ST_HRSP_1XX, t->hrsp[1]);
    set_u(r, LB_ST_HRSP_2XX, t->hrsp[2]);
    set_u(r, LB_ST_HRSP_3XX, t->hrsp[3]);
    set_u(r, LB_ST_HRSP_4XX, t->hrsp[4]);
    set_u(r, LB_ST_HRSP_5XX, t->hrsp[5]);
    set_u(r, LB_ST_HRSP_OTHER, t->hrsp[0]);
    set_s(r, LB_ST_MODE, "http");
    set_u(r, LB_ST_WREW, 0);
    set_u(r, LB_ST_EINT, 0);
    set_u(r, LB_ST_X_TUNNEL_CUR, lb_read(&c->tunnel_cur));
    set_u(r, LB_ST_X_TUNNEL_TOT, lb_read(&c->tunnel_tot));
}

/* Columns backends and servers share (HAProxy's [..BS]). */
static void fill_upstream(struct lb_stat_row *r, const struct lb_counters *c, uint64_t qcur,
                          uint64_t qmax)
{
    set_u(r, LB_ST_QCUR, qcur);
    set_u(r, LB_ST_QMAX, qmax);
    set_u(r, LB_ST_ECON, lb_read(&c->econ));
    set_u(r, LB_ST_ERESP, lb_read(&c->eresp));
    set_u(r, LB_ST_WRETR, lb_read(&c->wretr));
    set_u(r, LB_ST_WREDIS, lb_read(&c->wredis));
    set_u(r, LB_ST_LBTOT, lb_read(&c->stot));
    set_u(r, LB_ST_CLI_ABRT, lb_read(&c->cli_abrt));
    set_u(r, LB_ST_SRV_ABRT, lb_read(&c->srv_abrt));
    set_u(r, LB_ST_IID, 2);
    set_u(r, LB_ST_BCK, 0);
}

/* qtime..ttime (HAProxy's averages over the last 1,024 requests) and their maxima, in ms. */
static void fill_times(struct lb_stat_row *r, const struct lb_times_total *t)
{
    static const enum lb_stat_col avg[LB_PHASES] = {LB_ST_QTIME, LB_ST_CTIME, LB_ST_RTIME,
                                                    LB_ST_TTIME};
    static const enum lb_stat_col max[LB_PHASES] = {LB_ST_QTIME_MAX, LB_ST_CTIME_MAX,
                                                    LB_ST_RTIME_MAX, LB_ST_TTIME_MAX};

    r->times = *t;
    r->has_times = true;
    for (int p = 0; p < LB_PHASES; p++) {
        set_u(r, avg[p], (lb_times_total_avg_us(t, (enum lb_phase)p) + 500) / 1000);
        set_u(r, max[p], (t->max_us[p] + 500) / 1000);
    }
}

static uint64_t seconds_since(uint64_t now_ms, uint64_t then_ms)
{
    return now_ms > then_ms ? (now_ms - then_ms) / 1000 : 0;
}

static void fill_frontend(struct lb_stat_row *r, const struct lb_stats_view *v)
{
    const struct lb_counters *c = v->fe;
    struct lb_totals t;

    lb_counters_sum(c, &t);
    r->type = LB_STAT_FRONTEND;
    fill_traffic(r, c, &t);
    set_s(r, LB_ST_PXNAME, LB_STATS_FRONTEND_NAME);
    set_s(r, LB_ST_SVNAME, "FRONTEND");
    if (v->cfg->maxconn > 0)
        set_u(r, LB_ST_SLIM,
              (uint64_t)v->cfg->maxconn * (uint64_t)(v->cfg->workers > 0 ? v->cfg->workers : 1));
    set_u(r, LB_ST_DREQ, lb_read(&c->dreq));
    set_u(r, LB_ST_EREQ, lb_read(&c->ereq));
    set_s(r, LB_ST_STATUS, "OPEN");
    set_u(r, LB_ST_IID, 1);
    set_u(r, LB_ST_TYPE, LB_STAT_FRONTEND);
    set_u(r, LB_ST_RATE_LIM, 0);
    set_u(r, LB_ST_REQ_RATE, lb_read(&c->rate_last));
    set_u(r, LB_ST_REQ_RATE_MAX, lb_read(&c->rate_max));
    set_u(r, LB_ST_REQ_TOT, t.req_tot);
    for (int i = LB_ST_COMP_IN; i <= LB_ST_COMP_RSP; i++)
        set_u(r, (enum lb_stat_col)i, 0);
    set_u(r, LB_ST_CONN_RATE, lb_read(&c->rate_last));
    set_u(r, LB_ST_CONN_RATE_MAX, lb_read(&c->rate_max));
    set_u(r, LB_ST_CONN_TOT, lb_read(&c->stot));
    set_u(r, LB_ST_INTERCEPTED, 0);
    set_u(r, LB_ST_DCON, 0);
    set_u(r, LB_ST_DSES, 0);
    set_u(r, LB_ST_CACHE_LOOKUPS, 0);
    set_u(r, LB_ST_CACHE_HITS, 0);
}

/* HAProxy's get_check_status_description() for the codes our checks report. */
static const char *check_desc(const char *status)
{
    static const struct {
        const char *code, *desc;
    } descs[] = {
        {"UNK", "Unknown"},
        {"INI", "Initializing"},
        {"SOCKERR", "Socket error"},
        {"L4OK", "Layer4 check passed"},
        {"L4TOUT", "Layer4 timeout"},
        {"L4CON", "Layer4 connection problem"},
        {"L6OK", "Layer6 check passed"},
        {"L6TOUT", "Layer6 timeout"},
        {"L6RSP", "Layer6 invalid response"},
        {"L7TOUT", "Layer7 timeout"},
        {"L7RSP", "Layer7 invalid response"},
        {"L7OK", "Layer7 check passed"},
        {"L7OKC", "Layer7 check conditionally passed"},
        {"L7STS", "Layer7 wrong status"},
    };
    for (size_t i = 0; i < sizeof(descs) / sizeof(descs[0]); i++)
        if (strcmp(descs[i].code, status) == 0)
            return descs[i].desc;
    return "Unknown";
}

static void fill_check(struct lb_stat_row *r, const struct lb_server *s,
                       const struct lb_config *cfg, int state)
{
    int rise = cfg->check_rise > 0 ? cfg->check_rise : 1;
    int fall = cfg->check_fall > 0 ? cfg->check_fall : 1;
    int health;

    set_s(r, LB_ST_CHECK_STATUS, s->check_status);
    if (s->check_code > 0)
        set_u(r, LB_ST_CHECK_CODE, (uint64_t)s->check_code);
    set_u(r, LB_ST_CHECK_DURATION, s->check_duration_ms);
    set_s(r, LB_ST_CHECK_DESC, check_desc(s->check_status));
    set_u(r, LB_ST_CHECK_RISE, (uint64_t)rise);
    set_u(r, LB_ST_CHECK_FALL, (uint64_t)fall);
    /* HAProxy's health counter runs 0..rise+fall-1, the server being up from rise on. */
    if (state == LB_SRV_DOWN)
        health = s->check_rise < rise ? s->check_rise : rise - 1;
    else
        health = rise + fall - 1 - (s->check_fall < fall ? s->check_fall : fall - 1);
    set_u(r, LB_ST_CHECK_HEALTH, (uint64_t)(health > 0 ? health : 0));
}

static void fill_server(struct lb_stat_row *r, const struct lb_stats_view *v,
                        const struct lb_server *s, size_t idx)
{
    int state = atomic_load(&s->state);
    int weight = atomic_load(&s->weight);
    uint64_t since = atomic_load(&s->last_change_ms);
    uint64_t down_ms = atomic_load(&s->downtime_ms);
    struct lb_totals t;

    lb_counters_sum(&s->c, &t);
    r->type = LB_STAT_SERVER;
    r->srv = s;
    fill_traffic(r, &s->c, &t);
    fill_upstream(r, &s->c, lb_read(&s->qcur), lb_read(&s->qmax));
    fill_times(r, &t.times);
    set_s(r, LB_ST_PXNAME, v->b->name);
    set_s(r, LB_ST_SVNAME, s->name);
    if (s->maxconn > 0)
        set_u(r, LB_ST_SLIM, (uint64_t)s->maxconn);
    set_s(r, LB_ST_STATUS, lb_server_state_name((enum lb_server_state)state));
    set_u(r, LB_ST_WEIGHT, (uint64_t)weight);
    set_u(r, LB_ST_UWEIGHT, (uint64_t)weight);
    set_u(r, LB_ST_ACT, 1);
    set_u(r, LB_ST_CHKFAIL, lb_read(&s->chkfail));
    set_u(r, LB_ST_CHKDOWN, lb_read(&s->chkdown));
    set_u(r, LB_ST_LASTCHG, seconds_since(v->now_ms, since));
    /* downtime_ms counts finished DOWN periods; add the one in progress */
    if (state == LB_SRV_DOWN && v->now_ms > since)
        down_ms += v->now_ms - since;
    set_u(r, LB_ST_DOWNTIME, down_ms / 1000);
    set_u(r, LB_ST_SID, (uint64_t)idx + 1);
    set_u(r, LB_ST_TYPE, LB_STAT_SERVER);
    if (v->cfg->check)
        fill_check(r, s, v->cfg, state);
    snprintf(r->addr, sizeof(r->addr), strchr(s->host, ':') ? "[%s]:%d" : "%s:%d", s->host,
             s->port);
    set_s(r, LB_ST_ADDR, r->addr);
}

static const char *balance_name(enum lb_balance b)
{
    switch (b) {
    case LB_BALANCE_LEASTCONN:
        return "leastconn";
    case LB_BALANCE_RANDOM:
        return "random";
    default:
        return "roundrobin";
    }
}

static void fill_backend(struct lb_stat_row *r, const struct lb_stats_view *v)
{
    struct lb_backend *b = v->b;
    uint64_t weight = 0, act = 0, chkdown = 0;
    uint64_t changed = atomic_load(&b->last_change_ms);
    struct lb_totals t;

    lb_counters_sum(&b->c, &t);
    r->type = LB_STAT_BACKEND;
    fill_traffic(r, &b->c, &t);
    fill_upstream(r, &b->c, lb_read(&b->qcur), lb_read(&b->qmax));
    fill_times(r, &t.times);
    for (size_t i = 0; v->set && i < v->set->n; i++) {
        const struct lb_server *s = v->set->v[i];
        chkdown += lb_read(&s->chkdown);
        if (atomic_load(&s->state) != LB_SRV_UP)
            continue;
        act++;
        weight += (uint64_t)atomic_load(&s->weight);
    }
    set_s(r, LB_ST_PXNAME, b->name);
    set_s(r, LB_ST_SVNAME, "BACKEND");
    set_u(r, LB_ST_DREQ, lb_read(&b->c.dreq));
    set_s(r, LB_ST_STATUS, act > 0 ? "UP" : "DOWN");
    set_u(r, LB_ST_WEIGHT, weight);
    set_u(r, LB_ST_UWEIGHT, weight);
    set_u(r, LB_ST_ACT, act);
    set_u(r, LB_ST_CHKDOWN, chkdown);
    if (changed)
        set_u(r, LB_ST_LASTCHG, seconds_since(v->now_ms, changed));
    set_u(r, LB_ST_TYPE, LB_STAT_BACKEND);
    set_u(r, LB_ST_REQ_TOT, t.req_tot);
    for (int i = LB_ST_COMP_IN; i <= LB_ST_COMP_RSP; i++)
        set_u(r, (enum lb_stat_col)i, 0);
    set_s(r, LB_ST_ALGO, balance_name(b->balance));
}

struct lb_stat_row *lb_stats_rows(const struct lb_stats_view *view, size_t *n)
{
    size_t nsrv = view->set ? view->set->n : 0;
    struct lb_stat_row *rows = xcalloc(nsrv + 2, sizeof(*rows));

    fill_frontend(&rows[0], view);
    for (size_t i = 0; i < nsrv; i++)
        fill_server(&rows[1 + i], view, view->set->v[i], i);
    fill_backend(&rows[nsrv + 1], view);
    *n = nsrv + 2;
    return rows;
}

/* ---- CSV -------------------------------------------------------------------------------- */

/* HAProxy's csv_enc(): quoted only when needed, '"' doubled inside. */
static void csv_string(struct buf *out, const char *s)
{
    size_t len = strlen(s);
    bool quote = len > 0 && (s[0] == ' ' || s[len - 1] == ' ');

    for (size_t i = 0; i < len && !quote; i++)
        quote = s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n';
    if (!quote) {
        buf_append(out, s, len);
        return;
    }
    buf_append(out, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"')
            buf_append(out, "\"", 1);
        buf_append(out, &s[i], 1);
    }
    buf_append(out, "\"", 1);
}

void lb_stats_csv(struct buf *out, const struct lb_stat_row *rows, size_t n)
{
    buf_append_cstr(out, "# ");
    for (size_t c = 0; c < LB_ST_NCOLS; c++)
        buf_printf(out, "%s,", lb_stat_col_names[c]);
    buf_append_cstr(out, "-,");
    for (size_t c = 0; c < NMODULE_COLS; c++)
        buf_printf(out, "%s,", module_cols[c]);
    buf_append_cstr(out, "\n");

    for (size_t i = 0; i < n; i++) {
        for (size_t c = 0; c < LB_ST_NCOLS; c++) {
            const struct lb_stat_field *f = &rows[i].f[c];
            if (f->kind == LB_STAT_U64)
                buf_printf(out, "%" PRIu64, f->u);
            else if (f->kind == LB_STAT_STR)
                csv_string(out, f->s);
            buf_append(out, ",", 1);
        }
        buf_append_cstr(out, "-,");
        for (size_t c = 0; c < NMODULE_COLS; c++)
            buf_append(out, ",", 1);
        buf_append_cstr(out, "\n");
    }
}

/* ---- JSON ------------------------------------------------------------------------------- */

void lb_stats_json(struct buf *out, const struct lb_stat_row *rows, size_t n)
{
    json_t *arr = json_array();

    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object();
        for (size_t c = 0; c < LB_ST_NCOLS; c++) {
            const struct lb_stat_field *f = &rows[i].f[c];
            if (f->kind == LB_STAT_U64)
                json_object_set_new(o, lb_stat_col_names[c], json_integer((json_int_t)f->u));
            else if (f->kind == LB_STAT_STR)
                json_object_set_new(o, lb_stat_col_names[c], json_string(f->s));
        }
        json_array_append_new(arr, o);
    }
    json_append(out, arr, true);
    json_decref(arr);
}

/* ---- Prometheus ------------------------------------------------------------------------- */

enum pm_how {
    PM_VALUE,   /* the column as is */
    PM_MS,      /* a column in milliseconds, exported in seconds */
    PM_CODES,   /* hrsp_1xx..hrsp_other as code="1xx".."other" */
    PM_STATE,   /* status as one sample per state, 1 for the current one */
    PM_CHECK,   /* check_status as one sample per check state */
    PM_FE_OPEN, /* frontend status: 1 when OPEN */
};

#define PM_F (1u << LB_STAT_FRONTEND)
#define PM_B (1u << LB_STAT_BACKEND)
#define PM_S (1u << LB_STAT_SERVER)

/* promex's names (addons/promex), haproxy_<scope>_<name>. */
static const struct pm_metric {
    const char *name;
    const char *help;
    const char *type;
    enum lb_stat_col col;
    unsigned scopes;
    enum pm_how how;
} pm_metrics[] = {
    {"status", "Current status of the service.", "gauge", LB_ST_STATUS, PM_F, PM_FE_OPEN},
    {"status", "Current status of the service, per state label value.", "gauge", LB_ST_STATUS,
     PM_B | PM_S, PM_STATE},
    {"current_queue", "Current number of queued requests.", "gauge", LB_ST_QCUR, PM_B | PM_S,
     PM_VALUE},
    {"max_queue", "Maximum observed number of queued requests.", "gauge", LB_ST_QMAX, PM_B | PM_S,
     PM_VALUE},
    {"current_sessions", "Number of current sessions.", "gauge", LB_ST_SCUR, PM_F | PM_B | PM_S,
     PM_VALUE},
    {"max_sessions", "Maximum observed number of sessions.", "gauge", LB_ST_SMAX,
     PM_F | PM_B | PM_S, PM_VALUE},
    {"limit_sessions", "Configured session limit.", "gauge", LB_ST_SLIM, PM_F | PM_B | PM_S,
     PM_VALUE},
    {"sessions_total", "Total number of sessions.", "counter", LB_ST_STOT, PM_F | PM_B | PM_S,
     PM_VALUE},
    {"current_session_rate", "Current number of sessions per second over last elapsed second.",
     "gauge", LB_ST_RATE, PM_F | PM_B | PM_S, PM_VALUE},
    {"max_session_rate", "Maximum observed number of sessions per second.", "gauge", LB_ST_RATE_MAX,
     PM_F | PM_B | PM_S, PM_VALUE},
    {"connections_total", "Total number of connections.", "counter", LB_ST_CONN_TOT, PM_F,
     PM_VALUE},
    {"bytes_in_total", "Current total of incoming bytes.", "counter", LB_ST_BIN, PM_F | PM_B | PM_S,
     PM_VALUE},
    {"bytes_out_total", "Current total of outgoing bytes.", "counter", LB_ST_BOUT,
     PM_F | PM_B | PM_S, PM_VALUE},
    {"requests_denied_total", "Total number of denied requests.", "counter", LB_ST_DREQ,
     PM_F | PM_B, PM_VALUE},
    {"request_errors_total", "Total number of request errors.", "counter", LB_ST_EREQ, PM_F,
     PM_VALUE},
    {"connection_errors_total", "Total number of connection errors.", "counter", LB_ST_ECON,
     PM_B | PM_S, PM_VALUE},
    {"response_errors_total", "Total number of response errors.", "counter", LB_ST_ERESP,
     PM_B | PM_S, PM_VALUE},
    {"retry_warnings_total", "Total number of retry warnings.", "counter", LB_ST_WRETR, PM_B | PM_S,
     PM_VALUE},
    {"redispatch_warnings_total", "Total number of redispatch warnings.", "counter", LB_ST_WREDIS,
     PM_B | PM_S, PM_VALUE},
    {"client_aborts_total", "Total number of data transfers aborted by the client.", "counter",
     LB_ST_CLI_ABRT, PM_B | PM_S, PM_VALUE},
    {"server_aborts_total", "Total number of data transfers aborted by the server.", "counter",
     LB_ST_SRV_ABRT, PM_B | PM_S, PM_VALUE},
    {"weight", "Service weight.", "gauge", LB_ST_WEIGHT, PM_B | PM_S, PM_VALUE},
    {"active_servers", "Current number of active servers.", "gauge", LB_ST_ACT, PM_B, PM_VALUE},
    {"backup_servers", "Current number of backup servers.", "gauge", LB_ST_BCK, PM_B, PM_VALUE},
    {"check_failures_total", "Total number of failed individual health checks.", "counter",
     LB_ST_CHKFAIL, PM_S, PM_VALUE},
    {"check_up_down_total", "Total number of UP->DOWN transitions.", "counter", LB_ST_CHKDOWN,
     PM_B | PM_S, PM_VALUE},
    {"check_last_change_seconds", "How long ago the last server state changed, in seconds.",
     "gauge", LB_ST_LASTCHG, PM_B | PM_S, PM_VALUE},
    {"downtime_seconds_total", "Total downtime (in seconds) for the service.", "counter",
     LB_ST_DOWNTIME, PM_B | PM_S, PM_VALUE},
    {"check_status", "Status of last health check, per state label value.", "gauge",
     LB_ST_CHECK_STATUS, PM_S, PM_CHECK},
    {"check_code", "layer5-7 code, if available of the last health check.", "gauge",
     LB_ST_CHECK_CODE, PM_S, PM_VALUE},
    {"check_duration_seconds", "Total duration of the latest server health check, in seconds.",
     "gauge", LB_ST_CHECK_DURATION, PM_S, PM_MS},
    {"loadbalanced_total",
     "Total number of times a service was selected, either for new sessions, or when "
     "redispatching.",
     "counter", LB_ST_LBTOT, PM_B | PM_S, PM_VALUE},
    {"http_requests_rate_max", "Maximum observed number of HTTP requests per second.", "gauge",
     LB_ST_REQ_RATE_MAX, PM_F, PM_VALUE},
    {"http_requests_total", "Total number of HTTP requests received.", "counter", LB_ST_REQ_TOT,
     PM_F | PM_B, PM_VALUE},
    {"http_responses_total", "Total number of HTTP responses.", "counter", LB_ST_HRSP_1XX,
     PM_F | PM_B | PM_S, PM_CODES},
    {"queue_time_average_seconds", "Avg. queue time for last 1024 successful connections.", "gauge",
     LB_ST_QTIME, PM_B | PM_S, PM_MS},
    {"connect_time_average_seconds", "Avg. connect time for last 1024 successful connections.",
     "gauge", LB_ST_CTIME, PM_B | PM_S, PM_MS},
    {"response_time_average_seconds", "Avg. response time for last 1024 successful connections.",
     "gauge", LB_ST_RTIME, PM_B | PM_S, PM_MS},
    {"total_time_average_seconds", "Avg. total time for last 1024 successful connections.", "gauge",
     LB_ST_TTIME, PM_B | PM_S, PM_MS},
    {"max_queue_time_seconds", "Maximum observed time spent in the queue", "gauge", LB_ST_QTIME_MAX,
     PM_B | PM_S, PM_MS},
    {"max_connect_time_seconds",
     "Maximum observed time spent waiting for a connection to "
     "complete",
     "gauge", LB_ST_CTIME_MAX, PM_B | PM_S, PM_MS},
    {"max_response_time_seconds", "Maximum observed time spent waiting for a server response",
     "gauge", LB_ST_RTIME_MAX, PM_B | PM_S, PM_MS},
    {"max_total_time_seconds",
     "Maximum observed total request+response time (request+queue+"
     "connect+response+processing)",
     "gauge", LB_ST_TTIME_MAX, PM_B | PM_S, PM_MS},
    /* not in promex: connections switched to another protocol by a 101 (WebSocket) */
    {"current_tunnels", "Current number of tunnels (connections switched by a 101).", "gauge",
     LB_ST_X_TUNNEL_CUR, PM_B | PM_S, PM_VALUE},
    {"tunnels_total", "Total number of tunnels (connections switched by a 101).", "counter",
     LB_ST_X_TUNNEL_TOT, PM_B | PM_S, PM_VALUE},
};

static const char *const scope_names[] = {"frontend", "backend", "server"};

/* A label value: backslash, double quote and newline escaped (text format 0.0.4). */
static void pm_label(struct buf *out, const char *name, const char *value)
{
    buf_printf(out, "%s=\"", name);
    for (const char *p = value; *p; p++) {
        if (*p == '\\' || *p == '"')
            buf_printf(out, "\\%c", *p);
        else if (*p == '\n')
            buf_append_cstr(out, "\\n");
        else
            buf_append(out, p, 1);
    }
    buf_append(out, "\"", 1);
}

/* name{proxy="...",server="...",extra="..."} */
static void pm_name(struct buf *out, const char *scope, const struct pm_metric *m,
                    const struct lb_stat_row *r, const char *extra, const char *extra_value)
{
    buf_printf(out, "haproxy_%s_%s{", scope, m->name);
    pm_label(out, "proxy", r->f[LB_ST_PXNAME].s);
    if (r->type == LB_STAT_SERVER) {
        buf_append(out, ",", 1);
        pm_label(out, "server", r->f[LB_ST_SVNAME].s);
    }
    if (extra) {
        buf_append(out, ",", 1);
        pm_label(out, extra, extra_value);
    }
    buf_append(out, "} ", 2);
}

static void pm_states(struct buf *out, const char *scope, const struct pm_metric *m,
                      const struct lb_stat_row *r, const char *label, const char *const *states,
                      size_t nstates)
{
    const char *cur = r->f[m->col].s;

    for (size_t i = 0; i < nstates; i++) {
        pm_name(out, scope, m, r, label, states[i]);
        buf_printf(out, "%d\n", strcmp(cur, states[i]) == 0);
    }
}

static void pm_sample(struct buf *out, const char *scope, const struct pm_metric *m,
                      const struct lb_stat_row *r)
{
    static const char *const srv_states[] = {"DOWN", "UP", "MAINT", "DRAIN", "NOLB"};
    static const char *const be_states[] = {"DOWN", "UP"};
    static const char *const chk_states[] = {
        "HANA",   "SOCKERR", "L4OK", "L4TOUT", "L4CON", "L6OK",    "L6TOUT",   "L6RSP",
        "L7TOUT", "L7RSP",   "L7OK", "L7OKC",  "L7STS", "PROCERR", "PROCTOUT", "PROCOK"};
    static const char *const codes[] = {"1xx", "2xx", "3xx", "4xx", "5xx", "other"};
    const struct lb_stat_field *f = &r->f[m->col];

    if (f->kind == LB_STAT_EMPTY)
        return;
    switch (m->how) {
    case PM_VALUE:
        pm_name(out, scope, m, r, NULL, NULL);
        buf_printf(out, "%" PRIu64 "\n", f->u);
        break;
    case PM_MS:
        pm_name(out, scope, m, r, NULL, NULL);
        buf_printf(out, "%.3f\n", (double)f->u / 1000.0);
        break;
    case PM_CODES:
        for (int i = 0; i < 6; i++) {
            pm_name(out, scope, m, r, "code", codes[i]);
            buf_printf(out, "%" PRIu64 "\n", r->f[LB_ST_HRSP_1XX + i].u);
        }
        break;
    case PM_STATE:
        if (r->type == LB_STAT_SERVER)
            pm_states(out, scope, m, r, "state", srv_states, 5);
        else
            pm_states(out, scope, m, r, "state", be_states, 2);
        break;
    case PM_CHECK:
        pm_states(out, scope, m, r, "state", chk_states, sizeof(chk_states) / sizeof(char *));
        break;
    case PM_FE_OPEN:
        pm_name(out, scope, m, r, NULL, NULL);
        buf_printf(out, "%d\n", strcmp(f->s, "OPEN") == 0);
        break;
    }
}

/* Histograms of ours (promex has none): queue, connect and response time. */
static const struct pm_metric pm_histograms[LB_HIST_PHASES] = {
    [LB_PHASE_QUEUE] = {"queue_time_seconds", "Time requests waited for a server slot.",
                        "histogram", LB_ST_QTIME, PM_B | PM_S, PM_VALUE},
    [LB_PHASE_CONNECT] = {"connect_time_seconds",
                          "Time to connect to a server (0 on a reused connection).", "histogram",
                          LB_ST_CTIME, PM_B | PM_S, PM_VALUE},
    [LB_PHASE_RESPONSE] = {"http_response_time_seconds",
                           "Time from a request sent to its response head received.", "histogram",
                           LB_ST_RTIME, PM_B | PM_S, PM_VALUE},
};

/* name_bucket{...,le="..."} cumulative counts, then name_sum and name_count. */
static void pm_histogram(struct buf *out, const char *scope, const struct pm_metric *m,
                         const struct lb_stat_row *r, enum lb_phase p)
{
    const struct lb_times_total *t = &r->times;
    struct pm_metric part = *m;
    char name[96], le[32];
    uint64_t cum = 0;

    snprintf(name, sizeof(name), "%s_bucket", m->name);
    part.name = name;
    for (int i = 0; i <= LB_HIST_BOUNDS; i++) {
        cum += t->hist[p][i];
        if (i < LB_HIST_BOUNDS)
            snprintf(le, sizeof(le), "%g", (double)lb_hist_bounds_us[i] / 1e6);
        pm_name(out, scope, &part, r, "le", i < LB_HIST_BOUNDS ? le : "+Inf");
        buf_printf(out, "%" PRIu64 "\n", cum);
    }
    snprintf(name, sizeof(name), "%s_sum", m->name);
    pm_name(out, scope, &part, r, NULL, NULL);
    buf_printf(out, "%.6f\n", (double)t->hist_sum_us[p] / 1e6);
    snprintf(name, sizeof(name), "%s_count", m->name);
    pm_name(out, scope, &part, r, NULL, NULL);
    buf_printf(out, "%" PRIu64 "\n", cum);
}

static void pm_histogram_families(struct buf *out, int t, const struct lb_stat_row *rows, size_t n)
{
    const char *scope = scope_names[t];

    for (int p = 0; p < LB_HIST_PHASES; p++) {
        const struct pm_metric *m = &pm_histograms[p];
        bool any = false;
        for (size_t i = 0; i < n && !any; i++)
            any = (int)rows[i].type == t && rows[i].has_times;
        if (!any || !(m->scopes & (1u << t)))
            continue;
        buf_printf(out, "# HELP haproxy_%s_%s %s\n# TYPE haproxy_%s_%s %s\n", scope, m->name,
                   m->help, scope, m->name, m->type);
        for (size_t i = 0; i < n; i++)
            if ((int)rows[i].type == t && rows[i].has_times)
                pm_histogram(out, scope, m, &rows[i], (enum lb_phase)p);
    }
}

void lb_stats_prometheus(struct buf *out, const struct lb_stat_row *rows, size_t n)
{
    /* promex's order: every frontend family, then backends, then servers */
    for (int t = LB_STAT_FRONTEND; t <= LB_STAT_SERVER; t++) {
        const char *scope = scope_names[t];
        for (size_t k = 0; k < sizeof(pm_metrics) / sizeof(pm_metrics[0]); k++) {
            const struct pm_metric *m = &pm_metrics[k];
            size_t before = out->len;
            bool any = false;
            if (!(m->scopes & (1u << t)))
                continue;
            buf_printf(out, "# HELP haproxy_%s_%s %s\n# TYPE haproxy_%s_%s %s\n", scope, m->name,
                       m->help, scope, m->name, m->type);
            for (size_t i = 0; i < n; i++) {
                size_t at = out->len;
                if ((int)rows[i].type != t)
                    continue;
                pm_sample(out, scope, m, &rows[i]);
                any = any || out->len > at;
            }
            if (!any) /* a family with no sample (no servers, no limit set) is left out */
                out->len = before, out->data[before] = '\0';
        }
        pm_histogram_families(out, t, rows, n);
    }
}
