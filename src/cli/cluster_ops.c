/*
 * The operator commands that change the cluster (cluster_utils.sh's): stop, start, reload and
 * scale a web node's service, kill a whole node hard and bring it back, reload the load
 * balancer.
 * Each drives the node's supervisor as a `mesh pm` process and waits, bounded, until the
 * registry shows the result, so a script can run the next step at once.
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
#include "lib/duration.h"

#define OP_WAIT_MS 30000
#define MAX_KILL   256

enum op { OP_STOP, OP_START, OP_RELOAD, OP_SCALE_UP, OP_SCALE_DOWN, OP_KILL, OP_REVIVE };

struct op_def {
    const char *name;
    const char *usage;
};

static const struct op_def ops[] = {
    [OP_STOP] = {"stop-service",
                 "mesh stop-service [options] NODE\n\n"
                 "  Stops the web service on a node (its supervisor stops every instance\n"
                 "  gracefully: they deregister and drain, so no request fails)."},
    [OP_START] = {"start-service",
                  "mesh start-service [options] NODE\n\n"
                  "  Starts the web service on a node again and waits until its instances pass."},
    [OP_RELOAD] = {"reload-service",
                   "mesh reload-service [options] NODE\n\n"
                   "  Replaces every web process on a node, one instance at a time, with no\n"
                   "  failed request (mesh pm reload: the new process listens beside the old\n"
                   "  one, which hands it the port and the registration, then drains). Waits\n"
                   "  until the node's instances pass."},
    [OP_SCALE_UP] = {"scale-up",
                     "mesh scale-up [options] NODE\n\n"
                     "  Adds one instance of the web service on a node and waits until it passes."},
    [OP_SCALE_DOWN] = {"scale-down",
                       "mesh scale-down [options] NODE\n\n"
                       "  Removes one instance of the web service on a node (it deregisters and\n"
                       "  drains first). The last instance stays: stop-service stops it."},
    [OP_KILL] = {"kill-node",
                 "mesh kill-node [options] NODE\n\n"
                 "  Hard failure of a web node: SIGKILL of its agent, supervisor and apps, so\n"
                 "  nothing deregisters. Waits until the server marks the node failed.\n"
                 "  Of a registry server (up -servers 3): SIGKILL of the server (on loadbalancer\n"
                 "  the load balancer stays); waits until the others agree on a leader."},
    [OP_REVIVE] = {"revive-node",
                   "mesh revive-node [options] NODE\n\n"
                   "  Starts a killed node's agent and supervisor again (the supervisor brings\n"
                   "  its apps back) and waits until its instances pass. A registry server\n"
                   "  rejoins and catches up; waits until every server names the leader."},
};

/*
 * Instances of the web service the node's supervisor knows, or -errno with e set. *online
 * (when not NULL) gets how many of them are online.
 */
static int pm_count(const struct cluster_state *s, const struct cluster_node *n, int *online,
                    struct err *e)
{
    json_t *apps = cluster_pm_ls(s, n, e);
    int count = 0, up = 0;

    if (!apps)
        return -EIO;
    for (size_t i = 0; i < json_array_size(apps); i++) {
        json_t *a = json_array_get(apps, i);
        const char *name = json_string_value(json_object_get(a, "name"));
        const char *status = json_string_value(json_object_get(a, "status"));
        if (name && strcmp(name, CLUSTER_SERVICE) == 0) {
            count++;
            up += status && strcmp(status, "online") == 0;
        }
    }
    json_decref(apps);
    if (online)
        *online = up;
    return count;
}

static int pm_instances(const struct cluster_state *s, const struct cluster_node *n, struct err *e)
{
    return pm_count(s, n, NULL, e);
}

/*
 * Waits until every instance the supervisor knows is online: after a revive the registry may
 * still hold the instances' last (passing) state until the apps have re-registered.
 */
static int pm_wait_online(const struct cluster_state *s, const struct cluster_node *n,
                          struct err *e)
{
    int64_t deadline = cluster_now_ms() + OP_WAIT_MS;
    int online = 0, count;

    while ((count = pm_count(s, n, &online, e)) >= 0 && online < count) {
        if (cluster_now_ms() >= deadline)
            return err_set(e, "%s: %d of %d instance(s) online after %d s", n->name, online, count,
                           OP_WAIT_MS / 1000);
        cluster_sleep_ms(100);
    }
    return count;
}

/* `mesh pm ... ARGS` on the node; a non-zero exit becomes -EIO. */
static int pm_do(const struct cluster_state *s, const struct cluster_node *n, const char *a1,
                 const char *a2, const char *a3, struct err *e)
{
    struct buf listing = BUF_INIT; /* pm's table after the change; the command says its own */
    int rc = cluster_pm(s, n, &listing, e, a1, a2, a3, (char *)NULL);

    buf_free(&listing);
    if (rc > 0) {
        err_set(e, "mesh pm %s %s on %s exited with status %d", a1, a2, n->name, rc);
        rc = -EIO;
    }
    return rc;
}

/* SIGKILL of everything of a web node: supervisor first, so it restarts nothing. */
static int kill_node(const struct cluster_state *s, const struct cluster_node *n, struct err *e)
{
    struct cluster_pid apps[MAX_KILL], daemon, agent;
    size_t napps = cluster_app_pids(s, n, apps, MAX_KILL);
    int killed = 0;

    if (cluster_pm_daemon(s, n, &daemon) && cluster_stop_pid(&daemon, SIGKILL, 2000))
        killed++;
    if (cluster_pidfile_live(s, n, "agent.pid", &agent) && cluster_stop_pid(&agent, SIGKILL, 2000))
        killed++;
    for (size_t i = 0; i < napps; i++)
        killed += cluster_stop_pid(&apps[i], SIGKILL, 2000) ? 1 : 0;
    if (!killed)
        return err_set(e, "node %s is not running (revive-node starts it)", n->name);
    return killed;
}

static int revive_node(const struct cluster_state *s, const struct cluster_node *n, struct err *e)
{
    int rc;

    if (cluster_pidfile_live(s, n, "agent.pid", NULL))
        return err_set(e, "node %s's agent is running", n->name);
    if ((rc = cluster_start_agent(s, n, e)) < 0)
        return rc;
    /* Any supervisor command starts its daemon, which brings the recorded apps back. */
    return pm_wait_online(s, n, e);
}

/* Both of a web node's daemons run: its agent and its supervisor. */
static bool node_running(const struct cluster_state *s, const struct cluster_node *n)
{
    return cluster_pidfile_live(s, n, "agent.pid", NULL) && cluster_pm_daemon(s, n, NULL);
}

/* Runs the operation; returns the instances the node should end with passing, or -errno. */
static int run_op(enum op op, const struct cluster_state *s, const struct cluster_node *n,
                  struct err *e)
{
    int count, rc;

    switch (op) {
    case OP_STOP:
        return (rc = pm_do(s, n, "stop", CLUSTER_SERVICE, NULL, e)) < 0 ? rc : 0;
    case OP_START:
        if ((rc = pm_do(s, n, "restart", CLUSTER_SERVICE, NULL, e)) < 0)
            return rc;
        return pm_instances(s, n, e);
    case OP_RELOAD:
        if ((rc = pm_do(s, n, "reload", CLUSTER_SERVICE, NULL, e)) < 0)
            return rc;
        return pm_instances(s, n, e);
    case OP_SCALE_UP:
        if ((rc = pm_do(s, n, "scale", CLUSTER_SERVICE, "+1", e)) < 0)
            return rc;
        return pm_instances(s, n, e);
    case OP_SCALE_DOWN:
        if ((count = pm_instances(s, n, e)) < 0)
            return count;
        if (count <= 1)
            return err_set(e, "%s runs %d instance(s) of %s; stop-service stops the last one",
                           n->name, count, CLUSTER_SERVICE);
        if ((rc = pm_do(s, n, "scale", CLUSTER_SERVICE, "-1", e)) < 0)
            return rc;
        return pm_instances(s, n, e);
    case OP_KILL:
        return (rc = kill_node(s, n, e)) < 0 ? rc : 0;
    case OP_REVIVE:
        return revive_node(s, n, e);
    }
    return -EINVAL;
}

/*
 * kill-node and revive-node of a registry server: the server alone (the load balancer on the
 * loadbalancer node is a process of its own and stays). Then waits until the running servers
 * agree on a leader, unless too few run to elect one. Returns 0 with *leader set (NULL when no
 * majority runs), or -errno with e set.
 */
static int server_op(enum op op, const struct cluster_state *s, const struct cluster_node *n,
                     const struct cluster_node **leader, struct err *e)
{
    size_t total = cluster_n_servers(s), running = 0;
    struct cluster_pid agent;
    int rc;

    *leader = NULL;
    if (total == 1)
        return err_set(e,
                       "%s runs the only registry server: killing it stops the registry "
                       "('mesh up -servers 3' replicates it)",
                       n->name);
    if (op == OP_KILL) {
        if (!cluster_pidfile_live(s, n, "agent.pid", &agent))
            return err_set(e, "%s's registry server is not running (revive-node starts it)",
                           n->name);
        cluster_stop_pid(&agent, SIGKILL, 2000);
    } else {
        if (cluster_pidfile_live(s, n, "agent.pid", NULL))
            return err_set(e, "%s's registry server is running", n->name);
        if ((rc = cluster_start_agent(s, n, e)) < 0)
            return rc;
    }
    for (size_t i = 0; i < s->n_nodes; i++)
        running += s->nodes[i].server && cluster_pidfile_live(s, &s->nodes[i], "agent.pid", NULL);
    if (running <= total / 2)
        return 0; /* no majority: no leader until a server comes back */
    return cluster_wait_leader(s, leader, OP_WAIT_MS, e);
}

static void report_server(enum op op, const struct cluster_state *s, const struct cluster_node *n,
                          const struct cluster_node *leader, bool json)
{
    if (json) {
        json_t *v = json_pack("{s:s, s:s, s:s?}", "node", n->name, "action", ops[op].name, "leader",
                              leader ? leader->name : NULL);
        cluster_print_json(v);
        json_decref(v);
        return;
    }
    if (op == OP_KILL)
        printf("%s's registry server killed (SIGKILL)%s; ", n->name,
               n == &s->nodes[0] ? ", the load balancer runs on" : "");
    else
        printf("%s's registry server revived; ", n->name);
    if (leader)
        printf("%s leads the registry.\n", leader->name);
    else
        printf("no majority of the %zu servers runs: the registry has no leader until one is "
               "revived.\n",
               cluster_n_servers(s));
}

static void report(enum op op, const struct cluster_node *n, int want, bool json)
{
    static const char *const done[] = {
        [OP_STOP] = "stopped",       [OP_START] = "started",          [OP_RELOAD] = "reloaded",
        [OP_SCALE_UP] = "scaled up", [OP_SCALE_DOWN] = "scaled down", [OP_KILL] = "killed",
        [OP_REVIVE] = "revived"};

    if (json) {
        json_t *v =
            json_pack("{s:s, s:s, s:i}", "node", n->name, "action", ops[op].name, "passing", want);
        cluster_print_json(v);
        json_decref(v);
        return;
    }
    if (op == OP_KILL)
        printf("%s killed (SIGKILL); the registry marks it failed and the load balancer routes "
               "around it.\n",
               n->name);
    else
        printf("%s: %s %s; %d instance(s) passing.\n", n->name, CLUSTER_SERVICE, done[op], want);
}

static int node_op(enum op op, int argc, char **argv)
{
    struct cluster_cmd c = {0};
    struct flag flags[] = {CLUSTER_CMD_FLAGS(&c)};
    struct cluster_state s;
    struct cluster_node *n;
    struct err e;
    int status = 1, want;

    if (!cluster_cmd_begin(&c, flags, ARRAY_LEN(flags), ops[op].usage, argc, argv, 1, &status, &s))
        goto out;
    status = 1;
    if (!(n = cluster_node_find(&s, c.arg, &e)) || (n->server && op != OP_KILL && op != OP_REVIVE &&
                                                    err_set(&e, "%s is not a web node", n->name))) {
        fprintf(stderr, "%s: %s\n", argv[0], e.msg);
        goto out;
    }
    if (n->server) {
        const struct cluster_node *leader;
        if (server_op(op, &s, n, &leader, &e) < 0) {
            fprintf(stderr, "%s: %s\n", argv[0], e.msg);
            goto out;
        }
        report_server(op, &s, n, leader, c.json);
        status = 0;
        goto out;
    }
    /* The supervisor commands would start a fresh, empty supervisor on a killed node. */
    if (op != OP_KILL && op != OP_REVIVE && !node_running(&s, n)) {
        fprintf(stderr, "%s: node %s is down (killed?); 'mesh revive-node %s' brings it back\n",
                argv[0], n->name, n->name);
        goto out;
    }
    /* A killed node is failed after the failure timeout; allow that plus a margin. */
    int wait_ms = OP_WAIT_MS + (int)(s.failure_timeout_ns / DURATION_MS);
    if ((want = run_op(op, &s, n, &e)) < 0 ||
        cluster_wait_passing(&s, n->name, want, wait_ms, &e) < 0) {
        fprintf(stderr, "%s: %s\n", argv[0], e.msg);
        goto out;
    }
    report(op, n, want, c.json);
    status = 0;
out:
    free(c.run_dir);
    return status;
}

int cli_stop_service(int argc, char **argv)
{
    return node_op(OP_STOP, argc, argv);
}

int cli_start_service(int argc, char **argv)
{
    return node_op(OP_START, argc, argv);
}

int cli_reload_service(int argc, char **argv)
{
    return node_op(OP_RELOAD, argc, argv);
}

int cli_scale_up(int argc, char **argv)
{
    return node_op(OP_SCALE_UP, argc, argv);
}

int cli_scale_down(int argc, char **argv)
{
    return node_op(OP_SCALE_DOWN, argc, argv);
}

int cli_kill_node(int argc, char **argv)
{
    return node_op(OP_KILL, argc, argv);
}

int cli_revive_node(int argc, char **argv)
{
    return node_op(OP_REVIVE, argc, argv);
}

int cli_reload_lb(int argc, char **argv)
{
    struct cluster_cmd c = {0};
    struct flag flags[] = {CLUSTER_CMD_FLAGS(&c)};
    struct cluster_state s;
    struct cluster_pid lb;
    pid_t pid;
    int status = 1;

    if (!cluster_cmd_begin(
            &c, flags, ARRAY_LEN(flags),
            "mesh reload-lb [options]\n\n"
            "  Makes mesh lb re-read its configuration (SIGHUP); no connection drops.",
            argc, argv, 0, &status, &s))
        goto out;
    status = 1;
    if (s.lb_haproxy) {
        struct err e;
        if (cluster_haproxy_reload(&s, &pid, &e) < 0) {
            fprintf(stderr, "%s: %s\n", argv[0], e.msg);
            goto out;
        }
    } else if (!cluster_pidfile_live(&s, &s.nodes[0], "lb.pid", &lb) || kill(lb.pid, SIGHUP) != 0) {
        fprintf(stderr, "%s: the load balancer is not running\n", argv[0]);
        goto out;
    } else {
        pid = lb.pid;
    }
    if (c.json) {
        json_t *v = json_pack("{s:s, s:i}", "action", "reload-lb", "pid", (int)pid);
        cluster_print_json(v);
        json_decref(v);
    } else if (s.lb_haproxy) {
        printf("Sent SIGUSR2 to HAProxy's master (pid %d): new workers take the current "
               "config, the old ones finish their connections.\n",
               (int)pid);
    } else {
        printf("Sent SIGHUP to mesh lb (pid %d): it re-reads its configuration without dropping "
               "connections.\n",
               (int)pid);
    }
    status = 0;
out:
    free(c.run_dir);
    return status;
}
