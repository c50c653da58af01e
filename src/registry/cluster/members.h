/*
 * Cluster membership, kept by servers. Client agents announce themselves with a heartbeat
 * (PUT /v1/internal/mesh/heartbeat) every second or so; a server registers each one's node in
 * the catalog with a passing serfHealth check, and a failure detector turns serfHealth
 * critical ("Agent not live or unreachable") when a node has been silent for failure_timeout,
 * which drops all its instances from ?passing results. The node comes back passing with its
 * next heartbeat. A graceful leave deregisters the node; force-leave does it for a failed one
 * (a live one is only marked leaving).
 *
 * This stands in for Consul's gossip (Serf) with a simpler mechanism of the same outcome: a
 * dead node is noticed within seconds and its services stop receiving traffic.
 */
#ifndef MESH_REGISTRY_MEMBERS_H
#define MESH_REGISTRY_MEMBERS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "lib/err.h"
#include "lib/smap.h"

struct reg_cluster_ctx;

/* Serf's member status codes, as /v1/agent/members reports them. */
enum reg_member_status {
    REG_MEMBER_NONE = 0,
    REG_MEMBER_ALIVE,
    REG_MEMBER_LEAVING,
    REG_MEMBER_LEFT,
    REG_MEMBER_FAILED,
};

struct reg_member {
    char *name;
    char *id;
    char *addr;
    char *datacenter;
    bool server;
    enum reg_member_status status;
    uint64_t last_seen_ms; /* loop time of the last heartbeat */
};

struct reg_members {
    struct reg_cluster_ctx *cx;
    struct smap by_name; /* lower-cased node name -> struct reg_member */
    uv_timer_t detector;
};

/*
 * Starts the failure detector. Nodes already in the catalog with a serfHealth check (members
 * before a restart) get a grace period of one failure timeout to heartbeat again.
 */
void reg_members_init(struct reg_members *m, struct reg_cluster_ctx *cx);
void reg_members_close(struct reg_members *m);

/*
 * Gives every node in the catalog with a serfHealth check one failure timeout to be heard from
 * (a new leader of a replicated cluster, or a restart), registering it as an alive member.
 */
void reg_members_grace(struct reg_members *m);

/*
 * Records a heartbeat (the body of PUT /v1/internal/mesh/heartbeat: Node, ID, Address,
 * Datacenter, TaggedAddresses, Meta). Returns 0 and sets *known (false when the server had no
 * record of the node: the agent should then push its whole state), or -EINVAL with e set.
 */
int reg_members_heartbeat(struct reg_members *m, const json_t *body, bool *known, struct err *e);

/* A server's "consul" service on its node, on its replication port (as Consul's servers). */
struct reg_node;
struct reg_state;
void reg_members_consul_service(struct reg_state *st, struct reg_node *node, int server_port);

/* A graceful leave: the node and its services are deregistered, the member is "left". */
void reg_members_leave(struct reg_members *m, const char *node);

/*
 * force-leave: a failed member leaves as with leave; an alive one is only "leaving" (Serf's
 * status 2) and keeps its node, until its next heartbeat makes it alive again or a failure
 * timeout of silence makes it left. With prune the member leaves whatever its status and is
 * dropped from the list too. -ENOENT when unknown.
 */
int reg_members_force_leave(struct reg_members *m, const char *node, bool prune);

/* The local agent as a member object (/v1/agent/members in docs/api.md). New reference. */
json_t *reg_members_local(const struct reg_cluster_ctx *cx);

/*
 * Every member (this server first), as /v1/agent/members returns them. A server of a replicated
 * cluster that does not lead gives its own view: the catalog's word on each node, and its own
 * on the other servers (reg_cluster_server_heard). New reference.
 */
json_t *reg_members_list(const struct reg_members *m);
/* The WAN pool as /v1/agent/members?wan=1 shows it: the servers, named NAME.DC, on port 8302.
 * m may be unstarted (a client agent: no server, an empty list). New reference. */
json_t *reg_members_wan_list(const struct reg_members *m, const struct reg_cluster_ctx *cx);

#endif
