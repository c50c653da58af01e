/* ensure: thresholds, conditions and maxErrorRate (see ensure.h). */
#include "load/ensure.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 32

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

struct parser {
    const char *p;
    const json_t *agg;
    struct err *e;
    int depth;
};

static void skip_ws(struct parser *ps)
{
    while (isspace((unsigned char)*ps->p))
        ps->p++;
}

/* Consumes word (an operator or keyword) when it comes next. */
static bool accept(struct parser *ps, const char *word)
{
    size_t n = strlen(word);

    skip_ws(ps);
    if (strncmp(ps->p, word, n) != 0)
        return false;
    if (isalpha((unsigned char)word[0]) && (isalnum((unsigned char)ps->p[n]) || ps->p[n] == '_'))
        return false;
    if ((word[0] == '<' || word[0] == '>' || word[0] == '=' || word[0] == '!') && n == 1 &&
        ps->p[1] == '=')
        return false;
    ps->p += n;
    return true;
}

static int fail(struct parser *ps)
{
    skip_ws(ps);
    if (*ps->p)
        return err_set(ps->e, "unexpected \"%.20s\"", ps->p);
    return err_set(ps->e, "unexpected end of expression");
}

static int parse_or(struct parser *ps, double *v);

static int parse_primary(struct parser *ps, double *v)
{
    const char *start;
    char name[256];

    skip_ws(ps);
    if (++ps->depth > MAX_DEPTH)
        return err_set(ps->e, "expression nested too deep");
    if (accept(ps, "(")) {
        if (parse_or(ps, v) < 0)
            return -EINVAL;
        if (!accept(ps, ")"))
            return fail(ps);
    } else if (accept(ps, "not")) {
        if (parse_primary(ps, v) < 0)
            return -EINVAL;
        *v = *v == 0;
    } else if (accept(ps, "-")) {
        if (parse_primary(ps, v) < 0)
            return -EINVAL;
        *v = -*v;
    } else if (isdigit((unsigned char)*ps->p) || *ps->p == '.') {
        char *end;

        *v = strtod(ps->p, &end);
        ps->p = end;
    } else if (isalpha((unsigned char)*ps->p) || *ps->p == '_' || *ps->p == '$') {
        start = ps->p;
        while (isalnum((unsigned char)*ps->p) || strchr("_.$", *ps->p))
            ps->p++;
        if ((size_t)(ps->p - start) >= sizeof(name))
            return err_set(ps->e, "metric name too long");
        memcpy(name, start, (size_t)(ps->p - start));
        name[ps->p - start] = '\0';
        if (!load_metric_value(ps->agg, name, v))
            *v = 0;
    } else {
        return fail(ps);
    }
    ps->depth--;
    return 0;
}

static int parse_mul(struct parser *ps, double *v)
{
    double r;

    if (parse_primary(ps, v) < 0)
        return -EINVAL;
    for (;;) {
        if (accept(ps, "*")) {
            if (parse_primary(ps, &r) < 0)
                return -EINVAL;
            *v *= r;
        } else if (accept(ps, "/")) {
            if (parse_primary(ps, &r) < 0)
                return -EINVAL;
            *v = r == 0 ? 0 : *v / r;
        } else {
            return 0;
        }
    }
}

static int parse_add(struct parser *ps, double *v)
{
    double r;

    if (parse_mul(ps, v) < 0)
        return -EINVAL;
    for (;;) {
        if (accept(ps, "+")) {
            if (parse_mul(ps, &r) < 0)
                return -EINVAL;
            *v += r;
        } else if (accept(ps, "-")) {
            if (parse_mul(ps, &r) < 0)
                return -EINVAL;
            *v -= r;
        } else {
            return 0;
        }
    }
}

static int parse_cmp(struct parser *ps, double *v)
{
    static const char *const ops[] = {"<=", ">=", "==", "!=", "<", ">"};
    double r;

    if (parse_add(ps, v) < 0)
        return -EINVAL;
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (!accept(ps, ops[i]))
            continue;
        if (parse_add(ps, &r) < 0)
            return -EINVAL;
        switch (i) {
        case 0:
            *v = *v <= r;
            break;
        case 1:
            *v = *v >= r;
            break;
        case 2:
            *v = *v == r;
            break;
        case 3:
            *v = *v != r;
            break;
        case 4:
            *v = *v < r;
            break;
        default:
            *v = *v > r;
            break;
        }
        return 0;
    }
    return 0;
}

static int parse_and(struct parser *ps, double *v)
{
    double r;

    if (parse_cmp(ps, v) < 0)
        return -EINVAL;
    while (accept(ps, "and")) {
        if (parse_cmp(ps, &r) < 0)
            return -EINVAL;
        *v = *v != 0 && r != 0;
    }
    return 0;
}

static int parse_or(struct parser *ps, double *v)
{
    double r;

    if (parse_and(ps, v) < 0)
        return -EINVAL;
    while (accept(ps, "or")) {
        if (parse_and(ps, &r) < 0)
            return -EINVAL;
        *v = *v != 0 || r != 0;
    }
    return 0;
}

int load_ensure_eval(const char *expr, const json_t *aggregate, bool *result, struct err *e)
{
    struct parser ps = {expr, aggregate, e, 0};
    double v;

    if (parse_or(&ps, &v) < 0)
        return -EINVAL;
    skip_ws(&ps);
    if (*ps.p)
        return fail(&ps);
    *result = v != 0;
    return 0;
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
