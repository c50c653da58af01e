/*
 * One node's processes: its agent (started here, as `up` and `revive-node` both need it) and
 * its supervisor, driven as the `mesh pm` process, never as linked code: components do not
 * include each other.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cluster.h"
#include "lib/alloc.h"
#include "lib/duration.h"
#include "lib/procfs.h"

#define PM_TIMEOUT_MS      60000 /* stop/scale wait for graceful exits (kill timeout 10 s each) */
#define PM_MAX_ARGS        32
#define PM_PING_TIMEOUT_MS 5000

int cluster_pm(const struct cluster_state *s, const struct cluster_node *n, struct buf *out,
               struct err *e, ...)
{
    char home[PATH_MAX + 64];
    char *argv[PM_MAX_ARGS + 6];
    size_t k = 0;
    const char *a;
    va_list ap;

    cluster_path(s, n, "pm", home, sizeof(home));
    argv[k++] = (char *)s->mesh;
    argv[k++] = "pm";
    argv[k++] = "-home";
    argv[k++] = home;
    va_start(ap, e);
    while ((a = va_arg(ap, const char *)) != NULL && k < PM_MAX_ARGS)
        argv[k++] = (char *)a;
    va_end(ap);
    argv[k] = NULL;
    return cluster_run(n, argv, out, 0, PM_TIMEOUT_MS, e);
}

json_t *cluster_pm_ls(const struct cluster_state *s, const struct cluster_node *n, struct err *e)
{
    struct buf out = BUF_INIT;
    json_error_t je;
    json_t *v = NULL;
    int rc = cluster_pm(s, n, &out, e, "ls", "-json", (char *)NULL);

    if (rc > 0)
        err_set(e, "mesh pm ls on %s exited with status %d", n->name, rc);
    if (rc == 0 && !(v = json_loadb(out.data ? out.data : "", out.len, 0, &je)))
        err_set(e, "mesh pm ls on %s: %s", n->name, je.text);
    if (v && !json_is_array(v)) {
        err_set(e, "mesh pm ls on %s: expected a JSON array", n->name);
        json_decref(v);
        v = NULL;
    }
    buf_free(&out);
    return v;
}

bool cluster_pm_daemon(const struct cluster_state *s, const struct cluster_node *n,
                       struct cluster_pid *p)
{
    char home[PATH_MAX + 64];
    char *argv[] = {(char *)s->mesh, "pm", "-home", home, "ping", "-json", NULL};
    struct cluster_pid found = {0};
    struct buf out = BUF_INIT;
    struct err e;
    json_t *reply;

    cluster_path(s, n, "pm", home, sizeof(home));
    /* No socket, no daemon: spare the process (a down cluster has none). */
    if (access(home, F_OK) == 0 &&
        cluster_run(n, argv, &out, CLUSTER_RUN_QUIET, PM_PING_TIMEOUT_MS, &e) == 0 &&
        (reply = json_loadb(out.data ? out.data : "", out.len, 0, NULL)) != NULL) {
        found.pid = (pid_t)json_integer_value(json_object_get(reply, "pid"));
        found.start = procfs_start_time(found.pid);
        if (!found.start)
            found.pid = 0;
        json_decref(reply);
    }
    buf_free(&out);
    if (p)
        *p = found;
    return found.pid > 0;
}

void cluster_webapp_agent(const struct cluster_node *n, char *out, size_t len)
{
    snprintf(out, len, "%s:%d", n->addr, n->agent_port);
}

size_t cluster_app_pids(const struct cluster_state *s, const struct cluster_node *n,
                        struct cluster_pid *out, size_t max)
{
    char dir[PATH_MAX + 64], path[PATH_MAX + 384];
    struct dirent *d;
    DIR *pids;
    size_t found = 0;

    cluster_path(s, n, "pm/pids", dir, sizeof(dir));
    if (!(pids = opendir(dir)))
        return 0;
    while (found < max && (d = readdir(pids)) != NULL) {
        size_t len = strlen(d->d_name);
        if (len < 5 || strcmp(d->d_name + len - 4, ".pid") != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, d->d_name);
        out[found].pid = procfs_pidfile_live(path, &out[found].start);
        found += out[found].pid > 0;
    }
    closedir(pids);
    return found;
}

/*
 * -retry-join with every registry server's HTTP API but n's own, into argv from k; the
 * addresses go into join. Returns the new k.
 */
static size_t join_args(const struct cluster_state *s, const struct cluster_node *n, char **argv,
                        size_t k, char (*join)[96])
{
    size_t j = 0;

    for (size_t i = 0; i < s->n_nodes; i++) {
        const struct cluster_node *srv = &s->nodes[i];
        if (!srv->server || srv == n)
            continue;
        snprintf(join[j], sizeof(join[j]), "%s%s:%d", s->secure ? "https://" : "", srv->addr,
                 srv->agent_port);
        argv[k++] = "-retry-join";
        argv[k++] = join[j++];
    }
    return k;
}

int cluster_start_agent(const struct cluster_state *s, const struct cluster_node *n, struct err *e)
{
    char port[16], dns[16], ft[32], expect[16], raft[16], join[CLUSTER_MAX_NODES][96],
        data[PATH_MAX + 64], log[PATH_MAX + 64], pidf[PATH_MAX + 64], conf[PATH_MAX + 64];
    char *argv[32 + 2 * CLUSTER_MAX_NODES];
    size_t k = 0;
    pid_t pid;
    int rc;

    snprintf(port, sizeof(port), "%d", n->agent_port);
    snprintf(dns, sizeof(dns), "%d", n->dns_port > 0 ? n->dns_port : -1);
    snprintf(expect, sizeof(expect), "%zu", cluster_n_servers(s));
    snprintf(raft, sizeof(raft), "%d", n->server_port);
    duration_format(s->failure_timeout_ns, ft, sizeof(ft));
    cluster_path(s, n, "data", data, sizeof(data));
    cluster_path(s, n, "agent.log", log, sizeof(log));
    cluster_path(s, n, "agent.pid", pidf, sizeof(pidf));
    argv[k++] = (char *)s->mesh;
    argv[k++] = "agent";
    if (n->server && n->server_port == 0) {
        argv[k++] = "-server";
        argv[k++] = "-bootstrap";
        argv[k++] = "-ui";
    } else if (n->server) {
        /* One of several: they find each other through the others' HTTP APIs and form. */
        argv[k++] = "-server";
        argv[k++] = "-bootstrap-expect";
        argv[k++] = expect;
        argv[k++] = "-server-port";
        argv[k++] = raft;
        argv[k++] = "-ui";
        k = join_args(s, n, argv, k, join);
    } else {
        /* A client agent knows every server, so it can move to another when its own dies. */
        k = join_args(s, n, argv, k, join);
    }
    argv[k++] = "-node";
    argv[k++] = (char *)n->name;
    argv[k++] = "-bind";
    argv[k++] = (char *)n->addr;
    /* In a namespace the API also answers on the node's loopback, where its webapps look. */
    argv[k++] = "-client";
    argv[k++] = n->netns[0] ? "0.0.0.0" : (char *)n->addr;
    if (s->secure) {
        /* HTTPS only: the plain port off, TLS and ACLs from the node's secure.json. */
        cluster_path(s, n, CLUSTER_SECURE_CONFIG, conf, sizeof(conf));
        argv[k++] = "-https-port";
        argv[k++] = port;
        argv[k++] = "-http-port";
        argv[k++] = "-1";
        argv[k++] = "-config-file";
        argv[k++] = conf;
    } else {
        argv[k++] = "-http-port";
        argv[k++] = port;
    }
    argv[k++] = "-dns-port";
    argv[k++] = dns;
    argv[k++] = "-data-dir";
    argv[k++] = data;
    argv[k++] = "-failure-timeout";
    argv[k++] = ft;
    argv[k] = NULL;
    rc = cluster_spawn(n, argv, log, &pid, e);
    if (rc == 0)
        rc = cluster_pidfile_write(pidf, pid, e);
    return rc;
}
