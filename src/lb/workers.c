/*
 * Worker threads: each owns a libuv loop, a listening socket on the frontend address
 * (SO_REUSEPORT: the kernel spreads connections between them) and a proxy (proxy.c). The
 * sockets are bound in the calling thread so that a bind error is reported by
 * lb_workers_start; loops are set up there too, and each thread only runs its loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/alloc.h"
#include "lib/buf.h"
#include "lib/bug.h"
#include "lib/net.h"
#include "lb/proxy.h"
#include "lb/workers.h"

struct lb_worker {
    struct lb_workers *all;
    pthread_t thread;
    bool thread_started;
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_async_t async;
    uv_timer_t force; /* drain deadline: force-close what is still busy */
    bool loop_ready, draining, finished;
    struct lb_proxy px;
};

struct lb_workers {
    const struct lb_config *cfg;
    int n;
    char *page503; /* errorfile_503 contents, or NULL for the built-in page */
    size_t page503_len;
    struct lb_worker *w[];
};

/* Everything is closed: the loop ends once the close callbacks have run. */
static void worker_finish(struct lb_proxy *px)
{
    struct lb_worker *w = px->data;

    if (w->finished)
        return;
    w->finished = true;
    lb_proxy_close(&w->px);
    uv_close((uv_handle_t *)&w->async, NULL);
    uv_close((uv_handle_t *)&w->force, NULL);
    if (!uv_is_closing((uv_handle_t *)&w->listener))
        uv_close((uv_handle_t *)&w->listener, NULL);
}

static void worker_force(uv_timer_t *t)
{
    struct lb_worker *w = t->data;

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
    uv_close((uv_handle_t *)&w->listener, NULL);
    uv_timer_start(&w->force, worker_force, ms ? ms : 1, 0);
    lb_proxy_drain(&w->px); /* calls worker_finish when no client is left */
}

static void worker_accept(uv_stream_t *listener, int status)
{
    struct lb_worker *w = listener->data;

    if (status < 0 || w->draining)
        return;
    lb_proxy_accept(&w->px, listener);
}

static void *worker_main(void *arg)
{
    struct lb_worker *w = arg;

    uv_run(&w->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* A bound, listening socket on addr; -errno with e set. */
static int bind_socket(const struct sockaddr_storage *sa, const char *host, int port, int *out,
                       struct err *e)
{
    int one = 1;
    int fd = socket(sa->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int rc = 0;

    if (fd < 0)
        return err_set(e, "socket: %s", uv_strerror(-errno)), -errno;
    socklen_t len =
        sa->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
        bind(fd, (const struct sockaddr *)sa, len) < 0 || listen(fd, net_listen_backlog()) < 0) {
        rc = -errno;
        err_set(e, "listen %s:%d: %s", host, port, uv_strerror(rc));
        close(fd);
        return rc;
    }
    *out = fd;
    return 0;
}

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

/* Sets up worker i's loop, proxy, listener (on fd, taken over) and drain signal. */
static int worker_init(struct lb_workers *all, int i, int fd, struct lb_backend *backend,
                       struct lb_counters *frontend, struct err *e)
{
    struct lb_worker *w = xcalloc(1, sizeof(*w));
    int rc;

    all->w[i] = w;
    w->all = all;
    uv_loop_init(&w->loop);
    w->loop_ready = true;
    lb_proxy_init(&w->px, &w->loop, all->cfg, backend, frontend, all->page503, all->page503_len);
    w->px.data = w;
    w->px.on_idle = worker_finish;
    w->px.worker = (unsigned)i; /* below lb_nshards(): lb_workers_start checked */
    uv_async_init(&w->loop, &w->async, worker_drain);
    w->async.data = w;
    uv_timer_init(&w->loop, &w->force);
    w->force.data = w;
    uv_tcp_init(&w->loop, &w->listener);
    w->listener.data = w;
    rc = uv_tcp_open(&w->listener, fd);
    if (rc < 0)
        close(fd); /* not taken over by the handle */
    else
        rc = uv_listen((uv_stream_t *)&w->listener, net_listen_backlog(), worker_accept);
    if (rc < 0) {
        err_set(e, "listen %s:%d: %s", all->cfg->bind_addr, all->cfg->port, uv_strerror(rc));
    }
    return rc;
}

/* Tears down a worker whose thread never ran (setup failure). */
static void worker_destroy_unstarted(struct lb_worker *w)
{
    if (w->loop_ready) {
        worker_finish(&w->px);
        uv_run(&w->loop, UV_RUN_DEFAULT);
        uv_loop_close(&w->loop);
    }
    free(w);
}

static void workers_free(struct lb_workers *all)
{
    free(all->page503);
    free(all);
}

int lb_workers_start(struct lb_workers **out, const struct lb_config *cfg,
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
    rc = net_parse_addr(host, cfg->port, &sa);
    if (rc < 0) {
        err_set(e, "listen %s:%d: bad address", host, cfg->port);
        goto err_after_alloc;
    }
    for (i = 0; i < n; i++) {
        int fd = -1;
        rc = bind_socket(&sa, host, cfg->port, &fd, e);
        if (rc < 0)
            goto err_after_workers;
        if (i == 0 && cfg->port == 0) {
            /* port 0: every worker must share the port the kernel gave the first one */
            socklen_t len = sizeof(sa);
            getsockname(fd, (struct sockaddr *)&sa, &len);
        }
        rc = worker_init(all, i, fd, backend, frontend, e);
        if (rc < 0) {
            i++;
            goto err_after_workers;
        }
    }
    for (i = 0; i < n; i++) {
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
        if (w->w[i] && w->w[i]->thread_started)
            uv_async_send(&w->w[i]->async);
}

void lb_workers_join(struct lb_workers *w)
{
    for (int i = 0; i < w->n; i++) {
        struct lb_worker *wk = w->w[i];
        if (!wk)
            continue;
        if (wk->thread_started) {
            pthread_join(wk->thread, NULL);
            uv_loop_close(&wk->loop);
            free(wk);
        } else {
            worker_destroy_unstarted(wk);
        }
    }
    workers_free(w);
}
