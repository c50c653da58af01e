/* The API's handlers, one file per area (api_agent.c, api_catalog.c, ...). */
#ifndef MESH_REGISTRY_API_ROUTES_H
#define MESH_REGISTRY_API_ROUTES_H

#include "registry/api/api.h"

/*
 * How a route is authorized. Every route declares one kind, and docs/acl.md states each route's
 * kind and permission (tests/unit/test_api_routes.c holds the two together):
 *  - PUBLIC: no permission; shows nothing of the catalog, KV or other tokens.
 *  - ROUTE: the router requires acl.res:acl.acc on the path argument, the agent's node, or
 *    nothing named (operator, acl) before the handler runs; 403 otherwise.
 *  - HANDLER: the name is known only inside the handler (a body, the service a check belongs
 *    to, a session's node), which requires acl.res:acl.acc (or the related permission
 *    docs/acl.md names) before it changes or shows anything; 403 otherwise.
 *  - FILTER: a read that leaves out what the token may not read (acl.res:read).
 */
enum reg_api_acl_kind {
    REG_API_ACL_UNSET = 0, /* a route that forgot: refused (MESH_BUG_ON) and caught by the test */
    REG_API_ACL_PUBLIC,
    REG_API_ACL_ROUTE,
    REG_API_ACL_HANDLER,
    REG_API_ACL_FILTER,
};

/* What a ROUTE check names: nothing, the path after the prefix, or the agent's own node. */
enum reg_api_acl_name { REG_API_ACL_NAME_NONE = 0, REG_API_ACL_NAME_ARG, REG_API_ACL_NAME_NODE };

struct reg_api_route_acl {
    enum reg_api_acl_kind kind;
    enum reg_acl_resource res; /* REG_ACL_RES_NONE only for PUBLIC */
    enum reg_acl_access acc;
    enum reg_api_acl_name name;
};

struct reg_api_route {
    const char *method;
    const char *path;
    bool prefix; /* path is a prefix; the rest is the call's arg */
    reg_api_write_fn write;
    reg_api_read_fn read;
    enum reg_table table; /* what a blocking read depends on */
    bool blocking;
    struct reg_api_route_acl acl;
};

/* The route table (api.c), n entries; for tests that walk it. */
const struct reg_api_route *reg_api_route_table(size_t *n);

/* agent */
void reg_api_agent_self(struct reg_api_call *c, struct reg_api_result *res);
void reg_api_agent_version(struct reg_api_call *c, struct reg_api_result *res);
void reg_api_agent_host(struct reg_api_call *c, struct reg_api_result *res);
void reg_api_agent_metrics(struct reg_api_call *c, struct reg_api_result *res);
void reg_api_agent_members(struct reg_api_call *c, struct reg_api_result *res);
void reg_api_agent_services(struct reg_api_call *c, struct reg_api_result *res);
void reg_api_agent_service(struct reg_api_call *c, struct reg_api_result *res);
void reg_api_agent_checks(struct reg_api_call *c, struct reg_api_result *res);
void reg_api_agent_health_service_id(struct reg_api_call *c, struct reg_api_result *res);
void reg_api_agent_health_service_name(struct reg_api_call *c, struct reg_api_result *res);
void reg_api_agent_service_register(struct reg_api_call *c);
void reg_api_agent_service_deregister(struct reg_api_call *c);
void reg_api_agent_service_maintenance(struct reg_api_call *c);
void reg_api_agent_check_register(struct reg_api_call *c);
void reg_api_agent_check_deregister(struct reg_api_call *c);
void reg_api_agent_check_pass(struct reg_api_call *c);
void reg_api_agent_check_warn(struct reg_api_call *c);
void reg_api_agent_check_fail(struct reg_api_call *c);
void reg_api_agent_check_update(struct reg_api_call *c);
void reg_api_agent_maintenance(struct reg_api_call *c);
void reg_api_agent_join(struct reg_api_call *c);
void reg_api_agent_leave(struct reg_api_call *c);
void reg_api_agent_force_leave(struct reg_api_call *c);
void reg_api_agent_reload(struct reg_api_call *c);

/* catalog */
void reg_api_catalog_datacenters(struct reg_api_call *c, struct reg_api_result *res);
void reg_api_catalog_nodes(struct reg_api_call *c, struct reg_api_result *res);
void reg_api_catalog_services(struct reg_api_call *c, struct reg_api_result *res);
void reg_api_catalog_service(struct reg_api_call *c, struct reg_api_result *res);
void reg_api_catalog_connect(struct reg_api_call *c, struct reg_api_result *res);
void reg_api_catalog_node(struct reg_api_call *c, struct reg_api_result *res);
void reg_api_catalog_node_services(struct reg_api_call *c, struct reg_api_result *res);
void reg_api_catalog_register(struct reg_api_call *c);
void reg_api_catalog_deregister(struct reg_api_call *c);

/* health */
void reg_api_health_service(struct reg_api_call *c, struct reg_api_result *res);
void reg_api_health_connect(struct reg_api_call *c, struct reg_api_result *res);
void reg_api_health_checks(struct reg_api_call *c, struct reg_api_result *res);
void reg_api_health_node(struct reg_api_call *c, struct reg_api_result *res);
void reg_api_health_state(struct reg_api_call *c, struct reg_api_result *res);
void reg_api_health_ingress(struct reg_api_call *c, struct reg_api_result *res);

/* kv */
void reg_api_kv_get(struct reg_api_call *c, struct reg_api_result *res);
void reg_api_kv_put(struct reg_api_call *c);
void reg_api_kv_delete(struct reg_api_call *c);

/* sessions (api_session.c) */
void reg_api_session_create(struct reg_api_call *c);
void reg_api_session_destroy(struct reg_api_call *c);
void reg_api_session_renew(struct reg_api_call *c);
void reg_api_session_info(struct reg_api_call *c, struct reg_api_result *res);
void reg_api_session_node(struct reg_api_call *c, struct reg_api_result *res);
void reg_api_session_list(struct reg_api_call *c, struct reg_api_result *res);

/* transactions and events (api_txn.c, api_event.c) */
void reg_api_txn(struct reg_api_call *c);
void reg_api_event_fire(struct reg_api_call *c);
void reg_api_event_list(struct reg_api_call *c, struct reg_api_result *res);

/* prepared queries (api_query.c) */
void reg_api_query_create(struct reg_api_call *c);
void reg_api_query_list(struct reg_api_call *c, struct reg_api_result *res);
void reg_api_query_get(struct reg_api_call *c, struct reg_api_result *res);
void reg_api_query_update(struct reg_api_call *c);
void reg_api_query_delete(struct reg_api_call *c);

/* network coordinates (api_coord.c) */
void reg_api_coordinate_datacenters(struct reg_api_call *c, struct reg_api_result *res);
void reg_api_coordinate_nodes(struct reg_api_call *c, struct reg_api_result *res);
void reg_api_coordinate_node(struct reg_api_call *c, struct reg_api_result *res);
void reg_api_coordinate_update(struct reg_api_call *c);

/* ACLs (api_acl.c) */
void reg_api_acl_bootstrap(struct reg_api_call *c);
void reg_api_acl_token_self(struct reg_api_call *c, struct reg_api_result *res);
void reg_api_acl_token_create(struct reg_api_call *c);
void reg_api_acl_token_read(struct reg_api_call *c, struct reg_api_result *res);
void reg_api_acl_token_update(struct reg_api_call *c);
void reg_api_acl_token_delete(struct reg_api_call *c);
void reg_api_acl_token_list(struct reg_api_call *c, struct reg_api_result *res);
void reg_api_acl_policy_create(struct reg_api_call *c);
void reg_api_acl_policy_read(struct reg_api_call *c, struct reg_api_result *res);
void reg_api_acl_policy_read_by_name(struct reg_api_call *c, struct reg_api_result *res);
void reg_api_acl_policy_update(struct reg_api_call *c);
void reg_api_acl_policy_delete(struct reg_api_call *c);
void reg_api_acl_policy_list(struct reg_api_call *c, struct reg_api_result *res);
void reg_api_agent_token(struct reg_api_call *c);
/* The ACL endpoints meshkit does not implement: 401 "ACL support disabled" with ACLs off. */
void reg_api_acl_unserved_read(struct reg_api_call *c, struct reg_api_result *res);
void reg_api_acl_unserved_write(struct reg_api_call *c);

/* meshkit internal: client agents to servers (api_internal.c) */
void reg_api_internal_heartbeat(struct reg_api_call *c);
void reg_api_internal_leave(struct reg_api_call *c);
void reg_api_internal_acl_resolve(struct reg_api_call *c, struct reg_api_result *res);

/* the web UI (api_ui.c): its files under /ui/, and the summaries its views read */
void reg_api_ui_serve(struct reg_api_call *c);
void reg_api_ui_services(struct reg_api_call *c, struct reg_api_result *res);
void reg_api_ui_nodes(struct reg_api_call *c, struct reg_api_result *res);

/* replicated servers (cluster.c): formation */
void reg_api_cluster_info(struct reg_api_call *c, struct reg_api_result *res);
void reg_api_cluster_join(struct reg_api_call *c);

/* status and operator */
void reg_api_status_leader(struct reg_api_call *c, struct reg_api_result *res);
void reg_api_status_peers(struct reg_api_call *c, struct reg_api_result *res);
void reg_api_operator_raft_configuration(struct reg_api_call *c, struct reg_api_result *res);
/* DELETE /v1/operator/raft/peer?id=|address= (cluster_members.c); answered when committed. */
void reg_api_operator_raft_remove_peer(struct reg_api_call *c);

#endif
