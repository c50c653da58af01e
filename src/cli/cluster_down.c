/*
 * `mesh down` and `mesh cleanup`: stop what `up` started, in the order that loses nothing:
 * webapps first (they deregister and drain), then the web agents (they leave the cluster), the
 * load balancer (drains), the registry server last; then the namespaces. Every step works on
 * what is left, so down after a partial up, a kill-node or a second down is safe.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_internal.h"
#include "cli/cluster.h"
#include "lib/alloc.h"

#define MAX_APPS      256
#define APP_STOP_MS   12000 /* webapps drain their requests (up to -kill-timeout 10s) */
#define AGENT_STOP_MS 5000
#define LB_STOP_MS    10000

#define DOWN_USAGE                                                                                 \
    "mesh down [options]\n\n"                                                                      \
    "  Stops everything 'mesh up' started and removes its network namespaces. State and\n"         \
    "  logs stay in the run directory ('mesh cleanup' removes them)."

#define CLEANUP_USAGE                                                                              \
    "mesh cleanup [options]\n\n"                                                                   \
    "  'mesh down', then removes the cluster's state and logs from the run directory."

/* A web node's supervisor and apps. Returns the processes stopped. */
static size_t stop_web_node(const struct cluster_state *s, const struct cluster_node *n)
{
    pid_t apps[MAX_APPS];
    size_t napps = cluster_webapp_pids(s, n, apps, MAX_APPS);
    pid_t daemon = cluster_pm_daemon_pid(s, n);
    size_t stopped = 0;
    struct buf said = BUF_INIT;
    struct err e;

    /* `pm kill` stops the apps gracefully, then the daemon; what survives it goes by PID. */
    if (daemon && cluster_pm(s, n, &said, &e, "kill", NULL) < 0)
        fprintf(stderr, "mesh down: %s: %s\n", n->name, e.msg);
    buf_free(&said); /* down prints one summary for the whole cluster */
    for (size_t i = 0; i < napps; i++) {
        cluster_stop_pid(apps[i], s->webapp, SIGTERM, APP_STOP_MS);
        stopped++;
    }
    if (daemon) {
        cluster_stop_pid(daemon, s->mesh, SIGTERM, AGENT_STOP_MS);
        stopped++;
    }
    return stopped;
}

/* Stops the process of RUN/<node>/<file> and removes the pidfile. */
static size_t stop_pidfile(const struct cluster_state *s, const struct cluster_node *n,
                           const char *file, int timeout_ms)
{
    char path[PATH_MAX + 64];
    bool stopped;

    cluster_path(s, n, file, path, sizeof(path));
    stopped = cluster_stop_pid(cluster_pidfile_read(path), s->mesh, SIGTERM, timeout_ms);
    unlink(path);
    return stopped ? 1 : 0;
}

size_t cluster_down(const struct cluster_state *s, bool quiet)
{
    size_t stopped = 0;
    int removed = 0;

    for (size_t i = 1; i < s->n_nodes; i++)
        stopped += stop_web_node(s, &s->nodes[i]);
    for (size_t i = 1; i < s->n_nodes; i++)
        stopped += stop_pidfile(s, &s->nodes[i], "agent.pid", AGENT_STOP_MS);
    stopped += stop_pidfile(s, &s->nodes[0], "lb.pid", LB_STOP_MS);
    stopped += stop_pidfile(s, &s->nodes[0], "agent.pid", AGENT_STOP_MS);
    if (s->netns)
        removed = cluster_netns_teardown(s);
    if (!quiet) {
        printf("meshkit is down: %zu process(es) stopped", stopped);
        if (s->netns)
            printf(", %d network namespace(s) removed", removed);
        printf(". State and logs are in %s ('mesh cleanup' removes them).\n", s->run_dir);
    }
    return stopped;
}

static int down_or_cleanup(int argc, char **argv, const char *usage, bool cleanup)
{
    struct cluster_cmd c = {0};
    struct flag flags[] = {CLUSTER_CMD_FLAGS(&c)};
    struct cluster_state s;
    struct err e;
    const char *run_dir;
    int first, status = 1, rc;

    if (!cli_parse_flags(flags, ARRAY_LEN(flags), usage, argc - 1, argv + 1, &first, &status))
        goto out;
    run_dir = cluster_run_dir(c.run_dir);
    rc = cluster_state_load(run_dir, &s, &e);
    if (rc == -ENOENT) {
        printf("meshkit is not up: no cluster in %s; nothing to %s.\n", run_dir,
               cleanup ? "clean up" : "stop");
        status = 0;
        goto out;
    }
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", argv[0], e.msg);
        goto out;
    }
    if (!cluster_is_up(&s)) {
        cluster_down(&s, true); /* namespaces or pidfiles a crash left */
        if (!cleanup)
            printf("meshkit is not up (run directory %s); nothing to stop.\n", s.run_dir);
    } else {
        cluster_down(&s, cleanup);
    }
    status = 0;
    if (cleanup) {
        char path[PATH_MAX + 64];
        for (size_t i = 0; i < s.n_nodes; i++) {
            snprintf(path, sizeof(path), "%s/%s", s.run_dir, s.nodes[i].name);
            if (cluster_rm_tree(path) < 0)
                status = 1;
        }
        snprintf(path, sizeof(path), "%s/%s", s.run_dir, CLUSTER_STATE_FILE);
        unlink(path);
        rmdir(s.run_dir); /* only when empty: it may hold the user's own files */
        printf("meshkit is down and its state and logs are removed from %s.\n", s.run_dir);
    }
out:
    free(c.run_dir);
    return status;
}

int cli_down(int argc, char **argv)
{
    return down_or_cleanup(argc, argv, DOWN_USAGE, false);
}

int cli_cleanup(int argc, char **argv)
{
    return down_or_cleanup(argc, argv, CLEANUP_USAGE, true);
}
