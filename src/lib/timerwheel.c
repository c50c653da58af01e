/* A hashed timing wheel over one libuv timer. */
#include "lib/timerwheel.h"

#include <string.h>

/* The tick an expiry at loop time t belongs to: the first whose end is at or after t. */
static uint64_t tick_of(const struct timerwheel *w, uint64_t t)
{
    return t / w->tick_ms + (t % w->tick_ms != 0);
}

/* The first tick at or after from that slot s runs at. */
static uint64_t slot_tick(size_t s, uint64_t from)
{
    return from + (s + TIMERWHEEL_SLOTS - from % TIMERWHEEL_SLOTS) % TIMERWHEEL_SLOTS;
}

static void push(struct timerwheel_entry **head, struct timerwheel_entry *e)
{
    e->next = *head;
    if (e->next)
        e->next->pprev = &e->next;
    e->pprev = head;
    *head = e;
}

static void unlink_entry(struct timerwheel_entry *e)
{
    *e->pprev = e->next;
    if (e->next)
        e->next->pprev = e->pprev;
    e->next = NULL;
    e->pprev = NULL;
}

static void on_tick(uv_timer_t *t);

static void arm(struct timerwheel *w, uint64_t tick)
{
    uint64_t now = uv_now(w->timer.loop), at = tick * w->tick_ms;

    w->armed = tick;
    uv_timer_start(&w->timer, on_tick, at > now ? at - now : 0, 0);
}

/* Arms the timer for the first tick that has an entry due, or stops it when none is left. */
static void rearm(struct timerwheel *w)
{
    uint64_t best = UINT64_MAX;

    if (w->count == 0) {
        if (w->armed)
            uv_timer_stop(&w->timer);
        w->armed = 0;
        return;
    }
    for (size_t s = 0; s < TIMERWHEEL_SLOTS; s++) {
        if (!w->slots[s])
            continue;
        uint64_t from = tick_of(w, w->slot_due[s]);
        uint64_t k = slot_tick(s, from > w->done ? from : w->done + 1);
        if (k < best)
            best = k;
    }
    arm(w, best);
}

/* Moves the entries of slot s due by now to *expired; the slot keeps the rest. */
static void collect(struct timerwheel *w, size_t s, uint64_t now, struct timerwheel_entry **expired)
{
    struct timerwheel_entry *e = w->slots[s], *next;
    uint64_t rest = UINT64_MAX;

    for (; e; e = next) {
        next = e->next;
        if (e->due <= now) {
            unlink_entry(e);
            push(expired, e);
            e->slot = TIMERWHEEL_SLOTS;
        } else if (e->due < rest) {
            rest = e->due;
        }
    }
    w->slot_due[s] = rest;
}

static void on_tick(uv_timer_t *t)
{
    struct timerwheel *w = t->data;
    struct timerwheel_entry *expired = NULL, *e;
    uint64_t now = uv_now(t->loop), target = now / w->tick_ms;

    w->armed = 0;
    if (target > w->done) {
        /* Past a whole turn (a loop that stalled), every slot is looked at once. */
        uint64_t first =
            target - w->done > TIMERWHEEL_SLOTS ? target - TIMERWHEEL_SLOTS + 1 : w->done + 1;
        for (uint64_t k = first; k <= target; k++)
            collect(w, k % TIMERWHEEL_SLOTS, now, &expired);
        w->done = target;
    }
    /* One at a time off the local list: a callback may remove the others (they are still
     * pending) or add entries, which land in ticks after done. */
    while ((e = expired) != NULL) {
        unlink_entry(e);
        w->count--;
        e->cb(e);
    }
    rearm(w);
}

void timerwheel_init(struct timerwheel *w, uv_loop_t *loop, uint64_t tick_ms)
{
    memset(w, 0, sizeof(*w));
    uv_timer_init(loop, &w->timer);
    w->timer.data = w;
    w->tick_ms = tick_ms ? tick_ms : 1;
    w->done = uv_now(loop) / w->tick_ms;
    for (size_t s = 0; s < TIMERWHEEL_SLOTS; s++)
        w->slot_due[s] = UINT64_MAX;
}

void timerwheel_add(struct timerwheel *w, struct timerwheel_entry *e, uint64_t ms, timerwheel_cb cb)
{
    uint64_t now = uv_now(w->timer.loop);

    if (w->count == 0) /* every slot is empty: nothing to run up to now */
        w->done = now / w->tick_ms;
    e->due = now + ms;
    e->cb = cb;
    uint64_t tick = tick_of(w, e->due);
    if (tick <= w->done)
        tick = w->done + 1;
    size_t s = tick % TIMERWHEEL_SLOTS;
    push(&w->slots[s], e);
    e->slot = s;
    if (e->due < w->slot_due[s])
        w->slot_due[s] = e->due;
    w->count++;
    if (!w->armed || tick < w->armed)
        arm(w, tick);
}

void timerwheel_del(struct timerwheel *w, struct timerwheel_entry *e)
{
    if (!e->pprev)
        return;
    unlink_entry(e);
    w->count--;
    /* A slot left empty forgets its earliest due, so it arms nothing. (One that still holds
     * entries may keep an earlier due than theirs: at worst one wake-up for nothing.) */
    if (e->slot < TIMERWHEEL_SLOTS && !w->slots[e->slot])
        w->slot_due[e->slot] = UINT64_MAX;
}

void timerwheel_close(struct timerwheel *w, uv_close_cb close_cb)
{
    w->armed = 0;
    uv_close((uv_handle_t *)&w->timer, close_cb);
}
