/* Report JSON and console output of a run: see report.h. */
#include "load/report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/numfmt.h"
#include "lib/alloc.h"
#include "lib/histogram.h"
#include "load/template.h"

#define DOTS_COL          80 /* where Artillery's dotted metric lines put their values */
#define MAX_TIMELINE_ROWS 60

void load_result_init(struct load_result *r, struct load_engine *eng)
{
    memset(r, 0, sizeof(*r));
    r->start_epoch_ms = load_engine_start_epoch_ms(eng);
    r->start_ns = load_engine_start_ns(eng);
    r->shift = (size_t)(r->start_epoch_ms / 1000 % LOAD_PERIOD_S);
}

void load_period_span(const struct load_result *r, size_t k, size_t *from, size_t *to)
{
    size_t start = k * LOAD_PERIOD_S, end = start + LOAD_PERIOD_S;

    *from = start > r->shift ? start - r->shift : 0;
    *to = end - r->shift < r->n_secs ? end - r->shift : r->n_secs;
}

/* Adds s's counts to row (not its percentiles, which a sum of rows cannot give). */
static void row_add(struct load_row *row, const struct load_sec *s)
{
    char code[8];

    row->requests += s->requests;
    row->responses += s->responses;
    row->created += s->created;
    row->completed += s->completed;
    row->failed += s->failed;
    if (s->rt.count && s->rt.max > row->max_us)
        row->max_us = s->rt.max;
    for (int c = 0; c < LOAD_CODES; c++) {
        if (!s->codes[c])
            continue;
        snprintf(code, sizeof(code), "%d", c);
        load_counts_add(&row->codes, code, strlen(code), s->codes[c], SIZE_MAX);
    }
    load_counts_merge(&row->errors, &s->errors);
    load_counts_merge(&row->served_by, &s->served_by);
}

static void row_free(struct load_row *row)
{
    load_counts_free(&row->codes);
    load_counts_free(&row->errors);
    load_counts_free(&row->served_by);
}

/* Takes second i out of every worker, merged (an empty bucket when none has it). */
static struct load_sec *take_second(struct load_engine *eng, size_t i)
{
    struct load_sec *sum = NULL;

    for (size_t w = 0; w < load_engine_workers(eng); w++) {
        struct load_stats *st = load_engine_stats(eng, w);

        uv_mutex_lock(&st->lock);
        if (i < st->n && st->secs[i]) {
            if (!sum) {
                sum = st->secs[i];
            } else {
                load_sec_merge(sum, st->secs[i]);
                load_sec_free(st->secs[i]);
            }
            st->secs[i] = NULL;
        }
        uv_mutex_unlock(&st->lock);
    }
    return sum ? sum : load_sec_new();
}

void load_result_drain(struct load_engine *eng, size_t to, struct load_result *r)
{
    size_t from = r->n_secs;

    if (to > from) {
        size_t np = (to - 1 + r->shift) / LOAD_PERIOD_S + 1;

        r->rows = xrealloc(r->rows, to * sizeof(*r->rows));
        if (np > r->n_periods) {
            r->periods = xrealloc(r->periods, np * sizeof(*r->periods));
            for (size_t k = r->n_periods; k < np; k++)
                r->periods[k] = load_sec_new();
            r->n_periods = np;
        }
    }
    /* late records first, so the seconds moved below cannot be taken for late ones */
    for (size_t w = 0; w < load_engine_workers(eng); w++) {
        struct load_stats *st = load_engine_stats(eng, w);

        uv_mutex_lock(&st->lock);
        for (size_t i = 0; i < from && i < st->n; i++) {
            if (!st->secs[i])
                continue;
            row_add(&r->rows[i], st->secs[i]);
            load_sec_merge(r->periods[(i + r->shift) / LOAD_PERIOD_S], st->secs[i]);
            load_sec_free(st->secs[i]);
            st->secs[i] = NULL;
        }
        uv_mutex_unlock(&st->lock);
    }
    for (size_t i = from; i < to; i++) {
        struct load_sec *sec = take_second(eng, i);
        struct load_row *row = &r->rows[i];

        memset(row, 0, sizeof(*row));
        row_add(row, sec);
        row->p50_us = histogram_percentile(&sec->rt, 0.5);
        row->p95_us = histogram_percentile(&sec->rt, 0.95);
        row->p99_us = histogram_percentile(&sec->rt, 0.99);
        load_sec_merge(r->periods[(i + r->shift) / LOAD_PERIOD_S], sec);
        load_sec_free(sec);
    }
    if (to > from)
        r->n_secs = to;
}

void load_result_free(struct load_result *r)
{
    for (size_t i = 0; i < r->n_secs; i++)
        row_free(&r->rows[i]);
    for (size_t k = 0; k < r->n_periods; k++)
        load_sec_free(r->periods[k]);
    FREE_NULL(r->rows);
    FREE_NULL(r->periods);
    r->n_secs = r->n_periods = 0;
}

struct load_sec *load_result_peek(struct load_engine *eng, size_t from, size_t to)
{
    struct load_sec *sum = load_sec_new();

    for (size_t w = 0; w < load_engine_workers(eng); w++) {
        struct load_stats *st = load_engine_stats(eng, w);

        uv_mutex_lock(&st->lock);
        for (size_t i = from; i < to && i < st->n; i++)
            if (st->secs[i])
                load_sec_merge(sum, st->secs[i]);
        uv_mutex_unlock(&st->lock);
    }
    return sum;
}

/* ms from us, to the microsecond */
static double ms(double us)
{
    return round(us) / 1000;
}

static json_t *summary(const struct histogram *h)
{
    return json_pack(
        "{s:f,s:f,s:I,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f}", "min", ms(h->count ? (double)h->min : 0),
        "max", ms((double)h->max), "count", (json_int_t)h->count, "mean", ms(histogram_mean(h)),
        "p50", ms(histogram_percentile(h, 0.5)), "median", ms(histogram_percentile(h, 0.5)), "p75",
        ms(histogram_percentile(h, 0.75)), "p90", ms(histogram_percentile(h, 0.9)), "p95",
        ms(histogram_percentile(h, 0.95)), "p99", ms(histogram_percentile(h, 0.99)), "p999",
        ms(histogram_percentile(h, 0.999)));
}

static void set_count(json_t *obj, const char *name, uint64_t v)
{
    json_object_set_new(obj, name, json_integer((json_int_t)v));
}

/* plugins.expect.ok (checks, not requests) and .ok.<check>, as Artillery counts them; zero ones
 * are left out, as Artillery never emits them. */
static void expect_counters(json_t *c, const char *verdict, const uint64_t *by_kind)
{
    char name[64];
    uint64_t total = 0;

    for (size_t k = 0; k < LOAD_EXPECT_KINDS; k++) {
        if (!by_kind[k])
            continue;
        total += by_kind[k];
        if (k == LOAD_EXPECT_HEADER_EQUALS)
            continue; /* named by its header, counted with the processor's counters */
        snprintf(name, sizeof(name), "plugins.expect.%s.%s", verdict, load_expect_names[k]);
        set_count(c, name, by_kind[k]);
    }
    if (total) {
        snprintf(name, sizeof(name), "plugins.expect.%s", verdict);
        set_count(c, name, total);
    }
}

/*
 * Artillery writes a counter only when something counted it: zero ones go, but for
 * vusers.failed (counted 0 for each user that completed) and http.downloaded_bytes (counted for
 * each response, empty or not).
 */
static void drop_zeros(json_t *c, const struct load_sec *s)
{
    const char *key;
    json_t *v, *tmp;

    json_object_foreach_safe(c, tmp, key, v)
    {
        if (json_integer_value(v) != 0)
            continue;
        if (strcmp(key, "vusers.failed") == 0 && s->completed > 0)
            continue;
        if (strcmp(key, "http.downloaded_bytes") == 0 && s->responses > 0)
            continue;
        json_object_del(c, key);
    }
}

static json_t *counters(const struct load_sec *s)
{
    json_t *c = json_object();
    char name[300];

    set_count(c, "http.requests", s->requests);
    set_count(c, "http.responses", s->responses);
    for (int code = 0; code < LOAD_CODES; code++) {
        if (!s->codes[code])
            continue;
        snprintf(name, sizeof(name), "http.codes.%d", code);
        set_count(c, name, s->codes[code]);
    }
    set_count(c, "http.downloaded_bytes", s->bytes);
    set_count(c, "vusers.created", s->created);
    set_count(c, "vusers.completed", s->completed);
    set_count(c, "vusers.failed", s->failed);
    if (s->skipped)
        set_count(c, "vusers.skipped", s->skipped);
    for (size_t i = 0; i < s->created_by.n; i++) {
        snprintf(name, sizeof(name), "vusers.created_by_name.%s", s->created_by.names[i]);
        set_count(c, name, s->created_by.vals[i]);
    }
    for (size_t i = 0; i < s->errors.n; i++) {
        snprintf(name, sizeof(name), "errors.%s", s->errors.names[i]);
        set_count(c, name, s->errors.vals[i]);
    }
    expect_counters(c, "ok", s->expect_ok);
    expect_counters(c, "failed", s->expect_failed);
    /* a processor's counters, under its names (adding to ours when it reuses one) */
    for (size_t i = 0; i < s->user.n; i++) {
        const char *user = s->user.names[i];

        set_count(c, user,
                  (uint64_t)json_integer_value(json_object_get(c, user)) + s->user.vals[i]);
    }
    drop_zeros(c, s);
    return c;
}

/* Summaries of nothing go, as Artillery writes none. */
static void drop_empty(json_t *sums)
{
    const char *key;
    json_t *v, *tmp;

    json_object_foreach_safe(sums, tmp, key, v)
    {
        if (json_integer_value(json_object_get(v, "count")) == 0)
            json_object_del(sums, key);
    }
}

/* The named summaries (response time by status class, a processor's histograms). */
static void add_summaries(json_t *m, const struct load_sec *s)
{
    json_t *sums = json_object_get(m, "summaries"), *hists = json_object_get(m, "histograms");

    for (size_t i = 0; i < s->hists.n; i++) {
        if (s->hists.h[i]->count == 0)
            continue;
        json_object_set_new(sums, s->hists.names[i], summary(s->hists.h[i]));
        json_object_set_new(hists, s->hists.names[i], summary(s->hists.h[i]));
    }
}

/* Epoch ms of a monotonic instant of the run. */
static int64_t epoch_of(const struct load_result *r, uint64_t ns)
{
    return r->start_epoch_ms + (int64_t)(ns > r->start_ns ? (ns - r->start_ns) / 1000000u : 0);
}

/* The start of period k, as Artillery writes it: a multiple of 10 s of the epoch. */
static int64_t period_ms(const struct load_result *r, size_t k)
{
    return (r->start_epoch_ms / (LOAD_PERIOD_S * 1000) + (int64_t)k) * LOAD_PERIOD_S * 1000;
}

/* METRICS of s, the seconds [from, to) of r. The first and last metric times are those of its
 * first and last event (Artillery's), the bounds of the seconds when none was recorded. */
static json_t *metrics(const struct load_result *r, const struct load_sec *s, size_t from,
                       size_t to)
{
    json_t *m;
    /* Second i is the wall-clock second start_second + i (load_sec_index); the run's first and
     * last may be partial. */
    int64_t start_second = r->start_epoch_ms / 1000 * 1000;
    int64_t end = r->start_epoch_ms + (int64_t)(r->elapsed_s * 1000);
    int64_t first = start_second + (int64_t)from * 1000;
    int64_t last = start_second + (int64_t)to * 1000;

    if (first < r->start_epoch_ms)
        first = r->start_epoch_ms;
    if (last > end)
        last = end;
    double secs = (double)(last - first) / 1000.0;
    if (secs <= 0)
        secs = 1;
    if (s->first_ns) {
        first = epoch_of(r, s->first_ns);
        last = epoch_of(r, s->last_ns);
    }
    m = json_pack("{s:o,s:{s:I},s:{s:o,s:o},s:{s:o,s:o},s:I,s:I,s:I,s:I}", "counters", counters(s),
                  "rates", "http.request_rate", (json_int_t)llround((double)s->requests / secs),
                  "summaries", "http.response_time", summary(&s->rt), "vusers.session_length",
                  summary(&s->session), "histograms", "http.response_time", summary(&s->rt),
                  "vusers.session_length", summary(&s->session), "firstCounterAt",
                  (json_int_t)first, "lastCounterAt", (json_int_t)last, "firstMetricAt",
                  (json_int_t)first, "lastMetricAt", (json_int_t)last);
    add_summaries(m, s);
    drop_empty(json_object_get(m, "summaries"));
    drop_empty(json_object_get(m, "histograms"));
    if (json_object_size(json_object_get(m, "summaries"))) {
        json_object_set_new(m, "firstHistogramAt", json_integer(first));
        json_object_set_new(m, "lastHistogramAt", json_integer(last));
    }
    for (size_t i = 0; i < s->rates.n; i++)
        json_object_set_new(json_object_get(m, "rates"), s->rates.names[i],
                            json_integer((json_int_t)llround((double)s->rates.vals[i] / secs)));
    return m;
}

static json_t *counts_obj(const struct load_counts *c)
{
    json_t *o = json_object();

    for (size_t i = 0; i < c->n; i++)
        set_count(o, c->names[i], c->vals[i]);
    return o;
}

static json_t *timeline(const struct load_result *r)
{
    json_t *tl = json_array();

    for (size_t i = 0; i < r->n_secs; i++) {
        const struct load_row *row = &r->rows[i];

        json_array_append_new(
            tl, json_pack("{s:I,s:I,s:I,s:o,s:o,s:f,s:f,s:f,s:f,s:I,s:I,s:I,s:o}", "t",
                          (json_int_t)i, "requests", (json_int_t)row->requests, "responses",
                          (json_int_t)row->responses, "codes", counts_obj(&row->codes), "errors",
                          counts_obj(&row->errors), "p50", ms(row->p50_us), "p95", ms(row->p95_us),
                          "p99", ms(row->p99_us), "max", ms((double)row->max_us), "vusers_created",
                          (json_int_t)row->created, "vusers_completed", (json_int_t)row->completed,
                          "vusers_failed", (json_int_t)row->failed, "served_by",
                          counts_obj(&row->served_by)));
    }
    return tl;
}

/* An integer when the value is one ("arrivalRate": 5, as the script said), else a real. */
static json_t *number(double d)
{
    return d == floor(d) && fabs(d) < 1e15 ? json_integer((json_int_t)d) : json_real(d);
}

static json_t *phases(const struct load_script *s)
{
    json_t *list = json_array();
    int64_t start = 0;

    for (size_t i = 0; i < s->n_phases; i++) {
        const struct load_phase *p = &s->phases[i];
        json_t *o = json_pack("{s:s?,s:I,s:I}", "name", p->name, "start_ms", (json_int_t)start,
                              "duration_ms", (json_int_t)p->duration_ms);

        if (p->pause)
            json_object_set_new(o, "pause", json_integer(p->duration_ms / 1000));
        else if (p->arrival_count >= 0)
            json_object_set_new(o, "arrivalCount", json_integer(p->arrival_count));
        else
            json_object_set_new(o, "arrivalRate", number(p->arrival_rate));
        if (p->ramp_to >= 0)
            json_object_set_new(o, "rampTo", number(p->ramp_to));
        if (p->max_vusers >= 0)
            json_object_set_new(o, "maxVusers", json_integer(p->max_vusers));
        json_array_append_new(list, o);
        start += p->duration_ms;
    }
    return list;
}

/* As Artillery aggregates a rate: the mean of the periods' rates (a period without it: 0). */
static void mean_rates(json_t *rates, const json_t *periods)
{
    const char *name;
    json_t *v;

    json_object_foreach(rates, name, v)
    {
        double sum = 0;
        size_t i;
        json_t *p;

        json_array_foreach(periods, i, p)
        {
            sum += json_number_value(json_object_get(json_object_get(p, "rates"), name));
        }
        json_object_set_new(
            rates, name, json_integer((json_int_t)llround(sum / (double)json_array_size(periods))));
    }
}

json_t *load_report_json(const struct load_result *r, const struct load_script *s, int pool)
{
    json_t *inter = json_array();
    struct load_sec *total = load_sec_new();
    json_t *mk, *out, *agg;

    for (size_t k = 0; k < r->n_periods; k++) {
        size_t from, to;
        json_t *m;

        load_period_span(r, k, &from, &to);
        if (from >= to)
            continue;
        m = metrics(r, r->periods[k], from, to);
        /* Artillery writes an intermediate period as a string of epoch ms */
        json_object_set_new(m, "period", json_sprintf("%lld", (long long)period_ms(r, k)));
        json_array_append_new(inter, m);
        load_sec_merge(total, r->periods[k]);
    }
    mk = json_pack("{s:s,s:s,s:s,s:s?,s:o,s:o,s:o,s:[],s:f}", "version", MESH_VERSION, "target",
                   s->target, "scenario_file", s->path, "environment", s->environment, "phases",
                   phases(s), "served_by", counts_obj(&total->served_by), "timeline", timeline(r),
                   "events", "histogram_error", HISTOGRAM_REL_ERROR);
    if (pool > 0)
        json_object_set_new(mk, "pool", json_integer(pool));
    if (s->expect_plugin)
        json_object_set_new(mk, "accepted_codes", load_script_accepted_codes(s));
    if (s->endpoint_prefix && !s->endpoint_print)
        json_object_set_new(mk, "console_hide", json_sprintf("%s.", s->endpoint_prefix));
    agg = metrics(r, total, 0, r->n_secs);
    if (r->n_periods) /* the last period's, as a number (Artillery's) */
        json_object_set_new(agg, "period", json_integer(period_ms(r, r->n_periods - 1)));
    if (json_array_size(inter) > 0)
        mean_rates(json_object_get(agg, "rates"), inter);
    out = json_pack("{s:o,s:o,s:o}", "aggregate", agg, "intermediate", inter, "meshkit", mk);
    load_sec_free(total);
    return out;
}

/* ---- console ----------------------------------------------------------------------------- */

static void dotted(FILE *f, int indent, const char *name, const char *value)
{
    int used = indent + (int)strlen(name) + 2;

    fprintf(f, "%*s%s: ", indent, "", name);
    for (int i = used; i < DOTS_COL; i++)
        fputc('.', f);
    fprintf(f, " %s\n", value);
}

static void num_text(const json_t *v, char *out, size_t n)
{
    double d = json_number_value(v);

    if (json_is_integer(v) || d == floor(d))
        snprintf(out, n, "%.0f", d);
    else
        snprintf(out, n, "%.1f", d);
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Counters and rates in one alphabetical list, then summaries, as Artillery prints them. */
static void print_metrics(FILE *f, const json_t *agg, const char *hide)
{
    static const char *const stats[] = {"min", "max", "mean", "median", "p95", "p99"};
    const json_t *c = json_object_get(agg, "counters"), *r = json_object_get(agg, "rates");
    const json_t *sums = json_object_get(agg, "summaries");
    size_t n = json_object_size(c) + json_object_size(r) + json_object_size(sums), k = 0;
    const char **names = xcalloc(n + 1, sizeof(*names));
    const char *key;
    json_t *v;
    char text[64];

    json_object_foreach((json_t *)c, key, v) names[k++] = key;
    json_object_foreach((json_t *)r, key, v) names[k++] = key;
    json_object_foreach((json_t *)sums, key, v)
    {
        if (json_integer_value(json_object_get(v, "count")) > 0)
            names[k++] = key;
    }
    for (size_t i = 0; hide && i < k; i++) /* metrics-by-endpoint's suppressOutput */
        if (strncmp(names[i], hide, strlen(hide)) == 0)
            names[i--] = names[--k];
    qsort(names, k, sizeof(*names), cmp_key);
    for (size_t i = 0; i < k; i++) {
        if ((v = json_object_get(sums, names[i]))) {
            fprintf(f, "%s:\n", names[i]);
            for (size_t j = 0; j < sizeof(stats) / sizeof(stats[0]); j++) {
                num_text(json_object_get(v, stats[j]), text, sizeof(text));
                dotted(f, 2, stats[j], text);
            }
            continue;
        }
        if ((v = json_object_get(r, names[i]))) {
            char num[48];

            num_text(v, num, sizeof(num));
            snprintf(text, sizeof(text), "%s/sec", num);
        } else {
            num_text(json_object_get(c, names[i]), text, sizeof(text));
        }
        dotted(f, 0, names[i], text);
    }
    free(names);
}

static void print_served_by(FILE *f, const json_t *sb)
{
    const char *key;
    json_t *v;
    double total = 0;

    if (json_object_size(sb) == 0)
        return;
    json_object_foreach((json_t *)sb, key, v) total += (double)json_integer_value(v);
    fprintf(f, "\nServed by (X-Served-By):\n");
    json_object_foreach((json_t *)sb, key, v)
    {
        fprintf(f, "  %-24s %10lld  %5.1f%%\n", key, (long long)json_integer_value(v),
                100 * (double)json_integer_value(v) / total);
    }
}

/* Compact per-second timeline: one row per second, or per group of seconds on long runs. */
static void print_timeline(FILE *f, const json_t *tl)
{
    size_t n = json_array_size(tl), group = (n + MAX_TIMELINE_ROWS - 1) / MAX_TIMELINE_ROWS;

    if (n == 0)
        return;
    if (group == 0)
        group = 1;
    fprintf(f, "\nTimeline (%s):\n%6s %8s %9s %9s %7s  %s\n",
            group == 1 ? "per second" : "per group of seconds", "t", "req/s", "p50 ms", "p99 ms",
            "errors", "codes");
    for (size_t i = 0; i < n; i += group) {
        double req = 0, errs = 0, p50 = 0, p99 = 0;
        json_t *codes = json_object();
        const char *key;
        json_t *v;
        size_t j;

        for (j = i; j < i + group && j < n; j++) {
            const json_t *row = json_array_get(tl, j);

            req += (double)json_integer_value(json_object_get(row, "requests"));
            json_object_foreach(json_object_get(row, "errors"), key, v) errs +=
                (double)json_integer_value(v);
            json_object_foreach(json_object_get(row, "codes"), key, v)
            {
                json_int_t old = json_integer_value(json_object_get(codes, key));

                json_object_set_new(codes, key, json_integer(old + json_integer_value(v)));
            }
            /* the worst second of the group */
            p50 = fmax(p50, json_real_value(json_object_get(row, "p50")));
            p99 = fmax(p99, json_real_value(json_object_get(row, "p99")));
        }
        fprintf(f, "%6zu %8.0f %9.2f %9.2f %7.0f ", i, req / (double)(j - i), p50, p99, errs);
        json_object_foreach(codes, key, v)
            fprintf(f, " %s:%lld", key, (long long)json_integer_value(v));
        fputc('\n', f);
        json_decref(codes);
    }
}

/* The prefix of metrics the console leaves out (metrics-by-endpoint's), or NULL. */
static const char *console_hide(const json_t *report)
{
    return json_string_value(json_object_get(json_object_get(report, "meshkit"), "console_hide"));
}

const char *load_clock_text(time_t t, char *out, size_t n)
{
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, n, "%H:%M:%S(+0000)", &tm);
    return out;
}

void load_print_summary(FILE *f, const json_t *report)
{
    const json_t *agg = json_object_get(report, "aggregate");
    const json_t *mk = json_object_get(report, "meshkit");
    char when[32];

    fprintf(f,
            "--------------------------------\nSummary report @ %s\n"
            "--------------------------------\n\n",
            load_clock_text(time(NULL), when, sizeof(when)));
    print_metrics(f, agg, console_hide(report));
    print_served_by(f, json_object_get(mk, "served_by"));
    print_timeline(f, json_object_get(mk, "timeline"));
}

void load_print_period(FILE *f, const struct load_result *r, size_t k, const char *hide)
{
    size_t from, to;
    json_t *m;
    int64_t first, last;
    struct buf width = BUF_INIT;
    char when[32];

    load_period_span(r, k, &from, &to);
    m = metrics(r, r->periods[k], from, to);
    first = json_integer_value(json_object_get(m, "firstMetricAt"));
    last = json_integer_value(json_object_get(m, "lastMetricAt"));
    /* as Artillery's console: the period's end, and the span of its metrics in seconds */
    load_clock_text((time_t)(period_ms(r, k) / 1000 + LOAD_PERIOD_S), when, sizeof(when));
    numfmt_js(&width, (double)(last - first) / 1000);
    fprintf(f,
            "--------------------------------------\nMetrics for period to: %s (width: %ss)\n"
            "--------------------------------------\n\n",
            when, width.data);
    buf_free(&width);
    print_metrics(f, m, hide);
    fputc('\n', f);
    fflush(f);
    json_decref(m);
}

void load_print_live(FILE *f, const struct load_sec *s, double secs, double t)
{
    uint64_t errs = 0;

    for (size_t i = 0; i < s->errors.n; i++)
        errs += s->errors.vals[i];
    fprintf(f, "[%5.0fs] rate %.0f/s  p50 %.2f ms  p99 %.2f ms  vusers %llu  errors %llu  codes", t,
            secs > 0 ? (double)s->requests / secs : 0, ms(histogram_percentile(&s->rt, 0.5)),
            ms(histogram_percentile(&s->rt, 0.99)), (unsigned long long)s->created,
            (unsigned long long)errs);
    for (int c = 0; c < LOAD_CODES; c++)
        if (s->codes[c])
            fprintf(f, " %d:%u", c, s->codes[c]);
    fputc('\n', f);
    fflush(f);
}
