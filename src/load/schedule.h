/*
 * Arrival instants from the phases. Within a phase of D seconds:
 *   arrivalRate r:            r * D arrivals at k / r seconds (k = 0, 1, ...);
 *   arrivalRate r0, rampTo r1: the rate rises (or falls) linearly; arrival k is at the instant t
 *                             where the cumulative count r0 t + (r1 - r0) t^2 / 2D reaches k,
 *                             (r0 + r1) / 2 * D arrivals in all (rounded up);
 *   arrivalCount n:           n arrivals spread evenly, at k * D / n;
 *   pause (or arrivalRate 0): none.
 * Phases follow each other; each starts when the one before has lasted its duration.
 */
#ifndef MESH_LOAD_SCHEDULE_H
#define MESH_LOAD_SCHEDULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "load/script.h"

struct load_schedule {
    const struct load_phase *phases; /* borrowed */
    size_t n_phases;
    size_t phase;           /* current phase */
    int64_t k;              /* next arrival within it */
    int64_t count;          /* arrivals in the current phase */
    int64_t phase_start_ms; /* since the start of the run */
    uint64_t index;         /* arrivals handed out so far */
};

/* Number of arrivals a phase makes. */
int64_t load_phase_arrivals(const struct load_phase *p);
/* Instant of arrival k (0-based, < load_phase_arrivals) in ms after the phase's start. */
double load_phase_arrival_ms(const struct load_phase *p, int64_t k);

void load_schedule_init(struct load_schedule *s, const struct load_phase *phases, size_t n);
/*
 * The next arrival: true with its instant (ms since the start of the run) and phase index;
 * false when the phases are over.
 */
bool load_schedule_next(struct load_schedule *s, double *t_ms, size_t *phase);

#endif
