/* Membership endpoints: /v1/agent/members and force-leave (members.h). */
#include <errno.h>
#include <string.h>

#include "lib/alloc.h"
#include "registry/cluster/cluster_ctx.h"
#include "registry/settings/settings.h"
#include "registry/state/state.h"
#include "registry/api/api_acl.h"
#include "registry/api/api_routes.h"
#include "registry/cluster/members.h"

void reg_api_agent_members(struct reg_api_call *c, struct reg_api_result *res)
{
    struct reg_cluster_ctx *cx = c->api->cluster;
    bool wan;

    if (reg_api_query_bool(c, "wan", &wan) < 0) {
        reg_api_result_error(res, 400, "Invalid value for ?wan");
        return;
    }
    /* A client agent asks the servers (forward.c) once it knows one; until then its own
     * member list holds itself alone, as a Consul agent's does before it joins. */
    json_t *list;
    if (wan)
        list = reg_members_wan_list(&cx->members, cx);
    else if (cx->members.cx)
        list = reg_members_list(&cx->members);
    else
        list = json_pack("[o]", reg_members_local(cx));
    /* Consul lists only the members the token has node:read on. */
    for (size_t i = json_array_size(list); i > 0; i--) {
        const char *name = json_string_value(json_object_get(json_array_get(list, i - 1), "Name"));
        if (!reg_api_acl_allow(c, REG_ACL_RES_NODE, name ? name : "", REG_ACL_ACCESS_READ)) {
            json_array_remove(list, i - 1);
            reg_api_acl_filtered(c, res);
        }
    }
    reg_api_result_json(c, res, list);
}

void reg_api_agent_force_leave(struct reg_api_call *c)
{
    struct reg_cluster_ctx *cx = c->api->cluster;
    bool prune;

    if (reg_api_query_bool(c, "prune", &prune) < 0) {
        reg_api_error(c, 400, "Invalid value for ?prune");
        return;
    }
    int rc = strcasecmp(c->arg, cx->cfg->node_name) == 0 || !cx->members.cx
                 ? -ENOENT
                 : reg_members_force_leave(&cx->members, c->arg, prune);
    if (rc == -ENOENT)
        reg_api_error(c, 500, "agent: No node found with name '%s'", c->arg);
    else
        reg_api_ok_empty(c);
}
