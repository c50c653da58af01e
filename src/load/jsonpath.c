/* JSONPath as jsonpath-plus evaluates it, the subset scripts use (see jsonpath.h). */
#include "load/jsonpath.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"

#define MAX_STEP   256 /* bytes of one member name */
#define MAX_DEPTH  64  /* nesting followed by "..", so a deep document costs bounded stack */
#define MAX_RESULT 4096
/* values visited per evaluation: "$..a..b" revisits every subtree, so a path and a body can
 * make each other's size multiply; past this it finds no more */
#define MAX_VISITS (1u << 20)

/* The step of path at *p: its text (a name, "*", "..", a bracket's inside) into step and
 * whether it was quoted; *p moves past it. False at the end; -1 in *bad when malformed. */
static bool next_step(const char **p, char *step, bool *quoted, bool *bracket, int *bad)
{
    const char *s = *p;
    size_t n;

    *quoted = *bracket = false;
    if (!*s)
        return false;
    if (s[0] == '.' && s[1] == '.') {
        memcpy(step, "..", 3);
        *p = s + 2;
        return true;
    }
    if (*s == '.') {
        n = strcspn(++s, ".[");
        if (n == 0 || n >= MAX_STEP)
            return *bad = -1, false;
        memcpy(step, s, n);
        step[n] = '\0';
        *p = s + n;
        return true;
    }
    if (*s == '[') {
        const char *end = ++s;
        char quote = '\0';

        *bracket = true;
        for (; *end && (quote || *end != ']'); end++) /* to the "]" outside quotes */
            quote = quote ? (*end == quote ? '\0' : quote)
                          : (*end == '\'' || *end == '"' ? *end : '\0');
        n = (size_t)(end - s);
        if (!*end || n == 0 || n >= MAX_STEP)
            return *bad = -1, false;
        *p = end + 1;
        /* one quoted name: its text, dots and all */
        if (n >= 2 && (s[0] == '\'' || s[0] == '"') && s[n - 1] == s[0] &&
            !memchr(s + 1, s[0], n - 2)) {
            memcpy(step, s + 1, n - 2);
            step[n - 2] = '\0';
            *quoted = true;
            return true;
        }
        memcpy(step, s, n);
        step[n] = '\0';
        return true;
    }
    /* after "..": a bare name */
    n = strcspn(s, ".[");
    if (n >= MAX_STEP)
        return *bad = -1, false;
    memcpy(step, s, n);
    step[n] = '\0';
    *p = s + n;
    return true;
}

static bool is_slice(const char *s)
{
    int colons = 0;

    for (; *s; s++) {
        if (*s == ':')
            colons++;
        else if (!isdigit((unsigned char)*s) && *s != '-')
            return false;
    }
    return colons == 1 || colons == 2;
}

int load_jsonpath_check(const char *path, struct err *e)
{
    char step[MAX_STEP];
    bool quoted, bracket;
    int bad = 0;
    const char *p = path;

    if (*p++ != '$')
        return err_set(e, "a JSONPath starts with \"$\"");
    while (next_step(&p, step, &quoted, &bracket, &bad)) {
        if (quoted)
            continue;
        if (step[0] == '?' || step[0] == '(')
            return err_set(e, "filters and expressions such as [%s] are not supported", step);
        if (strpbrk(step, "^~@`"))
            return err_set(e, "\"%s\": jsonpath-plus's ^ ~ @type() and ` are not supported", step);
    }
    if (bad)
        return err_set(e,
                       "\"%s\" is not a JSONPath this reads ($.a.b, $['a b'], $.items[0], "
                       "$.items[*].id, $..id, [0,1], [1:3])",
                       path);
    return 0;
}

struct walk {
    json_t *out;
    int depth;
    unsigned visits;
};

static void trace(struct walk *w, const json_t *v, const char *rest);

/* v's member or element named name (a list's digits, or its length), as hasOwn finds it. */
static void follow(struct walk *w, const json_t *v, const char *name, const char *rest)
{
    char *end;
    long i;

    if (json_is_object(v)) {
        const json_t *m = json_object_get(v, name);

        if (m)
            trace(w, m, rest);
        return;
    }
    if (!json_is_array(v))
        return;
    if (strcmp(name, "length") == 0) {
        json_t *len = json_integer((json_int_t)json_array_size(v));

        trace(w, len, rest);
        json_decref(len);
        return;
    }
    i = strtol(name, &end, 10);
    if (!*name || *end || (name[0] == '0' && name[1]))
        return;
    if (i < 0) /* jsonpath-plus finds nothing; the last here, as mesh load has always read it */
        i += (long)json_array_size(v);
    if (i >= 0 && (size_t)i < json_array_size(v))
        trace(w, json_array_get(v, (size_t)i), rest);
}

static void each_child(struct walk *w, const json_t *v, const char *rest)
{
    const char *k;
    json_t *m;
    size_t i;

    if (json_is_array(v)) {
        json_array_foreach(v, i, m) trace(w, m, rest);
    } else if (json_is_object(v)) {
        json_object_foreach((json_t *)v, k, m) trace(w, m, rest);
    }
}

/* [start:end:step], as jsonpath-plus's _slice takes it: a list only. */
static void slice(struct walk *w, const json_t *v, const char *spec, const char *rest)
{
    long len = (long)json_array_size(v), start, end, step;
    const char *c1 = strchr(spec, ':'), *c2 = strchr(c1 + 1, ':');

    if (!json_is_array(v))
        return;
    start = strtol(spec, NULL, 10);
    end = c1[1] && c1[1] != ':' ? strtol(c1 + 1, NULL, 10) : len;
    step = c2 && c2[1] ? strtol(c2 + 1, NULL, 10) : 1;
    if (step <= 0)
        step = 1; /* (Number(x) || 1) */
    start = start < 0 ? (start + len < 0 ? 0 : start + len) : (start > len ? len : start);
    end = end < 0 ? (end + len < 0 ? 0 : end + len) : (end > len ? len : end);
    for (long i = start; i < end; i += step)
        trace(w, json_array_get(v, (size_t)i), rest);
}

static void trace(struct walk *w, const json_t *v, const char *rest)
{
    char step[MAX_STEP];
    bool quoted, bracket;
    int bad = 0;
    const char *p = rest;

    if (json_array_size(w->out) >= MAX_RESULT || w->depth > MAX_DEPTH || ++w->visits > MAX_VISITS)
        return;
    if (!next_step(&p, step, &quoted, &bracket, &bad)) {
        if (!bad)
            json_array_append(w->out, (json_t *)v);
        return;
    }
    w->depth++;
    if (quoted) {
        follow(w, v, step, p);
    } else if (strcmp(step, "*") == 0) {
        each_child(w, v, p);
    } else if (strcmp(step, "..") == 0) {
        /* the rest from v itself, then ".." again from each object or list under it */
        const char *k;
        json_t *m;
        size_t i;

        trace(w, v, p);
        if (json_is_array(v)) {
            json_array_foreach(v, i, m) if (json_is_array(m) || json_is_object(m))
                trace(w, m, rest);
        } else if (json_is_object(v)) {
            json_object_foreach((json_t *)v, k, m) if (json_is_array(m) || json_is_object(m))
                trace(w, m, rest);
        }
    } else if (bracket && is_slice(step)) {
        slice(w, v, step, p);
    } else if (bracket && strchr(step, ',')) {
        char *parts = xstrdup(step), *save = NULL;

        for (char *part = strtok_r(parts, ",", &save); part; part = strtok_r(NULL, ",", &save)) {
            size_t n = strlen(part);

            if (n >= 2 && (part[0] == '\'' || part[0] == '"') && part[n - 1] == part[0]) {
                part[n - 1] = '\0';
                part++;
            }
            follow(w, v, part, p);
        }
        free(parts);
    } else if (step[0] != '?' && step[0] != '(') {
        follow(w, v, step, p);
    }
    w->depth--;
}

void load_jsonpath_all(const json_t *doc, const char *path, json_t *out)
{
    struct walk w = {.out = out};

    if (path[0] == '$' && load_jsonpath_check(path, NULL) == 0)
        trace(&w, doc, path + 1);
}
