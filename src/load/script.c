/*
 * Checking and compiling an Artillery script: the config part. The flow (scenarios and their
 * steps) is in script_flow.c. Every problem is collected, with its line, before giving up, so
 * one run lists all the keys a file uses that we do not support.
 */
#include "load/script.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <strings.h>
#include <unistd.h>

#include "lib/alloc.h"
#include "lib/duration.h"
#include "lib/file.h"
#include "lib/str.h"
#include "lib/url.h"
#include "load/script_internal.h"
#include "load/template.h"

#define DEFAULT_TIMEOUT_MS 10000

void script_diag(struct script_ctx *c, const json_t *parent, const char *key, size_t index,
                 const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    const char *file = c->y->path;
    int line = parent ? load_yaml_where(c->y, parent, key, index, &file) : 0;

    if (line == 0 && parent)
        line = load_yaml_where(c->y, parent, NULL, SIZE_MAX, &file);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    buf_printf(c->msgs, "%s:%d: %s\n", file, line > 0 ? line : 1, msg);
    if (c->n_errors++ == 0)
        err_set(c->e, "%s:%d: %s", file, line > 0 ? line : 1, msg);
}

static bool in_list(const char *key, const char *const *list)
{
    for (; list && *list; list++)
        if (strcmp(*list, key) == 0)
            return true;
    return false;
}

/* The known key nearest to key, when it is a likely misspelling of one; else NULL. */
static const char *nearest_key(const char *key, const char *const *allowed,
                               const char *const *unsupported)
{
    const char *best = NULL;
    /* one edit for short keys, two from six letters on: "ur" is "url", not "qs" */
    size_t best_d = strlen(key) >= 6 ? 3 : 2;

    for (const char *const *list = allowed; list; list = list == allowed ? unsupported : NULL) {
        for (const char *const *k = list; *k; k++) {
            size_t d = str_distance(key, *k);

            if (d < best_d) {
                best = *k;
                best_d = d;
            }
        }
    }
    return best;
}

void script_check_keys(struct script_ctx *c, const json_t *obj, const char *where,
                       const char *const *allowed, const char *const *unsupported)
{
    const char *key, *near;
    json_t *v;

    json_object_foreach((json_t *)obj, key, v)
    {
        if (in_list(key, allowed))
            continue;
        if (in_list(key, unsupported))
            script_diag(c, obj, key, 0, "%s%s%s: not supported", where, *where ? "." : "", key);
        else if ((near = nearest_key(key, allowed, unsupported)) != NULL)
            script_diag(c, obj, key, 0, "%s%s%s: unknown key `%s`, did you mean `%s`?", where,
                        *where ? "." : "", key, key, near);
        else
            script_diag(c, obj, key, 0, "%s%s%s: unknown key", where, *where ? "." : "", key);
    }
}

bool script_template_ok(struct script_ctx *c, const json_t *parent, const char *key, size_t index,
                        const char *where, const char *s)
{
    for (const char *p = s; (p = strstr(p, "{{")) != NULL; p += 2) {
        const char *end = strstr(p + 2, "}}");

        if (!end) {
            script_diag(c, parent, key, index, "%s: \"{{\" without \"}}\"", where);
            return false;
        }
        p = end;
    }
    return true;
}

const char *script_config_text(struct script_ctx *c, const char *s, struct buf *tmp)
{
    if (load_tmpl_is_static(s))
        return s;
    buf_reset(tmp);
    load_tmpl_render(tmp, s, c->config_vars, &c->rng);
    return tmp->data ? tmp->data : "";
}

/*
 * A duration as the `ms` package reads it, which Artillery applies to phase durations and think
 * times: a decimal number, optional spaces, then a unit of any case ("10min", "2 hours",
 * "1.5h", "500 msecs"). Years are 365.25 days, as ms counts them. Returns 0 with *ms_out set, or
 * -EINVAL.
 */
static int read_ms_words(const char *s, double *ms_out)
{
    static const struct {
        const char *name;
        double ms;
    } units[] = {
        {"milliseconds", 1}, {"millisecond", 1}, {"msecs", 1},          {"msec", 1},
        {"ms", 1},           {"seconds", 1e3},   {"second", 1e3},       {"secs", 1e3},
        {"sec", 1e3},        {"s", 1e3},         {"minutes", 60e3},     {"minute", 60e3},
        {"mins", 60e3},      {"min", 60e3},      {"m", 60e3},           {"hours", 3600e3},
        {"hour", 3600e3},    {"hrs", 3600e3},    {"hr", 3600e3},        {"h", 3600e3},
        {"days", 86400e3},   {"day", 86400e3},   {"d", 86400e3},        {"weeks", 604800e3},
        {"week", 604800e3},  {"w", 604800e3},    {"years", 31557600e3}, {"year", 31557600e3},
        {"yrs", 31557600e3}, {"yr", 31557600e3}, {"y", 31557600e3},
    };
    const char *p = s;
    char *end;
    double d;

    /* ms's own syntax: digits with at most one '.', no sign, no exponent */
    while (*p >= '0' && *p <= '9')
        p++;
    if (*p == '.')
        p++;
    while (*p >= '0' && *p <= '9')
        p++;
    if (p == s || p[-1] == '.')
        return -EINVAL;
    d = strtod(s, &end);
    if (end != p)
        return -EINVAL;
    while (*p == ' ')
        p++;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strcasecmp(p, units[i].name) == 0) {
            *ms_out = d * units[i].ms;
            return 0;
        }
    return -EINVAL;
}

/*
 * A number of seconds, or a duration string: as Artillery reads it ("10min", "5 minutes",
 * "500ms", "60") or Go's form ("1m30s").
 */
/* What a config value that is not what it should be held, for the message: its text once
 * rendered, when it had templates ("{{ $env.RATE }}" with RATE unset reads ""). */
static void diag_value(struct script_ctx *c, const json_t *parent, const char *key,
                       const char *where, const char *want, const char *rendered)
{
    const json_t *v = json_object_get(parent, key);

    if (json_is_string(v) && !load_tmpl_is_static(json_string_value(v)))
        script_diag(c, parent, key, 0, "%s.%s: want %s (\"%s\" reads \"%s\")", where, key, want,
                    json_string_value(v), rendered ? rendered : "");
    else
        script_diag(c, parent, key, 0, "%s.%s: want %s", where, key, want);
}

int64_t load_think_jitter(const struct load_script *s, int64_t ms, double u)
{
    double approx = s->think_jitter_pct ? (double)ms * s->think_jitter / 100 : s->think_jitter;
    double t = (double)ms - approx + u * 2 * approx;

    return s->think_jitter < 0 ? ms : t > 0 ? llround(t) : 0;
}

int load_duration_ms(const char *s, int64_t *ms)
{
    int64_t ns;
    double d;
    char *end;

    d = strtod(s, &end);
    if (end != s && *end == '\0' && d >= 0 && d <= 1e9)
        *ms = (int64_t)llround(d * 1000);
    else if (read_ms_words(s, &d) == 0 && d <= 1e12)
        *ms = (int64_t)llround(d);
    else if (duration_parse(str_from(s), &ns) == 0)
        *ms = ns / DURATION_MS;
    else
        return -EINVAL;
    return 0;
}

int script_read_duration(struct script_ctx *c, const json_t *parent, const char *key,
                         const char *where, int64_t *ms)
{
    const json_t *v = json_object_get(parent, key);
    struct buf tmp = BUF_INIT;
    const char *s = NULL;
    double d;
    int rc = 0;

    if (json_is_number(v)) {
        d = json_number_value(v);
        if (d < 0 || d > 1e9)
            goto bad;
        *ms = (int64_t)llround(d * 1000);
        goto out;
    }
    if (!json_is_string(v))
        goto bad;
    s = script_config_text(c, json_string_value(v), &tmp);
    if (load_duration_ms(s, ms) == 0)
        goto out;
bad:
    diag_value(c, parent, key, where, "seconds or a duration such as \"5m\"", s);
    rc = -EINVAL;
out:
    buf_free(&tmp);
    return rc;
}

/* A number, or a string that reads as one once its templates are rendered ("{{ $env.RATE }}"),
 * as Artillery casts phase values with lodash's toNumber. */
static int read_number(struct script_ctx *c, const json_t *parent, const char *key,
                       const char *where, double min, double *out)
{
    const json_t *v = json_object_get(parent, key);
    struct buf tmp = BUF_INIT;
    const char *s = NULL;
    char want[64];
    double d = NAN;
    char *end;

    if (json_is_number(v)) {
        d = json_number_value(v);
    } else if (json_is_string(v)) {
        s = script_config_text(c, json_string_value(v), &tmp);
        d = strtod(s, &end);
        while (*end == ' ')
            end++;
        if (end == s || *end)
            d = NAN;
    }
    /* the upper bound keeps rate x duration inside int64 */
    if (!(d >= min && d <= 1e9)) {
        snprintf(want, sizeof(want), "a number from %g to 1e9", min);
        diag_value(c, parent, key, where, want, s);
        buf_free(&tmp);
        return -EINVAL;
    }
    buf_free(&tmp);
    *out = d;
    return 0;
}

/* ---- phases ------------------------------------------------------------------------------ */

static void parse_phase(struct script_ctx *c, const json_t *ph, size_t i, struct load_phase *p)
{
    static const char *const allowed[] = {"duration", "arrivalRate", "rampTo", "arrivalCount",
                                          "pause",    "maxVusers",   "name",   NULL};
    static const char *const unsupported[] = {"arrivalRatePerSecond", NULL};
    char where[48];
    double d;

    snprintf(where, sizeof(where), "config.phases[%zu]", i);
    *p = (struct load_phase){.ramp_to = -1, .arrival_count = -1, .max_vusers = -1};
    script_check_keys(c, ph, where, allowed, unsupported);
    if (json_is_string(json_object_get(ph, "name")))
        p->name = xstrdup(json_string_value(json_object_get(ph, "name")));
    if (json_object_get(ph, "pause")) {
        p->pause = true;
        script_read_duration(c, ph, "pause", where, &p->duration_ms);
        return;
    }
    if (!json_object_get(ph, "duration")) {
        script_diag(c, ph, NULL, SIZE_MAX, "%s: needs duration (or pause)", where);
        return;
    }
    script_read_duration(c, ph, "duration", where, &p->duration_ms);
    if (json_object_get(ph, "arrivalRate"))
        read_number(c, ph, "arrivalRate", where, 0, &p->arrival_rate);
    if (json_object_get(ph, "rampTo"))
        read_number(c, ph, "rampTo", where, 0, &p->ramp_to);
    if (json_object_get(ph, "arrivalCount") &&
        read_number(c, ph, "arrivalCount", where, 0, &d) == 0)
        p->arrival_count = (int64_t)d;
    if (json_object_get(ph, "maxVusers") && read_number(c, ph, "maxVusers", where, 1, &d) == 0)
        p->max_vusers = (int64_t)d;
    if (!json_object_get(ph, "arrivalRate") && !json_object_get(ph, "arrivalCount") &&
        !json_object_get(ph, "rampTo"))
        script_diag(c, ph, NULL, SIZE_MAX, "%s: needs arrivalRate, arrivalCount or pause", where);
    if (p->arrival_rate == 0 && p->ramp_to < 0 && p->arrival_count < 0)
        p->pause = true; /* arrivalRate: 0 is a pause, as Artillery has it */
}

void load_script_solo(struct load_script *s)
{
    for (size_t i = 0; i < s->n_phases; i++)
        free(s->phases[i].name);
    free(s->phases);
    s->phases = xcalloc(1, sizeof(*s->phases));
    s->phases[0] = (struct load_phase){
        .duration_ms = 1000, .ramp_to = -1, .arrival_count = 1, .max_vusers = -1};
    s->n_phases = 1;
}

/*
 * Artillery merges an environment into config with lodash's merge: the environment's n-th
 * phase is laid over config's n-th phase key by key, and config's phases past the
 * environment's last one stay. The merged phases keep the lines they came from.
 */
static json_t *merge_phases(struct script_ctx *c, const json_t *base, const json_t *over)
{
    json_t *out = json_array();
    size_t n = json_array_size(base) > json_array_size(over) ? json_array_size(base)
                                                             : json_array_size(over);

    load_yaml_add_line(c->y, out, NULL, SIZE_MAX, load_yaml_line(c->y, over, NULL, SIZE_MAX));
    for (size_t i = 0; i < n; i++) {
        const json_t *b = json_array_get(base, i), *o = json_array_get(over, i);
        const json_t *from = o ? over : base;
        json_t *ph;
        const char *key;
        json_t *v;

        if (!json_is_object(b) || !json_is_object(o)) {
            json_array_append(out, o ? (json_t *)o : (json_t *)b);
            load_yaml_add_line(c->y, out, NULL, i, load_yaml_line(c->y, from, NULL, i));
            continue;
        }
        ph = json_copy((json_t *)b);
        json_object_update(ph, (json_t *)o);
        load_yaml_add_line(c->y, ph, NULL, SIZE_MAX, load_yaml_line(c->y, o, NULL, SIZE_MAX));
        json_object_foreach(ph, key, v)
        {
            const json_t *src = json_object_get(o, key) ? o : b;

            load_yaml_add_line(c->y, ph, key, 0, load_yaml_line(c->y, src, key, 0));
        }
        json_array_append_new(out, ph);
        load_yaml_add_line(c->y, out, NULL, i, load_yaml_line(c->y, over, NULL, i));
    }
    return out;
}

static void parse_phases(struct script_ctx *c, const json_t *phases, struct load_script *s)
{
    size_t i;
    json_t *ph;

    if (!json_is_array(phases) || json_array_size(phases) == 0) {
        script_diag(c, c->cfg_parent_phases, "phases", 0, "config.phases: want a list of phases");
        return;
    }
    s->phases = xcalloc(json_array_size(phases), sizeof(*s->phases));
    json_array_foreach(phases, i, ph)
    {
        if (!json_is_object(ph)) {
            script_diag(c, phases, NULL, i, "config.phases[%zu]: want a mapping", i);
            continue;
        }
        parse_phase(c, ph, i, &s->phases[s->n_phases++]);
    }
}

/* ---- ensure ------------------------------------------------------------------------------ */

static void add_threshold(struct load_script *s, const char *metric, double max, bool legacy)
{
    s->thresholds = xrealloc(s->thresholds, (s->n_thresholds + 1) * sizeof(*s->thresholds));
    s->thresholds[s->n_thresholds++] = (struct load_threshold){xstrdup(metric), max, legacy};
}

static void parse_thresholds(struct script_ctx *c, const json_t *list, struct load_script *s)
{
    size_t i;
    json_t *t;

    if (!json_is_array(list)) {
        script_diag(c, list, NULL, SIZE_MAX, "config.ensure.thresholds: want a list");
        return;
    }
    json_array_foreach(list, i, t)
    {
        const char *metric;
        json_t *v;

        if (!json_is_object(t) || json_object_size(t) != 1) {
            script_diag(c, list, NULL, i,
                        "config.ensure.thresholds[%zu]: want one \"metric: value\" pair", i);
            continue;
        }
        json_object_foreach(t, metric, v)
        {
            if (!json_is_number(v))
                script_diag(c, t, metric, 0, "config.ensure.thresholds[%zu].%s: want a number", i,
                            metric);
            else
                add_threshold(s, metric, json_number_value(v), false);
        }
    }
}

static void parse_conditions(struct script_ctx *c, const json_t *list, struct load_script *s)
{
    static const char *const allowed[] = {"expression", "strict", NULL};
    size_t i;
    json_t *t;

    if (!json_is_array(list)) {
        script_diag(c, list, NULL, SIZE_MAX, "config.ensure.conditions: want a list");
        return;
    }
    s->conditions = xcalloc(json_array_size(list) + 1, sizeof(*s->conditions));
    json_array_foreach(list, i, t)
    {
        const json_t *ex = json_object_get(t, "expression");

        if (!json_is_object(t) || !json_is_string(ex)) {
            script_diag(c, list, NULL, i, "config.ensure.conditions[%zu]: want an expression", i);
            continue;
        }
        script_check_keys(c, t, "config.ensure.conditions[]", allowed, NULL);
        s->conditions[s->n_conditions++] = (struct load_condition){
            xstrdup(json_string_value(ex)), !json_is_false(json_object_get(t, "strict"))};
    }
}

static void parse_ensure(struct script_ctx *c, const json_t *ens, struct load_script *s)
{
    static const char *const allowed[] = {"thresholds", "conditions", "maxErrorRate", "min", "max",
                                          "median",     "p95",        "p99",          NULL};
    static const char *const legacy[] = {"min", "max", "median", "p95", "p99", NULL};
    double d;

    if (!json_is_object(ens)) {
        script_diag(c, ens, NULL, SIZE_MAX, "config.ensure: want a mapping");
        return;
    }
    script_check_keys(c, ens, "config.ensure", allowed, NULL);
    if (json_object_get(ens, "thresholds"))
        parse_thresholds(c, json_object_get(ens, "thresholds"), s);
    if (json_object_get(ens, "conditions"))
        parse_conditions(c, json_object_get(ens, "conditions"), s);
    if (json_object_get(ens, "maxErrorRate") &&
        read_number(c, ens, "maxErrorRate", "config.ensure", 0, &d) == 0)
        s->max_error_rate = d;
    /* Artillery 1's form: ensure: {p95: 200} means http.response_time.p95 < 200, the bound read
     * as the plugin reads it (parseInt: 200.9 is 200) */
    for (const char *const *k = legacy; *k; k++) {
        char metric[64];

        if (!json_object_get(ens, *k) || read_number(c, ens, *k, "config.ensure", 0, &d) < 0)
            continue;
        snprintf(metric, sizeof(metric), "http.response_time.%s", *k);
        add_threshold(s, metric, trunc(d), true);
    }
}

/*
 * Artillery runs the checks only when its ensure plugin is loaded (config.plugins.ensure, even
 * empty), and then takes config.ensure before plugins.ensure. config.ensure alone does nothing:
 * it is still checked for mistakes, and mesh load says it is ignored.
 */
static void parse_ensure_config(struct script_ctx *c, struct load_script *s)
{
    const json_t *plugins = json_object_get(c->config, "plugins");
    const json_t *plugin = json_is_object(plugins) ? json_object_get(plugins, "ensure") : NULL;
    const json_t *env_ens = c->env ? json_object_get(c->env, "ensure") : NULL;
    const json_t *ens = env_ens ? env_ens : json_object_get(c->config, "ensure");
    struct load_script ignored = {0};

    if (plugin && ens) {
        parse_ensure(c, ens, s);
    } else if (plugin && json_object_size(plugin) > 0) {
        parse_ensure(c, plugin, s);
    } else if (ens) {
        parse_ensure(c, ens, &ignored);
        fprintf(stderr,
                "%s:%d: warning: config.ensure does nothing without config.plugins.ensure (as "
                "in Artillery): add `plugins: {ensure: {}}` to apply its checks\n",
                c->y->path, load_yaml_line(c->y, env_ens ? c->env : c->config, "ensure", 0));
        for (size_t i = 0; i < ignored.n_thresholds; i++)
            free(ignored.thresholds[i].metric);
        free(ignored.thresholds);
        for (size_t i = 0; i < ignored.n_conditions; i++)
            free(ignored.conditions[i].expression);
        free(ignored.conditions);
    }
}

/* ---- config ------------------------------------------------------------------------------ */

/* A config key, from the selected environment when it sets it; *parent is where it lives. */
static json_t *cfg_get(struct script_ctx *c, const char *key, const json_t **parent)
{
    json_t *v = c->env ? json_object_get(c->env, key) : NULL;

    *parent = v ? c->env : c->config;
    return v ? v : json_object_get(c->config, key);
}

/*
 * defaults.think: its jitter, which spreads every think time (Artillery's engine takes
 * http.defaults.think whole over defaults.think): milliseconds or a percentage ("20%"), read as
 * parseInt reads them.
 */
static void parse_think_defaults(struct script_ctx *c, const json_t *think, const char *where,
                                 struct load_script *s)
{
    static const char *const allowed[] = {"jitter", NULL};
    const json_t *j = json_object_get(think, "jitter");
    const char *text = json_string_value(j);
    char *end = NULL;
    double d = json_is_number(j) ? json_number_value(j) : text ? strtod(text, &end) : NAN;
    bool pct = end && *end == '%';

    if (!json_is_object(think)) {
        script_diag(c, think, NULL, SIZE_MAX, "%s.think: want a mapping such as {jitter: \"20%%\"}",
                    where);
        return;
    }
    script_check_keys(c, think, "think", allowed, NULL);
    if (end && (end == text || end[pct] != '\0'))
        d = NAN;
    if (j && !(d >= 0 && d <= 1e9)) {
        script_diag(c, think, "jitter", 0,
                    "%s.think.jitter: want milliseconds or a percentage such as \"20%%\"", where);
        return;
    }
    if (c->http_think)
        return;
    c->http_think = strcmp(where, "config.http.defaults") == 0;
    s->think_jitter = j ? trunc(d) : -1;
    s->think_jitter_pct = pct;
}

/*
 * config.defaults or config.http.defaults: headers every request gets unless it sets them
 * itself (Artillery takes http.defaults.headers over defaults.headers).
 */
static void parse_defaults(struct script_ctx *c, const json_t *d, const char *where,
                           struct load_script *s)
{
    static const char *const allowed[] = {"headers", "strictCapture", "cookie", "think", NULL};
    const json_t *h = json_object_get(d, "headers"), *strict = json_object_get(d, "strictCapture");
    const json_t *cookie = json_object_get(d, "cookie"), *think = json_object_get(d, "think");

    if (!json_is_object(d)) {
        script_diag(c, d, NULL, SIZE_MAX, "%s: want a mapping", where);
        return;
    }
    script_check_keys(c, d, where, allowed, NULL);
    if (think)
        parse_think_defaults(c, think, where, s);
    if (h && !json_is_object(h))
        script_diag(c, d, "headers", 0, "%s.headers: want a mapping", where);
    else if (h && (!c->default_headers || strcmp(where, "config.http.defaults") == 0))
        c->default_headers = h;
    if (cookie && !json_is_object(cookie))
        script_diag(c, d, "cookie", 0, "%s.cookie: want a mapping of names to values", where);
    else if (cookie && (!c->default_cookie || strcmp(where, "config.http.defaults") == 0))
        c->default_cookie = cookie;
    if (strict && !json_is_boolean(strict))
        script_diag(c, d, "strictCapture", 0, "%s.strictCapture: want true or false", where);
    else if (json_is_false(strict)) /* either one turns it off, as in Artillery */
        c->strict_capture = false;
}

static void parse_http(struct script_ctx *c, const json_t *http, const json_t *parent,
                       struct load_script *s)
{
    static const char *const allowed[] = {"timeout", "defaults",   "extendedMetrics",
                                          "pool",    "maxSockets", NULL};
    const json_t *ext = json_object_get(http, "extendedMetrics");
    double d;

    if (!json_is_object(http)) {
        script_diag(c, parent, "http", 0, "config.http: want a mapping");
        return;
    }
    script_check_keys(c, http, "config.http", allowed, NULL);
    /* pool: the connections the users share (0: no bound, as Node takes Infinity) */
    if (json_object_get(http, "pool") && read_number(c, http, "pool", "config.http", 0, &d) == 0) {
        if (d != floor(d) || d > INT_MAX)
            script_diag(c, http, "pool", 0, "config.http.pool: want a whole number of connections");
        else
            s->http_pool = (int)d;
    }
    /* Artillery's schema takes a number here, and its engine never reads it */
    if (json_object_get(http, "maxSockets") &&
        read_number(c, http, "maxSockets", "config.http", 0, &d) == 0)
        fprintf(stderr,
                "%s:%d: warning: config.http.maxSockets does nothing (as in Artillery): "
                "config.http.pool caps the connections\n",
                c->y->path, load_yaml_line(c->y, http, "maxSockets", 0));
    if (json_object_get(http, "timeout") &&
        read_number(c, http, "timeout", "config.http", 0.001, &d) == 0) {
        s->timeout_ms = (int64_t)llround(d * 1000);
        s->timeout_set = true;
    }
    if (ext && !json_is_boolean(ext))
        script_diag(c, http, "extendedMetrics", 0,
                    "config.http.extendedMetrics: want true or false");
    s->extended_metrics = json_is_true(ext);
    if (json_object_get(http, "defaults")) {
        parse_defaults(c, json_object_get(http, "defaults"), "config.http.defaults", s);
    }
}

/* Artillery's config.tls: only rejectUnauthorized (false = accept any certificate, like -k). */
static void parse_tls(struct script_ctx *c, const json_t *tls, struct load_script *s)
{
    static const char *const allowed[] = {"rejectUnauthorized", NULL};
    const json_t *v = json_object_get(tls, "rejectUnauthorized");

    if (!json_is_object(tls)) {
        script_diag(c, c->config, "tls", 0, "config.tls: want a mapping");
        return;
    }
    script_check_keys(c, tls, "config.tls", allowed, NULL);
    if (v && !json_is_boolean(v))
        script_diag(c, tls, "rejectUnauthorized", 0,
                    "config.tls.rejectUnauthorized: want true or false");
    s->tls_insecure = json_is_false(v);
}

/* Artillery's expect plugin: its output format, and whether a failed check fails the user. */
static void parse_expect_plugin(struct script_ctx *c, const json_t *ex, const char *const *allowed,
                                struct load_script *s)
{
    static const char *const formats[] = {"pretty", "prettyError", "json", "silent", NULL};
    const json_t *f;

    s->expect_plugin = true;
    if (json_is_null(ex))
        return; /* "expect:" with nothing under it */
    if (!json_is_object(ex)) {
        script_diag(c, c->config, "plugins", 0, "config.plugins.expect: want a mapping");
        return;
    }
    script_check_keys(c, ex, "config.plugins.expect", allowed, NULL);
    f = json_object_get(ex, "formatter") ? json_object_get(ex, "formatter")
                                         : json_object_get(ex, "outputFormat");
    for (size_t i = 0; f && formats[i]; i++) {
        if (json_is_string(f) && strcmp(json_string_value(f), formats[i]) == 0) {
            s->expect_format = (enum load_expect_format)i;
            f = NULL;
        }
    }
    if (f)
        script_diag(c, ex, json_object_get(ex, "formatter") ? "formatter" : "outputFormat", 0,
                    "config.plugins.expect: the output format is pretty, prettyError, json or "
                    "silent");
    s->expect_as_errors = json_is_true(json_object_get(ex, "reportFailuresAsErrors"));
    c->expect_default_200 =
        json_is_true(json_object_get(ex, "expectDefault200")) ||
        (json_is_string(json_object_get(ex, "expectDefault200")) &&
         strcmp(json_string_value(json_object_get(ex, "expectDefault200")), "true") == 0);
}

/*
 * metrics-by-endpoint: Artillery 2 adds it to every script (suppressOutput, stripQueryString);
 * a script that configures it gets its own settings, whose defaults are off.
 */
static void parse_endpoint_plugin(struct script_ctx *c, const json_t *p, struct load_script *s)
{
    static const char *const allowed[] = {"useOnlyRequestNames",
                                          "stripQueryString",
                                          "ignoreUnnamedRequests",
                                          "metricsNamespace",
                                          "suppressOutput",
                                          "groupDynamicURLs",
                                          NULL};
    const json_t *ns = json_object_get(p, "metricsNamespace");

    if (json_is_null(p))
        p = NULL;
    if (p && !json_is_object(p)) {
        script_diag(c, c->config, "plugins", 0,
                    "config.plugins.metrics-by-endpoint: want a mapping");
        return;
    }
    script_check_keys(c, p, "config.plugins.metrics-by-endpoint", allowed, NULL);
    if (json_is_false(json_object_get(p, "groupDynamicURLs")))
        script_diag(c, p, "groupDynamicURLs", 0,
                    "config.plugins.metrics-by-endpoint.groupDynamicURLs: false is not supported "
                    "(endpoints are named by their url as written)");
    c->ep_only_names = json_is_true(json_object_get(p, "useOnlyRequestNames"));
    c->ep_strip_query = json_is_true(json_object_get(p, "stripQueryString"));
    c->ep_ignore_unnamed = json_is_true(json_object_get(p, "ignoreUnnamedRequests"));
    if (json_is_string(ns))
        c->ep_prefix = json_string_value(ns);
    s->endpoint_print = !json_is_true(json_object_get(p, "suppressOutput"));
}

static void parse_plugins(struct script_ctx *c, const json_t *plugins, struct load_script *s)
{
    static const char *const allowed[] = {"ensure", "expect", "metrics-by-endpoint", NULL};
    static const char *const expect_allowed[] = {
        "outputFormat", "formatter", "reportFailuresAsErrors", "expectDefault200", NULL};
    const json_t *ens = json_object_get(plugins, "ensure");
    const char *key, *near;
    json_t *v;

    if (!json_is_object(plugins)) {
        script_diag(c, c->config, "plugins", 0, "config.plugins: want a mapping");
        return;
    }
    /* Artillery loads any other plugin from npm (artillery-plugin-NAME); none of them runs
     * here, and a test that counts on one must not pass without it */
    json_object_foreach((json_t *)plugins, key, v)
    {
        if (in_list(key, allowed))
            continue;
        if ((near = nearest_key(key, allowed, NULL)) != NULL)
            script_diag(c, plugins, key, 0,
                        "config.plugins.%s: unknown plugin `%s`, did you mean `%s`?", key, key,
                        near);
        else
            script_diag(c, plugins, key, 0,
                        "config.plugins.%s: not supported (the plugins mesh load has are ensure, "
                        "expect and metrics-by-endpoint, built in)",
                        key);
    }
    if (json_object_get(plugins, "expect"))
        parse_expect_plugin(c, json_object_get(plugins, "expect"), expect_allowed, s);
    if (json_object_get(plugins, "metrics-by-endpoint"))
        parse_endpoint_plugin(c, json_object_get(plugins, "metrics-by-endpoint"), s);
    (void)ens; /* read by parse_config, with config.ensure */
}

/*
 * A value (an object too: `{{ user.name }}` reads into it), or a list one element of which
 * each user picks, as Artillery's inlineVariables has them. Their templates are config
 * templates, rendered once here, as Artillery renders its whole config when it reads it: a
 * user's `{{ host }}` then reads what `host: "{{ $env.HOST }}"` rendered.
 */
static void parse_variables(struct script_ctx *c, json_t *vars, const json_t *parent,
                            struct load_script *s)
{
    if (!json_is_object(vars)) {
        script_diag(c, parent, "variables", 0, "config.variables: want a mapping");
        return;
    }
    json_decref(s->variables);
    s->variables = load_tmpl_json(vars, c->config_vars, &c->rng);
}

int load_script_add_variables(struct load_script *s, const char *json_text, struct err *e)
{
    json_error_t jerr;
    json_t *vars = json_loads(json_text, JSON_REJECT_DUPLICATES, &jerr);
    int rc = 0;

    if (!vars) {
        err_set(e, "%s", jerr.text);
        return -EINVAL;
    }
    if (!json_is_object(vars)) {
        err_set(e, "want a JSON object such as {\"user\": \"ann\"}");
        rc = -EINVAL;
        goto out;
    }
    json_object_update(s->variables, vars); /* as config.variables' */
out:
    json_decref(vars);
    return rc;
}

char *script_endpoint_name(const struct script_ctx *c, const char *url, const char *name)
{
    struct buf b = BUF_INIT;
    size_t n = strlen(url);

    if (!name && c->ep_ignore_unnamed)
        return NULL;
    if (name && c->ep_only_names)
        return xstrdup(name);
    /* an absolute url to the target is its path; to another host, host[:port] and path */
    if (strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0) {
        const char *host = strstr(url, "//") + 2, *path = strchr(host, '/');
        size_t tn = c->target ? strlen(c->target) : 0;

        if (c->target && strncmp(url, c->target, tn) == 0 && (!url[tn] || url[tn] == '/'))
            url += tn;
        else if (path)
            buf_append(&b, host, (size_t)(path - host)), url = path;
        else
            buf_append_cstr(&b, host), url = "/";
        if (!*url)
            url = "/";
        n = strlen(url);
    }
    if (c->ep_strip_query && strchr(url, '?'))
        n = (size_t)(strchr(url, '?') - url);
    buf_append(&b, url, n);
    if (name)
        buf_printf(&b, " (%s)", name);
    return buf_steal(&b);
}

char *script_path_near(const char *script, const char *file)
{
    const char *slash = strrchr(script, '/');

    if (file[0] == '/' || !slash)
        return xstrdup(file);
    return xasprintf("%.*s/%s", (int)(slash - script), script, file);
}

int script_read_file(const char *path, size_t max, struct buf *out, struct err *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    off_t size;
    int rc;

    if (fd < 0)
        return err_set(e, "%s", strerror(errno));
    size = lseek(fd, 0, SEEK_END);
    if (size < 0 || (uint64_t)size > max) {
        rc = size < 0 ? err_set(e, "%s", strerror(errno))
                      : err_set(e, "larger than %zu MiB", max >> 20);
        goto out;
    }
    if ((rc = file_read_all(fd, out)) < 0)
        err_set(e, "%s", strerror(-rc));
out:
    close(fd);
    return rc;
}

/* A module path, relative to the script's directory as Artillery resolves it. */
static void parse_processor(struct script_ctx *c, const json_t *v, struct load_script *s)
{
    const char *file = json_string_value(v);

    if (!file || !*file) {
        script_diag(c, c->config, "processor", 0,
                    "config.processor: want the path of a JavaScript module");
        return;
    }
    s->processor = script_path_near(s->path, file);
    /* with --config, Artillery takes it next to the config file when it is there */
    if (c->config_path) {
        char *near = script_path_near(c->config_path, file);

        if (access(near, F_OK) == 0) {
            free(s->processor);
            s->processor = near;
        } else {
            free(near);
        }
    }
    c->has_processor = true;
}

static void parse_target(struct script_ctx *c, const char *target_flag, struct load_script *s)
{
    const json_t *parent;
    const json_t *t = cfg_get(c, "target", &parent);
    struct buf tmp = BUF_INIT;
    struct url_parts u;

    if (target_flag)
        s->target = xstrdup(target_flag);
    else if (json_is_string(t))
        s->target = xstrdup(script_config_text(c, json_string_value(t), &tmp));
    buf_free(&tmp);
    if (!s->target) {
        script_diag(c, c->config, NULL, SIZE_MAX,
                    "config.target: missing (set it in the file or with -t URL)");
        return;
    }
    while (s->target[0] && s->target[strlen(s->target) - 1] == '/')
        s->target[strlen(s->target) - 1] = '\0';
    if ((strncmp(s->target, "http://", 7) != 0 && strncmp(s->target, "https://", 8) != 0) ||
        url_split(s->target, &u) < 0) {
        if (target_flag)
            script_diag(c, NULL, NULL, 0, "-t %s: want an http:// or https:// URL", target_flag);
        else
            diag_value(c, parent, "target", "config", "an http:// or https:// URL", s->target);
        return;
    }
    url_parts_free(&u);
}

static void parse_config(struct script_ctx *c, const char *target_flag, struct load_script *s)
{
    static const char *const allowed[] = {
        "target", "phases",    "variables", "environments", "http",    "ensure", "plugins",
        "tls",    "processor", "defaults",  "payload",      "timeout", NULL};
    static const char *const unsupported[] = {"engines",       "socketio", "ws",    "includeFiles",
                                              "statsInterval", "bundling", "apdex", NULL};
    const json_t *parent;
    json_t *v;
    double d;

    script_check_keys(c, c->config, "config", allowed, unsupported);
    if (c->env) {
        static const char *const env_allowed[] = {"target", "phases",  "variables", "http",
                                                  "ensure", "payload", NULL};
        char where[160];

        snprintf(where, sizeof(where), "config.environments.%s", s->environment);
        script_check_keys(c, c->env, where, env_allowed, unsupported);
    }
    parse_target(c, target_flag, s);
    v = cfg_get(c, "phases", &parent);
    c->cfg_parent_phases = parent;
    if (!v) {
        load_script_solo(s); /* as Artillery runs a script without phases */
    } else if (parent == c->env && json_is_array(v) &&
               json_is_array(json_object_get(c->config, "phases"))) {
        json_t *merged = merge_phases(c, json_object_get(c->config, "phases"), v);

        parse_phases(c, merged, s);
        /* kept while the line table may be asked about it */
        json_array_append_new(c->keep, merged);
    } else {
        parse_phases(c, v, s);
    }
    /* variables from the environment add to (and override) the file's */
    if ((v = json_object_get(c->config, "variables")))
        parse_variables(c, v, c->config, s);
    if (c->env && (v = json_object_get(c->env, "variables"))) {
        json_t *base = s->variables ? json_incref(s->variables) : json_object();

        parse_variables(c, v, c->env, s);
        if (json_is_object(s->variables))
            json_object_update_missing(s->variables, base);
        json_decref(base);
    }
    if (!s->variables)
        s->variables = json_object();
    if ((v = cfg_get(c, "payload", &parent)))
        script_parse_payloads(c, v, s);
    if ((v = cfg_get(c, "http", &parent)))
        parse_http(c, v, parent, s);
    /* config.timeout wins over http.timeout, as Artillery reads `timeout || http.timeout` */
    if (json_object_get(c->config, "timeout") &&
        read_number(c, c->config, "timeout", "config", 0.001, &d) == 0) {
        s->timeout_ms = (int64_t)llround(d * 1000);
        s->timeout_set = true;
    }
    if ((v = json_object_get(c->config, "plugins")))
        parse_plugins(c, v, s);
    if ((v = json_object_get(c->config, "tls")))
        parse_tls(c, v, s);
    parse_ensure_config(c, s);
    if ((v = json_object_get(c->config, "defaults")))
        parse_defaults(c, v, "config.defaults", s);
    if ((v = json_object_get(c->config, "processor")))
        parse_processor(c, v, s);
}

static int select_env(struct script_ctx *c, const char *env, struct load_script *s)
{
    const json_t *envs = json_object_get(c->config, "environments");

    if (!env)
        return 0;
    s->environment = xstrdup(env);
    c->env = json_object_get(envs, env);
    if (!c->env) { /* Artillery warns and runs without one, $environment still the name */
        fprintf(stderr, "WARNING: environment %s is set but is not defined in the script\n", env);
        return 0;
    }
    if (!json_is_object(c->env)) {
        script_diag(c, envs, env, 0, "config.environments.%s: want a mapping", env);
        c->env = NULL;
        return -EINVAL;
    }
    return 0;
}

static int parse_root(struct script_ctx *c, const char *env, const char *target,
                      struct load_script *s)
{
    static const char *const allowed[] = {"config", "scenarios", "before", "after", NULL};
    const json_t *root = c->y->root;

    script_check_keys(c, root, "", allowed, NULL);
    c->config = json_object_get(root, "config");
    if (!json_is_object(c->config)) {
        script_diag(c, root, c->config ? "config" : NULL, SIZE_MAX,
                    "config: missing or not a mapping");
        return -EINVAL;
    }
    if (select_env(c, env, s) == 0)
        parse_config(c, target, s);
    c->target = s->target;
    s->endpoint_prefix = xstrdup(c->ep_prefix);
    script_parse_scenarios(c, json_object_get(root, "scenarios"), s);
    s->before = script_parse_hook_flow(c, "before");
    s->after = script_parse_hook_flow(c, "after");
    return c->n_errors ? -EINVAL : 0;
}

static int parse_yaml_doc(struct load_yaml *y, const struct load_script_opts *o,
                          struct load_script *s, struct buf *msgs, struct err *e)
{
    const char *env = o->env, *cfg = o->config ? o->config : y->path;
    /* metrics-by-endpoint as Artillery adds it when the script does not configure it */
    struct script_ctx c = {.y = y,
                           .msgs = msgs,
                           .e = e,
                           .keep = json_array(),
                           .ep_strip_query = true,
                           .strict_capture = true,
                           .ep_prefix = "plugins.metrics-by-endpoint",
                           .config_path = o->config};
    /* $dirname is the config's, which --config moves, as in Artillery */
    char *dir = xstrdup(cfg), *slash = strrchr(dir, '/');
    int rc;

    if (slash)
        *slash = '\0';
    /* config templates: Artillery renders the config once, with these and the environment */
    /* without -e, $environment is not set (undefined, as Artillery's script._environment) */
    c.config_vars = json_pack("{s:s*,s:s,s:s,s:s?}", "$environment", env, "$dirname",
                              !slash         ? "."
                              : slash == dir ? "/"
                                             : dir,
                              "$scenarioFile", y->path, "$testId", o->test_id);
    if (o->variables) {
        json_t *vars = json_loads(o->variables, 0, NULL);

        if (json_is_object(vars))
            json_object_update(c.config_vars, vars);
        json_decref(vars);
    }
    c.rng = 0x9e3779b97f4a7c15u;
    memset(s, 0, sizeof(*s));
    s->path = xstrdup(y->path);
    s->timeout_ms = DEFAULT_TIMEOUT_MS;
    s->http_pool = -1;
    s->think_jitter = -1;
    s->max_error_rate = -1;
    rc = parse_root(&c, env, o->target, s);
    if (rc == 0)
        s->builtin_vars =
            json_pack("{s:s,s:s*,s:O,s:O,s:s?}", "target", s->target, "$environment", env,
                      "$dirname", json_object_get(c.config_vars, "$dirname"), "$scenarioFile",
                      json_object_get(c.config_vars, "$scenarioFile"), "$testId", o->test_id);
    json_decref(c.keep);
    json_decref(c.config_vars);
    free(dir);
    if (rc < 0)
        load_script_free(s);
    return rc;
}

int load_script_parse(const char *path, const char *text, size_t len, const char *env,
                      const char *target, struct load_script *s, struct buf *msgs, struct err *e)
{
    struct load_script_opts o = {.env = env, .target = target};
    struct load_yaml y;
    int rc;

    memset(s, 0, sizeof(*s));
    if ((rc = load_yaml_parse(path, text, len, &y, e)) < 0) {
        buf_printf(msgs, "%s\n", e->msg);
        return rc;
    }
    rc = parse_yaml_doc(&y, &o, s, msgs, e);
    load_yaml_free(&y);
    return rc;
}

/*
 * --overrides laid over the selected environment too, where it sets the same config keys:
 * Artillery merges the environment in first, so the overrides win over both.
 */
static void override_env(struct load_yaml *y, const struct load_yaml *ov, const char *env)
{
    const json_t *cfg = json_object_get(ov->root, "config");
    json_t *envs = json_object_get(json_object_get(y->root, "config"), "environments");
    json_t *e = env ? json_object_get(envs, env) : NULL;
    struct load_yaml part = {0};
    const char *key;
    json_t *v;

    if (!json_is_object(cfg) || !json_is_object(e))
        return;
    part.path = xstrdup(ov->path);
    part.root = json_object();
    json_object_foreach((json_t *)cfg, key, v)
    {
        if (json_object_get(e, key) && strcmp(key, "environments") != 0) {
            json_object_set(part.root, key, v);
            load_yaml_add_line(&part, part.root, key, 0, load_yaml_line(ov, cfg, key, 0));
        }
    }
    load_yaml_merge_at(y, e, &part, true);
}

/* --config FILE and --overrides JSON, laid over y as Artillery lays them. */
static int lay_over(struct load_yaml *y, struct load_script_opts *o, struct buf *msgs,
                    struct err *e)
{
    struct load_yaml more;
    const json_t *cfg;
    int rc;

    if (o->config) {
        if ((rc = load_yaml_load(o->config, &more, e)) < 0)
            goto fail;
        load_yaml_merge(y, &more, false);
    }
    if (o->overrides) {
        if ((rc = load_yaml_parse("--overrides", o->overrides, strlen(o->overrides), &more, e)) < 0)
            goto fail;
        cfg = json_object_get(more.root, "config");
        if (json_is_string(json_object_get(cfg, "target")))
            o->target = NULL; /* applied after -t, so it wins */
        override_env(y, &more, o->env);
        load_yaml_merge(y, &more, true);
    }
    return 0;
fail:
    buf_printf(msgs, "%s\n", e->msg);
    return rc;
}

int load_script_load(const char *path, const struct load_script_opts *opts, struct load_script *s,
                     struct buf *msgs, struct err *e)
{
    struct load_script_opts o = *opts;
    struct load_yaml y;
    int rc;

    memset(s, 0, sizeof(*s));
    if ((rc = load_yaml_load(path, &y, e)) < 0) {
        buf_printf(msgs, "%s\n", e->msg);
        return rc;
    }
    if ((rc = lay_over(&y, &o, msgs, e)) == 0)
        rc = parse_yaml_doc(&y, &o, s, msgs, e);
    load_yaml_free(&y);
    return rc;
}

static void accepted_in(const struct load_step *steps, size_t n, bool *codes)
{
    for (size_t i = 0; i < n; i++) {
        const struct load_request *r = &steps[i].req;

        accepted_in(steps[i].steps, steps[i].n_steps, codes);
        for (size_t k = 0; steps[i].kind == LOAD_STEP_REQUEST && k < r->n_expects; k++)
            for (size_t j = 0;
                 r->expects[k].kind == LOAD_EXPECT_STATUS && j < r->expects[k].n_status; j++)
                if (r->expects[k].status[j] >= 0 && r->expects[k].status[j] < 1000)
                    codes[r->expects[k].status[j]] = true;
    }
}

json_t *load_script_accepted_codes(const struct load_script *s)
{
    bool codes[1000] = {false};
    json_t *out = json_array();

    for (size_t i = 0; i < s->n_scenarios; i++)
        accepted_in(s->scenarios[i].steps, s->scenarios[i].n_steps, codes);
    for (int c = 0; c < 1000; c++)
        if (codes[c])
            json_array_append_new(out, json_integer(c));
    return out;
}

struct load_scenario *load_script_flow_at(struct load_script *s, size_t i)
{
    if (i < s->n_scenarios)
        return &s->scenarios[i];
    i -= s->n_scenarios;
    if (i == 0 && s->before)
        return s->before;
    i -= s->before != NULL;
    return i == 0 ? s->after : NULL;
}

int64_t load_script_duration_ms(const struct load_script *s)
{
    int64_t total = 0;

    for (size_t i = 0; i < s->n_phases; i++)
        total += s->phases[i].duration_ms;
    return total;
}

void load_script_free(struct load_script *s)
{
    for (size_t i = 0; i < s->n_phases; i++)
        free(s->phases[i].name);
    free(s->phases);
    for (size_t i = 0; i < s->n_thresholds; i++)
        free(s->thresholds[i].metric);
    free(s->thresholds);
    for (size_t i = 0; i < s->n_conditions; i++)
        free(s->conditions[i].expression);
    free(s->conditions);
    for (size_t i = 0; i < s->n_scenarios; i++)
        script_free_scenario(&s->scenarios[i]);
    free(s->scenarios);
    if (s->before)
        script_free_scenario(s->before);
    if (s->after)
        script_free_scenario(s->after);
    free(s->before);
    free(s->after);
    json_decref(s->variables);
    json_decref(s->builtin_vars);
    for (size_t i = 0; i < s->n_payloads; i++)
        load_payload_free(&s->payloads[i]);
    free(s->payloads);
    free(s->target);
    free(s->processor);
    free(s->endpoint_prefix);
    free(s->environment);
    free(s->path);
    memset(s, 0, sizeof(*s));
}
