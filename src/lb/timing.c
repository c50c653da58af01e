/* Response times: HAProxy's moving averages and maxima, and Prometheus histograms. */
#include "lb/timing.h"

const uint64_t lb_hist_bounds_us[LB_HIST_BOUNDS] = {
    500,    1000,   2500,   5000,    10000,   25000,   50000,
    100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
};

/*
 * HAProxy's swrate_add_dynamic: while fewer than n samples were taken (n passed as 0) the sum
 * is a plain sum; from then on each sample replaces an average one, so the sum is that of about
 * the last n samples. A CAS loop, as workers record concurrently.
 */
static void swrate_add(_Atomic uint64_t *sum, uint64_t n, uint64_t v)
{
    uint64_t old = atomic_load_explicit(sum, memory_order_relaxed), next;

    do {
        next = old - (n ? (old + n - 1) / n : 0) + v;
    } while (!atomic_compare_exchange_weak_explicit(sum, &old, next, memory_order_relaxed,
                                                    memory_order_relaxed));
}

static void note_max(_Atomic uint64_t *max, uint64_t v)
{
    uint64_t cur = atomic_load_explicit(max, memory_order_relaxed);

    while (v > cur && !atomic_compare_exchange_weak_explicit(max, &cur, v, memory_order_relaxed,
                                                             memory_order_relaxed))
        ;
}

static unsigned bucket_of(uint64_t us)
{
    unsigned i = 0;

    while (i < LB_HIST_BOUNDS && us > lb_hist_bounds_us[i])
        i++;
    return i;
}

void lb_times_record(struct lb_times *t, const struct lb_time_sample *s)
{
    uint64_t k = atomic_fetch_add_explicit(&t->samples, 1, memory_order_relaxed) + 1;
    uint64_t n = k > LB_TIME_SAMPLES ? LB_TIME_SAMPLES : 0;

    for (int p = 0; p < LB_PHASES; p++) {
        swrate_add(&t->sum_us[p], n, s->us[p]);
        note_max(&t->max_us[p], s->us[p]);
    }
    for (int p = 0; p < LB_HIST_PHASES; p++) {
        atomic_fetch_add_explicit(&t->hist[p][bucket_of(s->us[p])], 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&t->hist_sum_us[p], s->us[p], memory_order_relaxed);
    }
}

uint64_t lb_times_avg_us(const struct lb_times *t, enum lb_phase p)
{
    uint64_t k = atomic_load_explicit(&t->samples, memory_order_relaxed);
    uint64_t n = k < LB_TIME_SAMPLES ? k : LB_TIME_SAMPLES;
    uint64_t sum = atomic_load_explicit(&t->sum_us[p], memory_order_relaxed);

    return n ? (sum + n - 1) / n : 0;
}
