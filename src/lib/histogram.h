/*
 * Log-linear latency histogram (HdrHistogram's layout): values below 128 are counted exactly;
 * above, each power of two [2^m, 2^(m+1)) is split into 64 equal sub-buckets, so a bucket is at
 * most 1/64 of its lower edge wide. Percentiles report the bucket's midpoint (clamped to the
 * exact min and max), so a reported value is within HISTOGRAM_REL_ERROR (1 %) of the true
 * recorded value at that rank. The unit is the caller's (mesh load records microseconds).
 * Fixed size (no allocation), so histograms can be merged across threads by adding counts.
 */
#ifndef MESH_LIB_HISTOGRAM_H
#define MESH_LIB_HISTOGRAM_H

#include <stdint.h>

/* The stated relative error bound of histogram_percentile (the true bound is 1/128). */
#define HISTOGRAM_REL_ERROR 0.01
/* Values above this are recorded as this (2^36 - 1: about 19 hours in microseconds). */
#define HISTOGRAM_MAX_VALUE ((UINT64_C(1) << 36) - 1)
/* 128 exact buckets, then 64 per power of two from 2^7 to 2^35. */
#define HISTOGRAM_BUCKETS (128 + 29 * 64)

struct histogram {
    uint64_t count;
    uint64_t min; /* exact; UINT64_MAX when empty */
    uint64_t max; /* exact */
    double sum;
    uint64_t counts[HISTOGRAM_BUCKETS];
};

void histogram_init(struct histogram *h);
void histogram_record(struct histogram *h, uint64_t value);
/* Adds src's counts to dst (both borrowed). */
void histogram_merge(struct histogram *dst, const struct histogram *src);
/*
 * The value at quantile q in [0, 1] (0.99 = p99): the smallest recorded value such that at
 * least q of the values are at or below it, within HISTOGRAM_REL_ERROR. 0 when empty.
 */
double histogram_percentile(const struct histogram *h, double q);
/* Exact mean; 0 when empty. */
double histogram_mean(const struct histogram *h);

/* Bucket index of a value and the bucket's [lo, hi) range, for tests. */
unsigned histogram_bucket_of(uint64_t value);
void histogram_bucket_range(unsigned idx, uint64_t *lo, uint64_t *hi);

#endif
