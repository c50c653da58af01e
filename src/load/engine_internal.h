/*
 * Shared by the engine's worker (worker.c), its virtual users (vu.c: their life and flow), the
 * request steps they make (exchange.c, over agent.c's connections) and what they count
 * (record.c).
 */
#ifndef MESH_LOAD_ENGINE_INTERNAL_H
#define MESH_LOAD_ENGINE_INTERNAL_H

#include <jansson.h>

#include "lib/buf.h"
#include "lib/http_parse.h"
#include "lib/list.h"
#include "lib/tls.h"
#include "load/cookies.h"
#include "load/expect.h"
#include "load/engine.h"
#include "load/processor.h"
#include "load/schedule.h"

#define LOAD_MAX_BODY      (1u << 20) /* response bytes kept for captures */
#define LOAD_MAX_HEAD      (64u << 10)
#define LOAD_MAX_LOOP_NEST 9

/* Where a request goes. */
struct load_dest {
    struct sockaddr_storage addr;
    bool https;
    char host[256];        /* for the certificate check and SNI */
    char host_header[300]; /* "host:port" (port left out when the scheme's default) */
};

struct load_target {
    struct load_dest dest;
    int port;
};

/*
 * Artillery's HTTP agent: the keep-alive connections requests go over, at most max of them.
 * Each VU has one of its own that holds one connection, as Artillery gives each VU an agent of
 * maxSockets 1; config.http.pool gives each worker one agent of that many connections, shared by
 * its VUs, as Artillery shares one agent per worker. A request takes a connection (an idle one
 * to its destination, else a new one while fewer than max are open, else it waits its turn) and
 * gives it back when its response is complete. Lives on one worker's loop.
 */
struct load_agent {
    int max;                /* INT_MAX: no bound (http.pool: 0, as Node's Infinity); 0: unused */
    int open;               /* connections open, idle or busy */
    struct list_node idle;  /* struct load_conn.link: kept alive, no request on them */
    struct list_node queue; /* struct load_vu.queue_link: requests waiting for a connection */
    bool waking;            /* load_agent_wake is running: a nested call leaves it to it */
};

/* One keep-alive connection of an agent. */
struct load_conn {
    uv_tcp_t tcp;
    struct load_agent *agent; /* NULL once closing: late callbacks then only free */
    struct load_vu *vu;       /* the VU whose request it carries; NULL while idle or closing */
    struct list_node link;    /* in agent->idle while idle */
    uv_connect_t creq;
    uv_write_t wreq;
    struct sockaddr_storage addr;
    bool connected;
    bool used;      /* carried a response already: a close before the next is a stale reuse */
    bool got_byte;  /* response bytes seen for the request in flight */
    struct buf out; /* request bytes when templated */
    const char *wire;
    size_t wire_len;
    struct buf in;
    /* response state */
    bool head_done, chunked, until_close, keep_alive;
    int status;
    int64_t body_left;
    struct http_chunked_decoder dec;
    struct buf body;
    struct load_expect_run expect; /* the checks of the response in flight */
    bool redirect;                 /* the response is a redirect that will be followed */
    /* http.extendedMetrics: when the connection was asked for, made and secured (0: before
     * the request in flight), and when the request went */
    uint64_t connect_ns, connected_ns, tls_ns, sent_ns;
    char host_header[300]; /* of the destination, for a redirect's base URL */
    /* https */
    bool https;
    struct tls_conn *tls;
    struct buf raw;        /* ciphertext read, before tls_conn_recv */
    char server_name[256]; /* the name the certificate must match */
};

struct load_worker {
    struct load_engine *eng;
    size_t id;
    uv_thread_t thread;
    uv_loop_t loop;
    uv_timer_t arrivals;
    uv_async_t wake; /* stop requests from the main thread */
    struct load_stats stats;
    struct load_schedule sched;
    bool have_next; /* next_t_ms / next_phase hold the next arrival of this worker */
    double next_t_ms;
    size_t next_phase;
    bool sched_done;
    bool stopping;
    uint64_t rng;
    size_t active;          /* VUs alive */
    struct list_node vus;   /* the live VUs */
    struct load_proc *proc; /* the script's processor, or NULL */
    uint64_t next_uid;
    /* the loop of the script's before or after flow: its one user's end, what failed it */
    bool hook;
    bool hook_failed;
    json_t *hook_vars;       /* the user's variables at its end */
    char *hook_error;        /* the last error it counted */
    struct load_agent agent; /* config.http.pool's, shared by the VUs (max 0: none) */
};

struct load_engine {
    struct load_script *script;
    struct load_target target;
    struct tls_ctx *tls; /* for https, shared by the workers (OpenSSL's SSL_CTX is) */
    size_t n_workers;
    int pool;
    uint64_t pool_deadline_ns;
    struct load_worker *workers;
    uint64_t start_ns;
    int64_t start_epoch_ms;
    uint64_t start_subsec_ns; /* start_epoch_ms's part past its wall-clock second */
    json_t *context_vars; /* the before flow's variables at its end: every user starts with them */
    atomic_size_t running;
    atomic_bool stop;
    uv_loop_t *main_loop;
    uv_async_t done_async; /* on main_loop from load_engine_start on */
    void (*on_done)(void *data);
    void *data;
};

/* A flow being walked: the scenario's (loop NULL) or a loop's pass. */
struct load_frame {
    const struct load_step *loop;
    const struct load_step *steps;
    size_t n, idx;
    int64_t iter, count; /* count < 0: no bound (over or whileTrue ends the loop) */
    json_t *over;        /* a reference to the list iterated, or NULL */
};

struct load_conn;

struct load_vu {
    struct load_worker *w;
    const struct load_scenario *sc;
    json_t *vars;
    json_t *found; /* the captures of the response in flight, before they are applied */
    struct load_frame stack[LOAD_MAX_LOOP_NEST];
    int depth;
    struct load_agent own;          /* the VU's agent of one connection */
    struct load_agent *agent;       /* own, or the worker's shared one */
    struct load_conn *conn;         /* taken from the agent for the request in flight */
    struct list_node queue_link;    /* in agent->queue while the request waits for a connection */
    bool queued_retry;              /* the waiting request is a retry (not counted again) */
    uv_timer_t timer;               /* think and request timeout */
    uint64_t start_ns;              /* scheduled arrival */
    uint64_t ready_ns;              /* latency origin of the next request */
    const struct load_request *req; /* in flight */
    /* the flow's continuation once the request step is over (load_exchange_start's done) */
    void (*req_done)(struct load_vu *vu, bool failed);
    bool pool;
    bool failed;
    bool socket_checked; /* the 8 s socket floor passed for the request in flight */
    /* processor hooks (see processor.h) */
    uint64_t uid;                    /* the helper keeps this VU's context under it */
    uint64_t call;                   /* the call in flight, 0 when none */
    json_t *params;                  /* the request in flight as beforeRequest left it */
    json_t *res_headers;             /* the response's, for afterResponse */
    const struct load_request *done; /* afterResponse runs for it; then what it found: */
    bool done_expect_ok, done_capture_ok;
    char *done_path;         /* the path of a request whose checks failed, for the error's name */
    struct load_jar own_jar; /* cookies, as Artillery keeps a jar per user */
    struct load_jar *jar;    /* own_jar, or a branch's parent's */
    /*
     * parallel: each step of a parallel step runs as a branch, a VU of its own that shares its
     * parent's variables, cookies and agent (so without http.pool the branches' requests take
     * turns on the parent's one connection, as in Artillery). Branches are not users: they are
     * not counted, and end with their parent.
     */
    struct load_vu *parent;       /* NULL unless a branch */
    struct list_node branches;    /* the parallel step's live branches */
    struct list_node branch_link; /* in parent->branches */
    const struct load_step *par;  /* the parallel step running, or NULL */
    size_t par_next;              /* its next step to start as a branch */
    /* following a redirect: where the next hop goes (the Location resolved), how many hops */
    char *location, *redirect_url;
    int hops;
    bool redirect_get;     /* a 303 came: the next hops are GETs */
    struct list_node link; /* in w->vus */
};

/* Second-bucket index for a monotonic time. */
static inline size_t load_sec_index(const struct load_engine *eng, uint64_t ns)
{
    /* Seconds of the wall clock, as the reports' 10 s periods are: second 0 is the part of
     * the start's wall-clock second that is left. */
    return ns <= eng->start_ns
               ? 0
               : (size_t)((ns - eng->start_ns + eng->start_subsec_ns) / 1000000000u);
}

/* vu.c */
void load_vu_start(struct load_worker *w, const struct load_scenario *sc, uint64_t sched_ns,
                   bool pool);
/* Ends the VU now without counting it (stop requested). */
void load_vu_abort(struct load_vu *vu);

/* exchange.c: a request step */
/*
 * Runs request r for vu: its beforeRequest hooks, the send (waiting for a connection of the
 * agent when all are busy), redirects followed, the response's checks, captures and
 * afterResponse hooks. done runs once at the end: failed when the request failed or a check,
 * capture or hook failed the user (the error counted already), as Artillery ends the user.
 */
void load_exchange_start(struct load_vu *vu, const struct load_request *r,
                         void (*done)(struct load_vu *vu, bool failed));
/* The VU ends: the connection it holds is closed (what is in flight abandoned). */
void load_exchange_drop(struct load_vu *vu);
/* At the VU's free: what its last request step left. */
void load_exchange_free(struct load_vu *vu);

/* record.c: the counts, into the worker's stats for the second they fall in */
/* An error counted for vu (errors.<code>); the last one names what failed a before/after flow. */
void load_record_error(struct load_vu *vu, const char *code);
/* metrics-by-endpoint's <endpoint>.errors.<code>. */
void load_record_endpoint_error(struct load_worker *w, const struct load_request *r,
                                const char *code);
void load_record_request(struct load_worker *w);
void load_record_bytes(struct load_worker *w, size_t n);
void load_record_served_by(struct load_worker *w, uint64_t now, const char *name, size_t n);
/* A redirect followed: a response of c->status taking us microseconds. */
void load_record_redirect(struct load_worker *w, struct load_conn *c, uint64_t now, uint64_t us);
/* r's last response on c: its code and time, per endpoint and class, and c->expect's checks. */
void load_record_response(struct load_worker *w, const struct load_request *r, struct load_conn *c,
                          uint64_t now, uint64_t us);
void load_record_user_created(struct load_worker *w, const struct load_scenario *sc, uint64_t now);
/* session_us counts for a user that completed only. */
void load_record_user_ended(struct load_worker *w, bool failed, uint64_t now, uint64_t session_us);

/* request.c */
/* Builds the bytes of requests that hold no template. */
void load_vu_prepare_static(struct load_script *s, const struct load_target *t);
/*
 * Appends r's bytes to out: path (rendered already, or static), host for the Host header,
 * cookie for the Cookie header (NULL or "" for none), the rest rendered from vars. Returns
 * NULL, or the error code (Node's) when a rendered value, which may come from a capture the
 * server controls, would break the request line or a header.
 */
const char *load_request_append(struct buf *out, const struct load_request *r, const char *path,
                                const char *host, const char *cookie, const json_t *vars,
                                uint64_t *rng);
/*
 * Where url (rendered) goes: t's destination for a path, else the absolute URL's host when it
 * is t's or a numeric address. *path points into url or pathbuf. 0, -1 for a malformed URL,
 * -2 for a host name that is not the target's (names are resolved once, at start).
 */
int load_request_dest(const struct load_target *t, const char *url, struct load_dest *d,
                      const char **path, struct buf *pathbuf);
/* A redirect's Location resolved against the URL it answered (absolute): a new absolute URL. */
char *load_redirect_url(const char *base, const char *location);

/* agent.c */
/* max connections, INT_MAX for no bound; 0 for an agent not in use. */
void load_agent_init(struct load_agent *a, int max);
/*
 * A connection to d for vu's request, as Node's agent picks one: an idle one to d, else a new
 * one (not yet connected) while fewer than max are open, closing an idle one to elsewhere to
 * make room. NULL when all max are busy: vu waits in the queue (load_agent_wake resumes it).
 */
struct load_conn *load_agent_take(struct load_agent *a, struct load_vu *vu,
                                  const struct load_dest *d, uv_loop_t *loop);
/* The request on c is complete and c may carry another: idle, or handed to the queue's first. */
void load_agent_give(struct load_conn *c);
/* Closes c (held or idle) and frees it once libuv is done with it. */
void load_conn_close(struct load_conn *c);
/* Closes the idle connections (the agent's owner is going away). */
void load_agent_close_idle(struct load_agent *a);
/* vu's request no longer waits for a connection (the VU ends). */
void load_agent_unqueue(struct load_vu *vu);
/* The queue's first VU when a connection can be had for it now (removed from the queue). */
struct load_vu *load_agent_next_waiter(struct load_agent *a);

/* worker.c */
void load_worker_vu_ended(struct load_worker *w);

/* hooks.c: the processor's side of a VU */
/* The request params a hook gets (Artillery's requestParams): r's mapping as written, with
 * the url made absolute, the method and the timeout. New reference. */
json_t *load_hook_params(const struct load_vu *vu, const struct load_request *r);
/* Artillery's response for afterResponse: statusCode, headers, body. New reference. */
json_t *load_hook_response(int status, json_t *headers, const struct buf *body);
/* Request r as beforeRequest's params say: *tmp borrows from r and params (keep them) until
 * load_hook_request_free(tmp, *hdrs). */
void load_hook_request(const struct load_request *r, const json_t *params, struct load_request *tmp,
                       struct load_kv **hdrs);
void load_hook_request_free(struct load_request *tmp, struct load_kv *hdrs);
/* The message of a call (kind "function", "while", "condition", "request", "response") to
 * the functions fns (stolen) with vu's variables. New reference. */
json_t *load_hook_msg(struct load_vu *vu, const char *kind, json_t *fns);
/* A hook list's names as a JSON list. New reference. */
json_t *load_hook_names(const struct load_hooks *h);
/*
 * What every reply brings: vu's variables as the functions left them (updated in place: a
 * parallel step's branches share the object), or their error, counted as Artillery counts it
 * (errors.<code or message>). False on an error: the caller fails the user.
 */
bool load_hook_reply(struct load_vu *vu, const json_t *reply);
/* Records what a processor's events.emit gave (worker.c passes it to the helper). */
void load_hook_metrics(void *worker, const json_t *list);

#endif
