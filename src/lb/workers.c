/*
 * Worker threads: each owns a libuv loop, a listening socket on the frontend address and a
 * proxy (proxy.c). The sockets are bound in the calling thread so that a bind error is
 * reported by lb_workers_start; loops are set up there too, and each thread only runs its loop.
 * A single worker has no thread: it runs on the caller's loop (mesh lb's control loop).
 *
 * Balance. The listeners share the port with SO_REUSEPORT, and the kernel hashes each new
 * connection to one of them: with keep-alive clients a worker keeps what the hash gave it for
 * the connection's life, and 50 connections over two listeners left the busier one 1.10 times
 * its even share (median of 40 trials). So a worker accepts (accept4 itself, on a uv_poll of
 * its listener) and gives each connection to the worker with the fewest client connections,
 * itself on a tie (HAProxy does the same with its threads). A connection for another worker
 * goes into that worker's inbox and an async wakes it. Each worker's load counts its open
 * client connections plus those on their way to it: the acceptor adds one with a
 * compare-and-swap on the load it saw as the lowest, so two acceptors deciding at once cannot
 * both put a connection on the same worker on the strength of one reading, and the proxy's
 * on_client_close takes it off. With connections that stay open the loads then never differ
 * by more than one.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/alloc.h"
#include "lib/buf.h"
#include "lib/bug.h"
#include "lib/log.h"
#include "lib/net.h"
#include "lib/pollsock.h"
#include "lb/proxy.h"
#include "lb/workers.h"

/* Connections accepted per wake-up of a listener before the loop serves other events. */
#define ACCEPT_BATCH 64
/* Out of file descriptors with a connection waiting: accepting pauses this long (it waits in
 * the backlog). */
#define ACCEPT_PAUSE_MS 100
/*
 * Draining: what a closed connection's io_uring send queue holds goes out for this long at
 * most (16 KiB to a peer that reads takes far less); at the drain's deadline it is dropped.
 */
#define DRAIN_FLUSH_MS 1000
/* Connections handed to one worker and not yet taken by its loop; the acceptor keeps more. */
#define INBOX_MAX 256
/* Compare-and-swap rounds to place a connection before the acceptor keeps it itself. */
#define PLACE_TRIES 8

/* An accepted connection on its way to a worker, with the address accept4 gave for it. */
struct lb_accepted {
    int fd;
    struct sockaddr_storage peer;
};

struct lb_worker {
    struct lb_workers *all;
    pthread_t thread;
    bool thread_started;
    bool on_caller;     /* the only worker: it runs on the caller's loop and thread */
    uv_loop_t own_loop; /* a worker thread's (loop_ready: initialised) */
    uv_loop_t *loop;
    int listen_fd;            /* owned, -1 once closed */
    uv_poll_t listener;       /* readable: connections to accept */
    uv_timer_t accept_resume; /* after running out of file descriptors */
    uv_async_t async;         /* drain */
    uv_async_t inbox_wake;    /* connections in the inbox */
    uv_timer_t force;         /* drain deadline: force-close what is still busy */
    bool loop_ready, draining, finished;
    bool starved; /* accepting paused for want of file descriptors (logged once) */
    struct lb_proxy px;
    /* Connections other workers accepted for this one; guarded by lock. */
    pthread_mutex_t lock;
    struct lb_accepted inbox[INBOX_MAX];
    size_t ninbox;
    bool inbox_closed; /* draining or finished: nothing more is handed here */
    /* Client connections open or on their way here (see the top of this file). */
    _Alignas(64) _Atomic size_t load;
    char load_pad_[64 - sizeof(size_t)];
};

struct lb_workers {
    const struct lb_config *cfg;
    int n;
    char *page503; /* errorfile_503 contents, or NULL for the built-in page */
    size_t page503_len;
    struct lb_worker *w[];
};

static void load_drop(struct lb_worker *w)
{
    size_t was = atomic_fetch_sub_explicit(&w->load, 1, memory_order_relaxed);
    MESH_BUG_ON(was == 0);
}

/* The proxy closed a client connection. */
static void worker_client_closed(struct lb_proxy *px)
{
    load_drop(px->data);
}

/*
 * Takes what is in w's inbox into in (at least INBOX_MAX of them) and, when close is set,
 * stops further hand-offs to w. Returns how many were taken.
 */
static size_t inbox_take(struct lb_worker *w, struct lb_accepted *in, bool close)
{
    size_t n;

    pthread_mutex_lock(&w->lock);
    n = w->ninbox;
    memcpy(in, w->inbox, n * sizeof(*in));
    w->ninbox = 0;
    if (close)
        w->inbox_closed = true;
    pthread_mutex_unlock(&w->lock);
    return n;
}

/* No more hand-offs to w; connections already handed are closed unserved. */
static void inbox_close(struct lb_worker *w)
{
    struct lb_accepted in[INBOX_MAX];
    size_t n = inbox_take(w, in, true);

    for (size_t i = 0; i < n; i++) {
        close(in[i].fd);
        load_drop(w);
    }
}

/* Puts a copy of *a into to's inbox and wakes its loop; false when to takes no more. */
static bool inbox_put(struct lb_worker *to, const struct lb_accepted *a)
{
    bool ok;

    pthread_mutex_lock(&to->lock);
    ok = !to->inbox_closed && to->ninbox < INBOX_MAX;
    if (ok) {
        to->inbox[to->ninbox++] = *a;
        /* under the lock: inbox_closed is set before to's loop can close the handle */
        uv_async_send(&to->inbox_wake);
    }
    pthread_mutex_unlock(&to->lock);
    return ok;
}

static void inbox_ready(uv_async_t *a)
{
    struct lb_worker *w = a->data;
    struct lb_accepted in[INBOX_MAX];
    size_t n = inbox_take(w, in, false);

    for (size_t i = 0; i < n; i++) /* on failure it closes the connection */
        lb_proxy_open_tcp(&w->px, in[i].fd, (const struct sockaddr *)&in[i].peer);
}

/*
 * The worker with the fewest client connections (self on a tie), its load counted up by one
 * for the connection about to go there.
 */
static struct lb_worker *place(struct lb_worker *self)
{
    struct lb_workers *all = self->all;

    for (int tries = 0; tries < PLACE_TRIES; tries++) {
        struct lb_worker *best = self;
        size_t min = atomic_load_explicit(&self->load, memory_order_relaxed);
        for (int i = 0; i < all->n; i++) {
            size_t l = atomic_load_explicit(&all->w[i]->load, memory_order_relaxed);
            if (l < min) {
                best = all->w[i];
                min = l;
            }
        }
        if (atomic_compare_exchange_weak_explicit(&best->load, &min, min + 1, memory_order_relaxed,
                                                  memory_order_relaxed))
            return best;
    }
    atomic_fetch_add_explicit(&self->load, 1, memory_order_relaxed); /* contended: keep it */
    return self;
}

/* Serves a here or hands it to a worker with fewer connections. */
static void dispatch(struct lb_worker *w, const struct lb_accepted *a)
{
    struct lb_worker *to = place(w);

    if (to != w && !inbox_put(to, a)) {
        load_drop(to); /* draining, or its inbox is full: serve it here */
        atomic_fetch_add_explicit(&w->load, 1, memory_order_relaxed);
        to = w;
    }
    if (to == w)
        lb_proxy_open_tcp(&w->px, a->fd, (const struct sockaddr *)&a->peer);
}

static void worker_accept(uv_poll_t *p, int status, int events);

static void accept_resume(uv_timer_t *t)
{
    struct lb_worker *w = t->data;

    if (!w->draining)
        uv_poll_start(&w->listener, UV_READABLE, worker_accept);
}

/* Whether a connection waits in fd's backlog (a listening socket is readable then). */
static bool backlog_waiting(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};

    return poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

/*
 * Out of file descriptors (or socket memory). accept4 takes a descriptor before it looks at
 * the backlog, so EMFILE alone does not say that anyone waits: the call after the one that
 * took the last descriptor fails so with an empty backlog, and nothing is wrong yet. Only
 * when a connection does wait does accepting pause (polling a listener that stays readable
 * would spin until a connection closes) and the warning go out; the connections wait in the
 * backlog, as HAProxy and nginx leave them, and are taken when a descriptor frees. (libuv's
 * way, accepting with a spare descriptor and closing them, drops them.)
 */
static void accept_starved(struct lb_worker *w, int err)
{
    if (!backlog_waiting(w->listen_fd))
        return; /* the listener wakes the worker when one comes */
    if (!w->starved)
        log_warn("worker %u: accept: %s: new connections wait until one closes", w->px.worker,
                 strerror(err));
    w->starved = true;
    uv_poll_stop(&w->listener);
    uv_timer_start(&w->accept_resume, accept_resume, ACCEPT_PAUSE_MS, 0);
}

static void worker_accept(uv_poll_t *p, int status, int events)
{
    struct lb_worker *w = p->data;

    (void)events;
    if (status < 0)
        return;
    for (int i = 0; i < ACCEPT_BATCH && !w->draining; i++) {
        /* the client's address comes with the connection: no getpeername for X-Forwarded-For */
        struct lb_accepted a = {.peer.ss_family = AF_UNSPEC};
        socklen_t len = sizeof(a.peer);
        a.fd =
            accept4(w->listen_fd, (struct sockaddr *)&a.peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (a.fd >= 0) {
            w->starved = false;
            dispatch(w, &a);
        } else if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            accept_starved(w, errno);
            break;
        } else if (errno != EINTR && errno != ECONNABORTED) {
            break; /* EAGAIN: the backlog is empty */
        }
    }
}

/* Stops accepting for good: the listening socket is closed. */
static void listener_close(struct lb_worker *w)
{
    if (w->listen_fd < 0)
        return;
    uv_close((uv_handle_t *)&w->listener, NULL); /* stops polling the fd first */
    close(w->listen_fd);
    w->listen_fd = -1;
    uv_timer_stop(&w->accept_resume);
}

/* Everything is closed: the loop ends once the close callbacks have run. */
static void worker_finish(struct lb_proxy *px)
{
    struct lb_worker *w = px->data;

    if (w->finished)
        return;
    w->finished = true;
    inbox_close(w);
    listener_close(w);
    lb_proxy_close(&w->px);
    uv_close((uv_handle_t *)&w->async, NULL);
    uv_close((uv_handle_t *)&w->inbox_wake, NULL);
    uv_close((uv_handle_t *)&w->force, NULL);
    uv_close((uv_handle_t *)&w->accept_resume, NULL);
}

static void worker_force(uv_timer_t *t)
{
    struct lb_worker *w = t->data;

    /* as HAProxy's hard stop: what the peers have not taken by now is dropped */
    pollsock_loop_stop(w->loop, 0);
    lb_proxy_abort_all(&w->px);
    worker_finish(&w->px);
}

static void worker_drain(uv_async_t *a)
{
    struct lb_worker *w = a->data;
    int64_t ns = w->all->cfg->timeout_server_ns;
    uint64_t ms = ns > 0 ? (uint64_t)(ns / 1000000) : 30000;

    if (w->draining)
        return;
    w->draining = true;
    pollsock_loop_stop(w->loop, DRAIN_FLUSH_MS);
    inbox_close(w);
    listener_close(w);
    uv_timer_start(&w->force, worker_force, ms ? ms : 1, 0);
    lb_proxy_drain(&w->px); /* calls worker_finish when no client is left */
}

/* The io_uring ring of loop, on the thread that runs it; epoll when it cannot be had. */
static void loop_ring(uv_loop_t *loop, unsigned worker)
{
    int rc = pollsock_loop_init(loop);

    if (rc < 0)
        log_warn("worker %u: io_uring ring: %s; this worker uses epoll", worker, uv_strerror(rc));
}

static void *worker_main(void *arg)
{
    struct lb_worker *w = arg;

    /* on this thread: an io_uring ring serves one thread (IORING_SETUP_SINGLE_ISSUER) */
    loop_ring(w->loop, w->px.worker);
    uv_run(w->loop, UV_RUN_DEFAULT);
    pollsock_loop_close(w->loop);
    return NULL;
}

/* A bound, listening socket on addr; -errno with e set. */
static int read_errorfile(struct lb_workers *all, const char *path, struct err *e)
{
    FILE *f = fopen(path, "rb");
    struct buf b = BUF_INIT;
    char tmp[4096];
    size_t n;

    if (!f)
        return err_set(e, "errorfile-503 %s: %s", path, strerror(errno)), -errno;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0 && b.len < (1u << 20))
        buf_append(&b, tmp, n);
    fclose(f);
    all->page503_len = b.len;
    all->page503 = buf_steal(&b);
    return 0;
}

/*
 * Sets up worker i's loop (caller's, borrowed, when not NULL), proxy, listener (on fd, taken
 * over) and drain signal.
 */
static int worker_init(struct lb_workers *all, int i, int fd, uv_loop_t *caller,
                       struct lb_backend *backend, struct lb_counters *frontend, struct err *e)
{
    struct lb_worker *w = xcalloc_aligned(1, sizeof(*w), _Alignof(struct lb_worker));
    int rc;

    all->w[i] = w;
    w->all = all;
    w->listen_fd = -1;
    pthread_mutex_init(&w->lock, NULL);
    if (caller) {
        w->on_caller = true;
        w->loop = caller;
    } else {
        uv_loop_init(&w->own_loop);
        w->loop_ready = true;
        w->loop = &w->own_loop;
    }
    lb_proxy_init(&w->px, w->loop, all->cfg, backend, frontend, all->page503, all->page503_len);
    w->px.data = w;
    w->px.on_idle = worker_finish;
    w->px.on_client_close = worker_client_closed;
    w->px.worker = (unsigned)i; /* below lb_nshards(): lb_workers_start checked */
    uv_async_init(w->loop, &w->async, worker_drain);
    w->async.data = w;
    uv_async_init(w->loop, &w->inbox_wake, inbox_ready);
    w->inbox_wake.data = w;
    uv_timer_init(w->loop, &w->force);
    w->force.data = w;
    uv_timer_init(w->loop, &w->accept_resume);
    w->accept_resume.data = w;
    rc = uv_poll_init(w->loop, &w->listener, fd);
    if (rc < 0) {
        close(fd); /* not taken over by the handle */
    } else {
        w->listen_fd = fd;
        w->listener.data = w;
        rc = uv_poll_start(&w->listener, UV_READABLE, worker_accept);
    }
    if (rc < 0)
        err_set(e, "listen %s:%d: %s", all->cfg->bind_addr, all->cfg->port, uv_strerror(rc));
    return rc;
}

/* Frees a worker whose loop has ended. */
static void worker_free(struct lb_worker *w)
{
    if (w->loop_ready)
        uv_loop_close(&w->own_loop);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

/* Tears down a worker whose thread never ran (setup failure). */
static void worker_destroy_unstarted(struct lb_worker *w)
{
    if (w->loop_ready) {
        worker_finish(&w->px);
        uv_run(w->loop, UV_RUN_DEFAULT);
    } else if (w->on_caller) {
        /* the caller's loop runs other handles: one turn runs the close callbacks of these */
        worker_finish(&w->px);
        uv_run(w->loop, UV_RUN_NOWAIT);
    }
    worker_free(w);
}

static void workers_free(struct lb_workers *all)
{
    free(all->page503);
    free(all);
}

int lb_workers_start(struct lb_workers **out, const struct lb_config *cfg, uv_loop_t *loop,
                     struct lb_backend *backend, struct lb_counters *frontend, struct err *e)
{
    int n = cfg->workers >= 1 ? cfg->workers : 1;
    struct lb_workers *all = xcalloc(1, sizeof(*all) + (size_t)n * sizeof(all->w[0]));
    const char *host = cfg->bind_addr ? cfg->bind_addr : "0.0.0.0";
    struct sockaddr_storage sa;
    int rc = 0, i = 0;

    all->cfg = cfg;
    all->n = n;
    /* each worker counts into its own shard: lb_shards_init(cfg->workers) came first */
    if (MESH_BUG_ON((unsigned)n > lb_nshards())) {
        err_set(e, "%d workers but counters for %u", n, lb_nshards());
        rc = -EINVAL;
        goto err_after_alloc;
    }
    if (cfg->errorfile_503 && cfg->errorfile_503[0]) {
        rc = read_errorfile(all, cfg->errorfile_503, e);
        if (rc < 0)
            goto err_after_alloc;
    }
    /* one worker runs on the caller's loop: a thread beside an idle one would only cost */
    bool on_caller = n == 1 && loop;
    if (on_caller)
        loop_ring(loop, 0); /* before its sockets open */
    rc = net_parse_addr(host, cfg->port, &sa);
    if (rc < 0) {
        err_set(e, "listen %s:%d: bad address", host, cfg->port);
        goto err_after_alloc;
    }
    for (i = 0; i < n; i++) {
        int fd = net_listen_shared(&sa, e);
        if (fd < 0) {
            rc = fd;
            goto err_after_workers;
        }
        if (i == 0 && cfg->port == 0) {
            /* port 0: every worker must share the port the kernel gave the first one */
            socklen_t len = sizeof(sa);
            getsockname(fd, (struct sockaddr *)&sa, &len);
        }
        rc = worker_init(all, i, fd, on_caller ? loop : NULL, backend, frontend, e);
        if (rc < 0) {
            i++;
            goto err_after_workers;
        }
    }
    for (i = 0; i < n && !on_caller; i++) {
        rc = -pthread_create(&all->w[i]->thread, NULL, worker_main, all->w[i]);
        if (rc < 0) {
            err_set(e, "worker thread: %s", strerror(-rc));
            break;
        }
        all->w[i]->thread_started = true;
    }
    if (rc < 0) {
        lb_workers_drain(all);
        lb_workers_join(all);
        return rc;
    }
    *out = all;
    return 0;

err_after_workers:
    while (i-- > 0)
        worker_destroy_unstarted(all->w[i]);
err_after_alloc:
    workers_free(all);
    return rc;
}

void lb_workers_drain(struct lb_workers *w)
{
    for (int i = 0; i < w->n; i++)
        if (w->w[i] && (w->w[i]->thread_started || w->w[i]->on_caller))
            uv_async_send(&w->w[i]->async);
}

void lb_workers_join(struct lb_workers *w)
{
    /* every thread ends before any worker is freed: an acceptor reads the others' loads */
    for (int i = 0; i < w->n; i++)
        if (w->w[i] && w->w[i]->thread_started)
            pthread_join(w->w[i]->thread, NULL);
    for (int i = 0; i < w->n; i++) {
        struct lb_worker *wk = w->w[i];
        if (wk && (wk->thread_started || wk->on_caller))
            worker_free(wk); /* on the caller's loop: its uv_run has returned */
        else if (wk)
            worker_destroy_unstarted(wk);
    }
    workers_free(w);
}
