/* A dependency's watch: the registry's blocking-query loop, or a file's stat poll (watch.h). */
#include "template/watch.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/alloc.h"
#include "lib/buf.h"
#include "lib/file.h"
#include "lib/log.h"

struct tmpl_watch {
    struct http_client *client;
    const struct consul_endpoint *ep;
    char *target; /* the registry's dependencies: what the query asks */
    struct tmpl_dep dep;
    tmpl_watch_cb cb;
    void *data;
    struct consul_watch *query; /* the registry's dependencies; NULL for a file */
    json_t *last;               /* the last value reported */
    uv_timer_t poll;            /* a file's next stat, the datacenter list's next query */
    bool closing, poll_closed;
    /* a file: stat and read on the pool (fields below written only there while reading) */
    uv_work_t work;
    bool reading;
    bool seen; /* size and mtime hold the last stat */
    off_t size;
    struct timespec mtime;
    bool changed;
    struct buf content;
    struct err read_err;
    int read_rc;
};

static void on_poll(uv_timer_t *t);

/* ---- the registry ------------------------------------------------------------------------ */

static void on_outage(void *data, const char *why)
{
    struct tmpl_watch *w = data;

    if (why)
        log_warn("registry %s: %s: %s; keeping the last data and retrying", w->ep->addr, w->dep.id,
                 why);
    else
        log_info("registry %s: %s: reachable again", w->ep->addr, w->dep.id);
}

/* Reports value (taken) when it differs from the last one. */
static void report(struct tmpl_watch *w, json_t *value)
{
    if (!w->last || !json_equal(w->last, value)) {
        json_decref(w->last);
        w->last = json_incref(value);
        w->cb(w->data, &w->dep, value, NULL);
    }
    json_decref(value);
}

static int on_answer(void *data, const struct http_client_response *res, struct err *e)
{
    struct tmpl_watch *w = data;
    json_t *value = tmpl_dep_decode(&w->dep, res->status, res->body, res->body_len, e);

    if (!value)
        return -EINVAL;
    report(w, value);
    if (w->dep.kind == TMPL_DEP_DATACENTERS && !w->closing)
        uv_timer_start(&w->poll, on_poll, TMPL_WATCH_POLL_MS, 0);
    return 0;
}

static const struct consul_watch_ops watch_ops = {.answer = on_answer, .outage = on_outage};

/* agent/self and the datacenter list do not block: each query is a single request */
static bool nonblocking(const struct tmpl_watch *w)
{
    return w->dep.kind == TMPL_DEP_SELF || w->dep.kind == TMPL_DEP_DATACENTERS;
}

/* A new query; the datacenter list's is asked again TMPL_WATCH_POLL_MS after its answer. */
static void query_start(struct tmpl_watch *w, uv_loop_t *loop)
{
    consul_watch_free(w->query);
    w->query = consul_watch_start(w->client, loop, w->ep, w->target, nonblocking(w), &watch_ops, w);
}

/* ---- a file ------------------------------------------------------------------------------ */

/* consul-template's error for a file: "file(PATH): OP PATH: why", why as Go writes errno. */
static void file_error(struct err *e, const char *op, const char *path, int rc)
{
    char why[128];

    tmpl_errno_text(rc, why);
    err_setf(e, "file(%s): %s %s: %s", path, op, path, why);
}

/* On the pool: stat the file; read it when its size or modification time changed. */
static void file_work(uv_work_t *req)
{
    struct tmpl_watch *w = req->data;
    const char *path = w->dep.name;
    struct stat st;
    int fd;

    w->changed = false;
    w->read_rc = 0;
    if (stat(path, &st) < 0) {
        w->read_rc = -errno;
        file_error(&w->read_err, "stat", path, w->read_rc);
        return;
    }
    if (w->seen && st.st_size == w->size && st.st_mtim.tv_sec == w->mtime.tv_sec &&
        st.st_mtim.tv_nsec == w->mtime.tv_nsec)
        return;
    if (st.st_size > (off_t)TMPL_WATCH_FILE_MAX) {
        w->read_rc =
            err_set(&w->read_err, "file(%s): larger than %u bytes", path, TMPL_WATCH_FILE_MAX);
        return;
    }
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        w->read_rc = -errno;
        file_error(&w->read_err, "open", path, w->read_rc);
        return;
    }
    buf_reset(&w->content);
    w->read_rc = file_read_all(fd, &w->content);
    close(fd);
    if (w->read_rc < 0) {
        file_error(&w->read_err, "read", path, w->read_rc);
        return;
    }
    /* the stat before the read: a write between them shows at the next poll */
    w->seen = w->changed = true;
    w->size = st.st_size;
    w->mtime = st.st_mtim;
}

static void maybe_free(struct tmpl_watch *w)
{
    if (!w->poll_closed || w->reading)
        return;
    tmpl_dep_clear(&w->dep);
    free(w->target);
    json_decref(w->last);
    buf_free(&w->content);
    free(w);
}

static void file_done(uv_work_t *req, int status)
{
    struct tmpl_watch *w = req->data;

    w->reading = false;
    if (w->closing) {
        maybe_free(w);
        return;
    }
    if (w->read_rc < 0) {
        w->cb(w->data, &w->dep, NULL, w->read_err.msg); /* may free w */
        return;
    }
    if (w->changed) {
        log_debug("%s changed", w->dep.id);
        report(w, json_stringn_nocheck(w->content.data ? w->content.data : "", w->content.len));
        if (w->closing) /* the callback freed the watch */
            return;
    }
    uv_timer_start(&w->poll, on_poll, TMPL_WATCH_FILE_POLL_MS, 0);
}

static void on_poll(uv_timer_t *t)
{
    struct tmpl_watch *w = t->data;

    if (w->dep.kind != TMPL_DEP_FILE) {
        query_start(w, t->loop);
        return;
    }
    w->reading = true;
    uv_queue_work(t->loop, &w->work, file_work, file_done);
}

/* ---- both -------------------------------------------------------------------------------- */

struct tmpl_watch *tmpl_watch_start(uv_loop_t *loop, struct http_client *client,
                                    const struct consul_endpoint *ep, const struct tmpl_dep *dep,
                                    tmpl_watch_cb cb, void *data)
{
    struct tmpl_watch *w = xcalloc(1, sizeof(*w));
    struct buf target = BUF_INIT;

    w->client = client;
    w->ep = ep;
    tmpl_dep_copy(&w->dep, dep);
    w->cb = cb;
    w->data = data;
    w->work.data = w;
    uv_timer_init(loop, &w->poll);
    w->poll.data = w;
    log_debug("watching %s", w->dep.id);
    if (w->dep.kind == TMPL_DEP_FILE) {
        on_poll(&w->poll);
        return w;
    }
    tmpl_dep_target(&w->dep, &target);
    w->target = buf_steal(&target);
    query_start(w, loop);
    return w;
}

static void on_poll_closed(uv_handle_t *h)
{
    struct tmpl_watch *w = h->data;

    w->poll_closed = true;
    maybe_free(w);
}

void tmpl_watch_free(struct tmpl_watch *w)
{
    if (!w)
        return;
    w->closing = true;
    consul_watch_free(w->query);
    w->query = NULL;
    uv_close((uv_handle_t *)&w->poll, on_poll_closed);
}
