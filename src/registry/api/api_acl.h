/*
 * Authorization of API calls (api_acl.c): which token a call carries, what it may do (resolved
 * through the state's ACL tables on a server, through the servers on a client agent), and
 * Consul's 403 texts and result filtering. The rules themselves are state/acl.h.
 */
#ifndef MESH_REGISTRY_API_ACL_H
#define MESH_REGISTRY_API_ACL_H

#include <jansson.h>
#include <stdbool.h>

#include "registry/state/acl.h"

struct reg_api_call;
struct reg_api_result;

/*
 * Picks the call's token (?token=, X-Consul-Token, Authorization: Bearer, then the agent's
 * default token) into c->token and resolves c->authz through the context's acl_resolve op.
 * Returns 0, -ENOENT (ACL not found), or on a client agent -EAGAIN or REG_API_ACL_STALE (ask a
 * server: api.h).
 * Called by the router for each call and again before each rerun of a blocking read.
 */
int reg_api_acl_resolve(struct reg_api_call *c);
/* True when the call's token may access the resource. */
bool reg_api_acl_allow(const struct reg_api_call *c, enum reg_acl_resource res, const char *name,
                       enum reg_acl_access acc);
/* As reg_api_acl_allow, but answers 403 (freeing the call) and returns false when denied. */
bool reg_api_acl_require(struct reg_api_call *c, enum reg_acl_resource res, const char *name,
                         enum reg_acl_access acc);
/* As reg_api_acl_require, for reads: sets res to the 403. */
bool reg_api_acl_require_read(struct reg_api_call *c, struct reg_api_result *res,
                              enum reg_acl_resource res_kind, const char *name);
struct reg_service;
/* True when the call may read the service (and its node, with need_node); else marks res
 * filtered. */
bool reg_api_acl_service_visible(const struct reg_api_call *c, struct reg_api_result *res,
                                 const struct reg_service *s, bool need_node);
struct reg_check;
/* True when the call may see the check: service:read on its service (and node:read on its
 * node with need_node), node:read for a node-level check; else marks res filtered. */
bool reg_api_acl_check_visible(const struct reg_api_call *c, struct reg_api_result *res,
                               const struct reg_check *chk, bool need_node);
/* The check as the call may see it: with its definition's secrets (Header, Body, ...) only
 * for a token with service:write on its service (node:write for a node-level check). */
json_t *reg_api_acl_render_check(const struct reg_api_call *c, const struct reg_check *chk);
/* Marks a read's result as filtered (X-Consul-Results-Filtered-By-ACLs when a token was
 * given in the request). */
void reg_api_acl_filtered(const struct reg_api_call *c, struct reg_api_result *res);

#endif
