/* Servers, server sets and backends: the objects shared by the control thread and workers. */
#include <string.h>
#include <sys/time.h>

#include "lib/alloc.h"
#include "lib/net.h"
#include "lb/balance.h"
#include "lb/lb.h"

static _Atomic uint64_t weight_epoch;

static uint64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

void lb_scur_inc(struct lb_counters *c)
{
    uint64_t now = atomic_fetch_add_explicit(&c->scur, 1, memory_order_relaxed) + 1;
    uint64_t max = atomic_load_explicit(&c->smax, memory_order_relaxed);

    while (now > max && !atomic_compare_exchange_weak_explicit(
                            &c->smax, &max, now, memory_order_relaxed, memory_order_relaxed))
        ;
    atomic_fetch_add_explicit(&c->stot, 1, memory_order_relaxed);
}

void lb_scur_dec(struct lb_counters *c)
{
    atomic_fetch_sub_explicit(&c->scur, 1, memory_order_relaxed);
}

const char *lb_server_state_name(enum lb_server_state s)
{
    static const char *const names[] = {"UP", "DOWN", "DRAIN", "MAINT"};
    return s <= LB_SRV_MAINT ? names[s] : "?";
}

struct lb_server *lb_server_new(const char *id, const char *name, const char *host, int port,
                                int weight)
{
    struct sockaddr_storage sa;

    if (net_parse_addr(host, port, &sa) < 0)
        return NULL;
    struct lb_server *s = xcalloc(1, sizeof(*s));
    atomic_init(&s->refs, 1);
    s->id = xstrdup(id);
    s->name = xstrdup(name);
    s->host = xstrdup(host);
    s->port = port;
    s->sa = sa;
    atomic_init(&s->weight, weight);
    atomic_init(&s->state, LB_SRV_UP);
    atomic_init(&s->last_change_ms, wall_ms());
    snprintf(s->check_status, sizeof(s->check_status), "INI");
    lb_counters_init(&s->c);
    return s;
}

struct lb_server *lb_server_ref(struct lb_server *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

void lb_server_unref(struct lb_server *s)
{
    if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    lb_counters_close(&s->c);
    free(s->id);
    free(s->name);
    free(s->host);
    free(s);
}

void lb_server_set_state(struct lb_server *s, enum lb_server_state st)
{
    int old = atomic_exchange(&s->state, (int)st);
    uint64_t now = wall_ms();

    if (old == (int)st)
        return;
    uint64_t since = atomic_exchange(&s->last_change_ms, now);
    if (old == LB_SRV_DOWN)
        atomic_fetch_add(&s->downtime_ms, now - since);
}

void lb_server_set_weight(struct lb_server *s, int weight)
{
    atomic_store(&s->weight, weight);
    /* after the store: a set built from an epoch read before it is rebuilt */
    atomic_fetch_add(&weight_epoch, 1);
}

uint64_t lb_weight_epoch(void)
{
    return atomic_load(&weight_epoch);
}

struct lb_server_set *lb_server_set_new(struct lb_server **servers, size_t n)
{
    static _Atomic uint64_t generations = 1;
    struct lb_server_set *set = xcalloc(1, sizeof(*set) + n * sizeof(set->v[0]));

    atomic_init(&set->refs, 1);
    set->generation = atomic_fetch_add(&generations, 1);
    set->weight_epoch = lb_weight_epoch();
    set->n = n;
    for (size_t i = 0; i < n; i++)
        set->v[i] = lb_server_ref(servers[i]);
    lb_rr_build(set);
    return set;
}

void lb_server_set_unref(struct lb_server_set *set)
{
    if (!set || atomic_fetch_sub_explicit(&set->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < set->n; i++)
        lb_server_unref(set->v[i]);
    free(set->rr_seq);
    free(set);
}

/* Makes set current; the caller holds b->lock. Returns the old set (its reference). */
static struct lb_server_set *backend_swap(struct lb_backend *b, struct lb_server_set *set)
{
    struct lb_server_set *old = b->current;

    b->current = set;
    atomic_store_explicit(&b->generation, set ? set->generation : 0, memory_order_release);
    return old;
}

void lb_backend_publish(struct lb_backend *b, struct lb_server_set *set)
{
    pthread_mutex_lock(&b->lock);
    struct lb_server_set *old = backend_swap(b, set);
    pthread_mutex_unlock(&b->lock);
    atomic_store(&b->last_change_ms, wall_ms());
    lb_server_set_unref(old);
}

void lb_backend_reweigh(struct lb_backend *b, struct lb_server_set *seen)
{
    struct lb_server_set *old = NULL;

    pthread_mutex_lock(&b->lock);
    /* Two workers may see the change at once: only the first replaces the set. */
    if (b->current == seen && seen->weight_epoch != lb_weight_epoch())
        old = backend_swap(b, lb_server_set_new(seen->v, seen->n));
    pthread_mutex_unlock(&b->lock);
    lb_server_set_unref(old);
}

struct lb_server_set *lb_backend_acquire(struct lb_backend *b)
{
    pthread_mutex_lock(&b->lock);
    struct lb_server_set *set = b->current;
    if (set)
        atomic_fetch_add_explicit(&set->refs, 1, memory_order_relaxed);
    pthread_mutex_unlock(&b->lock);
    return set;
}
