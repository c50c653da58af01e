#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/numfmt.h"

struct want {
    double d;
    const char *text;
};

static void expect_all(void (*fmt)(struct buf *, double), const struct want *w, size_t n)
{
    struct buf b = BUF_INIT;

    for (size_t i = 0; i < n; i++) {
        buf_reset(&b);
        fmt(&b, w[i].d);
        assert_string_equal(b.data, w[i].text);
    }
    buf_free(&b);
}

#define EXPECT_ALL(fmt, w) expect_all(fmt, w, sizeof(w) / sizeof(w[0]))

/* Whether some decimal of n digits near d (d's own rounding to n digits, or one unit of its
 * last digit either side) reads back as d. */
static bool n_digits_read_back(double d, int n)
{
    char s[40], t[48];

    if (n < 1)
        return false;
    snprintf(s, sizeof(s), "%.*e", n - 1, d);
    char *e = strchr(s, 'e');
    long long m = 0;
    int digits = 0;
    for (const char *p = s + (s[0] == '-'); p < e; p++)
        if (*p != '.') {
            m = m * 10 + (*p - '0');
            digits++;
        }
    int low = atoi(e + 1) - (digits - 1);
    for (long long k = m - 1; k <= m + 1; k++) {
        snprintf(t, sizeof(t), "%s%llde%d", s[0] == '-' ? "-" : "", k, low);
        if (k > 0 && strtod(t, NULL) == d)
            return true;
    }
    return false;
}

/* Powers of two, where the interval that reads back is lopsided: the digits of d's nearest
 * decimal are not always the fewest (Python's repr, Go and JavaScript print these). */
static void test_shortest_at_powers_of_two(void **state)
{
    static const struct {
        int exp;
        const char *digits;
    } cases[] = {{-24, "5960464477539063"}, {-44, "5684341886080802"}, {89, "6189700196426902"}};
    struct numfmt_digits g;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        numfmt_shortest(ldexp(1, cases[i].exp), &g);
        assert_string_equal(g.digits, cases[i].digits);
    }
    for (int exp = -1074; exp <= 1023; exp++) {
        double d = ldexp(1, exp);
        char s[48];
        numfmt_shortest(d, &g);
        snprintf(s, sizeof(s), "0.%se%d", g.digits, g.point);
        assert_true(strtod(s, NULL) == d);
        if (n_digits_read_back(d, g.n - 1))
            fail_msg("2^%d: %s is not the fewest digits", exp, g.digits);
    }
}

static void test_shortest_digits(void **state)
{
    struct numfmt_digits g;

    (void)state;
    numfmt_shortest(0.1, &g);
    assert_string_equal(g.digits, "1");
    assert_int_equal(g.n, 1);
    assert_int_equal(g.point, 0);
    assert_false(g.negative);
    numfmt_shortest(-1234.5, &g);
    assert_string_equal(g.digits, "12345");
    assert_int_equal(g.point, 4);
    assert_true(g.negative);
    numfmt_shortest(0, &g);
    assert_string_equal(g.digits, "0");
    assert_int_equal(g.point, 1);
    numfmt_shortest(-0.0, &g);
    assert_true(g.negative);
    /* 2^60: 16 digits read back, not the 19 of its exact value */
    numfmt_shortest(1152921504606846976.0, &g);
    assert_string_equal(g.digits, "1152921504606847");
    assert_int_equal(g.point, 19);
    numfmt_shortest(5e-324, &g);
    assert_string_equal(g.digits, "5");
    assert_int_equal(g.point, -323);
    numfmt_shortest(1.7976931348623157e308, &g);
    assert_string_equal(g.digits, "17976931348623157");
    assert_int_equal(g.point, 309);
}

/* What Go's strconv.FormatFloat(d, 'g', -1, 64) and so fmt's %v print. */
static void test_go_g(void **state)
{
    static const struct want w[] = {
        {8080, "8080"},      {1.5, "1.5"},
        {-0.25, "-0.25"},    {0, "0"},
        {-0.0, "-0"},        {123456, "123456"},
        {1e6, "1e+06"},      {1234567, "1.234567e+06"},
        {0.0001, "0.0001"},  {0.00001, "1e-05"},
        {1e20, "1e+20"},     {9007199254740993.0, "9.007199254740992e+15"},
        {1e100, "1e+100"},   {5e-324, "5e-324"},
        {NAN, "NaN"},        {INFINITY, "+Inf"},
        {-INFINITY, "-Inf"},
    };
    (void)state;
    EXPECT_ALL(numfmt_go_g, w);
}

/* strconv.FormatFloat(d, 'f', -1, 64): shortest digits, zeros to the point, no exponent. */
static void test_go_f(void **state)
{
    static const struct want w[] = {
        {1e21, "1000000000000000000000"},
        {1e-7, "0.0000001"},
        {1152921504606846976.0, "1152921504606847000"},
        {-12.5, "-12.5"},
        {0, "0"},
        {-0.0, "-0"},
        {NAN, "NaN"},
    };
    (void)state;
    EXPECT_ALL(numfmt_go_f, w);
}

/* encoding/json: 'f' from 1e-6 to 1e21, else 'e' with "e-07" written "e-7". */
static void test_json(void **state)
{
    static const struct want w[] = {
        {1e20, "100000000000000000000"},
        {9007199254740993.0, "9007199254740992"},
        /* past 2^53 the shortest digits, not the double's exact value (1152921504606846976) */
        {1152921504606846976.0, "1152921504606847000"},
        {123456789012345678901.0, "123456789012345680000"},
        {1e21, "1e+21"},
        {1.5e300, "1.5e+300"},
        {0.000001, "0.000001"},
        {1e-7, "1e-7"},
        {-2.5e-10, "-2.5e-10"},
        {0.5, "0.5"},
        {-0.0, "-0"},
    };
    (void)state;
    EXPECT_ALL(numfmt_json, w);
}

/* JavaScript's Number#toString. */
static void test_js(void **state)
{
    static const struct want w[] = {
        {100, "100"},
        {1.5, "1.5"},
        {0.1, "0.1"},
        {-250, "-250"},
        {1e20, "100000000000000000000"},
        {1e21, "1e+21"},
        {1.25e22, "1.25e+22"},
        {0.000001, "0.000001"},
        {1.5e-7, "1.5e-7"},
        {-0.0, "0"},
        {123456789.125, "123456789.125"},
        {0.5, "0.5"},
        {NAN, "NaN"},
        {INFINITY, "Infinity"},
        {-INFINITY, "-Infinity"},
    };
    (void)state;
    EXPECT_ALL(numfmt_js, w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shortest_digits),
        cmocka_unit_test(test_shortest_at_powers_of_two),
        cmocka_unit_test(test_go_g),
        cmocka_unit_test(test_go_f),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_js),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
