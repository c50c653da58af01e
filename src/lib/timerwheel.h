/*
 * Timeouts by the thousand on one libuv timer: a hashed timing wheel (Varghese and Lauck). An
 * entry goes into the slot of the tick it expires in; adding and removing one is a list
 * operation, not a timer-heap operation (libuv keeps each uv_timer_t in a binary heap, so ten
 * thousand parked requests with a timer each cost a heap insert and a heap removal apiece).
 *
 * Time is the loop's clock in milliseconds (uv_now), cut into ticks of tick_ms. An entry never
 * expires early, and expires at most one tick (plus one loop iteration) late: expiries due
 * within one tick are run together. The one uv timer is armed for the first tick holding an
 * entry that is due, so an idle wheel, or one whose entries lie far ahead, does not wake the
 * loop every tick. Everything runs on the loop's thread.
 */
#ifndef MESH_LIB_TIMERWHEEL_H
#define MESH_LIB_TIMERWHEEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define TIMERWHEEL_SLOTS 512

struct timerwheel_entry;

/* The entry expired; it is no longer pending, so the callback may add it again or free it. */
typedef void (*timerwheel_cb)(struct timerwheel_entry *e);

/* Embedded in its owner (no allocation per timeout); zeroed = not pending. */
struct timerwheel_entry {
    struct timerwheel_entry *next;
    struct timerwheel_entry **pprev; /* NULL when not pending */
    uint64_t due;                    /* uv_now when it expires */
    timerwheel_cb cb;
    size_t slot; /* its slot; TIMERWHEEL_SLOTS while it is being expired */
};

struct timerwheel {
    uv_timer_t timer; /* its data points at the wheel */
    uint64_t tick_ms;
    uint64_t done;  /* ticks up to this one were run */
    uint64_t armed; /* tick the timer fires at; 0 = not armed */
    size_t count;   /* entries pending */
    struct timerwheel_entry *slots[TIMERWHEEL_SLOTS];
    uint64_t slot_due[TIMERWHEEL_SLOTS]; /* at most the earliest due in the slot; UINT64_MAX
                                          * when empty */
};

/* Initialises w on loop with ticks of tick_ms (> 0) milliseconds. */
void timerwheel_init(struct timerwheel *w, uv_loop_t *loop, uint64_t tick_ms);

/* Runs cb on e (borrowed until it fires or is removed) ms milliseconds from the loop's now. e
 * must not be pending. */
void timerwheel_add(struct timerwheel *w, struct timerwheel_entry *e, uint64_t ms,
                    timerwheel_cb cb);

/* Removes e if pending (then its callback never runs); a no-op otherwise. */
void timerwheel_del(struct timerwheel *w, struct timerwheel_entry *e);

static inline bool timerwheel_pending(const struct timerwheel_entry *e)
{
    return e->pprev != NULL;
}

/*
 * Closes the timer (uv_close; close_cb may be NULL). Entries still pending are dropped without
 * running: remove or expire them first. w must stay allocated until close_cb.
 */
void timerwheel_close(struct timerwheel *w, uv_close_cb close_cb);

#endif
