/* The Node.js helper that runs a processor's JavaScript: see processor.h. */
#include "load/processor.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/bug.h"
#include "lib/buf.h"
#include "lib/json.h"
#include "lib/log.h"

extern const char load_processor_js[];

#define START_TIMEOUT_MS 30000 /* loading a module that requires half of npm takes a while */
#define EXIT_GRACE_MS    3000
#define MAX_LINE         (64u << 20) /* a reply carries at most a request and its vars */

struct proc_slot {
    void (*cb)(void *data, const json_t *reply); /* NULL when free or cancelled */
    void *data;
    bool busy; /* a reply is due */
};

struct proc_write {
    uv_write_t req;
    struct buf data;
};

struct load_proc {
    uv_loop_t *loop;
    uv_process_t child;
    uv_pipe_t chan;
    uv_prepare_t flusher; /* sends what this loop iteration queued, in one write */
    uv_timer_t timer;     /* start and exit deadlines */
    struct load_proc_opts o;
    struct buf out, in;
    struct proc_slot *slots; /* call id - 1 */
    size_t n_slots;
    size_t *free_ids; /* free slot indexes, a stack */
    size_t n_free;
    size_t waiting; /* calls whose cb is still wanted: they keep the loop alive */
    json_t *functions;
    bool child_init, spawned, ready, dead, exited, chan_closed;
    int handles; /* open handles, for load_proc_free */
    char fatal[512];
};

static void on_flush(uv_prepare_t *h);

static void update_ref(struct load_proc *p)
{
    if (p->chan_closed)
        return;
    if (p->waiting > 0)
        uv_ref((uv_handle_t *)&p->chan);
    else
        uv_unref((uv_handle_t *)&p->chan);
}

static void slot_free(struct load_proc *p, size_t i)
{
    if (p->slots[i].cb)
        p->waiting--;
    p->slots[i] = (struct proc_slot){0};
    p->free_ids[p->n_free++] = i;
}

/* The helper is gone: every call still wanted gets an error reply, from the flusher. */
static void mark_dead(struct load_proc *p, const char *why)
{
    if (p->dead)
        return;
    p->dead = true;
    if (p->ready)
        fprintf(stderr, "mesh load: processor %s: %s\n", p->o.path, why);
    else if (!p->fatal[0])
        snprintf(p->fatal, sizeof(p->fatal), "%s", why);
    uv_prepare_start(&p->flusher, on_flush);
}

static void answer_dead(struct load_proc *p)
{
    json_t *err = json_pack("{s:s}", "error", "processor exited");

    for (size_t i = 0; i < p->n_slots; i++) {
        struct proc_slot s = p->slots[i];

        if (!s.busy)
            continue;
        slot_free(p, i);
        if (s.cb)
            s.cb(s.data, err);
    }
    json_decref(err);
    update_ref(p);
}

static void on_write(uv_write_t *req, int status)
{
    struct proc_write *w = CONTAINER_OF(req, struct proc_write, req);
    struct load_proc *p = req->data;

    buf_free(&w->data);
    free(w);
    if (status < 0 && status != UV_ECANCELED)
        mark_dead(p, uv_strerror(status));
}

static void on_flush(uv_prepare_t *h)
{
    struct load_proc *p = h->data;
    struct proc_write *w;
    uv_buf_t b;

    if (p->dead) {
        buf_reset(&p->out);
        answer_dead(p);
    }
    if (p->out.len == 0 || p->chan_closed) {
        uv_prepare_stop(h);
        return;
    }
    w = xcalloc(1, sizeof(*w));
    w->data = p->out;
    p->out = (struct buf)BUF_INIT;
    w->req.data = p;
    b = uv_buf_init(w->data.data, (unsigned)w->data.len);
    if (uv_write(&w->req, (uv_stream_t *)&p->chan, &b, 1, on_write) < 0) {
        buf_free(&w->data);
        free(w);
        mark_dead(p, "cannot write to the helper");
        return;
    }
    uv_prepare_stop(h);
}

static void queue(struct load_proc *p, const json_t *msg)
{
    json_append(&p->out, msg, false);
    buf_append_cstr(&p->out, "\n");
    uv_prepare_start(&p->flusher, on_flush);
}

static void on_reply(struct load_proc *p, const json_t *msg)
{
    const char *op = json_string_value(json_object_get(msg, "op"));
    json_int_t id = json_integer_value(json_object_get(msg, "id"));

    if (op && strcmp(op, "ready") == 0) {
        p->ready = true;
        json_decref(p->functions);
        p->functions = json_incref(json_object_get(msg, "functions"));
    } else if (op && strcmp(op, "fatal") == 0) {
        snprintf(p->fatal, sizeof(p->fatal), "%s",
                 json_is_string(json_object_get(msg, "message"))
                     ? json_string_value(json_object_get(msg, "message"))
                     : "cannot load");
    } else if (op && strcmp(op, "metrics") == 0) {
        if (p->o.on_metrics)
            p->o.on_metrics(p->o.data, json_object_get(msg, "m"));
    } else if (id >= 1 && (size_t)id <= p->n_slots && p->slots[id - 1].busy) {
        struct proc_slot s = p->slots[id - 1];

        slot_free(p, (size_t)id - 1);
        update_ref(p);
        if (s.cb)
            s.cb(s.data, msg);
    }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    struct load_proc *p = h->data;

    (void)hint;
    buf_reserve(&p->in, 65536);
    b->base = p->in.data + p->in.len;
    b->len = p->in.cap - p->in.len - 1;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct load_proc *p = s->data;
    size_t used = 0;
    char *nl;

    (void)b;
    if (nread < 0) {
        mark_dead(p, nread == UV_EOF ? "the helper closed its channel" : uv_strerror((int)nread));
        uv_read_stop(s);
        return;
    }
    p->in.len += (size_t)nread;
    while ((nl = memchr(p->in.data + used, '\n', p->in.len - used)) != NULL) {
        size_t len = (size_t)(nl - (p->in.data + used));
        json_t *msg = json_loadb(p->in.data + used, len, 0, NULL);

        used += len + 1;
        if (!msg) {
            mark_dead(p, "the helper sent a line that is not JSON");
            break;
        }
        on_reply(p, msg);
        json_decref(msg);
    }
    buf_consume(&p->in, used);
    if (p->in.len > MAX_LINE)
        mark_dead(p, "the helper sent an overlong line");
}

static void child_exit(uv_process_t *h, int64_t status, int sig)
{
    struct load_proc *p = h->data;
    char why[64];

    p->exited = true;
    if (p->chan_closed)
        return; /* load_proc_free closed the channel: the helper's exit is the one asked for */
    snprintf(why, sizeof(why),
             sig ? "the helper was killed by signal %d" : "the helper exited (%d)",
             sig ? sig : (int)status);
    mark_dead(p, why);
}

static void on_timer(uv_timer_t *t)
{
    (void)t; /* only wakes the loop: the waits below check their own conditions */
}

static void on_close(uv_handle_t *h)
{
    struct load_proc *p = h->data;

    p->handles--;
}

static int spawn(struct load_proc *p, struct err *e)
{
    const char *node = getenv("MESH_LOAD_NODE") ? getenv("MESH_LOAD_NODE") : "node";
    char *args[] = {(char *)node, "-e", (char *)load_processor_js, (char *)p->o.path, NULL};
    uv_stdio_container_t stdio[4] = {
        {.flags = UV_IGNORE},
        {.flags = UV_INHERIT_FD, .data.fd = 1},
        {.flags = UV_INHERIT_FD, .data.fd = 2},
        {.flags = UV_CREATE_PIPE | UV_READABLE_PIPE | UV_WRITABLE_PIPE,
         .data.stream = (uv_stream_t *)&p->chan},
    };
    /* its own session: a Ctrl-C meant for mesh load must not kill the helper mid-run (it
     * exits when the channel closes, however mesh load ends) */
    uv_process_options_t o = {.file = node,
                              .args = args,
                              .exit_cb = child_exit,
                              .stdio_count = 4,
                              .stdio = stdio,
                              .flags = UV_PROCESS_DETACHED};
    int rc = uv_spawn(p->loop, &p->child, &o);

    /* a failed spawn leaves the handle initialised: it is closed all the same */
    p->child_init = true;
    p->handles++;
    if (rc == UV_ENOENT)
        return err_set(e,
                       "config.processor needs Node.js to run its JavaScript, and `%s` was not "
                       "found (install nodejs, or set MESH_LOAD_NODE to a node binary)",
                       node);
    if (rc < 0)
        return err_set(e, "config.processor: cannot start %s: %s", node, uv_strerror(rc));
    p->spawned = true;
    uv_unref((uv_handle_t *)&p->child);
    return 0;
}

int load_proc_start(uv_loop_t *loop, const struct load_proc_opts *o, struct load_proc **out,
                    struct err *e)
{
    struct load_proc *p = xcalloc(1, sizeof(*p));
    uint64_t deadline = uv_now(loop) + START_TIMEOUT_MS;
    int rc;

    p->loop = loop;
    p->o = *o;
    uv_pipe_init(loop, &p->chan, 0);
    uv_prepare_init(loop, &p->flusher);
    uv_timer_init(loop, &p->timer);
    p->chan.data = p->child.data = p->flusher.data = p->timer.data = p;
    p->handles = 3;
    if ((rc = spawn(p, e)) < 0)
        goto fail;
    uv_read_start((uv_stream_t *)&p->chan, on_alloc, on_read);
    uv_timer_start(&p->timer, on_timer, START_TIMEOUT_MS, 0);
    while (!p->ready && !p->dead && !p->fatal[0] && uv_now(loop) < deadline)
        uv_run(loop, UV_RUN_ONCE);
    uv_timer_stop(&p->timer);
    if (!p->ready) {
        rc = -EINVAL;
        err_set(e, "config.processor %s: %s", o->path,
                p->fatal[0] ? p->fatal : "Node.js did not load it in time");
        goto fail;
    }
    update_ref(p);
    *out = p;
    return 0;
fail:
    load_proc_free(p);
    return rc;
}

bool load_proc_has(const struct load_proc *p, const char *name)
{
    size_t i;
    json_t *v;

    json_array_foreach(p->functions, i, v) if (json_is_string(v) &&
                                               strcmp(json_string_value(v), name) == 0) return true;
    return false;
}

uint64_t load_proc_call(struct load_proc *p, json_t *msg,
                        void (*cb)(void *data, const json_t *reply), void *data)
{
    size_t i;

    if (p->n_free == 0) {
        size_t n = p->n_slots ? p->n_slots * 2 : 64;

        p->slots = xrealloc(p->slots, n * sizeof(*p->slots));
        p->free_ids = xrealloc(p->free_ids, n * sizeof(*p->free_ids));
        for (size_t k = n; k > p->n_slots; k--)
            p->free_ids[p->n_free++] = k - 1;
        memset(p->slots + p->n_slots, 0, (n - p->n_slots) * sizeof(*p->slots));
        p->n_slots = n;
    }
    i = p->free_ids[--p->n_free];
    MESH_BUG_ON(p->slots[i].busy);
    p->slots[i] = (struct proc_slot){cb, data, true};
    p->waiting++;
    json_object_set_new(msg, "id", json_integer((json_int_t)i + 1));
    if (!p->dead)
        queue(p, msg);
    else
        uv_prepare_start(&p->flusher, on_flush); /* answers it with an error */
    json_decref(msg);
    update_ref(p);
    return i + 1;
}

void load_proc_cancel(struct load_proc *p, uint64_t id)
{
    if (id == 0 || id > p->n_slots || !p->slots[id - 1].busy || !p->slots[id - 1].cb)
        return;
    p->slots[id - 1].cb = NULL;
    p->waiting--;
    update_ref(p);
}

void load_proc_end_vu(struct load_proc *p, uint64_t vu)
{
    json_t *msg;

    if (p->dead)
        return;
    msg = json_pack("{s:s,s:I}", "op", "end", "vu", (json_int_t)vu);
    queue(p, msg);
    json_decref(msg);
}

void load_proc_free(struct load_proc *p)
{
    uint64_t deadline;

    if (!p)
        return;
    /* what is still queued goes first (the last "end" messages), then the channel closes and
     * the helper, reading its end, exits */
    if (!p->dead && p->out.len)
        on_flush(&p->flusher);
    uv_prepare_stop(&p->flusher);
    p->chan_closed = true;
    uv_close((uv_handle_t *)&p->chan, on_close);
    deadline = uv_now(p->loop) + EXIT_GRACE_MS;
    if (p->spawned) {
        uv_ref((uv_handle_t *)&p->child);
        uv_timer_start(&p->timer, on_timer, EXIT_GRACE_MS, 0);
        while (!p->exited && uv_now(p->loop) < deadline)
            uv_run(p->loop, UV_RUN_ONCE);
        if (!p->exited) {
            uv_process_kill(&p->child, SIGKILL);
            while (!p->exited)
                uv_run(p->loop, UV_RUN_ONCE);
        }
    }
    if (p->child_init)
        uv_close((uv_handle_t *)&p->child, on_close);
    uv_close((uv_handle_t *)&p->flusher, on_close);
    uv_close((uv_handle_t *)&p->timer, on_close);
    while (p->handles > 0)
        uv_run(p->loop, UV_RUN_ONCE);
    buf_free(&p->out);
    buf_free(&p->in);
    free(p->slots);
    free(p->free_ids);
    json_decref(p->functions);
    free(p);
}
