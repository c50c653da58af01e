/*
 * The stats page: HAProxy's layout (a table per proxy, a row per server, a total row, column
 * groups Queue | Rate | Sessions | Bytes | Responses | Errors | Warnings | Server) in one
 * self-contained document: inline CSS, no script, no external asset. Colours follow
 * prefers-color-scheme; tables scroll inside their own wrapper so the page holds from 320 px.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "lb/stats.h"
#include "lib/html.h"

void lb_stats_human_time(char *out, size_t size, uint64_t s)
{
    if (s < 60)
        snprintf(out, size, "%" PRIu64 "s", s);
    else if (s < 3600)
        snprintf(out, size, "%" PRIu64 "m%" PRIu64 "s", s / 60, s % 60);
    else if (s < 86400)
        snprintf(out, size, "%" PRIu64 "h%" PRIu64 "m", s / 3600, s % 3600 / 60);
    else
        snprintf(out, size, "%" PRIu64 "d%" PRIu64 "h", s / 86400, s % 86400 / 3600);
}

static const char page_style[] =
    ":root{color-scheme:light dark;--bg:#fff;--fg:#111;--mut:#555;--line:#999;--th:#20a0a0;"
    "--thfg:#fff;--sub:#c0e0e0;--px:#b00040;--up:#c0ffc0;--down:#ff9090;--drain:#a0c8ff;"
    "--maint:#c8a070;--total:#e0e0e0;--note:#ffd080}\n"
    "@media (prefers-color-scheme:dark){:root{--bg:#16181c;--fg:#e8e8e8;--mut:#aaa;"
    "--line:#555;--th:#176f6f;--thfg:#fff;--sub:#23403f;--px:#8a1f43;--up:#1f5a2a;"
    "--down:#7a2323;--drain:#23467a;--maint:#6b4a1c;--total:#30343a;--note:#6b5512}}\n"
    "body{margin:0;padding:8px;background:var(--bg);color:var(--fg);"
    "font:13px/1.4 system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif}\n"
    "h1{font-size:18px;margin:0 0 4px}h2{font-size:14px;margin:14px 0 4px}\n"
    "p{margin:4px 0}.mut{color:var(--mut)}a{color:inherit}\n"
    ".note{background:var(--note);padding:6px 8px;border-radius:4px;font-weight:600}\n"
    ".wrap{max-width:100%;overflow-x:auto;-webkit-overflow-scrolling:touch}\n"
    "table{border-collapse:collapse;white-space:nowrap;font-size:12px;"
    "font-variant-numeric:tabular-nums}\n"
    "th,td{border:1px solid var(--line);padding:2px 5px;text-align:right}\n"
    "th{background:var(--th);color:var(--thfg);font-weight:600;text-align:center}\n"
    "thead tr+tr th{background:var(--sub);color:var(--fg);font-weight:500}\n"
    "th.px{background:var(--px);text-align:left}td.n{text-align:left;font-weight:600}\n"
    "tr.UP td,tr.OPEN td{background:var(--up)}tr.DOWN td{background:var(--down)}\n"
    "tr.DRAIN td{background:var(--drain)}tr.MAINT td{background:var(--maint)}\n"
    "tr.total td{font-weight:600;border-top-width:2px}\n"
    ".legend span{display:inline-block;padding:0 6px;margin:2px 4px 2px 0;"
    "border:1px solid var(--line)}\n";

/* Column groups and their columns; a column of -1 is filled by a special case. */
struct html_col {
    const char *title;
    int col;
};

static const struct {
    const char *group;
    struct html_col cols[6];
    int n;
} groups[] = {
    {"Queue", {{"Cur", LB_ST_QCUR}, {"Max", LB_ST_QMAX}}, 2},
    {"Request rate", {{"Cur", LB_ST_RATE}, {"Max", LB_ST_RATE_MAX}}, 2},
    {"Sessions",
     {{"Cur", LB_ST_SCUR}, {"Max", LB_ST_SMAX}, {"Limit", LB_ST_SLIM}, {"Total", LB_ST_STOT}},
     4},
    {"Bytes", {{"In", LB_ST_BIN}, {"Out", LB_ST_BOUT}}, 2},
    {"Responses",
     {{"1xx", LB_ST_HRSP_1XX},
      {"2xx", LB_ST_HRSP_2XX},
      {"3xx", LB_ST_HRSP_3XX},
      {"4xx", LB_ST_HRSP_4XX},
      {"5xx", LB_ST_HRSP_5XX},
      {"other", LB_ST_HRSP_OTHER}},
     6},
    {"Errors", {{"Req", LB_ST_EREQ}, {"Conn", LB_ST_ECON}, {"Resp", LB_ST_ERESP}}, 3},
    {"Warnings", {{"Retr", LB_ST_WRETR}, {"Redis", LB_ST_WREDIS}}, 2},
    /* HAProxy's averages over the last 1,024 requests (its page has them as tooltips) */
    {"Time (ms)",
     {{"Queue", LB_ST_QTIME},
      {"Connect", LB_ST_CTIME},
      {"Resp", LB_ST_RTIME},
      {"Total", LB_ST_TTIME}},
     4},
    {"Server",
     {{"Status", LB_ST_STATUS},
      {"LastChg", LB_ST_LASTCHG},
      {"LastChk", -1},
      {"Wght", LB_ST_WEIGHT},
      {"Dwntme", LB_ST_DOWNTIME}},
     5},
};

#define N_COL_GROUPS (sizeof(groups) / sizeof(groups[0]))

static void table_head(struct buf *out, const char *pxname, const char *kind)
{
    size_t ncols = 0;

    for (size_t g = 0; g < N_COL_GROUPS; g++)
        ncols += (size_t)groups[g].n;
    buf_append_cstr(out, "<div class=\"wrap\"><table><thead><tr><th class=\"px\" colspan=\"");
    buf_printf(out, "%zu\">", ncols + 1);
    html_escape(out, pxname);
    buf_printf(out, " <span class=\"mut\">(%s)</span></th></tr><tr><th rowspan=\"2\"></th>", kind);
    for (size_t g = 0; g < N_COL_GROUPS; g++)
        buf_printf(out, "<th colspan=\"%d\">%s</th>", groups[g].n, groups[g].group);
    buf_append_cstr(out, "</tr><tr>");
    for (size_t g = 0; g < N_COL_GROUPS; g++)
        for (int c = 0; c < groups[g].n; c++)
            buf_printf(out, "<th>%s</th>", groups[g].cols[c].title);
    buf_append_cstr(out, "</tr></thead><tbody>\n");
}

/* "L7OK/200 in 3ms", HAProxy's LastChk cell. */
static void last_check_cell(struct buf *out, const struct lb_stat_row *r)
{
    const struct lb_stat_field *st = &r->f[LB_ST_CHECK_STATUS];

    if (st->kind != LB_STAT_STR)
        return;
    html_escape(out, st->s);
    if (r->f[LB_ST_CHECK_CODE].kind == LB_STAT_U64)
        buf_printf(out, "/%" PRIu64, r->f[LB_ST_CHECK_CODE].u);
    if (r->f[LB_ST_CHECK_DURATION].kind == LB_STAT_U64)
        buf_printf(out, " in %" PRIu64 "ms", r->f[LB_ST_CHECK_DURATION].u);
}

static void cell(struct buf *out, const struct lb_stat_row *r, int col)
{
    const struct lb_stat_field *f = col >= 0 ? &r->f[col] : NULL;
    char t[32];

    buf_append_cstr(out, "<td>");
    if (col < 0) {
        last_check_cell(out, r);
    } else if (f->kind == LB_STAT_STR) {
        html_escape(out, f->s);
    } else if (f->kind == LB_STAT_U64 && (col == LB_ST_LASTCHG || col == LB_ST_DOWNTIME)) {
        lb_stats_human_time(t, sizeof(t), f->u);
        buf_append_cstr(out, t);
    } else if (f->kind == LB_STAT_U64) {
        buf_printf(out, "%" PRIu64, f->u);
    }
    buf_append_cstr(out, "</td>");
}

static void table_row(struct buf *out, const struct lb_stat_row *r)
{
    const char *status = r->f[LB_ST_STATUS].s;

    buf_printf(out, "<tr class=\"%s%s\"><td class=\"n\">", status,
               r->type == LB_STAT_SERVER ? "" : " total");
    html_escape(out, r->f[LB_ST_SVNAME].s);
    if (r->type == LB_STAT_SERVER) {
        buf_append_cstr(out, " <span class=\"mut\">");
        html_escape(out, r->addr);
        buf_append_cstr(out, "</span>");
    }
    buf_append_cstr(out, "</td>");
    for (size_t g = 0; g < N_COL_GROUPS; g++)
        for (int c = 0; c < groups[g].n; c++)
            cell(out, r, groups[g].cols[c].col);
    buf_append_cstr(out, "</tr>\n");
}

static void page_top(struct buf *out, const struct lb_stats_view *view, int refresh_s)
{
    const char *path = view->cfg->stats_path ? view->cfg->stats_path : "/stats";

    buf_append_cstr(out, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
                         "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n"
                         /* no icon: browsers would ask /favicon.ico on every refresh, a 404 */
                         "<link rel=\"icon\" href=\"data:,\">\n");
    if (refresh_s > 0)
        buf_printf(out, "<meta http-equiv=\"refresh\" content=\"%d\">\n", refresh_s);
    buf_printf(out, "<title>Statistics Report for mesh lb</title>\n<style>\n%s</style></head>\n",
               page_style);
    buf_append_cstr(out, "<body><h1>mesh lb statistics</h1>\n<p class=\"mut\">");
    if (refresh_s > 0)
        buf_printf(out, "Refreshes every %d s. ", refresh_s);
    buf_append_cstr(out, "Also as <a href=\"");
    html_escape(out, path);
    buf_append_cstr(out, ";csv\">CSV</a>, <a href=\"");
    html_escape(out, path);
    buf_append_cstr(out, ";json\">JSON</a> and <a href=\"/metrics\">Prometheus</a>.</p>\n");
    if (atomic_load(&view->b->registry_ok) == 0)
        buf_append_cstr(out, "<p class=\"note\">no registry: the registry cannot be reached, the "
                             "last known servers are in use.</p>\n");
    buf_append_cstr(out, "<p class=\"legend\"><span style=\"background:var(--up)\">"
                         "UP</span><span style=\"background:var(--down)\">DOWN</span>"
                         "<span style=\"background:var(--drain)\">DRAIN</span>"
                         "<span style=\"background:var(--maint)\">MAINT</span></p>\n");
}

void lb_stats_html(struct buf *out, const struct lb_stats_view *view,
                   const struct lb_stat_row *rows, size_t n, int refresh_s)
{
    page_top(out, view, refresh_s);
    for (size_t i = 0; i < n; i++) {
        if (rows[i].type != LB_STAT_FRONTEND)
            continue;
        buf_append_cstr(out, "<h2>Frontend</h2>\n");
        table_head(out, rows[i].f[LB_ST_PXNAME].s, "frontend");
        table_row(out, &rows[i]);
        buf_append_cstr(out, "</tbody></table></div>\n");
    }
    buf_append_cstr(out, "<h2>Backend</h2>\n");
    table_head(out, view->b->name, "backend");
    for (size_t i = 0; i < n; i++)
        if (rows[i].type == LB_STAT_SERVER)
            table_row(out, &rows[i]);
    for (size_t i = 0; i < n; i++)
        if (rows[i].type == LB_STAT_BACKEND)
            table_row(out, &rows[i]);
    buf_append_cstr(out, "</tbody></table></div>\n</body></html>\n");
}
