/* meshkit's internal endpoints: client agents' heartbeats and leaves (members.h). */
#include "lib/json.h"
#include "registry/cluster/cluster_ctx.h"
#include "registry/settings/settings.h"
#include "registry/state/state.h"
#include "registry/api/api_acl.h"
#include "registry/api/api_routes.h"
#include "registry/cluster/cluster.h"

void reg_api_internal_heartbeat(struct reg_api_call *c)
{
    struct reg_cluster_ctx *cx = c->api->cluster;
    struct err e;
    bool known;

    if (!cx->cfg->server) {
        reg_api_error(c, 500, "heartbeats go to servers; this agent is a client");
        return;
    }
    json_t *body = reg_api_body_json(c, false);
    if (!body)
        return;
    /* An agent may only speak for its own node: node:write on the name it announces. */
    const char *node = json_string_value(json_iget(body, "Node"));
    if (!reg_api_acl_require(c, REG_ACL_RES_NODE, node ? node : "", REG_ACL_ACCESS_WRITE)) {
        json_decref(body);
        return;
    }
    int rc = reg_members_heartbeat(&cx->members, body, &known, &e);
    json_decref(body);
    if (rc < 0) {
        reg_api_error(c, 400, "%s", e.msg);
        return;
    }
    /* The server's coordinate: the agent measures its RTT to it (coord.h). On a replicated
     * cluster, every server's address: the agent fails over to them (sync.h). */
    json_t *answer =
        json_pack("{s:b, s:o}", "Known", known, "Coord", reg_coord_json(&cx->vivaldi->coord));
    json_t *servers = reg_cluster_http_servers(cx);
    if (servers)
        json_object_set_new(answer, "Servers", servers);
    reg_api_ok_json(c, answer);
}

void reg_api_internal_leave(struct reg_api_call *c)
{
    struct reg_cluster_ctx *cx = c->api->cluster;
    const char *node = NULL;
    struct err e;

    if (!cx->cfg->server) {
        reg_api_error(c, 500, "leaves go to servers; this agent is a client");
        return;
    }
    json_t *body = reg_api_body_json(c, false);
    if (!body)
        return;
    if (json_read_string(body, "Node", "Leave.Node", &node, &e) < 0 || !node || !node[0]) {
        json_decref(body);
        reg_api_error(c, 400, "Leave needs a Node");
        return;
    }
    if (!reg_api_acl_require(c, REG_ACL_RES_NODE, node, REG_ACL_ACCESS_WRITE)) {
        json_decref(body);
        return;
    }
    reg_members_leave(&cx->members, node);
    json_decref(body);
    reg_api_ok_empty(c);
}

/*
 * What the call's token may do, for a client agent's ACL cache (acl_client.h): its accessor,
 * whether it is a management token, and the rules of each of its policies. An unknown token
 * never gets here (the router answers 403 "ACL not found").
 */
void reg_api_internal_acl_resolve(struct reg_api_call *c, struct reg_api_result *res)
{
    const struct reg_state *st = c->api->state;
    const struct reg_acl_token *t = c->token && c->token[0]
                                        ? reg_acl_token_by_secret(st, c->token)
                                        : reg_acl_token_get(st, REG_ACL_ANONYMOUS_ID);
    json_t *rules = json_array();

    for (size_t i = 0; t && i < t->npolicies; i++) {
        const struct reg_acl_policy *p = reg_acl_policy_get(st, t->policy_ids[i]);
        if (p)
            json_array_append_new(rules, json_string(p->rules));
    }
    reg_api_result_json(c, res,
                        json_pack("{s:s, s:b, s:o}", "AccessorID",
                                  t ? t->accessor_id : REG_ACL_ANONYMOUS_ID, "Management",
                                  c->authz.management, "Rules", rules));
}
