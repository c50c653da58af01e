#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "load/schedule.h"

static struct load_phase rate(int64_t ms, double r, double ramp)
{
    return (struct load_phase){NULL, ms, r, ramp, -1, false, -1};
}

static void test_constant_rate(void **state)
{
    struct load_phase p = rate(10000, 5, -1);
    struct load_schedule s;
    double t;
    size_t ph, n = 0;

    (void)state;
    assert_int_equal(load_phase_arrivals(&p), 50);
    load_schedule_init(&s, &p, 1);
    while (load_schedule_next(&s, &t, &ph)) {
        assert_true(fabs(t - (double)n * 200) < 1e-6);
        n++;
    }
    assert_int_equal(n, 50);
}

static void test_ramp(void **state)
{
    struct load_phase up = rate(10000, 0, 10), down = rate(10000, 10, 0), flat = rate(4000, 2, 2);
    struct load_schedule s;
    double t, prev = -1, first_half = 0;
    size_t ph, n = 0;

    (void)state;
    /* (0 + 10) / 2 * 10 s */
    assert_int_equal(load_phase_arrivals(&up), 50);
    assert_int_equal(load_phase_arrivals(&down), 50);
    assert_int_equal(load_phase_arrivals(&flat), 8);
    load_schedule_init(&s, &up, 1);
    while (load_schedule_next(&s, &t, &ph)) {
        assert_true(t > prev);
        assert_true(t < 10000);
        first_half += t < 5000;
        prev = t;
        n++;
    }
    assert_int_equal(n, 50);
    /* a linear ramp from 0 puts a quarter of the arrivals in the first half */
    assert_true(first_half >= 12 && first_half <= 13);
    /* ramping down: three quarters in the first half */
    first_half = 0;
    load_schedule_init(&s, &down, 1);
    while (load_schedule_next(&s, &t, &ph))
        first_half += t < 5000;
    assert_true(first_half >= 37 && first_half <= 38);
    /* rampTo equal to the rate is the constant rate */
    assert_true(fabs(load_phase_arrival_ms(&flat, 3) - 1500) < 1e-6);
}

static void test_count_pause_and_sequence(void **state)
{
    struct load_phase ps[3] = {
        {NULL, 7000, 0, -1, 7, false, -1}, /* arrivalCount 7 over 7 s */
        {NULL, 3000, 0, -1, -1, true, -1}, /* pause */
        rate(1000, 4, -1),
    };
    double want[] = {0, 1000, 2000, 3000, 4000, 5000, 6000, 10000, 10250, 10500, 10750};
    struct load_schedule s;
    double t;
    size_t ph, n = 0;

    (void)state;
    assert_int_equal(load_phase_arrivals(&ps[1]), 0);
    load_schedule_init(&s, ps, 3);
    while (load_schedule_next(&s, &t, &ph)) {
        assert_true(n < sizeof(want) / sizeof(want[0]));
        assert_true(fabs(t - want[n]) < 1e-6);
        assert_int_equal(ph, n < 7 ? 0 : 2);
        n++;
    }
    assert_int_equal(n, 11);
    assert_false(load_schedule_next(&s, &t, &ph));
}

static void test_fractional_rate(void **state)
{
    struct load_phase p = rate(10000, 0.5, -1), zero = rate(5000, 0, -1);

    (void)state;
    assert_int_equal(load_phase_arrivals(&p), 5);
    assert_true(fabs(load_phase_arrival_ms(&p, 1) - 2000) < 1e-6);
    assert_int_equal(load_phase_arrivals(&zero), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_constant_rate),
        cmocka_unit_test(test_ramp),
        cmocka_unit_test(test_count_pause_and_sequence),
        cmocka_unit_test(test_fractional_rate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
