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
 * A trim costs a walk of malloc's free lists, so it is not done per request: the owner calls
 * heap_trim_soon() when it knows a large transient was freed (or is about to be), and the trim
 * runs once, HEAP_TRIM_DELAY_MS later on the loop, however many calls came in between. Runs on
 * the loop's thread.
 */
#ifndef MESH_LIB_HEAP_TRIM_H
#define MESH_LIB_HEAP_TRIM_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

/* Long enough for the answer that asked for it to be written and its buffers freed. */
#define HEAP_TRIM_DELAY_MS 100

struct heap_trim {
    uv_timer_t timer;
    bool armed;     /* a trim is due */
    uint64_t trims; /* trims run, for telemetry */
};

/* Initialises t on loop, with nothing due. */
void heap_trim_init(struct heap_trim *t, uv_loop_t *loop);

/* Asks for a trim HEAP_TRIM_DELAY_MS from now, unless one is already due. */
void heap_trim_soon(struct heap_trim *t);

/* Closes the timer (uv_close, no callback): t must stay allocated until the loop ran once more,
 * as any handle embedded in its owner. A trim still due is dropped. */
void heap_trim_close(struct heap_trim *t);

#endif
