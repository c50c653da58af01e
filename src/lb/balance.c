/* Server pickers: shared weighted round robin, least connections, random with two choices. */
#include <string.h>

#include "lib/alloc.h"
#include "lib/bug.h"
#include "lb/balance.h"

void lb_picker_init(struct lb_picker *p, enum lb_balance algo, uint64_t seed)
{
    memset(p, 0, sizeof(*p));
    p->algo = algo;
    p->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
}

void lb_picker_close(struct lb_picker *p)
{
    lb_server_set_unref(p->set);
    p->set = NULL;
    FREE_NULL(p->scratch);
}

void lb_picker_use(struct lb_picker *p, struct lb_server_set *set)
{
    size_t n = set ? set->n : 0;

    lb_server_set_unref(p->set);
    p->set = set;
    p->generation = set ? set->generation : 0;
    free(p->scratch);
    p->scratch = xcalloc(n ? n : 1, sizeof(*p->scratch));
    p->rr = 0;
}

void lb_picker_sync(struct lb_picker *p, struct lb_backend *b)
{
    if (p->algo == LB_BALANCE_ROUNDROBIN && p->set && p->set->weight_epoch != lb_weight_epoch())
        lb_backend_reweigh(b, p->set);

    uint64_t gen = atomic_load_explicit(&b->generation, memory_order_acquire);

    if (gen == p->generation && (p->set || gen == 0))
        return;
    lb_picker_use(p, lb_backend_acquire(b));
}

static uint64_t picker_rand(struct lb_picker *p)
{
    uint64_t x = p->rng;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    p->rng = x;
    return x * 0x2545f4914f6cdd1dull;
}

static int server_maxconn(const struct lb_server *s, int default_maxconn)
{
    return s->maxconn > 0 ? s->maxconn : default_maxconn;
}

bool lb_server_take_slot(struct lb_server *s, int maxconn)
{
    struct lb_counters *c = &s->c;

    if (maxconn <= 0) {
        lb_scur_inc(c);
        return true;
    }
    /* CAS so that workers racing for the last slot cannot both take it. */
    uint64_t cur = atomic_load_explicit(&c->scur, memory_order_relaxed);
    do {
        if (cur >= (uint64_t)maxconn)
            return false;
    } while (!atomic_compare_exchange_weak_explicit(&c->scur, &cur, cur + 1, memory_order_relaxed,
                                                    memory_order_relaxed));
    uint64_t max = atomic_load_explicit(&c->smax, memory_order_relaxed);
    while (cur + 1 > max &&
           !atomic_compare_exchange_weak_explicit(&c->smax, &max, cur + 1, memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
    lb_count(&c->stot, 1);
    return true;
}

void lb_server_release(struct lb_server *s)
{
    lb_scur_dec(&s->c);
}

/* 0: not usable; 1: usable but full; 2: usable with a free slot. */
static int server_usability(const struct lb_server *s, int default_maxconn)
{
    if (atomic_load_explicit(&s->state, memory_order_relaxed) != LB_SRV_UP ||
        atomic_load_explicit(&s->weight, memory_order_relaxed) <= 0)
        return 0;
    int maxconn = server_maxconn(s, default_maxconn);
    if (maxconn > 0 && lb_read(&s->c.scur) >= (uint64_t)maxconn)
        return 1;
    return 2;
}

/*
 * Marks the candidates in scratch (indices), skipping avoid when something else is usable.
 * Returns their number; *full gets a usable-but-full server when there is none.
 */
static size_t collect(struct lb_picker *p, int default_maxconn, const struct lb_server *avoid,
                      struct lb_server **full)
{
    struct lb_server_set *set = p->set;
    size_t k = 0;
    bool avoided = false;

    *full = NULL;
    for (size_t i = 0; set && i < set->n; i++) {
        int u = server_usability(set->v[i], default_maxconn);
        if (u == 1 && !*full)
            *full = set->v[i];
        if (u != 2)
            continue;
        if (set->v[i] == avoid) {
            avoided = true;
            continue;
        }
        p->scratch[k++] = i;
    }
    if (k == 0 && avoided) {
        for (size_t i = 0; i < set->n; i++)
            if (set->v[i] == avoid)
                p->scratch[k++] = i;
    }
    return k;
}

/* ---- round robin sequence ------------------------------------------------------------------ */

static int gcd(int a, int b)
{
    while (b) {
        int t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* A server's next turn in the cycle: due at (2k+1) / (2w), compared without division. */
struct rr_turn {
    uint32_t idx;
    uint32_t k, w;
};

static bool turn_before(const struct rr_turn *a, const struct rr_turn *b)
{
    uint64_t lhs = (2 * (uint64_t)a->k + 1) * b->w, rhs = (2 * (uint64_t)b->k + 1) * a->w;
    return lhs < rhs || (lhs == rhs && a->idx < b->idx);
}

static void turn_sift_down(struct rr_turn *h, size_t n, size_t i)
{
    for (;;) {
        size_t m = i, l = 2 * i + 1, r = l + 1;
        if (l < n && turn_before(&h[l], &h[m]))
            m = l;
        if (r < n && turn_before(&h[r], &h[m]))
            m = r;
        if (m == i)
            return;
        struct rr_turn t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

void lb_rr_build(struct lb_server_set *set)
{
    struct rr_turn *heap = xcalloc(set->n ? set->n : 1, sizeof(*heap));
    size_t nh = 0, len = 0;
    int g = 0;

    /* Each weight is read once: the admin API may change it meanwhile, and a second read
     * could see a positive weight where the first saw 0 and divide by a gcd of 0. */
    for (size_t i = 0; i < set->n; i++) {
        int w = atomic_load_explicit(&set->v[i]->weight, memory_order_relaxed);
        if (w <= 0)
            continue;
        heap[nh++] = (struct rr_turn){(uint32_t)i, 0, (uint32_t)w};
        g = gcd(g, w);
    }
    for (size_t j = 0; j < nh; j++) {
        heap[j].w /= (uint32_t)g;
        len += heap[j].w;
    }
    for (size_t i = nh / 2; i-- > 0;)
        turn_sift_down(heap, nh, i);
    set->rr_len = len;
    set->rr_seq = len ? xmalloc(len * sizeof(*set->rr_seq)) : NULL;
    for (size_t j = 0; j < len; j++) {
        /* every server's turns add up to len, so the heap never runs dry within the cycle */
        MESH_BUG_ON(nh == 0 || heap[0].k >= heap[0].w);
        set->rr_seq[j] = heap[0].idx;
        if (++heap[0].k == heap[0].w)
            heap[0] = heap[--nh];
        turn_sift_down(heap, nh, 0);
    }
    free(heap);
}

/*
 * The next candidate in the set's shared sequence. Every look consumes a position, also one
 * whose server cannot take the request, so concurrent workers never get the same turn and the
 * usable servers keep strict alternation. A candidate is usable and not avoid, unless avoid is
 * the only candidate (collect put it alone in scratch).
 */
static size_t pick_rr(struct lb_picker *p, size_t k, int default_maxconn,
                      const struct lb_server *avoid)
{
    struct lb_server_set *set = p->set;

    if (k == 1 && set->v[p->scratch[0]] == avoid)
        return p->scratch[0];
    for (size_t t = 0; t < set->rr_len; t++) {
        uint64_t pos = atomic_fetch_add_explicit(&set->rr_next, 1, memory_order_relaxed);
        size_t i = set->rr_seq[pos % set->rr_len];
        if (set->v[i] != avoid && server_usability(set->v[i], default_maxconn) == 2)
            return i;
    }
    /* a whole cycle without a candidate: states or weights moved meanwhile */
    return p->scratch[0];
}

/* Fewest requests in flight; ties go round robin from where the last pick left off. */
static size_t pick_leastconn(struct lb_picker *p, size_t k)
{
    size_t n = p->set->n;
    size_t best = SIZE_MAX;
    uint64_t best_cur = UINT64_MAX;

    for (size_t j = 0; j < k; j++) {
        size_t i = p->scratch[j];
        /* distance from the rotating start decides ties */
        uint64_t cur = lb_read(&p->set->v[i]->c.scur);
        if (cur < best_cur || (cur == best_cur && (i + n - p->rr) % n < (best + n - p->rr) % n)) {
            best = i;
            best_cur = cur;
        }
    }
    p->rr = (best + 1) % n;
    return best;
}

/* Power of two choices: two distinct random candidates, the less loaded wins. */
static size_t pick_random2(struct lb_picker *p, size_t k)
{
    if (k == 1)
        return p->scratch[0];
    size_t a = (size_t)(picker_rand(p) % k);
    size_t b = (size_t)(picker_rand(p) % (k - 1));
    if (b >= a)
        b++;
    struct lb_server *sa = p->set->v[p->scratch[a]], *sb = p->set->v[p->scratch[b]];
    return lb_read(&sb->c.scur) < lb_read(&sa->c.scur) ? p->scratch[b] : p->scratch[a];
}

struct lb_server *lb_picker_pick(struct lb_picker *p, int default_maxconn,
                                 const struct lb_server *avoid, struct lb_server **full)
{
    struct lb_server *dummy = NULL;
    struct lb_server **fullp = full ? full : &dummy;
    size_t k = collect(p, default_maxconn, avoid, fullp);

    if (k == 0)
        return NULL;
    size_t i;
    switch (p->algo) {
    case LB_BALANCE_LEASTCONN:
        i = pick_leastconn(p, k);
        break;
    case LB_BALANCE_RANDOM:
        i = pick_random2(p, k);
        break;
    default:
        i = pick_rr(p, k, default_maxconn, avoid);
        break;
    }
    struct lb_server *s = p->set->v[i];
    if (!lb_server_take_slot(s, server_maxconn(s, default_maxconn))) {
        /* Another worker took the last slot between the check and now. */
        *fullp = s;
        return NULL;
    }
    return s;
}
