#include "registry/api/watch.h"

#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "registry/api/api.h"

struct reg_watch {
    struct reg_watch_set *set;
    struct reg_watch *next;
    struct reg_watch **pprev;
    struct reg_api_call *call;
    uint64_t hash;
    struct buf key;    /* reg_api_call_share_key(): equal keys share one re-run */
    uint64_t key_hash; /* of key, to sort and compare keys quickly */
    struct timerwheel_entry expiry;
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

/* Takes w out of its list; a no-op on a watch already out of it (linked to itself). */
static void unlink_watch(struct reg_watch *w)
{
    if (w->pprev == &w->next)
        return;
    *w->pprev = w->next;
    if (w->next)
        w->next->pprev = w->pprev;
    w->next = NULL;
    w->pprev = &w->next;
    w->set->count--;
}

/* Unlinks and frees a watch whose call has been answered or aborted. */
static void watch_free(struct reg_watch *w)
{
    unlink_watch(w);
    timerwheel_del(&w->set->expiry, &w->expiry);
    buf_free(&w->key);
    free(w);
}

static void on_abort(struct http_request *req)
{
    struct reg_watch *w = req->data;

    reg_api_call_free(w->call);
    watch_free(w);
}

/* Answers w with answer (borrowed: shared with the other watchers of its key) and frees it. */
static void answer_with(struct reg_watch *w, struct http_shared_response *answer)
{
    w->call->req->on_abort = NULL;
    reg_api_call_answer(w->call, answer);
    watch_free(w);
}

/* Runs w's read again on its own and answers it with the result. */
static void answer(struct reg_watch *w)
{
    struct reg_api_result res;

    w->set->renders++;
    reg_api_call_reread(w->call, &res);
    struct http_shared_response *r = reg_api_result_response(w->call, &res);
    answer_with(w, r);
    http_shared_response_unref(r);
    reg_api_result_free(&res);
}

static void on_wait_expired(struct timerwheel_entry *e)
{
    answer(CONTAINER_OF(e, struct reg_watch, expiry));
}

static int cmp_key(const void *pa, const void *pb)
{
    const struct reg_watch *a = *(struct reg_watch *const *)pa;
    const struct reg_watch *b = *(struct reg_watch *const *)pb;

    if (a->key_hash != b->key_hash)
        return a->key_hash < b->key_hash ? -1 : 1;
    if (a->key.len != b->key.len)
        return a->key.len < b->key.len ? -1 : 1;
    return memcmp(a->key.data, b->key.data, a->key.len);
}

/*
 * Re-runs the queries parked on table t after a change: once per distinct key, the answer (its
 * body and head, rendered once) sent to every watcher of that key whose answer changed. The
 * watchers are copied out of the list into an array first: answering one may serve the next request
 * on its connection, which can park a new query on the same list (it parked after the change and is
 * not re-run now).
 */
static void rerun_table(struct reg_watch_set *ws, enum reg_table t)
{
    size_t n = 0;

    for (struct reg_watch *w = ws->parked[t]; w; w = w->next)
        n++;
    struct reg_watch **v = xmalloc(n * sizeof(*v));
    n = 0;
    for (struct reg_watch *w = ws->parked[t]; w; w = w->next)
        v[n++] = w;
    qsort(v, n, sizeof(*v), cmp_key);
    for (size_t i = 0, end; i < n; i = end) {
        struct reg_api_result res;

        for (end = i + 1; end < n && cmp_key(&v[i], &v[end]) == 0;)
            end++;
        ws->renders++;
        reg_api_call_reread(v[i]->call, &res);
        uint64_t hash = reg_api_result_hash(&res); /* once for all of them */
        /* The head too: each answer is then a copy of ready bytes and one send. */
        struct http_shared_response *r = NULL;
        for (size_t k = i; k < end; k++) {
            if (v[k]->hash == hash)
                continue;
            if (!r)
                r = reg_api_result_response(v[k]->call, &res);
            answer_with(v[k], r);
        }
        if (r)
            http_shared_response_unref(r);
        reg_api_result_free(&res);
    }
    free(v);
}

static void before_poll(uv_prepare_t *p)
{
    struct reg_watch_set *ws = p->data;

    for (int t = 0; t < REG_TABLE_COUNT; t++) {
        if (!ws->dirty[t])
            continue;
        ws->dirty[t] = false;
        if (ws->parked[t])
            rerun_table(ws, t);
    }
    /* Answering serves what is pipelined behind an answer, which may write again: stay armed
     * for the next iteration then. */
    for (int t = 0; t < REG_TABLE_COUNT; t++)
        if (ws->dirty[t])
            return;
    uv_prepare_stop(p);
}

void reg_watch_set_init(struct reg_watch_set *ws, uv_loop_t *loop)
{
    memset(ws, 0, sizeof(*ws));
    ws->loop = loop;
    uv_prepare_init(loop, &ws->before_poll);
    ws->before_poll.data = ws;
    timerwheel_init(&ws->expiry, loop, REG_WATCH_TICK_MS);
}

void reg_watch_set_close(struct reg_watch_set *ws)
{
    /*
     * Each watch is taken off its list here, where the loop sees the head move on (clang's
     * analyzer does not follow unlink_watch's store through pprev, and took the head for freed),
     * then answered. Answering may serve a pipelined request that parks again: the next turn
     * finds it.
     */
    for (int t = 0; t < REG_TABLE_COUNT; t++) {
        struct reg_watch *w;
        while ((w = ws->parked[t])) {
            ws->parked[t] = w->next;
            if (w->next)
                w->next->pprev = &ws->parked[t];
            w->next = NULL;
            w->pprev = &w->next;
            ws->count--;
            answer(w);
        }
    }
    uv_close((uv_handle_t *)&ws->before_poll, NULL);
    timerwheel_close(&ws->expiry, NULL);
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
                    uint64_t body_hash, uint64_t wait_ms, struct buf *key)
{
    struct reg_watch *w = xcalloc(1, sizeof(*w));

    w->set = ws;
    w->call = call;
    w->hash = body_hash;
    w->key = *key;
    *key = BUF_INIT;
    w->key_hash = reg_watch_hash(w->key.data, w->key.len);
    w->table = table;
    w->next = ws->parked[table];
    if (w->next)
        w->next->pprev = &w->next;
    w->pprev = &ws->parked[table];
    ws->parked[table] = w;
    ws->count++;
    timerwheel_add(&ws->expiry, &w->expiry, wait_ms, on_wait_expired);
    call->req->data = w;
    call->req->on_abort = on_abort;
}
