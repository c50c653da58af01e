/* `mesh agent`: setup, the local node, signals and shutdown. */
#include "registry/agent/agent.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/alloc.h"
#include "lib/file.h"
#include "lib/flags.h"
#include "lib/log.h"
#include "lib/rlimit.h"
#include "lib/sd_notify.h"
#include "lib/uuid.h"
#include "registry/agent/acl_client.h"
#include "registry/agent/agent_internal.h"
#include "registry/agent/agent_tls.h"
#include "registry/api/api.h"
#include "registry/cluster/cluster.h"
#include "registry/api/decode.h"
#include "registry/agent/sync.h"

#define HOUSEKEEPING_MS 10000

bool reg_agent_builtin_service(const struct reg_agent *a, const char *service_id)
{
    return a->cfg.server && strcmp(service_id, "consul") == 0;
}

struct reg_node *reg_agent_local_node(struct reg_agent *a)
{
    struct reg_node *n = reg_node_get(&a->state, a->cfg.node_name);
    if (!n && !reg_cluster_may_write(&a->cluster)) {
        /* A replicated server that does not lead: the leader registers servers' nodes. */
        a->shadow_node.name = a->cfg.node_name;
        a->shadow_node.id = a->node_id;
        a->shadow_node.datacenter = a->cfg.datacenter;
        return &a->shadow_node;
    }
    if (!n) { /* removed through the catalog API: the agent's own node always exists */
        reg_agent_ensure_local_node(a);
        n = reg_node_get(&a->state, a->cfg.node_name);
    }
    return n;
}

/* ---- node identity ----------------------------------------------------------------------- */

/*
 * The node ID survives restarts through <data-dir>/node-id, as Consul's does. The file is written
 * whole or not at all, so one that does not hold a UUID was damaged: the agent then refuses to
 * start, as Consul does, rather than come back as another node.
 */
static int load_node_id(struct reg_agent *a, struct err *e)
{
    struct buf path = BUF_INIT, text = BUF_INIT;
    int rc = 0;

    uuid_v4(a->node_id);
    if (!a->cfg.data_dir || a->cfg.dev) /* -dev keeps everything in memory */
        return 0;
    buf_printf(&path, "%s/node-id", a->cfg.data_dir);
    int fd = open(path.data, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        buf_printf(&text, "%s\n", a->node_id);
        rc = file_replace(path.data, text.data, text.len, 0600, FILE_SYNC, e);
        goto out;
    }
    if (fd < 0) {
        rc = -errno;
        err_set(e, "%s: %s", path.data, strerror(errno));
        goto out;
    }
    rc = file_read_all(fd, &text);
    close(fd);
    if (rc < 0) {
        err_set(e, "%s: %s", path.data, strerror(-rc));
        goto out;
    }
    char *nl = strchr(text.data, '\n'); /* the ID is the first line */
    if (nl)
        *nl = '\0';
    if (!uuid_is_text(text.data)) {
        rc = err_set(e,
                     "%s: not a node ID (a UUID); restore it, or remove it to start as a new "
                     "node",
                     path.data);
        goto out;
    }
    for (size_t i = 0; i < UUID_STR_LEN; i++)
        a->node_id[i] = (char)tolower((unsigned char)text.data[i]);
out:
    buf_free(&path);
    buf_free(&text);
    return rc;
}

static const char *advertise_addr(const struct reg_agent *a)
{
    const char *b = a->cfg.bind_addr;
    return strcmp(b, "0.0.0.0") == 0 || strcmp(b, "::") == 0 ? "127.0.0.1" : b;
}

void reg_agent_ensure_local_node(struct reg_agent *a)
{
    const char *addr = advertise_addr(a);
    json_t *tagged = json_pack("{s:s, s:s, s:s, s:s}", "lan", addr, "lan_ipv4", addr, "wan", addr,
                               "wan_ipv4", addr);
    json_t *meta = json_pack("{s:s}", "consul-network-segment", "");
    struct reg_node_fields f = {
        .name = a->cfg.node_name,
        .id = a->node_id,
        .address = addr,
        .datacenter = a->cfg.datacenter,
        .tagged_addresses = tagged,
        .meta = meta,
    };

    reg_node_upsert(&a->state, &f);
    json_decref(tagged);
    json_decref(meta);
    if (!a->cfg.server)
        return; /* a client's serfHealth is the servers' to keep (members.c) */
    struct reg_node *node = reg_node_get(&a->state, a->cfg.node_name);
    struct reg_check serf = {
        .id = "serfHealth",
        .name = "Serf Health Status",
        .status = REG_PASSING,
        .output = "Agent alive and reachable",
        .service_id = "",
        .type = "",
    };
    reg_check_upsert(&a->state, node, &serf);
    reg_members_consul_service(&a->state, node, a->cfg.server_port);
}

/* ---- local services and checks ----------------------------------------------------------- */

int reg_agent_service_deregister(struct reg_agent *a, const char *service_id)
{
    struct reg_node *node = reg_agent_local_node(a);

    if (!reg_service_get(node, service_id))
        return -ENOENT;
    smap_foreach(&node->checks, e)
    {
        const struct reg_check *chk = e->val;
        if (strcmp(chk->service_id, service_id) == 0)
            reg_checks_stop(a->checks, chk->id);
    }
    reg_service_delete(&a->state, node, service_id);
    return 0;
}

static void on_reap(const char *service_id, void *data)
{
    struct reg_agent *a = data;

    if (!reg_cluster_may_write(&a->cluster))
        return; /* the leader reaps */
    log_info("deregistering service %s: its check stayed critical past "
             "DeregisterCriticalServiceAfter",
             service_id);
    reg_agent_service_deregister(a, service_id);
}

/*
 * Restarts the runners of the local node's checks after a restart with a data dir: each
 * check's stored Definition is the probe as registered, decoded again as a check body.
 */
static void restore_check_runners(struct reg_agent *a)
{
    struct reg_node *node = reg_agent_local_node(a);
    struct reg_decode_opts opts = {.allow_scripts = a->cfg.enable_script_checks ||
                                                    a->cfg.enable_local_script_checks};

    smap_foreach(&node->checks, e)
    {
        const struct reg_check *chk = e->val;
        struct reg_check_reg r;
        struct err err = {{0}};
        if (!chk->type[0] || strcmp(chk->type, "maintenance") == 0)
            continue;
        json_t *def = json_deep_copy(chk->definition);
        json_object_set_new(def, "CheckID", json_string(chk->id));
        json_object_set_new(def, "Name", json_string(chk->name));
        json_object_set_new(def, "ServiceID", json_string(chk->service_id));
        if (reg_decode_check(def, &opts, NULL, NULL, NULL, &r, &err) == 0) {
            reg_checks_start(a->checks, r.run);
            r.run = NULL;
        } else {
            log_warn("check %s not restarted: %s", chk->id, err.msg);
        }
        reg_check_reg_free(&r);
        json_decref(def);
    }
}

/* ---- lifecycle --------------------------------------------------------------------------- */

static void on_http_closed(struct http_server *srv)
{
    (void)srv;
}

void reg_agent_shutdown(struct reg_agent *a)
{
    if (a->shutting_down)
        return;
    a->shutting_down = true;
    log_info("shutting down");
    sd_notify_stopping();
    if (a->cluster.members.cx)
        reg_members_close(&a->cluster.members);
    reg_cluster_stop(&a->cluster);
    reg_sync_stop(a);
    reg_acl_cache_free(a->acl_cache);
    a->acl_cache = NULL;
    if (a->client)
        http_client_free(a->client);
    a->client = NULL;
    a->cluster.client = NULL;
    reg_watch_set_close(&a->watches);
    reg_dns_close(&a->dns);
    http_server_close(&a->http, on_http_closed);
    reg_agent_tls_close(a);
    uv_close((uv_handle_t *)&a->sig_int, NULL);
    uv_close((uv_handle_t *)&a->sig_term, NULL);
    uv_close((uv_handle_t *)&a->sig_hup, NULL);
    uv_close((uv_handle_t *)&a->housekeeping, NULL);
    heap_trim_close(&a->heap_trim);
    if (a->checks)
        reg_checks_free(a->checks);
    a->checks = NULL;
    reg_sessions_free(a->sessions);
    a->sessions = NULL;
    a->api.sessions = NULL;
}

void reg_agent_leave(struct reg_agent *a)
{
    if (a->leaving || a->shutting_down)
        return;
    a->leaving = true;
    if (a->cluster.replicated)
        reg_cluster_leave(&a->cluster, reg_agent_shutdown);
    else if (a->cfg.server)
        reg_agent_shutdown(a);
    else
        reg_sync_leave(a, reg_agent_shutdown);
}

/*
 * A client agent leaves gracefully on SIGTERM and SIGINT (its services are deregistered at
 * once), as Consul's does. A server of a replicated cluster leaves (is removed from the
 * configuration) on SIGINT, and on SIGTERM just stops, counted as failed until it comes back:
 * a restart under a supervisor must not shrink the cluster. A single server just stops.
 */
static void on_signal(uv_signal_t *s, int signum)
{
    struct reg_agent *a = s->data;
    log_info("caught signal %d", signum);
    if (a->cluster.replicated && signum == SIGTERM)
        reg_agent_shutdown(a);
    else
        reg_agent_leave(a);
}

static void on_sighup(uv_signal_t *s, int signum)
{
    struct reg_agent *a = s->data;
    struct err e;

    (void)signum;
    log_info("caught SIGHUP: reloading the configuration");
    sd_notify_reloading();
    if (reg_agent_reload(a, &e) < 0)
        log_error("reload failed, the running configuration stays: %s", e.msg);
    sd_notify_ready("serving the HTTP API");
}

static void on_housekeeping(uv_timer_t *t)
{
    struct reg_agent *a = t->data;
    if (a->persist)
        reg_persist_maybe_compact(a->persist);
}

/* Every committed change wakes the blocking queries that read it and, on a client agent,
 * schedules pushing it to the servers. */
static void agent_on_change(enum reg_table table, void *data)
{
    struct reg_agent *a = data;

    reg_watch_on_change(table, &a->watches);
    if (!a->cfg.server)
        reg_sync_on_change(table, a);
}

struct http_server_config reg_agent_http_config(const struct reg_settings *cfg)
{
    return (struct http_server_config){
        .max_conns = (size_t)cfg->http_max_conns,
        .max_conns_per_client = (size_t)cfg->http_max_conns_per_client,
        .max_unsent_per_client =
            cfg->http_max_unsent_mb ? (size_t)cfg->http_max_unsent_mb << 20 : SIZE_MAX,
        .write_timeout_ms = (uint64_t)(cfg->http_write_timeout_ns / DURATION_MS),
    };
}

/* Handles first, so that a failure at any later step can shut down through one path. */
static void agent_init_handles(struct reg_agent *a)
{
    reg_state_init(&a->state);
    reg_watch_set_init(&a->watches, a->loop);
    reg_metrics_init(&a->metrics);
    vivaldi_client_init(&a->vivaldi);
    a->state.on_change = agent_on_change;
    a->state.change_data = a;
    struct http_server_config hc = reg_agent_http_config(&a->cfg);
    reg_agent_api_init(a);
    reg_agent_dns_init(a);
    reg_agent_cluster_init(a);
    reg_coords_init(&a->cluster.coords);
    http_server_init(&a->http, a->loop, &hc, reg_api_handle, &a->api);
    uv_signal_init(a->loop, &a->sig_int);
    uv_signal_init(a->loop, &a->sig_term);
    uv_signal_init(a->loop, &a->sig_hup);
    a->sig_int.data = a->sig_term.data = a->sig_hup.data = a;
    uv_timer_init(a->loop, &a->housekeeping);
    a->housekeeping.data = a;
    heap_trim_init(&a->heap_trim, a->loop);
}

/* The HTTP client for requests to servers: client agents' and replicated servers'. */
static void client_new(struct reg_agent *a)
{
    a->client = http_client_new(a->loop);
    a->cluster.client = a->client;
}

static int agent_start(struct reg_agent *a, struct err *e)
{
    int rc;

    if (reg_cluster_wanted(&a->cluster)) {
        client_new(a);                          /* to reach the other servers */
        rc = reg_cluster_start(&a->cluster, e); /* the state comes from the replicated log */
        if (rc < 0)
            return rc;
    } else if (a->cfg.data_dir && !a->cfg.dev) {
        rc = reg_cluster_check_single_data_dir(a->cfg.data_dir, e);
        if (rc < 0)
            return rc;
        rc = reg_persist_open(&a->persist, a->loop, a->cfg.data_dir, &a->state, e);
        if (rc < 0)
            return rc;
        reg_metrics_time_journal(&a->metrics, &a->state);
    }
    rc = load_node_id(a, e);
    if (rc < 0)
        return rc;
    a->sessions = reg_sessions_new(a->loop, &a->state); /* after replay: restarts TTLs */
    a->api.sessions = a->sessions;
    a->checks = reg_checks_new(a->loop, &a->state, a->cfg.node_name, on_reap, a);
    if (reg_cluster_may_write(&a->cluster))
        reg_agent_ensure_local_node(a);
    restore_check_runners(a);
    rc = reg_agent_config_services_apply(a, NULL, &a->cfg, e);
    if (rc < 0)
        return rc;
    if (a->cfg.server) {
        reg_members_init(&a->cluster.members, &a->cluster);
    } else {
        client_new(a);
        if (a->cfg.acl_enabled)
            a->acl_cache = reg_acl_cache_new(a);
        rc = reg_sync_start(a, e);
        if (rc < 0)
            return rc;
    }
    if (a->cfg.http_port > 0) {
        rc = http_server_listen(&a->http, a->cfg.client_addr, a->cfg.http_port, e);
        if (rc < 0)
            return rc;
    }
    rc = reg_agent_tls_start(a, e);
    if (rc < 0)
        return rc;
    struct err dns_err;
    /* Several agents often share a host (tests, `mesh up`): a taken DNS port costs DNS only. */
    if (reg_dns_start(&a->dns, &dns_err) < 0)
        log_error("%s; the agent runs without DNS", dns_err.msg);
    if (a->cfg.pid_file && (rc = file_write_pid(a->cfg.pid_file, e)) < 0)
        return rc;
    uv_signal_start(&a->sig_int, on_signal, SIGINT);
    uv_signal_start(&a->sig_term, on_signal, SIGTERM);
    uv_signal_start(&a->sig_hup, on_sighup, SIGHUP);
    uv_timer_start(&a->housekeeping, on_housekeeping, HOUSEKEEPING_MS, HOUSEKEEPING_MS);
    return 0;
}

int reg_agent_main(int argc, char **argv)
{
    struct reg_agent *a = xcalloc(1, sizeof(*a));
    struct err e = {""};
    enum log_level lvl;

    log_set_component("agent");
    a->argc = argc - 1; /* kept for reloads */
    a->argv = argv + 1;
    int rc = reg_agent_config_load(&a->cfg, argc - 1, argv + 1, &e);
    if (rc == FLAGS_HELP) {
        reg_agent_config_free(&a->cfg);
        free(a);
        return 0;
    }
    if (rc < 0) {
        fprintf(stderr, "mesh agent: %s\n", e.msg);
        reg_agent_config_free(&a->cfg);
        free(a);
        return 1;
    }
    if (log_level_parse(a->cfg.log_level, &lvl))
        log_min_level = lvl;
    /* A descriptor per HTTP client, blocking query, peer and check, as Consul's Go runtime. */
    rlimit_nofile_raise();
    if (a->cfg.unknown_keys.len)
        log_warn("config keys not supported by meshkit, ignored: %s", a->cfg.unknown_keys.data);
    a->loop = uv_default_loop();
    /* A replication peer that dies while a message is being written to it must cost an EPIPE,
     * not the process (libuv's stream writes do not suppress SIGPIPE). */
    signal(SIGPIPE, SIG_IGN);
    srand((unsigned)(uv_hrtime() ^ (uint64_t)getpid()));
    agent_init_handles(a);
    rc = agent_start(a, &e);
    if (rc < 0) {
        fprintf(stderr, "mesh agent: %s\n", e.msg);
        a->exit_status = 1;
        reg_agent_shutdown(a);
    } else {
        char http[300] = "off";
        if (a->cfg.http_port > 0)
            snprintf(http, sizeof(http), "%s:%d", a->cfg.client_addr, a->cfg.http_port);
        log_info("agent started: node=%s datacenter=%s http=%s server=%s data-dir=%s",
                 a->cfg.node_name, a->cfg.datacenter, http, a->cfg.server ? "true" : "false",
                 a->cfg.data_dir ? a->cfg.data_dir : "(none)");
        if (a->cfg.ui && a->cfg.http_port > 0)
            log_info("web UI on http://%s/ui/", http);
        sd_notify_ready("serving the HTTP API");
    }
    uv_run(a->loop, UV_RUN_DEFAULT);
    reg_sync_free(a);
    if (a->persist)
        reg_persist_close(a->persist);
    if (a->cfg.pid_file && rc == 0)
        unlink(a->cfg.pid_file);
    reg_state_free(&a->state);
    reg_coords_free(&a->cluster.coords);
    int status = a->exit_status;
    reg_agent_config_free(&a->cfg);
    uv_loop_close(a->loop);
    free(a);
    return status;
}
