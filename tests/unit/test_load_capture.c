/* Captures: JavaScript regular expressions over POSIX ones, and Artillery's rules for what a
 * capture finds and when it fails. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/alloc.h"
#include "load/capture.h"
#include "load/template.h"

/* What pattern (flags, group as JSON text or NULL) captures in s, or "ERR: ...", "NONE" (no
 * match) or "UNDEFINED" (a named group that took no part). */
static char *capture(const char *pattern, const char *flags, const char *group, const char *s)
{
    json_t *g = group ? json_loads(group, JSON_DECODE_ANY, NULL) : NULL;
    struct buf out = BUF_INIT;
    struct err e = {""};
    regex_t re;
    int k;
    bool named;
    enum load_rx_found got;
    char *r;

    if (load_regexp_compile(pattern, flags, g, &re, &k, &named, &e) < 0) {
        json_decref(g);
        return xasprintf("ERR: %s", e.msg);
    }
    got = load_regexp_extract(&re, k, named, s, strlen(s), &out);
    if (got == LOAD_RX_TEXT)
        r = xstrndup(out.data ? out.data : "", out.len);
    else
        r = xstrdup(got == LOAD_RX_NONE ? "NONE" : "UNDEFINED");
    regfree(&re);
    buf_free(&out);
    json_decref(g);
    return r;
}

#define ASSERT_CAPTURE(pattern, flags, group, s, want)                                             \
    do {                                                                                           \
        char *got_ = capture(pattern, flags, group, s);                                            \
        assert_string_equal(got_, want);                                                           \
        free(got_);                                                                                \
    } while (0)

static void test_regexp(void **state)
{
    (void)state;
    ASSERT_CAPTURE("\"id\": (\\d+)", NULL, "1", "{\"id\": 42}", "42");
    ASSERT_CAPTURE("\"id\": (\\d+)", NULL, NULL, "{\"id\": 42}", "\"id\": 42");
    ASSERT_CAPTURE("\"id\": (\\d+)", NULL, "\"1\"", "{\"id\": 42}", "42");
    /* a non-capturing group does not count; a named one is found by name */
    ASSERT_CAPTURE("(?:a|b)(c+)", NULL, "1", "xbccy", "cc");
    ASSERT_CAPTURE("t=(?<tok>[a-z]+);(\\w+)", NULL, "\"tok\"", "t=abc;d1", "abc");
    ASSERT_CAPTURE("t=(?<tok>[a-z]+);(\\w+)", NULL, "2", "t=abc;d1", "d1");
    /* an empty numbered group gives the whole match, as Artillery's extractRegExp does */
    ASSERT_CAPTURE("a(x*)b", NULL, "1", "ab", "ab");
    /* a named group that took no part is match.groups' undefined; an empty one is "" */
    ASSERT_CAPTURE("(?<x>x)|y", NULL, "\"x\"", "y", "UNDEFINED");
    ASSERT_CAPTURE("a(?<x>x*)b", NULL, "\"x\"", "ab", "");
    ASSERT_CAPTURE("ABC", "i", NULL, "xabcx", "abc");
    ASSERT_CAPTURE("[\\d]+", "g", NULL, "ab12", "12");
    ASSERT_CAPTURE("zzz", NULL, NULL, "abc", "NONE");
    ASSERT_CAPTURE("(a", NULL, NULL, "a", "ERR: error parsing regexp: Unmatched ( or \\(: `(a`");
    ASSERT_CAPTURE("a(?=b)", NULL, NULL, "ab", "ERR: lookahead and lookbehind are not supported");
    ASSERT_CAPTURE("(a)\\1", NULL, NULL, "aa", "ERR: backreferences such as \\1 are not supported");
    ASSERT_CAPTURE("\"(.+?)\"", NULL, "1", "\"a\"",
                   "ERR: lazy quantifiers such as +? are not supported (try [^\"]* instead of .*? "
                   "before a \")");
    ASSERT_CAPTURE("(a)", NULL, "2", "a", "ERR: group 2: the pattern has 1");
    ASSERT_CAPTURE("(a)", NULL, "\"x\"", "a", "ERR: group \"x\": no group of that name");
    ASSERT_CAPTURE("a", "y", NULL, "a", "ERR: flags: \"y\" is not supported (i, m, g, s, u are)");
}

static void test_apply_all_or_nothing(void **state)
{
    struct load_capture caps[2] = {{.kind = LOAD_CAPTURE_JSON, .as = "a", .strict = true},
                                   {.kind = LOAD_CAPTURE_HEADER, .as = "b", .strict = true}};
    struct load_request r = {.captures = caps, .n_captures = 2};
    uint64_t rng = 1;
    json_t *vars = json_object(), *found = json_pack("{s:i,s:s}", "0", 1, "1", "");

    (void)state;
    /* "" is nothing: the strict capture fails and a is not set either */
    assert_false(load_captures_apply(&r, found, vars, &rng));
    assert_int_equal(json_object_size(vars), 0);
    /* lenient: what was found is set, "" too */
    caps[1].strict = false;
    assert_true(load_captures_apply(&r, found, vars, &rng));
    assert_int_equal(json_integer_value(json_object_get(vars, "a")), 1);
    assert_string_equal(json_string_value(json_object_get(vars, "b")), "");
    json_decref(found);
    json_decref(vars);
}

/* A match compares as JavaScript's ===, and a failed one fails the request's captures too. */
static void test_matches(void **state)
{
    struct load_capture caps[2] = {
        {.kind = LOAD_CAPTURE_JSON, .value = json_integer(42), .strict = true},
        {.kind = LOAD_CAPTURE_JSON, .as = "id", .strict = true}};
    struct load_request r = {.captures = caps, .n_captures = 2};
    json_t *vars = json_pack("{s:s}", "want", "42");
    json_t *found = json_pack("{s:f,s:i}", "0", 42.0, "1", 7);
    uint64_t rng = 1;

    (void)state;
    assert_true(load_captures_apply(&r, found, vars, &rng)); /* 42.0 === 42 */
    assert_int_equal(json_integer_value(json_object_get(vars, "id")), 7);
    json_object_del(vars, "id");
    json_decref(caps[0].value);
    caps[0].value = json_string("{{ want }}"); /* "42" !== 42 */
    assert_false(load_captures_apply(&r, found, vars, &rng));
    assert_null(json_object_get(vars, "id"));
    json_object_set_new(found, "0", json_string("42"));
    assert_true(load_captures_apply(&r, found, vars, &rng));
    json_object_set_new(found, "0", json_string("43"));
    caps[0].strict = false; /* a lenient match that fails fails nothing */
    assert_true(load_captures_apply(&r, found, vars, &rng));
    json_decref(caps[0].value);
    json_decref(found);
    json_decref(vars);
}

/* A regexp capture over a body: "" without a match, undefined from a named group that took no
 * part (the variable is removed, a match of "" fails), as Artillery's extractRegExp gives. */
static void test_regexp_undefined(void **state)
{
    struct load_capture caps[3] = {
        {.kind = LOAD_CAPTURE_REGEXP, .expr = "(?<x>x)|y", .templated = true, .as = "v"},
        {.kind = LOAD_CAPTURE_REGEXP, .expr = "nomatch", .templated = true, .as = "w"},
        {.kind = LOAD_CAPTURE_REGEXP, .expr = "(?<x>x)|y", .templated = true, .strict = true}};
    struct load_request r = {.captures = caps, .n_captures = 3};
    struct buf body = BUF_INIT;
    json_t *vars = json_pack("{s:s,s:s}", "v", "old", "w", "old"), *found = json_object();
    uint64_t rng = 1;

    (void)state;
    caps[0].group_spec = json_string("x");
    caps[2].group_spec = caps[0].group_spec;
    caps[2].value = json_string("");
    buf_append_cstr(&body, "y");
    load_captures_body(&r, &body, vars, &rng, found);
    assert_null(json_object_get(found, "0"));
    assert_string_equal(json_string_value(json_object_get(found, "1")), "");
    assert_false(load_captures_apply(&r, found, vars, &rng)); /* undefined !== "" */
    caps[2].strict = false;
    assert_true(load_captures_apply(&r, found, vars, &rng));
    assert_null(json_object_get(vars, "v"));
    assert_string_equal(json_string_value(json_object_get(vars, "w")), "");
    json_decref(caps[0].group_spec);
    json_decref(caps[2].value);
    buf_free(&body);
    json_decref(found);
    json_decref(vars);
}

/* A capture's name is a path, set as Artillery's _.set sets it, read back as {{ a.b }} reads it;
 * what it passes through is copied, as the script's variables are shared. */
static void test_nested_names(void **state)
{
    struct load_capture caps[4] = {{.kind = LOAD_CAPTURE_JSON, .as = "user.id"},
                                   {.kind = LOAD_CAPTURE_JSON, .as = "list[1].n"},
                                   {.kind = LOAD_CAPTURE_JSON, .as = "flat.key"},
                                   {.kind = LOAD_CAPTURE_JSON, .as = "s.x"}};
    struct load_request r = {.captures = caps, .n_captures = 4};
    json_t *shared = json_pack("{s:s}", "name", "ann");
    json_t *vars = json_pack("{s:O,s:i,s:s}", "user", shared, "flat.key", 0, "s", "text");
    json_t *found = json_pack("{s:i,s:i,s:i,s:i}", "0", 7, "1", 8, "2", 9, "3", 10);
    char *dump;
    uint64_t rng = 1;

    (void)state;
    assert_true(load_captures_apply(&r, found, vars, &rng));
    assert_int_equal(json_integer_value(load_vars_get(vars, "user.id")), 7);
    assert_string_equal(json_string_value(load_vars_get(vars, "user.name")), "ann");
    assert_null(json_object_get(shared, "id"));
    dump = json_dumps(vars, JSON_SORT_KEYS | JSON_COMPACT);
    /* a variable named "flat.key" stays one; a string in the way becomes an object */
    assert_string_equal(dump, "{\"flat.key\":9,\"list\":[null,{\"n\":8}],\"s\":{\"x\":10},"
                              "\"user\":{\"id\":7,\"name\":\"ann\"}}");
    free(dump);
    /* undefined leaves the path made and the member gone */
    json_object_del(found, "0");
    caps[0].strict = false;
    assert_true(load_captures_apply(&r, found, vars, &rng));
    assert_null(load_vars_get(vars, "user.id"));
    assert_string_equal(json_string_value(load_vars_get(vars, "user.name")), "ann");
    json_decref(shared);
    json_decref(found);
    json_decref(vars);
}

/* Header captures read the headers as Node gives them: a repeated Set-Cookie a list, repeats
 * of most headers ", "-joined, of those Node keeps once the first; any case of the name. */
static void test_repeated_headers(void **state)
{
    static const char head[] = "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nX-Id: 1\r\n"
                               "Content-Type: text/plain\r\nset-cookie: b=2\r\nX-ID: 2\r\n"
                               "Content-Type: text/html\r\nX-One: z\r\n\r\n";
    struct load_capture caps[5] = {{.kind = LOAD_CAPTURE_HEADER, .expr = "Set-Cookie", .as = "c"},
                                   {.kind = LOAD_CAPTURE_HEADER, .expr = "x-id", .as = "x"},
                                   {.kind = LOAD_CAPTURE_HEADER, .expr = "content-type", .as = "t"},
                                   {.kind = LOAD_CAPTURE_HEADER, .expr = "x-one", .as = "o"},
                                   {.kind = LOAD_CAPTURE_HEADER, .expr = "x-nope", .as = "n"}};
    struct load_request r = {.captures = caps, .n_captures = 5};
    struct http_response_head h;
    json_t *vars = json_object(), *found = json_object(), *headers = NULL;
    char *dump;
    uint64_t rng = 1;

    (void)state;
    assert_int_equal(http_parse_response(head, sizeof(head) - 1, NULL, &h), sizeof(head) - 1);
    load_captures_head(&r, &h, &headers, vars, &rng, found);
    assert_non_null(headers); /* made once, for the caller's hooks too */
    json_decref(headers);
    dump = json_dumps(found, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(dump, "{\"0\":[\"a=1\",\"b=2\"],\"1\":\"1, 2\",\"2\":\"text/plain\","
                              "\"3\":\"z\",\"4\":\"\"}");
    free(dump);
    json_decref(found);
    json_decref(vars);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_regexp),       cmocka_unit_test(test_apply_all_or_nothing),
        cmocka_unit_test(test_matches),      cmocka_unit_test(test_regexp_undefined),
        cmocka_unit_test(test_nested_names), cmocka_unit_test(test_repeated_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
