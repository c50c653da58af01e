/*
 * One node's processes: its agent (started here, as `up` and `revive-node` both need it) and
 * its supervisor, driven as the `mesh pm` process, never as linked code: components do not
 * include each other.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cluster.h"
#include "lib/alloc.h"
#include "lib/duration.h"

#define PM_TIMEOUT_MS 60000 /* stop/scale wait for graceful exits (kill timeout 10 s each) */
#define PM_MAX_ARGS   32

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

/* True when the NUL-separated cmdline holds flag's value `value` ("-f v", "-f=v", "--f v"). */
static bool cmdline_has(const char *cmd, size_t len, const char *flag, const char *value)
{
    bool prev_flag = false;
    size_t flen = strlen(flag);

    for (size_t i = 0; i < len; i += strlen(cmd + i) + 1) {
        const char *arg = cmd + i;
        const char *f = arg[0] == '-' && arg[1] == '-' ? arg + 1 : arg;
        if (prev_flag && strcmp(arg, value) == 0)
            return true;
        if (strncmp(f, flag, flen) == 0 && f[flen] == '=' && strcmp(f + flen + 1, value) == 0)
            return true;
        prev_flag = strcmp(f, flag) == 0;
    }
    return false;
}

/*
 * Live processes running exe whose cmdline satisfies match, into out (at most max). Returns
 * how many were found.
 */
static size_t proc_scan(const char *exe, bool (*match)(const char *cmd, size_t len, const void *),
                        const void *arg, pid_t *out, size_t max)
{
    char path[64], cmd[8192];
    struct dirent *d;
    DIR *proc = opendir("/proc");
    size_t found = 0;

    if (!proc)
        return 0;
    while (found < max && (d = readdir(proc)) != NULL) {
        pid_t pid = (pid_t)atoi(d->d_name);
        if (pid <= 0 || pid == getpid() || !cluster_pid_alive(pid, exe))
            continue;
        snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t len = read(fd, cmd, sizeof(cmd) - 1);
        close(fd);
        if (len <= 0)
            continue;
        cmd[len] = '\0';
        if (match(cmd, (size_t)len, arg))
            out[found++] = pid;
    }
    closedir(proc);
    return found;
}

/* The daemon is the `mesh pm` process of this home that outlives its commands. */
static bool is_pm_of(const char *cmd, size_t len, const void *home)
{
    size_t argv0_len = strlen(cmd);
    const char *arg1 = argv0_len + 1 < len ? cmd + argv0_len + 1 : "";

    return strcmp(arg1, "pm") == 0 && cmdline_has(cmd, len, "-home", home);
}

pid_t cluster_pm_daemon_pid(const struct cluster_state *s, const struct cluster_node *n)
{
    char home[PATH_MAX + 64];
    pid_t pid = 0;

    cluster_path(s, n, "pm", home, sizeof(home));
    proc_scan(s->mesh, is_pm_of, home, &pid, 1);
    return pid;
}

struct webapp_match {
    const char *node;
    char agent[96];
};

static bool is_webapp_of(const char *cmd, size_t len, const void *arg)
{
    const struct webapp_match *m = arg;

    return cmdline_has(cmd, len, "-node", m->node) && cmdline_has(cmd, len, "-agent", m->agent);
}

void cluster_webapp_agent(const struct cluster_node *n, char *out, size_t len)
{
    snprintf(out, len, "%s:%d", n->addr, n->agent_port);
}

size_t cluster_webapp_pids(const struct cluster_state *s, const struct cluster_node *n, pid_t *out,
                           size_t max)
{
    struct webapp_match m = {.node = n->name};

    cluster_webapp_agent(n, m.agent, sizeof(m.agent));
    return proc_scan(s->webapp, is_webapp_of, &m, out, max);
}

int cluster_start_agent(const struct cluster_state *s, const struct cluster_node *n, struct err *e)
{
    char port[16], ft[32], join[96], data[PATH_MAX + 64], log[PATH_MAX + 64], pidf[PATH_MAX + 64];
    const struct cluster_node *server = &s->nodes[0];
    char *argv[24];
    size_t k = 0;
    pid_t pid;
    int rc;

    snprintf(port, sizeof(port), "%d", n->agent_port);
    duration_format(s->failure_timeout_ns, ft, sizeof(ft));
    snprintf(join, sizeof(join), "%s:%d", server->addr, server->agent_port);
    cluster_path(s, n, "data", data, sizeof(data));
    cluster_path(s, n, "agent.log", log, sizeof(log));
    cluster_path(s, n, "agent.pid", pidf, sizeof(pidf));
    argv[k++] = (char *)s->mesh;
    argv[k++] = "agent";
    if (n->server) {
        argv[k++] = "-server";
        argv[k++] = "-bootstrap";
        argv[k++] = "-ui";
    } else {
        argv[k++] = "-retry-join";
        argv[k++] = join;
    }
    argv[k++] = "-node";
    argv[k++] = (char *)n->name;
    argv[k++] = "-bind";
    argv[k++] = (char *)n->addr;
    /* In a namespace the API also answers on the node's loopback, where its webapps look. */
    argv[k++] = "-client";
    argv[k++] = n->netns[0] ? "0.0.0.0" : (char *)n->addr;
    argv[k++] = "-http-port";
    argv[k++] = port;
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
