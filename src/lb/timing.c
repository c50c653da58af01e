/* Response times: HAProxy's moving averages and maxima, and Prometheus histograms. */
#include "lb/timing.h"

const uint64_t lb_hist_bounds_us[LB_HIST_BOUNDS] = {
    500,    1000,   2500,   5000,    10000,   25000,   50000,
    100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
};

static uint64_t load(const _Atomic uint64_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

static void store(_Atomic uint64_t *v, uint64_t x)
{
    atomic_store_explicit(v, x, memory_order_relaxed);
}

/*
 * HAProxy's swrate_add_dynamic: while fewer than n samples were taken (n passed as 0) the sum
 * is a plain sum; from then on each sample replaces an average one, so the sum is that of about
 * the last n samples.
 */
static void swrate_add(_Atomic uint64_t *sum, uint64_t n, uint64_t v)
{
    uint64_t old = load(sum);

    store(sum, old - (n ? (old + n - 1) / n : 0) + v);
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
    uint64_t k = load(&t->samples) + 1;
    uint64_t n = k > LB_TIME_SAMPLES ? LB_TIME_SAMPLES : 0;

    store(&t->samples, k);
    for (int p = 0; p < LB_PHASES; p++) {
        swrate_add(&t->sum_us[p], n, s->us[p]);
        if (s->us[p] > load(&t->max_us[p]))
            store(&t->max_us[p], s->us[p]);
    }
    for (int p = 0; p < LB_HIST_PHASES; p++) {
        _Atomic uint64_t *b = &t->hist[p][bucket_of(s->us[p])];
        store(b, load(b) + 1);
        store(&t->hist_sum_us[p], load(&t->hist_sum_us[p]) + s->us[p]);
    }
}

void lb_times_add(struct lb_times_total *sum, const struct lb_times *t)
{
    uint64_t k = load(&t->samples);

    sum->window += k < LB_TIME_SAMPLES ? k : LB_TIME_SAMPLES;
    for (int p = 0; p < LB_PHASES; p++) {
        uint64_t max = load(&t->max_us[p]);
        sum->sum_us[p] += load(&t->sum_us[p]);
        if (max > sum->max_us[p])
            sum->max_us[p] = max;
    }
    for (int p = 0; p < LB_HIST_PHASES; p++) {
        for (int i = 0; i <= LB_HIST_BOUNDS; i++)
            sum->hist[p][i] += load(&t->hist[p][i]);
        sum->hist_sum_us[p] += load(&t->hist_sum_us[p]);
    }
}

uint64_t lb_times_total_avg_us(const struct lb_times_total *sum, enum lb_phase p)
{
    uint64_t n = sum->window;

    return n ? (sum->sum_us[p] + n - 1) / n : 0;
}

uint64_t lb_times_avg_us(const struct lb_times *t, enum lb_phase p)
{
    struct lb_times_total sum = {0};

    lb_times_add(&sum, t);
    return lb_times_total_avg_us(&sum, p);
}
