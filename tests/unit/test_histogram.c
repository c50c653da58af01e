#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/alloc.h"
#include "lib/histogram.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* Buckets tile the value range without gaps and each is at most 1/64 of its lower edge wide. */
static void test_buckets_tile(void **state)
{
    uint64_t lo, hi, prev_hi = 0;

    (void)state;
    for (unsigned i = 0; i < HISTOGRAM_BUCKETS; i++) {
        histogram_bucket_range(i, &lo, &hi);
        assert_int_equal(lo, prev_hi);
        assert_true(hi > lo);
        if (lo >= 128)
            assert_true((hi - lo) * 64 <= lo);
        assert_int_equal(histogram_bucket_of(lo), i);
        assert_int_equal(histogram_bucket_of(hi - 1), i);
        prev_hi = hi;
    }
    assert_int_equal(prev_hi, HISTOGRAM_MAX_VALUE + 1);
    assert_int_equal(histogram_bucket_of(UINT64_MAX), HISTOGRAM_BUCKETS - 1);
}

static void test_empty_and_exact(void **state)
{
    struct histogram h;

    (void)state;
    histogram_init(&h);
    assert_true(histogram_percentile(&h, 0.5) == 0);
    assert_true(histogram_mean(&h) == 0);
    for (uint64_t v = 1; v <= 100; v++)
        histogram_record(&h, v);
    assert_int_equal(h.count, 100);
    assert_int_equal(h.min, 1);
    assert_int_equal(h.max, 100);
    /* below 128 every value has its own bucket: percentiles are exact */
    assert_true(histogram_percentile(&h, 0.5) == 50);
    assert_true(histogram_percentile(&h, 0.99) == 99);
    assert_true(histogram_percentile(&h, 1.0) == 100);
    assert_true(histogram_mean(&h) == 50.5);
}

/* Against the exact sorted values: every percentile within the stated relative error. */
static void test_error_bound_random(void **state)
{
    enum { N = 20000 };
    static const double qs[] = {0.01, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999};
    uint64_t *vals = xcalloc(N, sizeof(*vals));
    struct histogram *h = xmalloc(sizeof(*h));

    (void)state;
    histogram_init(h);
    srand(42);
    for (size_t i = 0; i < N; i++) {
        /* log-uniform from 1 us to about 30 s */
        int shift = rand() % 25;
        vals[i] = ((uint64_t)rand() & ((UINT64_C(1) << shift) - 1)) + (UINT64_C(1) << shift);
        histogram_record(h, vals[i]);
    }
    qsort(vals, N, sizeof(*vals), cmp_u64);
    for (size_t i = 0; i < ARRAY_LEN(qs); i++) {
        size_t rank = (size_t)(qs[i] * N + 0.999999);
        double exact = (double)vals[rank - 1];
        double got = histogram_percentile(h, qs[i]);
        assert_true(got >= exact * (1 - HISTOGRAM_REL_ERROR));
        assert_true(got <= exact * (1 + HISTOGRAM_REL_ERROR));
    }
    free(vals);
    free(h);
}

static void test_merge_equals_single(void **state)
{
    struct histogram *a = xmalloc(sizeof(*a)), *b = xmalloc(sizeof(*b));
    struct histogram *all = xmalloc(sizeof(*all));

    (void)state;
    histogram_init(a);
    histogram_init(b);
    histogram_init(all);
    for (uint64_t v = 0; v < 5000; v++) {
        histogram_record(v % 2 ? a : b, v * 37);
        histogram_record(all, v * 37);
    }
    histogram_merge(a, b);
    assert_int_equal(a->count, all->count);
    assert_int_equal(a->min, all->min);
    assert_int_equal(a->max, all->max);
    assert_memory_equal(a->counts, all->counts, sizeof(a->counts));
    assert_true(histogram_percentile(a, 0.99) == histogram_percentile(all, 0.99));
    free(a);
    free(b);
    free(all);
}

static void test_huge_values_clamp(void **state)
{
    struct histogram h;

    (void)state;
    histogram_init(&h);
    histogram_record(&h, UINT64_MAX);
    assert_int_equal(h.max, HISTOGRAM_MAX_VALUE);
    assert_true(histogram_percentile(&h, 0.5) == (double)HISTOGRAM_MAX_VALUE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets_tile),       cmocka_unit_test(test_empty_and_exact),
        cmocka_unit_test(test_error_bound_random), cmocka_unit_test(test_merge_equals_single),
        cmocka_unit_test(test_huge_values_clamp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
