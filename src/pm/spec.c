/* App specs: defaults, checks, JSON in and out, ecosystem files (see spec.h). */
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/alloc.h"
#include "lib/cron.h"
#include "lib/duration.h"
#include "lib/json.h"
#include "pm/policy.h"
#include "pm/spec.h"

void pm_spec_init(struct pm_spec *s)
{
    memset(s, 0, sizeof(*s));
    s->argv = xcalloc(1, sizeof(*s->argv));
    s->instances = 1;
    s->max_restarts = PM_DEFAULT_MAX_RESTART;
    s->autorestart = true;
    s->kill_timeout_ms = PM_DEFAULT_KILL_MS;
    s->listen_timeout_ms = PM_DEFAULT_LISTEN_MS;
    s->min_uptime_ms = PM_DEFAULT_MIN_UPTIME;
    s->max_log_size = PM_DEFAULT_LOG_SIZE;
}

void pm_spec_free(struct pm_spec *s)
{
    for (size_t i = 0; i < s->argc; i++)
        free(s->argv[i]);
    for (size_t i = 0; i < s->nenv; i++)
        free(s->env[i]);
    free(s->argv);
    free(s->env);
    free(s->name);
    free(s->cwd);
    free(s->cron_restart);
    for (size_t i = 0; i < s->nwatch_paths; i++)
        free(s->watch_paths[i]);
    free(s->watch_paths);
    for (size_t i = 0; i < s->nignore_watch; i++)
        free(s->ignore_watch[i]);
    free(s->ignore_watch);
    memset(s, 0, sizeof(*s));
}

void pm_spec_add_arg(struct pm_spec *s, const char *arg)
{
    s->argv = xrealloc(s->argv, (s->argc + 2) * sizeof(*s->argv));
    s->argv[s->argc++] = xstrdup(arg);
    s->argv[s->argc] = NULL;
}

void pm_spec_set_env(struct pm_spec *s, const char *kv)
{
    size_t klen = strcspn(kv, "=");

    for (size_t i = 0; i < s->nenv; i++) {
        if (strncmp(s->env[i], kv, klen) == 0 && s->env[i][klen] == '=') {
            free(s->env[i]);
            s->env[i] = xstrdup(kv);
            return;
        }
    }
    s->env = xrealloc(s->env, (s->nenv + 1) * sizeof(*s->env));
    s->env[s->nenv++] = xstrdup(kv);
}

void pm_spec_add_str(char ***v, size_t *n, const char *s)
{
    *v = xrealloc(*v, (*n + 1) * sizeof(**v));
    (*v)[(*n)++] = xstrdup(s);
}

void pm_spec_set_cron(struct pm_spec *s, const char *expr)
{
    free(s->cron_restart);
    s->cron_restart = expr && expr[0] && strcmp(expr, "0") != 0 ? xstrdup(expr) : NULL;
}

int pm_spec_check(const struct pm_spec *s, struct err *e)
{
    struct cron cron;

    if (!s->name || !pm_name_valid(s->name))
        return err_set(e, "name: invalid app name \"%s\" (1..64 of A-Z a-z 0-9 _ . -, not \"all\")",
                       s->name ? s->name : "");
    if (s->argc == 0 || !s->argv[0][0])
        return err_set(e, "script: no command to run");
    if (s->instances < 1 || s->instances > PM_MAX_INSTANCES)
        return err_set(e, "instances: %d out of range 1..%d", s->instances, PM_MAX_INSTANCES);
    if (s->port_base < 0 || (int64_t)s->port_base + s->instances - 1 > 65535)
        return err_set(e, "port_base: %d with %d instances goes past port 65535", s->port_base,
                       s->instances);
    if (s->max_restarts < 0)
        return err_set(e, "max_restarts: must not be negative");
    if (s->kill_timeout_ms < 0 || s->listen_timeout_ms < 0 || s->min_uptime_ms < 0 ||
        s->restart_delay_ms < 0 || s->exp_backoff_ms < 0 || s->max_log_size < 0 ||
        s->max_memory_bytes < 0 || s->watch_delay_ms < 0)
        return err_set(e, "durations and sizes must not be negative");
    if (s->nwatch_paths > PM_MAX_WATCH || s->nignore_watch > PM_MAX_WATCH)
        return err_set(e, "watch: more than %d paths or ignore_watch patterns", PM_MAX_WATCH);
    for (size_t i = 0; i < s->nwatch_paths; i++) {
        if (!s->watch_paths[i][0] || strlen(s->watch_paths[i]) >= PATH_MAX)
            return err_set(e, "watch: path %zu is empty or too long", i);
    }
    for (size_t i = 0; i < s->nignore_watch; i++) {
        if (!s->ignore_watch[i][0] || strlen(s->ignore_watch[i]) >= PATH_MAX)
            return err_set(e, "ignore_watch: pattern %zu is empty or too long", i);
    }
    for (size_t i = 0; i < s->nenv; i++) {
        if (!strchr(s->env[i], '=') || s->env[i][0] == '=')
            return err_set(e, "env: \"%s\" is not K=V", s->env[i]);
    }
    if (s->cron_restart && cron_parse(s->cron_restart, &cron, e) != 0) {
        err_prefix(e, "cron_restart");
        return -EINVAL;
    }
    return 0;
}

/* Where errors go: "file:line: path.key: msg" with a doc, else "path.key: msg". */
struct reader {
    const struct config_doc *doc;
    const char *path;
    struct err *e;
};

static void report(const struct reader *r, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void report(const struct reader *r, const char *key, const char *fmt, ...)
{
    char msg[400];
    char *where = xasprintf("%s%s%s", r->path, key[0] ? "." : "", key);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (r->doc)
        config_report(r->doc, where, r->e, "%s: %s", where, msg);
    else
        err_setf(r->e, "%s: %s", where, msg);
    free(where);
}

/* Reports at key and evaluates to -EINVAL, visibly at each call site (as err_set). */
#define fail(r, key, ...) (report((r), (key), __VA_ARGS__), -EINVAL)

static int read_int(const struct reader *r, const char *key, const json_t *v, int64_t lo,
                    int64_t hi, int64_t *out)
{
    if (!json_is_integer(v))
        return fail(r, key, "expected an integer, got %s",
                    json_is_real(v) ? "a fraction" : "another type");
    if (json_integer_value(v) < lo || json_integer_value(v) > hi)
        return fail(r, key, "%" PRId64 " out of range %" PRId64 "..%" PRId64,
                    (int64_t)json_integer_value(v), lo, hi);
    *out = json_integer_value(v);
    return 0;
}

/* Milliseconds as a number, or a Go duration string. */
static int read_ms(const struct reader *r, const char *key, const json_t *v, int64_t *out)
{
    int64_t ns;

    if (json_is_string(v)) {
        if (duration_parse(str_from(json_string_value(v)), &ns) != 0)
            return fail(r, key, "invalid duration \"%s\"", json_string_value(v));
        *out = ns / DURATION_MS;
        return 0;
    }
    return read_int(r, key, v, 0, INT64_C(1) << 40, out);
}

/* Bytes as a number, or PM2's "300M" (K, M, G). */
static int read_memory(const struct reader *r, const char *key, const json_t *v, int64_t *out)
{
    if (json_is_string(v)) {
        if (pm_parse_memory(json_string_value(v), out) != 0)
            return fail(r, key, "invalid size \"%s\" (bytes, or a number with K, M or G)",
                        json_string_value(v));
        return 0;
    }
    return read_int(r, key, v, 0, PM_MEMORY_MAX, out);
}

/* stop_exit_codes: an array of exit codes, or one code (PM2 takes both). */
static int read_exit_codes(const struct reader *r, const json_t *v, struct pm_exit_codes *out)
{
    const char *key = "stop_exit_codes";
    json_t *a;
    size_t i;

    *out = (struct pm_exit_codes){{0}};
    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0 || json_integer_value(v) > 255)
            return fail(r, key, "%" JSON_INTEGER_FORMAT " is not an exit code (0..255)",
                        json_integer_value(v));
        pm_exit_codes_add(out, (int)json_integer_value(v));
        return 0;
    }
    if (!json_is_array(v))
        return fail(r, key, "expected an array of exit codes or one exit code");
    json_array_foreach(v, i, a)
    {
        if (!json_is_integer(a) || json_integer_value(a) < 0 || json_integer_value(a) > 255)
            return fail(r, key, "element %zu is not an exit code (0..255)", i);
        pm_exit_codes_add(out, (int)json_integer_value(a));
    }
    return 0;
}

static int read_args(const struct reader *r, const json_t *v, struct pm_spec *s)
{
    size_t i;
    json_t *a;

    if (json_is_string(v)) {
        char *copy = xstrdup(json_string_value(v));
        char *save = NULL;
        for (char *t = strtok_r(copy, " \t", &save); t; t = strtok_r(NULL, " \t", &save))
            pm_spec_add_arg(s, t);
        free(copy);
        return 0;
    }
    if (!json_is_array(v))
        return fail(r, "args", "expected an array of strings or a string");
    if (json_array_size(v) > PM_MAX_ARGS)
        return fail(r, "args", "more than %d arguments", PM_MAX_ARGS);
    json_array_foreach(v, i, a)
    {
        if (!json_is_string(a))
            return fail(r, "args", "element %zu is not a string", i);
        pm_spec_add_arg(s, json_string_value(a));
    }
    return 0;
}

static int read_env(const struct reader *r, const json_t *v, struct pm_spec *s)
{
    const char *k;
    json_t *val;

    if (!json_is_object(v))
        return fail(r, "env", "expected an object");
    json_object_foreach((json_t *)v, k, val)
    {
        char *kv;
        if (!k[0] || strchr(k, '='))
            return fail(r, "env", "invalid variable name \"%s\"", k);
        if (json_is_string(val))
            kv = xasprintf("%s=%s", k, json_string_value(val));
        else if (json_is_integer(val))
            kv = xasprintf("%s=%" JSON_INTEGER_FORMAT, k, json_integer_value(val));
        else if (json_is_boolean(val))
            kv = xasprintf("%s=%s", k, json_is_true(val) ? "true" : "false");
        else
            return fail(r, "env", "%s: expected a string, number or bool", k);
        pm_spec_set_env(s, kv);
        free(kv);
    }
    return 0;
}

static int read_string(const struct reader *r, const char *key, const json_t *v, char **out)
{
    if (!json_is_string(v))
        return fail(r, key, "expected a string");
    free(*out);
    *out = xstrdup(json_string_value(v));
    return 0;
}

static int read_bool(const struct reader *r, const char *key, const json_t *v, bool *out)
{
    if (!json_is_boolean(v))
        return fail(r, key, "expected true or false");
    *out = json_is_true(v);
    return 0;
}

/* An int-sized key: *out is set only when the value is good. */
static int read_small_int(const struct reader *r, const char *key, const json_t *v, int lo, int hi,
                          int *out)
{
    int64_t n = 0;
    int rc = read_int(r, key, v, lo, hi, &n);

    if (rc == 0)
        *out = (int)n;
    return rc;
}

/* A string or an array of strings (watch, ignore_watch), appended to *v. */
static int read_strs(const struct reader *r, const char *key, const json_t *v, char ***out,
                     size_t *n)
{
    json_t *a;
    size_t i;

    if (json_is_string(v)) {
        pm_spec_add_str(out, n, json_string_value(v));
        return 0;
    }
    if (!json_is_array(v) || json_array_size(v) > PM_MAX_WATCH)
        return fail(r, key, "expected a string or an array of at most %d strings", PM_MAX_WATCH);
    json_array_foreach(v, i, a)
    {
        if (!json_is_string(a))
            return fail(r, key, "element %zu is not a string", i);
        pm_spec_add_str(out, n, json_string_value(a));
    }
    return 0;
}

/* watch: true or false, or what to watch (a path or an array: watching them; [] is the cwd). */
static int read_watch(const struct reader *r, const json_t *v, struct pm_spec *s)
{
    if (json_is_boolean(v)) {
        s->watch = json_is_true(v);
        return 0;
    }
    s->watch = true;
    return read_strs(r, "watch", v, &s->watch_paths, &s->nwatch_paths);
}

/* One key of an app object. */
static int read_key(const struct reader *r, const char *key, const json_t *v, struct pm_spec *s,
                    char **script)
{
    if (strcmp(key, "name") == 0)
        return read_string(r, key, v, &s->name);
    if (strcmp(key, "script") == 0)
        return read_string(r, key, v, script);
    if (strcmp(key, "cwd") == 0)
        return read_string(r, key, v, &s->cwd);
    if (strcmp(key, "args") == 0)
        return read_args(r, v, s);
    if (strcmp(key, "env") == 0)
        return read_env(r, v, s);
    if (strcmp(key, "instances") == 0)
        return read_small_int(r, key, v, 1, PM_MAX_INSTANCES, &s->instances);
    if (strcmp(key, "port_base") == 0)
        return read_small_int(r, key, v, 0, 65535, &s->port_base);
    if (strcmp(key, "max_restarts") == 0)
        return read_small_int(r, key, v, 0, 1000000, &s->max_restarts);
    if (strcmp(key, "autorestart") == 0)
        return read_bool(r, key, v, &s->autorestart);
    if (strcmp(key, "max_log_size") == 0)
        return read_int(r, key, v, 0, INT64_C(1) << 50, &s->max_log_size);
    if (strcmp(key, "max_memory_restart") == 0)
        return read_memory(r, key, v, &s->max_memory_bytes);
    if (strcmp(key, "kill_timeout") == 0)
        return read_ms(r, key, v, &s->kill_timeout_ms);
    if (strcmp(key, "listen_timeout") == 0)
        return read_ms(r, key, v, &s->listen_timeout_ms);
    if (strcmp(key, "min_uptime") == 0)
        return read_ms(r, key, v, &s->min_uptime_ms);
    if (strcmp(key, "restart_delay") == 0)
        return read_ms(r, key, v, &s->restart_delay_ms);
    if (strcmp(key, "exp_backoff_restart_delay") == 0)
        return read_ms(r, key, v, &s->exp_backoff_ms);
    if (strcmp(key, "stop_exit_codes") == 0)
        return read_exit_codes(r, v, &s->stop_exit_codes);
    if (strcmp(key, "cron_restart") == 0) {
        if (!json_is_string(v))
            return fail(r, key, "expected a cron expression (a string, as \"0 * * * *\")");
        pm_spec_set_cron(s, json_string_value(v));
        return 0;
    }
    if (strcmp(key, "watch") == 0)
        return read_watch(r, v, s);
    if (strcmp(key, "ignore_watch") == 0)
        return read_strs(r, key, v, &s->ignore_watch, &s->nignore_watch);
    if (strcmp(key, "watch_delay") == 0)
        return read_ms(r, key, v, &s->watch_delay_ms);
    return fail(r, key, "unknown key");
}

int pm_spec_from_json(const json_t *obj, struct pm_spec *s, const struct config_doc *doc,
                      const char *path, struct err *e)
{
    struct reader r = {doc, path, e};
    char *script = NULL;
    const char *key;
    json_t *v;
    struct err ce = {{0}};
    int rc = 0;

    if (!json_is_object(obj))
        return fail(&r, "", "expected an object");
    json_object_foreach((json_t *)obj, key, v)
    {
        if (json_is_null(v))
            continue;
        rc = read_key(&r, key, v, s, &script);
        if (rc != 0)
            goto out;
    }
    if (!script) {
        rc = fail(&r, "script", "missing (the command to run)");
        goto out;
    }
    /* script goes first: args were appended as they came. */
    s->argv = xrealloc(s->argv, (s->argc + 2) * sizeof(*s->argv));
    memmove(s->argv + 1, s->argv, s->argc * sizeof(*s->argv));
    s->argv[0] = script;
    s->argv[++s->argc] = NULL;
    script = NULL;
    rc = pm_spec_check(s, &ce);
    if (rc != 0) {
        size_t klen = strcspn(ce.msg, ":");
        char *k = xstrndup(ce.msg, klen);
        rc = fail(&r, strchr(k, ' ') ? "" : k, "%s", ce.msg[klen] ? ce.msg + klen + 2 : ce.msg);
        free(k);
    }
out:
    free(script);
    return rc;
}

static json_t *strs_json(char *const *v, size_t n)
{
    json_t *a = json_array();

    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_str_or_empty(v[i]));
    return a;
}

json_t *pm_spec_to_json(const struct pm_spec *s)
{
    json_t *o = json_object();
    json_t *args = json_array();
    json_t *env = json_object();
    json_t *codes = json_array();

    json_object_set_new(o, "name", json_str_or_empty(s->name));
    json_object_set_new(o, "script", json_str_or_empty(s->argc ? s->argv[0] : ""));
    for (size_t i = 1; i < s->argc; i++)
        json_array_append_new(args, json_str_or_empty(s->argv[i]));
    json_object_set_new(o, "args", args);
    for (size_t i = 0; i < s->nenv; i++) {
        char *k = xstrndup(s->env[i], strcspn(s->env[i], "="));
        json_object_set_new(env, k, json_str_or_empty(s->env[i] + strlen(k) + 1));
        free(k);
    }
    json_object_set_new(o, "env", env);
    if (s->cwd)
        json_object_set_new(o, "cwd", json_str_or_empty(s->cwd));
    json_object_set_new(o, "instances", json_integer(s->instances));
    json_object_set_new(o, "port_base", json_integer(s->port_base));
    json_object_set_new(o, "kill_timeout", json_integer(s->kill_timeout_ms));
    json_object_set_new(o, "listen_timeout", json_integer(s->listen_timeout_ms));
    json_object_set_new(o, "max_restarts", json_integer(s->max_restarts));
    json_object_set_new(o, "autorestart", json_boolean(s->autorestart));
    json_object_set_new(o, "min_uptime", json_integer(s->min_uptime_ms));
    json_object_set_new(o, "restart_delay", json_integer(s->restart_delay_ms));
    json_object_set_new(o, "exp_backoff_restart_delay", json_integer(s->exp_backoff_ms));
    json_object_set_new(o, "stop_exit_codes", codes);
    for (int c = 0; c <= 255; c++) {
        if (pm_exit_codes_has(&s->stop_exit_codes, c))
            json_array_append_new(codes, json_integer(c));
    }
    json_object_set_new(o, "max_log_size", json_integer(s->max_log_size));
    json_object_set_new(o, "max_memory_restart", json_integer(s->max_memory_bytes));
    if (s->cron_restart)
        json_object_set_new(o, "cron_restart", json_str_or_empty(s->cron_restart));
    json_object_set_new(o, "watch",
                        s->watch && s->nwatch_paths ? strs_json(s->watch_paths, s->nwatch_paths)
                                                    : json_boolean(s->watch));
    if (s->nignore_watch)
        json_object_set_new(o, "ignore_watch", strs_json(s->ignore_watch, s->nignore_watch));
    json_object_set_new(o, "watch_delay", json_integer(s->watch_delay_ms));
    return o;
}

/* Makes s->cwd absolute against dir (the ecosystem file's directory). */
static void resolve_cwd(struct pm_spec *s, const char *dir)
{
    char *abs;

    if (s->cwd && s->cwd[0] == '/')
        return;
    abs = s->cwd ? xasprintf("%s/%s", dir, s->cwd) : xstrdup(dir);
    free(s->cwd);
    s->cwd = abs;
}

static int load_apps(const struct config_doc *doc, const char *dir, struct pm_spec **specs,
                     size_t *n, struct err *e)
{
    json_t *apps = json_object_get(doc->root, "apps");
    struct stat st;
    json_t *a;
    size_t i;
    int err;

    if (!apps)
        return config_error(doc, "", e, "%s: no \"apps\" array", doc->path);
    if (!json_is_array(apps) || json_array_size(apps) == 0)
        return config_error(doc, "apps", e, "apps: expected a non-empty array of apps");
    *specs = xcalloc(json_array_size(apps), sizeof(**specs));
    json_array_foreach(apps, i, a)
    {
        char path[32];
        struct pm_spec *s = &(*specs)[i];
        snprintf(path, sizeof(path), "apps[%zu]", i);
        pm_spec_init(s);
        *n = i + 1;
        if (pm_spec_from_json(a, s, doc, path, e) != 0)
            return -EINVAL;
        for (size_t j = 0; j < i; j++) {
            if (strcmp((*specs)[j].name, s->name) == 0) {
                char key[48];
                snprintf(key, sizeof(key), "%s.name", path);
                return config_error(doc, key, e, "%s: \"%s\" appears twice", key, s->name);
            }
        }
        resolve_cwd(s, dir);
        /* Checked here: the daemon's exec error would blame the script. */
        err = stat(s->cwd, &st) != 0 ? errno : S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
        if (err != 0) {
            char key[48];
            snprintf(key, sizeof(key), "%s.cwd", path);
            return config_error(doc, key, e, "%s: %s: %s", key, s->cwd, strerror(err));
        }
    }
    return 0;
}

int pm_ecosystem_load(const char *path, struct pm_spec **specs, size_t *n, struct err *e)
{
    struct config_doc doc;
    char *abs = NULL;
    int rc;

    *specs = NULL;
    *n = 0;
    rc = config_doc_load(path, &doc, e);
    if (rc != 0)
        return rc;
    abs = realpath(path, NULL);
    if (!abs) {
        rc = -errno;
        err_set(e, "%s: %s", path, strerror(errno));
        goto out;
    }
    rc = load_apps(&doc, dirname(abs), specs, n, e);
    if (rc != 0) {
        for (size_t i = 0; i < *n; i++)
            pm_spec_free(&(*specs)[i]);
        FREE_NULL(*specs);
        *n = 0;
    }
out:
    free(abs);
    config_doc_free(&doc);
    return rc;
}
