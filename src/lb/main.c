/*
 * `mesh lb`'s control thread: configuration, the backend, the stats server, the registry watch,
 * health checks, the worker threads, signals. Workers and the stats server borrow the startup
 * configuration for the process's life; a reload (SIGHUP) applies what can change without
 * them (servers, registry, checks, log level) and names what needs a restart.
 */
#include "lb/lb_main.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "lib/alloc.h"
#include "lib/err.h"
#include "lib/file.h"
#include "lib/flags.h"
#include "lib/log.h"
#include "lib/pollsock.h"
#include "lib/rlimit.h"
#include "lib/sd_notify.h"
#include "lb/config.h"
#include "lb/health.h"
#include "lb/lb.h"
#include "lb/stats.h"
#include "lb/watch.h"
#include "lb/workers.h"

struct lb_ctl {
    uv_loop_t loop;
    int argc;
    char **argv;
    struct lb_config cfg; /* from startup: borrowed by the workers and the stats server */
    struct lb_backend backend;
    struct lb_counters frontend;
    struct lb_stats *stats;
    struct lb_watch *watch;
    struct lb_health *health;
    struct lb_workers *workers;
    uv_signal_t sig_term, sig_int, sig_hup;
    bool draining;
};

static void on_publish(void *data)
{
    struct lb_ctl *ctl = data;

    if (ctl->health)
        lb_health_sync(ctl->health);
}

static void set_log_level(const char *name)
{
    enum log_level lvl;

    if (log_level_parse(name, &lvl))
        log_min_level = lvl;
}

/* ---- reload ------------------------------------------------------------------------------ */

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Logs each setting that changed in the file but only takes effect after a restart. */
static void log_restart_needed(const struct lb_config *old, const struct lb_config *cur)
{
    const struct {
        const char *name;
        bool changed;
    } fields[] = {
        {"bind", !same_str(old->bind_addr, cur->bind_addr)},
        {"port", old->port != cur->port},
        {"workers", old->workers != cur->workers},
        {"io", old->io != cur->io},
        {"maxconn", old->maxconn != cur->maxconn},
        {"backend", !same_str(old->backend_name, cur->backend_name)},
        {"balance", old->balance != cur->balance},
        {"server_maxconn", old->server_maxconn != cur->server_maxconn},
        {"queue_max", old->queue_max != cur->queue_max},
        {"eject_after_errors", old->eject_after_errors != cur->eject_after_errors},
        {"retries", old->retries != cur->retries},
        {"redispatch", old->redispatch != cur->redispatch},
        {"timeout_connect", old->timeout_connect_ns != cur->timeout_connect_ns},
        {"timeout_client", old->timeout_client_ns != cur->timeout_client_ns},
        {"timeout_server", old->timeout_server_ns != cur->timeout_server_ns},
        {"timeout_queue", old->timeout_queue_ns != cur->timeout_queue_ns},
        {"timeout_keepalive", old->timeout_keepalive_ns != cur->timeout_keepalive_ns},
        {"timeout_http_request", old->timeout_http_request_ns != cur->timeout_http_request_ns},
        {"x_forwarded_for", old->x_forwarded_for != cur->x_forwarded_for},
        {"forwarded", old->forwarded != cur->forwarded},
        {"via", old->via != cur->via},
        {"errorfile_503", !same_str(old->errorfile_503, cur->errorfile_503)},
        {"stats_addr", !same_str(old->stats_addr, cur->stats_addr)},
        {"stats_port", old->stats_port != cur->stats_port},
        {"stats_path", !same_str(old->stats_path, cur->stats_path)},
        {"stats_user", !same_str(old->stats_user, cur->stats_user)},
        {"stats_password", !same_str(old->stats_password, cur->stats_password)},
        {"stats_refresh", old->stats_refresh_s != cur->stats_refresh_s},
    };

    for (size_t i = 0; i < ARRAY_LEN(fields); i++)
        if (fields[i].changed)
            log_warn("reload: %s changed; it takes effect after a restart", fields[i].name);
}

static void lb_reload(struct lb_ctl *ctl)
{
    struct lb_config next;
    struct err e = {""};

    if (lb_config_reload(&ctl->cfg, ctl->argc, ctl->argv, &next, &e) < 0) {
        log_error("reload: %s; keeping the running configuration", e.msg);
        return;
    }
    if (lb_watch_configure(ctl->watch, &next, &e) < 0) {
        log_error("reload: %s; keeping the running configuration", e.msg);
        lb_config_free(&next);
        return;
    }
    lb_health_configure(ctl->health, &next);
    set_log_level(next.log_level);
    /* Compared with the startup configuration, which is what the workers still run with. */
    log_restart_needed(&ctl->cfg, &next);
    log_info("reload: configuration applied");
    lb_config_free(&next);
}

/* ---- shutdown ---------------------------------------------------------------------------- */

/* Stops everything on the control loop; uv_run returns once the handles are closed. */
static void lb_stop(struct lb_ctl *ctl)
{
    if (ctl->draining)
        return;
    ctl->draining = true;
    if (ctl->workers)
        lb_workers_drain(ctl->workers);
    lb_watch_free(ctl->watch);
    ctl->watch = NULL;
    lb_health_free(ctl->health);
    ctl->health = NULL;
    lb_stats_close(ctl->stats);
    ctl->stats = NULL;
    /* closed: a second SIGTERM or SIGINT now ends the process at once */
    uv_close((uv_handle_t *)&ctl->sig_term, NULL);
    uv_close((uv_handle_t *)&ctl->sig_int, NULL);
    uv_close((uv_handle_t *)&ctl->sig_hup, NULL);
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct lb_ctl *ctl = s->data;

    if (signum == SIGHUP) {
        log_info("caught SIGHUP: reloading %s",
                 ctl->cfg.config_file ? ctl->cfg.config_file : "(no config file)");
        sd_notify_reloading();
        lb_reload(ctl);
        sd_notify_ready("proxying");
        return;
    }
    log_info("caught %s: draining", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    sd_notify_stopping();
    lb_stop(ctl);
}

/* ---- startup ----------------------------------------------------------------------------- */

static void backend_init(struct lb_backend *b, const struct lb_config *cfg)
{
    memset(b, 0, sizeof(*b));
    lb_counters_init(&b->c);
    b->name = cfg->backend_name;
    b->balance = cfg->balance;
    pthread_mutex_init(&b->lock, NULL);
    atomic_init(&b->registry_ok, 1);
}

/* Starts the parts in order; on error e is set and what started is left for lb_stop. */
static int lb_start(struct lb_ctl *ctl, struct err *e)
{
    int rc;

    if (ctl->cfg.stats_port && (rc = lb_stats_start(&ctl->stats, &ctl->loop, &ctl->cfg,
                                                    &ctl->backend, &ctl->frontend, e)) < 0)
        return rc;
    if ((rc = lb_watch_start(&ctl->watch, &ctl->loop, &ctl->cfg, &ctl->backend, on_publish, ctl,
                             e)) < 0)
        return rc;
    ctl->health = lb_health_new(&ctl->loop, &ctl->cfg, &ctl->backend);
    const char *why;
    int io = pollsock_use(ctl->cfg.io, &why);
    if (io < 0)
        return err_set(e, "-io uring: %s", why), io;
    if (ctl->cfg.io == POLLSOCK_AUTO && io == POLLSOCK_EPOLL)
        log_info("socket I/O: epoll (io_uring: %s)", why);
    else
        log_info("socket I/O: %s", pollsock_backend_name((enum pollsock_backend)io));
    if ((rc = lb_workers_start(&ctl->workers, &ctl->cfg, &ctl->loop, &ctl->backend, &ctl->frontend,
                               e)) < 0)
        return rc;
    if (ctl->cfg.pid_file && (rc = file_write_pid(ctl->cfg.pid_file, e)) < 0)
        return rc;
    uv_signal_start(&ctl->sig_term, on_signal, SIGTERM);
    uv_signal_start(&ctl->sig_int, on_signal, SIGINT);
    uv_signal_start(&ctl->sig_hup, on_signal, SIGHUP);
    log_info("listening on %s:%d with %d worker%s, backend %s; stats on %s:%d%s",
             ctl->cfg.bind_addr, ctl->cfg.port, ctl->cfg.workers, ctl->cfg.workers == 1 ? "" : "s",
             ctl->backend.name, ctl->cfg.stats_addr, ctl->cfg.stats_port, ctl->cfg.stats_path);
    sd_notify_ready("proxying");
    return 0;
}

int lb_main(int argc, char **argv)
{
    struct lb_ctl *ctl = xcalloc(1, sizeof(*ctl));
    struct err e = {""};
    int status = 1;

    log_set_component("lb");
    ctl->argc = argc - 1;
    ctl->argv = argv + 1;
    int rc = lb_config_load(&ctl->cfg, ctl->argc, ctl->argv, &e);
    if (rc != 0) {
        if (rc != FLAGS_HELP)
            fprintf(stderr, "mesh lb: %s\n", e.msg);
        free(ctl);
        return rc == FLAGS_HELP ? 0 : 1;
    }
    set_log_level(ctl->cfg.log_level);
    /* Two descriptors per proxied connection: maxconn is far past a soft limit of 1024. */
    rlimit_nofile_raise();
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&ctl->loop);
    /* before the first counter set: the worker count holds until exit (see lb_reload) */
    lb_shards_init((unsigned)(ctl->cfg.workers >= 1 ? ctl->cfg.workers : 1));
    lb_counters_init(&ctl->frontend);
    backend_init(&ctl->backend, &ctl->cfg);
    uv_signal_init(&ctl->loop, &ctl->sig_term);
    uv_signal_init(&ctl->loop, &ctl->sig_int);
    uv_signal_init(&ctl->loop, &ctl->sig_hup);
    ctl->sig_term.data = ctl->sig_int.data = ctl->sig_hup.data = ctl;

    rc = lb_start(ctl, &e);
    if (rc < 0) {
        fprintf(stderr, "mesh lb: %s\n", e.msg);
        lb_stop(ctl);
    } else {
        status = 0;
    }
    uv_run(&ctl->loop, UV_RUN_DEFAULT);
    /* the workers finish the requests in flight on their own loops (a single one on this) */
    if (ctl->workers)
        lb_workers_join(ctl->workers);
    ctl->workers = NULL;
    pollsock_loop_close(&ctl->loop); /* a single worker's ring, if it had one */
    if (uv_loop_close(&ctl->loop) != 0)
        log_warn("control loop closed with handles still open");
    if (status == 0 && ctl->cfg.pid_file)
        unlink(ctl->cfg.pid_file);
    lb_backend_publish(&ctl->backend, NULL);
    pthread_mutex_destroy(&ctl->backend.lock);
    lb_counters_close(&ctl->backend.c);
    lb_counters_close(&ctl->frontend);
    if (status == 0)
        log_info("stopped");
    lb_config_free(&ctl->cfg);
    free(ctl);
    return status;
}
