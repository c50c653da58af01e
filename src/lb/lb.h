/*
 * `mesh lb`: the HTTP load balancer. Shared types of its parts (see docs/lb.md):
 *
 *   control thread (main loop)            worker threads (one loop each, SO_REUSEPORT listener)
 *   - registry watch (blocking queries)   - accept clients, each for the least-loaded worker
 *   - active health checks                - parse requests (lib/http_parse)
 *   - stats / admin HTTP server (:8404)   - pick a server (balance.c), proxy to it over a pool
 *   - signals, config                       of keep-alive upstream connections, stream bodies
 *                                         - retries, timeouts, 503 page
 *
 * Servers are shared between threads. Everything a worker reads of a server on the hot path is
 * immutable for the server's life (address, id, weight) or an atomic (state, counters). The set
 * of servers of a backend changes as a whole: the control thread builds a new immutable
 * struct lb_server_set and publishes it (lb_backend_publish); workers pick it up with
 * lb_backend_acquire, which takes a reference, so a set (and the servers in it) stays alive
 * while any worker still uses it.
 *
 * Counters follow HAProxy's stats columns (docs/lb-stats.md) so /stats;csv can be produced from
 * them directly. All counters are monotonic 64-bit atomics with relaxed ordering. Those every
 * proxied request moves are kept per worker (struct lb_shard): a request then costs no atomic
 * read-modify-write for its statistics and writes no cache line that another worker writes.
 */
#ifndef MESH_LB_LB_H
#define MESH_LB_LB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "lb/timing.h"

typedef _Atomic uint64_t lb_counter;

static inline void lb_count(lb_counter *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static inline uint64_t lb_read(const lb_counter *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

/*
 * An add to a counter that one thread alone writes (a worker's shard): a load and a store, no
 * locked instruction. Readers on other threads see either value, never a torn one.
 */
static inline void lb_shard_add(lb_counter *c, uint64_t n)
{
    atomic_store_explicit(c, lb_read(c) + n, memory_order_relaxed);
}

/*
 * One worker's part of a counter set: what each proxied request counts. Only the worker
 * writes it (lb_shard_add, lb_times_record); the stats add the parts up (lb_counters_sum).
 * Each part starts on a cache line of its own.
 */
struct lb_shard {
    _Alignas(64) lb_counter bin; /* bytes in (from clients, or to the server for servers) */
    lb_counter bout;             /* bytes out */
    lb_counter req_tot;          /* HTTP requests */
    lb_counter hrsp[6];          /* responses by class: [1]..[5] = 1xx..5xx, [0] = other */
    struct lb_times times;       /* backends and servers: their requests' phases */
};

/*
 * Traffic counters common to frontends, backends and servers (HAProxy names): the shared ones
 * here, the per-request ones in one shard per worker.
 */
struct lb_counters {
    lb_counter scur;       /* current sessions (connections / requests in flight) */
    lb_counter smax;       /* max of scur (updated with a CAS loop by lb_scur_inc) */
    lb_counter stot;       /* total sessions */
    lb_counter ereq;       /* request errors (frontend) */
    lb_counter econ;       /* connection errors (server) */
    lb_counter eresp;      /* response errors (server) */
    lb_counter wretr;      /* retries */
    lb_counter wredis;     /* redispatches */
    lb_counter dreq;       /* denied requests */
    lb_counter cli_abrt;   /* aborted by the client */
    lb_counter srv_abrt;   /* aborted by the server */
    lb_counter tunnel_cur; /* tunnels open (a 101 switched the connection to another protocol) */
    lb_counter tunnel_tot;
    lb_counter rate_last; /* requests in the last full second (updated by the control thread) */
    lb_counter rate_max;
    struct lb_shard *shard; /* owned: lb_nshards() of them, [worker] written by that worker */
};

/* The shards of a counter set added up, with the phases of its requests. */
struct lb_totals {
    uint64_t bin, bout, req_tot, hrsp[6];
    struct lb_times_total times;
};

/*
 * How many workers count apart: every counter set has this many shards. Set once, before the
 * first counter set is made (the worker count is fixed for the process's life); 1 until then.
 */
void lb_shards_init(unsigned workers);
unsigned lb_nshards(void);

/* Zeroes c and gives it its shards; lb_counters_close frees them. */
void lb_counters_init(struct lb_counters *c);
void lb_counters_close(struct lb_counters *c);

/* The shard worker (0 .. lb_nshards() - 1) writes. */
static inline struct lb_shard *lb_shard_of(struct lb_counters *c, unsigned worker)
{
    return &c->shard[worker];
}

/* Adds up c's shards (any thread; each value is as recent as the read of it). */
void lb_counters_sum(const struct lb_counters *c, struct lb_totals *out);

/* scur++ and keep smax up to date. */
void lb_scur_inc(struct lb_counters *c);
void lb_scur_dec(struct lb_counters *c);

enum lb_server_state {
    LB_SRV_UP = 0, /* takes traffic */
    LB_SRV_DOWN,   /* failed health checks or ejected after errors */
    LB_SRV_DRAIN,  /* admin or registry maintenance: no new requests, in-flight finish */
    LB_SRV_MAINT,  /* admin: disabled */
};

const char *lb_server_state_name(enum lb_server_state s); /* "UP", "DOWN", "DRAIN", "MAINT" */

struct lb_server {
    _Atomic int refs;
    char *id;   /* stable identity: registry service ID, or "host:port" for static servers */
    char *name; /* HAProxy svname: "<node>_<port>" for registry servers */
    char *host; /* numeric address */
    int port;
    struct sockaddr_storage sa;
    _Atomic int weight; /* effective weight, 0..256 (registry Weights.Passing, admin) */
    _Atomic int state;  /* enum lb_server_state */
    _Atomic uint64_t last_change_ms; /* when state last changed (wall clock ms) */
    _Atomic uint64_t downtime_ms;    /* total time spent DOWN */
    int maxconn;                     /* 0 = unlimited */
    struct lb_counters c;
    lb_counter qcur, qmax; /* requests queued for this server (maxconn) */
    /* health checks (health.c): written by the control thread only */
    char check_status[16]; /* HAProxy's "L7OK", "L7STS", "L4CON", "L4TOUT", ... */
    int check_code;        /* last HTTP status of the check */
    uint64_t check_duration_ms;
    int check_rise, check_fall; /* consecutive successes / failures so far */
    lb_counter chkfail, chkdown;
    /* passive ejection: consecutive failures seen by workers */
    _Atomic int consecutive_errors;
};

/* Creates a server with one reference. host must be numeric. Returns NULL on a bad address. */
struct lb_server *lb_server_new(const char *id, const char *name, const char *host, int port,
                                int weight);
struct lb_server *lb_server_ref(struct lb_server *s);
void lb_server_unref(struct lb_server *s);
/* Changes state, recording last_change_ms and downtime. */
void lb_server_set_state(struct lb_server *s, enum lb_server_state st);

/*
 * An immutable list of servers, refcounted; it holds a reference to each server.
 *
 * Round robin is one sequence per set, shared by every worker: rr_seq is the weighted order of
 * one cycle (built from the servers' weights when the set is made, see balance.c) and rr_next
 * an atomic cursor into it, so requests alternate strictly whichever worker or connection they
 * come from. A weight change (lb_server_set_weight) makes the set stale: the next pick replaces
 * it with a copy built from the new weights (lb_backend_reweigh).
 */
struct lb_server_set {
    _Atomic int refs;
    uint64_t generation;
    uint64_t weight_epoch; /* lb_weight_epoch() before rr_seq was built from the weights */
    uint32_t *rr_seq;      /* owned: indices into v, one cycle; NULL when no weight is > 0 */
    size_t rr_len;
    /* written by every pick: kept off the cache lines the workers only read */
    char rr_pad0_[64];
    _Atomic uint64_t rr_next;
    char rr_pad1_[64 - sizeof(uint64_t)];
    size_t n;
    struct lb_server *v[];
};

struct lb_server_set *lb_server_set_new(struct lb_server **servers, size_t n);
void lb_server_set_unref(struct lb_server_set *set);

/* Sets a server's weight (0..256) and marks every set built from older weights stale. */
void lb_server_set_weight(struct lb_server *s, int weight);
/* Moves on every weight change. */
uint64_t lb_weight_epoch(void);

enum lb_balance {
    LB_BALANCE_ROUNDROBIN = 0, /* weighted round robin, one sequence shared by all workers */
    LB_BALANCE_LEASTCONN,
    LB_BALANCE_RANDOM, /* power of two choices */
};

struct lb_backend {
    char *name;
    enum lb_balance balance;
    pthread_mutex_t lock; /* guards current */
    struct lb_server_set *current;
    _Atomic uint64_t generation; /* of current: workers compare before locking */
    struct lb_counters c;
    lb_counter qcur, qmax;
    _Atomic int registry_ok; /* 0 when the registry is unreachable (last known set in use) */
    _Atomic uint64_t last_change_ms;
};

/* Replaces the backend's set (takes over the caller's reference to set). */
void lb_backend_publish(struct lb_backend *b, struct lb_server_set *set);
/* The current set with a reference the caller drops with lb_server_set_unref. */
struct lb_server_set *lb_backend_acquire(struct lb_backend *b);
/*
 * Replaces seen, when it is still the backend's current set, with a copy whose round robin
 * sequence follows the servers' present weights. Any thread; seen is borrowed.
 */
void lb_backend_reweigh(struct lb_backend *b, struct lb_server_set *seen);

#endif
