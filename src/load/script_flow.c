/* Checking and compiling scenarios and their flows (see script.h). */
#include <ctype.h>
#include <stdint.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/numfmt.h"
#include "lib/alloc.h"
#include "load/capture.h"
#include "load/filtrex.h"
#include "load/jmespath.h"
#include "load/jsonpath.h"
#include "load/payload.h"
#include "load/selector.h"
#include "load/script_internal.h"
#include "load/template.h"

#define MAX_LOOP_DEPTH 8

static const char *const methods[] = {"get",    "post", "put",     "patch",
                                      "delete", "head", "options", NULL};

const char *const load_expect_names[LOAD_EXPECT_KINDS] = {
    "statusCode",  "notStatusCode",  "contentType", "hasHeader",     "cdnHit",   "headerEquals",
    "hasProperty", "notHasProperty", "equals",      "matchesRegexp", "jmespath", "jpath"};

static bool in_list_flow(const char *key, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(*list, key) == 0)
            return true;
    return false;
}

static char *upper_dup(const char *s)
{
    char *u = xstrdup(s);

    for (char *p = u; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    return u;
}

/* A scalar as template text: strings as they are, numbers and bools written out. */
static char *scalar_text(const json_t *v)
{
    if (json_is_string(v))
        return xstrdup(json_string_value(v));
    if (json_is_integer(v))
        return xasprintf("%lld", (long long)json_integer_value(v));
    if (json_is_real(v)) {
        /* as Artillery (JavaScript) writes it: 0.1, not 0.10000000000000001 */
        struct buf b = BUF_INIT;
        numfmt_js(&b, json_real_value(v));
        return b.data;
    }
    if (json_is_boolean(v))
        return xstrdup(json_is_true(v) ? "true" : "false");
    return NULL;
}

/* A mapping of names to scalar templates; in_body: line breaks are fine (form fields). */
static size_t parse_kvs(struct script_ctx *c, const json_t *obj, const char *where, bool in_body,
                        struct load_kv **out)
{
    const char *key;
    json_t *v;
    size_t n = 0;

    if (!json_is_object(obj)) {
        script_diag(c, obj, NULL, SIZE_MAX, "%s: want a mapping", where);
        return 0;
    }
    *out = xcalloc(json_object_size(obj) + 1, sizeof(**out));
    json_object_foreach((json_t *)obj, key, v)
    {
        char *text = scalar_text(v);

        if (!text) {
            script_diag(c, obj, key, 0, "%s.%s: want a scalar", where, key);
            continue;
        }
        if (!script_template_ok(c, obj, key, 0, where, text) ||
            (!in_body && (strpbrk(key, "\r\n:") || strpbrk(text, "\r\n")))) {
            if (!in_body && (strpbrk(key, "\r\n:") || strpbrk(text, "\r\n")))
                script_diag(c, obj, key, 0, "%s.%s: line breaks are not allowed", where, key);
            free(text);
            continue;
        }
        (*out)[n++] = (struct load_kv){.name = xstrdup(key), .value = text};
    }
    return n;
}

/* statusCode, notStatusCode: a code, a list of them, or a template ("{{ code }}"). */
static bool add_expect_status(struct script_ctx *c, const json_t *item, const char *key,
                              const json_t *v, struct load_expect *x)
{
    json_t *one;
    size_t j;

    if (json_is_integer(v)) {
        x->status[x->n_status++] = (int)json_integer_value(v);
        return true;
    }
    if (json_is_string(v) && script_template_ok(c, item, key, 0, "expect", json_string_value(v))) {
        x->text = xstrdup(json_string_value(v)); /* Number(text) once rendered */
        return true;
    }
    if (json_is_array(v) && json_array_size(v) <= ARRAY_LEN(x->status)) {
        json_array_foreach(v, j, one)
        {
            if (!json_is_integer(one))
                break;
            x->status[x->n_status++] = (int)json_integer_value(one);
        }
        if (x->n_status == json_array_size(v) && x->n_status > 0)
            return true;
    }
    script_diag(c, item, key, 0, "expect.%s: want a status code, a list of them or a template",
                key);
    return false;
}

/* equals: the values (templates) that must all render alike; headerEquals: [NAME, VALUE]. */
static bool add_expect_equals(struct script_ctx *c, const json_t *item, const json_t *v,
                              struct load_expect *x)
{
    bool header = x->kind == LOAD_EXPECT_HEADER_EQUALS;
    json_t *one;
    size_t j;

    if (!json_is_array(v) || json_array_size(v) == 0 || (header && json_array_size(v) != 2)) {
        script_diag(c, item, load_expect_names[x->kind], 0, "expect.%s: want %s",
                    load_expect_names[x->kind],
                    header ? "[NAME, VALUE], the header and its value" : "a list of values");
        return false;
    }
    x->values = xcalloc(json_array_size(v), sizeof(*x->values));
    json_array_foreach(v, j, one)
    {
        char *text = scalar_text(one);

        if (!text || !script_template_ok(c, v, NULL, j, "expect.equals", text)) {
            if (!text)
                script_diag(c, v, NULL, j, "expect.equals: want scalar values");
            free(text);
            return false;
        }
        x->values[x->n_values++] = text;
    }
    return true;
}

/*
 * jmespath and jpath: the expression as it is (the plugin renders no template in it), and the
 * description the lines show instead of it, when the check's mapping has one.
 */
static bool compile_jmespath(struct script_ctx *c, const json_t *item, const char *key,
                             struct load_expect *x)
{
    const json_t *d = json_object_get(item, "description");
    struct err e = {""};

    if (d && !json_is_string(d)) {
        script_diag(c, item, "description", 0, "expect.description: want a string");
        return false;
    }
    if (load_jmes_compile(x->text, &x->jmes, &e) < 0) {
        script_diag(c, item, key, 0, "expect.%s: \"%s\": %s", key, x->text, e.msg);
        return false;
    }
    x->description = d ? xstrdup(json_string_value(d)) : NULL;
    return true;
}

/* One check: item is {KEY: VALUE}; false when it is refused (and said so). */
static bool parse_expect(struct script_ctx *c, const json_t *item, const char *key, const json_t *v,
                         struct load_expect *x)
{
    size_t k = 0;

    while (k < LOAD_EXPECT_KINDS && strcmp(load_expect_names[k], key) != 0)
        k++;
    if (k == LOAD_EXPECT_KINDS)
        return false; /* script_check_keys named it */
    x->kind = (enum load_expect_kind)k;
    switch (x->kind) {
    case LOAD_EXPECT_STATUS:
    case LOAD_EXPECT_NOT_STATUS:
        return add_expect_status(c, item, key, v, x);
    case LOAD_EXPECT_EQUALS:
    case LOAD_EXPECT_HEADER_EQUALS:
        return add_expect_equals(c, item, v, x);
    case LOAD_EXPECT_CDN_HIT:
        if (!json_is_boolean(v)) {
            script_diag(c, item, key, 0, "expect.cdnHit: want true or false");
            return false;
        }
        x->hit = json_is_true(v);
        return true;
    default:
        break;
    }
    if (!json_is_string(v) ||
        !script_template_ok(c, item, key, 0, "expect", json_string_value(v))) {
        if (!json_is_string(v))
            script_diag(c, item, key, 0, "expect.%s: want a string", key);
        return false;
    }
    x->text = xstrdup(json_string_value(v));
    if (x->kind == LOAD_EXPECT_JMESPATH || x->kind == LOAD_EXPECT_JPATH)
        return compile_jmespath(c, item, key, x);
    if (x->kind == LOAD_EXPECT_MATCHES_REGEXP && load_tmpl_is_static(x->text)) {
        struct err e = {""};
        int group;
        bool named;

        x->re = xmalloc(sizeof(*x->re));
        if (load_regexp_compile(x->text, NULL, NULL, x->re, &group, &named, &e) < 0) {
            script_diag(c, item, key, 0, "expect.matchesRegexp: %s", e.msg);
            FREE_NULL(x->re);
            return false;
        }
    }
    return true;
}

static void free_expect(struct load_expect *x)
{
    free(x->text);
    for (size_t i = 0; i < x->n_values; i++)
        free(x->values[i]);
    free(x->values);
    if (x->re)
        regfree(x->re);
    free(x->re);
    load_jmes_free(x->jmes);
    free(x->description);
}

/* One check from its key and value; counted in r when it is accepted. */
static void add_expect(struct script_ctx *c, const json_t *item, const char *key, const json_t *v,
                       struct load_request *r)
{
    struct load_expect *x;

    if (r->n_expects >= LOAD_MAX_EXPECTS) {
        script_diag(c, item, key, 0, "expect: at most %d checks per request", LOAD_MAX_EXPECTS);
        return;
    }
    x = &r->expects[r->n_expects];
    if (parse_expect(c, item, key, v, x)) {
        r->n_expects++;
        return;
    }
    free_expect(x);
    *x = (struct load_expect){0};
}

/*
 * A request's expect: a list of one-check mappings ([{statusCode: 200}, {hasProperty: id}]), or
 * one mapping whose every key is a check ({statusCode: 200, contentType: json}), as the plugin
 * reads both.
 */
static void parse_expects(struct script_ctx *c, const json_t *ex, struct load_request *r)
{
    /* the checks, after "description", which only a jmespath check in a list may have */
    static const char *const described_keys[] = {
        "description",  "statusCode",  "notStatusCode",  "contentType", "hasHeader",
        "cdnHit",       "hasProperty", "notHasProperty", "equals",      "matchesRegexp",
        "headerEquals", "jmespath",    "jpath",          NULL};
    const char *const *allowed = described_keys + 1;
    const char *key;
    json_t *item, *v;
    size_t i;

    if (!json_is_array(ex) && !json_is_object(ex)) {
        script_diag(c, ex, NULL, SIZE_MAX,
                    "expect: want a list of checks such as {statusCode: 200}");
        return;
    }
    r->expects = xcalloc(LOAD_MAX_EXPECTS, sizeof(*r->expects));
    if (json_is_object(ex)) {
        script_check_keys(c, ex, "expect", allowed, NULL);
        json_object_foreach((json_t *)ex, key, v) add_expect(c, ex, key, v, r);
        return;
    }
    json_array_foreach(ex, i, item)
    {
        /* a jmespath check may say what it checks: {jmespath: EXPR, description: TEXT} */
        bool described = json_object_size(item) == 2 && json_object_get(item, "description") &&
                         (json_object_get(item, "jmespath") || json_object_get(item, "jpath"));

        if (!json_is_object(item) || (json_object_size(item) != 1 && !described)) {
            script_diag(c, ex, NULL, i, "expect[%zu]: want one check, such as {statusCode: 200}",
                        i);
            continue;
        }
        script_check_keys(c, item, "expect", described ? described_keys : allowed, NULL);
        json_object_foreach(item, key, v)
        {
            if (!described || strcmp(key, "description") != 0)
                add_expect(c, item, key, v, r);
        }
    }
}

/* A regexp capture's pattern, flags and group, compiled into x (kept for each response when
 * the pattern holds templates). */
static void compile_regexp(struct script_ctx *c, const json_t *item, struct load_capture *x)
{
    const json_t *flags = json_object_get(item, "flags");
    struct err e = {""};

    if (flags && !json_is_string(flags)) {
        script_diag(c, item, "flags", 0, "capture.flags: want a string such as \"i\"");
        return;
    }
    if (x->templated) {
        x->flags = flags ? xstrdup(json_string_value(flags)) : NULL;
        x->group_spec = json_deep_copy(json_object_get(item, "group"));
        return;
    }
    x->re = xmalloc(sizeof(*x->re));
    if (load_regexp_compile(x->expr, json_string_value(flags), json_object_get(item, "group"),
                            x->re, &x->group, &x->named, &e) < 0) {
        script_diag(c, item, "regexp", 0, "capture.regexp: %s", e.msg);
        FREE_NULL(x->re);
    }
}

/*
 * A selector capture's selector (compiled now unless it holds templates, which parse_captures
 * checked: it is rendered and compiled per response), attr and index into x.
 */
static void add_selector(struct script_ctx *c, const json_t *item, struct load_capture *x)
{
    const json_t *attr = json_object_get(item, "attr"), *index = json_object_get(item, "index");
    const char *s = json_string_value(index);
    struct err e = {""};
    json_t *num;

    if (!x->templated && !(x->sel = load_sel_compile(x->expr, &e)))
        script_diag(c, item, "selector", 0, "capture.selector: %s", e.msg);
    if (attr && !json_is_string(attr))
        script_diag(c, item, "attr", 0, "capture.attr: want an attribute's name");
    else if (attr)
        x->attr = xstrdup(json_string_value(attr));
    if (!index)
        return;
    if (json_is_number(index)) {
        x->index_kind = LOAD_INDEX_AT;
        x->index = json_number_value(index);
    } else if (s && strcmp(s, "last") == 0) {
        x->index_kind = LOAD_INDEX_LAST;
    } else if (s && strcmp(s, "random") == 0) {
        x->index_kind = LOAD_INDEX_RANDOM;
    } else if (s && (num = load_csv_number(s, strlen(s)))) {
        /* Number("2"), as Artillery reads it */
        x->index_kind = LOAD_INDEX_AT;
        x->index = json_number_value(num);
        json_decref(num);
    } else {
        script_diag(c, item, "index", 0,
                    "capture.index: want a number, \"last\" or \"random\" (default the first)");
    }
}

static bool templates_ok(struct script_ctx *c, const json_t *parent, const char *key,
                         const json_t *v);

/*
 * capture and match (where): lists of specs, or one. As Artillery's captureOrMatch reads them, a
 * spec with a value is a match (the value it must find, a template), whichever list holds it;
 * one without is a capture into `as`.
 */
static void parse_captures(struct script_ctx *c, const json_t *cap, const char *where,
                           struct load_request *r)
{
    static const char *const allowed[] = {"json",  "header", "regexp", "selector",
                                          "as",    "value",  "strict", "group",
                                          "flags", "attr",   "index",  NULL};
    static const char *const unsupported[] = {"xpath", "transform", NULL};
    static const char *const kinds[] = {"json", "header", "regexp", "selector"};
    json_t *list = json_is_array(cap) ? json_incref((json_t *)cap) : json_pack("[O]", cap);
    json_t *item;
    struct err e = {""};
    size_t i;

    r->captures =
        xrealloc(r->captures, (r->n_captures + json_array_size(list) + 1) * sizeof(*r->captures));
    json_array_foreach(list, i, item)
    {
        const json_t *as = json_object_get(item, "as"), *strict = json_object_get(item, "strict");
        const json_t *value = json_object_get(item, "value"), *expr = NULL;
        struct load_capture *x;
        bool templated;
        size_t k;

        if (!json_is_object(item)) {
            script_diag(c, cap, NULL, i, "%s: want a mapping with json, header, regexp or selector",
                        where);
            continue;
        }
        script_check_keys(c, item, where, allowed, unsupported);
        for (k = 0; k < ARRAY_LEN(kinds) && !(expr = json_object_get(item, kinds[k])); k++)
            ;
        if (!json_is_string(expr) || (!value && !json_is_string(as))) {
            if (!json_object_get(item, "xpath"))
                script_diag(c, cap, NULL, i,
                            "%s: want json: \"$.path\", header: NAME, regexp: PATTERN or "
                            "selector: CSS, and %s",
                            where, *where == 'm' ? "value: WHAT" : "as: NAME (or value: WHAT)");
            continue;
        }
        if (k != LOAD_CAPTURE_SELECTOR &&
            (json_object_get(item, "attr") || json_object_get(item, "index"))) {
            script_diag(c, item, json_object_get(item, "attr") ? "attr" : "index", 0,
                        "%s.%s: only a selector capture takes it", where,
                        json_object_get(item, "attr") ? "attr" : "index");
            continue;
        }
        templated = !load_tmpl_is_static(json_string_value(expr));
        if (templated) {
            char what[32];

            snprintf(what, sizeof(what), "%s.%s", where, kinds[k]);
            if (!script_template_ok(c, item, kinds[k], 0, what, json_string_value(expr)))
                continue;
        } else if (k == LOAD_CAPTURE_JSON && load_jsonpath_check(json_string_value(expr), &e) < 0) {
            script_diag(c, item, "json", 0, "%s.json: %s", where, e.msg);
            continue;
        }
        if (strict && !json_is_boolean(strict))
            script_diag(c, item, "strict", 0, "%s.strict: want true or false", where);
        if (value && !templates_ok(c, item, "value", value))
            continue;
        x = &r->captures[r->n_captures++];
        /* a match is strict unless it says otherwise: strictCapture is for captures */
        *x = (struct load_capture){.kind = (enum load_capture_kind)k,
                                   .expr = xstrdup(json_string_value(expr)),
                                   .as = value ? NULL : xstrdup(json_string_value(as)),
                                   .value = value ? json_deep_copy(value) : NULL,
                                   .templated = templated,
                                   .strict =
                                       strict ? json_is_true(strict) : value || c->strict_capture};
        if (k == LOAD_CAPTURE_REGEXP)
            compile_regexp(c, item, x);
        else if (k == LOAD_CAPTURE_SELECTOR)
            add_selector(c, item, x);
        if (k != LOAD_CAPTURE_HEADER)
            r->needs_body = true;
    }
    json_decref(list);
}

static bool templates_ok(struct script_ctx *c, const json_t *parent, const char *key,
                         const json_t *v)
{
    const char *k;
    json_t *child;
    size_t i;

    if (json_is_string(v))
        return script_template_ok(c, parent, key, 0, "json", json_string_value(v));
    if (json_is_object(v)) {
        json_object_foreach((json_t *)v, k, child) if (!templates_ok(c, v, k, child)) return false;
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, child) if (!templates_ok(c, v, NULL, child)) return false;
    }
    return true;
}

/*
 * Appends the function names of parent's key (one name or a list) to h. quiet: parent was
 * checked already (a scenario's hooks, added to each of its requests).
 */
static void add_hooks(struct script_ctx *c, const json_t *parent, const char *key, bool quiet,
                      struct load_hooks *h)
{
    const json_t *v = json_object_get(parent, key);
    json_t *list, *one;
    size_t i;

    if (!v)
        return;
    if (!c->has_processor) {
        if (!quiet)
            script_diag(c, parent, key, 0, "%s: needs config.processor (the module with %s)", key,
                        json_is_string(v) ? json_string_value(v) : "its functions");
        return;
    }
    list = json_is_array(v) ? json_incref((json_t *)v) : json_pack("[O]", v);
    h->names = xrealloc(h->names, (h->n + json_array_size(list) + 1) * sizeof(*h->names));
    json_array_foreach(list, i, one)
    {
        if (json_is_string(one) && *json_string_value(one))
            h->names[h->n++] = xstrdup(json_string_value(one));
        else if (!quiet)
            script_diag(c, parent, key, 0, "%s: want a function name or a list of them", key);
    }
    json_decref(list);
}

static void free_hooks(struct load_hooks *h)
{
    for (size_t i = 0; i < h->n; i++)
        free(h->names[i]);
    free(h->names);
}

/* Whether config.plugins.expect is there (the flow is read after the config). */
static bool s_expect_plugin(const struct script_ctx *c)
{
    const json_t *plugins = json_object_get(c->config, "plugins");

    return json_object_get(plugins, "expect") != NULL;
}

static void add_endpoint(struct script_ctx *c, struct load_request *r)
{
    char *ep = script_endpoint_name(c, r->url, r->name);

    if (!ep)
        return;
    r->endpoint_counters = xasprintf("%s.%s.", c->ep_prefix, ep);
    r->endpoint_rt = xasprintf("%s.response_time.%s", c->ep_prefix, ep);
    free(ep);
}

/* The config's default headers the request does not set itself (names case aside). */
static void add_default_headers(struct script_ctx *c, struct load_request *r)
{
    struct load_kv *defs = NULL;
    size_t n = parse_kvs(c, c->default_headers, "defaults.headers", false, &defs);

    r->headers = xrealloc(r->headers, (r->n_headers + n + 1) * sizeof(*r->headers));
    for (size_t i = 0; i < n; i++) {
        bool set = false;

        for (size_t j = 0; j < r->n_headers && !set; j++)
            set = strcasecmp(r->headers[j].name, defs[i].name) == 0;
        if (set) {
            free(defs[i].name);
            free(defs[i].value);
        } else {
            r->headers[r->n_headers++] = defs[i];
        }
    }
    free(defs);
}

/* ifTrue: a filtrex expression, or (with a processor) a function's name, decided at start. */
static void parse_if_true(struct script_ctx *c, const json_t *req, const json_t *v,
                          struct load_request *r)
{
    struct err e = {""};

    if (!json_is_string(v) || !*json_string_value(v)) {
        script_diag(c, req, "ifTrue", 0, "ifTrue: want an expression such as \"n > 1\"");
        return;
    }
    /* a function's name also parses as an expression (one variable) */
    if (load_fx_check(json_string_value(v), &e) < 0) {
        script_diag(c, req, "ifTrue", 0, "ifTrue: %s", e.msg);
        return;
    }
    r->if_true = xstrdup(json_string_value(v));
}

/* formData: text parts, each a value or {value, contentType}. */
#define FORM_FILE_MAX (64u << 20) /* bytes of a formData file part */

/* The Content-Type the form-data package gives a file part (mime-types' table, the common
 * part of it), from the file's extension. */
static const char *file_type(const char *name)
{
    static const char *const types[][2] = {
        {"txt", "text/plain"},
        {"csv", "text/csv"},
        {"json", "application/json"},
        {"html", "text/html"},
        {"htm", "text/html"},
        {"xml", "application/xml"},
        {"png", "image/png"},
        {"jpg", "image/jpeg"},
        {"jpeg", "image/jpeg"},
        {"gif", "image/gif"},
        {"webp", "image/webp"},
        {"svg", "image/svg+xml"},
        {"pdf", "application/pdf"},
        {"zip", "application/zip"},
        {"gz", "application/gzip"},
        {"tar", "application/x-tar"},
        {"js", "application/javascript"},
        {"css", "text/css"},
        {"yaml", "text/yaml"},
        {"yml", "text/yaml"},
        {"md", "text/markdown"},
        {"mp4", "video/mp4"},
        {"mp3", "audio/mpeg"},
    };
    const char *dot = strrchr(name, '.');

    for (size_t i = 0; dot && i < ARRAY_LEN(types); i++)
        if (strcasecmp(dot + 1, types[i][0]) == 0)
            return types[i][1];
    return "application/octet-stream";
}

static void add_file_kv(struct load_request *r, const char *key, struct buf *data, const char *type,
                        const char *base)
{
    size_t len = data->len; /* before buf_steal empties it */

    r->form[r->n_form++] = (struct load_kv){.name = xstrdup(key),
                                            .value = buf_steal(data),
                                            .type = xstrdup(type),
                                            .file = xstrdup(base),
                                            .value_len = len};
}

/* formData's {fromFile: PATH, contentType}: the file (next to the script) read now, once. */
static void add_file_part(struct script_ctx *c, const json_t *v, const char *key, const char *type,
                          struct load_request *r)
{
    const char *from = json_string_value(json_object_get(v, "fromFile")), *base;
    struct buf data = BUF_INIT;
    struct err e = {""};
    char *path;

    if (!from || !*from || !load_tmpl_is_static(from)) {
        script_diag(c, v, "fromFile", 0,
                    "formData.%s.fromFile: want the path of a file (without templates: it is "
                    "read once, at start)",
                    key);
        return;
    }
    path = script_path_near(c->y->path, from);
    base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    if (strpbrk(base, "\"\r\n"))
        script_diag(c, v, "fromFile", 0,
                    "formData.%s.fromFile: no quotes or line breaks in the file's name", key);
    else if (script_read_file(path, FORM_FILE_MAX, &data, &e) < 0)
        script_diag(c, v, "fromFile", 0, "formData.%s.fromFile: %s: %s", key, path, e.msg);
    else
        add_file_kv(r, key, &data, type ? type : file_type(base), base);
    buf_free(&data);
    free(path);
}

static void parse_form_data(struct script_ctx *c, const json_t *fd, struct load_request *r)
{
    const char *key;
    json_t *v;

    if (!json_is_object(fd)) {
        script_diag(c, fd, NULL, SIZE_MAX, "formData: want a mapping of names to values");
        return;
    }
    r->form = xcalloc(json_object_size(fd) + 1, sizeof(*r->form));
    r->multipart = true;
    json_object_foreach((json_t *)fd, key, v)
    {
        const json_t *type = json_object_get(v, "contentType");
        char *text = scalar_text(json_is_object(v) ? json_object_get(v, "value") : v);

        if (json_is_object(v) && json_object_get(v, "fromFile") &&
            (!type || json_is_string(type)) && !strpbrk(key, "\"\r\n") &&
            (!type || !strpbrk(json_string_value(type), "\r\n"))) {
            add_file_part(c, v, key, json_string_value(type), r);
        } else if (!text || (type && !json_is_string(type)) || strpbrk(key, "\"\r\n") ||
                   (type && strpbrk(json_string_value(type), "\r\n"))) {
            script_diag(c, fd, key, 0,
                        "formData.%s: want a value, or {value, contentType} (no quotes or line "
                        "breaks in names and types)",
                        key);
        } else if (script_template_ok(c, fd, key, 0, "formData", text)) {
            r->form[r->n_form++] =
                (struct load_kv){.name = xstrdup(key),
                                 .value = text,
                                 .type = type ? xstrdup(json_string_value(type)) : NULL};
            text = NULL;
        }
        free(text);
    }
}

/* The cookie values a request puts in the jar: config's defaults, then its own. */
static void parse_cookies(struct script_ctx *c, const json_t *own, struct load_request *r)
{
    json_t *all = json_object();
    const char *key;
    json_t *v;

    if (c->default_cookie)
        json_object_update(all, (json_t *)c->default_cookie);
    if (own && !json_is_object(own))
        script_diag(c, own, NULL, SIZE_MAX, "cookie: want a mapping of names to values");
    else if (own)
        json_object_update(all, (json_t *)own);
    json_object_foreach(all, key, v)
    {
        if (strpbrk(key, "=; \t\r\n") || !*key)
            script_diag(c, own ? own : c->default_cookie, key, 0, "cookie.%s: not a cookie name",
                        key);
    }
    if (json_object_size(all))
        r->n_cookies = parse_kvs(c, all, "cookie", false, &r->cookies);
    json_decref(all);
}

/* auth, form, formData, cookie and followRedirect; and the one body a request may have. */
static void parse_request_extras(struct script_ctx *c, const json_t *req, const char *method,
                                 struct load_request *r)
{
    const json_t *auth = json_object_get(req, "auth"), *v;
    int bodies = (r->json != NULL) + (r->body != NULL);

    if ((v = json_object_get(req, "form"))) {
        r->n_form = parse_kvs(c, v, "form", true, &r->form);
        bodies++;
    }
    if ((v = json_object_get(req, "formData"))) {
        parse_form_data(c, v, r);
        bodies++;
    }
    if (bodies > 1)
        script_diag(c, req, "body", 0, "%s: only one of json, body, form and formData", method);
    if (auth) {
        const json_t *pass = json_object_get(auth, "pass");

        r->auth_user = scalar_text(json_object_get(auth, "user"));
        r->auth_pass = pass ? scalar_text(pass) : xstrdup("");
        if (!json_is_object(auth) || !r->auth_user || !r->auth_pass)
            script_diag(c, req, "auth", 0, "auth: want {user, pass}");
    }
    parse_cookies(c, json_object_get(req, "cookie"), r);
    v = json_object_get(req, "followRedirect");
    if (v && !json_is_boolean(v))
        script_diag(c, req, "followRedirect", 0, "followRedirect: want true or false");
    r->follow_redirect = !json_is_false(v);
}

static void parse_request(struct script_ctx *c, const json_t *step, const char *method,
                          struct load_step *out)
{
    static const char *const allowed[] = {
        "url",      "headers", "json",          "body",           "qs",     "expect",
        "capture",  "name",    "beforeRequest", "afterResponse",  "ifTrue", "form",
        "formData", "cookie",  "auth",          "followRedirect", "match",  NULL};
    static const char *const unsupported[] = {"gzip", "think", "timeout", NULL};
    const json_t *req = json_object_get(step, method);
    struct load_request *r = &out->req;
    const json_t *v;

    out->kind = LOAD_STEP_REQUEST;
    r->method = upper_dup(method);
    if (json_is_object(req)) /* first: a misspelt url is named as such */
        script_check_keys(c, req, method, allowed, unsupported);
    if (!json_is_object(req) || !json_is_string(json_object_get(req, "url"))) {
        script_diag(c, step, method, 0, "%s: want a mapping with url", method);
        return;
    }
    r->url = xstrdup(json_string_value(json_object_get(req, "url")));
    script_template_ok(c, req, "url", 0, "url", r->url);
    if ((v = json_object_get(req, "headers")))
        r->n_headers = parse_kvs(c, v, "headers", false, &r->headers);
    if (c->default_headers)
        add_default_headers(c, r);
    if ((v = json_object_get(req, "qs")))
        r->n_qs = parse_kvs(c, v, "qs", true, &r->qs);
    if ((v = json_object_get(req, "json")) && templates_ok(c, req, "json", v))
        r->json = json_deep_copy(v);
    if ((v = json_object_get(req, "body"))) {
        r->body = scalar_text(v);
        if (!r->body)
            script_diag(c, req, "body", 0, "body: want a string");
        else
            script_template_ok(c, req, "body", 0, "body", r->body);
    }
    parse_request_extras(c, req, method, r);
    if (json_is_string(json_object_get(req, "name")))
        r->name = xstrdup(json_string_value(json_object_get(req, "name")));
    if ((v = json_object_get(req, "ifTrue")))
        parse_if_true(c, req, v, r);
    add_endpoint(c, r);
    if ((v = json_object_get(req, "expect")))
        parse_expects(c, v, r);
    if (r->n_expects && !s_expect_plugin(c)) {
        /* Artillery runs the checks only when its expect plugin is loaded */
        if (!c->warned_expect)
            fprintf(stderr,
                    "%s:%d: warning: expect does nothing without config.plugins.expect "
                    "(as in Artillery): add `plugins: {expect: {}}` to check responses\n",
                    c->y->path, load_yaml_line(c->y, req, "expect", 0));
        c->warned_expect = true;
        for (size_t i = 0; i < r->n_expects; i++)
            free_expect(&r->expects[i]);
        r->n_expects = 0;
    } else if (!r->n_expects && c->expect_default_200 && s_expect_plugin(c)) {
        r->expects = xrealloc(r->expects, sizeof(*r->expects));
        r->expects[0] =
            (struct load_expect){.kind = LOAD_EXPECT_STATUS, .status = {200}, .n_status = 1};
        r->n_expects = 1;
    }
    if ((v = json_object_get(req, "capture")))
        parse_captures(c, v, "capture", r);
    if ((v = json_object_get(req, "match")))
        parse_captures(c, v, "match", r);
    add_hooks(c, c->scenario, "beforeRequest", true, &r->before);
    add_hooks(c, req, "beforeRequest", false, &r->before);
    add_hooks(c, c->scenario, "afterResponse", true, &r->after);
    add_hooks(c, req, "afterResponse", false, &r->after);
    if (r->before.n || r->after.n)
        r->params = json_deep_copy(req);
    if (r->after.n)
        r->needs_body = true;
    for (size_t i = 0; i < r->n_expects; i++)
        r->needs_body |= r->expects[i].kind >= LOAD_EXPECT_FIRST_BODY;
}

static size_t parse_flow(struct script_ctx *c, const json_t *flow, const char *where, int depth,
                         struct load_step **out);

/* count: a number, "N", a range "A-B" (A..B-1) or a template of one, rendered at run time. */
static void parse_loop_count(struct script_ctx *c, const json_t *step, struct load_step *out)
{
    const json_t *v = json_object_get(step, "count");
    const char *s = json_string_value(v);
    double d = -1;

    if (json_is_number(v))
        d = json_number_value(v);
    if (s && !load_tmpl_is_static(s)) {
        if (script_template_ok(c, step, "count", 0, "loop.count", s))
            out->count_tmpl = xstrdup(s);
        return;
    }
    if (s && load_loop_count(s, &out->count_from, &out->count) == 0)
        return;
    if (d < 0 || d > 1e9) {
        script_diag(c, step, "count", 0,
                    "loop.count: want a number >= 0, a range such as \"1-5\" or a template");
        return;
    }
    out->count = (int64_t)d;
}

static char *loop_name(const json_t *step, const char *key, const char *dflt)
{
    const json_t *v = json_object_get(step, key);

    return xstrdup(json_is_string(v) && *json_string_value(v) ? json_string_value(v) : dflt);
}

/* loop: its steps, and count, over (a list or a variable's name) or whileTrue. */
static void parse_loop(struct script_ctx *c, const json_t *step, int depth, struct load_step *out)
{
    static const char *const allowed[] = {"loop",      "count",       "over", "whileTrue",
                                          "loopValue", "loopElement", NULL};
    const json_t *over = json_object_get(step, "over"), *wt = json_object_get(step, "whileTrue");

    out->kind = LOAD_STEP_LOOP;
    out->count = -1;
    script_check_keys(c, step, "loop", allowed, NULL);
    if (json_object_get(step, "count"))
        parse_loop_count(c, step, out);
    if (json_is_array(over))
        out->over = json_deep_copy(over);
    else if (json_is_string(over) && *json_string_value(over))
        out->over_var = xstrdup(json_string_value(over));
    else if (over)
        script_diag(c, step, "over", 0, "loop.over: want a list or a variable's name");
    if (wt && !(json_is_string(wt) && *json_string_value(wt)))
        script_diag(c, step, "whileTrue", 0, "loop.whileTrue: want a function's name");
    else if (wt && !c->has_processor)
        script_diag(c, step, "whileTrue", 0,
                    "loop.whileTrue: needs config.processor (the module with %s)",
                    json_string_value(wt));
    else if (wt)
        out->while_fn = xstrdup(json_string_value(wt));
    if (!json_object_get(step, "count") && !over && !wt)
        script_diag(c, step, "loop", 0,
                    "loop: want count, over or whileTrue (without them Artillery loops forever)");
    out->loop_value = loop_name(step, "loopValue", "$loopCount");
    out->loop_element = loop_name(step, "loopElement", "$loopElement");
    if (depth >= MAX_LOOP_DEPTH)
        script_diag(c, step, "loop", 0, "loop: nested too deep");
    else
        out->n_steps = parse_flow(c, json_object_get(step, "loop"), "loop", depth + 1, &out->steps);
}

/* parallel: steps run at once, as Artillery runs them (its schema allows no other key, so
 * none of async's `limit`). */
static void parse_parallel(struct script_ctx *c, const json_t *step, int depth,
                           struct load_step *out)
{
    static const char *const allowed[] = {"parallel", NULL};

    out->kind = LOAD_STEP_PARALLEL;
    script_check_keys(c, step, "parallel", allowed, NULL);
    if (depth >= MAX_LOOP_DEPTH)
        script_diag(c, step, "parallel", 0, "parallel: nested too deep");
    else
        out->n_steps =
            parse_flow(c, json_object_get(step, "parallel"), "parallel", depth + 1, &out->steps);
}

static void parse_step(struct script_ctx *c, const json_t *step, int depth, struct load_step *out)
{
    static const char *const unsupported[] = {"emit", "ws", "socketio", NULL};
    const char *key;
    json_t *v;

    if (!json_is_object(step) || json_object_size(step) == 0) {
        script_diag(c, step, NULL, SIZE_MAX, "flow: each step is a mapping such as get: {url}");
        return;
    }
    key = json_object_iter_key(json_object_iter((json_t *)step));
    for (const char *const *m = methods; *m; m++) {
        if (strcmp(key, *m) == 0 && json_object_size(step) == 1) {
            parse_request(c, step, key, out);
            return;
        }
    }
    if (json_object_get(step, "loop")) {
        parse_loop(c, step, depth, out);
        return;
    }
    if (json_object_get(step, "parallel")) {
        parse_parallel(c, step, depth, out);
        return;
    }
    if (json_object_size(step) == 1 && strcmp(key, "think") == 0) {
        out->kind = LOAD_STEP_THINK;
        v = json_object_get(step, "think");
        /* as Artillery renders a think time each time it runs: "{{ pause }}" from the user's
         * variables */
        if (json_is_string(v) && !load_tmpl_is_static(json_string_value(v))) {
            if (script_template_ok(c, step, "think", 0, "think", json_string_value(v)))
                out->think_tmpl = xstrdup(json_string_value(v));
            return;
        }
        script_read_duration(c, step, "think", "flow", &out->think_ms);
        return;
    }
    if (json_object_size(step) == 1 && strcmp(key, "function") == 0) {
        out->kind = LOAD_STEP_FUNCTION;
        v = json_object_get(step, "function");
        if (!json_is_string(v) || !*json_string_value(v))
            script_diag(c, step, "function", 0, "function: want a function name");
        else if (!c->has_processor)
            script_diag(c, step, "function", 0,
                        "function: needs config.processor (the module "
                        "with %s)",
                        json_string_value(v));
        else
            out->fn = xstrdup(json_string_value(v));
        return;
    }
    if (json_object_size(step) == 1 && strcmp(key, "log") == 0) {
        out->kind = LOAD_STEP_LOG;
        out->log = scalar_text(json_object_get(step, "log"));
        if (!out->log)
            script_diag(c, step, "log", 0, "log: want a string");
        return;
    }
    out->kind = LOAD_STEP_THINK; /* harmless placeholder: the script fails anyway */
    json_object_foreach((json_t *)step, key, v)
    {
        bool known = false;

        for (const char *const *m = methods; *m; m++)
            known |= strcmp(key, *m) == 0;
        if (known || strcmp(key, "think") == 0 || strcmp(key, "log") == 0 ||
            strcmp(key, "function") == 0)
            script_diag(c, step, key, 0, "flow: a step holds one action; %s has company", key);
        else
            script_diag(c, step, key, 0, "flow.%s: %s", key,
                        in_list_flow(key, unsupported) ? "not supported" : "unknown step");
    }
}

static size_t parse_flow(struct script_ctx *c, const json_t *flow, const char *where, int depth,
                         struct load_step **out)
{
    size_t i, n = 0;
    json_t *step;

    if (!json_is_array(flow)) {
        script_diag(c, flow, NULL, SIZE_MAX, "%s: want a list of steps", where);
        return 0;
    }
    *out = xcalloc(json_array_size(flow) + 1, sizeof(**out));
    json_array_foreach(flow, i, step)
    {
        (*out)[n].line = load_yaml_line(c->y, flow, NULL, i);
        parse_step(c, step, depth, &(*out)[n]);
        n++;
    }
    return n;
}

/* beforeScenario and afterScenario: function steps around the flow, as Artillery makes them. */
static void add_scenario_hooks(struct script_ctx *c, const json_t *sc, struct load_scenario *out)
{
    struct load_hooks before = {0}, after = {0};
    struct load_step *steps;
    size_t n = 0;
    int line = load_yaml_line(c->y, sc, NULL, SIZE_MAX);

    add_hooks(c, sc, "beforeScenario", false, &before);
    add_hooks(c, sc, "afterScenario", false, &after);
    if (before.n + after.n == 0)
        return;
    steps = xcalloc(before.n + out->n_steps + after.n + 1, sizeof(*steps));
    for (size_t i = 0; i < before.n; i++, n++)
        steps[n] = (struct load_step){
            .kind = LOAD_STEP_FUNCTION, .line = line, .fn = xstrdup(before.names[i])};
    if (out->n_steps)
        memcpy(steps + n, out->steps, out->n_steps * sizeof(*steps));
    n += out->n_steps;
    for (size_t i = 0; i < after.n; i++, n++)
        steps[n] = (struct load_step){
            .kind = LOAD_STEP_FUNCTION, .line = line, .fn = xstrdup(after.names[i])};
    free(out->steps);
    out->steps = steps;
    out->n_steps = n;
    free_hooks(&before);
    free_hooks(&after);
}

/*
 * One scenario's mapping (scenarios[i], or the script's before or after: where says which).
 * Artillery runs before and after as scenarios too, so they take the same keys.
 */
static void parse_scenario(struct script_ctx *c, const json_t *sc, const char *where,
                           struct load_scenario *out)
{
    static const char *const allowed[] = {"name",          "weight",         "flow",
                                          "engine",        "beforeScenario", "afterScenario",
                                          "beforeRequest", "afterResponse",  NULL};
    static const char *const unsupported[] = {"onError", NULL};
    const json_t *w = json_object_get(sc, "weight"), *engine = json_object_get(sc, "engine");

    out->weight = 1;
    script_check_keys(c, sc, where, allowed, unsupported);
    if (engine && !(json_is_string(engine) && strcmp(json_string_value(engine), "http") == 0))
        script_diag(c, sc, "engine", 0, "%s.engine: only http is supported", where);
    if (w && (!json_is_number(w) || json_number_value(w) < 0))
        script_diag(c, sc, "weight", 0, "%s.weight: want a number >= 0", where);
    else if (w)
        out->weight = json_number_value(w);
    c->scenario = sc;
    for (const char *const *k = (const char *const[]){"beforeRequest", "afterResponse", NULL}; *k;
         k++) {
        struct load_hooks h = {0}; /* checked here, once: each request adds them quietly */

        add_hooks(c, sc, *k, false, &h);
        free_hooks(&h);
    }
    if (!json_object_get(sc, "flow"))
        script_diag(c, sc, NULL, SIZE_MAX, "%s: missing flow", where);
    else
        out->n_steps = parse_flow(c, json_object_get(sc, "flow"), "flow", 0, &out->steps);
    add_scenario_hooks(c, sc, out);
    c->scenario = NULL;
}

void script_parse_scenarios(struct script_ctx *c, const json_t *list, struct load_script *s)
{
    json_t *sc;
    size_t i;

    if (!json_is_array(list) || json_array_size(list) == 0) {
        script_diag(c, c->y->root, list ? "scenarios" : NULL, SIZE_MAX,
                    "scenarios: want a list of scenarios");
        return;
    }
    s->scenarios = xcalloc(json_array_size(list), sizeof(*s->scenarios));
    json_array_foreach(list, i, sc)
    {
        struct load_scenario *out = &s->scenarios[s->n_scenarios++];
        const json_t *name = json_object_get(sc, "name");
        char where[48];

        out->weight = 1;
        out->name = json_is_string(name) ? xstrdup(json_string_value(name)) : xasprintf("%zu", i);
        if (!json_is_object(sc)) {
            script_diag(c, list, NULL, i, "scenarios[%zu]: want a mapping", i);
            continue;
        }
        snprintf(where, sizeof(where), "scenarios[%zu]", i);
        parse_scenario(c, sc, where, out);
        s->total_weight += out->weight;
    }
    if (s->n_scenarios && s->total_weight <= 0)
        script_diag(c, list, NULL, 0, "scenarios: the weights add up to 0");
}

struct load_scenario *script_parse_hook_flow(struct script_ctx *c, const char *key)
{
    const json_t *sc = json_object_get(c->y->root, key);
    struct load_scenario *out;

    if (!sc)
        return NULL;
    if (!json_is_object(sc)) {
        script_diag(c, c->y->root, key, 0, "%s: want a mapping with a flow, as a scenario", key);
        return NULL;
    }
    out = xcalloc(1, sizeof(*out));
    out->name = xstrdup(key);
    parse_scenario(c, sc, key, out);
    return out;
}

static void free_kvs(struct load_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i].name);
        free(kv[i].value);
        free(kv[i].type);
        free(kv[i].file);
    }
    free(kv);
}

static void free_steps(struct load_step *steps, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct load_step *st = &steps[i];
        struct load_request *r = &st->req;

        free(r->method);
        free(r->name);
        free(r->endpoint_counters);
        free(r->endpoint_rt);
        free(r->url);
        free_kvs(r->headers, r->n_headers);
        free_kvs(r->qs, r->n_qs);
        free_kvs(r->form, r->n_form);
        free_kvs(r->cookies, r->n_cookies);
        free(r->auth_user);
        free(r->auth_pass);
        json_decref(r->json);
        free(r->body);
        for (size_t j = 0; j < r->n_expects; j++)
            free_expect(&r->expects[j]);
        free(r->expects);
        for (size_t j = 0; j < r->n_captures; j++) {
            free(r->captures[j].expr);
            free(r->captures[j].as);
            json_decref(r->captures[j].value);
            if (r->captures[j].re)
                regfree(r->captures[j].re);
            free(r->captures[j].re);
            load_sel_free(r->captures[j].sel);
            free(r->captures[j].attr);
            free(r->captures[j].flags);
            json_decref(r->captures[j].group_spec);
        }
        free(r->if_true);
        free(st->count_tmpl);
        json_decref(st->over);
        free(st->over_var);
        free(st->while_fn);
        free(st->loop_value);
        free(st->loop_element);
        free(r->captures);
        free(r->wire);
        free_hooks(&r->before);
        free_hooks(&r->after);
        json_decref(r->params);
        free_steps(st->steps, st->n_steps);
        free(st->log);
        free(st->think_tmpl);
        free(st->fn);
    }
    free(steps);
}

void script_free_scenario(struct load_scenario *sc)
{
    free(sc->name);
    free_steps(sc->steps, sc->n_steps);
}
