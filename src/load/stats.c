/* Per-second measurement buckets: see stats.h. */
#include "load/stats.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"

void load_counts_add(struct load_counts *c, const char *name, size_t len, uint64_t v, size_t max)
{
    for (size_t i = 0; i < c->n; i++) {
        if (strlen(c->names[i]) == len && memcmp(c->names[i], name, len) == 0) {
            c->vals[i] += v;
            return;
        }
    }
    if (c->n >= max) {
        name = "other";
        len = 5;
        for (size_t i = 0; i < c->n; i++) {
            if (strcmp(c->names[i], "other") == 0) {
                c->vals[i] += v;
                return;
            }
        }
    }
    c->names = xrealloc(c->names, (c->n + 1) * sizeof(*c->names));
    c->vals = xrealloc(c->vals, (c->n + 1) * sizeof(*c->vals));
    c->names[c->n] = xstrndup(name, len);
    c->vals[c->n++] = v;
}

void load_counts_merge(struct load_counts *dst, const struct load_counts *src)
{
    for (size_t i = 0; i < src->n; i++)
        load_counts_add(dst, src->names[i], strlen(src->names[i]), src->vals[i],
                        LOAD_COUNTS_MAX + 1);
}

void load_counts_free(struct load_counts *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->names[i]);
    FREE_NULL(c->names);
    FREE_NULL(c->vals);
    c->n = 0;
}

/* name's histogram, added when missing; NULL when that would make more than max. */
static struct histogram *hists_get(struct load_hists *hs, const char *name, size_t max)
{
    for (size_t i = 0; i < hs->n; i++)
        if (strcmp(hs->names[i], name) == 0)
            return hs->h[i];
    if (hs->n >= max)
        return NULL;
    hs->names = xrealloc(hs->names, (hs->n + 1) * sizeof(*hs->names));
    hs->h = xrealloc(hs->h, (hs->n + 1) * sizeof(*hs->h));
    hs->names[hs->n] = xstrdup(name);
    hs->h[hs->n] = xmalloc(sizeof(*hs->h[hs->n]));
    histogram_init(hs->h[hs->n]);
    return hs->h[hs->n++];
}

void load_hists_record(struct load_hists *hs, const char *name, uint64_t v, size_t max)
{
    struct histogram *h = hists_get(hs, name, max);

    if (h)
        histogram_record(h, v);
}

void load_hists_merge(struct load_hists *dst, const struct load_hists *src)
{
    for (size_t i = 0; i < src->n; i++)
        histogram_merge(hists_get(dst, src->names[i], SIZE_MAX), src->h[i]);
}

void load_hists_free(struct load_hists *hs)
{
    for (size_t i = 0; i < hs->n; i++) {
        free(hs->names[i]);
        free(hs->h[i]);
    }
    FREE_NULL(hs->names);
    FREE_NULL(hs->h);
    hs->n = 0;
}

struct load_sec *load_sec_new(void)
{
    struct load_sec *s = xcalloc(1, sizeof(*s));

    histogram_init(&s->rt);
    histogram_init(&s->session);
    return s;
}

void load_sec_merge(struct load_sec *dst, const struct load_sec *src)
{
    dst->requests += src->requests;
    dst->responses += src->responses;
    dst->bytes += src->bytes;
    dst->created += src->created;
    dst->completed += src->completed;
    dst->failed += src->failed;
    dst->skipped += src->skipped;
    if (src->first_ns)
        load_sec_touch(dst, src->first_ns);
    if (src->last_ns)
        load_sec_touch(dst, src->last_ns);
    for (size_t i = 0; i < LOAD_EXPECT_KINDS; i++) {
        dst->expect_ok[i] += src->expect_ok[i];
        dst->expect_failed[i] += src->expect_failed[i];
    }
    for (size_t i = 0; i < LOAD_CODES; i++)
        dst->codes[i] += src->codes[i];
    load_counts_merge(&dst->errors, &src->errors);
    load_counts_merge(&dst->served_by, &src->served_by);
    load_counts_merge(&dst->created_by, &src->created_by);
    histogram_merge(&dst->rt, &src->rt);
    histogram_merge(&dst->session, &src->session);
    load_hists_merge(&dst->hists, &src->hists);
    load_counts_merge(&dst->user, &src->user);
    load_counts_merge(&dst->rates, &src->rates);
}

void load_sec_free(struct load_sec *s)
{
    if (!s)
        return;
    load_counts_free(&s->errors);
    load_counts_free(&s->served_by);
    load_counts_free(&s->created_by);
    load_hists_free(&s->hists);
    load_counts_free(&s->user);
    load_counts_free(&s->rates);
    free(s);
}

void load_stats_init(struct load_stats *st)
{
    memset(st, 0, sizeof(*st));
    if (uv_mutex_init(&st->lock) != 0)
        abort();
}

void load_stats_destroy(struct load_stats *st)
{
    for (size_t i = 0; i < st->n; i++)
        load_sec_free(st->secs[i]);
    FREE_NULL(st->secs);
    st->n = 0;
    uv_mutex_destroy(&st->lock);
}

struct load_sec *load_stats_at(struct load_stats *st, size_t i)
{
    if (i >= st->n) {
        size_t n = i + 16;

        st->secs = xrealloc(st->secs, n * sizeof(*st->secs));
        memset(st->secs + st->n, 0, (n - st->n) * sizeof(*st->secs));
        st->n = n;
    }
    if (!st->secs[i])
        st->secs[i] = load_sec_new();
    return st->secs[i];
}
