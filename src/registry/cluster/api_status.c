/*
 * The /v1/status endpoints and the raft configuration. A single server is always the leader of
 * a configuration of one, whose entry is the log's first (index 1); a replicated server reports
 * the engine's view (cluster.h).
 */
#include <stdio.h>

#include "registry/cluster/cluster_ctx.h"
#include "registry/settings/settings.h"
#include "registry/state/state.h"
#include "registry/api/api_routes.h"
#include "registry/cluster/cluster.h"

/* The server RPC address Consul reports: the node address on port 8300. */
static void server_addr(const struct reg_cluster_ctx *cx, char *out, size_t n)
{
    const struct reg_node *node = reg_node_get(cx->state, cx->cfg->node_name);
    snprintf(out, n, "%s:%d", node ? node->address : "127.0.0.1", cx->cfg->server_port);
}

void reg_api_status_leader(struct reg_api_call *c, struct reg_api_result *res)
{
    struct reg_repl_status st;
    char addr[300];

    if (c->api->cluster->replicated) {
        reg_cluster_status(c->api->cluster, &st);
        reg_api_result_json(c, res, json_string(st.leader_address));
        return;
    }
    server_addr(c->api->cluster, addr, sizeof(addr));
    reg_api_result_json(c, res, json_string(c->api->cluster->cfg->server ? addr : ""));
}

void reg_api_status_peers(struct reg_api_call *c, struct reg_api_result *res)
{
    struct reg_repl_status st;
    char addr[300];

    if (c->api->cluster->replicated) {
        json_t *peers = json_array();
        reg_cluster_status(c->api->cluster, &st);
        for (size_t i = 0; i < st.nservers; i++)
            if (st.servers[i].voter)
                json_array_append_new(peers, json_string(st.servers[i].address));
        reg_api_result_json(c, res, peers);
        return;
    }
    server_addr(c->api->cluster, addr, sizeof(addr));
    reg_api_result_json(c, res,
                        c->api->cluster->cfg->server ? json_pack("[s]", addr) : json_array());
}

/* The replicated configuration: every server with its role, and the entry's index. */
static json_t *cluster_configuration(const struct reg_cluster_ctx *cx)
{
    struct reg_repl_status st;
    json_t *servers = json_array();

    reg_cluster_status(cx, &st);
    for (size_t i = 0; i < st.nservers; i++) {
        const struct reg_repl_server *s = &st.servers[i];
        const char *node = reg_cluster_server_node(cx, s->id);
        char id[24];
        snprintf(id, sizeof(id), "%016llx", (unsigned long long)s->id);
        json_array_append_new(servers, json_pack("{s:s, s:s, s:s, s:b, s:b, s:s}", "ID", id, "Node",
                                                 node ? node : "", "Address", s->address, "Leader",
                                                 s->id == st.leader_id, "Voter", s->voter,
                                                 "ProtocolVersion", "3"));
    }
    return json_pack("{s:o, s:I}", "Servers", servers, "Index", (json_int_t)st.config_index);
}

void reg_api_operator_raft_configuration(struct reg_api_call *c, struct reg_api_result *res)
{
    struct reg_cluster_ctx *cx = c->api->cluster;
    char addr[300];

    if (cx->replicated) {
        reg_api_result_json(c, res, cluster_configuration(cx));
        return;
    }
    server_addr(cx, addr, sizeof(addr));
    /* A single server's configuration is the first entry of its log. */
    reg_api_result_json(c, res,
                        json_pack("{s:[{s:s, s:s, s:s, s:b, s:b, s:s}], s:i}", "Servers", "ID",
                                  cx->node_id, "Node", cx->cfg->node_name, "Address", addr,
                                  "Leader", 1, "Voter", 1, "ProtocolVersion", "3", "Index", 1));
}
