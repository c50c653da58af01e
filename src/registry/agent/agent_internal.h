/*
 * The running agent, for agent/'s own files only: the API, DNS and cluster/ get narrow contexts
 * of it instead (api/api.h, dns/dns.h, cluster/cluster_ctx.h), filled by agent_api.c,
 * agent_dns.c and agent_cluster.c.
 */
#ifndef MESH_REGISTRY_AGENT_INTERNAL_H
#define MESH_REGISTRY_AGENT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "lib/heap_trim.h"
#include "lib/http_server.h"
#include "registry/agent/agent_config.h"
#include "registry/agent/checks.h"
#include "lib/vivaldi.h"
#include "registry/cluster/cluster_ctx.h"
#include "registry/agent/metrics.h"
#include "registry/agent/persist.h"
#include "registry/api/sessions.h"
#include "registry/state/state.h"
#include "registry/api/api.h"
#include "registry/api/watch.h"
#include "registry/dns/dns.h"

struct reg_agent {
    uv_loop_t *loop;
    struct reg_settings cfg;
    struct reg_state state;
    struct reg_persist *persist; /* NULL without a data dir, or in a replicated cluster */
    /* What reg_agent_local_node returns on a replicated server that may not write while its node
     * is not in the state yet: an empty node outside the catalog. */
    struct reg_node shadow_node;
    struct reg_checks *checks;
    struct reg_sessions *sessions; /* session TTLs, lock-delay clock, user events */
    struct http_server http;
    struct http_server https; /* HTTPS API (agent_tls.c); running when https_on */
    struct tls_ctx *https_ctx;
    bool https_on;
    struct reg_watch_set watches;
    struct reg_api api;              /* what the HTTP API sees of the agent (agent_api.c) */
    struct reg_metrics metrics;      /* /v1/agent/metrics (metrics.h) */
    struct vivaldi_client vivaldi;   /* this node's network coordinate */
    struct reg_cluster_ctx cluster;  /* what cluster/ sees of the agent (agent_cluster.c) */
    struct reg_sync *sync;           /* client agents: the link to the servers (sync.h) */
    struct http_client *client;      /* client agents: requests to servers */
    struct reg_acl_cache *acl_cache; /* client agents with ACLs: tokens as servers resolve them */
    struct reg_dns dns;              /* what DNS sees of the agent (agent_dns.c) */
    char node_id[37];
    uint64_t started_ms;
    bool node_maintenance;
    bool leaving;       /* a graceful leave is under way */
    bool shutting_down; /* handles are closing */
    uv_signal_t sig_int;
    uv_signal_t sig_term;
    uv_signal_t sig_hup; /* reload */
    int argc;            /* the agent's arguments, read again on reload (borrowed from main) */
    char **argv;
    uv_timer_t housekeeping;
    struct heap_trim heap_trim; /* after large answers (agent_api.c) */
    int exit_status;
};

/* The HTTP and HTTPS servers' limits, from the limits.* settings. */
struct http_server_config reg_agent_http_config(const struct reg_settings *cfg);

/* Fills a->api, the context the HTTP API serves requests in (agent_api.c). */
void reg_agent_api_init(struct reg_agent *a);
/* Fills a->dns, the context DNS answers in (agent_dns.c). */
void reg_agent_dns_init(struct reg_agent *a);
/* Fills a->cluster, the context cluster/ works in (agent_cluster.c). */
void reg_agent_cluster_init(struct reg_agent *a);

/* The local node in the catalog (always present while the agent runs). */
struct reg_node *reg_agent_local_node(struct reg_agent *a);

/*
 * Whether service_id names a server's built-in "consul" service: the cluster registers it in the
 * catalog, so, as in Consul, it is not one of the agent's own services (/v1/agent/services).
 */
bool reg_agent_builtin_service(const struct reg_agent *a, const char *service_id);

/* Registers or replaces the node's serfHealth check and the local node entry. */
void reg_agent_ensure_local_node(struct reg_agent *a);

struct reg_service_reg;
/* Registers a decoded service and its checks on the local node, starting their runners. */
int reg_agent_register_service(struct reg_agent *a, struct reg_service_reg *r, bool replace_checks);

/* Deregisters a local service, its checks and their runners. 0 or -ENOENT. */
int reg_agent_service_deregister(struct reg_agent *a, const char *service_id);

/*
 * Registers the services of cfg's config files (replacing earlier definitions of the same IDs)
 * and, when before is given, deregisters those it defined that cfg no longer does. Validates
 * every definition first: returns 0, or -EINVAL with e = "file:line: message" and nothing
 * changed. (agent_reload.c)
 */
int reg_agent_config_services_apply(struct reg_agent *a, const struct reg_settings *before,
                                    const struct reg_settings *cfg, struct err *e);
/* Reads flags and config files again and applies what can change while running (services
 * from config files, log level). Returns 0, or -EINVAL with e set and nothing changed. */
int reg_agent_reload(struct reg_agent *a, struct err *e);

/* Starts a graceful shutdown: stop accepting, answer parked queries, close, exit the loop. */
void reg_agent_shutdown(struct reg_agent *a);
/* Leaves the cluster (client agents tell the servers first), then shuts down. */
void reg_agent_leave(struct reg_agent *a);

#endif
