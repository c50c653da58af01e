/*
 * What cluster.c (the state machine, held answers, forwarding, lifetime) and cluster_members.c
 * (formation, joining and leaving) share. Internal to src/registry/cluster.
 */
#ifndef MESH_REGISTRY_CLUSTER_INTERNAL_H
#define MESH_REGISTRY_CLUSTER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lib/http_client.h"
#include "lib/json.h"
#include "lib/list.h"
#include "registry/cluster/replication.h"

#define DISCOVER_MS 1000 /* between formation probes */
/* Once formed, probes learn the others' HTTP addresses and hear that they live. */
#define DISCOVER_FORMED_MS 5000
#define PROBE_TIMEOUT_MS   2000
/* The longest from one probe's answer to the next's. */
#define REG_CLUSTER_PROBE_PERIOD_MS (DISCOVER_FORMED_MS + PROBE_TIMEOUT_MS)
#define DEFAULT_API_PORT            8500

/* A server as formation and forwarding know it. */
struct peer {
    uint64_t id;
    char node[128];
    char raft_addr[REG_REPL_ADDR_MAX];
    char http_host[256];
    int http_port;
    uint64_t heard_ms; /* loop time its API last answered a formation probe; 0: never */
};

struct batch;
struct paused;

struct reg_cluster {
    struct reg_cluster_ctx *cx;
    struct reg_repl *repl;
    struct batch *open;        /* collecting this turn's records; NULL when none */
    struct list_node inflight; /* proposed batches (struct batch) not yet committed, oldest first */
    bool applying;             /* records come from the log: not proposed again */
    struct list_node paused;   /* writes (struct paused) waiting for a full log's snapshot */
    uv_timer_t paused_deadline; /* when the oldest paused write has waited long enough */
    uv_prepare_t flush;
    uv_timer_t discover;
    uv_timer_t beat;                         /* a follower's heartbeat to the leader */
    struct peer peers[REG_REPL_MAX_SERVERS]; /* peers[0] is this server */
    size_t npeers;
    bool https;        /* the API is HTTPS only: the servers speak HTTPS to each other too */
    bool cluster_seen; /* some probe answered from a formed cluster */
    bool join_sent;
    bool resyncing;
    bool stopping;      /* reg_cluster_stop ran: failures are the shutdown's, not a divergence */
    int closes_pending; /* handles and the engine still closing; the last frees */
};

/* The server with this replication ID in cl->peers, or NULL. */
struct peer *reg_peer_by_id(struct reg_cluster *cl, uint64_t id);
/* A peer from its JSON form ({ID, Node, Address, HTTPAddr}); fields missing stay empty. */
void reg_peer_from_json(struct peer *p, const json_t *v);
/* The JSON form of a peer (new reference). */
json_t *reg_peer_json(const struct peer *p);
/* Learns a server (or more about one): a new one is added, a known one's addresses refreshed. */
void reg_peer_learn(struct reg_cluster *cl, const struct peer *p);

/*
 * An API call waiting for the engine's callback (a barrier, a membership change). Its client may
 * go away meanwhile: the call is then freed and the wait finds it gone.
 */
struct engine_wait {
    struct reg_cluster *cl;
    struct reg_api_call *call; /* NULL once the client went away */
};

/* Parks c until the engine calls back with the returned wait as its argument. */
struct engine_wait *reg_engine_wait_new(struct reg_cluster *cl, struct reg_api_call *c);
/* Frees w and gives its call back to be answered, or NULL when the client went away. */
struct reg_api_call *reg_engine_wait_end(struct engine_wait *w);

/*
 * Sets up r (a request to another server's API) for HTTPS, with the agent's client certificate,
 * when the servers speak it (cl->https); leaves it plain otherwise.
 */
void reg_cluster_peer_tls(const struct reg_cluster *cl, struct http_client_request *r);

/* The discover timer's callback: probes -retry-join addresses (data is the cluster). */
void reg_cluster_discover(uv_timer_t *t);

/*
 * The beat timer's callback (data is the cluster): a follower announces its own node to the
 * leader as a client agent does, with its replication port, so that the leader keeps every
 * server's node in the catalog and fails it when it falls silent (members.h).
 */
void reg_cluster_beat(uv_timer_t *t);

#endif
