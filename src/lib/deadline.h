/*
 * A deadline that moves often and rarely expires, such as a connection's inactivity timeout
 * pushed back on every request. Moving it later costs two stores, not a timer-heap operation:
 * the libuv timer under it stays armed for the earliest time it was given, and when it fires
 * before the deadline (which moved later meanwhile) it re-arms itself for the rest. Only a
 * deadline moved earlier than the armed time restarts the timer. So a connection serving
 * requests back to back touches libuv's timer heap about once per timeout period instead of
 * several times per request.
 *
 * Times are the loop's clock (uv_now: milliseconds, read once per loop iteration), so a
 * deadline never expires early and may expire up to one loop iteration late, as a uv timer.
 * Everything runs on the loop's thread.
 */
#ifndef MESH_LIB_DEADLINE_H
#define MESH_LIB_DEADLINE_H

#include <stdint.h>
#include <uv.h>

struct deadline;

/* The deadline passed; it is cleared before the call, so the callback may set it again. */
typedef void (*deadline_cb)(struct deadline *d);

struct deadline {
    uv_timer_t timer; /* its data points at the deadline */
    deadline_cb cb;
    void *data;     /* the owner's */
    uint64_t due;   /* uv_now when it expires; 0 = none */
    uint64_t armed; /* when timer fires; 0 = not armed */
};

/* Initialises d on loop, cleared. cb runs on expiry. */
void deadline_init(struct deadline *d, uv_loop_t *loop, deadline_cb cb, void *data);

/* Expires ms milliseconds from the loop's now (0: at its next iteration), replacing any earlier
 * setting. */
void deadline_set(struct deadline *d, uint64_t ms);

/* No expiry until set again. */
void deadline_clear(struct deadline *d);

/*
 * Closes the timer (uv_close): close_cb receives the timer's handle with its data set to
 * d->data, so an owner closing several handles can count them in one callback. d must stay
 * allocated until then.
 */
void deadline_close(struct deadline *d, uv_close_cb close_cb);

#endif
