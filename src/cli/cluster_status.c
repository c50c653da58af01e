/*
 * The read-only operator commands: `mesh status` (everything at a glance), `services`,
 * `nodes`, `health` and `lb-status`. Each prints a view (cluster_view.c) as a table, or as JSON
 * with --json.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_internal.h"
#include "cli/cluster.h"
#include "lib/alloc.h"

static const struct cluster_column node_cols[] = {
    {"NODE", "node", 0},
    {"ADDRESS", "address", 0},
    {"AGENT", "status", CLUSTER_COL_STATUS},
    {"CHECKS", "checks", 0},
};
static const struct cluster_column server_cols[] = {
    {"SERVER", "node", 0},
    {"API", "address", 0},
    {"RAFT", "state", 0},
    {"TERM", "term", 0},
    {"COMMIT", "commit_index", 0},
    {"APPLIED", "applied_index", 0},
    {"LAST LOG", "last_log_index", 0},
};
static const struct cluster_column check_cols[] = {
    {"NODE", "node", 0},
    {"CHECK", "check", 0},
    {"SERVICE", "service", 0},
    {"STATUS", "status", CLUSTER_COL_STATUS},
    {"OUTPUT", "output", CLUSTER_COL_LINES},
};
static const struct cluster_column instance_cols[] = {
    {"SERVICE", "service", 0}, {"ID", "id", 0},     {"NODE", "node", 0},
    {"ADDRESS", "address", 0}, {"PORT", "port", 0}, {"STATUS", "status", CLUSTER_COL_STATUS},
};
static const struct cluster_column app_cols[] = {
    {"NODE", "node", 0},         {"APP", "name", 0},
    {"INSTANCE", "instance", 0}, {"PID", "pid", 0},
    {"PORT", "port", 0},         {"STATUS", "status", CLUSTER_COL_STATUS},
    {"RESTARTS", "restarts", 0}, {"MEMORY", "memory", CLUSTER_COL_BYTES},
};
static const struct cluster_column lb_cols[] = {
    {"SERVER", "server", 0},  {"ADDRESS", "address", 0}, {"STATUS", "status", CLUSTER_COL_STATUS},
    {"CHECK", "check", 0},    {"ACTIVE", "active", 0},   {"TOTAL", "total", 0},
    {"5XX", "errors_5xx", 0},
};

struct view_cmd {
    const char *usage;
    json_t *(*fetch)(const struct cluster_state *s, struct err *e);
    const struct cluster_column *cols;
    size_t ncols;
};

/* Exit status 2 from `health` when a check is not passing, for scripts. */
static int all_passing(const json_t *checks)
{
    for (size_t i = 0; i < json_array_size(checks); i++) {
        const char *st = json_string_value(json_object_get(json_array_get(checks, i), "status"));
        if (!st || strcmp(st, "passing") != 0)
            return 2;
    }
    return 0;
}

static int view_cmd_run(const struct view_cmd *vc, int argc, char **argv)
{
    struct cluster_cmd c = {0};
    struct flag flags[] = {CLUSTER_CMD_FLAGS(&c)};
    struct cluster_state s;
    struct buf out = BUF_INIT;
    struct err e;
    json_t *view = NULL;
    int status = 1;

    if (!cluster_cmd_begin(&c, flags, ARRAY_LEN(flags), vc->usage, argc, argv, 0, &status, &s))
        goto out;
    status = 1;
    if (!(view = vc->fetch(&s, &e))) {
        fprintf(stderr, "%s: %s\n", argv[0], e.msg);
        goto out;
    }
    if (c.json) {
        cluster_print_json(view);
    } else {
        cluster_view_render(view, vc->cols, vc->ncols, cluster_use_color(), &out);
        fwrite(out.data, 1, out.len, stdout);
    }
    status = vc->fetch == cluster_view_checks ? all_passing(view) : 0;
out:
    json_decref(view);
    buf_free(&out);
    free(c.run_dir);
    return status;
}

int cli_nodes(int argc, char **argv)
{
    static const struct view_cmd vc = {
        "mesh nodes [options]\n\n  The cluster's nodes: address, agent status, health checks.",
        cluster_view_nodes, node_cols, ARRAY_LEN(node_cols)};
    return view_cmd_run(&vc, argc, argv);
}

int cli_health(int argc, char **argv)
{
    static const struct view_cmd vc = {
        "mesh health [options]\n\n"
        "  Every health check in the cluster. Exits 2 when one is not passing.",
        cluster_view_checks, check_cols, ARRAY_LEN(check_cols)};
    return view_cmd_run(&vc, argc, argv);
}

int cli_services_list(int argc, char **argv)
{
    static const struct view_cmd vc = {
        "mesh services [options]\n\n"
        "  The services registered in the cluster, one row per instance with its health.\n"
        "  (mesh services register|deregister talk to an agent: see mesh services -help.)",
        cluster_view_instances, instance_cols, ARRAY_LEN(instance_cols)};
    return view_cmd_run(&vc, argc, argv);
}

int cli_lb_status(int argc, char **argv)
{
    static const struct view_cmd vc = {
        "mesh lb-status [options]\n\n"
        "  The load balancer's backend servers as it sees them (its stats), and the backend.",
        cluster_view_lb, lb_cols, ARRAY_LEN(lb_cols)};
    return view_cmd_run(&vc, argc, argv);
}

/* One section of `status`: a title and its table, or why it is not there. */
static void status_section(const char *title, json_t *view, const struct err *e,
                           const struct cluster_column *cols, size_t ncols, bool color,
                           struct buf *out)
{
    buf_printf(out, "\n%s%s%s\n", color ? "\033[1m" : "", title, color ? "\033[0m" : "");
    if (view)
        cluster_view_render(view, cols, ncols, color, out);
    else
        buf_printf(out, "  unavailable: %s\n", e->msg);
}

int cli_status(int argc, char **argv)
{
    struct cluster_cmd c = {0};
    struct flag flags[] = {CLUSTER_CMD_FLAGS(&c)};
    struct cluster_state s;
    struct buf out = BUF_INIT;
    struct err e[5];
    json_t *v[5] = {NULL};
    bool color = cluster_use_color();
    char lb_hostport[96];
    int status = 1;

    if (!cluster_cmd_begin(&c, flags, ARRAY_LEN(flags),
                           "mesh status [options]\n\n"
                           "  The cluster at a glance: the registry servers (leader or follower,\n"
                           "  Raft term, commit and applied index), nodes, service instances and\n"
                           "  their health, the supervisors' apps per node, the load balancer's\n"
                           "  backends.",
                           argc, argv, 0, &status, &s))
        goto out;
    /* Each part is asked on its own: with the registry down the lb and apps still show. */
    v[0] = cluster_view_nodes(&s, &e[0]);
    v[1] = cluster_view_instances(&s, &e[1]);
    v[2] = cluster_view_apps(&s, &e[2]);
    v[3] = cluster_view_lb(&s, &e[3]);
    v[4] = cluster_view_servers(&s, &e[4]);
    snprintf(lb_hostport, sizeof(lb_hostport), "%s:%d", cluster_lb_host(&s), s.lb_port);
    if (c.json) {
        json_t *webs = json_array();
        for (size_t i = 1; i < s.n_nodes; i++) {
            if (!s.nodes[i].server)
                json_array_append_new(webs, json_string(s.nodes[i].name));
        }
        /* lb_url and web_nodes come from the state: they are there with the registry down. */
        /* A part that did not answer is null; why is under "unavailable", as the text says. */
        static const char *const parts[] = {"nodes", "services", "apps", "lb", "servers"};
        json_t *unavailable = json_object();
        for (size_t i = 0; i < ARRAY_LEN(parts); i++) {
            if (!v[i])
                json_object_set_new(unavailable, parts[i], json_string(e[i].msg));
        }
        json_t *all =
            json_pack("{s:s, s:s, s:s+, s:o, s:O?, s:O?, s:O?, s:O?, s:O?, s:o}", "mode",
                      s.netns ? "netns" : "loopback", "run_dir", s.run_dir, "lb_url", "http://",
                      lb_hostport, "web_nodes", webs, "servers", v[4], "nodes", v[0], "services",
                      v[1], "apps", v[2], "lb", v[3], "unavailable", unavailable);
        cluster_print_json(all);
        json_decref(all);
    } else {
        buf_printf(&out, "meshkit (%s), run directory %s: load balancer http://%s:%d/\n",
                   s.netns ? "netns" : "loopback", s.run_dir, cluster_lb_host(&s), s.lb_port);
        status_section("Registry servers", v[4], &e[4], server_cols, ARRAY_LEN(server_cols), color,
                       &out);
        status_section("Nodes", v[0], &e[0], node_cols, ARRAY_LEN(node_cols), color, &out);
        status_section("Services", v[1], &e[1], instance_cols, ARRAY_LEN(instance_cols), color,
                       &out);
        status_section("Supervised apps", v[2], &e[2], app_cols, ARRAY_LEN(app_cols), color, &out);
        status_section("Load balancer", v[3], &e[3], lb_cols, ARRAY_LEN(lb_cols), color, &out);
        fwrite(out.data, 1, out.len, stdout);
    }
    status = 0;
out:
    for (size_t i = 0; i < ARRAY_LEN(v); i++)
        json_decref(v[i]);
    buf_free(&out);
    free(c.run_dir);
    return status;
}
