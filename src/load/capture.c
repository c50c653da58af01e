/* Captures from a response (see capture.h). */
#include "load/capture.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/re.h"
#include "load/html_capture.h"
#include "load/jsonpath.h"
#include "load/node_headers.h"
#include "load/template.h"

#define MAX_GROUPS 64 /* JavaScript groups a pattern may have */

struct js_groups {
    int posix[MAX_GROUPS + 1]; /* JavaScript group k is POSIX submatch posix[k] */
    char *names[MAX_GROUPS + 1];
    int n;
};

/* Copies a bracket expression [...] from *p to out; *p ends past it. */
static void copy_bracket(const char **p, struct buf *out)
{
    const char *s = *p;

    buf_append(out, s++, 1);
    if (*s == '^')
        buf_append(out, s++, 1);
    if (*s == ']')
        buf_append(out, s++, 1);
    while (*s && *s != ']') {
        /* JavaScript escapes inside brackets; POSIX takes a backslash literally there */
        if (*s == '\\' && s[1]) {
            s++;
            if (*s == 'd')
                buf_append_cstr(out, "0-9");
            else if (*s == 'w')
                buf_append_cstr(out, "A-Za-z0-9_");
            else if (*s == 's')
                buf_append_cstr(out, " \t\r\n\f\v");
            else if (*s == 'n' || *s == 't' || *s == 'r')
                buf_append(out, *s == 'n' ? "\n" : *s == 't' ? "\t" : "\r", 1);
            else if (*s == '\\' || *s == ']')
                buf_append(out, s, 1); /* a POSIX list takes ']' first only: good enough */
            else
                buf_append(out, s, 1);
            s++;
            continue;
        }
        buf_append(out, s++, 1);
    }
    if (*s == ']')
        buf_append(out, s++, 1);
    *p = s;
}

/* The pattern in POSIX form, with JavaScript's groups mapped to submatches. */
static int translate(const char *pattern, struct buf *out, struct js_groups *g, struct err *e)
{
    int posix = 0;

    for (const char *p = pattern; *p;) {
        if (*p == '\\' && p[1]) {
            if (p[1] >= '1' && p[1] <= '9')
                return err_set(e, "backreferences such as \\%c are not supported", p[1]);
            buf_append(out, p, 2);
            p += 2;
        } else if (*p == '[') {
            copy_bracket(&p, out);
        } else if (*p == '(') {
            bool capture = true;

            posix++;
            if (p[1] == '?') {
                if (p[2] == ':') {
                    capture = false;
                    p += 2;
                } else if (p[2] == '<' && p[3] != '=' && p[3] != '!') {
                    const char *end = strchr(p + 3, '>');

                    if (!end)
                        return err_set(e, "a group name without \">\"");
                    if (g->n < MAX_GROUPS)
                        g->names[g->n + 1] = xstrndup(p + 3, (size_t)(end - p - 3));
                    p = end;
                } else {
                    return err_set(e, "lookahead and lookbehind are not supported");
                }
            }
            if (capture && g->n == MAX_GROUPS)
                return err_set(e, "more than %d groups", MAX_GROUPS);
            if (capture)
                g->posix[++g->n] = posix;
            buf_append(out, "(", 1);
            p++;
        } else if ((*p == '*' || *p == '+' || *p == '?' || *p == '}') && p[1] == '?') {
            return err_set(e,
                           "lazy quantifiers such as %c? are not supported (try [^\"]* "
                           "instead of .*? before a \")",
                           *p);
        } else {
            buf_append(out, p++, 1);
        }
    }
    return 0;
}

static void groups_free(struct js_groups *g)
{
    for (int i = 0; i <= g->n; i++)
        free(g->names[i]);
}

/* The JavaScript group group names: its index, or -1. */
static int group_of(const struct js_groups *g, const json_t *group, bool *named, struct err *e)
{
    const char *s = json_string_value(group);
    char *end;
    long k;

    *named = false;
    if (!group)
        return 0;
    if (json_is_integer(group)) {
        k = (long)json_integer_value(group);
    } else if (s && (k = strtol(s, &end, 10), *s && *end == '\0')) {
        /* "1": match["1"], as JavaScript indexes with the string */
    } else if (s) {
        for (int i = 1; i <= g->n; i++) {
            if (g->names[i] && strcmp(g->names[i], s) == 0) {
                *named = true;
                return g->posix[i];
            }
        }
        return err_set(e, "group \"%s\": no group of that name", s);
    } else {
        return err_set(e, "group: want a number or a group's name");
    }
    if (k < 0 || k > g->n)
        return err_set(e, "group %ld: the pattern has %d", k, g->n);
    return k == 0 ? 0 : g->posix[k];
}

int load_regexp_compile(const char *pattern, const char *flags, const json_t *group, regex_t *re,
                        int *group_index, bool *named, struct err *e)
{
    struct js_groups g = {.n = 0};
    struct buf posix = BUF_INIT;
    int cflags = 0, rc;

    for (const char *f = flags ? flags : ""; *f; f++) {
        if (*f == 'i')
            cflags |= REG_ICASE;
        else if (*f == 'm')
            cflags |= REG_NEWLINE;
        else if (!strchr("gsu", *f)) {
            rc = err_set(e, "flags: \"%c\" is not supported (i, m, g, s, u are)", *f);
            goto out;
        }
    }
    if ((rc = translate(pattern, &posix, &g, e)) < 0)
        goto out;
    if ((rc = group_of(&g, group, named, e)) < 0)
        goto out;
    *group_index = rc;
    rc = re_compile(re, posix.data ? posix.data : "", cflags, e);
out:
    groups_free(&g);
    buf_free(&posix);
    return rc < 0 ? -EINVAL : 0;
}

enum load_rx_found load_regexp_extract(const regex_t *re, int group, bool named, const char *s,
                                       size_t len, struct buf *out)
{
    size_t n = re->re_nsub + 1;
    regmatch_t *m = xcalloc(n, sizeof(*m));
    enum load_rx_found found = LOAD_RX_NONE;

    m[0].rm_so = 0;
    m[0].rm_eo = (regoff_t)len;
    if (regexec(re, s, n, m, REG_STARTEND) == 0) {
        /* Artillery: a named group's text as it is; a numbered one when it matched something,
         * else the whole match */
        int k = group > 0 && (named || m[group].rm_eo > m[group].rm_so) ? group : 0;

        found = m[k].rm_so >= 0 ? LOAD_RX_TEXT : LOAD_RX_UNDEFINED;
        if (found == LOAD_RX_TEXT)
            buf_append(out, s + m[k].rm_so, (size_t)(m[k].rm_eo - m[k].rm_so));
    }
    free(m);
    return found;
}

/* found holds what capture i found under its index, as a match has no name. */
static void found_set(json_t *found, size_t i, json_t *v)
{
    char key[24];

    snprintf(key, sizeof(key), "%zu", i);
    json_object_set_new(found, key, v);
}

static const json_t *found_get(const json_t *found, size_t i)
{
    char key[24];

    snprintf(key, sizeof(key), "%zu", i);
    return json_object_get(found, key);
}

/* c's expression: as written, or its templates rendered from vars into tmp (reset first). */
static const char *expr_of(const struct load_capture *c, const json_t *vars, uint64_t *rng,
                           struct buf *tmp)
{
    if (!c->templated)
        return c->expr;
    buf_reset(tmp);
    load_tmpl_render(tmp, c->expr, vars, rng);
    buf_append(tmp, "", 1);
    return tmp->data;
}

void load_captures_head(const struct load_request *r, const struct http_response_head *h,
                        json_t **headers, const json_t *vars, uint64_t *rng, json_t *found)
{
    struct buf tmp = BUF_INIT;
    const json_t *v;
    char *name;

    for (size_t i = 0; i < r->n_captures; i++) {
        const struct load_capture *c = &r->captures[i];

        if (c->kind != LOAD_CAPTURE_HEADER)
            continue;
        if (!*headers)
            *headers = load_node_headers(h);
        /* extractHeader: headers[name] || "", from Node's headers (a repeated Set-Cookie is a
         * list); the name in any case, where Artillery finds lower-case names only */
        name = xstrdup(expr_of(c, vars, rng, &tmp));
        for (char *p = name; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        v = json_object_get(*headers, name);
        free(name);
        found_set(found, i, v ? json_incref((json_t *)v) : json_string(""));
    }
    buf_free(&tmp);
}

/* What JSON capture c (number i) finds in doc at path: of several values, one at random, as
 * extractJSONPath picks it. */
static void capture_json(const json_t *doc, const char *path, uint64_t *rng, json_t *found,
                         size_t i)
{
    json_t *all = json_array();
    size_t n;

    load_jsonpath_all(doc, path, all);
    n = json_array_size(all);
    if (n)
        found_set(found, i, json_incref(json_array_get(all, n > 1 ? load_rand(rng) % n : 0)));
    json_decref(all);
}

/* What a templated regexp capture finds in text[len] with pattern (rendered), into m: its
 * flags and group were checked only for their templates, so one that does not compile finds
 * nothing. */
static enum load_rx_found capture_regexp(const struct load_capture *c, const char *pattern,
                                         const char *text, size_t len, struct buf *m)
{
    regex_t re;
    int group;
    bool named;
    enum load_rx_found ok;

    if (load_regexp_compile(pattern, c->flags, c->group_spec, &re, &group, &named, NULL) < 0)
        return LOAD_RX_NONE;
    ok = load_regexp_extract(&re, group, named, text, len, m);
    regfree(&re);
    return ok;
}

/* What selector capture c (expr its selector, rendered) finds in the body text[len], parsed
 * into *html the first time. */
static json_t *capture_selector(const struct load_capture *c, const char *expr, const char *text,
                                size_t len, struct load_html **html, bool *parsed, uint64_t *rng)
{
    struct load_sel *sel = c->sel;
    json_t *v = NULL;

    if (!*parsed)
        *html = load_html_parse(text, len);
    *parsed = true;
    if (!*html)
        return NULL;
    /* a template, rendered for this response: one that does not compile finds nothing, where
     * cheerio would throw */
    if (!sel)
        sel = load_sel_compile(expr, NULL);
    if (sel)
        v = load_html_capture(*html, sel, c, rng);
    if (sel != c->sel)
        load_sel_free(sel);
    return v;
}

void load_captures_body(const struct load_request *r, const struct buf *body, const json_t *vars,
                        uint64_t *rng, json_t *found)
{
    const char *text = body->data ? body->data : "", *expr;
    struct load_html *html = NULL;
    struct buf tmp = BUF_INIT;
    json_t *doc = NULL, *v_new;
    bool parsed = false, html_parsed = false;

    for (size_t i = 0; i < r->n_captures; i++) {
        const struct load_capture *c = &r->captures[i];

        if (c->kind == LOAD_CAPTURE_HEADER)
            continue;
        expr = expr_of(c, vars, rng, &tmp);
        if (c->kind == LOAD_CAPTURE_JSON) {
            if (!parsed)
                doc = json_loadb(text, body->len, JSON_DECODE_ANY, NULL);
            parsed = true;
            /* extractJSONPath: "" from a body that is JSON but no object or list, undefined
             * from a path that finds nothing or a body that is not JSON */
            if (doc && !json_is_object(doc) && !json_is_array(doc))
                found_set(found, i, json_string(""));
            else if (doc)
                capture_json(doc, expr, rng, found, i);
        } else if (c->kind == LOAD_CAPTURE_REGEXP) {
            struct buf m = BUF_INIT;
            enum load_rx_found got =
                c->re ? load_regexp_extract(c->re, c->group, c->named, text, body->len, &m)
                      : capture_regexp(c, expr, text, body->len, &m);

            /* extractRegExp: "" without a match, undefined (nothing) from a named group that
             * took no part */
            if (got != LOAD_RX_UNDEFINED)
                found_set(found, i, json_stringn(m.data ? m.data : "", m.len));
            buf_free(&m);
        } else if (c->kind == LOAD_CAPTURE_SELECTOR &&
                   (v_new = capture_selector(c, expr, text, body->len, &html, &html_parsed, rng))) {
            found_set(found, i, v_new);
        }
    }
    buf_free(&tmp);
    json_decref(doc);
    load_html_free(html);
}

static bool missing(const json_t *v)
{
    return !v || (json_is_string(v) && json_string_length(v) == 0);
}

/* JavaScript's a === b, which a match applies: numbers by value, strings by their text, and
 * never two objects or lists (they are not the same object). */
static bool js_same(const json_t *a, const json_t *b)
{
    json_type ta = json_typeof(a), tb = json_typeof(b); /* neither is NULL */

    if ((ta == JSON_INTEGER || ta == JSON_REAL) && (tb == JSON_INTEGER || tb == JSON_REAL))
        return json_number_value(a) == json_number_value(b);
    if (ta != tb)
        return false;
    switch (ta) {
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    case JSON_TRUE:
    case JSON_FALSE:
    case JSON_NULL:
        return true;
    default:
        return false;
    }
}

/*
 * Whether match x found its value v (NULL: undefined), compared as Artillery's extracted !==
 * expected; the value, rendered, is undefined when it is only "{{ name }}" of a variable not
 * set. Undefined equals undefined only.
 */
static bool match_ok(const struct load_capture *x, const json_t *v, const json_t *vars,
                     uint64_t *rng)
{
    json_t *want = load_tmpl_json_value(x->value, vars, rng);
    bool ok = v && want ? js_same(v, want) : !v && !want;

    json_decref(want);
    return ok;
}

/* Whether capture i is the last of r's into its name: Artillery keeps a request's captures by
 * name, so a later one replaces an earlier one, failed or not. */
static bool last_of_name(const struct load_request *r, size_t i)
{
    for (size_t j = i + 1; j < r->n_captures; j++)
        if (r->captures[j].as && strcmp(r->captures[j].as, r->captures[i].as) == 0)
            return false;
    return true;
}

bool load_captures_apply(const struct load_request *r, const json_t *found, json_t *vars,
                         uint64_t *rng)
{
    for (size_t i = 0; i < r->n_captures; i++) {
        const struct load_capture *x = &r->captures[i];

        if (x->strict && (x->value ? !match_ok(x, found_get(found, i), vars, rng)
                                   : last_of_name(r, i) && missing(found_get(found, i))))
            return false;
    }
    for (size_t i = 0; i < r->n_captures; i++) {
        const struct load_capture *x = &r->captures[i];
        const json_t *v = found_get(found, i);

        if (!x->as)
            continue;
        /* engine_http's _.set(context.vars, as, value): "a.b" sets b in the object a */
        load_vars_set(vars, x->as, v ? json_incref((json_t *)v) : NULL);
    }
    return true;
}
