/*
 * The narrow context every part of cluster/ works in, instead of the agent: the loop, the state
 * it replicates and registers members in, the settings, this node's identity and coordinate,
 * the HTTP client it reaches other servers with, and a table of ops for what only the running
 * agent can do. The agent owns it and fills it (agent/agent_cluster.c) before it starts its
 * parts; what follows "cluster/'s own" is kept by cluster/ and starts zeroed.
 */
#ifndef MESH_REGISTRY_CLUSTER_CTX_H
#define MESH_REGISTRY_CLUSTER_CTX_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "lib/http_client.h"
#include "lib/vivaldi.h"
#include "registry/cluster/coord.h"
#include "registry/cluster/members.h"

struct reg_agent;
struct reg_settings;
struct reg_cluster;
struct reg_state;

/* What only the agent can do for cluster/; every op gets the context's agent, opaque here. */
struct reg_cluster_ops {
    /* Leadership of a replicated cluster came (after the log before it is applied) or went:
     * the agent registers its own node and runs the leader's duties, or stops them. */
    void (*leadership)(struct reg_agent *a, bool leader);
    /* Whether a graceful leave is under way (members report this node "leaving"). */
    bool (*leaving)(const struct reg_agent *a);
    /*
     * A client agent's current server: fills in r's host, port and TLS settings (and what every
     * request to a server carries) and *epoch, which server_failed takes back. Returns 0, or
     * -ENOTCONN when no server is known yet.
     */
    int (*server)(struct reg_agent *a, struct http_client_request *r, uint64_t *epoch);
    /* A request sent to the server current at epoch failed at the transport level: the agent
     * moves on to the next server it knows. */
    void (*server_failed)(struct reg_agent *a, uint64_t epoch, int status);
    /* Sets r up for HTTPS to another server: the agent's CA and client certificate. The strings
     * stay valid until the next call; send r before. */
    void (*tls_options)(struct reg_agent *a, struct http_client_request *r);
    /* The server is about to exec itself (cluster.c's resync): every API call still waiting
     * gets its 500 now, since the exec would close its connection unanswered. */
    void (*restarting)(struct reg_agent *a);
};

struct reg_cluster_ctx {
    uv_loop_t *loop;
    struct reg_state *state;
    const struct reg_settings *cfg;
    const char *node_id;
    struct vivaldi_client *vivaldi; /* this node's coordinate */
    struct http_client *client;     /* requests to servers; NULL on a single server */
    const struct reg_cluster_ops *ops;
    struct reg_agent *agent; /* opaque here: handed back to ops */

    /* cluster/'s own */
    struct reg_cluster *replicated; /* a server of a replicated cluster (cluster.h); else NULL */
    struct reg_members members;     /* servers: who is in the cluster (members.h) */
    struct reg_coords coords;       /* servers: the other nodes' coordinates (coord.h) */
};

#endif
