/*
 * The report page. The C side writes everything readable without a script (run facts, key
 * numbers, Artillery's metric tables, the spread per instance, phases and events) and embeds the
 * chart view (report_view.c) as JSON; the page's own script (assets/report.js) draws it as SVG.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/alloc.h"
#include "lib/file.h"
#include "lib/html.h"
#include "load/drill.h"
#include "load/report_assets.h"
#include "load/report_html.h"
#include "load/report_view.h"

/* Rows per metric table: a report with more names (per-endpoint plugins) is cut, and says so. */
#define REPORT_MAX_ROWS 1000

static const char *const report_sections[] = {"aggregate", "intermediate", "meshkit"};

static void report_num(struct buf *out, const json_t *v)
{
    double d;

    if (json_is_integer(v)) {
        buf_printf(out, "%lld", (long long)json_integer_value(v));
        return;
    }
    if (!json_is_number(v)) {
        buf_append_cstr(out, "–");
        return;
    }
    d = json_number_value(v);
    if (d == floor(d) && fabs(d) < 1e15)
        buf_printf(out, "%.0f", d);
    else
        buf_printf(out, "%.1f", d);
}

static const char *report_str(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static void report_meta_row(struct buf *out, const char *name, const char *value)
{
    if (!value || !*value)
        return;
    buf_printf(out, "<dt>%s</dt><dd>", name);
    html_escape(out, value);
    buf_append_cstr(out, "</dd>\n");
}

static void report_epoch(char *out, size_t size, const json_t *ms)
{
    time_t t;
    struct tm tm;

    out[0] = '\0';
    if (!json_is_number(ms) || json_number_value(ms) <= 0)
        return;
    t = (time_t)(json_number_value(ms) / 1000);
    if (gmtime_r(&t, &tm))
        strftime(out, size, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

static void report_meta(struct buf *out, const json_t *report, const json_t *view)
{
    const json_t *meshkit = json_object_get(report, "meshkit");
    const json_t *agg = json_object_get(report, "aggregate");
    const char *source = json_string_value(json_object_get(view, "source"));
    char text[128];
    double first, last, err;

    buf_append_cstr(out, "<dl class=\"meta\">\n");
    if (json_is_object(meshkit)) {
        snprintf(text, sizeof(text), "mesh load %s",
                 report_str(meshkit, "version") ? report_str(meshkit, "version") : "");
        report_meta_row(out, "Generator", text);
    } else {
        report_meta_row(out, "Generator", "Artillery (no meshkit section)");
    }
    report_meta_row(out, "Scenario file", report_str(meshkit, "scenario_file"));
    report_meta_row(out, "Target", report_str(meshkit, "target"));
    report_meta_row(out, "Environment", report_str(meshkit, "environment"));
    report_epoch(text, sizeof(text), json_object_get(agg, "firstCounterAt"));
    report_meta_row(out, "Started", text);
    first = json_number_value(json_object_get(agg, "firstCounterAt"));
    last = json_number_value(json_object_get(agg, "lastCounterAt"));
    if (first > 0 && last >= first) {
        snprintf(text, sizeof(text), "%.1f s", (last - first) / 1000);
        report_meta_row(out, "Duration", text);
    }
    err = json_number_value(json_object_get(meshkit, "histogram_error"));
    if (err > 0) {
        snprintf(text, sizeof(text), "within ±%g%% (log-linear histogram)", err * 100);
        report_meta_row(out, "Percentiles", text);
    }
    if (strcmp(source, "timeline") == 0)
        report_meta_row(out, "Charts", "one point per second (meshkit timeline)");
    else if (strcmp(source, "intermediate") == 0)
        report_meta_row(out, "Charts", "one point per reporting period (intermediate)");
    buf_append_cstr(out, "</dl>\n");
}

/* Sections present with the wrong type are named, so a broken file does not look empty. */
static void report_skipped(struct buf *out, const json_t *report)
{
    static const char *const want[] = {"object", "array", "object"};

    for (size_t i = 0; i < ARRAY_LEN(report_sections); i++) {
        const json_t *v = json_object_get(report, report_sections[i]);
        bool ok = !v || json_is_null(v) || (i == 1 ? json_is_array(v) : json_is_object(v));
        if (!ok)
            buf_printf(out, "<p class=\"note\">\"%s\" is not an %s: ignored.</p>\n",
                       report_sections[i], want[i]);
    }
}

static void report_card(struct buf *out, const char *label, const json_t *v, const char *unit)
{
    buf_printf(out, "<div class=\"card\"><span>%s</span><b>", label);
    report_num(out, v);
    buf_printf(out, "%s</b></div>\n", json_is_number(v) ? unit : "");
}

static void report_cards(struct buf *out, const json_t *agg, const json_t *accepted)
{
    const json_t *counters = json_object_get(agg, "counters");
    const json_t *rt = json_object_get(json_object_get(agg, "summaries"), "http.response_time");
    const char *key;
    json_t *v, *errors = json_integer(0);
    long long sum = 0;

    json_object_foreach((json_t *)counters, key, v)
    {
        if (strncmp(key, "errors.", 7) == 0 && json_is_integer(v))
            sum += json_integer_value(v);
        else if (strncmp(key, "http.codes.", 11) == 0 && json_is_integer(v) &&
                 load_status_failed(accepted, atoi(key + 11)))
            sum += json_integer_value(v);
    }
    json_integer_set(errors, sum);
    buf_append_cstr(out, "<div class=\"cards\">\n");
    report_card(out, "http.requests", json_object_get(counters, "http.requests"), "");
    report_card(out, "http.request_rate",
                json_object_get(json_object_get(agg, "rates"), "http.request_rate"), "/s");
    report_card(out, "response time median", json_object_get(rt, "median"), " ms");
    report_card(out, "response time p95", json_object_get(rt, "p95"), " ms");
    report_card(out, "response time p99", json_object_get(rt, "p99"), " ms");
    report_card(out, "errors", errors, "");
    report_card(out, "vusers.failed", json_object_get(counters, "vusers.failed"), "");
    buf_append_cstr(out, "</div>\n");
    json_decref(errors);
}

static int report_cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The object's keys in strcmp order (Artillery's console prints metrics sorted by name). */
static const char **report_sorted_keys(const json_t *obj, size_t *n)
{
    const char **keys = xcalloc(json_object_size(obj) + 1, sizeof(*keys));
    const char *key;
    json_t *v;

    *n = 0;
    json_object_foreach((json_t *)obj, key, v) keys[(*n)++] = key;
    qsort(keys, *n, sizeof(*keys), report_cmp_str);
    return keys;
}

static void report_cut_note(struct buf *out, size_t n)
{
    if (n > REPORT_MAX_ROWS)
        buf_printf(out, "<p class=\"note\">%zu more not shown.</p>\n", n - REPORT_MAX_ROWS);
}

/* Counters and rates: one "metric | value" table each. */
static void report_values_table(struct buf *out, const char *title, const json_t *obj)
{
    size_t n;
    const char **keys;

    if (!json_is_object(obj) || json_object_size(obj) == 0)
        return;
    keys = report_sorted_keys(obj, &n);
    buf_printf(out,
               "<h3>%s</h3>\n<div class=\"scroll\"><table>\n"
               "<tr><th>metric</th><th>value</th></tr>\n",
               title);
    for (size_t i = 0; i < n && i < REPORT_MAX_ROWS; i++) {
        buf_append_cstr(out, "<tr><td>");
        html_escape(out, keys[i]);
        buf_append_cstr(out, "</td><td>");
        report_num(out, json_object_get(obj, keys[i]));
        buf_append_cstr(out, "</td></tr>\n");
    }
    buf_append_cstr(out, "</table></div>\n");
    report_cut_note(out, n);
    free(keys);
}

/* One numeric cell per column name, from obj, closing the row. */
static void report_cells(struct buf *out, const json_t *obj, const char *const *cols, size_t n)
{
    for (size_t c = 0; c < n; c++) {
        buf_append_cstr(out, "<td>");
        report_num(out, json_object_get(obj, cols[c]));
        buf_append_cstr(out, "</td>");
    }
    buf_append_cstr(out, "</tr>\n");
}

static void report_head_cells(struct buf *out, const char *const *cols, size_t n)
{
    for (size_t c = 0; c < n; c++)
        buf_printf(out, "<th>%s</th>", cols[c]);
    buf_append_cstr(out, "</tr>\n");
}

static const char *const summary_cols[] = {"min", "max", "mean", "median", "p75",
                                           "p90", "p95", "p99",  "p999",   "count"};

static void report_summaries_table(struct buf *out, const json_t *summaries)
{
    size_t n;
    const char **keys;

    if (!json_is_object(summaries) || json_object_size(summaries) == 0)
        return;
    keys = report_sorted_keys(summaries, &n);
    buf_append_cstr(out, "<h3>Summaries (ms)</h3>\n<div class=\"scroll\"><table>\n<tr><th>metric"
                         "</th>");
    report_head_cells(out, summary_cols, ARRAY_LEN(summary_cols));
    for (size_t i = 0; i < n && i < REPORT_MAX_ROWS; i++) {
        const json_t *s = json_object_get(summaries, keys[i]);
        buf_append_cstr(out, "<tr><td>");
        html_escape(out, keys[i]);
        buf_append_cstr(out, "</td>");
        report_cells(out, s, summary_cols, ARRAY_LEN(summary_cols));
    }
    buf_append_cstr(out, "</table></div>\n");
    report_cut_note(out, n);
    free(keys);
}

/* Chart frames; the script fills .plot and .legend from the embedded view. */
static void report_charts(struct buf *out, const json_t *view)
{
    const json_t *charts = json_object_get(view, "charts");
    size_t i;
    json_t *c;

    buf_append_cstr(out, "<h2>Over time</h2>\n<noscript><p class=\"note\">The charts need "
                         "JavaScript.</p></noscript>\n");
    json_array_foreach(charts, i, c)
    {
        buf_printf(out, "<section class=\"chart\" id=\"chart-%s\"><h3>",
                   json_string_value(json_object_get(c, "id")));
        html_escape(out, json_string_value(json_object_get(c, "title")));
        buf_append_cstr(out, " <small>(");
        html_escape(out, json_string_value(json_object_get(c, "unit")));
        buf_append_cstr(out, ")</small></h3><div class=\"plot\"></div>"
                             "<div class=\"legend\"></div></section>\n");
    }
}

/* Key numbers first, then the charts, then Artillery's full tables. */
static void report_metrics(struct buf *out, const json_t *agg, const json_t *view,
                           const json_t *accepted)
{
    buf_append_cstr(out, "<h2>Summary</h2>\n");
    if (!json_is_object(agg)) {
        buf_append_cstr(out, "<p class=\"note\">The report has no aggregate metrics.</p>\n");
        report_charts(out, view);
        return;
    }
    report_cards(out, agg, accepted);
    report_charts(out, view);
    buf_append_cstr(out, "<h2>Metrics</h2>\n");
    report_values_table(out, "Counters", json_object_get(agg, "counters"));
    report_values_table(out, "Rates (per second)", json_object_get(agg, "rates"));
    report_summaries_table(out, json_object_get(agg, "summaries"));
}

static void report_served_by(struct buf *out, const json_t *served)
{
    size_t n;
    const char **keys;
    double total = 0;
    const char *key;
    json_t *v;

    if (!json_is_object(served) || json_object_size(served) == 0)
        return;
    json_object_foreach((json_t *)served, key, v) total +=
        json_is_number(v) ? json_number_value(v) : 0;
    keys = report_sorted_keys(served, &n);
    buf_append_cstr(out, "<h2>Spread per instance (X-Served-By)</h2>\n<div class=\"scroll\">"
                         "<table>\n<tr><th>instance</th><th>responses</th><th>share</th></tr>\n");
    for (size_t i = 0; i < n && i < REPORT_MAX_ROWS; i++) {
        v = json_object_get(served, keys[i]);
        buf_append_cstr(out, "<tr><td>");
        html_escape(out, keys[i]);
        buf_append_cstr(out, "</td><td>");
        report_num(out, v);
        buf_printf(out, "</td><td>%.1f%%</td></tr>\n",
                   total > 0 && json_is_number(v) ? json_number_value(v) * 100 / total : 0.0);
    }
    buf_append_cstr(out, "</table></div>\n");
    report_cut_note(out, n);
    free(keys);
}

static const char *const phase_cols[] = {"arrivalRate", "rampTo", "arrivalCount", "maxVusers"};

static void report_phases(struct buf *out, const json_t *phases, const json_t *view_phases)
{
    size_t i;
    json_t *p;

    if (json_array_size(view_phases) == 0)
        return;
    buf_append_cstr(out, "<h2>Phases</h2>\n<div class=\"scroll\"><table>\n<tr><th>phase</th>"
                         "<th>start (s)</th><th>duration (s)</th>");
    report_head_cells(out, phase_cols, ARRAY_LEN(phase_cols));
    /* view_phases holds the object entries of phases, in order: walk both together. */
    size_t k = 0;
    json_array_foreach(phases, i, p)
    {
        const json_t *vp = json_array_get(view_phases, k);
        if (!json_is_object(p) || !vp)
            continue;
        k++;
        buf_append_cstr(out, "<tr><td>");
        html_escape(out, json_string_value(json_object_get(vp, "name")));
        buf_printf(out, "</td><td>%g</td><td>%g</td>",
                   json_number_value(json_object_get(vp, "start")),
                   json_number_value(json_object_get(vp, "end")) -
                       json_number_value(json_object_get(vp, "start")));
        report_cells(out, p, phase_cols, ARRAY_LEN(phase_cols));
    }
    buf_append_cstr(out, "</table></div>\n");
}

static void report_events(struct buf *out, const json_t *events)
{
    size_t i;
    json_t *e;

    if (json_array_size(events) == 0)
        return;
    buf_append_cstr(out, "<h2>Events</h2>\n<div class=\"scroll\"><table>\n"
                         "<tr><th>event</th><th>at (s)</th></tr>\n");
    json_array_foreach(events, i, e)
    {
        buf_append_cstr(out, "<tr><td>");
        html_escape(out, json_string_value(json_object_get(e, "name")));
        buf_printf(out, "</td><td>%.1f</td></tr>\n", json_number_value(json_object_get(e, "t")));
    }
    buf_append_cstr(out, "</table></div>\n");
}

/* A seconds cell: the value to a tenth, or "–" when the drill could not tell. */
static void report_secs(struct buf *out, const json_t *v)
{
    if (json_is_number(v))
        buf_printf(out, "<td>%.1f</td>", json_number_value(v));
    else
        buf_append_cstr(out, "<td>–</td>");
}

/* `mesh drill`'s phases (meshkit.drill): what the users saw between two steps. */
static void report_drill(struct buf *out, const json_t *drill)
{
    const json_t *phases = json_object_get(drill, "phases");
    const char *kind = json_string_value(json_object_get(drill, "kind")), *key;
    size_t i;
    json_t *p, *v;

    if (json_array_size(phases) == 0)
        return;
    buf_append_cstr(out, "<h2>Drill");
    if (kind) {
        buf_append_cstr(out, ": ");
        html_escape(out, kind);
    }
    buf_append_cstr(out, "</h2>\n<div class=\"scroll\"><table>\n<tr><th>phase</th><th>from (s)"
                         "</th><th>requests</th><th>failures</th><th>p99 ms</th><th>detect (s)"
                         "</th><th>recover (s)</th><th>failures by kind</th></tr>\n");
    json_array_foreach(phases, i, p)
    {
        const char *name = json_string_value(json_object_get(p, "name"));
        bool first = true;

        buf_append_cstr(out, "<tr><td>");
        html_escape(out, name ? name : ""); /* a hand-edited report may have none */
        buf_append_cstr(out, "</td>");
        report_secs(out, json_object_get(p, "start_s"));
        for (const char *const *k = (const char *const[]){"requests", "failures", "p99_ms", NULL};
             *k; k++) {
            buf_append_cstr(out, "<td>");
            report_num(out, json_object_get(p, *k));
            buf_append_cstr(out, "</td>");
        }
        report_secs(out, json_object_get(p, "detect_s"));
        report_secs(out, json_object_get(p, "recover_s"));
        buf_append_cstr(out, "<td>");
        json_object_foreach(json_object_get(p, "by_kind"), key, v)
        {
            buf_append_cstr(out, first ? "" : ", ");
            html_escape(out, key);
            buf_append_cstr(out, ": ");
            report_num(out, v);
            first = false;
        }
        buf_append_cstr(out, "</td></tr>\n");
    }
    buf_append_cstr(out, "</table></div>\n");
}

static void report_page(struct buf *out, const json_t *report, const json_t *view)
{
    const json_t *meshkit = json_object_get(report, "meshkit");
    const char *scenario = report_str(meshkit, "scenario_file");

    buf_append_cstr(out, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                         "\n<title>Load test report");
    if (scenario) {
        buf_append_cstr(out, ": ");
        html_escape(out, scenario);
    }
    buf_printf(out,
               "</title>\n<style>\n%s</style>\n</head>\n<body>\n<main>\n"
               "<h1>Load test report</h1>\n",
               load_report_css);
    report_meta(out, report, view);
    report_skipped(out, report);
    report_drill(out, json_object_get(meshkit, "drill"));
    report_metrics(out, json_object_get(report, "aggregate"), view,
                   json_object_get(json_object_get(report, "meshkit"), "accepted_codes"));
    report_served_by(out, json_object_get(meshkit, "served_by"));
    report_phases(out, json_object_get(meshkit, "phases"), json_object_get(view, "phases"));
    report_events(out, json_object_get(view, "events"));
    buf_append_cstr(out, "</main>\n<script type=\"application/json\" id=\"report-view\">");
    html_append_json(out, view, JSON_REAL_PRECISION(6));
    buf_printf(out, "</script>\n<script>\n%s</script>\n</body>\n</html>\n", load_report_js);
}

int load_report_html_render(const json_t *report, struct buf *out, struct err *err)
{
    bool any = false;
    json_t *view;

    if (!json_is_object(report))
        return err_set(err, "a report must be a JSON object");
    for (size_t i = 0; i < ARRAY_LEN(report_sections); i++)
        any |= json_object_get(report, report_sections[i]) != NULL;
    if (!any)
        return err_set(err, "not a load report: no \"aggregate\", \"intermediate\" or "
                            "\"meshkit\" section");
    view = load_report_view(report);
    report_page(out, report, view);
    json_decref(view);
    return 0;
}

int load_report_html_write(const json_t *report, const char *path, struct err *err)
{
    struct buf page = BUF_INIT;
    int rc = load_report_html_render(report, &page, err);

    if (rc == 0)
        rc = file_replace(path, page.data, page.len, 0644, 0, err);
    buf_free(&page);
    return rc;
}
