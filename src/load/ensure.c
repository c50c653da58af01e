/* ensure: thresholds, conditions and maxErrorRate (see ensure.h). */
#include "load/ensure.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "load/filtrex.h"

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

/* A symbol of an ensure expression: the metric's value, 0 when the run never produced it. */
struct metric_lookup {
    const json_t *agg;
    json_t *value; /* the last value looked up, kept until the next */
};

static const json_t *lookup_metric(void *data, const char *name)
{
    struct metric_lookup *m = data;
    double v = 0;

    load_metric_value(m->agg, name, &v);
    json_decref(m->value);
    m->value = json_real(v);
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
    fprintf(f, "%s: %s%s\n", ok ? "ok" : "fail", text, ok || strict ? "" : " (not strict)");
    return ok || !strict ? 0 : 1;
}

int load_ensure_check(const struct load_script *s, const json_t *agg, FILE *f)
{
    int failed = 0;
    char text[1024];

    if (s->n_thresholds + s->n_conditions == 0 && s->max_error_rate < 0)
        return 0;
    fprintf(f, "\nChecks:\n");
    for (size_t i = 0; i < s->n_thresholds; i++) {
        double v = 0;

        load_metric_value(agg, s->thresholds[i].metric, &v);
        snprintf(text, sizeof(text), "%s < %g", s->thresholds[i].metric, s->thresholds[i].max);
        failed += report(f, v < s->thresholds[i].max, true, text);
    }
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
        double created = 0, completed = 0, rate;

        load_metric_value(agg, "vusers.created", &created);
        load_metric_value(agg, "vusers.completed", &completed);
        rate = created > 0 ? (created - completed) / created * 100 : 0;
        snprintf(text, sizeof(text), "maxErrorRate < %g (was %.2f%%)", s->max_error_rate, rate);
        failed += report(f, rate <= s->max_error_rate, true, text);
    }
    return failed;
}
