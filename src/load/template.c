/* Templating for scenario flows: see template.h. */
#include "load/template.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/bug.h"
#include "lib/json.h"
#include "lib/numfmt.h"

#define MAX_NAME      256
#define MAX_DEPTH     16    /* steps in a path a capture sets */
#define MAX_PAD_INDEX 65535 /* the largest index a capture sets in a list: JSON has no holes */

uint64_t load_rand(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

int load_loop_count(const char *s, int64_t *from, int64_t *to)
{
    char *end;
    long long a = strtoll(s, &end, 10), b;

    if (end == s || a < 0 || a > 1000000000)
        return -1;
    if (*end == '\0') {
        *from = 0;
        *to = a;
        return 0;
    }
    if (*end != '-' || !isdigit((unsigned char)end[1]))
        return -1;
    b = strtoll(end + 1, &end, 10);
    if (*end != '\0' || b > 1000000000)
        return -1;
    *from = a;
    *to = b;
    return 0;
}

static void append_value(struct buf *out, const json_t *v)
{
    if (!v || json_is_null(v))
        return;
    if (json_is_string(v))
        buf_append(out, json_string_value(v), json_string_length(v));
    else if (json_is_integer(v))
        buf_printf(out, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        numfmt_js(out, json_real_value(v));
    else if (json_is_boolean(v))
        buf_append_cstr(out, json_is_true(v) ? "true" : "false");
    else
        json_append(out, v, false);
}

/* One step of a path into v: an element of a list by its index, else a member. */
static const json_t *step(const json_t *v, const char *part)
{
    char *end;
    unsigned long i;

    if (json_is_array(v) && isdigit((unsigned char)part[0])) {
        i = strtoul(part, &end, 10);
        return *end ? NULL : json_array_get(v, i);
    }
    return json_object_get(v, part);
}

/* The next step of a lodash path at *pp into part (see lookup), *pp moved past it; false when
 * it does not read. */
static bool next_part(const char **pp, char *part)
{
    const char *p = *pp, *end;
    size_t n;

    if (*p == '[' && (p[1] == '\'' || p[1] == '"')) { /* ['key'] */
        end = strchr(p + 2, p[1]);
        if (!end || end[1] != ']')
            return false;
        p += 2;
    } else if (*p == '[') { /* [0] */
        if (!(end = strchr(++p, ']')))
            return false;
    } else {
        end = p + strcspn(p, ".[");
    }
    n = (size_t)(end - p);
    if (n >= MAX_NAME)
        return false;
    memcpy(part, p, n);
    part[n] = '\0';
    p = end + (*end == '\'' || *end == '"' ? 2 : *end == ']');
    *pp = p + (*p == '.');
    return true;
}

/*
 * A path into vars as lodash's get reads it (Artillery looks templates up with it): the whole
 * name if vars has it ("a.b" may be one variable), else steps split at dots and brackets:
 * "user.id", "items[0].id", "items.0", "a['b c']", "a[\"b\"]". Borrowed result or NULL.
 */
static const json_t *lookup(const json_t *vars, const char *name)
{
    char part[MAX_NAME];
    const json_t *v = json_object_get(vars, name);
    const char *p = name;

    if (v)
        return v;
    for (v = vars; *p && v;) {
        if (!next_part(&p, part))
            return NULL;
        v = step(v, part);
    }
    return v;
}

const json_t *load_vars_get(const json_t *vars, const char *path)
{
    return lookup(vars, path);
}

/* lodash's isIndex: "0", or digits not starting with 0; *i is the index. */
static bool is_index(const char *s, size_t *i)
{
    char *end;

    if (!isdigit((unsigned char)*s) || (*s == '0' && s[1]))
        return false;
    *i = strtoul(s, &end, 10);
    return *end == '\0';
}

/* Sets key of container c (an object or a list) to v (stolen; NULL: undefined), as JavaScript's
 * c[key] = v; false when JSON cannot hold it (a list's member that is no index, an index past
 * MAX_PAD_INDEX). */
static bool set_at(json_t *c, const char *key, json_t *v)
{
    size_t i;

    if (json_is_object(c)) {
        if (v)
            json_object_set_new(c, key, v);
        else
            json_object_del(c, key); /* undefined: get finds nothing either way */
        return true;
    }
    if (MESH_BUG_ON(!json_is_array(c)) || !is_index(key, &i) || i > MAX_PAD_INDEX) {
        json_decref(v);
        return false;
    }
    while (json_array_size(c) <= i) /* the holes JavaScript leaves read as undefined: null */
        json_array_append_new(c, json_null());
    json_array_set_new(c, i, v ? v : json_null());
    return true;
}

void load_vars_set(json_t *vars, const char *path, json_t *v)
{
    char parts[MAX_DEPTH][MAX_NAME];
    const char *p = path;
    size_t n = 0, i;
    json_t *at = vars;

    /* lodash's isKey: a name vars has, or one without a dot or a bracket, is one key */
    if (json_object_get(vars, path) || !strpbrk(path, ".[")) {
        set_at(vars, path, v);
        return;
    }
    while (*p && n < MAX_DEPTH && next_part(&p, parts[n]))
        n++;
    if (*p || n == 0) { /* does not read as a path: one key */
        set_at(vars, path, v);
        return;
    }
    for (size_t k = 0; k < n; k++) {
        if (!strcmp(parts[k], "__proto__") || !strcmp(parts[k], "constructor") ||
            !strcmp(parts[k], "prototype")) { /* lodash's baseSet leaves these alone */
            json_decref(v);
            return;
        }
    }
    for (size_t k = 0; k + 1 < n; k++) {
        json_t *child = (json_t *)step(at, parts[k]);

        /* a copy of what is there, as its value may be shared (the script's variables, a
         * payload row); a new object or list where there is no object or list, as lodash */
        if (json_is_object(child) || json_is_array(child))
            child = json_copy(child);
        else
            child = is_index(parts[k + 1], &i) ? json_array() : json_object();
        if (!set_at(at, parts[k], child)) {
            json_decref(v);
            return;
        }
        at = child;
    }
    set_at(at, parts[n - 1], v);
}

/* $randomNumber(a, b) and $randomString(n); false when name is neither. */
static bool render_function(struct buf *out, const char *name, uint64_t *rng)
{
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    long a = 0, b = 0;

    if (sscanf(name, "$randomNumber(%ld ,%ld )", &a, &b) == 2 ||
        sscanf(name, "$randomNumber(%ld,%ld)", &a, &b) == 2) {
        uint64_t span, r = load_rand(rng);

        if (b < a)
            b = a;
        /* unsigned: b - a + 1 overflows a long, and is 0 for the whole range */
        span = (uint64_t)b - (uint64_t)a + 1;
        buf_printf(out, "%lld", (long long)((uint64_t)a + (span ? r % span : r)));
        return true;
    }
    if (sscanf(name, "$randomString(%ld)", &a) == 1) {
        for (long i = 0; i < a && i < 4096; i++)
            buf_append(out, &alnum[load_rand(rng) % (sizeof(alnum) - 1)], 1);
        return true;
    }
    if (strcmp(name, "$randomString()") == 0) {
        for (int i = 0; i < 10; i++)
            buf_append(out, &alnum[load_rand(rng) % (sizeof(alnum) - 1)], 1);
        return true;
    }
    return false;
}

/* Copies the trimmed name between "{{" and "}}" into name; false when too long. */
static bool take_name(const char *start, const char *end, char *name)
{
    while (start < end && isspace((unsigned char)*start))
        start++;
    while (end > start && isspace((unsigned char)end[-1]))
        end--;
    if ((size_t)(end - start) >= MAX_NAME)
        return false;
    memcpy(name, start, (size_t)(end - start));
    name[end - start] = '\0';
    return true;
}

/* The environment variable $env.NAME or $processEnvironment.NAME names, or NULL. */
static const char *env_name(const char *name)
{
    if (strncmp(name, "$env.", 5) == 0)
        return name + 5;
    if (strncmp(name, "$processEnvironment.", 20) == 0)
        return name + 20;
    return NULL;
}

static void render_name(struct buf *out, const char *name, const json_t *vars, uint64_t *rng)
{
    const char *env = env_name(name);

    if (env)
        env = getenv(env);
    else if (name[0] == '$' && render_function(out, name, rng))
        return;
    if (env)
        buf_append_cstr(out, env);
    else
        append_value(out, lookup(vars, name));
}

void load_tmpl_render(struct buf *out, const char *tmpl, const json_t *vars, uint64_t *rng)
{
    const char *p = tmpl;
    char name[MAX_NAME];

    for (;;) {
        const char *open = strstr(p, "{{"), *close;

        if (!open || !(close = strstr(open + 2, "}}"))) {
            buf_append_cstr(out, p);
            return;
        }
        buf_append(out, p, (size_t)(open - p));
        if (take_name(open + 2, close, name))
            render_name(out, name, vars, rng);
        p = close + 2;
    }
}

/*
 * load_tmpl_json's walk. With undef, a string that is only "{{ name }}" of a variable that is
 * not set is undefined, as Artillery's template leaves it: NULL, and the object member holding
 * it is left out (a list holds null in its place), as JSON.stringify writes them.
 */
static json_t *tmpl_json(const json_t *tmpl, const json_t *vars, uint64_t *rng, bool undef)
{
    const char *key;
    json_t *child, *out;
    size_t i;

    if (json_is_string(tmpl)) {
        const char *s = json_string_value(tmpl);
        size_t n = json_string_length(tmpl);
        char name[MAX_NAME];
        struct buf b = BUF_INIT;

        if (load_tmpl_is_static(s))
            return json_incref((json_t *)tmpl);
        /* "{{ n }}" alone keeps the variable's type ($loopCount's and $loopElement's too);
         * $env.NAME and $processEnvironment.NAME are the environment's text, as Artillery
         * reads them from process.env; the functions give text */
        if (n > 4 && strncmp(s, "{{", 2) == 0 && strcmp(s + n - 2, "}}") == 0 &&
            !strstr(s + 2, "{{") && strstr(s + 2, "}}") == s + n - 2 &&
            take_name(s + 2, s + n - 2, name) && !strchr(name, '(')) {
            const char *env = env_name(name);
            const json_t *v = env ? NULL : lookup(vars, name);

            if (env && (env = getenv(env)) && (out = json_string(env)))
                return out;
            if (v)
                return json_deep_copy(v);
            if (undef && !env) /* not set (nor in the environment): undefined, $nope too */
                return NULL;
        }
        load_tmpl_render(&b, s, vars, rng);
        out = json_stringn(b.data ? b.data : "", b.len);
        buf_free(&b);
        return out ? out : json_string("");
    }
    if (json_is_object(tmpl)) {
        out = json_object();
        json_object_foreach((json_t *)tmpl, key, child)
        {
            json_t *v = tmpl_json(child, vars, rng, undef);

            if (v)
                json_object_set_new(out, key, v);
        }
        return out;
    }
    if (json_is_array(tmpl)) {
        out = json_array();
        json_array_foreach(tmpl, i, child)
        {
            json_t *v = tmpl_json(child, vars, rng, undef);

            json_array_append_new(out, v ? v : json_null());
        }
        return out;
    }
    return json_deep_copy(tmpl);
}

json_t *load_tmpl_json(const json_t *tmpl, const json_t *vars, uint64_t *rng)
{
    return tmpl_json(tmpl, vars, rng, false);
}

json_t *load_tmpl_json_value(const json_t *tmpl, const json_t *vars, uint64_t *rng)
{
    return tmpl_json(tmpl, vars, rng, true);
}

json_t *load_tmpl_json_body(const json_t *tmpl, const json_t *vars, uint64_t *rng)
{
    json_t *v = tmpl_json(tmpl, vars, rng, true);

    return v ? v : json_string(""); /* the whole body unset: as load_tmpl_json renders it */
}

bool load_tmpl_json_is_static(const json_t *v)
{
    const char *key;
    json_t *child;
    size_t i;

    if (json_is_string(v))
        return load_tmpl_is_static(json_string_value(v));
    if (json_is_object(v)) {
        json_object_foreach((json_t *)v, key,
                            child) if (!load_tmpl_json_is_static(child)) return false;
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, child) if (!load_tmpl_json_is_static(child)) return false;
    }
    return true;
}

json_t *load_vars_new(const json_t *variables, uint64_t *rng)
{
    json_t *vars = json_object(), *v;
    const char *key;

    json_object_foreach((json_t *)variables, key, v)
    {
        if (json_is_array(v) && json_array_size(v) > 0)
            v = json_array_get(v, load_rand(rng) % json_array_size(v));
        json_object_set(vars, key, v);
    }
    return vars;
}
