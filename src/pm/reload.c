/*
 * PM2's reload: a restart without downtime, one instance at a time. For each instance the new
 * process starts while the old one still serves; once the new one is ready the old one is
 * stopped as `stop` stops (SIGTERM, SIGKILL after kill_timeout), and the next instance begins
 * when it has exited. Ready means: with a PORT, the new process itself holds a TCP listener on
 * it (both share the port, so the app binds it with SO_REUSEPORT); without one, or when that
 * does not happen within listen_timeout, the new process still running after listen_timeout.
 * A new process that exits before it is ready ends the wait too (the restart policy has it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/alloc.h"
#include "lib/log.h"
#include "lib/procfs.h"
#include "pm/daemon.h"

#define PM_RELOAD_POLL_MS 50

void pm_reload_init(struct pm_daemon *d)
{
    uv_timer_init(d->loop, &d->reload.poll);
    d->reload.poll.data = d;
}

void pm_reload_close(struct pm_daemon *d)
{
    for (size_t k = 0; k < d->napps; k++) {
        for (size_t j = 0; j < d->apps[k]->ninsts; j++)
            d->apps[k]->insts[j]->reload_pending = false;
    }
    d->reload.inst = NULL;
    uv_close((uv_handle_t *)&d->reload.poll, NULL);
    /* The new process is in the saved table; the old one would be nobody's. */
    if (d->reload.old && !d->reload.old_signalled) {
        d->reload.old_signalled = true;
        pm_child_retire(d->reload.old, PM_DEFAULT_KILL_MS);
    }
}

static struct pm_inst *next_pending(struct pm_daemon *d)
{
    for (size_t k = 0; k < d->napps; k++) {
        for (size_t j = 0; j < d->apps[k]->ninsts; j++) {
            if (d->apps[k]->insts[j]->reload_pending)
                return d->apps[k]->insts[j];
        }
    }
    return NULL;
}

/* The step of d->reload.inst is over (its old process gone): on to the next instance. */
static void step_done(struct pm_daemon *d)
{
    d->reload.inst = NULL;
    d->reload.old = NULL;
    uv_timer_stop(&d->reload.poll);
    pm_reload_run(d);
    pm_daemon_changed(d);
}

/* The new process is ready (or will not be): the old one goes. */
static void old_goes(struct pm_daemon *d)
{
    struct pm_inst *i = d->reload.inst;

    uv_timer_stop(&d->reload.poll);
    if (i && i->pid == d->reload.new_pid && i->status == PM_LAUNCHING)
        i->status = PM_ONLINE;
    if (!d->reload.old) {
        step_done(d);
        return;
    }
    d->reload.old_signalled = true;
    pm_child_retire(d->reload.old, i ? i->app->spec.kill_timeout_ms : PM_DEFAULT_KILL_MS);
    pm_daemon_changed(d);
}

static void on_poll(uv_timer_t *t)
{
    struct pm_daemon *d = t->data;
    struct pm_inst *i = d->reload.inst;
    bool ready;

    if (!i || i->pid != d->reload.new_pid || i->stop_requested || d->forget_state) {
        old_goes(d);
        return;
    }
    ready = i->app->spec.port_base > 0 &&
            procfs_pid_listens(i->pid, i->app->spec.port_base + i->instance);
    if (ready || pm_now_ms() >= d->reload.deadline_ms) {
        if (!ready && i->app->spec.port_base > 0)
            log_warn("%s-%d (pid %d) not listening after the listen timeout: taken as ready",
                     i->app->spec.name, i->instance, i->pid);
        old_goes(d);
    }
}

/* Starts the reload of i. False when there was nothing to wait for (the next one may begin). */
static bool step_begin(struct pm_daemon *d, struct pm_inst *i)
{
    struct err e = {{0}};

    i->reload_pending = false;
    if (!i->child || i->stop_requested || i->after_stop == PM_AFTER_DELETE) {
        /* Nothing serves: a restart is all there is to do (a stopping one is left alone). */
        if (!i->stop_requested)
            pm_inst_stop(i, PM_AFTER_RESTART);
        return false;
    }
    d->reload.inst = i;
    d->reload.old = pm_inst_detach(i);
    d->reload.old_signalled = false;
    uv_timer_stop(&i->timer);
    i->restarts++;
    i->backoff = (struct pm_backoff){0};
    if (pm_inst_spawn(i, &e) != 0) {
        log_error("%s-%d: reload: %s", i->app->spec.name, i->instance, e.msg);
        d->reload.new_pid = 0;
        old_goes(d);
        return true;
    }
    i->status = PM_LAUNCHING;
    d->reload.new_pid = i->pid;
    d->reload.deadline_ms = pm_now_ms() + i->app->spec.listen_timeout_ms;
    uv_timer_start(&d->reload.poll, on_poll, 0, PM_RELOAD_POLL_MS);
    return true;
}

void pm_reload_run(struct pm_daemon *d)
{
    struct pm_inst *i;

    while (!d->reload.inst && !d->reload.old && !d->quitting && (i = next_pending(d)) != NULL) {
        if (step_begin(d, i))
            return;
    }
}

void pm_reload_old_gone(struct pm_daemon *d)
{
    d->reload.old = NULL;
    /* Gone before the new one was ready (it crashed): the wait for the new one goes on. */
    if (d->reload.old_signalled)
        step_done(d);
}

void pm_reload_forget(struct pm_inst *i)
{
    struct pm_daemon *d = i->app->d;

    i->reload_pending = false;
    if (d->reload.inst == i)
        d->reload.inst = NULL; /* on_poll lets the old process go */
}
