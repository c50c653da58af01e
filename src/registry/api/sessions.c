/* Session TTL timers, the lock-delay clock and the user event buffer. */
#include "registry/api/sessions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/log.h"
#include "lib/uuid.h"

/*
 * TTL deadlines live in a binary min-heap with lazy removal: a renew pushes a new entry and
 * leaves the old one, which is recognised as stale when it surfaces (the session's expires_ms
 * moved on, or the session is gone). One uv timer is armed for the earliest deadline.
 */
struct ttl_entry {
    uint64_t deadline;
    char id[37];
};

struct reg_sessions {
    uv_loop_t *loop;
    struct reg_state *st;
    uv_timer_t timer;
    struct ttl_entry *heap;
    size_t n, cap;
    struct reg_event events[REG_EVENTS_MAX]; /* ring */
    size_t ev_first, ev_count;
    uint64_t ltime;
    bool inactive; /* not the replicated cluster's leader: no reaping */
};

static uint64_t clock_ms(void *data)
{
    struct reg_sessions *s = data;
    return uv_now(s->loop);
}

static void heap_swap(struct reg_sessions *s, size_t a, size_t b)
{
    struct ttl_entry t = s->heap[a];
    s->heap[a] = s->heap[b];
    s->heap[b] = t;
}

static void heap_push(struct reg_sessions *s, uint64_t deadline, const char *id)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->heap = xrealloc(s->heap, s->cap * sizeof(*s->heap));
    }
    size_t i = s->n++;
    s->heap[i].deadline = deadline;
    snprintf(s->heap[i].id, sizeof(s->heap[i].id), "%s", id); /* IDs are UUIDs: 36 chars */
    while (i > 0 && s->heap[(i - 1) / 2].deadline > s->heap[i].deadline) {
        heap_swap(s, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_pop(struct reg_sessions *s)
{
    size_t i = 0;

    s->heap[0] = s->heap[--s->n];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < s->n && s->heap[l].deadline < s->heap[m].deadline)
            m = l;
        if (r < s->n && s->heap[r].deadline < s->heap[m].deadline)
            m = r;
        if (m == i)
            break;
        heap_swap(s, i, m);
        i = m;
    }
}

static void on_timer(uv_timer_t *t);

static void arm(struct reg_sessions *s)
{
    if (s->n == 0) {
        uv_timer_stop(&s->timer);
        return;
    }
    uint64_t now = uv_now(s->loop);
    uint64_t top = s->heap[0].deadline;
    uv_timer_start(&s->timer, on_timer, top > now ? top - now : 0, 0);
}

static void on_timer(uv_timer_t *t)
{
    struct reg_sessions *s = t->data;
    uint64_t now = uv_now(s->loop);

    while (s->n && s->heap[0].deadline <= now) {
        struct ttl_entry e = s->heap[0];
        heap_pop(s);
        struct reg_session *sess = reg_session_get(s->st, e.id);
        if (sess && sess->expires_ms == e.deadline) {
            log_info("session %s expired (TTL %s)", e.id, sess->ttl);
            reg_session_destroy(s->st, e.id);
        }
    }
    arm(s);
}

void reg_sessions_track(struct reg_sessions *s, struct reg_session *sess)
{
    if (!s || s->inactive || sess->ttl_ns <= 0)
        return;
    uint64_t ttl_ms = (uint64_t)sess->ttl_ns / 1000000;
    sess->expires_ms = uv_now(s->loop) + 2 * ttl_ms;
    heap_push(s, sess->expires_ms, sess->id);
    arm(s);
}

void reg_sessions_set_active(struct reg_sessions *s, bool active)
{
    s->n = 0;
    s->inactive = !active;
    if (active)
        smap_foreach(&s->st->sessions, e) reg_sessions_track(s, e->val);
    arm(s);
}

struct reg_sessions *reg_sessions_new(uv_loop_t *loop, struct reg_state *st)
{
    struct reg_sessions *s = xcalloc(1, sizeof(*s));

    s->loop = loop;
    s->st = st;
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    st->clock = clock_ms;
    st->clock_data = s;
    smap_foreach(&st->sessions, e) reg_sessions_track(s, e->val);
    return s;
}

static void event_clear(struct reg_event *ev)
{
    free(ev->name);
    free(ev->payload);
    free(ev->node_filter);
    free(ev->service_filter);
    free(ev->tag_filter);
    memset(ev, 0, sizeof(*ev));
}

static void on_closed(uv_handle_t *h)
{
    struct reg_sessions *s = h->data;

    for (size_t i = 0; i < REG_EVENTS_MAX; i++)
        event_clear(&s->events[i]);
    free(s->heap);
    free(s);
}

void reg_sessions_free(struct reg_sessions *s)
{
    if (!s)
        return;
    if (s->st->clock_data == s) {
        s->st->clock = NULL;
        s->st->clock_data = NULL;
    }
    uv_close((uv_handle_t *)&s->timer, on_closed);
}

static char *dup_or_empty(const char *s)
{
    return xstrdup(s ? s : "");
}

const struct reg_event *reg_sessions_event_add(struct reg_sessions *s, const char *name,
                                               const void *payload, size_t len,
                                               const char *node_filter, const char *service_filter,
                                               const char *tag_filter)
{
    size_t slot = (s->ev_first + s->ev_count) % REG_EVENTS_MAX;

    if (s->ev_count == REG_EVENTS_MAX) {
        slot = s->ev_first;
        s->ev_first = (s->ev_first + 1) % REG_EVENTS_MAX;
    } else {
        s->ev_count++;
    }
    struct reg_event *ev = &s->events[slot];
    event_clear(ev);
    uuid_v4(ev->id);
    ev->name = xstrdup(name);
    ev->payload = len ? xmemdup(payload, len) : NULL;
    ev->payload_len = len;
    ev->node_filter = dup_or_empty(node_filter);
    ev->service_filter = dup_or_empty(service_filter);
    ev->tag_filter = dup_or_empty(tag_filter);
    ev->ltime = ++s->ltime;
    reg_state_touch(s->st, REG_TABLE_EVENTS);
    return ev;
}

size_t reg_sessions_event_count(const struct reg_sessions *s)
{
    return s->ev_count;
}

const struct reg_event *reg_sessions_event_at(const struct reg_sessions *s, size_t i)
{
    return &s->events[(s->ev_first + i) % REG_EVENTS_MAX];
}
