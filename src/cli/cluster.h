/*
 * The local cluster (`mesh up` and the operator commands): the state `up` records in the run
 * directory, starting and stopping its processes, driving each web node's supervisor (`mesh pm`,
 * run as a process: components never include each other), the registry queries the commands
 * share, and aligned tables with colour on a terminal.
 *
 * Layout of the run directory (default ./run, -run-dir or MESH_RUN_DIR):
 *   cluster.json            the state below; `down` and every operator command read it
 *   <node>/agent.pid, .log  the node's agent; loadbalancer also lb.pid / lb.log
 *   <node>/data             the agent's -data-dir
 *   <node>/pm               a web node's supervisor home (`mesh pm -home`)
 *   <node>/secure.json      with -secure: the agent's TLS and ACL config (mode 0600)
 *   tls/                    with -secure: CA, certificates and the management token (0600)
 */
#ifndef MESH_CLI_CLUSTER_H
#define MESH_CLI_CLUSTER_H

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/flags.h"

#define CLUSTER_MAX_NODES   32
#define CLUSTER_NAME_MAX    32 /* node names: [a-z0-9-], also used in netns and link names */
#define CLUSTER_SERVER_NODE "loadbalancer"
#define CLUSTER_SERVICE     "web"
#define CLUSTER_STATE_FILE  "cluster.json"

/*
 * Node order: the loadbalancer node first, then the web nodes, then (with -servers N > 1) the
 * N - 1 further server nodes, so that every node after the first keeps the agent port of its
 * position whatever the roles.
 */
struct cluster_node {
    char name[CLUSTER_NAME_MAX];
    bool server;     /* runs a registry server: the loadbalancer node, and the server nodes */
    char addr[64];   /* where its agent and apps listen */
    int agent_port;  /* its agent's HTTP API */
    int web_port;    /* web nodes: PORT of instance 0; instance i takes web_port + i */
    int dns_port;    /* its agent's DNS (UDP and TCP); 0 in the state of an older `up`: off */
    int server_port; /* a server of several: its replication port (-server-port); else 0 */
    char netns[64];  /* "" on loopback */
    char veth[16];   /* host side of its link; "" on loopback */
};

struct cluster_state {
    char run_dir[PATH_MAX]; /* absolute */
    char mesh[PATH_MAX];    /* the mesh binary that ran `up` */
    char webapp[PATH_MAX];  /* webapp next to it */
    bool netns;
    char bridge[16];    /* "" on loopback */
    char host_addr[64]; /* the host's address on the bridge */
    int lb_port;
    int stats_port;
    char stats_user[64];
    char stats_password[64];
    int64_t failure_timeout_ns;
    int64_t check_interval_ns; /* webapp's registry check and the lb's active check */
    bool lb_haproxy;           /* HAProxy driven by mesh template instead of mesh lb */
    bool secure;               /* -secure: HTTPS, client certificates, ACLs (cluster_secure.c) */
    size_t n_nodes;
    struct cluster_node nodes[CLUSTER_MAX_NODES]; /* nodes[0] is the loadbalancer node */
};

/* How many nodes run a registry server (1 unless `up -servers N`). */
size_t cluster_n_servers(const struct cluster_state *s);
/* How many web nodes there are (client agent, supervisor, webapps). */
size_t cluster_n_web(const struct cluster_state *s);

/* ---- state (cluster_state.c) ------------------------------------------------------------- */

/* The run directory: the flag's value, else MESH_RUN_DIR, else "run". Borrowed. */
const char *cluster_run_dir(const char *flag_value);

json_t *cluster_state_to_json(const struct cluster_state *s);
/* Fills s from a cluster.json document. -EINVAL with e set when a field is missing or wrong. */
int cluster_state_from_json(const json_t *doc, struct cluster_state *s, struct err *e);
/* Writes run_dir/cluster.json atomically (temporary file and rename). */
int cluster_state_save(const struct cluster_state *s, struct err *e);
/*
 * Reads run_dir/cluster.json. -ENOENT with e = "no cluster in DIR (run 'mesh up')" when there is
 * none; -EINVAL on a damaged file.
 */
int cluster_state_load(const char *run_dir, struct cluster_state *s, struct err *e);

/* The node called name, or NULL (e set to a message listing the nodes). */
struct cluster_node *cluster_node_find(struct cluster_state *s, const char *name, struct err *e);
/* "RUN/<node>/<file>" into out. */
void cluster_path(const struct cluster_state *s, const struct cluster_node *n, const char *file,
                  char *out, size_t len);

/* ---- processes (cluster_proc.c) ---------------------------------------------------------- */

/*
 * Starts argv as a daemon of node n: its own session, stdin /dev/null, stdout and stderr
 * appended to log_path, inside the node's network namespace (through `ip netns exec`, which
 * execs in place, so the PID is the daemon's). Returns 0 with *pid set, or -errno with e set.
 */
int cluster_spawn(const struct cluster_node *n, char *const argv[], const char *log_path,
                  pid_t *pid, struct err *e);
/*
 * Runs argv in node n's namespace and waits for it, at most timeout_ms (then SIGKILL).
 * Its stdout is appended to out when out is not NULL (bounded to 16 MiB), else inherited;
 * stderr is inherited, or dropped with CLUSTER_RUN_QUIET. Returns the exit status (0..255), or
 * -errno with e set.
 */
#define CLUSTER_RUN_QUIET 1u
int cluster_run(const struct cluster_node *n, char *const argv[], struct buf *out, unsigned flags,
                int timeout_ms, struct err *e);

/* A process the cluster started: its PID and start time, which together name it for good. */
struct cluster_pid {
    pid_t pid;
    uint64_t start; /* clock ticks after boot (lib/procfs.h) */
};

/*
 * The process of RUN/<node>/<file> while that very process runs: the pidfile holds "PID START"
 * and /proc must show the same start time (lib/procfs.h). True with *p set (p may be NULL).
 */
bool cluster_pidfile_live(const struct cluster_state *s, const struct cluster_node *n,
                          const char *file, struct cluster_pid *p);
/* Records pid and its start time in path, atomically. */
int cluster_pidfile_write(const char *path, pid_t pid, struct err *e);
/*
 * Sends sig to p while it is still that process, and waits up to timeout_ms for it to be gone,
 * then SIGKILLs it. Returns true when it was running.
 */
bool cluster_stop_pid(const struct cluster_pid *p, int sig, int timeout_ms);
/* Sleeps ms milliseconds. */
void cluster_sleep_ms(int ms);
/* Monotonic milliseconds. */
int64_t cluster_now_ms(void);

/* ---- a node's agent and supervisor (cluster_node.c) --------------------------------- */

/*
 * Runs `mesh pm -home RUN/<node>/pm ARGS...` (args ends with NULL) in the node's namespace and
 * returns its exit status (or -errno with e set). stdout goes to out when not NULL.
 */
int cluster_pm(const struct cluster_state *s, const struct cluster_node *n, struct buf *out,
               struct err *e, ...) __attribute__((sentinel));
/* `pm ls -json` of a node as a new JSON array, or NULL with e set. */
json_t *cluster_pm_ls(const struct cluster_state *s, const struct cluster_node *n, struct err *e);
/*
 * The node's supervisor daemon, asked through its control socket (`mesh pm ping -json`): true
 * with *p set (p may be NULL) when one answers.
 */
bool cluster_pm_daemon(const struct cluster_state *s, const struct cluster_node *n,
                       struct cluster_pid *p);
/* The agent address a node's webapps are given (-agent). */
void cluster_webapp_agent(const struct cluster_node *n, char *out, size_t len);
/*
 * The node's supervised processes that run, from the supervisor's pidfiles
 * (RUN/<node>/pm/pids/NAME-I.pid, which outlive a killed supervisor), at most max. Returns how
 * many.
 */
size_t cluster_app_pids(const struct cluster_state *s, const struct cluster_node *n,
                        struct cluster_pid *out, size_t max);
/* Starts the node's agent (as `up` does) and records its PID. */
int cluster_start_agent(const struct cluster_state *s, const struct cluster_node *n, struct err *e);

/* ---- up and down (cluster_up.c, cluster_down.c; cluster_rm_tree in cluster_state.c)
 * ------------------------------------------ */

/* True while any process `up` recorded still runs. */
bool cluster_is_up(const struct cluster_state *s);
struct cluster_down_result {
    size_t stopped; /* processes */
    int namespaces; /* network namespaces removed */
};

/*
 * Stops everything of the cluster: each web node's supervisor and apps (gracefully through
 * `mesh pm kill`, then any leftover by PID), the web agents (they leave), the load balancer and
 * the server; removes the namespaces. Fills r when not NULL; prints nothing.
 */
void cluster_down(const struct cluster_state *s, struct cluster_down_result *r);
/* Removes a directory tree; nothing there is fine. 0 or -errno. */
int cluster_rm_tree(const char *path);

/* ---- ports (cluster_ports.c) ------------------------------------------------------------ */

/*
 * Checks, before anything starts, that every port the cluster will listen on is free on its
 * node's address (in namespaces each node has fresh ones: nothing to check) and that no two
 * parts were given the same port. -EADDRINUSE with e naming the port, what needed it and, when
 * /proc lets us see it, the process holding it.
 */
int cluster_ports_check(const struct cluster_state *s, struct err *e);

/* ---- network namespaces (cluster_netns.c) ----------------------------------------------- */

/* Makes the bridge, and per node a namespace with its address on a veth link. 0 or -errno. */
int cluster_netns_setup(const struct cluster_state *s, struct err *e);
/* Removes what setup made (whatever of it exists). Returns the namespaces removed. */
int cluster_netns_teardown(const struct cluster_state *s);

/* ---- registry and lb queries (cluster_query.c) ------------------------------------------- */

/* A GET's answer. */
struct cluster_reply {
    int status;
    struct buf body;
    char served_by[128]; /* X-Served-By, "" when absent */
};

/*
 * GET http://host:port/target on a private loop, with an Authorization field when
 * authorization is not NULL. Returns 0 with r filled (any status), or a negative UV error with
 * e set. Free r->body with buf_free.
 */
int cluster_get(const char *host, int port, const char *target, const char *authorization,
                int timeout_ms, struct cluster_reply *r, struct err *e);
/*
 * GET on node n's agent: plain, or for a -secure cluster over HTTPS with the client
 * certificate and the management token. As cluster_get.
 */
int cluster_get_agent(const struct cluster_state *s, const struct cluster_node *n,
                      const char *target, int timeout_ms, struct cluster_reply *r, struct err *e);
/* GET on server node n as JSON; NULL with e set on failure or a non-200. */
json_t *cluster_server_json(const struct cluster_state *s, const struct cluster_node *n,
                            const char *target, struct err *e);
/*
 * GET on the registry as JSON: on the loadbalancer node's server, else (it does not run) the
 * first server that does. NULL with e set on failure or a non-200.
 */
json_t *cluster_registry_json(const struct cluster_state *s, const char *target, struct err *e);
/*
 * GET on the registry's leader as JSON, for what only the leader knows whole (the members,
 * which announce themselves to it); as cluster_registry_json when no leader is known.
 */
json_t *cluster_leader_json(const struct cluster_state *s, const char *target, struct err *e);
/*
 * Waits until every registry server that runs names the same leader, at most timeout_ms.
 * 0 with *leader (when not NULL) set to its node, or -ETIMEDOUT with e saying what each said.
 */
int cluster_wait_leader(const struct cluster_state *s, const struct cluster_node **leader,
                        int timeout_ms, struct err *e);
/* The lb's /stats;json rows (array), NULL with e set. */
json_t *cluster_lb_stats(const struct cluster_state *s, struct err *e);
/* Passing instances of the web service on node (NULL: all nodes), or -errno with e set. */
int cluster_passing(const struct cluster_state *s, const char *node, struct err *e);
/*
 * Waits until the web service has `want` passing instances on node (NULL: all nodes), at most
 * timeout_ms. 0, -ETIMEDOUT (e says what was last seen) or another -errno.
 */
int cluster_wait_passing(const struct cluster_state *s, const char *node, int want, int timeout_ms,
                         struct err *e);
/* The lb's address as "host" and port (the server node's address). */
const char *cluster_lb_host(const struct cluster_state *s);

/* ---- an encrypted cluster: -secure (cluster_secure.c) ------------------------------------ */

#define CLUSTER_TLS_DIR         "tls" /* under the run directory */
#define CLUSTER_TLS_CA          "consul-agent-ca.pem"
#define CLUSTER_TLS_SERVER_CERT "dc1-server-consul-0.pem" /* every agent's */
#define CLUSTER_TLS_SERVER_KEY  "dc1-server-consul-0-key.pem"
#define CLUSTER_TLS_CLIENT_CERT "dc1-client-consul-0.pem" /* lb, template, webapps, CLI */
#define CLUSTER_TLS_CLIENT_KEY  "dc1-client-consul-0-key.pem"
#define CLUSTER_TLS_TOKEN       "token" /* the management token, mode 0600 */
#define CLUSTER_SECURE_CONFIG   "secure.json"

/* "RUN/tls/<file>" into out. */
void cluster_secure_path(const struct cluster_state *s, const char *file, char *out, size_t len);
/*
 * Makes RUN/tls afresh (CA and certificates from `mesh tls`, a new management token) and each
 * node's RUN/<node>/secure.json. The token goes into token[len] (len > UUID_STR_LEN) for `up`
 * to print once. 0 or -errno with e set.
 */
int cluster_secure_setup(const struct cluster_state *s, char *token, size_t len, struct err *e);
/*
 * For a -secure cluster, sets this process's MESH_* and CONSUL_* client variables (HTTPS, the
 * CA, the client certificate, the token file; a caller's own token variables are removed) so
 * that every process it starts reaches the agents; nothing otherwise.
 */
void cluster_secure_env(const struct cluster_state *s);

/* ---- HAProxy in place of mesh lb (cluster_haproxy.c) ------------------------------------- */

/*
 * The template to render: flag_value when given, else configs/haproxy.ctmpl beside the
 * directory of the mesh binary. Absolute path into out; -errno with e set when missing.
 */
int cluster_haproxy_template(const struct cluster_state *s, const char *flag_value, char *out,
                             size_t len, struct err *e);
/*
 * Starts `mesh template` (rendering tmpl into RUN/loadbalancer/haproxy.cfg, reloading HAProxy
 * after each change) and, once the file exists, HAProxy's master in the foreground (-W). PIDs in
 * template.pid and haproxy.pid. 0, or -errno with e set (deadline: monotonic ms).
 */
int cluster_haproxy_start(const struct cluster_state *s, const char *tmpl, int64_t deadline,
                          struct err *e);
/* True while the renderer or HAProxy runs. */
bool cluster_haproxy_alive(const struct cluster_state *s);
/* Stops the renderer, then HAProxy; returns how many were running. */
size_t cluster_haproxy_stop(const struct cluster_state *s);
/* SIGUSR2 to HAProxy's master: a seamless reload. 0 with *pid set, or -ESRCH with e set. */
int cluster_haproxy_reload(const struct cluster_state *s, pid_t *pid, struct err *e);
/* The web backend's and its servers' rows of "show stat" on the stats socket, as objects keyed
 * by HAProxy's CSV columns (numbers as integers); NULL with e set. */
json_t *cluster_haproxy_stats(const struct cluster_state *s, struct err *e);

/* ---- output (cluster_table.c) ------------------------------------------------------------ */

enum cluster_color { CLUSTER_PLAIN = 0, CLUSTER_GREEN, CLUSTER_RED, CLUSTER_YELLOW, CLUSTER_BOLD };

/* A table of text cells; each cell may carry a colour, applied only when the table is coloured. */
struct cluster_table {
    size_t ncols;
    size_t nrows;
    size_t cap;
    char **cells;              /* nrows * ncols heap strings */
    enum cluster_color *color; /* per cell */
};

void cluster_table_init(struct cluster_table *t, size_t ncols);
/* Appends a row of ncols strings (copied). */
void cluster_table_row(struct cluster_table *t, const char *const *cells);
/* Sets the colour of the last row's cell col. */
void cluster_table_color(struct cluster_table *t, size_t col, enum cluster_color c);
/*
 * Renders the table: the first row is the header (bold when coloured); columns padded to their
 * widest cell (measured without colour codes) and separated by two spaces; no trailing spaces.
 * A cell with newlines spans as many lines, the row's other cells blank below their first line.
 */
void cluster_table_render(const struct cluster_table *t, bool color, struct buf *out);
void cluster_table_free(struct cluster_table *t);
/* The colour for a status word: passing/UP/online/alive green, warning yellow, the rest red. */
enum cluster_color cluster_status_color(const char *status);
/* True when stdout is a terminal and NO_COLOR is unset or empty. */
bool cluster_use_color(void);

/* ---- views: what the read-only commands show (cluster_view.c) ---------------------------- */

/* Each returns a new array of flat objects (keys in docs/cluster.md), or NULL with e set. */
json_t *
cluster_view_nodes(const struct cluster_state *s,
                   struct err *e); /* node, address, status, checks_passing, checks_total, checks */
json_t *cluster_view_servers(const struct cluster_state *s,
                             struct err *e); /* node, address, state, term, commit_index,
                                                applied_index, last_log_index */
json_t *cluster_view_checks(const struct cluster_state *s,
                            struct err *e); /* node, check, service, status, output */
json_t *cluster_view_instances(const struct cluster_state *s,
                               struct err *e); /* service, id, node, address, port, status */
json_t *cluster_view_apps(const struct cluster_state *s,
                          struct err *e); /* node + `mesh pm ls -json`'s keys */
json_t *
cluster_view_lb(const struct cluster_state *s,
                struct err *e); /* server, address, status, check, active, total, errors_5xx */

struct cluster_column {
    const char *header;
    const char *key;
    unsigned how; /* CLUSTER_COL_* */
};

#define CLUSTER_COL_STATUS 1u /* coloured by cluster_status_color */
#define CLUSTER_COL_BYTES  2u /* a byte count, shown as "11.2 MB" */
#define CLUSTER_COL_LINES  4u /* text shown whole, on as many lines as it has */

/* A view as a table with the given columns (missing keys print empty). */
void cluster_view_render(const json_t *view, const struct cluster_column *cols, size_t ncols,
                         bool color, struct buf *out);

/* ---- command plumbing (cluster_state.c) -------------------------------------------------- */

/* Options every operator command takes. */
struct cluster_cmd {
    char *run_dir; /* flag value, heap or NULL */
    bool json;
    const char *arg; /* the positional argument (a node name), borrowed from argv */
};

#define CLUSTER_CMD_FLAGS(c)                                                                       \
    {.name = "run-dir",                                                                            \
     .type = FLAG_STRING,                                                                          \
     .ptr = &(c)->run_dir,                                                                         \
     .help = "Run directory of the cluster (also MESH_RUN_DIR). Default ./run"},                   \
    {                                                                                              \
        .name = "json", .type = FLAG_BOOL, .ptr = &(c)->json, .help = "Print JSON for scripts."    \
    }

/*
 * Parses a command's flags, which may surround its positional arguments; want_args (0 or 1) of
 * those are expected, the one given in c->arg. Then loads the state. Returns true to go on;
 * otherwise *exit_code is set (message printed).
 */
bool cluster_cmd_begin(struct cluster_cmd *c, struct flag *flags, size_t n, const char *usage,
                       int argc, char **argv, size_t want_args, int *exit_code,
                       struct cluster_state *s);
/* Prints a JSON value (pretty) and a newline to stdout. */
void cluster_print_json(const json_t *v);

#endif
