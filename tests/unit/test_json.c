#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "lib/alloc.h"
#include "lib/duration.h"
#include "lib/json.h"

static json_t *load(const char *text)
{
    json_error_t je;
    json_t *v = json_loads(text, 0, &je);
    if (!v)
        fail_msg("bad test JSON: %s", je.text);
    return v;
}

static void test_iget(void **state)
{
    json_t *o = load("{\"name\":1,\"NAME\":2,\"Port\":3,\"Deregister_Critical\":4,"
                     "\"DeregisterCriticalServiceAfter\":5}");
    assert_int_equal(json_integer_value(json_iget(o, "name")), 1);
    assert_int_equal(json_integer_value(json_iget(o, "NAME")), 2); /* exact match wins */
    assert_int_equal(json_integer_value(json_iget(o, "Name")), 1); /* first folded match */
    assert_int_equal(json_integer_value(json_iget(o, "port")), 3);
    assert_int_equal(json_integer_value(json_iget(o, "PORT")), 3);
    assert_null(json_iget(o, "por"));
    assert_null(json_iget(o, "deregister_critical_service_after"));
    assert_int_equal(json_integer_value(json_iget_snake(o, "deregister_critical_service_after")),
                     5);
    assert_int_equal(json_integer_value(json_iget_snake(o, "deregistercritical")), 4);
    assert_int_equal(json_integer_value(json_iget_snake(o, "port")), 3);
    assert_null(json_iget_snake(o, "deregister_critical_service"));
    assert_null(json_iget_snake(o, "_"));
    json_t *a = json_array();
    assert_null(json_iget(a, "x"));
    assert_null(json_iget(NULL, "x"));
    json_decref(a);
    json_decref(o);
}

static void test_type_name(void **state)
{
    json_t *v = load("[{},[],\"s\",1,1.5,true,false,null]");
    static const char *const want[] = {"object", "array", "number", "number",
                                       "bool",   "bool",  "null"};
    assert_string_equal(json_type_name(json_array_get(v, 0)), "object");
    assert_string_equal(json_type_name(json_array_get(v, 1)), "array");
    assert_string_equal(json_type_name(json_array_get(v, 2)), "string");
    for (size_t i = 3; i < 8; i++)
        assert_string_equal(json_type_name(json_array_get(v, i)), want[i - 1]);
    json_decref(v);
}

static void test_read_ok(void **state)
{
    json_t *o = load("{\"Name\":\"web\",\"port\":3000,\"EnableTagOverride\":true,\"Meta\":{},"
                     "\"tags\":[\"a\"],\"Address\":null,\"big\":9223372036854775807}");
    struct err e = {{0}};
    const char *s = "unchanged";
    int64_t i = -1;
    bool b = false;
    json_t *obj = NULL, *arr = NULL;

    assert_int_equal(json_read_string(o, "name", "ServiceDefinition.Name", &s, &e), 0);
    assert_string_equal(s, "web");
    assert_int_equal(json_read_int(o, "Port", "ServiceDefinition.Port", &i, &e), 0);
    assert_int_equal(i, 3000);
    assert_int_equal(json_read_int(o, "big", "X.Big", &i, &e), 0);
    assert_int_equal(i, INT64_MAX);
    assert_int_equal(json_read_bool(o, "enable_tag_override", "S.E", &b, &e), 0);
    assert_true(b);
    assert_int_equal(json_read_object(o, "meta", "S.Meta", &obj, &e), 0);
    assert_true(json_is_object(obj));
    assert_int_equal(json_read_array(o, "Tags", "S.Tags", &arr, &e), 0);
    assert_int_equal(json_array_size(arr), 1);

    /* Absent and null leave the output alone. */
    s = "keep";
    assert_int_equal(json_read_string(o, "Address", "S.Address", &s, &e), 0);
    assert_string_equal(s, "keep");
    assert_int_equal(json_read_string(o, "Kind", "S.Kind", &s, &e), 0);
    assert_string_equal(s, "keep");
    i = 7;
    assert_int_equal(json_read_int(o, "Weights", "S.W", &i, &e), 0);
    assert_int_equal(i, 7);
    assert_string_equal(e.msg, "");
    json_decref(o);
}

static void test_read_type_errors(void **state)
{
    json_t *o = load("{\"Port\":\"80\",\"Name\":5,\"Bool\":\"true\",\"Real\":1.5,\"Obj\":[1],"
                     "\"Arr\":{},\"Int\":true,\"Str2\":[],\"Exp\":1e+300}");
    struct err e;
    const char *s = NULL;
    int64_t i = 42;
    bool b = false;
    json_t *j = NULL;

    assert_int_equal(json_read_int(o, "port", "ServiceDefinition.Port", &i, &e), -EINVAL);
    assert_string_equal(e.msg, "json: cannot unmarshal string into Go struct field "
                               "ServiceDefinition.Port of type int");
    assert_int_equal(i, 42);
    assert_int_equal(json_read_string(o, "name", "ServiceDefinition.Name", &s, &e), -EINVAL);
    assert_string_equal(e.msg, "json: cannot unmarshal number into Go struct field "
                               "ServiceDefinition.Name of type string");
    assert_null(s);
    assert_int_equal(json_read_bool(o, "bool", "T.Bool", &b, &e), -EINVAL);
    assert_string_equal(e.msg,
                        "json: cannot unmarshal string into Go struct field T.Bool of type bool");
    assert_int_equal(json_read_int(o, "real", "T.Real", &i, &e), -EINVAL);
    assert_string_equal(
        e.msg, "json: cannot unmarshal number 1.5 into Go struct field T.Real of type int");
    assert_int_equal(json_read_int(o, "exp", "T.Exp", &i, &e), -EINVAL);
    assert_string_equal(
        e.msg, "json: cannot unmarshal number 1e+300 into Go struct field T.Exp of type int");
    assert_int_equal(json_read_int(o, "int", "T.Int", &i, &e), -EINVAL);
    assert_string_equal(e.msg,
                        "json: cannot unmarshal bool into Go struct field T.Int of type int");
    assert_int_equal(
        json_read_object(o, "obj", "ServiceDefinition.Check:structs.CheckType", &j, &e), -EINVAL);
    assert_string_equal(e.msg, "json: cannot unmarshal array into Go struct field "
                               "ServiceDefinition.Check of type structs.CheckType");
    assert_int_equal(json_read_array(o, "arr", "ServiceDefinition.Tags:[]string", &j, &e), -EINVAL);
    assert_string_equal(e.msg, "json: cannot unmarshal object into Go struct field "
                               "ServiceDefinition.Tags of type []string");
    assert_int_equal(json_read_object(o, "str2", "T.Meta", &j, &e), -EINVAL);
    assert_string_equal(e.msg, "json: cannot unmarshal array into Go struct field T.Meta of type "
                               "map[string]interface {}");
    assert_null(j);
    /* e may be NULL. */
    assert_int_equal(json_read_int(o, "port", "X.Port", &i, NULL), -EINVAL);
    json_decref(o);
}

static void test_read_duration(void **state)
{
    json_t *o = load("{\"Interval\":\"10s\",\"Timeout\":1500000000,\"TTL\":\"abc\",\"Bad\":true,"
                     "\"R\":0.5,\"Q\":\"a\\\"b\",\"Zero\":\"0\",\"Neg\":\"-5s\"}");
    struct err e;
    int64_t ns = -1;

    assert_int_equal(json_read_duration(o, "interval", "CheckType.Interval", &ns, &e), 0);
    assert_int_equal(ns, 10 * DURATION_SEC);
    assert_int_equal(json_read_duration(o, "timeout", "CheckType.Timeout", &ns, &e), 0);
    assert_int_equal(ns, 1500 * DURATION_MS);
    assert_int_equal(json_read_duration(o, "zero", "CheckType.Zero", &ns, &e), 0);
    assert_int_equal(ns, 0);
    ns = 9;
    assert_int_equal(json_read_duration(o, "absent", "CheckType.X", &ns, &e), 0);
    assert_int_equal(ns, 9);
    assert_int_equal(json_read_duration(o, "ttl", "CheckType.TTL", &ns, &e), -EINVAL);
    assert_string_equal(e.msg, "time: invalid duration \"abc\"");
    assert_int_equal(ns, 9);
    assert_int_equal(json_read_duration(o, "q", "CheckType.Q", &ns, &e), -EINVAL);
    assert_string_equal(e.msg, "time: invalid duration \"a\\\"b\"");
    assert_int_equal(json_read_duration(o, "neg", "CheckType.Neg", &ns, &e), -EINVAL);
    assert_string_equal(e.msg, "time: invalid duration \"-5s\"");
    assert_int_equal(json_read_duration(o, "bad", "CheckType.Bad", &ns, &e), -EINVAL);
    assert_string_equal(e.msg, "json: cannot unmarshal bool into Go struct field CheckType.Bad of "
                               "type time.Duration");
    assert_int_equal(json_read_duration(o, "r", "CheckType.R", &ns, &e), -EINVAL);
    assert_string_equal(e.msg, "json: cannot unmarshal number 0.5 into Go struct field "
                               "CheckType.R of type time.Duration");
    json_decref(o);
}

static void test_append(void **state)
{
    json_t *o = json_object();
    json_object_set_new(o, "Node", json_string("web1"));
    json_object_set_new(o, "Address", json_string("10.0.0.1"));
    json_object_set_new(o, "Tags", json_array());
    json_object_set_new(o, "Meta", json_object());
    json_t *ports = json_array();
    json_array_append_new(ports, json_integer(1));
    json_array_append_new(ports, json_true());
    json_object_set_new(o, "Ports", ports);

    struct buf b = BUF_INIT;
    buf_append_cstr(&b, "x");
    json_append(&b, o, false);
    assert_string_equal(b.data, "x{\"Node\":\"web1\",\"Address\":\"10.0.0.1\",\"Tags\":[],"
                                "\"Meta\":{},\"Ports\":[1,true]}");
    buf_reset(&b);
    json_append(&b, o, true);
    assert_string_equal(b.data, "{\n"
                                "  \"Node\": \"web1\",\n"
                                "  \"Address\": \"10.0.0.1\",\n"
                                "  \"Tags\": [],\n"
                                "  \"Meta\": {},\n"
                                "  \"Ports\": [\n"
                                "    1,\n"
                                "    true\n"
                                "  ]\n"
                                "}\n");
    buf_reset(&b);
    json_t *scalar = json_string("a\"b");
    json_append(&b, scalar, false);
    assert_string_equal(b.data, "\"a\\\"b\"");
    buf_reset(&b);
    json_append(&b, json_null(), true);
    assert_string_equal(b.data, "null\n");
    buf_reset(&b);
    /* Invalid UTF-8 smuggled in by a _nocheck constructor gives null, not half a document. */
    json_t *bad = json_stringn_nocheck("\xff", 1);
    json_append(&b, bad, false);
    assert_string_equal(b.data, "null");
    json_decref(bad);
    json_decref(scalar);
    json_decref(o);
    buf_free(&b);
}

/* Rounded reals print as the decimal they were rounded to, in json_append and in any dump that
 * passes JSON_MESH_REAL_PRECISION. */
static void test_real_round(void **state)
{
    json_t *a = json_array();
    json_array_append_new(a, json_real_round(7.0412578039999998, 0.001));
    json_array_append_new(a, json_real_round(0.30416251057267074, 0.1));
    json_array_append_new(a, json_real_round(12.345000000000001, 0.001));
    json_array_append_new(a, json_real_round(-2.25, 0.1));
    json_array_append_new(a, json_real_round(NAN, 0.1));
    json_array_append_new(a, json_real(0.1 + 0.2));

    struct buf b = BUF_INIT;
    json_append(&b, a, false);
    assert_string_equal(b.data, "[7.041,0.3,12.345,-2.3,0.0,0.3]");
    char *text = json_dumps(a, JSON_COMPACT | JSON_MESH_REAL_PRECISION);
    assert_string_equal(text, b.data);
    free(text);
    json_decref(a);
    buf_free(&b);
}

static void test_str_or_empty(void **state)
{
    json_t *v = json_str_or_empty(NULL);
    assert_string_equal(json_string_value(v), "");
    json_decref(v);
    v = json_str_or_empty("caf\xc3\xa9");
    assert_string_equal(json_string_value(v), "caf\xc3\xa9");
    json_decref(v);
    /* Each invalid byte becomes U+FFFD, as Go's encoder does. */
    v = json_str_or_empty("a\xff"
                          "b\xc3"
                          "c\xed\xa0\x80"
                          "d\xf0\x9f\x98\x80");
    assert_string_equal(json_string_value(v), "a\xef\xbf\xbd"
                                              "b\xef\xbf\xbd"
                                              "c\xef\xbf\xbd"
                                              "\xef\xbf\xbd\xef\xbf\xbd"
                                              "d\xf0\x9f\x98\x80");
    json_decref(v);
    v = json_str_or_empty("\xe2\x82");
    assert_string_equal(json_string_value(v), "\xef\xbf\xbd\xef\xbf\xbd");
    json_decref(v);
}

/* jansson allocates through xmalloc (alloc.h), set up before main. */
static void test_jansson_allocates_through_xmalloc(void **state)
{
    json_malloc_t m = NULL;
    json_free_t f = NULL;

    json_get_alloc_funcs(&m, &f);
    assert_ptr_equal(m, xmalloc);
    assert_ptr_equal(f, free);
}

/* The depth the API checks before jansson parses (jansson stops at 2048): brackets in strings,
 * escaped quotes included, do not count. */
static void test_text_depth(void **state)
{
    static const struct {
        const char *text;
        size_t depth;
    } cases[] = {
        {"1", 0},
        {"{}", 1},
        {"[[], {\"a\": [1]}]", 3},
        {"{\"a\": \"[[[{{{\"}", 1},
        {"{\"a\": \"\\\"[[[\"}", 1},
        {"]]]{", 1}, /* malformed: what the brackets say */
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(json_text_depth(cases[i].text, strlen(cases[i].text)), cases[i].depth);
    char deep[4096 + 1];
    memset(deep, '[', 2048);
    memset(deep + 2048, ']', 2048);
    deep[4096] = '\0';
    assert_int_equal(json_text_depth(deep, 4096), 2048);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iget),
        cmocka_unit_test(test_type_name),
        cmocka_unit_test(test_read_ok),
        cmocka_unit_test(test_read_type_errors),
        cmocka_unit_test(test_read_duration),
        cmocka_unit_test(test_append),
        cmocka_unit_test(test_real_round),
        cmocka_unit_test(test_text_depth),
        cmocka_unit_test(test_str_or_empty),
        cmocka_unit_test(test_jansson_allocates_through_xmalloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
