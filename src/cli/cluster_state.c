/*
 * The cluster's state file: what `mesh up` started and where (mode, ports, nodes and their
 * addresses, namespaces), so `down` and the operator commands need no flags but the run
 * directory.
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli_internal.h"
#include "cli/cluster.h"
#include "lib/alloc.h"
#include "lib/file.h"
#include "lib/json.h"

#define STATE_VERSION 1

const char *cluster_run_dir(const char *flag_value)
{
    const char *env = getenv("MESH_RUN_DIR");

    if (flag_value && *flag_value)
        return flag_value;
    return env && *env ? env : "run";
}

static json_t *node_to_json(const struct cluster_node *n)
{
    return json_pack("{s:s, s:b, s:s, s:i, s:i, s:i, s:i, s:s, s:s}", "name", n->name, "server",
                     n->server, "addr", n->addr, "agent_port", n->agent_port, "web_port",
                     n->web_port, "dns_port", n->dns_port, "server_port", n->server_port, "netns",
                     n->netns, "veth", n->veth);
}

json_t *cluster_state_to_json(const struct cluster_state *s)
{
    json_t *nodes = json_array();
    json_t *doc;

    for (size_t i = 0; i < s->n_nodes; i++)
        json_array_append_new(nodes, node_to_json(&s->nodes[i]));
    doc = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:s, s:s, s:I, s:I, s:o}",
                    "version", STATE_VERSION, "mode", s->netns ? "netns" : "loopback", "run_dir",
                    s->run_dir, "mesh", s->mesh, "webapp", s->webapp, "bridge", s->bridge,
                    "host_addr", s->host_addr, "lb_port", s->lb_port, "stats_port", s->stats_port,
                    "stats_user", s->stats_user, "stats_password", s->stats_password,
                    "failure_timeout_ns", (json_int_t)s->failure_timeout_ns, "check_interval_ns",
                    (json_int_t)s->check_interval_ns, "nodes", nodes);
    json_object_set_new(doc, "lb", json_string(s->lb_haproxy ? "haproxy" : "mesh"));
    json_object_set_new(doc, "secure", json_boolean(s->secure));
    return doc;
}

/* Copies the string field key into out (size n); -EINVAL when missing or too long. */
static int read_str(const json_t *obj, const char *key, char *out, size_t n, struct err *e)
{
    const char *v = json_string_value(json_object_get(obj, key));

    if (!v)
        return err_set(e, "%s: missing string \"%s\"", CLUSTER_STATE_FILE, key);
    if (strlen(v) >= n)
        return err_set(e, "%s: \"%s\" is too long", CLUSTER_STATE_FILE, key);
    memcpy(out, v, strlen(v) + 1);
    return 0;
}

static int read_int(const json_t *obj, const char *key, int64_t lo, int64_t hi, int64_t *out,
                    struct err *e)
{
    json_t *v = json_object_get(obj, key);

    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return err_set(e, "%s: \"%s\" must be an integer in %lld..%lld", CLUSTER_STATE_FILE, key,
                       (long long)lo, (long long)hi);
    *out = json_integer_value(v);
    return 0;
}

static int read_port(const json_t *obj, const char *key, int *out, struct err *e)
{
    int64_t v = 0;
    int rc = read_int(obj, key, 0, 65535, &v, e);

    if (rc == 0)
        *out = (int)v;
    return rc;
}

static int node_from_json(const json_t *j, struct cluster_node *n, struct err *e)
{
    int rc;

    memset(n, 0, sizeof(*n));
    if (!json_is_object(j))
        return err_set(e, "%s: nodes: expected objects", CLUSTER_STATE_FILE);
    n->server = json_is_true(json_object_get(j, "server"));
    if ((rc = read_str(j, "name", n->name, sizeof(n->name), e)) < 0 ||
        (rc = read_str(j, "addr", n->addr, sizeof(n->addr), e)) < 0 ||
        (rc = read_str(j, "netns", n->netns, sizeof(n->netns), e)) < 0 ||
        (rc = read_str(j, "veth", n->veth, sizeof(n->veth), e)) < 0 ||
        (rc = read_port(j, "agent_port", &n->agent_port, e)) < 0 ||
        (rc = read_port(j, "web_port", &n->web_port, e)) < 0)
        return rc;
    /* Absent from the state of an `up` before DNS moved with the ports: it had none. */
    if (json_object_get(j, "dns_port") && (rc = read_port(j, "dns_port", &n->dns_port, e)) < 0)
        return rc;
    /* Absent from the state of an `up` before -servers: a lone server. */
    if (json_object_get(j, "server_port") &&
        (rc = read_port(j, "server_port", &n->server_port, e)) < 0)
        return rc;
    return 0;
}

int cluster_state_from_json(const json_t *doc, struct cluster_state *s, struct err *e)
{
    json_t *nodes = json_object_get(doc, "nodes");
    const char *mode = json_string_value(json_object_get(doc, "mode"));
    int rc;

    memset(s, 0, sizeof(*s));
    if (!json_is_object(doc))
        return err_set(e, "%s: expected an object", CLUSTER_STATE_FILE);
    if (!mode || (strcmp(mode, "netns") != 0 && strcmp(mode, "loopback") != 0))
        return err_set(e, "%s: \"mode\" must be \"loopback\" or \"netns\"", CLUSTER_STATE_FILE);
    s->netns = strcmp(mode, "netns") == 0;
    /* "lb" is absent from the state of a cluster started before HAProxy mode: mesh lb */
    const char *lb = json_string_value(json_object_get(doc, "lb"));
    if (lb && strcmp(lb, "haproxy") != 0 && strcmp(lb, "mesh") != 0)
        return err_set(e, "%s: \"lb\" must be \"mesh\" or \"haproxy\"", CLUSTER_STATE_FILE);
    s->lb_haproxy = lb && strcmp(lb, "haproxy") == 0;
    s->secure = json_is_true(json_object_get(doc, "secure")); /* absent before -secure: off */
    if ((rc = read_str(doc, "run_dir", s->run_dir, sizeof(s->run_dir), e)) < 0 ||
        (rc = read_str(doc, "mesh", s->mesh, sizeof(s->mesh), e)) < 0 ||
        (rc = read_str(doc, "webapp", s->webapp, sizeof(s->webapp), e)) < 0 ||
        (rc = read_str(doc, "bridge", s->bridge, sizeof(s->bridge), e)) < 0 ||
        (rc = read_str(doc, "host_addr", s->host_addr, sizeof(s->host_addr), e)) < 0 ||
        (rc = read_str(doc, "stats_user", s->stats_user, sizeof(s->stats_user), e)) < 0 ||
        (rc = read_str(doc, "stats_password", s->stats_password, sizeof(s->stats_password), e)) <
            0 ||
        (rc = read_port(doc, "lb_port", &s->lb_port, e)) < 0 ||
        (rc = read_port(doc, "stats_port", &s->stats_port, e)) < 0 ||
        (rc = read_int(doc, "failure_timeout_ns", 0, INT64_MAX, &s->failure_timeout_ns, e)) < 0 ||
        (rc = read_int(doc, "check_interval_ns", 0, INT64_MAX, &s->check_interval_ns, e)) < 0)
        return rc;
    if (!json_is_array(nodes) || json_array_size(nodes) == 0 ||
        json_array_size(nodes) > CLUSTER_MAX_NODES)
        return err_set(e, "%s: \"nodes\" must hold 1..%d nodes", CLUSTER_STATE_FILE,
                       CLUSTER_MAX_NODES);
    for (size_t i = 0; i < json_array_size(nodes); i++) {
        if ((rc = node_from_json(json_array_get(nodes, i), &s->nodes[i], e)) < 0)
            return rc;
    }
    s->n_nodes = json_array_size(nodes);
    if (!s->nodes[0].server)
        return err_set(e, "%s: the first node must be the server", CLUSTER_STATE_FILE);
    return 0;
}

int cluster_state_save(const struct cluster_state *s, struct err *e)
{
    char path[PATH_MAX + 32];
    json_t *doc = cluster_state_to_json(s);
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_MESH_REAL_PRECISION);

    snprintf(path, sizeof(path), "%s/%s", s->run_dir, CLUSTER_STATE_FILE);
    int rc = file_replace(path, text, strlen(text), 0644, 0, e);
    free(text);
    json_decref(doc);
    return rc;
}

int cluster_state_load(const char *run_dir, struct cluster_state *s, struct err *e)
{
    char path[PATH_MAX + 32];
    json_error_t je;
    json_t *doc;
    int rc;

    snprintf(path, sizeof(path), "%s/%s", run_dir, CLUSTER_STATE_FILE);
    if (access(path, F_OK) != 0) {
        err_set(e, "no cluster in %s (start one with 'mesh up')", run_dir);
        return -ENOENT;
    }
    doc = json_load_file(path, 0, &je);
    if (!doc)
        return err_set(e, "%s:%d: %s", path, je.line, je.text);
    rc = cluster_state_from_json(doc, s, e);
    if (rc < 0)
        err_prefix(e, "%s", run_dir);
    json_decref(doc);
    return rc;
}

size_t cluster_n_servers(const struct cluster_state *s)
{
    size_t n = 0;

    for (size_t i = 0; i < s->n_nodes; i++)
        n += s->nodes[i].server;
    return n;
}

size_t cluster_n_web(const struct cluster_state *s)
{
    return s->n_nodes - cluster_n_servers(s);
}

struct cluster_node *cluster_node_find(struct cluster_state *s, const char *name, struct err *e)
{
    struct buf names = BUF_INIT;

    for (size_t i = 0; i < s->n_nodes; i++) {
        if (strcmp(s->nodes[i].name, name) == 0) {
            buf_free(&names);
            return &s->nodes[i];
        }
        buf_printf(&names, "%s%s", i ? ", " : "", s->nodes[i].name);
    }
    err_set(e, "no node \"%s\" in this cluster (nodes: %s)", name, names.data ? names.data : "");
    buf_free(&names);
    return NULL;
}

void cluster_path(const struct cluster_state *s, const struct cluster_node *n, const char *file,
                  char *out, size_t len)
{
    snprintf(out, len, "%s/%s/%s", s->run_dir, n->name, file);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

/* Removes a directory tree (nothing there is fine). */
int cluster_rm_tree(const char *path)
{
    if (access(path, F_OK) != 0)
        return 0;
    return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -errno;
}

bool cluster_cmd_begin(struct cluster_cmd *c, struct flag *flags, size_t n, const char *usage,
                       int argc, char **argv, size_t want_args, int *exit_code,
                       struct cluster_state *s)
{
    struct err e;
    size_t got = 0;

    /* Flags may come before and after the node name: `mesh scale-up web1 -json`. */
    for (int i = 1, first; i < argc; i++) {
        if (!cli_parse_flags(flags, n, usage, argc - i, argv + i, &first, exit_code))
            return false;
        i += first;
        if (i >= argc)
            break;
        if (got++ == 0)
            c->arg = argv[i];
    }
    *exit_code = 1;
    if (got != want_args) {
        if (want_args)
            fprintf(stderr, "%s: give one node name (see -help)\n", argv[0]);
        else
            fprintf(stderr, "%s: unexpected argument \"%s\"\n", argv[0], c->arg);
        return false;
    }
    if (cluster_state_load(cluster_run_dir(c->run_dir), s, &e) < 0) {
        fprintf(stderr, "%s: %s\n", argv[0], e.msg);
        return false;
    }
    /* A state file outlives its processes: say so rather than print "unavailable" tables. */
    if (!cluster_is_up(s)) {
        fprintf(stderr,
                "%s: the cluster in %s is down (none of its processes runs); 'mesh up' "
                "starts it\n",
                argv[0], s->run_dir);
        return false;
    }
    /* What this command starts (a revived agent, a supervisor) reaches the agents as up's did. */
    cluster_secure_env(s);
    return true;
}

void cluster_print_json(const json_t *v)
{
    struct buf b = BUF_INIT;

    json_append(&b, v, true); /* ends with its newline */
    fwrite(b.data, 1, b.len, stdout);
    buf_free(&b);
}
