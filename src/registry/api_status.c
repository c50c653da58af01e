/* The /v1/status endpoints and the raft configuration: one server, always the leader. */
#include <stdio.h>

#include "registry/agent_internal.h"
#include "registry/api_routes.h"

/* The server RPC address Consul reports: the node address on port 8300. */
static void server_addr(const struct reg_agent *a, char *out, size_t n)
{
    const struct reg_node *node = reg_node_get(&a->state, a->cfg.node_name);
    snprintf(out, n, "%s:8300", node ? node->address : "127.0.0.1");
}

void api_status_leader(struct api_call *c, struct api_result *res)
{
    char addr[300];

    server_addr(c->agent, addr, sizeof(addr));
    api_result_json(c, res, json_string(c->agent->cfg.server ? addr : ""));
}

void api_status_peers(struct api_call *c, struct api_result *res)
{
    char addr[300];

    server_addr(c->agent, addr, sizeof(addr));
    api_result_json(c, res, c->agent->cfg.server ? json_pack("[s]", addr) : json_array());
}

void api_operator_raft_configuration(struct api_call *c, struct api_result *res)
{
    struct reg_agent *a = c->agent;
    char addr[300];

    server_addr(a, addr, sizeof(addr));
    api_result_json(c, res,
                    json_pack("{s:[{s:s, s:s, s:s, s:b, s:b, s:s}], s:I}", "Servers", "ID",
                              a->node_id, "Node", a->cfg.node_name, "Address", addr, "Leader", 1,
                              "Voter", 1, "ProtocolVersion", "3", "Index",
                              (json_int_t)a->state.index));
}
