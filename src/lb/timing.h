/*
 * Response times of a backend or a server, as HAProxy keeps them (docs/lb-stats.md):
 *
 *   queue    from the request head read to a server slot (0 when it did not wait)
 *   connect  connecting to the server (0 on a pooled keep-alive connection)
 *   response from the request head sent to the final response head read
 *   total    from the request head read to the last response byte written
 *
 * Each phase keeps HAProxy's moving average over the last LB_TIME_SAMPLES requests (its
 * swrate: an exact mean until that many, then a sliding window) and the maximum; queue,
 * connect and response also go into a fixed-bucket histogram for Prometheus.
 *
 * One thread records into a struct lb_times (each worker has its own, see struct lb_shard in
 * lb.h) with relaxed loads and stores, and the stats thread adds several up (lb_times_add).
 */
#ifndef MESH_LB_TIMING_H
#define MESH_LB_TIMING_H

#include <stdatomic.h>
#include <stdint.h>

#define LB_TIME_SAMPLES 1024

enum lb_phase {
    LB_PHASE_QUEUE = 0,
    LB_PHASE_CONNECT,
    LB_PHASE_RESPONSE,
    LB_PHASE_TOTAL,
    LB_PHASES,
};

/* Phases with a histogram: queue, connect, response. */
#define LB_HIST_PHASES 3
/* Histogram upper bounds in microseconds (le="0.0005" ... "10"), then +Inf. */
#define LB_HIST_BOUNDS 14
extern const uint64_t lb_hist_bounds_us[LB_HIST_BOUNDS];

struct lb_times {
    _Atomic uint64_t samples;           /* requests recorded */
    _Atomic uint64_t sum_us[LB_PHASES]; /* swrate sums */
    _Atomic uint64_t max_us[LB_PHASES];
    _Atomic uint64_t hist[LB_HIST_PHASES][LB_HIST_BOUNDS + 1]; /* per bucket, not cumulative */
    _Atomic uint64_t hist_sum_us[LB_HIST_PHASES];
};

/* One request's phases, in microseconds. */
struct lb_time_sample {
    uint64_t us[LB_PHASES];
};

/* Records one request; t has a single writer (its worker). */
void lb_times_record(struct lb_times *t, const struct lb_time_sample *s);

/*
 * Several workers' times together: averages over the union of their windows (the last
 * LB_TIME_SAMPLES requests of each), the largest maxima, histograms added up.
 */
struct lb_times_total {
    uint64_t window; /* requests the sums cover */
    uint64_t sum_us[LB_PHASES];
    uint64_t max_us[LB_PHASES];
    uint64_t hist[LB_HIST_PHASES][LB_HIST_BOUNDS + 1];
    uint64_t hist_sum_us[LB_HIST_PHASES];
};

/* Adds t (any thread) to *sum (zeroed before the first). */
void lb_times_add(struct lb_times_total *sum, const struct lb_times *t);
/* The average of a phase in microseconds, rounded up; 0 before any request. */
uint64_t lb_times_total_avg_us(const struct lb_times_total *sum, enum lb_phase p);
/* The average of one struct lb_times' phase over its last LB_TIME_SAMPLES requests. */
uint64_t lb_times_avg_us(const struct lb_times *t, enum lb_phase p);

#endif
