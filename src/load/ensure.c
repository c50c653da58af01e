/* ensure: thresholds, conditions and maxErrorRate (see ensure.h). */
#include "load/ensure.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/numfmt.h"
#include "lib/buf.h"
#include "load/filtrex.h"
#include "load/template.h"

bool load_metric_value(const json_t *agg, const char *name, double *out)
{
    const json_t *v = json_object_get(json_object_get(agg, "counters"), name);
    const char *dot;
    char base[256];

    if (!v)
        v = json_object_get(json_object_get(agg, "rates"), name);
    if (!v && (dot = strrchr(name, '.')) && (size_t)(dot - name) < sizeof(base)) {
        memcpy(base, name, (size_t)(dot - name));
        base[dot - name] = '\0';
        v = json_object_get(json_object_get(json_object_get(agg, "summaries"), base), dot + 1);
    }
    if (!json_is_number(v))
        return false;
    *out = json_number_value(v);
    return true;
}

/* A symbol of an ensure expression: the metric's value, undefined when the run never produced
 * it, as the plugin's filtrex sees it (so `http.codes.500 < 1` fails a run without a 500: a
 * counter that may be 0 has to be tested with `not (http.codes.500 >= 1)`). */
struct metric_lookup {
    const json_t *agg;
    json_t *value; /* the last value looked up, kept until the next */
};

static const json_t *lookup_metric(void *data, const char *name)
{
    struct metric_lookup *m = data;
    double v;

    json_decref(m->value);
    m->value = load_metric_value(m->agg, name, &v) ? json_real(v) : NULL;
    return m->value;
}

int load_ensure_eval(const char *expr, const json_t *aggregate, bool *result, struct err *e)
{
    struct metric_lookup m = {aggregate, NULL};
    double n;
    int rc = load_fx_eval(expr, lookup_metric, &m, result, &n, e);

    json_decref(m.value);
    return rc;
}

static int report(FILE *f, bool ok, bool strict, const char *text)
{
    fprintf(f, "%s: %s%s\n", ok ? "ok" : "fail", text, ok || strict ? "" : " (optional)");
    return ok || !strict ? 0 : 1;
}

/*
 * A threshold as the plugin checks it, through the expression "METRIC < MAX": a metric the run
 * never produced fails it. Artillery 1's form (ensure.p95) is printed with its short name.
 */
static int check_threshold(const struct load_threshold *t, const json_t *agg, FILE *f)
{
    struct buf text = BUF_INIT;
    double v;
    bool ok = load_metric_value(agg, t->metric, &v) && v < t->max;
    int failed;

    buf_printf(&text, "%s < ", t->legacy ? strrchr(t->metric, '.') + 1 : t->metric);
    numfmt_js(&text, t->max);
    failed = report(f, ok, true, text.data);
    buf_free(&text);
    return failed;
}

int load_ensure_check(const struct load_script *s, const json_t *agg, FILE *f)
{
    int failed = 0;
    char text[1024];

    if (s->n_thresholds + s->n_conditions == 0 && s->max_error_rate < 0)
        return 0;
    fprintf(f, "\nChecks:\n");
    for (size_t i = 0; i < s->n_thresholds; i++)
        failed += check_threshold(&s->thresholds[i], agg, f);
    for (size_t i = 0; i < s->n_conditions; i++) {
        struct err e = {""};
        bool ok = false;

        if (load_ensure_eval(s->conditions[i].expression, agg, &ok, &e) < 0) {
            snprintf(text, sizeof(text), "%s (%s)", s->conditions[i].expression, e.msg);
            failed += report(f, false, true, text);
            continue;
        }
        failed += report(f, ok, s->conditions[i].strict, s->conditions[i].expression);
    }
    if (s->max_error_rate >= 0) {
        /* ((vusers.created - vusers.completed) / vusers.created * 100) <= MAX, as the plugin
         * has it: NaN, so a failure, when no user completed (the counter is then absent) or
         * none was created */
        double created = NAN, completed = NAN, rate;
        struct buf t = BUF_INIT;

        load_metric_value(agg, "vusers.created", &created);
        load_metric_value(agg, "vusers.completed", &completed);
        rate = (created - completed) / created * 100;
        buf_append_cstr(&t, "maxErrorRate < ");
        numfmt_js(&t, s->max_error_rate);
        if (!isnan(rate))
            buf_printf(&t, " (was %.2f%%)", rate);
        failed += report(f, rate <= s->max_error_rate, true, t.data);
        buf_free(&t);
    }
    return failed;
}
