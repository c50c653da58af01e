/* JSONPath as jsonpath-plus reads it for captures: what a path finds, in its order, and what
 * is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/alloc.h"
#include "load/jsonpath.h"

static const char doc_text[] =
    "{\"items\": [{\"id\": 1, \"tags\": [\"a\"]}, {\"id\": 2, \"sub\": {\"id\": 3}}, {\"x\": "
    "null}],"
    " \"a b\": {\"c.d\": \"e\"}, \"n\": 7, \"obj\": {\"0\": \"zero\", \"length\": \"L\"}}";

/* What path finds in the document, as compact JSON of the list of values. */
static char *all(const char *path)
{
    json_t *doc = json_loads(doc_text, 0, NULL), *out = json_array();
    char *text;

    assert_non_null(doc);
    load_jsonpath_all(doc, path, out);
    text = json_dumps(out, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(out);
    json_decref(doc);
    return text;
}

#define CHECK_ALL(path, want)                                                                      \
    do {                                                                                           \
        char *got_ = all(path);                                                                    \
        assert_string_equal(got_, want);                                                           \
        free(got_);                                                                                \
    } while (0)

static void test_paths(void **state)
{
    (void)state;
    CHECK_ALL("$.n", "[7]");
    CHECK_ALL("$.items[0].id", "[1]");
    CHECK_ALL("$.items.1.id", "[2]");
    CHECK_ALL("$.items[-1].x", "[null]"); /* the last: mesh load's reading */
    CHECK_ALL("$['a b']['c.d']", "[\"e\"]");
    CHECK_ALL("$[\"a b\"]", "[{\"c.d\":\"e\"}]");
    CHECK_ALL("$.items[*].id", "[1,2]");
    CHECK_ALL("$.items.*.id", "[1,2]");
    CHECK_ALL("$..id", "[1,2,3]");
    CHECK_ALL("$..tags[0]", "[\"a\"]");
    CHECK_ALL("$.items[0,2]", "[{\"id\":1,\"tags\":[\"a\"]},{\"x\":null}]");
    CHECK_ALL("$['n','nope','a b']", "[7,{\"c.d\":\"e\"}]");
    CHECK_ALL("$.items[1:].id", "[2]");
    CHECK_ALL("$.items[-2:]..id", "[2,3]");
    CHECK_ALL("$.items[::2].id", "[1]");
    CHECK_ALL("$.items.length", "[3]");
    CHECK_ALL("$.obj.length", "[\"L\"]"); /* a member first */
    CHECK_ALL("$.obj[0]", "[\"zero\"]");
    CHECK_ALL("$.items[01]", "[]");
    CHECK_ALL("$.nope.x", "[]");
    CHECK_ALL("$.n.x", "[]");
    CHECK_ALL("$", "[{\"items\":[{\"id\":1,\"tags\":[\"a\"]},{\"id\":2,\"sub\":{\"id\":3}},"
                   "{\"x\":null}],\"a b\":{\"c.d\":\"e\"},\"n\":7,\"obj\":{\"0\":\"zero\","
                   "\"length\":\"L\"}}]");
}

static void test_refused(void **state)
{
    struct err e = {""};

    (void)state;
    assert_int_equal(load_jsonpath_check("$.items[*].id", &e), 0);
    assert_int_equal(load_jsonpath_check("items", &e), -EINVAL);
    assert_string_equal(e.msg, "a JSONPath starts with \"$\"");
    assert_int_equal(load_jsonpath_check("$.items[?(@.id > 1)]", &e), -EINVAL);
    assert_string_equal(e.msg, "filters and expressions such as [?(@.id > 1)] are not supported");
    assert_int_equal(load_jsonpath_check("$.items[(@.length-1)]", &e), -EINVAL);
    assert_int_equal(load_jsonpath_check("$.items^", &e), -EINVAL);
    assert_int_equal(load_jsonpath_check("$.items[0", &e), -EINVAL);
    assert_string_equal(e.msg, "\"$.items[0\" is not a JSONPath this reads ($.a.b, $['a b'], "
                               "$.items[0], $.items[*].id, $..id, [0,1], [1:3])");
    assert_int_equal(load_jsonpath_check("$.", &e), -EINVAL);
    CHECK_ALL("$.items[?(@.id)]", "[]");
}

/* "$..a..a..a" over a deep document of "a"s revisits subtrees: bounded, whatever it finds. */
static void test_bounded(void **state)
{
    json_t *doc = json_object(), *leaf = doc, *out = json_array();

    (void)state;
    for (int i = 0; i < 2000; i++) {
        json_t *next = json_object();

        json_object_set_new(leaf, "a", next);
        leaf = next;
    }
    load_jsonpath_all(doc, "$..a..a..a..a..nope", out);
    assert_int_equal(json_array_size(out), 0);
    load_jsonpath_all(doc, "$..a", out);
    assert_true(json_array_size(out) > 0 && json_array_size(out) <= 4096);
    json_decref(out);
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
