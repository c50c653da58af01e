/* Membership endpoints: /v1/agent/members, join and force-leave (members.h, sync.h). */
#include <errno.h>
#include <string.h>

#include "lib/alloc.h"
#include "registry/agent/agent_internal.h"
#include "registry/api/api_acl.h"
#include "registry/api/api_routes.h"
#include "registry/cluster/members.h"
#include "registry/agent/sync.h"

void reg_api_agent_members(struct reg_api_call *c, struct reg_api_result *res)
{
    struct reg_agent *a = c->api->agent;
    bool wan;

    if (reg_api_query_bool(c, "wan", &wan) < 0) {
        reg_api_result_error(res, 400, "Invalid value for ?wan");
        return;
    }
    /* A client agent asks the servers (forward.c) once it knows one; until then its own
     * member list holds itself alone, as a Consul agent's does before it joins. */
    json_t *list;
    if (wan)
        list = reg_members_wan_list(&a->members, a);
    else if (a->members.agent)
        list = reg_members_list(&a->members);
    else
        list = json_pack("[o]", reg_members_local(a));
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

/* A join asked through the API, waiting for the server's answer. */
struct join_call {
    struct reg_api_call *call; /* NULL once the client went away */
};

static void on_joined(int status, const char *why, void *data)
{
    struct join_call *j = data;
    struct reg_api_call *c = j->call;

    free(j);
    if (!c)
        return;
    c->req->on_abort = NULL;
    if (status < 0)
        reg_api_error(c, 500, "Failed to join %s: %s", c->arg, why);
    else
        reg_api_ok_empty(c);
}

static void on_join_abort(struct http_request *req)
{
    struct join_call *j = req->data;
    struct reg_api_call *c = j->call;

    reg_sync_join_cancel(c->api->agent); /* done is not called: free here */
    free(j);
    reg_api_call_free(c);
}

void reg_api_agent_join(struct reg_api_call *c)
{
    struct reg_agent *a = c->api->agent;
    bool wan;
    struct err e;

    if (reg_api_query_bool(c, "wan", &wan) < 0) {
        reg_api_error(c, 400, "Invalid value for ?wan");
        return;
    }
    if (wan) {
        reg_api_error(c, 500, "Failed to join %s: WAN federation is not supported by this agent",
                      c->arg);
        return;
    }
    if (a->cfg.server) {
        reg_api_error(c, 500,
                      "Failed to join %s: a server's peers come from its configuration; joining "
                      "at run time is for client agents",
                      c->arg);
        return;
    }
    struct join_call *j = xcalloc(1, sizeof(*j));
    j->call = c;
    int rc = reg_sync_join(a, c->arg, on_joined, j, &e);
    if (rc < 0) {
        free(j);
        reg_api_error(c, 500, "Failed to join %s: %s", c->arg, e.msg);
        return;
    }
    c->req->data = j;
    c->req->on_abort = on_join_abort;
}

void reg_api_agent_force_leave(struct reg_api_call *c)
{
    struct reg_agent *a = c->api->agent;
    bool prune;

    if (reg_api_query_bool(c, "prune", &prune) < 0) {
        reg_api_error(c, 400, "Invalid value for ?prune");
        return;
    }
    int rc = strcasecmp(c->arg, a->cfg.node_name) == 0 || !a->members.agent
                 ? -ENOENT
                 : reg_members_force_leave(&a->members, c->arg, prune);
    if (rc == -ENOENT)
        reg_api_error(c, 500, "agent: No node found with name '%s'", c->arg);
    else
        reg_api_ok_empty(c);
}
