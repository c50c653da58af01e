#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lib/duration.h"

struct parse_case {
    const char *in;
    int64_t want;
};

/* Go's parseDurationTests (the non-negative ones). */
static const struct parse_case good[] = {
    {"0", 0},
    {"5s", 5 * DURATION_SEC},
    {"30s", 30 * DURATION_SEC},
    {"1478s", 1478 * DURATION_SEC},
    {"+5s", 5 * DURATION_SEC},
    {"+0", 0},
    {"-0", 0},
    {"-0s", 0},
    {"5.0s", 5 * DURATION_SEC},
    {"5.6s", 5 * DURATION_SEC + 600 * DURATION_MS},
    {"5.s", 5 * DURATION_SEC},
    {".5s", 500 * DURATION_MS},
    {"1.0s", DURATION_SEC},
    {"1.00s", DURATION_SEC},
    {"1.004s", DURATION_SEC + 4 * DURATION_MS},
    {"1.0040s", DURATION_SEC + 4 * DURATION_MS},
    {"100.00100s", 100 * DURATION_SEC + 1 * DURATION_MS},
    {"10ns", 10},
    {"11us", 11000},
    {"12\xc2\xb5s", 12000}, /* U+00B5 */
    {"12\xce\xbcs", 12000}, /* U+03BC */
    {"13ms", 13 * DURATION_MS},
    {"14s", 14 * DURATION_SEC},
    {"15m", 15 * 60 * DURATION_SEC},
    {"16h", 16 * 3600 * DURATION_SEC},
    {"3h30m", (3 * 3600 + 30 * 60) * DURATION_SEC},
    {"10.5s4m", 4 * 60 * DURATION_SEC + 10 * DURATION_SEC + 500 * DURATION_MS},
    {"1h2m3s4ms5us6ns",
     3600 * DURATION_SEC + 2 * 60 * DURATION_SEC + 3 * DURATION_SEC + 4 * DURATION_MS + 5000 + 6},
    {"39h9m14.425s",
     39 * 3600 * DURATION_SEC + 9 * 60 * DURATION_SEC + 14 * DURATION_SEC + 425 * DURATION_MS},
    {"52763797000ns", 52763797000},
    {"0.3333333333333333333h", 20 * 60 * DURATION_SEC},
    {"9007199254740993ns", INT64_C(9007199254740993)},
    {"9223372036854775807ns", INT64_MAX},
    {"9223372036854775.807us", INT64_MAX},
    {"9223372036s854ms775us807ns", INT64_MAX},
    {"0.100000000000000000000h", 6 * 60 * DURATION_SEC},
    {"0.830103483285477580700h", 49 * 60 * DURATION_SEC + 48 * DURATION_SEC + 372539827},
    {"1.5h", 5400 * DURATION_SEC},
};

static void test_parse_good(void **state)
{
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int64_t ns = -12345;
        int rc = duration_parse(str_from(good[i].in), &ns);
        if (rc != 0 || ns != good[i].want)
            print_error("case %s: rc %d ns %lld\n", good[i].in, rc, (long long)ns);
        assert_int_equal(rc, 0);
        assert_int_equal(ns, good[i].want);
    }
}

static void test_parse_bad(void **state)
{
    static const char *const bad[] = {
        "",
        "3",
        "-",
        "s",
        ".",
        "-.",
        ".s",
        "+.s",
        "1d",
        "\x85\x85",
        "\xff"
        "ff",
        "hello \xff world",
        "10 s",
        " 10s",
        "10s ",
        "1.5",
        "5s3",
        "-5s",
        "-1ns",
        "--5s",
        "+-5s",
        "1sm",
        "ms",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ns = 77;
        int rc = duration_parse(str_from(bad[i]), &ns);
        if (rc != -EINVAL)
            print_error("case \"%s\": rc %d\n", bad[i], rc);
        assert_int_equal(rc, -EINVAL);
        assert_int_equal(ns, 77);
    }
}

static void test_parse_overflow(void **state)
{
    static const char *const big[] = {
        "9223372036854775808ns",
        "9223372036854775.808us",
        "9223372036854ms775us808ns",
        "3000000h",
        "18446744073709551616ns",
        "9223372036854775807ns1ns",
        "106751991167h",
    };
    for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
        int64_t ns = 77;
        int rc = duration_parse(str_from(big[i]), &ns);
        if (rc != -ERANGE)
            print_error("case \"%s\": rc %d\n", big[i], rc);
        assert_int_equal(rc, -ERANGE);
        assert_int_equal(ns, 77);
    }
}

static void test_parse_slice_not_terminated(void **state)
{
    const char text[] = "15s999";
    int64_t ns = 0;
    assert_int_equal(duration_parse((struct str){text, 3}, &ns), 0);
    assert_int_equal(ns, 15 * DURATION_SEC);
}

struct format_case {
    int64_t ns;
    const char *want;
};

/* Go's durationTests plus Consul-typical values. */
static const struct format_case formats[] = {
    {0, "0s"},
    {1, "1ns"},
    {1100, "1.1\xc2\xb5s"},
    {1500, "1.5\xc2\xb5s"},
    {2200 * 1000, "2.2ms"},
    {500 * DURATION_MS, "500ms"},
    {DURATION_SEC, "1s"},
    {1500 * DURATION_MS, "1.5s"},
    {3300 * DURATION_MS, "3.3s"},
    {10 * DURATION_SEC, "10s"},
    {90 * DURATION_SEC, "1m30s"},
    {4 * 60 * DURATION_SEC + 5 * DURATION_SEC, "4m5s"},
    {4 * 60 * DURATION_SEC + 5001 * DURATION_MS, "4m5.001s"},
    {3600 * DURATION_SEC, "1h0m0s"},
    {2 * 3600 * DURATION_SEC, "2h0m0s"},
    {5 * 3600 * DURATION_SEC + 6 * 60 * DURATION_SEC + 7001 * DURATION_MS, "5h6m7.001s"},
    {(2 * 3600 + 45 * 60) * DURATION_SEC + 500 * DURATION_MS, "2h45m0.5s"},
    {8 * 60 * DURATION_SEC + 1, "8m0.000000001s"},
    {INT64_MAX, "2562047h47m16.854775807s"},
    {INT64_MIN, "-2562047h47m16.854775808s"},
    {-1500 * DURATION_MS, "-1.5s"},
    {-1, "-1ns"},
};

static void test_format(void **state)
{
    for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
        char out[32];
        duration_format(formats[i].ns, out, sizeof(out));
        assert_string_equal(out, formats[i].want);
    }
}

static void test_format_truncates(void **state)
{
    char out[4] = "xxx";
    duration_format(90 * DURATION_SEC, out, sizeof(out));
    assert_string_equal(out, "1m3");
    duration_format(90 * DURATION_SEC, out, 0);
    assert_string_equal(out, "1m3");
}

static void test_round_trip(void **state)
{
    static const int64_t values[] = {
        1, 999, 1000, 123456789, 60 * DURATION_SEC, 86400 * DURATION_SEC + 1, INT64_MAX};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        char out[32];
        int64_t back = -1;
        duration_format(values[i], out, sizeof(out));
        assert_int_equal(duration_parse(str_from(out), &back), 0);
        assert_int_equal(back, values[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good),     cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_parse_overflow), cmocka_unit_test(test_parse_slice_not_terminated),
        cmocka_unit_test(test_format),         cmocka_unit_test(test_format_truncates),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
