/*
 * The JSON shapes of Consul's API (docs/api.md: agent, catalog, health, KV), built from registry
 * entities. Every function returns a new reference; field order follows Consul's.
 */
#ifndef MESH_REGISTRY_RENDER_H
#define MESH_REGISTRY_RENDER_H

#include <jansson.h>
#include <stdbool.h>

#include "registry/state/state.h"

/* Node object (catalog/nodes, "Node" in health results). */
json_t *reg_render_node(const struct reg_node *n);
/* NodeService ("Service" in health results, catalog/node "Services" values). */
json_t *reg_render_node_service(const struct reg_service *s);
/* ServiceNode (catalog/service elements). */
json_t *reg_render_service_node(const struct reg_service *s);
/*
 * HealthCheck object. Without with_secrets, the parts of its Definition that may hold
 * credentials are blanked: Header (null), Body (""), ScriptArgs (null) and the password of a
 * user:password@ in the HTTP URL (xxxxx, as Go's URL.Redacted). The API passes with_secrets only
 * to tokens that could have registered the check (docs/acl.md).
 */
json_t *reg_render_check(const struct reg_check *c, bool with_secrets);
/* Renders one check for a caller: with or without secrets, as its token allows. */
typedef json_t *(*reg_render_check_fn)(const struct reg_check *c, const void *arg);
/* The checks that decide an instance's health: its node's and its own, in Consul's order, each
 * through render (NULL: without secrets); *all_passing tells whether each passes. */
json_t *reg_render_health_checks(const struct reg_service *s, reg_render_check_fn render,
                                 const void *arg, bool *all_passing);
/* A health entry {"Node", "Service", "Checks"}; takes the reference to checks. */
json_t *reg_render_health_entry(const struct reg_service *s, json_t *checks);
/* The node name of a health entry ("" when it has none). */
const char *reg_render_health_entry_node(const json_t *entry);
/* The "Node" of a node, service node or check ("" when it has none). */
const char *reg_render_entry_node(const json_t *entry);
/* Agent view of a service (agent/services values). */
json_t *reg_render_agent_service(const struct reg_service *s, const char *datacenter);
/* KV entry (Value base64, Session only while locked). */
json_t *reg_render_kv(const struct reg_kv *kv);
/* Tags as a JSON array ([] when none). */
json_t *reg_render_tags(const struct reg_service *s);

#endif
