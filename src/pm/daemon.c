/*
 * The supervisor daemon: one libuv loop, a unix control socket (one JSON request, one JSON
 * reply per connection), signals and the sampling timer. Requests that stop processes answer
 * once the processes have exited (pending connections, re-checked on every change).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lib/alloc.h"
#include "lib/file.h"
#include "lib/unix_path.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/procfs.h"
#include "lib/rlimit.h"
#include "lib/sd_notify.h"
#include "pm/daemon.h"

#define PM_SAMPLE_MS    1000
#define PM_LOCK_WAIT_MS 3000

int64_t pm_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct pm_app *pm_app_find(struct pm_daemon *d, const char *name)
{
    for (size_t k = 0; k < d->napps; k++) {
        if (strcmp(d->apps[k]->spec.name, name) == 0)
            return d->apps[k];
    }
    return NULL;
}

static void cron_arm(struct pm_app *a, time_t after);

/* PM2's cron_restart: every instance is restarted as `restart` does it, a stopped or errored one
 * started (PM2 warns that a stop leaves the schedule running). */
static void on_cron(uv_timer_t *t)
{
    struct pm_app *a = CONTAINER_OF(t, struct pm_app, cron_timer);
    int64_t early = (int64_t)a->cron_at * 1000 - pm_now_ms();

    /* The wall clock went back since the timer was set: wait for it. */
    if (early > 0) {
        uv_timer_start(t, on_cron, (uint64_t)early, 0);
        return;
    }
    log_info("%s: cron_restart \"%s\": restarting", a->spec.name, a->spec.cron_restart);
    pm_app_restart_all(a);
    cron_arm(a, a->cron_at);
}

void pm_app_restart_all(struct pm_app *a)
{
    /* A restart removes no instance: the indexes stay valid. */
    for (size_t k = 0; !a->deleting && k < a->ninsts; k++) {
        if (!pm_inst_busy(a->insts[k])) /* already being stopped, started or reloaded */
            pm_inst_stop(a->insts[k], PM_AFTER_RESTART);
    }
}

/* Sets the timer for the first time of the schedule after `after` and after now (the wall clock
 * may have jumped ahead: the missed times are not made up for). */
static void cron_arm(struct pm_app *a, time_t after)
{
    time_t now = (time_t)(pm_now_ms() / 1000);
    time_t next;
    int64_t wait;

    if (cron_next(&a->cron, after > now ? after : now, &next) != 0) {
        log_error("%s: cron_restart \"%s\": no next time", a->spec.name, a->spec.cron_restart);
        return;
    }
    a->cron_at = next;
    wait = (int64_t)next * 1000 - pm_now_ms();
    uv_timer_start(&a->cron_timer, on_cron, (uint64_t)(wait > 0 ? wait : 0), 0);
}

struct pm_app *pm_app_add(struct pm_daemon *d, struct pm_spec *spec)
{
    struct pm_app *a = xcalloc(1, sizeof(*a));
    struct err e = {{0}};

    a->d = d;
    a->spec = *spec;
    memset(spec, 0, sizeof(*spec));
    d->apps = xrealloc(d->apps, (d->napps + 1) * sizeof(*d->apps));
    d->apps[d->napps++] = a;
    uv_timer_init(d->loop, &a->cron_timer);
    /* The spec was checked by whoever made it (pm_spec_check parses the expression). */
    if (a->spec.cron_restart && cron_parse(a->spec.cron_restart, &a->cron, &e) == 0)
        cron_arm(a, (time_t)(pm_now_ms() / 1000));
    else if (a->spec.cron_restart)
        log_error("%s: cron_restart: %s", a->spec.name, e.msg);
    pm_watch_start(a);
    return a;
}

static void on_app_closed(uv_handle_t *h)
{
    struct pm_app *a = CONTAINER_OF((uv_timer_t *)h, struct pm_app, cron_timer);

    pm_spec_free(&a->spec);
    free(a->insts);
    free(a);
}

void pm_app_remove(struct pm_daemon *d, struct pm_app *a)
{
    size_t k;

    for (k = 0; k < d->napps && d->apps[k] != a; k++)
        ;
    if (k < d->napps) {
        memmove(d->apps + k, d->apps + k + 1, (d->napps - k - 1) * sizeof(*d->apps));
        d->napps--;
    }
    pm_watch_stop(a);
    uv_close((uv_handle_t *)&a->cron_timer, on_app_closed);
}

static struct pm_inst *inst_by_id(struct pm_daemon *d, int pm_id)
{
    for (size_t k = 0; k < d->napps; k++) {
        for (size_t j = 0; j < d->apps[k]->ninsts; j++) {
            if (d->apps[k]->insts[j]->pm_id == pm_id)
                return d->apps[k]->insts[j];
        }
    }
    return NULL;
}

/* ---- connections ------------------------------------------------------------------------ */

static void shutdown_daemon(struct pm_daemon *d);

static void on_conn_closed(uv_handle_t *h)
{
    struct pm_conn *c = CONTAINER_OF((uv_pipe_t *)h, struct pm_conn, pipe);

    c->d->nconns--;
    buf_free(&c->in);
    free(c->await);
    json_decref(c->reply);
    free(c);
}

struct pm_write {
    uv_write_t req;
    struct pm_conn *conn;
    char *data;
};

static void on_written(uv_write_t *w, int status)
{
    struct pm_write *pw = CONTAINER_OF(w, struct pm_write, req);
    struct pm_conn *c = pw->conn;
    struct pm_daemon *d = c->d;
    bool exit_after = c->exit_after;

    free(pw->data);
    free(pw);
    uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
    if (exit_after)
        shutdown_daemon(d);
}

/* Sends c->reply and closes the connection. */
static void conn_answer(struct pm_conn *c)
{
    struct pm_write *pw = xcalloc(1, sizeof(*pw));
    struct buf b = BUF_INIT;
    uv_buf_t ub;

    json_append(&b, c->reply, false);
    buf_append_cstr(&b, "\n");
    ub = uv_buf_init(b.data, (unsigned)b.len);
    pw->conn = c;
    pw->data = buf_steal(&b);
    if (uv_write(&pw->req, (uv_stream_t *)&c->pipe, &ub, 1, on_written) != 0)
        on_written(&pw->req, -1);
}

static void conn_error(struct pm_conn *c, const char *msg)
{
    json_decref(c->reply);
    /* msg may end inside a UTF-8 sequence (a name cut at 64 bytes); json_pack would fail. */
    c->reply = json_pack("{s:o}", "error", json_str_or_empty(msg));
    conn_answer(c);
}

static void not_found(struct pm_conn *c, const char *name)
{
    char msg[128];

    snprintf(msg, sizeof(msg), "app \"%.64s\" not found", name ? name : "");
    conn_error(c, msg);
}

static bool conn_settled(struct pm_conn *c)
{
    for (size_t k = 0; k < c->nawait; k++) {
        struct pm_inst *i = inst_by_id(c->d, c->await[k]);
        if (i && pm_inst_busy(i))
            return false;
    }
    return true;
}

void pm_daemon_changed(struct pm_daemon *d)
{
    struct pm_conn **pp = &d->pending;
    struct err e;
    int saved = d->quitting ? 0 : pm_state_save(d, &e);

    while (*pp) {
        struct pm_conn *c = *pp;
        if (conn_settled(c)) {
            *pp = c->next;
            /* A change the next daemon would not know of is not acknowledged. */
            if (saved < 0 && json_is_true(json_object_get(c->reply, "ok"))) {
                char msg[600];
                snprintf(msg, sizeof(msg),
                         "done, but the state could not be saved (%s): a "
                         "restarted daemon would not know of it",
                         e.msg);
                conn_error(c, msg);
                continue;
            }
            conn_answer(c);
        } else {
            pp = &c->next;
        }
    }
}

/* Answers once the instances in await have settled. */
static void conn_wait(struct pm_conn *c)
{
    c->next = c->d->pending;
    c->d->pending = c;
    pm_daemon_changed(c->d);
}

static void await_add(struct pm_conn *c, int pm_id)
{
    c->await = xrealloc(c->await, (c->nawait + 1) * sizeof(*c->await));
    c->await[c->nawait++] = pm_id;
}

/* ---- requests --------------------------------------------------------------------------- */

static json_t *rows_json(struct pm_daemon *d, struct pm_app *only, bool detail)
{
    json_t *rows = json_array();

    for (size_t k = 0; k < d->napps; k++) {
        if (only && d->apps[k] != only)
            continue;
        for (size_t j = 0; j < d->apps[k]->ninsts; j++)
            json_array_append_new(rows, pm_inst_to_json(d->apps[k]->insts[j], detail));
    }
    return rows;
}

static struct pm_inst *app_add_inst(struct pm_app *a, int instance)
{
    struct pm_inst *i = pm_inst_new(a, instance, a->d->next_id++);

    a->insts = xrealloc(a->insts, (a->ninsts + 1) * sizeof(*a->insts));
    a->insts[a->ninsts++] = i;
    return i;
}

/* Stops and forgets an app, as delete does; c waits until its instances are gone. The last
 * stop may free the app: count down without reading it again. */
static void app_delete(struct pm_conn *c, struct pm_app *a)
{
    a->deleting = true;
    for (size_t k = a->ninsts; k > 0; k--) {
        await_add(c, a->insts[k - 1]->pm_id);
        pm_inst_stop(a->insts[k - 1], PM_AFTER_DELETE);
    }
}

/* Creates the app (*out) and starts its instances; stops at the first exec failure. */
static int start_app(struct pm_daemon *d, struct pm_spec *spec, struct pm_app **out, struct err *e)
{
    struct pm_app *a = pm_app_add(d, spec);
    int rc = 0;

    *out = a;
    for (int n = 0; rc == 0 && n < a->spec.instances; n++)
        rc = pm_inst_spawn(app_add_inst(a, n), e);
    return rc;
}

static void req_start(struct pm_conn *c, const json_t *req)
{
    json_t *apps = json_object_get(req, "apps");
    size_t n = json_array_size(apps);
    struct pm_spec *specs = xcalloc(n ? n : 1, sizeof(*specs));
    struct pm_app **started = xcalloc(n ? n : 1, sizeof(*started));
    struct err e = {{0}};
    json_t *v;
    size_t k;
    int rc = n ? 0 : err_set(&e, "no apps to start");

    json_array_foreach(apps, k, v)
    {
        pm_spec_init(&specs[k]);
        if (rc == 0)
            rc = pm_spec_from_json(v, &specs[k], NULL, "app", &e);
        if (rc == 0 && pm_app_find(c->d, specs[k].name))
            rc = err_set(&e, "app \"%s\" already exists (delete it first)", specs[k].name);
        for (size_t j = 0; rc == 0 && j < k; j++) {
            if (strcmp(specs[j].name, specs[k].name) == 0)
                rc = err_set(&e, "app \"%s\" given twice", specs[k].name);
        }
    }
    for (k = 0; rc == 0 && k < n; k++)
        rc = start_app(c->d, &specs[k], &started[k], &e);
    /* All or nothing, as with a taken name: an exec failure takes back the apps started. */
    for (k = 0; rc != 0 && k < n && started[k]; k++)
        app_delete(c, started[k]);
    for (k = 0; k < n; k++)
        pm_spec_free(&specs[k]);
    free(specs);
    free(started);
    if (rc != 0)
        c->reply = json_pack("{s:o}", "error", json_str_or_empty(e.msg));
    else
        c->reply = json_pack("{s:b,s:o}", "ok", 1, "processes", rows_json(c->d, NULL, false));
    conn_wait(c);
}

/* The app named in req, NULL for "all"; false (and c answered) when there is no such app. */
static bool req_app(struct pm_conn *c, const json_t *req, struct pm_app **one)
{
    const char *name = json_string_value(json_object_get(req, "name"));

    *one = name && strcmp(name, "all") != 0 ? pm_app_find(c->d, name) : NULL;
    if (!name || (!*one && strcmp(name, "all") != 0)) {
        not_found(c, name);
        return false;
    }
    return true;
}

/* stop / restart / delete NAME|all. */
static void req_target(struct pm_conn *c, const json_t *req, enum pm_after_stop after, bool delete)
{
    struct pm_daemon *d = c->d;
    struct pm_app *one;
    struct pm_inst **todo = NULL;
    size_t ntodo = 0;

    if (!req_app(c, req, &one))
        return;
    for (size_t k = 0; k < d->napps; k++) {
        struct pm_app *a = d->apps[k];
        if (one && a != one)
            continue;
        a->deleting = a->deleting || delete;
        todo = xrealloc(todo, (ntodo + a->ninsts + 1) * sizeof(*todo));
        for (size_t j = 0; j < a->ninsts; j++) {
            todo[ntodo++] = a->insts[j];
            await_add(c, a->insts[j]->pm_id);
        }
    }
    /* Apps with no instance left go at once; the others when their last one is gone. */
    for (size_t k = d->napps; delete &&k-- > 0;) {
        if ((!one || d->apps[k] == one) && d->apps[k]->ninsts == 0)
            pm_app_remove(d, d->apps[k]);
    }
    for (size_t k = 0; k < ntodo; k++)
        pm_inst_stop(todo[k], after);
    free(todo);
    c->reply = json_pack("{s:b}", "ok", 1);
    conn_wait(c);
}

/* reload NAME|all: queues the instances (reload.c); answers when all are reloaded. */
static void req_reload(struct pm_conn *c, const json_t *req)
{
    struct pm_app *one;

    if (!req_app(c, req, &one))
        return;
    for (size_t k = 0; k < c->d->napps; k++) {
        struct pm_app *a = c->d->apps[k];
        if ((one && a != one) || a->deleting)
            continue;
        for (size_t j = 0; j < a->ninsts; j++) {
            a->insts[j]->reload_pending = true;
            await_add(c, a->insts[j]->pm_id);
        }
    }
    pm_reload_run(c->d);
    c->reply = json_pack("{s:b}", "ok", 1);
    conn_wait(c);
}

/* Instances that are not on their way out (a scale-down may still be stopping some). */
static json_int_t live_insts(const struct pm_app *a)
{
    json_int_t n = 0;

    for (size_t k = 0; k < a->ninsts; k++)
        n += a->insts[k]->after_stop != PM_AFTER_DELETE;
    return n;
}

static void req_scale(struct pm_conn *c, const json_t *req)
{
    const char *name = json_string_value(json_object_get(req, "name"));
    struct pm_app *a = name ? pm_app_find(c->d, name) : NULL;
    json_int_t n = json_integer_value(json_object_get(req, "n"));
    json_int_t target;
    json_int_t live;
    struct err e = {{0}};

    if (!a || a->deleting) {
        not_found(c, name);
        return;
    }
    live = live_insts(a);
    /* n comes from the socket: bound it before the sum can overflow. */
    target = n < -PM_MAX_INSTANCES || n > PM_MAX_INSTANCES    ? 0
             : json_is_true(json_object_get(req, "relative")) ? live + n
                                                              : n;
    if (target < 1 || target > PM_MAX_INSTANCES ||
        (a->spec.port_base > 0 && a->spec.port_base + target - 1 > 65535)) {
        conn_error(c, "instance count out of range (1..1024, ports up to 65535)");
        return;
    }
    for (; live < target; live++) {
        int next = a->ninsts ? a->insts[a->ninsts - 1]->instance + 1 : 0;
        struct pm_inst *i = app_add_inst(a, next);
        if (pm_inst_spawn(i, &e) != 0)
            log_error("%s-%d: %s", a->spec.name, next, e.msg);
    }
    /* The highest-numbered go first; a stopped one is removed at once, so walk by index. */
    for (size_t k = a->ninsts; k > 0 && live > target; k--) {
        struct pm_inst *i = a->insts[k - 1];
        if (i->after_stop == PM_AFTER_DELETE)
            continue;
        live--;
        await_add(c, i->pm_id);
        pm_inst_stop(i, PM_AFTER_DELETE);
    }
    a->spec.instances = (int)target;
    c->reply = json_pack("{s:b,s:I}", "ok", 1, "instances", target);
    conn_wait(c);
}

static void req_kill(struct pm_conn *c)
{
    struct pm_daemon *d = c->d;

    d->forget_state = true;
    for (size_t k = 0; k < d->napps; k++) {
        for (size_t j = 0; j < d->apps[k]->ninsts; j++) {
            await_add(c, d->apps[k]->insts[j]->pm_id);
            pm_inst_stop(d->apps[k]->insts[j], PM_AFTER_NONE);
        }
    }
    c->exit_after = true;
    c->reply = json_pack("{s:b,s:i}", "ok", 1, "pid", (int)getpid());
    conn_wait(c);
}

static void dispatch(struct pm_conn *c, const json_t *req)
{
    const char *cmd = json_string_value(json_object_get(req, "cmd"));
    const char *name = json_string_value(json_object_get(req, "name"));

    if (!cmd) {
        conn_error(c, "request without \"cmd\"");
    } else if (c->d->forget_state && (strcmp(cmd, "start") == 0 || strcmp(cmd, "scale") == 0 ||
                                      strcmp(cmd, "reload") == 0)) {
        /* The table is about to be forgotten: what starts now would run unsupervised. */
        conn_error(c, "the daemon is shutting down (kill)");
    } else if (strcmp(cmd, "ping") == 0) {
        c->reply = json_pack("{s:b,s:i,s:s}", "ok", 1, "pid", (int)getpid(), "home", c->d->home);
        conn_answer(c);
    } else if (strcmp(cmd, "start") == 0) {
        req_start(c, req);
    } else if (strcmp(cmd, "stop") == 0) {
        req_target(c, req, PM_AFTER_NONE, false);
    } else if (strcmp(cmd, "restart") == 0) {
        req_target(c, req, PM_AFTER_RESTART, false);
    } else if (strcmp(cmd, "reload") == 0) {
        req_reload(c, req);
    } else if (strcmp(cmd, "delete") == 0) {
        req_target(c, req, PM_AFTER_DELETE, true);
    } else if (strcmp(cmd, "scale") == 0) {
        req_scale(c, req);
    } else if (strcmp(cmd, "ls") == 0) {
        c->reply = json_pack("{s:b,s:o}", "ok", 1, "processes", rows_json(c->d, NULL, false));
        if (c->d->state_warning)
            json_object_set_new(c->reply, "warning", json_string(c->d->state_warning));
        conn_answer(c);
    } else if (strcmp(cmd, "describe") == 0) {
        struct pm_app *a = name ? pm_app_find(c->d, name) : NULL;
        if (!a) {
            not_found(c, name);
            return;
        }
        c->reply = json_pack("{s:b,s:o}", "ok", 1, "processes", rows_json(c->d, a, true));
        conn_answer(c);
    } else if (strcmp(cmd, "kill") == 0) {
        req_kill(c);
    } else {
        conn_error(c, "unknown command");
    }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    b->base = xmalloc(65536);
    b->len = 65536;
}

/* Takes c off the list of connections still sending their request. */
static void reading_remove(struct pm_daemon *d, struct pm_conn *c)
{
    for (struct pm_conn **pp = &d->reading; *pp; pp = &(*pp)->next_reading) {
        if (*pp == c) {
            *pp = c->next_reading;
            return;
        }
    }
}

/* Closes the connections that did not send a whole request in time (a peer holds no slot). */
static void reading_expire(struct pm_daemon *d, bool all)
{
    int64_t now = pm_now_ms();
    struct pm_conn **pp = &d->reading;

    while (*pp) {
        struct pm_conn *c = *pp;
        if (all || now - c->accepted_ms > PM_REQUEST_TIMEOUT_MS) {
            *pp = c->next_reading;
            uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
        } else {
            pp = &c->next_reading;
        }
    }
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct pm_conn *c = CONTAINER_OF((uv_pipe_t *)s, struct pm_conn, pipe);
    json_t *req;
    json_error_t je;

    if (n > 0)
        buf_append(&c->in, b->base, (size_t)n);
    free(b->base);
    if (n == 0)
        return;
    if (c->in.len > PM_REQUEST_MAX) {
        uv_read_stop(s);
        reading_remove(c->d, c);
        conn_error(c, "request too large");
        return;
    }
    if (n > 0 && !memchr(c->in.data, '\n', c->in.len))
        return;
    uv_read_stop(s);
    reading_remove(c->d, c);
    if (n < 0 && c->in.len == 0) {
        uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
        return;
    }
    req = json_loadb(c->in.data, c->in.len, JSON_DISABLE_EOF_CHECK, &je);
    if (!json_is_object(req))
        conn_error(c, "malformed request");
    else
        dispatch(c, req);
    json_decref(req);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct pm_daemon *d = server->data;
    struct pm_conn *c;

    if (status != 0 || d->quitting)
        return;
    c = xcalloc(1, sizeof(*c));
    c->d = d;
    d->nconns++;
    uv_pipe_init(d->loop, &c->pipe, 0);
    if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0 || d->nconns > PM_MAX_CONNS) {
        uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
        return;
    }
    c->accepted_ms = pm_now_ms();
    c->next_reading = d->reading;
    d->reading = c;
    uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
}

/* ---- lifecycle -------------------------------------------------------------------------- */

/* Leaves the processes running (unless `kill` stopped them), saves the table, closes all. */
static void shutdown_daemon(struct pm_daemon *d)
{
    struct err e;

    if (d->quitting)
        return;
    if (d->forget_state)
        unlink(d->state_path);
    else
        pm_state_save(d, &e);
    d->quitting = true;
    sd_notify_stopping();
    log_info("pm daemon %d exiting%s", (int)getpid(),
             d->forget_state ? "" : ": apps keep running, table saved");
    unlink(d->sock_path);
    uv_close((uv_handle_t *)&d->server, NULL);
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
    uv_close((uv_handle_t *)&d->sample, NULL);
    uv_close((uv_handle_t *)&d->worker, NULL);
    pm_reload_close(d);
    reading_expire(d, true);
    while (d->pending) {
        struct pm_conn *c = d->pending;
        d->pending = c->next;
        uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
    }
    while (d->napps) {
        struct pm_app *a = d->apps[d->napps - 1];
        for (size_t j = 0; j < a->ninsts; j++) {
            /* After kill nothing will come back for what is still stopping: no waiting. */
            if (d->forget_state)
                pm_inst_kill(a->insts[j]);
            pm_inst_release(a->insts[j]);
        }
        a->ninsts = 0;
        pm_app_remove(d, a);
    }
}

static void on_signal(uv_signal_t *s, int signum)
{
    shutdown_daemon(s->data);
}

static void on_sample(uv_timer_t *t)
{
    struct pm_daemon *d = t->data;

    for (size_t k = 0; k < d->napps; k++) {
        for (size_t j = 0; j < d->apps[k]->ninsts; j++)
            pm_inst_sample(d->apps[k]->insts[j]);
    }
    reading_expire(d, false);
    pm_retired_retry(d);
    pm_rotate_start(d);
}

static void on_worker(uv_timer_t *t)
{
    struct pm_daemon *d = t->data;

    /* A restart (pm_inst_stop) removes no instance: the indexes stay valid. */
    for (size_t k = 0; k < d->napps; k++) {
        for (size_t j = 0; j < d->apps[k]->ninsts; j++)
            pm_inst_check_memory(d->apps[k]->insts[j]);
    }
}

/* PM2's $PM2_WORKER_INTERVAL (milliseconds): how often memory limits are checked. */
static int64_t worker_interval(void)
{
    const char *v = getenv("PM2_WORKER_INTERVAL");
    char *end;
    long long ms;

    if (!v || !v[0])
        return PM_WORKER_INTERVAL_MS;
    errno = 0;
    ms = strtoll(v, &end, 10);
    if (errno || *end || ms < 1 || ms > INT32_MAX) {
        log_warn("PM2_WORKER_INTERVAL=\"%s\" is not a number of milliseconds (1..%d): using %d", v,
                 INT32_MAX, PM_WORKER_INTERVAL_MS);
        return PM_WORKER_INTERVAL_MS;
    }
    return ms;
}

/* The pid file doubles as the one-daemon lock; a daemon that is exiting gets a moment. */
static int take_lock(struct pm_daemon *d, struct err *e)
{
    char *path = xasprintf("%s/pm.pid", d->home);
    char pid[64];
    int rc = 0;
    int n;

    d->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (d->lock_fd < 0) {
        rc = -errno;
        err_set(e, "open %s: %s", path, strerror(errno));
        goto out;
    }
    for (int waited = 0; flock(d->lock_fd, LOCK_EX | LOCK_NB) != 0; waited += 50) {
        if (waited >= PM_LOCK_WAIT_MS) {
            rc = -EBUSY;
            err_set(e, "another pm daemon holds %s", path);
            goto out;
        }
        usleep(50 * 1000);
    }
    /* "PID START", as every pidfile here (lib/procfs.h): `mesh down` may trust it. */
    n = procfs_pidfile_line(getpid(), pid, sizeof(pid));
    if (n < 0 || ftruncate(d->lock_fd, 0) != 0 || write(d->lock_fd, pid, (size_t)n) != n) {
        rc = n < 0 ? n : errno ? -errno : -EIO;
        err_set(e, "write %s: %s", path, strerror(errno));
    }
out:
    free(path);
    return rc;
}

static int listen_socket(struct pm_daemon *d, struct err *e)
{
    struct unix_path addr;
    int rc;

    if ((rc = unix_path_open(&addr, d->sock_path, e)) < 0)
        return rc;
    unlink(d->sock_path);
    uv_pipe_init(d->loop, &d->server, 0);
    d->server.data = d;
    rc = uv_pipe_bind(&d->server, addr.sa.sun_path);
    unix_path_close(&addr);
    if (rc == 0) {
        chmod(d->sock_path, 0600);
        rc = uv_listen((uv_stream_t *)&d->server, 128, on_connection);
    }
    if (rc != 0) {
        err_set(e, "listen on %s: %s", d->sock_path, uv_strerror(rc));
        uv_close((uv_handle_t *)&d->server, NULL);
    }
    return rc;
}

static void daemon_start(struct pm_daemon *d)
{
    struct err e;

    uv_signal_init(d->loop, &d->sigterm);
    uv_signal_init(d->loop, &d->sigint);
    d->sigterm.data = d;
    d->sigint.data = d;
    uv_signal_start(&d->sigterm, on_signal, SIGTERM);
    uv_signal_start(&d->sigint, on_signal, SIGINT);
    pm_reload_init(d);
    uv_timer_init(d->loop, &d->sample);
    d->sample.data = d;
    uv_timer_start(&d->sample, on_sample, PM_SAMPLE_MS, PM_SAMPLE_MS);
    d->worker_interval_ms = worker_interval();
    uv_timer_init(d->loop, &d->worker);
    d->worker.data = d;
    uv_timer_start(&d->worker, on_worker, (uint64_t)d->worker_interval_ms,
                   (uint64_t)d->worker_interval_ms);
    pm_state_load(d);
    pm_state_save(d, &e);
    log_info("pm daemon %d listening on %s", (int)getpid(), d->sock_path);
    sd_notify_ready("supervising");
}

int pm_daemon_run(const char *home, struct err *e)
{
    struct pm_daemon d = {0};
    uv_loop_t loop;
    int rc;

    log_set_component("pm");
    /* A descriptor or two per instance (a pidfd or a process handle, its log files while it
     * starts), and per control connection. */
    rlimit_nofile_raise();
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    d.home = xstrdup(home);
    d.sock_path = xasprintf("%s/pm.sock", home);
    d.state_path = xasprintf("%s/state.json", home);
    d.logs_dir = xasprintf("%s/logs", home);
    d.pids_dir = xasprintf("%s/pids", home);
    d.ticks_per_sec = sysconf(_SC_CLK_TCK);
    d.page_size = sysconf(_SC_PAGESIZE);
    d.lock_fd = -1;
    uv_loop_init(&loop);
    d.loop = &loop;
    /* A file in the way is named now, not by each app's failure to open its log files. */
    for (char **dir = (char *[]){d.logs_dir, d.pids_dir, NULL}; *dir; dir++) {
        if ((rc = file_mkdir_all_err(*dir, 0755, e)) < 0)
            goto out;
    }
    rc = take_lock(&d, e);
    if (rc != 0)
        goto out;
    rc = listen_socket(&d, e);
    if (rc != 0)
        goto out;
    daemon_start(&d);
    uv_run(&loop, UV_RUN_DEFAULT);
out:
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    if (d.lock_fd >= 0)
        close(d.lock_fd);
    free(d.apps);
    free(d.home);
    free(d.sock_path);
    free(d.state_path);
    free(d.logs_dir);
    free(d.pids_dir);
    free(d.state_warning);
    pm_retired_free(&d);
    return rc;
}
