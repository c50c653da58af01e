/*
 * One instance's life: spawn (own process group, detached, stdio straight into its log files),
 * adopt a survivor of an earlier daemon (pidfd polled), stop (SIGTERM to the group, SIGKILL after
 * the kill timeout), and what follows an exit (PM2's restart policy).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/alloc.h"
#include "lib/bug.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/procfs.h"
#include "pm/daemon.h"

extern char **environ;

#define PM_ENV_MAX        8192
#define PM_ADOPT_RETRY_MS 1000 /* an instance whose process could not be watched yet */

static void on_timer_closed(uv_handle_t *h)
{
    free(CONTAINER_OF((uv_timer_t *)h, struct pm_inst, timer));
}

struct pm_inst *pm_inst_new(struct pm_app *a, int instance, int pm_id)
{
    struct pm_inst *i = xcalloc(1, sizeof(*i));

    i->app = a;
    i->instance = instance;
    i->pm_id = pm_id;
    i->status = PM_STOPPED;
    i->exit_code = -1;
    uv_timer_init(a->d->loop, &i->timer);
    return i;
}

char *pm_inst_log_path(const struct pm_inst *i, const char *which)
{
    return xasprintf("%s/%s-%d-%s.log", i->app->d->logs_dir, i->app->spec.name, i->instance, which);
}

char *pm_inst_pid_path(const struct pm_inst *i)
{
    return xasprintf("%s/%s-%d.pid", i->app->d->pids_dir, i->app->spec.name, i->instance);
}

char *pm_retired_pid_path(const struct pm_inst *i, int pid)
{
    return xasprintf("%s/%s-%d.%d.retired.pid", i->app->d->pids_dir, i->app->spec.name, i->instance,
                     pid);
}

/* Records the instance's process in its pidfile (see pm_inst_pid_path). */
static void pidfile_record(const struct pm_inst *i)
{
    char *path = pm_inst_pid_path(i);
    struct err e;
    int rc = procfs_pidfile_write(path, i->pid, &e);

    /* -ESRCH: it is gone already, and its exit callback is on the way. */
    if (rc < 0 && rc != -ESRCH)
        log_error("%s", e.msg);
    free(path);
}

static void pidfile_remove(const struct pm_inst *i)
{
    char *path = pm_inst_pid_path(i);

    unlink(path);
    free(path);
}

/* The environment of a child: the daemon's, then the app's -env, then the instance's own. */
static char **build_env(const struct pm_inst *i)
{
    const struct pm_spec *s = &i->app->spec;
    struct pm_spec tmp;
    char *v;
    char **env;

    pm_spec_init(&tmp);
    for (size_t k = 0; k < PM_ENV_MAX && environ[k]; k++)
        pm_spec_set_env(&tmp, environ[k]);
    for (size_t k = 0; k < s->nenv; k++)
        pm_spec_set_env(&tmp, s->env[k]);
    v = xasprintf("INSTANCE_ID=%d", i->instance);
    pm_spec_set_env(&tmp, v);
    free(v);
    v = xasprintf("NODE_APP_INSTANCE=%d", i->instance);
    pm_spec_set_env(&tmp, v);
    free(v);
    v = xasprintf("PM_ID=%d", i->pm_id);
    pm_spec_set_env(&tmp, v);
    free(v);
    if (s->port_base > 0) {
        v = xasprintf("PORT=%d", s->port_base + i->instance);
        pm_spec_set_env(&tmp, v);
        free(v);
    }
    env = xrealloc(tmp.env, (tmp.nenv + 1) * sizeof(*env));
    env[tmp.nenv] = NULL;
    tmp.env = NULL;
    tmp.nenv = 0;
    pm_spec_free(&tmp);
    return env;
}

static void free_env(char **env)
{
    for (size_t k = 0; env[k]; k++)
        free(env[k]);
    free(env);
}

/* Start ticks of pid from /proc, or 0 when it is gone. /proc is served from memory, so this
 * small read does not stall the loop. */
static uint64_t proc_start_ticks(int pid, struct procfs_stat *st)
{
    if (procfs_read_stat(pid, st) != 0 || st->state == 'Z')
        return 0;
    return st->start_time;
}

static void child_handle_closed(struct pm_child *c)
{
    if (--c->open_handles > 0)
        return;
    if (c->adopted)
        close(c->pidfd);
    free(c->retired_pidfile);
    free(c);
}

static void on_child_closed(uv_handle_t *h)
{
    child_handle_closed(CONTAINER_OF(h, struct pm_child, h));
}

static void on_kill_timer_closed(uv_handle_t *h)
{
    child_handle_closed(CONTAINER_OF((uv_timer_t *)h, struct pm_child, kill_timer));
}

static void release_child(struct pm_inst *i)
{
    struct pm_child *c = i->child;

    if (!c)
        return;
    c->inst = NULL;
    i->child = NULL;
    uv_close((uv_handle_t *)&c->h, on_child_closed);
}

static void on_restart_timer(uv_timer_t *t);

/* A process a reload replaced has exited: nothing restarts it, the reload moves on. */
static void retired_exited(struct pm_child *c)
{
    struct pm_daemon *d = c->retired_from;

    log_info("pid %d (replaced by a reload) exited", c->pid);
    if (c->retired_pidfile)
        unlink(c->retired_pidfile);
    if (c->open_handles > 1) {
        uv_timer_stop(&c->kill_timer);
        uv_close((uv_handle_t *)&c->kill_timer, on_kill_timer_closed);
    }
    uv_close((uv_handle_t *)&c->h, on_child_closed);
    /* One left by an earlier daemon is no part of the reload running now. */
    if (d->reload.old == c)
        pm_reload_old_gone(d);
}

/* After an exit: a stop completes, or the restart policy decides. */
static void child_exited(struct pm_inst *i, int code, int sig)
{
    struct pm_app *a = i->app;
    struct pm_policy p = {a->spec.restart_delay_ms, a->spec.exp_backoff_ms, a->spec.min_uptime_ms,
                          a->spec.max_restarts};
    int64_t uptime = pm_now_ms() - i->started_ms;
    int64_t delay;

    release_child(i);
    uv_timer_stop(&i->timer);
    pidfile_remove(i);
    log_info("%s-%d (pid %d) exited: code %d signal %d", a->spec.name, i->instance, i->pid, code,
             sig);
    i->pid = 0;
    i->has_exit = true;
    i->exit_code = code;
    i->exit_signal = sig;
    i->cpu = 0;
    i->rss = 0;
    if (i->stop_requested) {
        i->stop_requested = false;
        i->status = PM_STOPPED;
        pm_inst_stop(i, i->after_stop);
        return;
    }
    if (a->d->quitting)
        return;
    if (!a->spec.autorestart) {
        i->status = PM_STOPPED;
        log_info("%s-%d: autorestart is off: not restarted", a->spec.name, i->instance);
        pm_daemon_changed(a->d);
        return;
    }
    /* An adopted process's code is unknown (-1): it is restarted, as for any crash. */
    if (sig == 0 && pm_exit_codes_has(&a->spec.stop_exit_codes, code)) {
        i->status = PM_STOPPED;
        log_info("%s-%d: exit code %d is in stop_exit_codes: not restarted", a->spec.name,
                 i->instance, code);
        pm_daemon_changed(a->d);
        return;
    }
    if (pm_backoff_next(&i->backoff, &p, uptime, &delay)) {
        i->status = PM_WAITING;
        uv_timer_start(&i->timer, on_restart_timer, (uint64_t)delay, 0);
    } else {
        i->status = PM_ERRORED;
        log_warn("%s-%d: too many unstable restarts (%d), errored", a->spec.name, i->instance,
                 i->backoff.unstable);
    }
    pm_daemon_changed(a->d);
}

static void on_restart_timer(uv_timer_t *t)
{
    struct pm_inst *i = CONTAINER_OF(t, struct pm_inst, timer);
    struct err e = {{0}};

    i->restarts++;
    if (pm_inst_spawn(i, &e) != 0)
        log_error("%s-%d: %s", i->app->spec.name, i->instance, e.msg);
    pm_daemon_changed(i->app->d);
}

static void on_child_exit(uv_process_t *p, int64_t status, int term_signal)
{
    struct pm_child *c = CONTAINER_OF(p, struct pm_child, h.proc);

    if (c->inst)
        child_exited(c->inst, (int)status, term_signal);
    else if (c->retired_from)
        retired_exited(c);
    else
        uv_close((uv_handle_t *)p, on_child_closed);
}

static void on_pidfd(uv_poll_t *h, int status, int events)
{
    struct pm_child *c = CONTAINER_OF(h, struct pm_child, h.poll);

    uv_poll_stop(h);
    if (c->inst)
        child_exited(c->inst, -1, 0);
    else if (c->retired_from)
        retired_exited(c);
}

static int open_log(const struct pm_inst *i, const char *which)
{
    char *path = pm_inst_log_path(i, which);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int rc = fd < 0 ? -errno : fd;

    if (fd < 0)
        log_error("open %s: %s", path, strerror(errno));
    free(path);
    return rc;
}

int pm_inst_spawn(struct pm_inst *i, struct err *e)
{
    const struct pm_spec *s = &i->app->spec;
    struct pm_child *c = xcalloc(1, sizeof(*c));
    uv_process_options_t o = {0};
    uv_stdio_container_t stdio[3];
    struct procfs_stat st;
    char **env = build_env(i);
    int out = open_log(i, "out");
    int errfd = open_log(i, "err");
    int rc;

    if (out < 0 || errfd < 0) {
        rc = out < 0 ? out : errfd;
        err_set(e, "open log files in %s: %s", i->app->d->logs_dir, strerror(-rc));
        goto fail;
    }
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = out;
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = errfd;
    o.exit_cb = on_child_exit;
    o.file = s->argv[0];
    o.args = s->argv;
    o.env = env;
    o.cwd = s->cwd;
    /* Own session and process group: a stop signal reaches the whole tree, and the child
     * outlives the daemon. */
    o.flags = UV_PROCESS_DETACHED;
    o.stdio_count = 3;
    o.stdio = stdio;
    c->open_handles = 1;
    rc = uv_spawn(i->app->d->loop, &c->h.proc, &o);
    if (rc != 0) {
        err_set(e, "exec %s: %s", s->argv[0], uv_strerror(rc));
        uv_close((uv_handle_t *)&c->h.proc, on_child_closed);
        c = NULL;
        goto fail;
    }
    c->inst = i;
    i->child = c;
    i->pid = c->h.proc.pid;
    i->start_ticks = proc_start_ticks(i->pid, &st);
    i->started_ms = pm_now_ms();
    i->status = PM_ONLINE;
    i->cpu_ticks = 0;
    i->cpu_sample_ns = 0;
    pidfile_record(i);
    log_info("%s-%d started: pid %d", s->name, i->instance, i->pid);
    goto out;
fail:
    free(c);
    i->status = PM_ERRORED;
out:
    if (out >= 0)
        close(out);
    if (errfd >= 0)
        close(errfd);
    free_env(env);
    return rc;
}

/* A pidfd watched by the loop for process pid (on_pidfd when it exits). NULL with *rc set. */
static struct pm_child *child_watch(struct pm_daemon *d, int pid, int *rc)
{
    struct pm_child *c;
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);

    if (fd < 0) {
        *rc = -errno;
        return NULL;
    }
    c = xcalloc(1, sizeof(*c));
    c->open_handles = 1;
    c->adopted = true;
    c->pidfd = fd;
    c->pid = pid;
    *rc = uv_poll_init(d->loop, &c->h.poll, fd);
    if (*rc != 0) {
        close(fd);
        free(c);
        return NULL;
    }
    uv_poll_start(&c->h.poll, UV_READABLE, on_pidfd);
    return c;
}

int pm_child_adopt_retired(struct pm_daemon *d, int pid, char *pidfile, int64_t kill_timeout_ms)
{
    int rc;
    struct pm_child *c = child_watch(d, pid, &rc);

    if (!c)
        return rc;
    c->retired_from = d;
    c->retired_pidfile = pidfile;
    log_warn("pid %d was being replaced by a reload when the last daemon died: stopping it", pid);
    pm_child_retire(c, kill_timeout_ms);
    return 0;
}

/* 0 while pid is the process that started at start; -ESRCH when it is gone (or a zombie, or the
 * PID is another process's now); another -errno when /proc could not be read (-EMFILE). */
static int proc_is(int pid, uint64_t start)
{
    struct procfs_stat st;
    int rc = procfs_read_stat(pid, &st);

    if (rc != 0)
        return rc;
    return st.state == 'Z' || st.start_time != start ? -ESRCH : 0;
}

int pm_inst_adopt(struct pm_inst *i)
{
    struct pm_child *c;
    int rc;

    if (i->pid <= 0 || !i->start_ticks)
        return -ESRCH;
    /* The pidfd first: it holds on to the process it was opened for, so the start time read after
     * it tells whether that is the recorded one (read before, the PID could be reused between). */
    if (!(c = child_watch(i->app->d, i->pid, &rc)))
        return rc;
    if ((rc = proc_is(i->pid, i->start_ticks)) != 0) {
        uv_close((uv_handle_t *)&c->h.poll, on_child_closed);
        return rc;
    }
    i->adopting = false;
    c->inst = i;
    i->child = c;
    i->status = PM_ONLINE;
    pidfile_record(i);
    log_info("%s-%d adopted: pid %d", i->app->spec.name, i->instance, i->pid);
    return 0;
}

static void stop_signal(struct pm_inst *i);

/* The process of an instance waiting for adoption is gone: a stop asked meanwhile completes,
 * else it is started again, as revive does with one found gone at once (PM2's resurrect). */
static void adopt_gone(struct pm_inst *i)
{
    struct pm_daemon *d = i->app->d;
    struct err e = {{0}};

    log_info("%s-%d (pid %d) is gone", i->app->spec.name, i->instance, i->pid);
    i->adopting = false;
    i->pid = 0;
    if (i->stop_requested) {
        i->stop_requested = false;
        i->status = PM_STOPPED;
        pm_inst_stop(i, i->after_stop); /* may free i */
        return;
    }
    i->restarts++;
    if (pm_inst_spawn(i, &e) != 0)
        log_error("%s-%d: %s", i->app->spec.name, i->instance, e.msg);
    pm_daemon_changed(d);
}

static void on_adopt_retry(uv_timer_t *t)
{
    struct pm_inst *i = CONTAINER_OF(t, struct pm_inst, timer);
    int rc = pm_inst_adopt(i);

    if (rc == -ESRCH) {
        adopt_gone(i);
        return;
    }
    if (rc != 0) {
        log_debug("%s-%d (pid %d): still cannot be watched: %s", i->app->spec.name, i->instance,
                  i->pid, strerror(-rc));
        uv_timer_start(&i->timer, on_adopt_retry, PM_ADOPT_RETRY_MS, 0);
        return;
    }
    if (i->stop_requested)
        stop_signal(i);
    pm_daemon_changed(i->app->d);
}

void pm_inst_adopt_later(struct pm_inst *i, int why)
{
    MESH_BUG_ON(i->child || i->pid <= 0);
    log_error("%s-%d (pid %d) may still run but cannot be watched (%s): not started again, tried "
              "again every second",
              i->app->spec.name, i->instance, i->pid, strerror(-why));
    i->adopting = true;
    i->status = PM_LAUNCHING;
    uv_timer_start(&i->timer, on_adopt_retry, PM_ADOPT_RETRY_MS, 0);
}

void pm_signal_group(int pid, int sig)
{
    if (pid <= 0)
        return;
    if (kill(-pid, sig) != 0)
        kill(pid, sig);
}

static void on_kill_timeout(uv_timer_t *t)
{
    struct pm_inst *i = CONTAINER_OF(t, struct pm_inst, timer);

    log_warn("%s-%d (pid %d) still running after the kill timeout: SIGKILL", i->app->spec.name,
             i->instance, i->pid);
    pm_signal_group(i->pid, SIGKILL);
}

/* SIGTERM to the watched process of an instance being stopped, SIGKILL after its kill timeout. */
static void stop_signal(struct pm_inst *i)
{
    i->status = PM_STOPPING;
    pm_signal_group(i->pid, SIGTERM);
    uv_timer_start(&i->timer, on_kill_timeout, (uint64_t)i->app->spec.kill_timeout_ms, 0);
}

void pm_inst_stop(struct pm_inst *i, enum pm_after_stop after)
{
    struct pm_daemon *d = i->app->d;
    struct err e = {{0}};

    i->reload_pending = false; /* what is stopped now is not reloaded after */
    if (i->child || i->adopting) {
        i->after_stop = after > i->after_stop ? after : i->after_stop;
        if (i->stop_requested)
            return;
        i->stop_requested = true;
        i->status = PM_STOPPING;
        /* A process not watched yet is signalled once it is (its PID is not known to be its own
         * until then); one found gone completes the stop (on_adopt_retry). */
        if (i->child)
            stop_signal(i);
        pm_daemon_changed(d);
        return;
    }
    uv_timer_stop(&i->timer);
    i->after_stop = PM_AFTER_NONE;
    i->status = PM_STOPPED;
    /* After `kill` the table is forgotten: a restart started now would run unsupervised. */
    if (after == PM_AFTER_RESTART && !d->forget_state) {
        i->restarts++;
        i->backoff = (struct pm_backoff){0};
        if (pm_inst_spawn(i, &e) != 0)
            log_error("%s-%d: %s", i->app->spec.name, i->instance, e.msg);
    } else if (after == PM_AFTER_DELETE) {
        pm_inst_destroy(i);
    }
    pm_daemon_changed(d);
}

struct pm_child *pm_inst_detach(struct pm_inst *i)
{
    struct pm_child *c = i->child;
    char *path = pm_inst_pid_path(i);
    struct err e;

    MESH_BUG_ON(!c || i->stop_requested);
    /* Renamed, so that the process is in a pidfile at every moment: the new process's goes
     * where this one was, and a daemon killed now leaves the next one both. */
    c->retired_pidfile = pm_retired_pid_path(i, i->pid);
    if (rename(path, c->retired_pidfile) != 0 &&
        procfs_pidfile_write(c->retired_pidfile, i->pid, &e) < 0)
        log_error("%s", e.msg);
    free(path);
    c->inst = NULL;
    c->retired_from = i->app->d;
    c->pid = i->pid;
    i->child = NULL;
    i->pid = 0;
    return c;
}

static void on_retired_kill_timeout(uv_timer_t *t)
{
    struct pm_child *c = CONTAINER_OF(t, struct pm_child, kill_timer);

    log_warn("pid %d (replaced by a reload) still running after the kill timeout: SIGKILL", c->pid);
    pm_signal_group(c->pid, SIGKILL);
}

void pm_child_retire(struct pm_child *c, int64_t kill_timeout_ms)
{
    uv_timer_init(c->retired_from->loop, &c->kill_timer);
    c->open_handles++;
    pm_signal_group(c->pid, SIGTERM);
    uv_timer_start(&c->kill_timer, on_retired_kill_timeout, (uint64_t)kill_timeout_ms, 0);
}

void pm_inst_destroy(struct pm_inst *i)
{
    struct pm_app *a = i->app;
    size_t k;

    pm_reload_forget(i);
    release_child(i);
    for (k = 0; k < a->ninsts && a->insts[k] != i; k++)
        ;
    if (k < a->ninsts) {
        memmove(a->insts + k, a->insts + k + 1, (a->ninsts - k - 1) * sizeof(*a->insts));
        a->ninsts--;
    }
    uv_close((uv_handle_t *)&i->timer, on_timer_closed);
    if (a->deleting && a->ninsts == 0)
        pm_app_remove(a->d, a);
}

void pm_inst_kill(struct pm_inst *i)
{
    if (i->child && i->stop_requested)
        pm_signal_group(i->pid, SIGKILL);
}

void pm_inst_release(struct pm_inst *i)
{
    release_child(i);
    uv_close((uv_handle_t *)&i->timer, on_timer_closed);
}

bool pm_inst_busy(const struct pm_inst *i)
{
    return i->status == PM_STOPPING || i->status == PM_LAUNCHING || i->stop_requested ||
           i->reload_pending || i->app->d->reload.inst == i;
}

/* i->rss from /proc/PID/statm (served from memory: no stall). 0, or -errno when unreadable. */
static int read_rss(struct pm_inst *i)
{
    char path[64];
    char text[256];
    uint64_t pages;
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "/proc/%d/statm", i->pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    n = read(fd, text, sizeof(text));
    close(fd);
    if (n <= 0 || procfs_parse_statm(text, (size_t)n, &pages) != 0)
        return -EIO;
    i->rss = pages * (uint64_t)i->app->d->page_size;
    return 0;
}

void pm_inst_sample(struct pm_inst *i)
{
    struct procfs_stat st;
    uint64_t now = uv_hrtime();
    uint64_t ticks;

    /* Without start ticks the PID cannot be told from a reused one (and a failed read leaves st
     * unset), so such a process goes unsampled. */
    if (i->pid <= 0 || !i->start_ticks || proc_start_ticks(i->pid, &st) != i->start_ticks)
        return;
    ticks = st.utime + st.stime;
    if (i->cpu_sample_ns && now > i->cpu_sample_ns && ticks >= i->cpu_ticks)
        i->cpu = (double)(ticks - i->cpu_ticks) / (double)i->app->d->ticks_per_sec /
                 ((double)(now - i->cpu_sample_ns) / 1e9) * 100.0;
    i->cpu_ticks = ticks;
    i->cpu_sample_ns = now;
    read_rss(i);
}

void pm_inst_check_memory(struct pm_inst *i)
{
    const struct pm_spec *s = &i->app->spec;
    struct procfs_stat st;

    /* A process being stopped or replaced is on its way out already. */
    if (s->max_memory_bytes <= 0 || i->status != PM_ONLINE || !i->child || pm_inst_busy(i))
        return;
    if (!i->start_ticks || proc_start_ticks(i->pid, &st) != i->start_ticks || read_rss(i) != 0)
        return;
    if (i->rss <= (uint64_t)s->max_memory_bytes)
        return;
    /* PM2's words, so that a search for them finds the restart in either log. */
    log_warn("%s-%d (pid %d) restarted because it exceeds --max-memory-restart value "
             "(current_memory=%" PRIu64 " max_memory_limit=%" PRId64 " [octets])",
             s->name, i->instance, i->pid, i->rss, s->max_memory_bytes);
    pm_inst_stop(i, PM_AFTER_RESTART);
}

static json_t *command_json(const struct pm_spec *s)
{
    struct buf b = BUF_INIT;
    json_t *v;

    for (size_t k = 0; k < s->argc; k++)
        buf_printf(&b, "%s%s", k ? " " : "", s->argv[k]);
    v = json_str_or_empty(b.data);
    buf_free(&b);
    return v;
}

/* "SIGKILL" for 9. */
static json_t *signal_json(int sig)
{
    const char *abbrev = sigabbrev_np(sig);
    char name[32];

    snprintf(name, sizeof(name), "SIG%s", abbrev ? abbrev : "UNKNOWN");
    return json_string(name);
}

/* A JSON string of a heap string, which it frees. */
static json_t *string_own(char *s)
{
    json_t *v = json_str_or_empty(s);

    free(s);
    return v;
}

json_t *pm_inst_to_json(const struct pm_inst *i, bool detail)
{
    const struct pm_spec *s = &i->app->spec;
    json_t *o = json_object();
    bool up = i->pid > 0;

    json_object_set_new(o, "name", json_str_or_empty(s->name));
    json_object_set_new(o, "pm_id", json_integer(i->pm_id));
    json_object_set_new(o, "instance", json_integer(i->instance));
    json_object_set_new(o, "pid", up ? json_integer(i->pid) : json_null());
    json_object_set_new(o, "status", json_string(pm_status_name(i->status)));
    json_object_set_new(o, "restarts", json_integer(i->restarts));
    json_object_set_new(o, "unstable_restarts", json_integer(i->backoff.unstable));
    json_object_set_new(o, "uptime_ms", json_integer(up ? pm_now_ms() - i->started_ms : 0));
    json_object_set_new(o, "cpu", json_real_round(up ? i->cpu : 0, 0.1));
    json_object_set_new(o, "memory", json_integer(up ? (json_int_t)i->rss : 0));
    json_object_set_new(o, "port",
                        s->port_base > 0 ? json_integer(s->port_base + i->instance) : json_null());
    json_object_set_new(o, "exit_code",
                        i->has_exit && i->exit_code >= 0 ? json_integer(i->exit_code)
                                                         : json_null());
    json_object_set_new(
        o, "signal", i->has_exit && i->exit_signal > 0 ? signal_json(i->exit_signal) : json_null());
    json_object_set_new(o, "restart_delay_ms", json_integer(i->backoff.delay_ms));
    json_object_set_new(o, "command", command_json(s));
    if (detail) {
        json_object_set_new(o, "started_at_ms", json_integer(i->started_ms));
        json_object_set_new(o, "out_log", string_own(pm_inst_log_path(i, "out")));
        json_object_set_new(o, "err_log", string_own(pm_inst_log_path(i, "err")));
        json_object_set_new(o, "spec", pm_spec_to_json(s));
    }
    return o;
}
