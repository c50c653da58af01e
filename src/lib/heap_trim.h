/*
 * Giving freed heap memory back to the kernel after a large transient allocation.
 *
 * glibc's free() returns memory to the kernel only from the top of the heap (past
 * M_TRIM_THRESHOLD). A large answer built as thousands of small allocations (a JSON tree of
 * every check in the registry) and freed leaves its chunks between live ones, so the process
 * keeps them as resident memory until it happens to reuse them: one listing of 10,000 checks
 * leaves about 50 MB behind. malloc_trim(0) hands every whole free page back (madvise), wherever
 * it lies.
 *
 * A trim is not cheap, and it is not the whole cost: with 10,000 services it takes 5-10 ms of
 * CPU (merging the freed chunks, then the madvise), and the next large answer faults every page
 * it gave back in again, which costs more than the trim (docs/benchmarks.md). A trim between
 * two large answers that follow each other closely only adds both costs. So the owner calls
 * heap_trim_soon() whenever a large transient was freed (or is about to be), and the trim runs
 * once the large answers stop: when none asked for HEAP_TRIM_QUIET_MS, and at the latest
 * HEAP_TRIM_MAX_DELAY_MS after the first request, so that a steady stream of them still gives
 * memory back now and then. Runs on the loop's thread.
 */
#ifndef MESH_LIB_HEAP_TRIM_H
#define MESH_LIB_HEAP_TRIM_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

/* Long enough for the answer that asked to be written and freed, and for a burst to end. */
#define HEAP_TRIM_QUIET_MS     500
#define HEAP_TRIM_MAX_DELAY_MS 5000

struct heap_trim {
    uv_timer_t timer;
    uint64_t quiet_ms, max_delay_ms; /* the two delays above (tests shorten them) */
    bool armed;                      /* a trim is due */
    uint64_t first_ms;               /* loop time of the first request since the last trim */
    uint64_t due_ms;                 /* loop time the trim is due at */
    uint64_t trims;                  /* trims run, for telemetry */
    uint64_t trim_ns;                /* their total time, for telemetry */
};

/* Initialises t on loop, with nothing due and the default delays. */
void heap_trim_init(struct heap_trim *t, uv_loop_t *loop);

/* Asks for a trim HEAP_TRIM_QUIET_MS from now, or at the latest HEAP_TRIM_MAX_DELAY_MS after
 * the first request not yet served by a trim. */
void heap_trim_soon(struct heap_trim *t);

/* Closes the timer (uv_close, no callback): t must stay allocated until the loop ran once more,
 * as any handle embedded in its owner. A trim still due is dropped. */
void heap_trim_close(struct heap_trim *t);

#endif
