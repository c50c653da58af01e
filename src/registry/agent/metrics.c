#include "registry/agent/metrics.h"

#include <math.h>
#include <string.h>
#include <time.h>

#include "lib/alloc.h"
#include "lib/buf.h"
#include "lib/bug.h"
#include "registry/agent/agent_internal.h"

void reg_metrics_init(struct reg_metrics *m)
{
    memset(m, 0, sizeof(*m));
    histogram_init(&m->journal.us);
}

void reg_metrics_request(struct reg_metrics *m, struct str method)
{
    enum reg_metrics_method k = str_eq_cstr(method, "GET")      ? REG_METHOD_GET
                                : str_eq_cstr(method, "PUT")    ? REG_METHOD_PUT
                                : str_eq_cstr(method, "DELETE") ? REG_METHOD_DELETE
                                                                : REG_METHOD_OTHER;
    m->requests[k]++;
}

static void timer_record(struct reg_timer *t, uint64_t us)
{
    double ms = (double)us / 1000.0;

    histogram_record(&t->us, us);
    t->sum_sq_ms += ms * ms;
}

static uint64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void timed_journal(const json_t *record, void *data)
{
    struct reg_metrics *m = data;
    uint64_t start = now_us();

    m->journal_cb(record, m->journal_data);
    timer_record(&m->journal, now_us() - start);
}

void reg_metrics_time_journal(struct reg_metrics *m, struct reg_state *st)
{
    if (!st->journal || st->journal == timed_journal)
        return;
    m->journal_cb = st->journal;
    m->journal_data = st->journal_data;
    st->journal = timed_journal;
    st->journal_data = m;
}

/* ---- the metric set ---------------------------------------------------------------------- */

enum metric_kind { METRIC_GAUGE, METRIC_COUNTER, METRIC_SAMPLE };

struct metric {
    const char *name; /* Consul's dotted form; Prometheus gets underscores */
    enum metric_kind kind;
    const char *help;
    const char *label; /* NULL: none */
    const char *label_value;
    double value;                  /* gauges and counters */
    const struct reg_timer *timer; /* samples */
};

#define METRICS_MAX 16

struct metric_set {
    struct metric v[METRICS_MAX];
    size_t n;
};

static void add(struct metric_set *s, struct metric m)
{
    if (!MESH_BUG_ON(s->n >= METRICS_MAX))
        s->v[s->n++] = m;
}

static void collect(const struct reg_agent *a, struct metric_set *s)
{
    static const char *const methods[REG_METHOD_COUNT] = {"GET", "PUT", "DELETE", "other"};
    static const char *const health[REG_HEALTH_COUNT] = {"passing", "warning", "critical"};
    const struct reg_metrics *m = &a->metrics;
    size_t checks[REG_HEALTH_COUNT] = {0}, services = 0;

    smap_foreach(&a->state.nodes, e)
    {
        const struct reg_node *n = e->val;
        services += n->services.n;
        smap_foreach(&n->checks, ce)
        {
            const struct reg_check *c = ce->val;
            checks[c->status]++;
        }
    }
    for (int i = 0; i < REG_METHOD_COUNT; i++)
        add(s, (struct metric){"consul.api.http.requests", METRIC_COUNTER,
                               "HTTP API requests served, by method.", "method", methods[i],
                               (double)m->requests[i], NULL});
    add(s, (struct metric){"consul.rpc.queries_blocking", METRIC_GAUGE,
                           "Blocking queries parked, waiting for a change.", NULL, NULL,
                           (double)a->watches.count, NULL});
    add(s, (struct metric){"mesh.watch.renders", METRIC_COUNTER,
                           "Reads run again for parked blocking queries: one per distinct read "
                           "after a write, however many watch it.",
                           NULL, NULL, (double)a->watches.renders, NULL});
    add(s, (struct metric){"mesh.runtime.heap_trims", METRIC_COUNTER,
                           "Times freed heap memory was handed back to the kernel after large "
                           "answers.",
                           NULL, NULL, (double)a->heap_trim.trims, NULL});
    add(s, (struct metric){"mesh.runtime.heap_trim_seconds", METRIC_COUNTER,
                           "Time those trims took, in all (docs/benchmarks.md: what one costs).",
                           NULL, NULL, (double)a->heap_trim.trim_ns / 1e9, NULL});
    add(s, (struct metric){"consul.state.nodes", METRIC_GAUGE, "Nodes in the catalog.", NULL, NULL,
                           (double)a->state.nodes.n, NULL});
    add(s,
        (struct metric){"consul.state.services", METRIC_GAUGE, "Service instances in the catalog.",
                        NULL, NULL, (double)services, NULL});
    for (int h = 0; h < REG_HEALTH_COUNT; h++)
        add(s, (struct metric){"consul.state.checks", METRIC_GAUGE,
                               "Health checks in the catalog, by status.", "status", health[h],
                               (double)checks[h], NULL});
    add(s, (struct metric){"consul.state.index", METRIC_GAUGE,
                           "The registry's index (the last X-Consul-Index handed out).", NULL, NULL,
                           (double)a->state.index, NULL});
    add(s, (struct metric){"consul.journal.append", METRIC_SAMPLE,
                           "Time to write one journal record, in milliseconds.", NULL, NULL, 0,
                           &m->journal});
}

/* ---- Consul's JSON ----------------------------------------------------------------------- */

static json_t *labels(const struct metric *m)
{
    return m->label ? json_pack("{s:s}", m->label, m->label_value) : json_object();
}

static json_t *sample_json(const struct metric *m)
{
    const struct histogram *h = &m->timer->us;
    double n = (double)h->count, sum = h->sum / 1000.0;
    double mean = n ? sum / n : 0,
           var = n > 1 ? (m->timer->sum_sq_ms - n * mean * mean) / (n - 1) : 0;

    return json_pack("{s:s, s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:o}", "Name", m->name, "Count",
                     (json_int_t)h->count, "Rate", sum / 10.0, "Sum", sum, "Min",
                     h->count ? (double)h->min / 1000.0 : 0.0, "Max", (double)h->max / 1000.0,
                     "Mean", mean, "Stddev", var > 0 ? sqrt(var) : 0.0, "Labels", labels(m));
}

json_t *reg_metrics_json(const struct reg_agent *a)
{
    struct metric_set s = {.n = 0};
    json_t *gauges = json_array(), *counters = json_array(), *samples = json_array();
    char stamp[64];
    time_t now = time(NULL);
    struct tm tm;

    collect(a, &s);
    for (size_t i = 0; i < s.n; i++) {
        const struct metric *m = &s.v[i];
        if (m->kind == METRIC_GAUGE)
            json_array_append_new(gauges, json_pack("{s:s, s:f, s:o}", "Name", m->name, "Value",
                                                    m->value, "Labels", labels(m)));
        else if (m->kind == METRIC_COUNTER)
            json_array_append_new(counters,
                                  json_pack("{s:s, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:o}", "Name",
                                            m->name, "Count", m->value, "Rate", m->value / 10.0,
                                            "Sum", m->value, "Min", 1.0, "Max", 1.0, "Mean", 1.0,
                                            "Stddev", 0.0, "Labels", labels(m)));
        else
            json_array_append_new(samples, sample_json(m));
    }
    /* go-metrics' interval start, formatted as Go prints a time.Time. */
    now -= now % 10;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S +0000 UTC", &tm);
    return json_pack("{s:s, s:o, s:[], s:o, s:o}", "Timestamp", stamp, "Gauges", gauges, "Points",
                     "Counters", counters, "Samples", samples);
}

/* ---- Prometheus -------------------------------------------------------------------------- */

static void prom_name(struct buf *out, const char *name)
{
    for (const char *p = name; *p; p++)
        buf_append(out, *p == '.' ? "_" : p, 1);
}

static void prom_series(struct buf *out, const struct metric *m, const char *suffix,
                        const char *quantile)
{
    prom_name(out, m->name);
    buf_append_cstr(out, suffix);
    if (m->label || quantile) {
        buf_append_cstr(out, "{");
        if (m->label)
            buf_printf(out, "%s=\"%s\"%s", m->label, m->label_value, quantile ? "," : "");
        if (quantile)
            buf_printf(out, "quantile=\"%s\"", quantile);
        buf_append_cstr(out, "}");
    }
    buf_append_cstr(out, " ");
}

void reg_metrics_prometheus(const struct reg_agent *a, struct buf *out)
{
    static const char *const types[] = {"gauge", "counter", "summary"};
    static const struct {
        const char *text;
        double q;
    } quantiles[] = {{"0.5", 0.5}, {"0.9", 0.9}, {"0.99", 0.99}};
    struct metric_set s = {.n = 0};

    collect(a, &s);
    for (size_t i = 0; i < s.n; i++) {
        const struct metric *m = &s.v[i];
        if (i == 0 || strcmp(s.v[i - 1].name, m->name) != 0) {
            buf_append_cstr(out, "# HELP ");
            prom_name(out, m->name);
            buf_printf(out, " %s\n# TYPE ", m->help);
            prom_name(out, m->name);
            buf_printf(out, " %s\n", types[m->kind]);
        }
        if (m->kind != METRIC_SAMPLE) {
            prom_series(out, m, "", NULL);
            buf_printf(out, "%.17g\n", m->value);
            continue;
        }
        const struct histogram *h = &m->timer->us;
        for (size_t q = 0; q < ARRAY_LEN(quantiles); q++) {
            prom_series(out, m, "", quantiles[q].text);
            if (h->count)
                buf_printf(out, "%.17g\n", histogram_percentile(h, quantiles[q].q) / 1000.0);
            else
                buf_append_cstr(out, "NaN\n");
        }
        prom_series(out, m, "_sum", NULL);
        buf_printf(out, "%.17g\n", h->sum / 1000.0);
        prom_series(out, m, "_count", NULL);
        buf_printf(out, "%llu\n", (unsigned long long)h->count);
    }
}
