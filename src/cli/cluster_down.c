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
    struct cluster_pid apps[MAX_APPS], daemon;
    size_t napps = cluster_app_pids(s, n, apps, MAX_APPS);
    bool has_daemon = cluster_pm_daemon(s, n, &daemon);
    size_t stopped = 0;
    struct buf said = BUF_INIT;
    struct err e;

    /* `pm kill` stops the apps gracefully, then the daemon; what survives it goes by PID. */
    if (has_daemon && cluster_pm(s, n, &said, &e, "kill", (char *)NULL) < 0)
        fprintf(stderr, "mesh down: %s: %s\n", n->name, e.msg);
    buf_free(&said); /* down prints one summary for the whole cluster */
    for (size_t i = 0; i < napps; i++) {
        cluster_stop_pid(&apps[i], SIGTERM, APP_STOP_MS);
        stopped++;
    }
    if (has_daemon) {
        cluster_stop_pid(&daemon, SIGTERM, AGENT_STOP_MS);
        stopped++;
    }
    return stopped;
}

/* Stops the process of RUN/<node>/<file> and removes the pidfile. */
static size_t stop_pidfile(const struct cluster_state *s, const struct cluster_node *n,
                           const char *file, int timeout_ms)
{
    char path[PATH_MAX + 64];
    struct cluster_pid p;
    bool stopped =
        cluster_pidfile_live(s, n, file, &p) && cluster_stop_pid(&p, SIGTERM, timeout_ms);

    cluster_path(s, n, file, path, sizeof(path));
    unlink(path);
    return stopped ? 1 : 0;
}

void cluster_down(const struct cluster_state *s, struct cluster_down_result *r)
{
    struct cluster_down_result res = {0};

    for (size_t i = 1; i < s->n_nodes; i++) {
        if (!s->nodes[i].server)
            res.stopped += stop_web_node(s, &s->nodes[i]);
    }
    /* The client agents leave while the servers still run; the servers stop after them. */
    for (size_t i = 1; i < s->n_nodes; i++) {
        if (!s->nodes[i].server)
            res.stopped += stop_pidfile(s, &s->nodes[i], "agent.pid", AGENT_STOP_MS);
    }
    for (size_t i = 1; i < s->n_nodes; i++) {
        if (s->nodes[i].server)
            res.stopped += stop_pidfile(s, &s->nodes[i], "agent.pid", AGENT_STOP_MS);
    }
    res.stopped += stop_pidfile(s, &s->nodes[0], "lb.pid", LB_STOP_MS);
    res.stopped += cluster_haproxy_stop(s);
    res.stopped += stop_pidfile(s, &s->nodes[0], "agent.pid", AGENT_STOP_MS);
    if (s->netns)
        res.namespaces = cluster_netns_teardown(s);
    if (r)
        *r = res;
}

/* Removes the node directories and the state file; the run directory too when empty. */
static int remove_state(const struct cluster_state *s)
{
    char path[PATH_MAX + 64];
    int rc = 0;

    for (size_t i = 0; i < s->n_nodes; i++) {
        snprintf(path, sizeof(path), "%s/%s", s->run_dir, s->nodes[i].name);
        if (cluster_rm_tree(path) < 0)
            rc = -EIO;
    }
    snprintf(path, sizeof(path), "%s/%s", s->run_dir, CLUSTER_STATE_FILE);
    unlink(path);
    rmdir(s->run_dir); /* only when empty: it may hold the user's own files */
    return rc;
}

static void report(const char *run_dir, bool was_up, const struct cluster_down_result *r,
                   bool netns, bool cleanup, bool json)
{
    if (json) {
        json_t *v = json_pack("{s:s, s:b, s:I, s:i, s:b}", "run_dir", run_dir, "was_up", was_up,
                              "stopped", (json_int_t)r->stopped, "namespaces_removed",
                              r->namespaces, "state_removed", cleanup);
        cluster_print_json(v);
        json_decref(v);
        return;
    }
    if (!was_up)
        printf("meshkit is not up (run directory %s); nothing to stop.\n", run_dir);
    else if (!cleanup || r->stopped) {
        printf("meshkit is down: %zu process(es) stopped", r->stopped);
        if (netns)
            printf(", %d network namespace(s) removed", r->namespaces);
        printf(cleanup ? ".\n" : ". State and logs are in %s ('mesh cleanup' removes them).\n",
               run_dir);
    }
    if (cleanup)
        printf("Removed the cluster's state and logs from %s.\n", run_dir);
}

static int down_or_cleanup(int argc, char **argv, const char *usage, bool cleanup)
{
    struct cluster_cmd c = {0};
    struct flag flags[] = {CLUSTER_CMD_FLAGS(&c)};
    struct cluster_down_result r = {0};
    struct cluster_state s;
    struct err e;
    const char *run_dir;
    int first, status = 1, rc;
    bool was_up;

    if (!cli_parse_flags(flags, ARRAY_LEN(flags), usage, argc - 1, argv + 1, &first, &status))
        goto out;
    status = 1;
    run_dir = cluster_run_dir(c.run_dir);
    rc = cluster_state_load(run_dir, &s, &e);
    if (rc == -ENOENT) {
        report(run_dir, false, &r, false, false, c.json);
        status = 0;
        goto out;
    }
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", argv[0], e.msg);
        goto out;
    }
    /* Even when nothing runs: a crash may have left namespaces and pidfiles behind. */
    was_up = cluster_is_up(&s);
    cluster_down(&s, &r);
    status = cleanup && remove_state(&s) < 0 ? 1 : 0;
    report(s.run_dir, was_up, &r, s.netns, cleanup, c.json);
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
