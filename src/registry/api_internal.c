/* meshkit's internal endpoints: client agents' heartbeats and leaves (members.h). */
#include "lib/json.h"
#include "registry/agent_internal.h"
#include "registry/api_routes.h"

void api_internal_heartbeat(struct api_call *c)
{
    struct reg_agent *a = c->agent;
    struct err e;
    bool known;

    if (!a->cfg.server) {
        api_error(c, 500, "heartbeats go to servers; this agent is a client");
        return;
    }
    json_t *body = api_body_json(c, false);
    if (!body)
        return;
    int rc = members_heartbeat(&a->members, body, &known, &e);
    json_decref(body);
    if (rc < 0) {
        api_error(c, 400, "%s", e.msg);
        return;
    }
    api_ok_json(c, json_pack("{s:b}", "Known", known));
}

void api_internal_leave(struct api_call *c)
{
    struct reg_agent *a = c->agent;
    const char *node = NULL;
    struct err e;

    if (!a->cfg.server) {
        api_error(c, 500, "leaves go to servers; this agent is a client");
        return;
    }
    json_t *body = api_body_json(c, false);
    if (!body)
        return;
    if (json_read_string(body, "Node", "Leave.Node", &node, &e) < 0 || !node || !node[0]) {
        json_decref(body);
        api_error(c, 400, "Leave needs a Node");
        return;
    }
    members_leave(&a->members, node);
    json_decref(body);
    api_ok_empty(c);
}
