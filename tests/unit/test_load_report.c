/* mesh load's HTML report: the page, the chart view it embeds, escaping, odd and partial input. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/alloc.h"
#include "load/engine.h"
#include "load/report.h"
#include "load/report_html.h"
#include "load/report_view.h"

/* A name a peer could send; EVIL_JSON is how it is written inside a JSON string. */
#define EVIL      "<script>alert(1)</script>&\"'"
#define EVIL_JSON "<script>alert(1)</script>&\\\"'"

static const char meshkit_report[] =
    "{\"aggregate\": {\"counters\": {\"http.requests\": 30, \"http.responses\": 29,"
    "  \"http.codes.200\": 27, \"http.codes.503\": 2, \"errors.ECONNREFUSED\": 1,"
    "  \"vusers.created\": 30, \"vusers.completed\": 29, \"vusers.failed\": 1},"
    " \"rates\": {\"http.request_rate\": 10},"
    " \"summaries\": {\"http.response_time\": {\"min\": 0.4, \"max\": 9.5, \"count\": 29,"
    "  \"mean\": 1.5, \"p50\": 1.1, \"median\": 1.1, \"p75\": 1.4, \"p90\": 2.0, \"p95\": 3.1,"
    "  \"p99\": 9.1, \"p999\": 9.5}},"
    " \"firstCounterAt\": 1700000000000, \"lastCounterAt\": 1700000003000},"
    "\"intermediate\": [],"
    "\"meshkit\": {\"version\": \"0.1.0\", \"target\": \"http://127.0.0.1:8080\","
    " \"scenario_file\": \"scenarios/failover.yml\", \"environment\": \"quick\","
    " \"phases\": [{\"name\": \"warm up\", \"start_ms\": 0, \"duration_ms\": 2000,"
    "   \"arrivalRate\": 10}, {\"name\": \"" EVIL_JSON "\", \"start_ms\": 2000,"
    "   \"duration_ms\": 1000, \"arrivalRate\": 10, \"rampTo\": 20}],"
    " \"served_by\": {\"web1/0\": 15, \"" EVIL_JSON "\": 14},"
    " \"timeline\": ["
    "  {\"t\": 0, \"requests\": 10, \"codes\": {\"200\": 10}, \"errors\": {\"ECONNREFUSED\": 0},"
    "   \"p50\": 1.2, \"p99\": 3.4, \"vusers_created\": 10, \"served_by\": {\"web1/0\": 5,"
    "   \"" EVIL_JSON "\": 5}},"
    "  {\"t\": 1, \"requests\": 10, \"codes\": {\"200\": 8, \"503\": 2}, \"errors\": {},"
    "   \"p50\": 1.0, \"p99\": 9.0, \"vusers_created\": 10, \"served_by\": {\"web1/0\": 10}},"
    "  {\"t\": 2, \"requests\": 10, \"codes\": {\"200\": 9}, \"errors\": {\"ECONNREFUSED\": 1},"
    "   \"p50\": 1.1, \"p99\": 2.0, \"vusers_created\": 10, \"served_by\": {\"" EVIL_JSON
    "\": 9}}],"
    " \"events\": [{\"t_ms\": 1500, \"name\": \"stop-service web1 " EVIL_JSON "\"}],"
    " \"histogram_error\": 0.01,"
    " \"drill\": {\"kind\": \"failover\", \"phases\": [{\"name\": \"stop-service web1\","
    "   \"start_s\": 1.5, \"requests\": 20, \"failures\": 2, \"p99_ms\": 9.04,"
    "   \"by_kind\": {\"503\": 1, \"" EVIL_JSON "\": 1}, \"detect_s\": 0.5,"
    "   \"recover_s\": null}]}}}";

/* What real Artillery 2 writes: no meshkit section, periods as strings of epoch ms. */
static const char artillery_report[] =
    "{\"aggregate\": {\"counters\": {\"http.requests\": 40, \"http.codes.200\": 38,"
    "  \"errors.ETIMEDOUT\": 2, \"vusers.created\": 40, \"vusers.failed\": 2},"
    " \"rates\": {\"http.request_rate\": 2},"
    " \"summaries\": {\"http.response_time\": {\"min\": 1, \"max\": 12, \"count\": 38,"
    "  \"mean\": 2.5, \"p50\": 2, \"median\": 2, \"p75\": 3, \"p90\": 4, \"p95\": 5, \"p99\": 11,"
    "  \"p999\": 12}}, \"histograms\": {}},"
    "\"intermediate\": ["
    " {\"period\": \"1700000000000\", \"counters\": {\"http.requests\": 20, \"http.codes.200\": 20,"
    "   \"vusers.created\": 20}, \"rates\": {\"http.request_rate\": 2},"
    "   \"summaries\": {\"http.response_time\": {\"median\": 0, \"p95\": 4, \"p99\": 6}}},"
    " {\"period\": \"1700000010000\", \"counters\": {\"http.requests\": 20, \"http.codes.200\": 18,"
    "   \"errors.ETIMEDOUT\": 2, \"vusers.created\": 20},"
    "   \"summaries\": {\"http.response_time\": {\"p50\": 0, \"p95\": 5, \"p99\": 11}}}]}";

static json_t *parse(const char *text)
{
    json_error_t je;
    json_t *v = json_loads(text, 0, &je);
    if (!v)
        fail_msg("fixture JSON: line %d: %s", je.line, je.text);
    return v;
}

static char *render(const char *text)
{
    struct buf page = BUF_INIT;
    struct err e = {{0}};
    json_t *report = parse(text);

    assert_int_equal(load_report_html_render(report, &page, &e), 0);
    json_decref(report);
    return buf_steal(&page);
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* The embedded chart view, parsed back out of the page. */
static json_t *page_view(const char *page)
{
    const char *open = "<script type=\"application/json\" id=\"report-view\">";
    const char *start = strstr(page, open), *end;
    char *text;
    json_t *v;

    assert_non_null(start);
    start += strlen(open);
    end = strstr(start, "</script>");
    assert_non_null(end);
    text = xstrndup(start, (size_t)(end - start));
    v = parse(text);
    free(text);
    return v;
}

static const json_t *chart(const json_t *view, const char *id)
{
    size_t i;
    json_t *c;

    json_array_foreach(json_object_get(view, "charts"), i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "id")), id) == 0)
            return c;
    }
    fail_msg("no chart %s", id);
    return NULL;
}

static const json_t *series(const json_t *view, const char *id, const char *name)
{
    size_t i;
    json_t *s;

    json_array_foreach(json_object_get(chart(view, id), "series"), i, s)
    {
        if (strcmp(json_string_value(json_object_get(s, "name")), name) == 0)
            return json_object_get(s, "values");
    }
    return NULL;
}

static void assert_values(const json_t *values, const char *expect)
{
    json_t *want = parse(expect);
    char *got = json_dumps(values, JSON_COMPACT);

    if (!json_equal((json_t *)values, want))
        fail_msg("values %s, want %s", got ? got : "(none)", expect);
    free(got);
    json_decref(want);
}

static void assert_balanced(const char *page)
{
    static const char *const tags[] = {"html",    "head", "body", "main",   "table", "tr",
                                       "section", "div",  "dl",   "script", "style", "h2"};
    char open[32], close[32];

    assert_true(strncmp(page, "<!DOCTYPE html>\n", 16) == 0);
    assert_non_null(strstr(page, "</html>\n"));
    for (size_t i = 0; i < ARRAY_LEN(tags); i++) {
        snprintf(open, sizeof(open), "<%s>", tags[i]);
        snprintf(close, sizeof(close), "</%s>", tags[i]);
        size_t opened = count(page, open);
        snprintf(open, sizeof(open), "<%s ", tags[i]);
        opened += count(page, open);
        assert_int_equal(opened, count(page, close));
    }
}

static void test_meshkit_page(void **state)
{
    char *page = render(meshkit_report);
    json_t *view = page_view(page);

    assert_balanced(page);
    /* No external asset: everything is inline. */
    assert_null(strstr(page, "src="));
    assert_null(strstr(page, "href="));
    assert_non_null(strstr(page, "<title>Load test report: scenarios/failover.yml</title>"));
    assert_non_null(strstr(page, "<td>http.codes.503</td><td>2</td>"));
    assert_non_null(strstr(page, "<td>http.response_time</td><td>0.4</td><td>9.5</td>"));
    assert_non_null(strstr(page, "within ±1% (log-linear histogram)"));
    assert_non_null(strstr(page, "<td>web1/0</td><td>15</td><td>51.7%</td>"));
    assert_non_null(strstr(page, "<h2>Drill: failover</h2>"));
    assert_non_null(strstr(page, "<tr><td>stop-service web1</td><td>1.5</td><td>20</td><td>2</td>"
                                 "<td>9.0</td><td>0.5</td><td>–</td><td>503: 1, &lt;script&gt;"));
    for (const char *id = "rate\0latency\0codes\0errors\0served\0"; *id; id += strlen(id) + 1) {
        char frame[64];
        snprintf(frame, sizeof(frame), "<section class=\"chart\" id=\"chart-%s\">", id);
        assert_non_null(strstr(page, frame));
    }

    assert_string_equal(json_string_value(json_object_get(view, "source")), "timeline");
    assert_values(json_object_get(view, "t"), "[0, 1, 2]");
    assert_values(series(view, "rate", "requests/s"), "[10, 10, 10]");
    assert_values(series(view, "latency", "p50"), "[1.2, 1, 1.1]");
    assert_values(series(view, "latency", "p99"), "[3.4, 9, 2]");
    /* The timeline has no p95: the series is left out rather than drawn at zero. */
    assert_null(series(view, "latency", "p95"));
    assert_values(series(view, "codes", "200"), "[10, 8, 9]");
    assert_values(series(view, "codes", "503"), "[0, 2, 0]");
    assert_values(series(view, "errors", "ECONNREFUSED"), "[0, 0, 1]");
    assert_values(series(view, "served", "web1/0"), "[5, 10, 0]");
    assert_values(series(view, "served", EVIL), "[5, 0, 9]");
    assert_values(json_object_get(view, "phases"),
                  "[{\"name\": \"warm up\", \"start\": 0, \"end\": 2},"
                  " {\"name\": \"" EVIL_JSON "\", \"start\": 2, \"end\": 3}]");
    assert_values(json_object_get(view, "events"),
                  "[{\"t\": 1.5, \"name\": \"stop-service web1 " EVIL_JSON "\"}]");
    json_decref(view);
    free(page);
}

static void test_names_are_escaped(void **state)
{
    char *page = render(meshkit_report);

    /* The only script elements are the page's own two. */
    assert_int_equal(count(page, "<script"), 2);
    assert_int_equal(count(page, "</script>"), 2);
    assert_null(strstr(page, EVIL));
    assert_non_null(strstr(page, "<td>&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;&#39;</td>"));
    assert_non_null(strstr(page, "<td>stop-service web1 &lt;script&gt;"));
    free(page);
}

static void test_artillery_report(void **state)
{
    char *page = render(artillery_report);
    json_t *view = page_view(page);

    assert_balanced(page);
    assert_non_null(strstr(page, "Artillery (no meshkit section)"));
    assert_null(strstr(page, "Spread per instance"));
    assert_string_equal(json_string_value(json_object_get(view, "source")), "intermediate");
    assert_int_equal(json_integer_value(json_object_get(view, "bucket_s")), 10);
    assert_values(json_object_get(view, "t"), "[0, 10]");
    /* The period's own rate when it has one, else its requests over its length. */
    assert_values(series(view, "rate", "requests/s"), "[2, 2]");
    assert_values(series(view, "codes", "200"), "[2, 1.8]");
    assert_values(series(view, "errors", "ETIMEDOUT"), "[0, 0.2]");
    /* A measured 0 ms median is data: the series stays (only a count of zeros goes). */
    assert_values(series(view, "latency", "p50"), "[0, 0]");
    assert_values(series(view, "latency", "p95"), "[4, 5]");
    assert_int_equal(json_array_size(json_object_get(chart(view, "served"), "series")), 0);
    assert_int_equal(json_array_size(json_object_get(view, "phases")), 0);
    json_decref(view);
    free(page);
}

static void test_missing_sections(void **state)
{
    char *page = render("{\"aggregate\": {\"counters\": {\"http.requests\": 0}}}");
    json_t *view = page_view(page);

    assert_balanced(page);
    assert_string_equal(json_string_value(json_object_get(view, "source")), "none");
    assert_int_equal(json_array_size(json_object_get(chart(view, "rate"), "series")), 0);
    assert_null(strstr(page, "<h2>Phases</h2>"));
    assert_null(strstr(page, "<h2>Events</h2>"));
    json_decref(view);
    free(page);

    /* Sections of the wrong type are named on the page, not fatal. */
    page = render("{\"aggregate\": \"x\", \"intermediate\": {}, \"meshkit\": {\"timeline\": 5,"
                  " \"events\": [1, {\"name\": \"no time\"}], \"phases\": [{}]}}");
    assert_balanced(page);
    assert_non_null(strstr(page, "\"aggregate\" is not an object: ignored."));
    assert_non_null(strstr(page, "\"intermediate\" is not an array: ignored."));
    assert_non_null(strstr(page, "The report has no aggregate metrics."));
    view = page_view(page);
    assert_values(json_object_get(view, "events"), "[]");
    assert_values(json_object_get(view, "phases"),
                  "[{\"name\": \"phase 1\", \"start\": 0, \"end\": 0}]");
    json_decref(view);
    free(page);

    /* A drill section whose phases are not objects or lack a name: an empty cell, no crash. */
    page = render("{\"aggregate\": {}, \"meshkit\": {\"drill\": {\"kind\": 7,"
                  " \"phases\": [1, {\"name\": 2, \"requests\": 3}]}}}");
    assert_balanced(page);
    assert_non_null(strstr(page, "<h2>Drill</h2>"));
    assert_non_null(strstr(page, "<tr><td></td>"));
    free(page);
}

static void test_not_a_report(void **state)
{
    static const char *const bad[] = {"[]", "{}", "{\"counters\": {}}", "3"};
    struct buf page = BUF_INIT;
    struct err e = {{0}};

    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        json_t *v = json_loads(bad[i], JSON_DECODE_ANY, NULL);
        assert_int_equal(load_report_html_render(v, &page, &e), -EINVAL);
        assert_int_equal(page.len, 0);
        json_decref(v);
    }
    assert_string_equal(e.msg, "a report must be a JSON object");
}

/* Many instances: the chart keeps the largest, the rest are summed into "other". */
static void test_series_are_bounded(void **state)
{
    json_t *report = parse("{\"meshkit\": {\"timeline\": [{\"t\": 0, \"served_by\": {}},"
                           " {\"t\": 1, \"served_by\": {}}]}}");
    json_t *t0 = json_object_get(
        json_array_get(json_object_get(json_object_get(report, "meshkit"), "timeline"), 0),
        "served_by");
    json_t *view, *other;
    char name[32];
    size_t n;

    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof(name), "web%03d/0", i);
        json_object_set_new(t0, name, json_integer(i + 1));
    }
    view = load_report_view(report);
    n = json_array_size(json_object_get(chart(view, "served"), "series"));
    assert_int_equal(n, LOAD_REPORT_MAX_SERIES);
    assert_values(series(view, "served", "web063/0"), "[64, 0]");
    assert_null(series(view, "served", "web199/0"));
    assert_null(series(view, "served", "web000/0"));
    /* Past the tracked names everything went to "other"; the total is kept either way. */
    other = (json_t *)series(view, "served", "other");
    assert_non_null(other);
    double kept = 0, total = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(json_object_get(chart(view, "served"), "series"), i);
        kept += json_number_value(json_array_get(json_object_get(s, "values"), 0));
    }
    for (int i = 0; i < 200; i++)
        total += i + 1;
    assert_true(kept == total);
    json_decref(view);
    json_decref(report);
}

static void test_write_file(void **state)
{
    const char *base = getenv("MESH_TEST_TMPDIR") ? getenv("MESH_TEST_TMPDIR") : "/tmp";
    char *dir, *path, *missing;
    json_t *report = parse(artillery_report);
    struct err e = {{0}};
    char *expect = render(artillery_report);
    struct stat st;
    FILE *f;

    mkdir(base, 0755);
    dir = xasprintf("%s/test_load_report.XXXXXX", base);
    assert_non_null(mkdtemp(dir));
    path = xasprintf("%s/r.html", dir);
    assert_int_equal(load_report_html_write(report, path, &e), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal((size_t)st.st_size, strlen(expect));
    assert_int_equal(st.st_mode & 0777, 0644);
    char *got = xcalloc(1, (size_t)st.st_size + 1);
    f = fopen(path, "r");
    assert_non_null(f);
    assert_int_equal(fread(got, 1, (size_t)st.st_size, f), (size_t)st.st_size);
    fclose(f);
    assert_string_equal(got, expect);

    missing = xasprintf("%s/no/such/dir/r.html", dir);
    assert_int_equal(load_report_html_write(report, missing, &e), -ENOENT);
    assert_non_null(strstr(e.msg, missing));
    assert_non_null(strstr(e.msg, "No such file or directory"));

    unlink(path);
    assert_int_equal(rmdir(dir), 0);
    free(got);
    free(missing);
    free(path);
    free(dir);
    free(expect);
    json_decref(report);
}

static void engine_done(void *data)
{
    *(bool *)data = true;
}

/* Records one response of us microseconds and status code into worker w's second i. */
static void record(struct load_engine *eng, size_t w, size_t i, uint64_t us, int code)
{
    struct load_stats *st = load_engine_stats(eng, w);
    struct load_sec *sec;

    uv_mutex_lock(&st->lock);
    sec = load_stats_at(st, i);
    sec->requests++;
    sec->responses++;
    sec->codes[code]++;
    histogram_record(&sec->rt, us);
    uv_mutex_unlock(&st->lock);
}

static size_t held(struct load_engine *eng, size_t w)
{
    struct load_stats *st = load_engine_stats(eng, w);
    size_t n = 0;

    for (size_t i = 0; i < st->n; i++)
        n += st->secs[i] != NULL;
    return n;
}

/* Passed seconds leave the workers (a long run must not keep 36 KB a second per worker), yet
 * the timeline, the periods and the aggregate are as if every second had been kept. */
static void test_drain_moves_seconds_out(void **state)
{
    struct load_script script = {.target = "http://127.0.0.1:1", .path = "t.yml"};
    struct load_engine_opts o = {.workers = 2};
    struct load_result r;
    struct err e = {""};
    uv_loop_t loop;
    bool done = false;
    struct load_engine *eng;
    json_t *rep, *tl;

    (void)state;
    uv_loop_init(&loop);
    o.main_loop = &loop;
    o.on_done = engine_done;
    o.data = &done;
    eng = load_engine_new(&script, &o, &e);
    assert_non_null(eng);
    load_engine_start(eng); /* no phase: the workers end at once */
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_true(done);
    load_engine_join(eng);
    load_result_init(&r, eng);
    r.shift = 0; /* the run started on a multiple of 10 s: periods of seconds 0-9, 10-19, ... */
    for (size_t i = 0; i < 25; i++) {
        record(eng, 0, i, 1000, 200);
        record(eng, 1, i, 3000, i == 3 ? 503 : 200);
    }
    load_result_drain(eng, 12, &r);
    assert_int_equal(held(eng, 0), 13);
    assert_int_equal(held(eng, 1), 13);
    assert_int_equal(r.n_secs, 12);
    assert_int_equal(r.n_periods, 2);
    record(eng, 1, 4, 9000, 200); /* late, into a second already moved */
    load_result_drain(eng, 25, &r);
    assert_int_equal(held(eng, 0) + held(eng, 1), 0);
    assert_int_equal(r.n_secs, 25);
    assert_int_equal(r.n_periods, 3);
    r.elapsed_s = 25;
    rep = load_report_json(&r, &script, 0);
    tl = json_object_get(json_object_get(rep, "meshkit"), "timeline");
    assert_int_equal(json_array_size(tl), 25);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(tl, 3), "requests")), 2);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(json_array_get(tl, 3), "codes"), "503")),
        1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(tl, 4), "requests")), 3);
    assert_true(json_real_value(json_object_get(json_array_get(tl, 4), "max")) == 9);
    assert_true(json_real_value(json_object_get(json_array_get(tl, 0), "p50")) < 1.1);
    assert_true(json_real_value(json_object_get(json_array_get(tl, 0), "p99")) > 2.9);
    assert_int_equal(json_array_size(json_object_get(rep, "intermediate")), 3);
    assert_int_equal(
        json_integer_value(json_object_get(
            json_object_get(json_array_get(json_object_get(rep, "intermediate"), 0), "counters"),
            "http.requests")),
        21);
    assert_int_equal(
        json_integer_value(json_object_get(
            json_object_get(json_object_get(rep, "aggregate"), "counters"), "http.requests")),
        51);
    assert_int_equal(
        json_integer_value(json_object_get(
            json_object_get(json_object_get(json_object_get(rep, "aggregate"), "summaries"),
                            "http.response_time"),
            "count")),
        51);
    json_decref(rep);
    load_result_free(&r);
    /* started 7 s into its 10 s of the wall clock: periods of 3, 10, 10 and 2 seconds, each
     * "period" a multiple of 10 s, and the aggregate's the last one's */
    load_result_init(&r, eng);
    r.shift = 7;
    r.start_epoch_ms = 1700000007000;
    for (size_t i = 0; i < 25; i++)
        record(eng, 0, i, 1000, 200);
    load_result_drain(eng, 25, &r);
    assert_int_equal(r.n_periods, 4);
    r.elapsed_s = 25;
    rep = load_report_json(&r, &script, 0);
    {
        static const char *const want[] = {"1700000000000", "1700000010000", "1700000020000",
                                           "1700000030000"};
        static const int reqs[] = {3, 10, 10, 2};
        const json_t *inter = json_object_get(rep, "intermediate");

        assert_int_equal(json_array_size(inter), 4);
        for (size_t k = 0; k < 4; k++) {
            const json_t *p = json_array_get(inter, k);

            assert_string_equal(json_string_value(json_object_get(p, "period")), want[k]);
            assert_int_equal(json_integer_value(
                                 json_object_get(json_object_get(p, "counters"), "http.requests")),
                             reqs[k]);
        }
        assert_true(json_integer_value(json_object_get(json_object_get(rep, "aggregate"),
                                                       "period")) == 1700000030000);
    }
    json_decref(rep);
    load_result_free(&r);
    load_engine_free(eng);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_meshkit_page),     cmocka_unit_test(test_names_are_escaped),
        cmocka_unit_test(test_artillery_report), cmocka_unit_test(test_missing_sections),
        cmocka_unit_test(test_not_a_report),     cmocka_unit_test(test_series_are_bounded),
        cmocka_unit_test(test_write_file),       cmocka_unit_test(test_drain_moves_seconds_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
