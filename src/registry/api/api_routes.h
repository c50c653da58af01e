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
enum api_acl_kind {
    API_ACL_UNSET = 0, /* a route that forgot: refused (MESH_BUG_ON) and caught by the test */
    API_ACL_PUBLIC,
    API_ACL_ROUTE,
    API_ACL_HANDLER,
    API_ACL_FILTER,
};

/* What a ROUTE check names: nothing, the path after the prefix, or the agent's own node. */
enum api_acl_name { API_ACL_NAME_NONE = 0, API_ACL_NAME_ARG, API_ACL_NAME_NODE };

struct api_route_acl {
    enum api_acl_kind kind;
    enum reg_acl_resource res; /* REG_ACL_RES_NONE only for PUBLIC */
    enum reg_acl_access acc;
    enum api_acl_name name;
};

struct api_route {
    const char *method;
    const char *path;
    bool prefix; /* path is a prefix; the rest is the call's arg */
    api_write_fn write;
    api_read_fn read;
    enum reg_table table; /* what a blocking read depends on */
    bool blocking;
    struct api_route_acl acl;
};

/* The route table (api.c), n entries; for tests that walk it. */
const struct api_route *api_route_table(size_t *n);

/* agent */
void api_agent_self(struct api_call *c, struct api_result *res);
void api_agent_version(struct api_call *c, struct api_result *res);
void api_agent_host(struct api_call *c, struct api_result *res);
void api_agent_metrics(struct api_call *c, struct api_result *res);
void api_agent_members(struct api_call *c, struct api_result *res);
void api_agent_services(struct api_call *c, struct api_result *res);
void api_agent_service(struct api_call *c, struct api_result *res);
void api_agent_checks(struct api_call *c, struct api_result *res);
void api_agent_health_service_id(struct api_call *c, struct api_result *res);
void api_agent_health_service_name(struct api_call *c, struct api_result *res);
void api_agent_service_register(struct api_call *c);
void api_agent_service_deregister(struct api_call *c);
void api_agent_service_maintenance(struct api_call *c);
void api_agent_check_register(struct api_call *c);
void api_agent_check_deregister(struct api_call *c);
void api_agent_check_pass(struct api_call *c);
void api_agent_check_warn(struct api_call *c);
void api_agent_check_fail(struct api_call *c);
void api_agent_check_update(struct api_call *c);
void api_agent_maintenance(struct api_call *c);
void api_agent_join(struct api_call *c);
void api_agent_leave(struct api_call *c);
void api_agent_force_leave(struct api_call *c);
void api_agent_reload(struct api_call *c);

/* catalog */
void api_catalog_datacenters(struct api_call *c, struct api_result *res);
void api_catalog_nodes(struct api_call *c, struct api_result *res);
void api_catalog_services(struct api_call *c, struct api_result *res);
void api_catalog_service(struct api_call *c, struct api_result *res);
void api_catalog_node(struct api_call *c, struct api_result *res);
void api_catalog_node_services(struct api_call *c, struct api_result *res);
void api_catalog_register(struct api_call *c);
void api_catalog_deregister(struct api_call *c);

/* health */
void api_health_service(struct api_call *c, struct api_result *res);
void api_health_checks(struct api_call *c, struct api_result *res);
void api_health_node(struct api_call *c, struct api_result *res);
void api_health_state(struct api_call *c, struct api_result *res);
void api_health_ingress(struct api_call *c, struct api_result *res);

/* kv */
void api_kv_get(struct api_call *c, struct api_result *res);
void api_kv_put(struct api_call *c);
void api_kv_delete(struct api_call *c);

/* sessions (api_session.c) */
void api_session_create(struct api_call *c);
void api_session_destroy(struct api_call *c);
void api_session_renew(struct api_call *c);
void api_session_info(struct api_call *c, struct api_result *res);
void api_session_node(struct api_call *c, struct api_result *res);
void api_session_list(struct api_call *c, struct api_result *res);

/* transactions and events (api_txn.c, api_event.c) */
void api_txn(struct api_call *c);
void api_event_fire(struct api_call *c);
void api_event_list(struct api_call *c, struct api_result *res);

/* prepared queries (api_query.c) */
void api_query_create(struct api_call *c);
void api_query_list(struct api_call *c, struct api_result *res);
void api_query_get(struct api_call *c, struct api_result *res);
void api_query_update(struct api_call *c);
void api_query_delete(struct api_call *c);

/* network coordinates (api_coord.c) */
void api_coordinate_datacenters(struct api_call *c, struct api_result *res);
void api_coordinate_nodes(struct api_call *c, struct api_result *res);
void api_coordinate_node(struct api_call *c, struct api_result *res);
void api_coordinate_update(struct api_call *c);

/* ACLs (api_acl.c) */
void api_acl_bootstrap(struct api_call *c);
void api_acl_token_self(struct api_call *c, struct api_result *res);
void api_acl_token_create(struct api_call *c);
void api_acl_token_read(struct api_call *c, struct api_result *res);
void api_acl_token_update(struct api_call *c);
void api_acl_token_delete(struct api_call *c);
void api_acl_token_list(struct api_call *c, struct api_result *res);
void api_acl_policy_create(struct api_call *c);
void api_acl_policy_read(struct api_call *c, struct api_result *res);
void api_acl_policy_read_by_name(struct api_call *c, struct api_result *res);
void api_acl_policy_update(struct api_call *c);
void api_acl_policy_delete(struct api_call *c);
void api_acl_policy_list(struct api_call *c, struct api_result *res);
void api_agent_token(struct api_call *c);

/* meshkit internal: client agents to servers (api_internal.c) */
void api_internal_heartbeat(struct api_call *c);
void api_internal_leave(struct api_call *c);
void api_internal_acl_resolve(struct api_call *c, struct api_result *res);

/* the web UI (api_ui.c): its files under /ui/, and the summaries its views read */
void api_ui_serve(struct api_call *c);
void api_ui_services(struct api_call *c, struct api_result *res);
void api_ui_nodes(struct api_call *c, struct api_result *res);

/* replicated servers (cluster.c): formation */
void api_cluster_info(struct api_call *c, struct api_result *res);
void api_cluster_join(struct api_call *c);

/* status and operator */
void api_status_leader(struct api_call *c, struct api_result *res);
void api_status_peers(struct api_call *c, struct api_result *res);
void api_operator_raft_configuration(struct api_call *c, struct api_result *res);

#endif
