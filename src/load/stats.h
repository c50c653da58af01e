/*
 * What a run measures, one bucket per second since the start. Each worker thread fills its own
 * buckets under its own lock (uncontended but for the main thread's once-a-second visit); the
 * main thread moves each second out once it has passed, into a timeline row and its 10-second
 * period (load_result_drain), so a worker holds a few seconds, not the whole run.
 */
#ifndef MESH_LOAD_STATS_H
#define MESH_LOAD_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lib/histogram.h"
#include "load/script.h"

/* Named counters (errors by code, X-Served-By values, scenarios), in insertion order. */
struct load_counts {
    char **names;
    uint64_t *vals;
    size_t n;
};

/* Distinct names a peer-controlled counter set keeps; more go to "other". */
#define LOAD_COUNTS_MAX 64
#define LOAD_CODES      1000 /* status codes 0..999 */

/* Adds v to name's count (name[0..len) copied). Past max distinct names, to "other". */
void load_counts_add(struct load_counts *c, const char *name, size_t len, uint64_t v, size_t max);
void load_counts_merge(struct load_counts *dst, const struct load_counts *src);
void load_counts_free(struct load_counts *c);

/* Named histograms (a processor's, response time by status class), in insertion order. */
struct load_hists {
    char **names;
    struct histogram **h;
    size_t n;
};

/* Records v into name's histogram, created when missing; past max names, dropped. */
void load_hists_record(struct load_hists *hs, const char *name, uint64_t v, size_t max);
void load_hists_merge(struct load_hists *dst, const struct load_hists *src);
void load_hists_free(struct load_hists *hs);

struct load_sec {
    uint64_t requests, responses, bytes;
    uint64_t created, completed, failed, skipped;
    uint64_t expect_ok[LOAD_EXPECT_KINDS], expect_failed[LOAD_EXPECT_KINDS]; /* checks */
    uint32_t codes[LOAD_CODES];
    struct load_counts errors;     /* "ECONNREFUSED" -> n */
    struct load_counts served_by;  /* X-Served-By value -> n */
    struct load_counts created_by; /* scenario name -> n */
    struct histogram rt;           /* response time, us */
    struct histogram session;      /* VU session length, us */
    struct load_hists hists;       /* more summaries by their metric name, us */
    struct load_counts user;       /* a processor's counters: events.emit('counter', ...) */
    struct load_counts rates;      /* a processor's rates: events.emit('rate', name) */
    uint64_t first_ns, last_ns;    /* monotonic instants of the first and last event; 0: none */
};

/* An event at now (monotonic ns) went into s. */
static inline void load_sec_touch(struct load_sec *s, uint64_t now)
{
    if (!s->first_ns || now < s->first_ns)
        s->first_ns = now;
    if (now > s->last_ns)
        s->last_ns = now;
}

struct load_sec *load_sec_new(void);
void load_sec_merge(struct load_sec *dst, const struct load_sec *src);
void load_sec_free(struct load_sec *s);

struct load_stats {
    uv_mutex_t lock;
    struct load_sec **secs; /* secs[i]: second i since the start; NULL while empty */
    size_t n;
};

void load_stats_init(struct load_stats *st);
void load_stats_destroy(struct load_stats *st);
/* The bucket of second i, created when missing. Call with st->lock held. */
struct load_sec *load_stats_at(struct load_stats *st, size_t i);

#endif
