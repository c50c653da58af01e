/*
 * The supervisor daemon (src/pm only): one libuv loop owns the app table, the control socket,
 * the children and the sampling timer. daemon.c runs the loop and the socket, proc.c the
 * lifecycle of one instance, reload.c PM2's reload (one instance at a time), state.c the saved
 * table, rotate.c log rotation.
 */
#ifndef MESH_PM_DAEMON_H
#define MESH_PM_DAEMON_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "lib/buf.h"
#include "lib/cron.h"
#include "lib/err.h"
#include "pm/policy.h"
#include "pm/spec.h"

#define PM_REQUEST_MAX        (1024 * 1024)
#define PM_REQUEST_TIMEOUT_MS 10000 /* to send a whole request */
#define PM_MAX_CONNS          256
#define PM_STATE_BAD_KEEP     100 /* state.json.bad, .bad.1 .. .bad.100 */

#define PM_WATCH_MAX_DIRS 4096 /* inotify watches of one app in watch mode */

struct pm_daemon;
struct pm_app;
struct pm_watch;

enum pm_after_stop { PM_AFTER_NONE = 0, PM_AFTER_RESTART, PM_AFTER_DELETE };

/* A running process we watch: our child (uv_process_t) or one adopted from an earlier daemon
 * (its pidfd polled). Freed in its close callback(s). */
struct pm_child {
    union {
        uv_process_t proc;
        uv_poll_t poll;
    } h;
    bool adopted;
    int pidfd;
    struct pm_inst *inst; /* NULL once the instance let go of it */
    /* A process a reload replaced (pm_inst_detach), or one an earlier daemon was replacing
     * when it died (pm_child_adopt_retired): no instance, stopped on its own. */
    struct pm_daemon *retired_from;
    char *retired_pidfile; /* pm_retired_pid_path, removed when the process has exited */
    int pid;
    uv_timer_t kill_timer; /* initialised only once retired */
    int open_handles;      /* freed when the last one is closed */
};

struct pm_inst {
    struct pm_app *app;
    int instance;
    int pm_id;
    enum pm_status status;
    int pid; /* 0 when no process */
    uint64_t start_ticks;
    int restarts;
    struct pm_backoff backoff;
    int64_t started_ms; /* wall clock, so uptime survives a daemon restart */
    bool has_exit;
    int exit_code; /* -1: unknown (an adopted process's status is not ours to reap) */
    int exit_signal;
    bool stop_requested;
    bool reload_pending; /* in the queue of a reload (one instance is reloaded at a time) */
    /* Its process may run but could not be watched (out of descriptors): it is neither started
     * again nor forgotten, and the timer tries again (pm_inst_adopt_later). */
    bool adopting;
    enum pm_after_stop after_stop;
    uv_timer_t timer; /* restart delay, or the kill timeout while stopping */
    struct pm_child *child;
    uint64_t cpu_ticks; /* at the last sample */
    uint64_t cpu_sample_ns;
    double cpu;
    uint64_t rss;
};

/* Freed in its timer's close callback (pm_app_remove). */
struct pm_app {
    struct pm_daemon *d;
    struct pm_spec spec;
    struct pm_inst **insts; /* ordered by instance number */
    size_t ninsts;
    bool deleting;
    struct cron cron;       /* spec.cron_restart, parsed */
    uv_timer_t cron_timer;  /* runs only with a cron_restart */
    time_t cron_at;         /* the wall-clock second the timer is for */
    struct pm_watch *watch; /* spec.watch: watch.c; NULL when not watching */
};

/* A control connection; pending ones wait for instances to settle before answering. */
struct pm_conn {
    uv_pipe_t pipe;
    struct pm_daemon *d;
    struct buf in;
    int *await; /* pm_ids that must leave stopping/launching */
    size_t nawait;
    json_t *reply;
    bool exit_after;              /* the kill command: stop the daemon once answered */
    struct pm_conn *next;         /* in d->pending */
    struct pm_conn *next_reading; /* in d->reading, until the request is in */
    int64_t accepted_ms;
};

struct pm_daemon {
    uv_loop_t *loop;
    char *home;
    char *sock_path;
    char *state_path;
    char *logs_dir;
    char *pids_dir;      /* one pidfile per running instance (pm_inst_pid_path) */
    char *state_warning; /* a damaged state.json at start: every ls reply says so */
    int lock_fd;
    uv_pipe_t server;
    uv_signal_t sigterm;
    uv_signal_t sigint;
    uv_timer_t sample;
    uv_timer_t worker;          /* memory limits, every worker_interval_ms (PM2's worker) */
    int64_t worker_interval_ms; /* $PM2_WORKER_INTERVAL, else PM_WORKER_INTERVAL_MS */
    struct pm_app **apps;
    size_t napps;
    int next_id;
    struct pm_conn *pending;
    struct pm_conn *reading; /* connections whose request is not in yet (bounded in time) */
    int nconns;
    struct pm_reload {
        struct pm_inst *inst; /* the instance being reloaded, or NULL */
        struct pm_child *old; /* its old process, until it has exited */
        bool old_signalled;   /* the new one is ready: the old one was told to stop */
        int new_pid;
        int64_t deadline_ms; /* listen_timeout */
        uv_timer_t poll;
    } reload;
    /* *.retired.pid files (names in pids_dir) whose process could not be checked or watched at
     * start: tried again every second (pm_retired_retry). */
    char **retired_left;
    size_t nretired_left;
    bool retired_unread; /* pids_dir itself could not be read (out of descriptors) at start */
    bool rotating;
    bool quitting;
    bool forget_state; /* after kill: no apps to bring back */
    long ticks_per_sec;
    long page_size;
};

/* Runs the daemon in this process until SIGTERM or `kill`. home must exist. Returns 0 or
 * -errno with e set (another daemon holds the lock, the socket cannot be bound). */
int pm_daemon_run(const char *home, struct err *e);

/* daemon.c */
int64_t pm_now_ms(void);
struct pm_app *pm_app_find(struct pm_daemon *d, const char *name);
/* Adds an app with no instances to the table, taking what spec owns (spec is left empty), and
 * starts its cron_restart schedule. */
struct pm_app *pm_app_add(struct pm_daemon *d, struct pm_spec *spec);
/* Restarts every instance as `restart` does (one restart counted, the backoff reset; a stopped
 * or errored one started), except those being stopped, started or reloaded: cron and watch. */
void pm_app_restart_all(struct pm_app *a);
/* Takes the app out of the table; it is freed once its timer is closed. */
void pm_app_remove(struct pm_daemon *d, struct pm_app *a);
/* Answers the connections whose instances have settled. Call after every state change. */
void pm_daemon_changed(struct pm_daemon *d);

/* proc.c */
struct pm_inst *pm_inst_new(struct pm_app *a, int instance, int pm_id);
/*
 * The pidfile of an instance's process while it runs: HOME/pids/NAME-INSTANCE.pid, holding
 * "PID START" (lib/procfs.h), removed when the process exits. It outlives the daemon, so the
 * next daemon (and `mesh down`) can find the process without trusting a bare PID. Heap string.
 */
char *pm_inst_pid_path(const struct pm_inst *i);
/* Log file path of an instance ("out" or "err"). Heap string. */
char *pm_inst_log_path(const struct pm_inst *i, const char *which);
/* Starts the process. Returns 0 or -errno with e = "exec CMD: reason" (status errored). */
int pm_inst_spawn(struct pm_inst *i, struct err *e);
/* Takes back a process an earlier daemon started, if pid is still that process. 0, -ESRCH when
 * it is gone, or another -errno when it could not be checked or watched (-EMFILE): it may run. */
int pm_inst_adopt(struct pm_inst *i);
/*
 * After pm_inst_adopt failed with why (not -ESRCH): the instance keeps its pid, shows launching
 * and is tried again every second (logged), so a process that may run is never started twice.
 * Once adopted it is online (or stopped, when pm_inst_stop was asked meanwhile); once found gone
 * it is started again (or the stop completes).
 */
void pm_inst_adopt_later(struct pm_inst *i, int why);
/* SIGTERM, then SIGKILL after kill_timeout; then `after`. Immediate when nothing runs. */
void pm_inst_stop(struct pm_inst *i, enum pm_after_stop after);
/* Removes the instance from its app and frees it once its handles are closed. */
void pm_inst_destroy(struct pm_inst *i);
/* SIGKILL now to the process of an instance being stopped (a signal cut `kill`'s wait short). */
void pm_inst_kill(struct pm_inst *i);
/* Lets go of the process (daemon exit: it keeps running) and closes the handles. */
void pm_inst_release(struct pm_inst *i);
bool pm_inst_busy(const struct pm_inst *i);
void pm_inst_sample(struct pm_inst *i);
/* PM2's max_memory_restart: restarts an online instance whose RSS, read now, is past its app's
 * limit (logged with PM2's reason; counts one restart). */
void pm_inst_check_memory(struct pm_inst *i);
json_t *pm_inst_to_json(const struct pm_inst *i, bool detail);

/*
 * Takes the running process off the instance without stopping it (the instance has no process
 * after this) and returns it; pm_child_retire stops it later. Not for an instance being stopped.
 * The child frees itself once the process has exited, after calling pm_reload_old_gone: the
 * pointer is valid until then.
 */
struct pm_child *pm_inst_detach(struct pm_inst *i);
/* SIGTERM to a detached process's group, SIGKILL after kill_timeout_ms. */
void pm_child_retire(struct pm_child *c, int64_t kill_timeout_ms);
/*
 * The pidfile of a process a reload replaced while it is being stopped:
 * HOME/pids/NAME-INSTANCE.PID.retired.pid. A daemon killed in the middle of a reload leaves it
 * behind, so the next one (and `mesh down`, which reads every pids/ file) still finds the old
 * process. Heap string.
 */
char *pm_retired_pid_path(const struct pm_inst *i, int pid);
/*
 * Watches process pid, left by an earlier daemon in the middle of a reload (its pidfile, which
 * the child takes over), and stops it as pm_child_retire does. 0, or -errno (-EMFILE) with
 * pidfile still the caller's.
 */
int pm_child_adopt_retired(struct pm_daemon *d, int pid, char *pidfile, int64_t kill_timeout_ms);
/* Sends the signal to the process group of pid (to pid alone when that fails). */
void pm_signal_group(int pid, int sig);

/* reload.c: PM2's reload, one instance at a time (see docs/pm.md). */
void pm_reload_init(struct pm_daemon *d);
/* Reloads the instances marked reload_pending, unless a reload is running already. */
void pm_reload_run(struct pm_daemon *d);
/* The old process of the running reload has exited. */
void pm_reload_old_gone(struct pm_daemon *d);
/* The instance is going away: drops it from the reload. */
void pm_reload_forget(struct pm_inst *i);
/* Daemon exit: the reload stops where it is (an old process being stopped still is). */
void pm_reload_close(struct pm_daemon *d);

/* state.c */
/* Writes the table to state.json. 0, or -errno with e set (and logged). */
int pm_state_save(struct pm_daemon *d, struct err *e);
/* Reads the saved table and adopts or restarts its processes, then stops the processes an earlier
 * daemon was replacing in a reload when it died (their *.retired.pid files). */
void pm_state_load(struct pm_daemon *d);
/* Tries again the *.retired.pid files pm_state_load could not check or watch, or the whole pids
 * directory when it could not read it (out of descriptors): their processes are stopped once
 * they can be watched. */
void pm_retired_retry(struct pm_daemon *d);
/* Frees the list of those files (at exit: they stay on disk for the next daemon). */
void pm_retired_free(struct pm_daemon *d);

/* watch.c: PM2's watch mode (see docs/pm.md). Starts watching when a->spec.watch. */
void pm_watch_start(struct pm_app *a);
/* Stops watching; the watcher is freed once its handles are closed. */
void pm_watch_stop(struct pm_app *a);

/* rotate.c: one pass over the log files on the threadpool, when none is running. */
void pm_rotate_start(struct pm_daemon *d);

#endif
