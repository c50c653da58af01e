#include "lib/heap_trim.h"

#include <malloc.h>

static void on_trim(uv_timer_t *timer)
{
    struct heap_trim *t = timer->data;

    t->armed = false;
    malloc_trim(0);
    t->trims++;
}

void heap_trim_init(struct heap_trim *t, uv_loop_t *loop)
{
    uv_timer_init(loop, &t->timer);
    t->timer.data = t;
    t->armed = false;
    t->trims = 0;
}

void heap_trim_soon(struct heap_trim *t)
{
    if (t->armed)
        return;
    t->armed = true;
    uv_timer_start(&t->timer, on_trim, HEAP_TRIM_DELAY_MS, 0);
}

void heap_trim_close(struct heap_trim *t)
{
    t->armed = false;
    uv_close((uv_handle_t *)&t->timer, NULL);
}
