#include "lib/heap_trim.h"

#include <malloc.h>

static void on_trim(uv_timer_t *timer)
{
    struct heap_trim *t = timer->data;
    uint64_t start = uv_hrtime();

    t->armed = false;
    malloc_trim(0);
    t->trims++;
    t->trim_ns += uv_hrtime() - start;
}

void heap_trim_init(struct heap_trim *t, uv_loop_t *loop)
{
    uv_timer_init(loop, &t->timer);
    t->timer.data = t;
    t->quiet_ms = HEAP_TRIM_QUIET_MS;
    t->max_delay_ms = HEAP_TRIM_MAX_DELAY_MS;
    t->armed = false;
    t->first_ms = t->due_ms = 0;
    t->trims = 0;
    t->trim_ns = 0;
}

void heap_trim_soon(struct heap_trim *t)
{
    /* The loop's time is that of the iteration's start: after rendering a large answer it can
     * be older than the quiet delay, and the trim would run at once between two answers. */
    uv_update_time(t->timer.loop);
    uint64_t now = uv_now(t->timer.loop);

    if (!t->armed) {
        t->armed = true;
        t->first_ms = now;
    }
    uint64_t due = now + t->quiet_ms;
    if (due > t->first_ms + t->max_delay_ms)
        due = t->first_ms + t->max_delay_ms;
    if (due == t->due_ms && uv_is_active((uv_handle_t *)&t->timer))
        return; /* several requests in one loop turn: the timer stands */
    t->due_ms = due;
    uv_timer_start(&t->timer, on_trim, due > now ? due - now : 0, 0);
}

void heap_trim_close(struct heap_trim *t)
{
    t->armed = false;
    uv_close((uv_handle_t *)&t->timer, NULL);
}
