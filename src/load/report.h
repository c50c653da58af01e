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

#include "load/engine.h"
#include "load/script.h"
#include "load/stats.h"

#define LOAD_PERIOD_S 10 /* intermediate periods, as Artillery's */

struct load_result {
    struct load_sec **secs; /* one per second, merged across workers, never NULL */
    size_t n_secs;
    int64_t start_epoch_ms;
    double elapsed_s;
};

/* Merges seconds [from, to) of every worker (locking each) into r (caller frees). */
void load_result_collect(struct load_engine *eng, size_t from, size_t to, struct load_result *r);
/*
 * After the workers ended: moves their first n seconds into r, merged, without copying the
 * buckets (a long run holds about 36 KB a second per worker).
 */
void load_result_take(struct load_engine *eng, size_t n, struct load_result *r);
void load_result_free(struct load_result *r);
/* Merges r's seconds [from, to) into a fresh bucket (caller frees with load_sec_free). */
struct load_sec *load_result_sum(const struct load_result *r, size_t from, size_t to);

/* The report JSON (caller owns). pool: connections in pool mode, 0 otherwise. */
json_t *load_report_json(const struct load_result *r, const struct load_script *s, int pool);

/* Artillery-style console summary of the report's aggregate, served-by spread and timeline. */
void load_print_summary(FILE *f, const json_t *report);

/* One live line for the seconds in sum (covering secs seconds, ending at t seconds). */
void load_print_live(FILE *f, const struct load_sec *sum, double secs, double t);

#endif
