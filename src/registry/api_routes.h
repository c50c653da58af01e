/* The API's handlers, one file per area (api_agent.c, api_catalog.c, ...). */
#ifndef MESH_REGISTRY_API_ROUTES_H
#define MESH_REGISTRY_API_ROUTES_H

#include "registry/api.h"

/* agent */
void api_agent_self(struct api_call *c, struct api_result *res);
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

/* status and operator */
void api_status_leader(struct api_call *c, struct api_result *res);
void api_status_peers(struct api_call *c, struct api_result *res);
void api_operator_raft_configuration(struct api_call *c, struct api_result *res);

#endif
