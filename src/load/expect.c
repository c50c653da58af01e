/*
 * Artillery's expect plugin, built in: a request's checks run on the response head, and the
 * plugin's per-request lines are printed in its output format. Checks and lines follow
 * artillery-plugin-expect 2.0.34: statusCode (one or any of a list), contentType (the header's
 * value, case aside, or "json"), hasHeader.
 */
#include "load/expect.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "lib/bug.h"
#include "lib/buf.h"
#include "lib/json.h"

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

/* One check: its verdict, and for the printed lines what was expected and what came. */
static bool check_one(const struct load_expect *x, const struct http_response_head *h,
                      json_t **expected, json_t **got)
{
    const struct http_header *hd;
    bool ok = false;

    switch (x->kind) {
    case LOAD_EXPECT_STATUS:
        *expected = x->n_status == 1 ? json_integer(x->status[0]) : json_array();
        for (size_t j = 0; j < x->n_status; j++) {
            ok |= x->status[j] == h->status;
            if (x->n_status > 1)
                json_array_append_new(*expected, json_integer(x->status[j]));
        }
        *got = json_integer(h->status);
        return ok;
    case LOAD_EXPECT_CONTENT_TYPE:
        hd = http_find_header(h->headers, h->num_headers, "Content-Type");
        *expected = json_string(x->text);
        if (strcmp(x->text, "json") == 0) {
            ok = has_json_type(hd);
            *got = ok ? json_string("json") : json_string("content-type is not JSON");
        } else {
            ok = hd && hd->value.n == strlen(x->text) &&
                 strncasecmp(hd->value.p, x->text, hd->value.n) == 0;
            *got = hd ? json_stringn_nocheck(hd->value.p, hd->value.n)
                      : json_string("content-type header not set");
        }
        return ok;
    case LOAD_EXPECT_HAS_HEADER:
    case LOAD_EXPECT_KINDS:
        break;
    }
    ok = http_find_header(h->headers, h->num_headers, x->text) != NULL;
    *expected = json_string(x->text);
    *got = ok ? json_string(x->text) : json_sprintf("response has no %s header", x->text);
    return ok;
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

uint32_t load_expect_check(const struct load_script *s, const struct load_request *r,
                           const struct http_response_head *h, const char *wire, size_t wire_len,
                           FILE *out)
{
    struct str path = load_expect_path(wire, wire_len);
    json_t *results = json_array();
    struct buf text = BUF_INIT;
    uint32_t failed = 0;
    bool print;

    MESH_BUG_ON(r->n_expects > LOAD_MAX_EXPECTS);
    for (size_t i = 0; i < r->n_expects; i++) {
        json_t *expected = NULL, *got = NULL;
        bool ok = check_one(&r->expects[i], h, &expected, &got);

        if (!ok)
            failed |= 1u << i;
        json_array_append_new(results,
                              json_pack("{s:b,s:o,s:s,s:o}", "ok", ok, "expected", expected, "type",
                                        load_expect_names[r->expects[i].kind], "got", got));
    }
    print = r->n_expects > 0 &&
            (s->expect_format == LOAD_EXPECT_PRETTY || s->expect_format == LOAD_EXPECT_JSON ||
             (s->expect_format == LOAD_EXPECT_PRETTY_ERROR && failed));
    if (print && s->expect_format == LOAD_EXPECT_JSON) {
        json_t *line = json_pack("{s:s?,s:s#,s:O}", "name", r->name, "url", path.p, (int)path.n,
                                 "results", results);

        json_append(&text, line, false);
        buf_append_cstr(&text, "\n");
        json_decref(line);
    } else if (print) {
        size_t i;
        json_t *res;

        buf_printf(&text, "* %s %.*s %s%s\n\n", r->method, (int)path.n, path.p, r->name ? "- " : "",
                   r->name ? r->name : "");
        json_array_foreach(results, i, res)
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
    json_decref(results);
    return failed;
}
