/*
 * `mesh up`: the original's three machines on one host. The node loadbalancer runs the registry
 * server and mesh lb; each web node runs a client agent and a supervisor (`mesh pm`) keeping
 * the webapp up. `up` returns once every instance passes and the load balancer has answered from
 * every web node; it records what it started in the run directory for `down` and the operator
 * commands. On any failure it stops what it started, so a failed `up` leaves nothing behind.
 */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_internal.h"
#include "cli/cluster.h"
#include "lib/alloc.h"
#include "lib/duration.h"
#include "lib/file.h"

#define UP_USAGE                                                                                   \
    "mesh up [options]\n\n"                                                                        \
    "  Starts the local cluster: node loadbalancer (registry server, mesh lb) and the web\n"       \
    "  nodes (client agent, mesh pm supervising webapp), waits until every instance passes\n"      \
    "  and the load balancer answers from each web node, prints the URLs and exits, leaving\n"     \
    "  it running. 'mesh down' stops it. Ports: a flag, else its MESH_* variable, else the\n"      \
    "  default plus -port-offset (MESH_PORT_OFFSET). With -servers 3 (or 5) the registry is\n"     \
    "  replicated: servers on loadbalancer and on nodes server2, server3, ..."

#define NETNS_SUBNET    "10.77.0"
#define NETNS_BRIDGE    "meshbr0"
#define WEB_PORT_STRIDE 100 /* web nodes on one address: room for 100 instances each */
#define NAME_MAX_LEN    12  /* "mv-" + name must fit a link name (15 bytes) */
#define MAX_SERVERS     5   /* Consul's advice: 3 or 5 servers; more only slows writes */

struct up_opts {
    struct cluster_cmd cmd;
    char *nodes;
    bool netns;
    int port_offset, http_port, lb_port, stats_port, agent_port_base, web_port_base, dns_port;
    int servers, server_port;
    int64_t failure_timeout, check_interval, timeout;
    char *lb, *haproxy_template;
    char haproxy_tmpl[PATH_MAX]; /* resolved */
    bool secure;
};

/* A port: the flag when given, else the environment variable, else def + offset. */
static int pick_port(const struct flag *f, int flag_value, const char *env, int def, int offset,
                     struct err *e)
{
    const char *v = getenv(env);
    char *end;
    long p;

    if (f->seen)
        p = flag_value;
    else if (v && *v) {
        p = strtol(v, &end, 10);
        if (*end || p <= 0 || p > 65535)
            return err_set(e, "%s=%s: expected a port number (1-65535)", env, v);
    } else
        p = def + offset;
    if (p <= 0 || p > 65535)
        return err_set(e, "-%s: port %ld is out of range (1-65535)", f->name, p);
    return (int)p;
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > NAME_MAX_LEN || strcmp(s, CLUSTER_SERVER_NODE) == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    }
    return true;
}

static void add_node(struct cluster_state *s, const char *name, bool server)
{
    struct cluster_node *n = &s->nodes[s->n_nodes];
    size_t i = s->n_nodes++;

    memset(n, 0, sizeof(*n));
    snprintf(n->name, sizeof(n->name), "%s", name);
    n->server = server;
    if (s->netns) {
        snprintf(n->addr, sizeof(n->addr), NETNS_SUBNET ".%zu", 10 + i);
        snprintf(n->netns, sizeof(n->netns), "mesh-%s", name);
        snprintf(n->veth, sizeof(n->veth), "mv-%.12s", name);
    } else {
        snprintf(n->addr, sizeof(n->addr), "127.0.0.1");
    }
}

/*
 * The node list: loadbalancer, the web nodes of -nodes ("web1,web2": names unique, [a-z0-9-],
 * at most 12 long), then server2 .. serverN for -servers N.
 */
static int parse_nodes(struct cluster_state *s, const char *list, int servers, struct err *e)
{
    char *copy = xstrdup(list), *save = NULL;
    char name[CLUSTER_NAME_MAX];
    int rc = 0;

    add_node(s, CLUSTER_SERVER_NODE, true);
    for (char *t = strtok_r(copy, ",", &save); t && rc == 0; t = strtok_r(NULL, ",", &save)) {
        if (!valid_name(t))
            rc = err_set(e, "-nodes: bad node name \"%s\" (1-%d of a-z, 0-9, '-'; not %s)", t,
                         NAME_MAX_LEN, CLUSTER_SERVER_NODE);
        else if (s->n_nodes == CLUSTER_MAX_NODES)
            rc = err_set(e, "-nodes: at most %d web nodes", CLUSTER_MAX_NODES - 1);
        for (size_t i = 0; rc == 0 && i < s->n_nodes; i++) {
            if (strcmp(s->nodes[i].name, t) == 0)
                rc = err_set(e, "-nodes: node \"%s\" given twice", t);
        }
        if (rc == 0)
            add_node(s, t, false);
    }
    if (rc == 0 && s->n_nodes == 1)
        rc = err_set(e, "-nodes: give at least one web node");
    if (rc == 0 && (servers < 1 || servers > MAX_SERVERS || servers % 2 == 0))
        rc =
            err_set(e, "-servers %d: expected 1, 3 or 5 (an odd number keeps a majority)", servers);
    for (int k = 2; rc == 0 && k <= servers; k++) {
        snprintf(name, sizeof(name), "server%d", k);
        for (size_t i = 0; rc == 0 && i < s->n_nodes; i++) {
            if (strcmp(s->nodes[i].name, name) == 0)
                rc = err_set(e, "-nodes: \"%s\" is the name of a server node of -servers %d", name,
                             servers);
        }
        if (rc == 0 && s->n_nodes == CLUSTER_MAX_NODES)
            rc = err_set(e, "-nodes: at most %d nodes with the servers", CLUSTER_MAX_NODES);
        if (rc == 0)
            add_node(s, name, true);
    }
    free(copy);
    return rc;
}

/* Where the binaries are: this mesh, and webapp next to it. */
static int find_binaries(struct cluster_state *s, struct err *e)
{
    char dir[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", s->mesh, sizeof(s->mesh) - 1);

    if (n < 0)
        return err_set(e, "readlink /proc/self/exe: %s", strerror(errno));
    s->mesh[n] = '\0';
    snprintf(dir, sizeof(dir), "%s", s->mesh);
    snprintf(s->webapp, sizeof(s->webapp), "%s/webapp", dirname(dir));
    if (access(s->webapp, X_OK) != 0)
        return err_set(e, "%s is missing: build it first (make)", s->webapp);
    return 0;
}

/* Fills the ports of every node. */
static int assign_ports(struct cluster_state *s, struct up_opts *o, struct flag *flags,
                        size_t nflags, struct err *e)
{
    static const char *const names[] = {"http-port",       "lb-port",       "stats-port",
                                        "agent-port-base", "web-port-base", "port-offset",
                                        "dns-port",        "server-port"};
    const struct flag *f[ARRAY_LEN(names)] = {0};
    int http, agent_base, web_base, dns, raft, next_raft = 0;

    for (size_t i = 0; i < nflags; i++) {
        for (size_t k = 0; k < ARRAY_LEN(names); k++) {
            if (strcmp(flags[i].name, names[k]) == 0)
                f[k] = &flags[i];
        }
    }
    if (!f[5]->seen && getenv("MESH_PORT_OFFSET") && *getenv("MESH_PORT_OFFSET"))
        o->port_offset = atoi(getenv("MESH_PORT_OFFSET"));
    if ((http = pick_port(f[0], o->http_port, "MESH_HTTP_PORT", 8500, o->port_offset, e)) < 0 ||
        (s->lb_port = pick_port(f[1], o->lb_port, "MESH_LB_PORT", 8080, o->port_offset, e)) < 0 ||
        (s->stats_port =
             pick_port(f[2], o->stats_port, "MESH_STATS_PORT", 8404, o->port_offset, e)) < 0 ||
        (agent_base = pick_port(f[3], o->agent_port_base, "MESH_WEB_AGENT_PORT", 8501,
                                o->port_offset, e)) < 0 ||
        (web_base =
             pick_port(f[4], o->web_port_base, "MESH_WEBAPP_PORT", 3000, o->port_offset, e)) < 0 ||
        (dns = pick_port(f[6], o->dns_port, "MESH_DNS_PORT", 8600, o->port_offset, e)) < 0 ||
        (raft = pick_port(f[7], o->server_port, "MESH_SERVER_PORT", 8300, o->port_offset, e)) < 0)
        return -EINVAL;
    for (size_t i = 0; i < s->n_nodes; i++) {
        struct cluster_node *n = &s->nodes[i];
        /* In namespaces every node has its own address and the standard ports. */
        n->agent_port = i == 0 || s->netns ? http : agent_base + (int)i - 1;
        n->web_port = n->server  ? 0
                      : s->netns ? web_base
                                 : web_base + WEB_PORT_STRIDE * ((int)i - 1);
        n->dns_port = s->netns ? dns : dns + (int)i;
        /* A lone server replicates nothing: it keeps today's command line, without a port. */
        if (n->server && o->servers > 1)
            n->server_port = s->netns ? raft : raft + next_raft++;
        if (n->agent_port > 65535 || n->web_port + WEB_PORT_STRIDE > 65535 || n->dns_port > 65535 ||
            n->server_port > 65535)
            return err_set(e, "node %s: ports out of range", n->name);
    }
    return 0;
}

/* Makes the run directory and fresh node directories (data and supervisor state from a
 * previous run are dropped; logs are kept and appended to). */
static int make_dirs(struct cluster_state *s, const char *run_dir, struct err *e)
{
    char path[PATH_MAX + 64];

    int rc;

    /* A file in the way is named here, before anything starts, not by its first use. */
    if ((rc = file_mkdir_all_err(run_dir, 0755, e)) < 0)
        return rc;
    if (!realpath(run_dir, s->run_dir))
        return err_set(e, "%s: %s", run_dir, strerror(errno));
    for (size_t i = 0; i < s->n_nodes; i++) {
        snprintf(path, sizeof(path), "%s/%s", s->run_dir, s->nodes[i].name);
        if ((rc = file_mkdir_all_err(path, 0755, e)) < 0)
            return rc;
        cluster_path(s, &s->nodes[i], "data", path, sizeof(path));
        cluster_rm_tree(path);
        cluster_path(s, &s->nodes[i], "pm", path, sizeof(path));
        cluster_rm_tree(path);
    }
    return 0;
}

/* True while any process `up` recorded still runs. */
bool cluster_is_up(const struct cluster_state *s)
{
    for (size_t i = 0; i < s->n_nodes; i++) {
        if (cluster_pidfile_live(s, &s->nodes[i], "agent.pid", NULL))
            return true;
        if (!s->nodes[i].server && cluster_pm_daemon(s, &s->nodes[i], NULL))
            return true;
    }
    return cluster_pidfile_live(s, &s->nodes[0], "lb.pid", NULL) ||
           (s->lb_haproxy && cluster_haproxy_alive(s));
}

/* The last line of a log (at most 300 bytes of it), for saying why a process stopped. */
static void log_last_line(const char *path, char *out, size_t len)
{
    char tail[4096];
    FILE *f = fopen(path, "r");
    size_t n = 0;
    char *line;

    out[0] = '\0';
    if (!f)
        return;
    if (fseek(f, -(long)sizeof(tail) + 1, SEEK_END) != 0)
        rewind(f);
    n = fread(tail, 1, sizeof(tail) - 1, f);
    fclose(f);
    tail[n] = '\0';
    while (n && (tail[n - 1] == '\n' || tail[n - 1] == '\r'))
        tail[--n] = '\0';
    line = strrchr(tail, '\n');
    snprintf(out, len, "%.300s", line ? line + 1 : tail);
}

/*
 * Waits until node n's process `proc` ("agent", "lb" or "haproxy": RUN/<node>/<proc>.pid and .log)
 * answers GET :port/target (with 200 when ok200). Fails at once when the process has exited,
 * quoting the last line of its log (a port in use, a bad flag), rather than waiting out the
 * deadline.
 */
static int wait_http(const struct cluster_state *s, const struct cluster_node *n, const char *proc,
                     int port, const char *target, bool ok200, int64_t deadline, struct err *e)
{
    char pidf[64], file[64], log[PATH_MAX + 64], last[320];
    struct cluster_reply r = {0};
    int rc = -ETIMEDOUT;

    snprintf(pidf, sizeof(pidf), "%s.pid", proc);
    snprintf(file, sizeof(file), "%s.log", proc);
    cluster_path(s, n, file, log, sizeof(log));
    while (cluster_now_ms() < deadline) {
        int got = strcmp(proc, "agent") == 0
                      ? cluster_get_agent(s, n, target, 2000, &r, e)
                      : cluster_get(n->addr, port, target, NULL, 2000, &r, e);
        if (got == 0 && (!ok200 || r.status == 200)) {
            rc = 0;
            break;
        }
        if (!cluster_pidfile_live(s, n, pidf, NULL)) {
            log_last_line(log, last, sizeof(last));
            rc = err_set(e, "%s's %s exited: %s", n->name, proc, last[0] ? last : "(empty log)");
            break;
        }
        cluster_sleep_ms(50);
    }
    if (rc == -ETIMEDOUT)
        err_set(e, "%s's %s did not answer on %s:%d in time", n->name, proc, n->addr, port);
    buf_free(&r.body);
    return rc;
}

static int start_lb(const struct cluster_state *s, struct err *e)
{
    const struct cluster_node *lb = &s->nodes[0];
    char port[16], sport[16], reg[96], inter[32], log[PATH_MAX + 64], pidf[PATH_MAX + 64];
    char dir[PATH_MAX], page[PATH_MAX + 64];
    char *bind = lb->netns[0] ? "0.0.0.0" : (char *)lb->addr;
    pid_t pid;
    int rc;

    /* the 503 page beside the binary (build/mesh -> configs/errors/503.http), for an operator
     * to edit; without it mesh lb's built-in copy of the same page answers */
    snprintf(dir, sizeof(dir), "%s", s->mesh);
    snprintf(page, sizeof(page), "%s/configs/errors/503.http", dirname(dirname(dir)));
    bool have_page = access(page, R_OK) == 0;
    snprintf(port, sizeof(port), "%d", s->lb_port);
    snprintf(sport, sizeof(sport), "%d", s->stats_port);
    snprintf(reg, sizeof(reg), "%s:%d", lb->addr, lb->agent_port);
    duration_format(s->check_interval_ns, inter, sizeof(inter));
    cluster_path(s, lb, "lb.log", log, sizeof(log));
    cluster_path(s, lb, "lb.pid", pidf, sizeof(pidf));
    char *argv[] = {(char *)s->mesh,
                    "lb",
                    "-bind",
                    bind,
                    "-port",
                    port,
                    "-stats-addr",
                    bind,
                    "-stats-port",
                    sport,
                    "-service",
                    CLUSTER_SERVICE,
                    "-registry-addr",
                    reg,
                    "-check-inter",
                    inter,
                    "-workers",
                    "2",
                    have_page ? "-errorfile-503" : NULL,
                    page,
                    NULL};
    rc = cluster_spawn(lb, argv, log, &pid, e);
    if (rc == 0)
        rc = cluster_pidfile_write(pidf, pid, e);
    return rc;
}

/* `mesh pm start web -i 1` on a web node: the supervisor keeps one webapp up. */
static int start_web(const struct cluster_state *s, const struct cluster_node *n, struct err *e)
{
    char base[16], agent[96], inter[32], env[64];
    struct buf table = BUF_INIT; /* pm's listing after start: up prints its own summary */
    int rc;

    snprintf(base, sizeof(base), "%d", n->web_port);
    snprintf(env, sizeof(env), "NODE_NAME=%s", n->name);
    cluster_webapp_agent(n, agent, sizeof(agent));
    duration_format(s->check_interval_ns, inter, sizeof(inter));
    rc = cluster_pm(s, n, &table, e, "start", CLUSTER_SERVICE, "-i", "1", "-port-base", base,
                    "-env", env, "-kill-timeout", "10s", "--", s->webapp, "-node", n->name,
                    "-agent", agent, "-address", n->addr, "-check-interval", inter, (char *)NULL);
    if (rc > 0)
        rc = err_set(e, "mesh pm start on %s exited with status %d (log: %s/%s/pm)", n->name, rc,
                     s->run_dir, n->name);
    buf_free(&table);
    return rc;
}

/* Ready when the load balancer has answered from every web node. */
static int wait_spread(const struct cluster_state *s, int64_t deadline, struct err *e)
{
    bool seen[CLUSTER_MAX_NODES] = {false};
    size_t missing = cluster_n_web(s);
    struct cluster_reply r = {0};

    while (missing && cluster_now_ms() < deadline) {
        if (cluster_get(cluster_lb_host(s), s->lb_port, "/", NULL, 2000, &r, e) < 0 ||
            r.status != 200) {
            cluster_sleep_ms(50);
            continue;
        }
        for (size_t i = 1; i < s->n_nodes; i++) {
            size_t len = strlen(s->nodes[i].name);
            if (!s->nodes[i].server && !seen[i] &&
                strncmp(r.served_by, s->nodes[i].name, len) == 0 && r.served_by[len] == '/') {
                seen[i] = true;
                missing--;
            }
        }
    }
    buf_free(&r.body);
    if (missing)
        return err_set(e, "the load balancer did not answer from every web node in time");
    return 0;
}

/* Starts every registry server, then waits until each answers and they agree on a leader. */
static int start_servers(const struct cluster_state *s, int64_t deadline, struct err *e)
{
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < s->n_nodes; i++) {
        if (s->nodes[i].server)
            rc = cluster_start_agent(s, &s->nodes[i], e);
    }
    for (size_t i = 0; rc == 0 && i < s->n_nodes; i++) {
        const struct cluster_node *n = &s->nodes[i];
        if (n->server)
            rc = wait_http(s, n, "agent", n->agent_port, "/v1/status/leader", true, deadline, e);
    }
    if (rc == 0)
        rc = cluster_wait_leader(s, NULL, (int)(deadline - cluster_now_ms()), e);
    return rc < 0 ? rc : 0;
}

static int start_all(const struct cluster_state *s, const struct up_opts *o, int64_t deadline,
                     struct err *e)
{
    const struct cluster_node *srv = &s->nodes[0];
    int rc;

    if (s->netns && (rc = cluster_netns_setup(s, e)) < 0)
        return rc;
    if ((rc = start_servers(s, deadline, e)) < 0 ||
        (rc = s->lb_haproxy ? cluster_haproxy_start(s, o->haproxy_tmpl, deadline, e)
                            : start_lb(s, e)) < 0 ||
        (rc = wait_http(s, srv, s->lb_haproxy ? "haproxy" : "lb", s->lb_port, "/", false, deadline,
                        e)) < 0)
        return rc;
    for (size_t i = 1; i < s->n_nodes; i++) {
        const struct cluster_node *n = &s->nodes[i];
        if (n->server)
            continue;
        if ((rc = cluster_start_agent(s, n, e)) < 0 ||
            (rc = wait_http(s, n, "agent", n->agent_port, "/v1/agent/self", true, deadline, e)) < 0)
            return rc;
    }
    for (size_t i = 1; i < s->n_nodes; i++) {
        if (!s->nodes[i].server && (rc = start_web(s, &s->nodes[i], e)) < 0)
            return rc;
    }
    rc = cluster_wait_passing(
        s, NULL, (int)cluster_n_web(s),
        (int)(deadline - cluster_now_ms() > 0 ? deadline - cluster_now_ms() : 0), e);
    return rc < 0 ? rc : wait_spread(s, deadline, e);
}

/* The URLs, and for -secure the management token: printed here once, then only in its file. */
static void print_urls(const struct cluster_state *s, const char *token, bool json)
{
    const struct cluster_node *srv = &s->nodes[0];
    char lb[96], stats[96], reg[96], token_path[PATH_MAX + 64], cert[PATH_MAX + 64];
    struct buf web = BUF_INIT, servers = BUF_INIT;

    snprintf(lb, sizeof(lb), "http://%s:%d/", srv->addr, s->lb_port);
    snprintf(stats, sizeof(stats), "http://%s:%d/stats", srv->addr, s->stats_port);
    snprintf(reg, sizeof(reg), "%s://%s:%d/", s->secure ? "https" : "http", srv->addr,
             srv->agent_port);
    cluster_secure_path(s, CLUSTER_TLS_TOKEN, token_path, sizeof(token_path));
    cluster_secure_path(s, CLUSTER_TLS_CLIENT_CERT, cert, sizeof(cert));
    if (json) {
        json_t *v = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "mode",
                              s->netns ? "netns" : "loopback", "lb", lb, "stats", stats, "registry",
                              reg, "stats_user", s->stats_user, "run_dir", s->run_dir);
        if (s->secure)
            json_object_update_new(v, json_pack("{s:s, s:s, s:s}", "token", token, "token_file",
                                                token_path, "client_cert", cert));
        cluster_print_json(v);
        json_decref(v);
        return;
    }
    for (size_t i = 1; i < s->n_nodes; i++) {
        struct buf *b = s->nodes[i].server ? &servers : &web;
        buf_printf(b, "%s%s", b->len ? ", " : "", s->nodes[i].name);
    }
    printf("meshkit is up (%s): %s (registry server + %s) and %s (agent + mesh pm + "
           "webapp).\n",
           s->netns ? "a network namespace per node" : "loopback", srv->name,
           s->lb_haproxy ? "HAProxy rendered by mesh template" : "mesh lb", web.data);
    if (servers.len)
        printf("The registry is replicated over %zu servers: %s and %s (registry server).\n",
               cluster_n_servers(s), srv->name, servers.data);
    printf("  load balancer       %s\n", lb);
    printf("  stats               %s   (%s / %s; also ;csv and /metrics)\n", stats, s->stats_user,
           s->stats_password);
    printf("  registry web UI     %sui/   (services, nodes, KV, live)\n", reg);
    printf("  registry HTTP API   %sv1/   (Consul's API)\n", reg);
    if (s->secure) {
        printf("Secure: HTTPS only with client certificates (verify_incoming), ACLs deny by "
               "default.\n");
        printf("  management token    %s   (shown once; kept in %s, mode 0600)\n", token,
               token_path);
        printf("  client certificate  %s (and its -key.pem), CA %s/%s/%s\n", cert, s->run_dir,
               CLUSTER_TLS_DIR, CLUSTER_TLS_CA);
    }
    printf("State and logs: %s/.  'mesh status' shows the cluster; 'mesh down' stops it.\n",
           s->run_dir);
    buf_free(&web);
    buf_free(&servers);
}

/* Everything but the start: flags into a state, directories made, state recorded. */
static int prepare(struct cluster_state *s, struct up_opts *o, struct flag *flags, size_t n,
                   struct err *e)
{
    const char *run_dir = cluster_run_dir(o->cmd.run_dir);
    int rc;

    memset(s, 0, sizeof(*s));
    s->netns = o->netns;
    if (s->netns && geteuid() != 0)
        return err_set(e, "-netns needs root (it makes network namespaces and a bridge)");
    if (s->netns) {
        snprintf(s->bridge, sizeof(s->bridge), NETNS_BRIDGE);
        snprintf(s->host_addr, sizeof(s->host_addr), NETNS_SUBNET ".1");
    }
    snprintf(s->stats_user, sizeof(s->stats_user), "admin");
    snprintf(s->stats_password, sizeof(s->stats_password), "admin");
    s->failure_timeout_ns = o->failure_timeout;
    s->check_interval_ns = o->check_interval;
    if (strcmp(o->lb, "mesh") != 0 && strcmp(o->lb, "haproxy") != 0)
        return err_set(e, "-lb %s: expected mesh or haproxy", o->lb);
    s->lb_haproxy = strcmp(o->lb, "haproxy") == 0;
    s->secure = o->secure;
    if ((rc = parse_nodes(s, o->nodes, o->servers, e)) < 0 || (rc = find_binaries(s, e)) < 0 ||
        (rc = assign_ports(s, o, flags, n, e)) < 0 || (rc = cluster_ports_check(s, e)) < 0 ||
        (rc = make_dirs(s, run_dir, e)) < 0)
        return rc;
    if (s->lb_haproxy && (rc = cluster_haproxy_template(s, o->haproxy_template, o->haproxy_tmpl,
                                                        sizeof(o->haproxy_tmpl), e)) < 0)
        return rc;
    return cluster_state_save(s, e);
}

/* Parsed flags in, exit status out: says so when the cluster is up, else starts it. */
static int up_run(struct up_opts *o, struct flag *flags, size_t nflags)
{
    struct cluster_state s, old;
    char token[64] = "";
    struct err e;

    if (cluster_state_load(cluster_run_dir(o->cmd.run_dir), &old, &e) == 0) {
        if (cluster_is_up(&old)) {
            printf("meshkit is already up (run directory %s); 'mesh down' stops it.\n",
                   old.run_dir);
            return 0;
        }
        cluster_down(&old, NULL); /* leftovers of a cluster that died: namespaces, pidfiles */
    }
    if (prepare(&s, o, flags, nflags, &e) < 0 ||
        (s.secure && cluster_secure_setup(&s, token, sizeof(token), &e) < 0)) {
        fprintf(stderr, "mesh up: %s\n", e.msg);
        return 1;
    }
    cluster_secure_env(&s);
    if (start_all(&s, o, cluster_now_ms() + o->timeout / DURATION_MS, &e) < 0) {
        fprintf(stderr, "mesh up: %s\nmesh up: logs are in %s/*/; stopping what was started\n",
                e.msg, s.run_dir);
        cluster_down(&s, NULL);
        return 1;
    }
    print_urls(&s, token, o->cmd.json);
    return 0;
}

int cli_up(int argc, char **argv)
{
    struct up_opts o = {.nodes = xstrdup("web1,web2"),
                        .lb = xstrdup("mesh"),
                        .failure_timeout = 3 * DURATION_SEC,
                        .check_interval = 2 * DURATION_SEC,
                        .servers = 1,
                        .timeout = 60 * DURATION_SEC};
    struct flag flags[] = {
        CLUSTER_CMD_FLAGS(&o.cmd),
        {.name = "nodes",
         .type = FLAG_STRING,
         .ptr = &o.nodes,
         .help = "Web nodes, comma-separated."},
        {.name = "netns",
         .type = FLAG_BOOL,
         .ptr = &o.netns,
         .help = "One network namespace per node on a bridge (" NETNS_SUBNET ".0/24), standard\n"
                 "ports, as the original's VMs. Needs root."},
        {.name = "servers",
         .type = FLAG_INT,
         .ptr = &o.servers,
         .help = "Registry servers: 1, or 3 or 5 replicated over Raft (loadbalancer and nodes\n"
                 "server2, server3, ...; any one of three, two of five, may fail)."},
        {.name = "server-port",
         .type = FLAG_INT,
         .ptr = &o.server_port,
         .help = "With -servers > 1: the servers' replication port (MESH_SERVER_PORT); on\n"
                 "loopback the next servers take the next ones. Default 8300"},
        {.name = "port-offset",
         .type = FLAG_INT,
         .ptr = &o.port_offset,
         .help = "Added to every default port (MESH_PORT_OFFSET)."},
        {.name = "http-port",
         .type = FLAG_INT,
         .ptr = &o.http_port,
         .help = "Registry server's HTTP API and UI (MESH_HTTP_PORT). Default 8500"},
        {.name = "lb-port",
         .type = FLAG_INT,
         .ptr = &o.lb_port,
         .help = "Load balancer (MESH_LB_PORT). Default 8080"},
        {.name = "stats-port",
         .type = FLAG_INT,
         .ptr = &o.stats_port,
         .help = "Load balancer stats (MESH_STATS_PORT). Default 8404"},
        {.name = "dns-port",
         .type = FLAG_INT,
         .ptr = &o.dns_port,
         .help = "Registry server's DNS, UDP and TCP (MESH_DNS_PORT); on loopback the web\n"
                 "nodes' agents take the next ones. Default 8600"},
        {.name = "agent-port-base",
         .type = FLAG_INT,
         .ptr = &o.agent_port_base,
         .help =
             "Web nodes' agents on loopback: this, +1, ... (MESH_WEB_AGENT_PORT). Default 8501"},
        {.name = "web-port-base",
         .type = FLAG_INT,
         .ptr = &o.web_port_base,
         .help = "First webapp port (MESH_WEBAPP_PORT); on loopback each web node starts "
                 "100\nhigher than the previous. Default 3000"},
        {.name = "failure-timeout",
         .type = FLAG_DURATION,
         .ptr = &o.failure_timeout,
         .help = "Silence after which the server marks a node failed."},
        {.name = "check-interval",
         .type = FLAG_DURATION,
         .ptr = &o.check_interval,
         .help = "Health check interval of the webapps and of the load balancer."},
        {.name = "timeout",
         .type = FLAG_DURATION,
         .ptr = &o.timeout,
         .help = "How long to wait for the cluster to be healthy."},
        {.name = "lb",
         .type = FLAG_STRING,
         .ptr = &o.lb,
         .help = "The load balancer: mesh (mesh lb) or haproxy (Debian's HAProxy, its config\n"
                 "rendered from the registry by mesh template and reloaded seamlessly)."},
        {.name = "secure",
         .type = FLAG_BOOL,
         .ptr = &o.secure,
         .help = "Encrypted and locked: a CA and certificates (mesh tls), HTTPS only between\n"
                 "agents, lb, template and CLI, client certificates required, ACLs on with\n"
                 "default deny and a management token in RUN/tls/token (mode 0600)."},
        {.name = "haproxy-template",
         .type = FLAG_STRING,
         .ptr = &o.haproxy_template,
         .help = "With -lb haproxy: the template (default configs/haproxy.ctmpl beside the\n"
                 "binary's directory)."},
    };
    int first, status = 1;

    if (!cli_parse_flags(flags, ARRAY_LEN(flags), UP_USAGE, argc - 1, argv + 1, &first, &status))
        goto out;
    status = 1;
    if (first != argc - 1)
        fprintf(stderr, "mesh up: unexpected argument \"%s\"\n", argv[first + 1]);
    else
        status = up_run(&o, flags, ARRAY_LEN(flags));
out:
    free(o.nodes);
    free(o.lb);
    free(o.haproxy_template);
    free(o.cmd.run_dir);
    return status;
}
