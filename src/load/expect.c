/*
 * Artillery's expect plugin, built in: a request's checks run on the response head and body,
 * and the plugin's per-request lines are printed in its output format. Checks and lines follow
 * artillery-plugin-expect 2.0.34: statusCode and notStatusCode (one or any of a list),
 * contentType (the header's value, case aside, or "json"), hasHeader, cdnHit, hasProperty and
 * notHasProperty (a lodash path into a JSON body), equals (templates that must render alike)
 * and matchesRegexp (over the body), jmespath and jpath (a JMESPath expression over a JSON body
 * whose value is truthy). Every check's value but jmespath's may hold templates.
 */
#include "load/expect.h"

#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/alloc.h"
#include "lib/bug.h"
#include "lib/json.h"
#include "load/capture.h"
#include "load/jmespath.h"
#include "load/template.h"

struct str load_expect_path(const char *wire, size_t len)
{
    const char *sp = memchr(wire, ' ', len), *end;

    if (!sp)
        return (struct str){"", 0};
    end = memchr(sp + 1, ' ', len - (size_t)(sp + 1 - wire));
    return (struct str){sp + 1, end ? (size_t)(end - sp - 1) : 0};
}

static bool has_json_type(const struct http_header *hd)
{
    static const char *const types[] = {"application/json", "application/problem+json",
                                        "application/ld+json"};

    for (size_t i = 0; hd && i < sizeof(types) / sizeof(types[0]); i++)
        if (memmem(hd->value.p, hd->value.n, types[i], strlen(types[i])))
            return true;
    return false;
}

/* A check's text with its templates rendered into tmp, or the text itself when it has none. */
static const char *rendered(const char *text, const json_t *vars, uint64_t *rng, struct buf *tmp)
{
    if (load_tmpl_is_static(text))
        return text;
    buf_reset(tmp);
    load_tmpl_render(tmp, text, vars, rng);
    return tmp->data ? tmp->data : "";
}

/* statusCode and notStatusCode: whether status is among the expected codes (Number(x) as the
 * plugin compares them, so "{{ code }}" rendering "201" is 201), and those codes for the line. */
static bool status_among(const struct load_expect *x, int status, const json_t *vars, uint64_t *rng,
                         json_t **expected)
{
    struct buf tmp = BUF_INIT;
    bool found = false;

    if (x->text) {
        const char *s = rendered(x->text, vars, rng, &tmp);
        char *end;
        long code = strtol(s, &end, 10);

        found = end != s && *end == '\0' && code == status;
        *expected = json_string(s);
        buf_free(&tmp);
        return found;
    }
    *expected = x->n_status == 1 ? json_integer(x->status[0]) : json_array();
    for (size_t j = 0; j < x->n_status; j++) {
        found |= x->status[j] == status;
        if (x->n_status > 1)
            json_array_append_new(*expected, json_integer(x->status[j]));
    }
    return found;
}

/* cdnHit: the cache status headers of CloudFlare, CloudFront, Fastly and Vercel. */
static bool cdn_hit(const struct load_expect *x, const struct http_response_head *h, json_t **got)
{
    static const char *const names[] = {"cf-cache-status", "x-cache", "x-vercel-cache"};
    bool ok = false;

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const struct http_header *hd = http_find_header(h->headers, h->num_headers, names[i]);
        const char *want[] = {x->hit ? "hit" : "miss", x->hit ? "stale" : NULL};

        for (size_t j = 0; hd && j < 2 && want[j]; j++)
            if (hd->value.n >= strlen(want[j]) &&
                strncasecmp(hd->value.p, want[j], strlen(want[j])) == 0) {
                json_decref(*got);
                *got = json_sprintf("%s is %.*s", names[i], (int)hd->value.n, hd->value.p);
                ok = true;
            }
    }
    if (!*got)
        *got = json_string("cache status header not found");
    return ok;
}

/* headerEquals: [NAME, VALUE], the header's value as the plugin compares it (as text). */
static bool header_equals(const struct load_expect *x, const struct http_response_head *h,
                          const json_t *vars, uint64_t *rng, json_t **expected, json_t **got)
{
    struct buf tmp_name = BUF_INIT, tmp_value = BUF_INIT;
    const char *name = rendered(x->values[0], vars, rng, &tmp_name);
    const char *value = rendered(x->values[1], vars, rng, &tmp_value);
    const struct http_header *hd = http_find_header(h->headers, h->num_headers, name);
    bool ok = false;

    if (hd) {
        ok = hd->value.n == strlen(value) && memcmp(hd->value.p, value, hd->value.n) == 0;
        *expected = json_string(value);
        *got = json_stringn_nocheck(hd->value.p, hd->value.n);
    } else {
        *expected = json_sprintf("response to have %s header", name);
        *got = json_sprintf("response has no %s header", name);
    }
    buf_free(&tmp_name);
    buf_free(&tmp_value);
    return ok;
}

/* One check on the head: its verdict, and for the printed lines what was expected and what
 * came. */
static bool check_head(const struct load_expect *x, const struct http_response_head *h,
                       const json_t *vars, uint64_t *rng, json_t **expected, json_t **got)
{
    const struct http_header *hd;
    struct buf tmp = BUF_INIT;
    const char *text = x->text ? rendered(x->text, vars, rng, &tmp) : "";
    bool ok = false;

    switch (x->kind) {
    case LOAD_EXPECT_STATUS:
    case LOAD_EXPECT_NOT_STATUS:
        ok = status_among(x, h->status, vars, rng, expected);
        if (x->kind == LOAD_EXPECT_NOT_STATUS) {
            json_t *codes = *expected;
            struct buf line = BUF_INIT;

            ok = !ok;
            buf_append_cstr(&line, "Status code different than ");
            if (json_is_array(codes)) { /* as JavaScript writes an array in a template string */
                size_t i;
                json_t *one;

                json_array_foreach(codes, i, one)
                    buf_printf(&line, "%s%lld", i ? "," : "", (long long)json_integer_value(one));
            } else if (json_is_integer(codes)) {
                buf_printf(&line, "%lld", (long long)json_integer_value(codes));
            } else {
                buf_append_cstr(&line, json_string_value(codes));
            }
            json_decref(codes);
            *expected = json_stringn_nocheck(line.data, line.len);
            buf_free(&line);
        }
        *got = json_integer(h->status);
        break;
    case LOAD_EXPECT_CONTENT_TYPE:
        hd = http_find_header(h->headers, h->num_headers, "Content-Type");
        *expected = json_string(text);
        if (strcmp(text, "json") == 0) {
            ok = has_json_type(hd);
            *got = ok ? json_string("json") : json_string("content-type is not JSON");
        } else {
            ok = hd && hd->value.n == strlen(text) &&
                 strncasecmp(hd->value.p, text, hd->value.n) == 0;
            *got = hd ? json_stringn_nocheck(hd->value.p, hd->value.n)
                      : json_string("content-type header not set");
        }
        break;
    case LOAD_EXPECT_HAS_HEADER:
        ok = http_find_header(h->headers, h->num_headers, text) != NULL;
        *expected = json_string(text);
        *got = ok ? json_string(text) : json_sprintf("response has no %s header", text);
        break;
    case LOAD_EXPECT_CDN_HIT:
        *expected = json_string(x->hit ? "a cache header indicating a cache hit"
                                       : "a cache header indicating a cache miss");
        ok = cdn_hit(x, h, got);
        break;
    case LOAD_EXPECT_HEADER_EQUALS:
        ok = header_equals(x, h, vars, rng, expected, got);
        break;
    default:
        MESH_BUG_ON(true); /* a body check: load_expect_body runs it */
        break;
    }
    buf_free(&tmp);
    return ok;
}

/* header_name: headerEquals's, rendered (else NULL). */
static void add_result(struct load_expect_run *run, size_t i, const struct load_expect *x, bool ok,
                       json_t *expected, json_t *got, const char *header_name)
{
    if (!ok)
        run->failed |= 1u << i;
    json_array_set_new(run->results, i,
                       json_pack("{s:b,s:o,s:s,s:o}", "ok", ok, "expected", expected, "type",
                                 load_expect_names[x->kind], "got", got));
    if (x->kind == LOAD_EXPECT_HEADER_EQUALS) /* the plugin names it by its header */
        json_object_set_new(json_array_get(run->results, i), "type",
                            json_sprintf("header %s values equals", header_name));
}

void load_expect_head(struct load_expect_run *run, const struct load_request *r,
                      const struct http_response_head *h, const json_t *vars, uint64_t *rng)
{
    load_expect_run_clear(run);
    run->results = json_array();
    run->json_body = has_json_type(http_find_header(h->headers, h->num_headers, "Content-Type"));
    MESH_BUG_ON(r->n_expects > LOAD_MAX_EXPECTS);
    for (size_t i = 0; i < r->n_expects; i++) {
        const struct load_expect *x = &r->expects[i];
        json_t *expected = NULL, *got = NULL;
        bool ok;

        json_array_append_new(run->results, json_null());
        if (x->kind >= LOAD_EXPECT_FIRST_BODY)
            continue;
        struct buf tmp = BUF_INIT;

        ok = check_head(x, h, vars, rng, &expected, &got);
        add_result(run, i, x, ok, expected, got,
                   x->kind == LOAD_EXPECT_HEADER_EQUALS ? rendered(x->values[0], vars, rng, &tmp)
                                                        : NULL);
        buf_free(&tmp);
    }
}

/* lodash's _.has(body, path): the whole path as a key first, then "a.b[0].c" step by step. */
static bool has_property(const json_t *body, const char *path)
{
    struct buf dotted = BUF_INIT;
    bool found;

    if (json_is_object(body) && json_object_get(body, path))
        return true;
    for (const char *p = path; *p; p++) {
        if (*p == '[') {
            if (dotted.len)
                buf_append_cstr(&dotted, ".");
            continue;
        }
        if (*p != ']')
            buf_append(&dotted, p, 1);
    }
    found = dotted.len && load_vars_get(body, dotted.data) != NULL;
    buf_free(&dotted);
    return found;
}

/* jmespath, jpath: the expression's value over a JSON body, true as JavaScript takes it (so an
 * empty list is), as the plugin takes jmespath.search's result. */
static bool check_jmespath(const struct load_expect *x, const json_t *doc, json_t **got)
{
    struct err e = {""};
    json_t *v;
    bool ok;

    if (!json_is_object(doc) && !json_is_array(doc)) {
        *got = json_string("response body is not an object");
        return false;
    }
    if (!(v = load_jmes_search(x->jmes, doc, &e))) { /* jmespath.js throws: not ok either */
        *got = json_string(e.msg);
        return false;
    }
    ok = load_jmes_js_truthy(v);
    json_decref(v);
    *got = json_string(x->text);
    return ok;
}

static bool check_body(const struct load_expect *x, const json_t *doc, const struct buf *body,
                       const json_t *vars, uint64_t *rng, json_t **expected, json_t **got)
{
    struct buf tmp = BUF_INIT, all = BUF_INIT;
    const char *text = x->text ? rendered(x->text, vars, rng, &tmp) : "";
    bool ok = false;

    switch (x->kind) {
    case LOAD_EXPECT_HAS_PROPERTY:
    case LOAD_EXPECT_NOT_HAS_PROPERTY:
        *expected = json_string(text);
        if (!json_is_object(doc) && !json_is_array(doc)) {
            *got = json_string("response body is not an object");
            break;
        }
        ok = has_property(doc, text) == (x->kind == LOAD_EXPECT_HAS_PROPERTY);
        *got = ok ? json_string(text)
                  : json_sprintf("response body %s %s property",
                                 x->kind == LOAD_EXPECT_HAS_PROPERTY ? "has no" : "has", text);
        break;
    case LOAD_EXPECT_EQUALS: {
        /* every value rendered to text: equal when they are all the first one */
        struct buf one = BUF_INIT;
        size_t first_len = 0;

        ok = true;
        for (size_t i = 0; i < x->n_values; i++) {
            if (i)
                buf_append_cstr(&all, ", ");
            buf_reset(&one);
            load_tmpl_render(&one, x->values[i], vars, rng);
            if (i == 0)
                first_len = one.len;
            else
                ok &=
                    one.len == first_len && (!one.len || memcmp(one.data, all.data, one.len) == 0);
            buf_append(&all, one.data, one.len);
        }
        buf_free(&one);
        *expected = json_string("all values to be equal");
        *got = json_stringn(all.data ? all.data : "", all.len);
        break;
    }
    case LOAD_EXPECT_MATCHES_REGEXP:
        *expected = json_true();
        if (x->re) {
            ok = load_regexp_extract(x->re, 0, false, body->data ? body->data : "", body->len,
                                     &all) != LOAD_RX_NONE;
        } else {
            regex_t re;
            int group;
            bool named;
            struct err e = {""};

            if (load_regexp_compile(text, NULL, NULL, &re, &group, &named, &e) < 0) {
                *got = json_string(e.msg);
                break;
            }
            ok = load_regexp_extract(&re, 0, false, body->data ? body->data : "", body->len,
                                     &all) != LOAD_RX_NONE;
            regfree(&re);
        }
        *got = json_boolean(ok);
        break;
    case LOAD_EXPECT_JMESPATH:
    case LOAD_EXPECT_JPATH:
        ok = check_jmespath(x, doc, got);
        *expected = json_string(x->description ? x->description : x->text);
        break;
    default:
        MESH_BUG_ON(true); /* a head check: load_expect_head ran it */
        break;
    }
    buf_free(&tmp);
    buf_free(&all);
    return ok;
}

void load_expect_body(struct load_expect_run *run, const struct load_request *r,
                      const struct buf *body, const json_t *vars, uint64_t *rng)
{
    json_t *doc = NULL;

    if (MESH_BUG_ON(!run->results))
        return;
    if (run->json_body) /* a body that does not parse is no object, as for the plugin */
        doc = json_loadb(body->data ? body->data : "", body->len, JSON_DECODE_ANY, NULL);
    for (size_t i = 0; i < r->n_expects; i++) {
        const struct load_expect *x = &r->expects[i];
        json_t *expected = NULL, *got = NULL;
        bool ok;

        if (x->kind < LOAD_EXPECT_FIRST_BODY)
            continue;
        ok = check_body(x, doc, body, vars, rng, &expected, &got);
        add_result(run, i, x, ok, expected, got, NULL);
    }
    json_decref(doc);
}

void load_expect_run_clear(struct load_expect_run *run)
{
    json_decref(run->results);
    *run = (struct load_expect_run){0};
}

static void text_of(struct buf *out, const json_t *v)
{
    if (json_is_string(v)) {
        buf_append_cstr(out, json_string_value(v));
        return;
    }
    if (json_is_array(v)) { /* as JavaScript writes an array in a template string */
        size_t i;
        json_t *one;

        json_array_foreach(v, i, one)
        {
            if (i)
                buf_append_cstr(out, ",");
            text_of(out, one);
        }
        return;
    }
    json_append(out, v, false);
}

void load_expect_print(const struct load_script *s, const struct load_request *r,
                       const struct load_expect_run *run, const char *wire, size_t wire_len,
                       FILE *out)
{
    struct str path = load_expect_path(wire, wire_len);
    struct buf text = BUF_INIT;
    bool print;

    print = r->n_expects > 0 && run->results &&
            (s->expect_format == LOAD_EXPECT_PRETTY || s->expect_format == LOAD_EXPECT_JSON ||
             (s->expect_format == LOAD_EXPECT_PRETTY_ERROR && run->failed));
    if (print && s->expect_format == LOAD_EXPECT_JSON) {
        json_t *line = json_pack("{s:s?,s:s#,s:O}", "name", r->name, "url", path.p, (int)path.n,
                                 "results", run->results);

        json_append(&text, line, false);
        buf_append_cstr(&text, "\n");
        json_decref(line);
    } else if (print) {
        size_t i;
        json_t *res;

        buf_printf(&text, "* %s %.*s %s%s\n\n", r->method, (int)path.n, path.p, r->name ? "- " : "",
                   r->name ? r->name : "");
        json_array_foreach(run->results, i, res)
        {
            bool ok = json_is_true(json_object_get(res, "ok"));

            buf_printf(&text, "  %s %s ", ok ? "ok" : "not ok",
                       json_string_value(json_object_get(res, "type")));
            text_of(&text, json_object_get(res, "got"));
            buf_append_cstr(&text, " \n");
            if (ok)
                continue;
            buf_append_cstr(&text, "  expected: ");
            text_of(&text, json_object_get(res, "expected"));
            buf_append_cstr(&text, "\n       got: ");
            text_of(&text, json_object_get(res, "got"));
            buf_append_cstr(&text, "\n");
        }
    }
    if (text.len) /* one write, so lines from several workers do not interleave */
        fwrite(text.data, 1, text.len, out);
    buf_free(&text);
}
