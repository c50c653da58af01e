/*
 * From a report JSON to the series the page draws (see report_view.h). Two sources: meshkit's
 * per-second timeline, or, for Artillery's own reports, the intermediate periods (10 s each by
 * default, keyed by a "period" that Artillery writes as a string of epoch milliseconds).
 */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "load/report_view.h"

/* Distinct names tracked per chart before new ones all go to "other" (a peer sets them). */
#define VIEW_MAX_TRACKED 64
#define VIEW_MAX_MARKS   1000
#define VIEW_PERIOD_MS   10000.0

/* Reads a number, or a string holding one (Artillery's "period"). */
static bool view_num(const json_t *v, double *out)
{
    char *end;

    if (json_is_number(v)) {
        *out = json_number_value(v);
        return isfinite(*out);
    }
    if (!json_is_string(v) || json_string_length(v) == 0)
        return false;
    *out = strtod(json_string_value(v), &end);
    return *end == '\0' && isfinite(*out);
}

static json_t *view_number(double v)
{
    if (v == floor(v) && fabs(v) < 9007199254740992.0)
        return json_integer((json_int_t)v);
    return json_real(v);
}

/* A chart's series while they are filled: name -> array of n values (null until set). */
struct view_set {
    json_t *map;
    size_t n;
};

static void view_set_init(struct view_set *s, size_t n, const char *const *fixed)
{
    s->map = json_object();
    s->n = n;
    for (; fixed && *fixed; fixed++) {
        json_t *values = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(values, json_null());
        json_object_set_new(s->map, *fixed, values);
    }
}

/* Adds v to the value of series name at bucket i (adding, so "other" sums what it folds). */
static void view_set_add(struct view_set *s, const char *name, size_t i, double v)
{
    json_t *values = json_object_get(s->map, name);
    double old;

    if (!values) {
        if (json_object_size(s->map) >= VIEW_MAX_TRACKED)
            name = "other";
        values = json_object_get(s->map, name);
    }
    if (!values) {
        values = json_array();
        /* Counted series: a bucket that does not name the key had none of it. */
        for (size_t k = 0; k < s->n; k++)
            json_array_append_new(values, json_integer(0));
        json_object_set_new(s->map, name, values);
    }
    if (view_num(json_array_get(values, i), &old))
        v += old;
    json_array_set_new(values, i, view_number(v));
}

/* Adds every numeric member of obj, divided by width_s, under its name minus prefix. */
static void view_set_add_map(struct view_set *s, const json_t *obj, const char *prefix, size_t i,
                             double width_s)
{
    const char *key;
    json_t *value;
    size_t plen = prefix ? strlen(prefix) : 0;
    double v;

    /* jansson's iteration macros take a non-const object but do not modify it. */
    json_object_foreach((json_t *)obj, key, value)
    {
        if (prefix && strncmp(key, prefix, plen) != 0)
            continue;
        if (key[plen] != '\0' && view_num(value, &v))
            view_set_add(s, key + plen, i, v / width_s);
    }
}

/* Sum of the absolute values; *numbers counts the buckets that have one. */
static double view_series_total(const json_t *values, size_t *numbers)
{
    double total = 0, v;
    size_t i;
    json_t *x;

    *numbers = 0;
    json_array_foreach(values, i, x)
    {
        if (view_num(x, &v)) {
            total += fabs(v);
            (*numbers)++;
        }
    }
    return total;
}

struct view_ranked {
    const char *name;
    json_t *values;
    double total;
};

static int view_by_total(const void *a, const void *b)
{
    const struct view_ranked *x = a, *y = b;
    if (x->total != y->total)
        return x->total < y->total ? 1 : -1;
    return strcmp(x->name, y->name);
}

static int view_by_name(const void *a, const void *b)
{
    const struct view_ranked *x = a, *y = b;
    return strcmp(x->name, y->name);
}

/*
 * Turns the set into the chart's "series" array and frees the map. A series goes when it has no
 * value at all, and a counted one (sort_names) also when every count is zero: an error kind
 * that never happened goes, but a measured 0 ms median stays. Past LOAD_REPORT_MAX_SERIES the
 * smallest are summed into "other"; counted sets come out sorted by name, fixed ones in order.
 */
static json_t *view_set_finish(struct view_set *s, bool sort_names)
{
    struct view_ranked *r = xcalloc(json_object_size(s->map) + 1, sizeof(*r));
    size_t n = 0, keep, numbers;
    json_t *series = json_array(), *other = NULL, *values;
    const char *key;

    json_object_foreach(s->map, key, values)
    {
        double total = view_series_total(values, &numbers);
        if (sort_names ? total > 0 : numbers > 0)
            r[n++] = (struct view_ranked){key, values, total};
    }
    keep = n;
    if (n > LOAD_REPORT_MAX_SERIES) {
        qsort(r, n, sizeof(*r), view_by_total);
        keep = LOAD_REPORT_MAX_SERIES - 1;
        other = json_array();
        for (size_t i = 0; i < s->n; i++) {
            double sum = 0, v;
            for (size_t k = keep; k < n; k++)
                sum += view_num(json_array_get(r[k].values, i), &v) ? v : 0;
            json_array_append_new(other, view_number(sum));
        }
    }
    if (sort_names)
        qsort(r, keep, sizeof(*r), view_by_name);
    for (size_t i = 0; i < keep; i++)
        json_array_append_new(series,
                              json_pack("{s:s, s:O}", "name", r[i].name, "values", r[i].values));
    if (other)
        json_array_append_new(series, json_pack("{s:s, s:o}", "name", "other", "values", other));
    free(r);
    json_decref(s->map);
    s->map = NULL;
    return series;
}

/* The five charts, filled bucket by bucket by one of the two sources. */
struct view_charts {
    struct view_set rate, latency, codes, errors, served;
};

static const char *const rate_names[] = {"requests/s", "vusers created/s", NULL};
static const char *const latency_names[] = {"p50", "p95", "p99", NULL};

static void view_charts_init(struct view_charts *c, size_t n)
{
    view_set_init(&c->rate, n, rate_names);
    view_set_init(&c->latency, n, latency_names);
    view_set_init(&c->codes, n, NULL);
    view_set_init(&c->errors, n, NULL);
    view_set_init(&c->served, n, NULL);
}

static void view_chart(json_t *charts, const char *id, const char *title, const char *unit,
                       struct view_set *s, bool sort_names)
{
    json_array_append_new(charts,
                          json_pack("{s:s, s:s, s:s, s:o}", "id", id, "title", title, "unit", unit,
                                    "series", view_set_finish(s, sort_names)));
}

static json_t *view_charts_finish(struct view_charts *c)
{
    json_t *charts = json_array();

    view_chart(charts, "rate", "Request rate", "per second", &c->rate, false);
    view_chart(charts, "latency", "Response time percentiles", "ms", &c->latency, false);
    view_chart(charts, "codes", "Responses by status code", "per second", &c->codes, true);
    view_chart(charts, "errors", "Errors by kind", "per second", &c->errors, true);
    view_chart(charts, "served", "Responses per instance (X-Served-By)", "per second", &c->served,
               true);
    return charts;
}

static void view_set_num(struct view_set *s, const char *name, size_t i, const json_t *v,
                         double div)
{
    double x;

    if (view_num(v, &x))
        view_set_add(s, name, i, x / div);
}

/* Objects only: a stray value in the array is skipped, not charted as a hole. */
static size_t view_count_objects(const json_t *array)
{
    size_t n = 0, i;
    json_t *e;

    json_array_foreach(array, i, e)
    {
        n += json_is_object(e);
    }
    return n;
}

static void view_from_timeline(json_t *view, const json_t *timeline)
{
    struct view_charts c;
    json_t *t = json_array(), *e;
    size_t n = view_count_objects(timeline), i, k = 0;
    double x;

    view_charts_init(&c, n);
    json_array_foreach(timeline, i, e)
    {
        if (!json_is_object(e))
            continue;
        json_array_append_new(t, view_number(view_num(json_object_get(e, "t"), &x) ? x : k));
        view_set_num(&c.rate, "requests/s", k, json_object_get(e, "requests"), 1);
        view_set_num(&c.rate, "vusers created/s", k, json_object_get(e, "vusers_created"), 1);
        for (const char *const *p = latency_names; *p; p++)
            view_set_num(&c.latency, *p, k, json_object_get(e, *p), 1);
        view_set_add_map(&c.codes, json_object_get(e, "codes"), NULL, k, 1);
        view_set_add_map(&c.errors, json_object_get(e, "errors"), NULL, k, 1);
        view_set_add_map(&c.served, json_object_get(e, "served_by"), NULL, k, 1);
        k++;
    }
    json_object_set_new(view, "source", json_string("timeline"));
    json_object_set_new(view, "bucket_s", json_integer(1));
    json_object_set_new(view, "t", t);
    json_object_set_new(view, "charts", view_charts_finish(&c));
}

/* A period's start in epoch ms: "period", else firstCounterAt. */
static bool view_period_start(const json_t *e, double *ms)
{
    return view_num(json_object_get(e, "period"), ms) ||
           view_num(json_object_get(e, "firstCounterAt"), ms);
}

/* Fills starts[] (epoch ms) and widths[] (s) of the n object entries of periods. */
static void view_period_times(const json_t *periods, double *starts, double *widths, size_t n)
{
    size_t i, k = 0;
    json_t *e;

    json_array_foreach(periods, i, e)
    {
        if (!json_is_object(e))
            continue;
        if (!view_period_start(e, &starts[k]))
            starts[k] = k ? starts[k - 1] + VIEW_PERIOD_MS : 0;
        k++;
    }
    /* A period lasts until the next one starts; the last as long as the one before it. */
    for (k = 0; k < n; k++) {
        double w = k + 1 < n ? starts[k + 1] - starts[k] : k ? widths[k - 1] * 1000 : 0;
        widths[k] = (w > 0 ? w : VIEW_PERIOD_MS) / 1000;
    }
}

static void view_from_intermediate(json_t *view, const json_t *periods)
{
    struct view_charts c;
    size_t n = view_count_objects(periods), i, k = 0;
    double *starts = xcalloc(n + 1, sizeof(double)), *widths = xcalloc(n + 1, sizeof(double));
    json_t *t = json_array(), *e;

    view_period_times(periods, starts, widths, n);
    view_charts_init(&c, n);
    json_array_foreach(periods, i, e)
    {
        const json_t *counters = json_object_get(e, "counters");
        const json_t *rt = json_object_get(json_object_get(e, "summaries"), "http.response_time");
        const json_t *rate = json_object_get(json_object_get(e, "rates"), "http.request_rate");
        double w;

        if (!json_is_object(e))
            continue;
        w = widths[k];
        json_array_append_new(t, view_number((starts[k] - starts[0]) / 1000));
        if (rate)
            view_set_num(&c.rate, "requests/s", k, rate, 1);
        else
            view_set_num(&c.rate, "requests/s", k, json_object_get(counters, "http.requests"), w);
        view_set_num(&c.rate, "vusers created/s", k, json_object_get(counters, "vusers.created"),
                     w);
        view_set_num(&c.latency, "p50", k,
                     json_object_get(rt, json_object_get(rt, "p50") ? "p50" : "median"), 1);
        view_set_num(&c.latency, "p95", k, json_object_get(rt, "p95"), 1);
        view_set_num(&c.latency, "p99", k, json_object_get(rt, "p99"), 1);
        view_set_add_map(&c.codes, counters, "http.codes.", k, w);
        view_set_add_map(&c.errors, counters, "errors.", k, w);
        k++;
    }
    json_object_set_new(view, "source", json_string("intermediate"));
    json_object_set_new(view, "bucket_s", view_number(n ? widths[0] : VIEW_PERIOD_MS / 1000));
    json_object_set_new(view, "t", t);
    json_object_set_new(view, "charts", view_charts_finish(&c));
    free(starts);
    free(widths);
}

static const char *view_name(const json_t *obj, const char *fallback)
{
    const json_t *name = json_object_get(obj, "name");
    return json_is_string(name) && json_string_length(name) ? json_string_value(name) : fallback;
}

static json_t *view_phases(const json_t *phases)
{
    json_t *out = json_array(), *p;
    double end = 0, start, duration;
    size_t i;

    json_array_foreach(phases, i, p)
    {
        char fallback[32];
        if (!json_is_object(p) || i >= VIEW_MAX_MARKS)
            continue;
        if (!view_num(json_object_get(p, "start_ms"), &start))
            start = end;
        if (!view_num(json_object_get(p, "duration_ms"), &duration) || duration < 0)
            duration = 0;
        end = start + duration;
        snprintf(fallback, sizeof(fallback), "phase %zu", i + 1);
        json_array_append_new(out,
                              json_pack("{s:s, s:o, s:o}", "name", view_name(p, fallback), "start",
                                        view_number(start / 1000), "end", view_number(end / 1000)));
    }
    return out;
}

static json_t *view_events(const json_t *events)
{
    json_t *out = json_array(), *e;
    double t;
    size_t i;

    json_array_foreach(events, i, e)
    {
        if (!json_is_object(e) || i >= VIEW_MAX_MARKS || !view_num(json_object_get(e, "t_ms"), &t))
            continue;
        json_array_append_new(out, json_pack("{s:o, s:s}", "t", view_number(t / 1000), "name",
                                             view_name(e, "event")));
    }
    return out;
}

json_t *load_report_view(const json_t *report)
{
    const json_t *meshkit = json_object_get(report, "meshkit");
    const json_t *timeline = json_object_get(meshkit, "timeline");
    const json_t *intermediate = json_object_get(report, "intermediate");
    json_t *view = json_object();

    if (view_count_objects(timeline) > 0) {
        view_from_timeline(view, timeline);
    } else if (view_count_objects(intermediate) > 0) {
        view_from_intermediate(view, intermediate);
    } else {
        struct view_charts c;
        view_charts_init(&c, 0);
        json_object_set_new(view, "source", json_string("none"));
        json_object_set_new(view, "bucket_s", json_integer(1));
        json_object_set_new(view, "t", json_array());
        json_object_set_new(view, "charts", view_charts_finish(&c));
    }
    json_object_set_new(view, "phases", view_phases(json_object_get(meshkit, "phases")));
    json_object_set_new(view, "events", view_events(json_object_get(meshkit, "events")));
    return view;
}
