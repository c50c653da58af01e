/*
 * A run's results: the workers' per-second buckets merged, the report JSON (Artillery 2's
 * aggregate + intermediate, plus the "meshkit" section: phases, timeline, served_by, events,
 * histogram_error) and the console summary printed from it.
 */
#ifndef MESH_LOAD_REPORT_H
#define MESH_LOAD_REPORT_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "load/engine.h"
#include "load/script.h"
#include "load/stats.h"

#define LOAD_PERIOD_S 10 /* intermediate periods, as Artillery's */

/* One second of the timeline, kept small: a long run keeps one a second. */
struct load_row {
    uint64_t requests, responses, created, completed, failed;
    double p50_us, p95_us, p99_us; /* of the second's response times, all workers merged */
    uint64_t max_us;
    struct load_counts codes; /* "200" -> n */
    struct load_counts errors, served_by;
};

/*
 * A run's results, built as it goes: each second that has passed leaves the workers (whose
 * full buckets, about 36 KB a second each, would hold a long run's whole history) for a row of
 * the timeline and the 10-second period it belongs to.
 */
struct load_result {
    struct load_row *rows; /* seconds [0, n_secs) */
    size_t n_secs;
    /* periods[k]: the seconds in the k-th 10 s of the wall clock the run touches, merged; never
     * NULL. As Artillery's, periods start on a multiple of 10 s of the epoch, so the first and
     * the last are short: second i is in period (i + shift) / 10. */
    struct load_sec **periods;
    size_t n_periods;
    size_t shift; /* the start's second within its 10 s */
    int64_t start_epoch_ms;
    uint64_t start_ns; /* monotonic, of the same instant */
    double elapsed_s;
};

/* The seconds [*from, *to) of period k (the drained ones). */
void load_period_span(const struct load_result *r, size_t k, size_t *from, size_t *to);

/* An empty result for eng's run (after load_engine_start). */
void load_result_init(struct load_result *r, struct load_engine *eng);
/*
 * Moves seconds [r->n_secs, to) out of every worker (locking each) into r's rows and periods,
 * and folds into r what a worker recorded late into a second already moved (a clock read just
 * before the move): its counts, not the row's percentiles.
 */
void load_result_drain(struct load_engine *eng, size_t to, struct load_result *r);
void load_result_free(struct load_result *r);
/* Merges seconds [from, to) that the workers still hold into a fresh bucket (the live line;
 * caller frees with load_sec_free). */
struct load_sec *load_result_peek(struct load_engine *eng, size_t from, size_t to);

/* The report JSON (caller owns). pool: connections in pool mode, 0 otherwise. */
json_t *load_report_json(const struct load_result *r, const struct load_script *s, int pool);

/* t as Artillery writes times on its console, "12:00:00(+0000)"; returns out. */
const char *load_clock_text(time_t t, char *out, size_t n);

/* Artillery-style console summary of the report's aggregate, served-by spread and timeline. */
void load_print_summary(FILE *f, const json_t *report);

/*
 * Artillery's block for period k of r ("Metrics for period to: 12:00:10(+0000) (width: 10s)"
 * and its metrics), as it prints one every 10 s whether or not stdout is a terminal. Metrics
 * whose names start with hide (may be NULL) are left out.
 */
void load_print_period(FILE *f, const struct load_result *r, size_t k, const char *hide);

/* One live line for the seconds in sum (covering secs seconds, ending at t seconds). */
void load_print_live(FILE *f, const struct load_sec *sum, double secs, double t);

#endif
