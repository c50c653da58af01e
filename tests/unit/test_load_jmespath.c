/* JMESPath's subset as expect's jmespath checks use it; the expected values are what
 * jmespath.js 0.16 (artillery-plugin-expect's) gives for the same expressions and document. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "load/jmespath.h"

static const char DOC[] =
    "{\"items\": [{\"id\": 1, \"name\": \"a\", \"tags\": [\"x\", \"y\"], \"price\": 2.5},"
    "            {\"id\": 2, \"name\": \"b\", \"tags\": [], \"price\": 10},"
    "            {\"id\": 3, \"name\": \"c\", \"tags\": [\"z\"]}],"
    " \"count\": 3, \"ok\": true, \"empty\": \"\", \"zero\": 0,"
    " \"nested\": {\"a\": {\"b\": {\"c\": \"deep\"}}}, \"map\": {\"k1\": {\"v\": 1}, \"k2\": "
    "{\"v\": 2}},"
    " \"lists\": [[1, 2], [3], 4], \"text\": \"h\\u00e9llo\\ud83d\\ude00\", \"weird key\": 5}";

/* expr over DOC gives the JSON want. */
static void check(const char *expr, const char *want)
{
    json_t *doc = json_loads(DOC, 0, NULL), *w = json_loads(want, JSON_DECODE_ANY, NULL), *got;
    struct load_jmes *q;
    struct err e = {""};
    char *text;

    print_message("%s\n", expr);
    assert_non_null(doc);
    assert_non_null(w);
    assert_int_equal(load_jmes_compile(expr, &q, &e), 0);
    got = load_jmes_search(q, doc, &e);
    assert_non_null(got);
    text = json_dumps(got, JSON_ENCODE_ANY | JSON_COMPACT);
    print_message("  -> %s\n", text);
    assert_true(json_equal(got, w));
    free(text);
    json_decref(got);
    json_decref(w);
    json_decref(doc);
    load_jmes_free(q);
}

static void test_fields_indexes_and_slices(void **state)
{
    (void)state;
    check("count", "3");
    check("items[0].name", "\"a\"");
    check("items[-1].id", "3");
    check("items[5]", "null");
    check("nested.a.b.c", "\"deep\"");
    check("nested.x.y", "null");
    check("\"weird key\"", "5");
    check("@.count", "3");
    check("(count)", "3");
    check("items[0:2].name", "[\"a\", \"b\"]");
    check("items[::-1].id", "[3, 2, 1]");
    check("items[1:].id", "[2, 3]");
    check("items[:-1].id", "[1, 2]");
    check("items[::2].id", "[1, 3]");
    check("items[0:10:1].id", "[1, 2, 3]");
    check("count[0]", "null");
}

static void test_projections_and_filters(void **state)
{
    (void)state;
    check("items[*].id", "[1, 2, 3]");
    check("items[*].price", "[2.5, 10]"); /* nulls left out */
    check("items[*].tags[0]", "[\"x\", \"z\"]");
    check("items[*].tags | [0]", "[\"x\", \"y\"]"); /* a pipe ends the projection */
    check("map.*.v", "[1, 2]");
    check("lists[]", "[1, 2, 3, 4]");
    check("items[].tags[]", "[\"x\", \"y\", \"z\"]");
    check("items[?name=='b'].id", "[2]");
    check("items[?name=='b'].id | [0]", "2");
    check("items[?price > `5`].name", "[\"b\"]");
    check("items[?tags].name", "[\"a\", \"c\"]"); /* [] is false */
    check("items[?!tags].id", "[2]");
    check("items[?id >= `2` && id < `3`].name", "[\"b\"]");
    check("items[?name == `\"c\"`] | [0].id", "3");
    check("count[*]", "null");
}

static void test_functions_literals_and_logic(void **state)
{
    (void)state;
    check("length(items)", "3");
    check("length(items) == `3`", "true");
    check("length(text)", "7"); /* UTF-16 units, as JavaScript counts */
    check("length(nested)", "1");
    check("length(`[]`)", "0");
    check("'raw'", "\"raw\"");
    check("'it\\'s'", "\"it's\"");
    check("`{\"a\": 1}`", "{\"a\": 1}");
    check("ok && count", "3");
    check("empty || zero", "0"); /* 0 is true to JMESPath */
    check("!empty", "true");
    check("count == `3.0`", "true");
    check("name == 'a'", "false");
    check("items[0].tags[0] == `\"x\"`", "true");
    check("items[0] == `{\"id\": 1, \"name\": \"a\", \"tags\": [\"x\", \"y\"], \"price\": 2.5}`",
          "true");
    check("map.k1 != map.k2", "true");
    check("count < `\"a\"`", "false"); /* NaN */
    check("missing < `1`", "true");    /* null is 0 to JavaScript's < */
    check("'abc' < 'abd'", "true");
}

static void test_type_errors_at_search(void **state)
{
    json_t *doc = json_loads(DOC, 0, NULL);
    struct load_jmes *q;
    struct err e = {""};

    (void)state;
    assert_int_equal(load_jmes_compile("length(count)", &q, &e), 0);
    assert_null(load_jmes_search(q, doc, &e));
    assert_string_equal(e.msg, "length() wants a string, an array or an object");
    load_jmes_free(q);
    json_decref(doc);
}

static void refused(const char *expr, const char *msg)
{
    struct load_jmes *q = (struct load_jmes *)&q;
    struct err e = {""};

    print_message("%s\n", expr);
    assert_int_equal(load_jmes_compile(expr, &q, &e), -EINVAL);
    assert_null(q);
    assert_string_equal(e.msg, msg);
}

static void test_refused_constructs(void **state)
{
    (void)state;
    refused("items[id, name]", "a multi-select list [a, b] is not supported at column 7");
    refused("items[*].[id, name]", "a multi-select list .[a, b] is not supported at column 10");
    refused("{a: count}", "a multi-select hash {k: v} is not supported at column 1");
    refused("items.{a: id}", "a multi-select hash .{k: v} is not supported at column 7");
    refused("sort_by(items, &id)",
            "the function sort_by() (length() is supported) is not supported at column 1");
    refused("length(&id)", "an expression reference &expr is not supported at column 8");
    refused("keys(@)", "the function keys() (length() is supported) is not supported at column 1");
}

static void test_syntax_errors(void **state)
{
    (void)state;
    refused("", "an unexpected token at column 1");
    refused("a.", "want a name after `.` at column 3");
    refused("a[", "want a number, `:` or `*` after `[` at column 3");
    refused("a[1", "want a number, `:` or `]` in an index at column 4");
    refused("a[1:2:3:4]", "a slice with more than three parts at column 8");
    refused("a[::0]", "a slice's step of 0 at column 3");
    refused("a == 1", "an unexpected token at column 7");
    refused("'open", "a raw string never closed at column 1");
    refused("`{nope`", "a `literal` that is not JSON at column 1");
    refused("a b", "an unexpected token at column 3");
    refused("length(a, b)", "length() takes one argument at column 9");
    refused("a ~ b", "an unexpected character at column 3");
    refused("((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((a))))))))))))))))))"
            "))))))))))))))))))))))))))))))))))))))))))))))))",
            "an expression nested too deep at column 65");
}

/* "a" and n links of `link` (".a", "[0]"...), in buf. */
static const char *chain(char *buf, const char *link, size_t n)
{
    size_t len = strlen(link);

    buf[0] = 'a';
    for (size_t i = 0; i < n; i++)
        memcpy(buf + 1 + i * len, link, len);
    buf[1 + n * len] = '\0';
    return buf;
}

/* Operators chain without nesting (a.b.c is (a.b).c), so a long chain is a deep tree that
 * evaluating and freeing walk recursively: a million links overflowed their stack. */
static void test_long_chains_are_refused(void **state)
{
    static const char *const links[] = {".a", "|a", "[0]", "[]"};
    static char buf[1 + 1100 * 3 + 1];
    struct load_jmes *q;
    struct err e = {""};
    char want[64];

    (void)state;
    for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
        assert_int_equal(load_jmes_compile(chain(buf, links[i], 1024), &q, &e), 0);
        json_t *doc = json_loads("{\"a\": {\"a\": 1}}", 0, NULL),
               *got = load_jmes_search(q, doc, &e);
        assert_non_null(got);
        json_decref(got);
        json_decref(doc);
        load_jmes_free(q);
        snprintf(want, sizeof(want), "an expression chained too long at column %zu",
                 2 + strlen(links[i]) * 1024);
        refused(chain(buf, links[i], 1100), want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields_indexes_and_slices),
        cmocka_unit_test(test_projections_and_filters),
        cmocka_unit_test(test_functions_literals_and_logic),
        cmocka_unit_test(test_type_errors_at_search),
        cmocka_unit_test(test_refused_constructs),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_long_chains_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
