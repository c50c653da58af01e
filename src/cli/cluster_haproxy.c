/*
 * HAProxy in place of mesh lb (`mesh up -lb haproxy`), as the original ran it: `mesh template`
 * renders configs/haproxy.ctmpl from the registry into RUN/loadbalancer/haproxy.cfg and, after
 * each change, checks the file and sends SIGUSR2 to HAProxy's master, which re-executes itself
 * with the new file and lets the old workers finish (-sf): a seamless reload. The operator
 * commands read HAProxy's stats socket (RUN/loadbalancer/haproxy.sock, "show stat").
 *
 * Files on the server node: haproxy.cfg, haproxy.pid (the master, foreground -W), haproxy.log,
 * haproxy.sock, template.pid and template.log.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "cli/cluster.h"
#include "lib/alloc.h"
#include "lib/unix_path.h"

#define HAPROXY_STOP_MS   5000
#define HAPROXY_SOCK_MS   2000
#define HAPROXY_SOCKET    "haproxy.sock" /* in the loadbalancer node's directory */
#define HAPROXY_STATS_MAX (4u << 20)
#define HAPROXY_COLUMNS   128

/* The haproxy binary, resolved (so /proc/PID/exe can be compared); false when not installed. */
static bool haproxy_path(char *out, size_t len)
{
    static const char *const dirs[] = {"/usr/sbin", "/usr/local/sbin", "/usr/bin", "/sbin"};
    char cand[PATH_MAX], real[PATH_MAX];

    for (size_t i = 0; i < ARRAY_LEN(dirs); i++) {
        snprintf(cand, sizeof(cand), "%s/haproxy", dirs[i]);
        if (access(cand, X_OK) == 0 && realpath(cand, real)) {
            snprintf(out, len, "%s", real);
            return true;
        }
    }
    return false;
}

int cluster_haproxy_template(const struct cluster_state *s, const char *flag_value, char *out,
                             size_t len, struct err *e)
{
    char dir[PATH_MAX], cand[PATH_MAX + 64];

    if (flag_value && *flag_value) {
        snprintf(cand, sizeof(cand), "%s", flag_value);
    } else {
        /* build/mesh -> configs/haproxy.ctmpl beside build/ */
        snprintf(dir, sizeof(dir), "%s", s->mesh);
        snprintf(cand, sizeof(cand), "%s/configs/haproxy.ctmpl", dirname(dirname(dir)));
    }
    if (!realpath(cand, out) || strlen(out) >= len)
        return err_set(e, "HAProxy template %s: %s (give -haproxy-template)", cand,
                       strerror(errno ? errno : ENAMETOOLONG));
    return 0;
}

static void quote_into(struct buf *b, const char *path)
{
    /* single quotes: run directories with spaces still work; a quote itself is closed,
     * escaped and reopened */
    buf_append_cstr(b, "'");
    for (const char *p = path; *p; p++)
        buf_append_cstr(b, *p == '\'' ? "'\\''" : (char[]){*p, '\0'});
    buf_append_cstr(b, "'");
}

/* Starts `mesh template` with the environment configs/haproxy.ctmpl reads. */
static int start_template(const struct cluster_state *s, const char *tmpl, const char *hap,
                          struct err *e)
{
    const struct cluster_node *lb = &s->nodes[0];
    char cfg[PATH_MAX + 64], pidf[PATH_MAX + 64], log[PATH_MAX + 64], lbdir[PATH_MAX + 64];
    char tpid[PATH_MAX + 64], reg[96], dir[PATH_MAX], page[PATH_MAX + 64];
    struct buf cmd = BUF_INIT, spec = BUF_INIT;
    pid_t pid;

    /* the 503 page mesh lb has built in, beside the template (configs/errors/503.http) */
    snprintf(dir, sizeof(dir), "%s", tmpl);
    snprintf(page, sizeof(page), "%s/errors/503.http", dirname(dir));
    cluster_path(s, lb, "haproxy.cfg", cfg, sizeof(cfg));
    cluster_path(s, lb, "haproxy.pid", pidf, sizeof(pidf));
    cluster_path(s, lb, "template.log", log, sizeof(log));
    cluster_path(s, lb, "template.pid", tpid, sizeof(tpid));
    snprintf(reg, sizeof(reg), "%s:%d", lb->addr, lb->agent_port);
    /* before HAProxy runs there is nothing to reload; after, check the file, then SIGUSR2 */
    buf_append_cstr(&cmd, "test ! -f ");
    quote_into(&cmd, pidf);
    buf_append_cstr(&cmd, " || { ");
    cluster_path(s, lb, ".", lbdir, sizeof(lbdir));
    quote_into(&cmd, hap);
    buf_append_cstr(&cmd, " -C ");
    quote_into(&cmd, lbdir);
    buf_append_cstr(&cmd, " -c -q -f ");
    quote_into(&cmd, cfg);
    /* the pidfile holds "PID START_TICKS" (cluster_pidfile_write): signal the first word */
    buf_append_cstr(&cmd, " && kill -USR2 \"$(cut -d' ' -f1 ");
    quote_into(&cmd, pidf);
    buf_append_cstr(&cmd, ")\"; }");
    buf_printf(&spec, "%s:%s:%s", tmpl, cfg, cmd.data);
    char *env[] = {
        xasprintf("MESH_HAPROXY_BIND=%s", lb->netns[0] ? "0.0.0.0" : lb->addr),
        xasprintf("MESH_HAPROXY_PORT=%d", s->lb_port),
        xasprintf("MESH_HAPROXY_STATS_PORT=%d", s->stats_port),
        xasprintf("MESH_HAPROXY_STATS_USER=%s", s->stats_user),
        xasprintf("MESH_HAPROXY_STATS_PASSWORD=%s", s->stats_password),
        xasprintf("MESH_HAPROXY_SERVICE=%s", CLUSTER_SERVICE),
        /* relative to HAProxy's directory (-C): an absolute path in a deep run directory
         * would not fit a Unix socket address (108 bytes, and HAProxy wants 97) */
        xasprintf("MESH_HAPROXY_SOCKET=unix@%s", HAPROXY_SOCKET),
        xasprintf("MESH_HAPROXY_ERRORFILE_503=%s", access(page, R_OK) == 0 ? page : ""),
    };
    char *argv[] = {"/usr/bin/env", env[0],         env[1], env[2],  env[3],
                    env[4],         env[5],         env[6], env[7],  (char *)s->mesh,
                    "template",     "-consul-addr", reg,    "-wait", "200ms:2s",
                    "-template",    spec.data,      NULL};
    int rc = cluster_spawn(lb, argv, log, &pid, e);
    if (rc == 0)
        rc = cluster_pidfile_write(tpid, pid, e);
    for (size_t i = 0; i < ARRAY_LEN(env); i++)
        free(env[i]);
    buf_free(&cmd);
    buf_free(&spec);
    return rc;
}

int cluster_haproxy_start(const struct cluster_state *s, const char *tmpl, int64_t deadline,
                          struct err *e)
{
    const struct cluster_node *lb = &s->nodes[0];
    char hap[PATH_MAX], cfg[PATH_MAX + 64], pidf[PATH_MAX + 64], log[PATH_MAX + 64];
    char dir[PATH_MAX + 64];
    struct stat st;
    pid_t pid;
    int rc;

    if (!haproxy_path(hap, sizeof(hap)))
        return err_set(e, "haproxy is not installed (apt-get install haproxy)");
    cluster_path(s, lb, "haproxy.cfg", cfg, sizeof(cfg));
    cluster_path(s, lb, "haproxy.pid", pidf, sizeof(pidf));
    cluster_path(s, lb, "haproxy.log", log, sizeof(log));
    unlink(cfg);
    unlink(pidf);
    if ((rc = start_template(s, tmpl, hap, e)) < 0)
        return rc;
    while (stat(cfg, &st) != 0) {
        if (cluster_now_ms() >= deadline)
            return err_set(e, "mesh template did not render %s in time (log: %s/%s/template.log)",
                           cfg, s->run_dir, lb->name);
        cluster_sleep_ms(50);
    }
    cluster_path(s, lb, ".", dir, sizeof(dir));
    char *argv[] = {hap, "-W", "-C", dir, "-f", cfg, NULL};
    if ((rc = cluster_spawn(lb, argv, log, &pid, e)) == 0)
        rc = cluster_pidfile_write(pidf, pid, e);
    return rc;
}

bool cluster_haproxy_alive(const struct cluster_state *s)
{
    return cluster_pidfile_live(s, &s->nodes[0], "template.pid", NULL) ||
           cluster_pidfile_live(s, &s->nodes[0], "haproxy.pid", NULL);
}

size_t cluster_haproxy_stop(const struct cluster_state *s)
{
    static const char *const files[] = {"template.pid", "haproxy.pid"};
    char path[PATH_MAX + 64];
    struct cluster_pid p;
    size_t stopped = 0;

    /* the renderer first, so that it does not reload a HAProxy on its way out */
    for (size_t i = 0; i < ARRAY_LEN(files); i++) {
        if (cluster_pidfile_live(s, &s->nodes[0], files[i], &p))
            stopped += cluster_stop_pid(&p, SIGTERM, HAPROXY_STOP_MS);
        cluster_path(s, &s->nodes[0], files[i], path, sizeof(path));
        unlink(path);
    }
    return stopped;
}

int cluster_haproxy_reload(const struct cluster_state *s, pid_t *pid, struct err *e)
{
    struct cluster_pid p;

    if (!cluster_pidfile_live(s, &s->nodes[0], "haproxy.pid", &p) || kill(p.pid, SIGUSR2) != 0)
        return err_set(e, "HAProxy is not running");
    *pid = p.pid;
    return 0;
}

/* ---- the stats socket -------------------------------------------------------------------- */

/* Sends "show stat" and reads the CSV answer (HAProxy closes after one command). */
static int show_stat(const char *path, struct buf *out, struct err *e)
{
    struct unix_path addr;
    struct timeval tv = {HAPROXY_SOCK_MS / 1000, 0};
    char chunk[8192];
    ssize_t n;
    int rc = 0, fd;

    if ((rc = unix_path_open(&addr, path, e)) < 0)
        return rc;
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
        unix_path_close(&addr);
        return err_set(e, "socket: %s", strerror(errno));
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int connected = connect(fd, (struct sockaddr *)&addr.sa, sizeof(addr.sa));
    unix_path_close(&addr);
    if (connected < 0 || write(fd, "show stat\n", 10) != 10) {
        rc = err_set(e, "HAProxy stats socket %s: %s", path, strerror(errno));
        goto done;
    }
    while ((n = read(fd, chunk, sizeof(chunk))) > 0 && out->len < HAPROXY_STATS_MAX)
        buf_append(out, chunk, (size_t)n);
    if (n < 0)
        rc = err_set(e, "HAProxy stats socket %s: %s", path, strerror(errno));
done:
    close(fd);
    return rc;
}

/* Splits one CSV line (HAProxy's fields hold no commas) into at most max fields, in place. */
static size_t split_csv(char *line, char **fields, size_t max)
{
    size_t n = 0;

    for (char *p = line; n < max;) {
        fields[n++] = p;
        char *comma = strchr(p, ',');
        if (!comma)
            break;
        *comma = '\0';
        p = comma + 1;
    }
    return n;
}

/* A CSV value: an integer when it is all digits, else a string. */
static json_t *csv_value(const char *v)
{
    char *end;
    long long n = *v ? strtoll(v, &end, 10) : 0;

    return *v && !*end && v[0] != '+' && v[0] != '-' ? json_integer(n) : json_string(v);
}

json_t *cluster_haproxy_stats(const struct cluster_state *s, struct err *e)
{
    char sock[PATH_MAX + 64];
    char *cols[HAPROXY_COLUMNS], *vals[HAPROXY_COLUMNS];
    struct buf text = BUF_INIT;
    json_t *rows = NULL;
    size_t ncols;

    cluster_path(s, &s->nodes[0], HAPROXY_SOCKET, sock, sizeof(sock));
    if (show_stat(sock, &text, e) < 0)
        goto done;
    char *save = NULL, *line = strtok_r(text.data ? text.data : "", "\n", &save);
    if (!line || strncmp(line, "# ", 2) != 0) {
        err_set(e, "HAProxy stats socket %s: no CSV header", sock);
        goto done;
    }
    ncols = split_csv(line + 2, cols, HAPROXY_COLUMNS);
    rows = json_array();
    while ((line = strtok_r(NULL, "\n", &save))) {
        size_t n = split_csv(line, vals, HAPROXY_COLUMNS);
        /* the backend of the service and its servers; not the stats page's proxy */
        if (n < 2 || strcmp(vals[0], CLUSTER_SERVICE) != 0)
            continue;
        json_t *row = json_object();
        for (size_t i = 0; i < n && i < ncols; i++)
            if (cols[i][0])
                json_object_set_new(row, cols[i], csv_value(vals[i]));
        json_array_append_new(rows, row);
    }
done:
    buf_free(&text);
    return rows;
}
