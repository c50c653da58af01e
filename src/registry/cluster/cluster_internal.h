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

#include "lib/json.h"
#include "registry/cluster/replication.h"

#define DISCOVER_MS      1000 /* between formation probes */
#define DEFAULT_API_PORT 8500

/* A server as formation and forwarding know it. */
struct peer {
    uint64_t id;
    char node[128];
    char raft_addr[REG_REPL_ADDR_MAX];
    char http_host[256];
    int http_port;
};

struct batch;

struct reg_cluster {
    struct reg_agent *agent;
    struct reg_repl *repl;
    struct batch *open;   /* collecting this turn's records; NULL when none */
    struct batch *newest; /* the last proposed batch still in flight */
    uint64_t records;
    bool applying; /* records come from the log: not proposed again */
    uv_prepare_t flush;
    uv_timer_t discover;
    struct peer peers[REG_REPL_MAX_SERVERS]; /* peers[0] is this server */
    size_t npeers;
    bool cluster_seen; /* some probe answered from a formed cluster */
    bool join_sent;
    bool resyncing;
    bool stopping;      /* reg_cluster_stop ran: failures are the shutdown's, not a divergence */
    int closes_pending; /* handles and the engine still closing; the last frees */
};

/* The server with this replication ID in cl->peers, or NULL. */
struct peer *peer_by_id(struct reg_cluster *cl, uint64_t id);
/* A peer from its JSON form ({ID, Node, Address, HTTPAddr}); fields missing stay empty. */
void peer_from_json(struct peer *p, const json_t *v);
/* The JSON form of a peer (new reference). */
json_t *peer_json(const struct peer *p);
/* Learns a server (or more about one): a new one is added, a known one's addresses refreshed. */
void peer_learn(struct reg_cluster *cl, const struct peer *p);

/* The discover timer's callback: probes -retry-join addresses (data is the cluster). */
void cluster_discover(uv_timer_t *t);

#endif
