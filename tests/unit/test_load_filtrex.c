/* Filtrex expressions with JavaScript's values, as Artillery's ifTrue and ensure evaluate them
 * (the expected results are what filtrex 2.2 gives under Node.js). */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "load/filtrex.h"

static const json_t *lookup(void *data, const char *name)
{
    return json_object_get(data, name);
}

static json_t *vars(void)
{
    return json_pack("{s:s,s:i,s:s,s:i,s:s,s:b,s:i,s:i,s:[i]}", "id", "42", "n", 3, "empty", "",
                     "zero", 0, "s", "abc", "t", 1, "a.b", 7, "$loopCount", 2, "list", 1);
}

/* expr's truthiness, and (when want is not NaN) its number. */
static void check(const char *expr, bool want_true, double want)
{
    json_t *v = vars();
    struct err e = {""};
    bool t = !want_true;
    double n = 0;

    print_message("%s\n", expr);
    assert_int_equal(load_fx_eval(expr, lookup, v, &t, &n, &e), 0);
    assert_int_equal(t, want_true);
    if (!isnan(want))
        assert_true(n == want);
    json_decref(v);
}

static void test_values_like_javascript(void **state)
{
    (void)state;
    check("id", true, 42);    /* the string "42" */
    check("empty", false, 0); /* "" */
    check("zero", false, 0);
    check("missing", false, NAN); /* undefined */
    check("list", true, NAN);     /* an object is truthy */
    check("id == 42", true, 1);   /* loose equality */
    check("n > 2 and s == \"abc\"", true, 1);
    check("s and n", true, 3); /* Number("abc" && 3) */
    check("n or s", true, 3);
    check("s and empty", false, 0);
    check("not empty", true, 1);
    check("n in (1, 2, 3)", true, 1);
    check("\"3\" in (1, 2, 3)", false, 0); /* in is strict */
    check("n not in (1, 2)", true, 1);
    check("a.b == 7", true, 1); /* one name, not a path */
    check("'a.b' == 7", true, 1);
    check("id + 1 == \"421\"", true, 1); /* + with a string concatenates */
    check("\"a\" + n == \"a3\"", true, 1);
    check("n + 1 == 4", true, 1);
    check("(n ? s : id) == \"abc\"", true, 1);
    check("2 ^ 3 ^ 2", true, 64); /* left to right, as filtrex's grammar has it */
    check("-n", true, -3);
    check("max(1, n, 2)", true, 3);
    check("round(2.5)", true, 3);
    check("round(-2.5)", true, -2);
    check("s < \"abd\"", true, 1);
    check("missing == missing", true, 1);
    check("missing < 1", false, 0);
    check("t == 1", true, 1);
    check("$loopCount == 2", true, 1);
    check("n % 2", true, 1);
    check("not n == 0", true, 1);   /* (not n) == 0 */
    check("id >= \"5\"", false, 0); /* strings compare as strings */
    check("1 / 0 > 1000", true, 1);
}

static void test_errors(void **state)
{
    struct err e = {""};
    bool t;
    double n;

    (void)state;
    assert_int_equal(load_fx_check("n <", &e), -EINVAL);
    assert_string_equal(e.msg, "unexpected end of expression");
    assert_int_equal(load_fx_check("n > 1 )", &e), -EINVAL);
    assert_string_equal(e.msg, "unexpected \")\"");
    assert_int_equal(load_fx_check("a ? b", &e), -EINVAL);
    assert_int_equal(load_fx_check("s ~= \"a.c\"", &e), -EINVAL);
    assert_string_equal(e.msg, "\"~=\" is not supported");
    assert_int_equal(load_fx_check("nope(1)", &e), -EINVAL);
    assert_string_equal(e.msg, "unknown function nope()");
    assert_int_equal(load_fx_check("\"open", &e), -EINVAL);
    assert_int_equal(load_fx_eval("((((((((((((((((((((((((((((((((((1", NULL, NULL, &t, &n, &e),
                     -EINVAL);
    assert_string_equal(e.msg, "expression nested too deep");
}

/* A group that parses but never closes drops its value (LeakSanitizer fails the test if not). */
static void test_unclosed_group_frees_its_value(void **state)
{
    struct err e = {""};

    (void)state;
    assert_int_equal(load_fx_check("(\"abc\"", &e), -EINVAL);
    assert_string_equal(e.msg, "unexpected end of expression");
    assert_int_equal(load_fx_check("(\"abc\", \"def\")", &e), -EINVAL);
    assert_string_equal(e.msg, "a list belongs after \"in\"");
    assert_int_equal(load_fx_check("not -(\"abc\" + \"def\"", &e), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_like_javascript),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_unclosed_group_frees_its_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
