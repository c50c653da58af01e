#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "load/ensure.h"

static json_t *aggregate(void)
{
    return json_pack("{s:{s:i,s:i,s:i,s:i,s:i},s:{s:i},s:{s:{s:f,s:f}}}", "counters",
                     "http.requests", 100, "http.codes.200", 95, "vusers.created", 50,
                     "vusers.completed", 49, "errors.ETIMEDOUT", 1, "rates", "http.request_rate",
                     10, "summaries", "http.response_time", "p95", 12.5, "p99", 40.0);
}

static bool eval(const json_t *agg, const char *expr)
{
    struct err e = {""};
    bool r = false;

    assert_int_equal(load_ensure_eval(expr, agg, &r, &e), 0);
    return r;
}

static void test_expressions(void **state)
{
    json_t *agg = aggregate();
    struct err e = {""};
    bool r;
    double v;

    (void)state;
    assert_true(load_metric_value(agg, "http.response_time.p99", &v) && v == 40);
    assert_true(load_metric_value(agg, "http.codes.200", &v) && v == 95);
    assert_false(load_metric_value(agg, "http.codes.500", &v));
    assert_true(eval(agg, "http.response_time.p95 < 200 and http.request_rate > 5"));
    assert_false(eval(agg, "http.response_time.p99 < 20"));
    assert_true(eval(agg, "http.response_time.p99 < 20 or http.codes.200 >= 95"));
    assert_true(eval(agg, "http.codes.200 / http.requests * 100 >= 95"));
    assert_true(eval(agg, "not (errors.ETIMEDOUT == 0)"));
    /* never produced: undefined, as the plugin's filtrex sees it */
    assert_false(eval(agg, "errors.ECONNREFUSED == 0"));
    assert_false(eval(agg, "errors.ECONNREFUSED < 1"));
    assert_true(eval(agg, "not (errors.ECONNREFUSED >= 1)"));
    assert_true(eval(agg, "(1 + 2) * 3 == 9 and -1 < 0 and 2 != 3 and 3 <= 3"));
    assert_int_equal(load_ensure_eval("http.requests <", agg, &r, &e), -EINVAL);
    assert_string_equal(e.msg, "unexpected end of expression");
    assert_int_equal(load_ensure_eval("http.requests > 1 )", agg, &r, &e), -EINVAL);
    assert_int_equal(load_ensure_eval("a ? b", agg, &r, &e), -EINVAL);
    json_decref(agg);
}

static void test_checks(void **state)
{
    json_t *agg = aggregate();
    struct load_threshold th[] = {{"http.response_time.p99", 100, false},
                                  {"http.response_time.p95", 10, false}};
    struct load_condition co[] = {{"http.request_rate > 100", false},
                                  {"http.request_rate > 100", true}};
    struct load_script s = {.thresholds = th, .n_thresholds = 2, .max_error_rate = -1};
    char out[2048] = "";
    FILE *f = fmemopen(out, sizeof(out), "w");

    (void)state;
    assert_int_equal(load_ensure_check(&s, agg, f), 1);
    s.n_thresholds = 0;
    s.conditions = co;
    s.n_conditions = 1;
    assert_int_equal(load_ensure_check(&s, agg, f), 0); /* not strict */
    s.n_conditions = 2;
    assert_int_equal(load_ensure_check(&s, agg, f), 1);
    s.n_conditions = 0;
    s.max_error_rate = 1; /* 1 of 50 VUs failed: 2 % */
    assert_int_equal(load_ensure_check(&s, agg, f), 1);
    s.max_error_rate = 2;
    assert_int_equal(load_ensure_check(&s, agg, f), 0);
    fclose(f);
    assert_non_null(strstr(out, "ok: http.response_time.p99 < 100\n"));
    assert_non_null(strstr(out, "fail: http.response_time.p95 < 10\n"));
    assert_non_null(strstr(out, "fail: http.request_rate > 100 (optional)\n"));
    assert_non_null(strstr(out, "fail: maxErrorRate < 1 (was 2.00%)\n"));
    json_decref(agg);
}

/* As the plugin checks them: a metric never produced fails the check that reads it. */
static void test_checks_on_metrics_never_produced(void **state)
{
    json_t *agg = json_pack("{s:{s:i,s:i,s:i,s:i}}", "counters", "http.requests", 4,
                            "vusers.created", 4, "vusers.failed", 4, "errors.ECONNREFUSED", 4);
    struct load_threshold th[] = {{"http.response_time.p95", 100, false},
                                  {"http.response_time.p99", 10, true},
                                  {"http.codes.500", 1e6, false}};
    struct load_script s = {.thresholds = th, .n_thresholds = 3, .max_error_rate = -1};
    char out[2048] = "";
    FILE *f = fmemopen(out, sizeof(out), "w");

    (void)state;
    assert_int_equal(load_ensure_check(&s, agg, f), 3);
    s.n_thresholds = 0;
    s.max_error_rate = 100; /* no user completed: vusers.completed is not there */
    assert_int_equal(load_ensure_check(&s, agg, f), 1);
    fclose(f);
    assert_non_null(strstr(out, "fail: http.response_time.p95 < 100\n"));
    assert_non_null(strstr(out, "fail: p99 < 10\n")); /* Artillery 1's form, its name */
    assert_non_null(strstr(out, "fail: http.codes.500 < 1000000\n")); /* JavaScript's text */
    assert_non_null(strstr(out, "fail: maxErrorRate < 100\n"));
    json_decref(agg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expressions),
        cmocka_unit_test(test_checks),
        cmocka_unit_test(test_checks_on_metrics_never_produced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
