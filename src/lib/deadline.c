/* Deadlines over one lazily re-armed libuv timer each. */
#include "lib/deadline.h"

static void deadline_fired(uv_timer_t *t)
{
    struct deadline *d = t->data;
    uint64_t now = uv_now(t->loop);

    d->armed = 0;
    if (d->due == 0)
        return; /* cleared since it was armed */
    if (now < d->due) {
        /* moved later since it was armed: wait for the rest */
        d->armed = d->due;
        uv_timer_start(&d->timer, deadline_fired, d->due - now, 0);
        return;
    }
    d->due = 0;
    d->cb(d);
}

void deadline_init(struct deadline *d, uv_loop_t *loop, deadline_cb cb, void *data)
{
    uv_timer_init(loop, &d->timer);
    d->timer.data = d;
    d->cb = cb;
    d->data = data;
    d->due = 0;
    d->armed = 0;
}

void deadline_set(struct deadline *d, uint64_t ms)
{
    d->due = uv_now(d->timer.loop) + ms;
    if (d->armed != 0 && d->armed <= d->due)
        return; /* the armed timer fires first and re-arms for the rest */
    d->armed = d->due;
    uv_timer_start(&d->timer, deadline_fired, ms, 0);
}

void deadline_clear(struct deadline *d)
{
    /* the timer stays armed: firing once for nothing is cheaper than a heap removal now */
    d->due = 0;
}

void deadline_close(struct deadline *d, uv_close_cb close_cb)
{
    d->due = d->armed = 0;
    d->timer.data = d->data;
    uv_close((uv_handle_t *)&d->timer, close_cb);
}
