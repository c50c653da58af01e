/* Log-linear histogram: see histogram.h for the layout and the error bound. */
#include "lib/histogram.h"

#include <math.h>
#include <string.h>

#define EXACT    128u /* values 0..127 have a bucket each */
#define SUB_BITS 6u   /* 64 sub-buckets per power of two above */

void histogram_init(struct histogram *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

unsigned histogram_bucket_of(uint64_t v)
{
    unsigned m, shift;

    if (v > HISTOGRAM_MAX_VALUE)
        v = HISTOGRAM_MAX_VALUE;
    if (v < EXACT)
        return (unsigned)v;
    m = 63u - (unsigned)__builtin_clzll(v); /* 7..35 */
    shift = m - SUB_BITS;
    /* v >> shift lies in [64, 128): the sub-bucket inside power m */
    return EXACT + (m - 7u) * 64u + (unsigned)((v >> shift) - 64u);
}

void histogram_bucket_range(unsigned idx, uint64_t *lo, uint64_t *hi)
{
    unsigned m, sub;

    if (idx < EXACT) {
        *lo = idx;
        *hi = (uint64_t)idx + 1;
        return;
    }
    m = (idx - EXACT) / 64u + 7u;
    sub = (idx - EXACT) % 64u + 64u;
    *lo = (uint64_t)sub << (m - SUB_BITS);
    *hi = (uint64_t)(sub + 1) << (m - SUB_BITS);
}

void histogram_record(struct histogram *h, uint64_t v)
{
    if (v > HISTOGRAM_MAX_VALUE)
        v = HISTOGRAM_MAX_VALUE;
    h->counts[histogram_bucket_of(v)]++;
    h->count++;
    h->sum += (double)v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

void histogram_merge(struct histogram *dst, const struct histogram *src)
{
    if (src->count == 0)
        return;
    for (unsigned i = 0; i < HISTOGRAM_BUCKETS; i++)
        dst->counts[i] += src->counts[i];
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

double histogram_percentile(const struct histogram *h, double q)
{
    uint64_t rank, seen = 0, lo, hi;
    double mid;

    if (h->count == 0)
        return 0;
    if (q <= 0)
        return (double)h->min;
    if (q >= 1)
        return (double)h->max;
    rank = (uint64_t)ceil(q * (double)h->count);
    if (rank == 0)
        rank = 1;
    for (unsigned i = 0; i < HISTOGRAM_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen < rank)
            continue;
        histogram_bucket_range(i, &lo, &hi);
        /* exact buckets hold one value; wider ones report their midpoint */
        mid = hi - lo == 1 ? (double)lo : ((double)lo + (double)(hi - 1)) / 2;
        if (mid < (double)h->min)
            mid = (double)h->min;
        if (mid > (double)h->max)
            mid = (double)h->max;
        return mid;
    }
    return (double)h->max;
}

double histogram_mean(const struct histogram *h)
{
    return h->count ? h->sum / (double)h->count : 0;
}
