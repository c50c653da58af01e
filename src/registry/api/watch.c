#include "registry/api/watch.h"

#include <string.h>

#include "lib/alloc.h"
#include "registry/api/api.h"

struct reg_watch {
    struct reg_watch_set *set;
    struct reg_watch *next;
    struct reg_watch **pprev;
    struct reg_api_call *call;
    uint64_t hash;
    uv_timer_t timer;
    enum reg_table table;
};

uint64_t reg_watch_hash(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325ull;

    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static void unlink_watch(struct reg_watch *w)
{
    *w->pprev = w->next;
    if (w->next)
        w->next->pprev = w->pprev;
    w->next = NULL;
    w->pprev = &w->next;
    w->set->count--;
}

static void on_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

/* Unlinks and frees a watch whose call has been answered or aborted. */
static void watch_free(struct reg_watch *w)
{
    unlink_watch(w);
    uv_close((uv_handle_t *)&w->timer, on_timer_closed);
}

static void on_abort(struct http_request *req)
{
    struct reg_watch *w = req->data;

    reg_api_call_free(w->call);
    watch_free(w);
}

static void answer(struct reg_watch *w, bool always)
{
    bool answered;

    w->call->req->on_abort = NULL;
    reg_api_call_rerun(w->call, w->hash, always, &answered);
    if (answered) {
        watch_free(w);
    } else {
        w->call->req->on_abort = on_abort;
    }
}

static void on_wait_expired(uv_timer_t *t)
{
    answer(t->data, true);
}

static void before_poll(uv_prepare_t *p)
{
    struct reg_watch_set *ws = p->data;

    for (int t = 0; t < REG_TABLE_COUNT; t++) {
        if (!ws->dirty[t])
            continue;
        ws->dirty[t] = false;
        /* Answering unlinks the watch: walk with the next pointer taken first. */
        struct reg_watch *next;
        for (struct reg_watch *w = ws->parked[t]; w; w = next) {
            next = w->next;
            answer(w, false);
        }
    }
    uv_prepare_stop(p);
}

void reg_watch_set_init(struct reg_watch_set *ws, uv_loop_t *loop)
{
    memset(ws, 0, sizeof(*ws));
    ws->loop = loop;
    uv_prepare_init(loop, &ws->before_poll);
    ws->before_poll.data = ws;
}

void reg_watch_set_close(struct reg_watch_set *ws)
{
    for (int t = 0; t < REG_TABLE_COUNT; t++)
        while (ws->parked[t])
            answer(ws->parked[t], true);
    uv_close((uv_handle_t *)&ws->before_poll, NULL);
}

void reg_watch_on_change(enum reg_table table, void *data)
{
    struct reg_watch_set *ws = data;

    if (!ws->parked[table])
        return;
    ws->dirty[table] = true;
    uv_prepare_start(&ws->before_poll, before_poll);
}

void reg_watch_park(struct reg_watch_set *ws, struct reg_api_call *call, enum reg_table table,
                    uint64_t body_hash, uint64_t wait_ms)
{
    struct reg_watch *w = xcalloc(1, sizeof(*w));

    w->set = ws;
    w->call = call;
    w->hash = body_hash;
    w->table = table;
    w->next = ws->parked[table];
    if (w->next)
        w->next->pprev = &w->next;
    w->pprev = &ws->parked[table];
    ws->parked[table] = w;
    ws->count++;
    uv_timer_init(ws->loop, &w->timer);
    w->timer.data = w;
    uv_timer_start(&w->timer, on_wait_expired, wait_ms, 0);
    call->req->data = w;
    call->req->on_abort = on_abort;
}
