/* Cron expressions: the fields croner 4 (PM2's cron_restart) takes, and the next matching time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "lib/cron.h"

#define ALL_MINUTES ((UINT64_C(1) << 60) - 1)
#define DAYS_1_31   (UINT32_C(0xfffffffe))
#define MONTHS_ALL  ((uint16_t)0x1ffe)

static int utc(void **state)
{
    setenv("TZ", "UTC", 1);
    tzset();
    return 0;
}

/* A bit set of the values given, ended by -1. */
static uint64_t set_of(int v, ...)
{
    uint64_t bits = 0;
    va_list ap;

    va_start(ap, v);
    for (; v >= 0; v = va_arg(ap, int))
        bits |= UINT64_C(1) << v;
    va_end(ap);
    return bits;
}

static void parse_ok(const char *expr, struct cron *c)
{
    struct err e = {{0}};

    if (cron_parse(expr, c, &e) != 0)
        fail_msg("%s: %s", expr, e.msg);
}

static void test_five_fields_have_second_zero(void **state)
{
    struct cron c;

    parse_ok("0 * * * *", &c);
    assert_int_equal(c.seconds, 1);
    assert_int_equal(c.minutes, 1);
    assert_int_equal(c.hours, (1u << 24) - 1);
    assert_int_equal(c.days, DAYS_1_31);
    assert_int_equal(c.months, MONTHS_ALL);
    assert_int_equal(c.weekdays, 0x7f);
    assert_false(c.last_day);
    /* Blanks of any length, tabs included, separate the fields. */
    parse_ok("  7\t 8 * * *  ", &c);
    assert_int_equal(c.minutes, set_of(7, -1));
    assert_int_equal(c.hours, set_of(8, -1));
}

static void test_six_fields_start_with_seconds(void **state)
{
    struct cron c;

    parse_ok("*/2 * * * * *", &c);
    for (int s = 0; s < 60; s++)
        assert_int_equal(c.seconds >> s & 1, s % 2 == 0);
    assert_int_equal(c.minutes, ALL_MINUTES);
    parse_ok("30 5 4 * * *", &c);
    assert_int_equal(c.seconds, set_of(30, -1));
    assert_int_equal(c.minutes, set_of(5, -1));
    assert_int_equal(c.hours, set_of(4, -1));
}

static void test_ranges_steps_and_lists(void **state)
{
    struct cron c;

    parse_ok("*/15 9-17 1,15 * 1-5", &c);
    assert_int_equal(c.minutes, set_of(0, 15, 30, 45, -1));
    assert_int_equal(c.hours, set_of(9, 10, 11, 12, 13, 14, 15, 16, 17, -1));
    assert_int_equal(c.days, set_of(1, 15, -1));
    assert_int_equal(c.weekdays, set_of(1, 2, 3, 4, 5, -1));
    /* "a/n" runs from a to the field's end; "a-b/n" within the range. */
    parse_ok("5/20 10-20/5 */7 */5 *", &c);
    assert_int_equal(c.minutes, set_of(5, 25, 45, -1));
    assert_int_equal(c.hours, set_of(10, 15, 20, -1));
    assert_int_equal(c.days, set_of(1, 8, 15, 22, 29, -1));
    assert_int_equal(c.months, set_of(1, 6, 11, -1));
    /* Lists may hold ranges and steps (croner 4 refuses that; classic cron takes it). */
    parse_ok("1-3,10,*/20 * * * *", &c);
    assert_int_equal(c.minutes, set_of(0, 1, 2, 3, 10, 20, 40, -1));
    /* A step as wide as the field is allowed: its first value only. */
    parse_ok("*/60 * * * *", &c);
    assert_int_equal(c.minutes, set_of(0, -1));
}

static void test_weekday_zero_and_seven_are_sunday(void **state)
{
    struct cron c;
    struct cron seven;

    parse_ok("0 0 * * 0", &c);
    parse_ok("0 0 * * 7", &seven);
    assert_int_equal(c.weekdays, set_of(0, -1));
    assert_int_equal(seven.weekdays, set_of(0, -1));
    parse_ok("0 0 * * 5-7", &c);
    assert_int_equal(c.weekdays, set_of(0, 5, 6, -1));
}

static void test_month_and_weekday_names(void **state)
{
    struct cron c;

    parse_ok("0 0 * jan,Jul-SEP MON-fri", &c);
    assert_int_equal(c.months, set_of(1, 7, 8, 9, -1));
    assert_int_equal(c.weekdays, set_of(1, 2, 3, 4, 5, -1));
    parse_ok("0 0 * DEC sun,sat", &c);
    assert_int_equal(c.months, set_of(12, -1));
    assert_int_equal(c.weekdays, set_of(0, 6, -1));
    parse_ok("0 0 L * *", &c);
    assert_true(c.last_day);
    parse_ok("0 0 l feb *", &c);
    assert_true(c.last_day);
}

static void parse_bad(const char *expr, const char *want)
{
    struct cron c;
    struct err e = {{0}};

    assert_int_equal(cron_parse(expr, &c, &e), -EINVAL);
    if (!strstr(e.msg, want))
        fail_msg("%s: got \"%s\", want \"%s\"", expr, e.msg, want);
}

static void test_bad_expressions_say_why(void **state)
{
    parse_bad("", "expected 5 fields (minute hour day month weekday) or 6 (seconds first), got 0");
    parse_bad("* * * *", "got 4");
    parse_bad("* * * * * * *", "got more than 6");
    parse_bad("60 * * * *", "minutes: 60 out of range 0..59");
    parse_bad("60 * * * * *", "seconds: 60 out of range 0..59");
    parse_bad("* 24 * * *", "hours: 24 out of range 0..23");
    parse_bad("* * 0 * *", "day of month: 0 out of range 1..31");
    parse_bad("* * 32 * *", "day of month: 32 out of range 1..31");
    parse_bad("* * * 13 *", "month: 13 out of range 1..12");
    parse_bad("* * * 0 *", "month: 0 out of range 1..12");
    parse_bad("* * * * 8", "day of week: 8 out of range 0..7");
    parse_bad("99999999999 * * * *", "minutes: 99999999999 out of range 0..59");
    parse_bad("5-1 * * * *", "minutes: range 5-1 goes backwards");
    parse_bad("*/0 * * * *", "minutes: step \"0\" is not a number in 1..60");
    parse_bad("*/61 * * * *", "minutes: step \"61\" is not a number in 1..60");
    parse_bad("*/ * * * *", "minutes: step \"\" is not a number in 1..60");
    parse_bad("1,,2 * * * *", "minutes: expected a number at \",2\"");
    parse_bad("1, * * * *", "minutes: a list ends with ','");
    parse_bad("1-* * * * *", "minutes: expected a number at \"*\"");
    parse_bad("? * * * *", "minutes: expected a number at \"?\"");
    parse_bad("x * * * *", "minutes: expected a number at \"x\"");
    parse_bad("** * * * *", "minutes: unexpected \"*\"");
    parse_bad("1-2-3 * * * *", "minutes: unexpected \"-3\"");
    parse_bad("* * * * monday", "day of week: expected a number or a name at \"monday\"");
    parse_bad("* * * jan-foo *", "month: expected a number or a name at \"foo\"");
    parse_bad("* * * * jan", "day of week: expected a number or a name at \"jan\"");
    parse_bad("* * L5 * *", "day of month: expected a number at \"L5\"");
    parse_bad("0 0 30 2 *", "no month has such a day: \"0 0 30 2 *\" never matches");
    parse_bad("0 0 31 4,6,9,11 *", "never matches");
}

/* cron_next from after, in UTC. */
static time_t next_of(const char *expr, time_t after)
{
    struct cron c;
    time_t next = 0;

    parse_ok(expr, &c);
    assert_int_equal(cron_next(&c, after, &next), 0);
    return next;
}

static void test_next_carries_over_minutes_days_months_and_years(void **state)
{
    /* 2026-01-31 23:59:30 UTC -> 2026-02-01 00:00:00 */
    assert_int_equal(next_of("0 * * * *", 1769903970), 1769904000);
    /* Strictly after: a matching time gives the next one. */
    assert_int_equal(next_of("0 * * * *", 1769904000), 1769904000 + 3600);
    assert_int_equal(next_of("*/2 * * * * *", 1769904000), 1769904002);
    assert_int_equal(next_of("*/2 * * * * *", 1769904001), 1769904002);
    /* Friday 2026-03-06 17:50 -> Monday 09:00, Monday to Friday 9 to 17 every quarter. */
    assert_int_equal(next_of("*/15 9-17 * * mon-fri", 1772819400), 1773046800);
    /* The last day of February in a leap year, and in the next common one. */
    assert_int_equal(next_of("0 0 L * *", 1706745600), 1709164800);  /* 2024-02-29 */
    assert_int_equal(next_of("0 0 L 2 *", 1740787200), 1772236800);  /* 2026-02-28 */
    assert_int_equal(next_of("0 0 29 2 *", 1740787200), 1835395200); /* 2028-02-29 */
    /* Both day fields must match (croner 4): a 29 February that is a Monday. */
    assert_int_equal(next_of("0 0 29 2 mon", 1740787200), 2340316800); /* 2044-02-29 */
    /* 31 December 23:59:59 rolls into the next year. */
    assert_int_equal(next_of("0 0 1 1 *", 1798761599), 1798761600); /* 2027-01-01 */
}

static void test_next_skips_a_dst_gap_and_matches_a_fold_once(void **state)
{
    /* Central Europe without tzdata: CEST from the last Sunday of March, 02:00 CET (02:00-03:00
     * does not exist), to the last Sunday of October, 03:00 CEST (02:00-03:00 comes twice). */
    setenv("TZ", "CET-1CEST,M3.5.0,M10.5.0/3", 1);
    tzset();
    /* From 2026-03-28 02:30 CET: no 02:30 on the 29th, so 2026-03-30 02:30 CEST. */
    assert_int_equal(next_of("30 2 * * *", 1774661400), 1774830600);
    /* From 2026-10-25 02:00 CEST: 02:30 CEST, and the next is 02:30 CET a day later, not an hour
     * later. */
    assert_int_equal(next_of("30 2 * * *", 1792886400), 1792888200);
    assert_int_equal(next_of("30 2 * * *", 1792888200), 1792978200);
    utc(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_five_fields_have_second_zero),
        cmocka_unit_test(test_six_fields_start_with_seconds),
        cmocka_unit_test(test_ranges_steps_and_lists),
        cmocka_unit_test(test_weekday_zero_and_seven_are_sunday),
        cmocka_unit_test(test_month_and_weekday_names),
        cmocka_unit_test(test_bad_expressions_say_why),
        cmocka_unit_test(test_next_carries_over_minutes_days_months_and_years),
        cmocka_unit_test(test_next_skips_a_dst_gap_and_matches_a_fold_once),
    };
    return cmocka_run_group_tests(tests, utc, NULL);
}
