/*
 * `mesh lb` stats and admin server (docs/lb-stats.md): on the control loop, an HTTP server on
 * cfg->stats_addr:cfg->stats_port behind HTTP Basic auth that serves
 *
 *   GET <stats_path>         HTML page like HAProxy's (auto-refresh every stats_refresh_s)
 *   GET <stats_path>;csv     HAProxy 2.6's CSV: same column names and order (show stat)
 *   GET <stats_path>;json    the same rows as a JSON array of objects keyed by column name
 *   GET /metrics             Prometheus text 0.0.4 with HAProxy's promex metric names
 *   PUT|POST <stats_path>/admin/server/<svname>?action=drain|maint|ready|weight&weight=N
 *
 * Everything renders from one row model (struct lb_stat_row), filled from the shared counters
 * of lb.h, so the CSV column table lives in one place (stats_csv.c). A 1 s timer turns req_tot
 * deltas into rate_last / rate_max for the frontend, the backend and every server.
 */
#ifndef MESH_LB_STATS_H
#define MESH_LB_STATS_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lb/config.h"
#include "lb/lb.h"

struct lb_stats;

/*
 * Listens on cfg->stats_addr:cfg->stats_port on loop (the control loop) and starts the rate
 * timer. cfg, b and frontend are borrowed until lb_stats_close and must outlive it. Auth is
 * required when cfg->stats_user is set and non-empty. Returns 0 with *out set, or a negative
 * UV error with e set ("stats listen 0.0.0.0:8404: address already in use").
 */
int lb_stats_start(struct lb_stats **out, uv_loop_t *loop, const struct lb_config *cfg,
                   struct lb_backend *b, struct lb_counters *frontend, struct err *e);

/*
 * Stops listening, closes connections and the timer; s is freed once the handles are closed,
 * so the loop must run again afterwards (as for any libuv handle). NULL is ignored.
 */
void lb_stats_close(struct lb_stats *s);

/* ---- between stats*.c only ------------------------------------------------------------- */

/* HAProxy 2.6's static stats fields, in its order (checked against 2.6.12's stat_fields[]). */
enum lb_stat_col {
    LB_ST_PXNAME,
    LB_ST_SVNAME,
    LB_ST_QCUR,
    LB_ST_QMAX,
    LB_ST_SCUR,
    LB_ST_SMAX,
    LB_ST_SLIM,
    LB_ST_STOT,
    LB_ST_BIN,
    LB_ST_BOUT,
    LB_ST_DREQ,
    LB_ST_DRESP,
    LB_ST_EREQ,
    LB_ST_ECON,
    LB_ST_ERESP,
    LB_ST_WRETR,
    LB_ST_WREDIS,
    LB_ST_STATUS,
    LB_ST_WEIGHT,
    LB_ST_ACT,
    LB_ST_BCK,
    LB_ST_CHKFAIL,
    LB_ST_CHKDOWN,
    LB_ST_LASTCHG,
    LB_ST_DOWNTIME,
    LB_ST_QLIMIT,
    LB_ST_PID,
    LB_ST_IID,
    LB_ST_SID,
    LB_ST_THROTTLE,
    LB_ST_LBTOT,
    LB_ST_TRACKED,
    LB_ST_TYPE,
    LB_ST_RATE,
    LB_ST_RATE_LIM,
    LB_ST_RATE_MAX,
    LB_ST_CHECK_STATUS,
    LB_ST_CHECK_CODE,
    LB_ST_CHECK_DURATION,
    LB_ST_HRSP_1XX,
    LB_ST_HRSP_2XX,
    LB_ST_HRSP_3XX,
    LB_ST_HRSP_4XX,
    LB_ST_HRSP_5XX,
    LB_ST_HRSP_OTHER,
    LB_ST_HANAFAIL,
    LB_ST_REQ_RATE,
    LB_ST_REQ_RATE_MAX,
    LB_ST_REQ_TOT,
    LB_ST_CLI_ABRT,
    LB_ST_SRV_ABRT,
    LB_ST_COMP_IN,
    LB_ST_COMP_OUT,
    LB_ST_COMP_BYP,
    LB_ST_COMP_RSP,
    LB_ST_LASTSESS,
    LB_ST_LAST_CHK,
    LB_ST_LAST_AGT,
    LB_ST_QTIME,
    LB_ST_CTIME,
    LB_ST_RTIME,
    LB_ST_TTIME,
    LB_ST_AGENT_STATUS,
    LB_ST_AGENT_CODE,
    LB_ST_AGENT_DURATION,
    LB_ST_CHECK_DESC,
    LB_ST_AGENT_DESC,
    LB_ST_CHECK_RISE,
    LB_ST_CHECK_FALL,
    LB_ST_CHECK_HEALTH,
    LB_ST_AGENT_RISE,
    LB_ST_AGENT_FALL,
    LB_ST_AGENT_HEALTH,
    LB_ST_ADDR,
    LB_ST_COOKIE,
    LB_ST_MODE,
    LB_ST_ALGO,
    LB_ST_CONN_RATE,
    LB_ST_CONN_RATE_MAX,
    LB_ST_CONN_TOT,
    LB_ST_INTERCEPTED,
    LB_ST_DCON,
    LB_ST_DSES,
    LB_ST_WREW,
    LB_ST_CONNECT,
    LB_ST_REUSE,
    LB_ST_CACHE_LOOKUPS,
    LB_ST_CACHE_HITS,
    LB_ST_SRV_ICUR,
    LB_ST_SRC_ILIM,
    LB_ST_QTIME_MAX,
    LB_ST_CTIME_MAX,
    LB_ST_RTIME_MAX,
    LB_ST_TTIME_MAX,
    LB_ST_EINT,
    LB_ST_IDLE_CONN_CUR,
    LB_ST_SAFE_CONN_CUR,
    LB_ST_USED_CONN_CUR,
    LB_ST_NEED_CONN_EST,
    LB_ST_UWEIGHT,
    LB_ST_AGG_SERVER_STATUS,
    LB_ST_AGG_SERVER_CHECK_STATUS,
    LB_ST_AGG_CHECK_STATUS,
    LB_ST_NCOLS, /* 103; then "-" and the ssl/h2/h1 module columns (stats_csv.c) */
    /* fields of ours, not HAProxy columns: Prometheus and the HTML page only */
    LB_ST_X_TUNNEL_CUR = LB_ST_NCOLS, /* tunnels open (after a 101) */
    LB_ST_X_TUNNEL_TOT,
    LB_ST_NFIELDS,
};

/* Values are a number, a string, or empty (printed as nothing in CSV, left out of JSON). */
enum lb_stat_kind {
    LB_STAT_EMPTY = 0,
    LB_STAT_U64,
    LB_STAT_STR,
};

struct lb_stat_field {
    enum lb_stat_kind kind;
    uint64_t u;
    const char *s; /* borrowed: a literal, the row's own addr, or a server held by the view */
};

enum lb_stat_type { LB_STAT_FRONTEND = 0, LB_STAT_BACKEND = 1, LB_STAT_SERVER = 2 };

struct lb_stat_row {
    enum lb_stat_type type;
    const struct lb_server *srv; /* servers only */
    struct lb_times_total times; /* backends and servers: histograms for Prometheus */
    bool has_times;
    struct lb_stat_field f[LB_ST_NFIELDS];
    char addr[80]; /* "host:port" for LB_ST_ADDR */
};

/* What one rendering reads. set is held (acquired) by the caller for the rendering's life. */
struct lb_stats_view {
    const struct lb_config *cfg;
    struct lb_backend *b;
    struct lb_counters *fe;
    struct lb_server_set *set; /* may be NULL: no servers yet */
    uint64_t now_ms;           /* wall clock */
};

/* The proxy name of the frontend, as HAProxy's "frontend http-in" of the original. */
#define LB_STATS_FRONTEND_NAME "http-in"

/* Column names, LB_ST_NCOLS of them. */
extern const char *const lb_stat_col_names[LB_ST_NCOLS];

/*
 * Rows for view: FRONTEND, one per server of view->set in order, BACKEND (HAProxy's order).
 * Returns a heap array of *n rows (free it); rows borrow from view->set.
 */
struct lb_stat_row *lb_stats_rows(const struct lb_stats_view *view, size_t *n);

/* "# pxname,svname,...,-,<module columns>,\n" then one line per row, each field followed by ','. */
void lb_stats_csv(struct buf *out, const struct lb_stat_row *rows, size_t n);
/* A JSON array of objects, one per row, keys in column order, empty fields left out. */
void lb_stats_json(struct buf *out, const struct lb_stat_row *rows, size_t n);
/* Prometheus text format 0.0.4 (promex names), one family at a time with HELP and TYPE. */
void lb_stats_prometheus(struct buf *out, const struct lb_stat_row *rows, size_t n);
/* The HTML page; refresh_s 0 = no refresh. registry_ok 0 adds the "no registry" notice. */
void lb_stats_html(struct buf *out, const struct lb_stats_view *view,
                   const struct lb_stat_row *rows, size_t n, int refresh_s);

/* HAProxy's human_time: "5s", "1m12s", "2h5m", "3d4h". */
void lb_stats_human_time(char *out, size_t size, uint64_t seconds);

#endif
