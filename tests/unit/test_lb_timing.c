/* Response times: HAProxy's moving average over the last 1,024 requests, maxima, histograms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lb/timing.h"

static void record(struct lb_times *t, uint64_t q, uint64_t c, uint64_t r, uint64_t total)
{
    struct lb_time_sample s = {{q, c, r, total}};
    lb_times_record(t, &s);
}

static void test_exact_mean_until_the_window_is_full(void **state)
{
    (void)state;
    struct lb_times t;
    memset(&t, 0, sizeof(t));
    assert_int_equal(lb_times_avg_us(&t, LB_PHASE_RESPONSE), 0);
    record(&t, 0, 1000, 10000, 12000);
    record(&t, 0, 3000, 20000, 24000);
    record(&t, 3000, 2000, 30000, 36000);
    assert_int_equal(lb_times_avg_us(&t, LB_PHASE_QUEUE), 1000);
    assert_int_equal(lb_times_avg_us(&t, LB_PHASE_CONNECT), 2000);
    assert_int_equal(lb_times_avg_us(&t, LB_PHASE_RESPONSE), 20000);
    assert_int_equal(lb_times_avg_us(&t, LB_PHASE_TOTAL), 24000);
    assert_int_equal(atomic_load(&t.max_us[LB_PHASE_RESPONSE]), 30000);
    assert_int_equal(atomic_load(&t.max_us[LB_PHASE_QUEUE]), 3000);
}

static void test_sliding_window_follows_the_last_requests(void **state)
{
    (void)state;
    struct lb_times t;
    memset(&t, 0, sizeof(t));
    for (int i = 0; i < LB_TIME_SAMPLES; i++)
        record(&t, 0, 0, 100000, 100000);
    assert_int_equal(lb_times_avg_us(&t, LB_PHASE_RESPONSE), 100000);
    /* one window of faster requests: halfway there (1 - 1/e of the way, as swrate decays) */
    for (int i = 0; i < LB_TIME_SAMPLES; i++)
        record(&t, 0, 0, 200000, 200000);
    uint64_t avg = lb_times_avg_us(&t, LB_PHASE_RESPONSE);
    assert_true(avg > 150000 && avg < 180000);
    /* many windows later only the recent requests count */
    for (int i = 0; i < 10 * LB_TIME_SAMPLES; i++)
        record(&t, 0, 0, 200000, 200000);
    avg = lb_times_avg_us(&t, LB_PHASE_RESPONSE);
    assert_true(avg >= 199900 && avg <= 200000);
    assert_int_equal(atomic_load(&t.max_us[LB_PHASE_RESPONSE]), 200000);
}

static void test_histogram_buckets(void **state)
{
    (void)state;
    struct lb_times t;
    memset(&t, 0, sizeof(t));
    record(&t, 0, 400, 500, 900);         /* le 0.0005: both 400 and 500 (bounds inclusive) */
    record(&t, 0, 501, 1000, 1501);       /* le 0.001 */
    record(&t, 0, 0, 20000000, 20000000); /* above 10 s: +Inf only */
    assert_int_equal(atomic_load(&t.hist[LB_PHASE_RESPONSE][0]), 1);
    assert_int_equal(atomic_load(&t.hist[LB_PHASE_RESPONSE][1]), 1);
    assert_int_equal(atomic_load(&t.hist[LB_PHASE_RESPONSE][LB_HIST_BOUNDS]), 1);
    assert_int_equal(atomic_load(&t.hist[LB_PHASE_CONNECT][0]), 2); /* 400 and 0 */
    assert_int_equal(atomic_load(&t.hist[LB_PHASE_CONNECT][1]), 1);
    assert_int_equal(atomic_load(&t.hist[LB_PHASE_QUEUE][0]), 3);
    assert_int_equal(atomic_load(&t.hist_sum_us[LB_PHASE_RESPONSE]), 20001500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_mean_until_the_window_is_full),
        cmocka_unit_test(test_sliding_window_follows_the_last_requests),
        cmocka_unit_test(test_histogram_buckets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
