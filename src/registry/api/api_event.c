/* User events: PUT /v1/event/fire/:name and GET /v1/event/list. */
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/base64.h"
#include "lib/re.h"
#include "lib/uuid.h"
#include "registry/api/api_acl.h"
#include "registry/api/api_routes.h"
#include "registry/api/sessions.h"
#include "registry/settings/settings.h"

#define EVENT_MAX_SIZE (9 * 1024) /* name + payload + filters, as Consul's UserEventSizeLimit */

static json_t *event_json(const struct reg_event *ev)
{
    json_t *payload = json_null();

    if (ev->payload_len) {
        char *b64 = base64_encode(ev->payload, ev->payload_len);
        payload = json_string(b64);
        free(b64);
    }
    return json_pack("{s:s, s:s, s:o, s:s, s:s, s:s, s:i, s:I}", "ID", ev->id, "Name", ev->name,
                     "Payload", payload, "NodeFilter", ev->node_filter, "ServiceFilter",
                     ev->service_filter, "TagFilter", ev->tag_filter, "Version", 1, "LTime",
                     (json_int_t)ev->ltime);
}

/* Compiles a filter from the request, bounded (lib/re.h). false with e set when refused. */
static bool filter_compile(const char *re, regex_t *out, struct err *e)
{
    return re_compile(out, re && re[0] ? re : ".*", REG_NOSUB, e) == 0;
}

/* Whether this agent receives the event: its node matches, and one of its services (and a tag
 * of that service) matches when those filters are set, as Consul's agent filters on receipt. */
static bool event_for_us(struct reg_api *a, const regex_t *node_re, const regex_t *svc_re,
                         const regex_t *tag_re, bool svc_filter, bool tag_filter)
{
    const struct reg_node *n = a->ops->local_node(a->agent);

    if (!n || regexec(node_re, n->name, 0, NULL, 0) != 0)
        return false;
    if (!svc_filter)
        return true;
    smap_foreach(&n->services, e)
    {
        const struct reg_service *s = e->val;
        if (regexec(svc_re, s->name, 0, NULL, 0) != 0)
            continue;
        if (!tag_filter)
            return true;
        for (size_t i = 0; i < s->ntags; i++)
            if (regexec(tag_re, s->tags[i], 0, NULL, 0) == 0)
                return true;
    }
    return false;
}

void reg_api_event_fire(struct reg_api_call *c)
{
    struct reg_api *a = c->api;
    const char *node = reg_api_query(c, "node"), *svc = reg_api_query(c, "service");
    const char *tag = reg_api_query(c, "tag");
    regex_t re[3];
    struct err e;
    int ok = 0;

    if (!c->arg[0]) {
        reg_api_error(c, 400, "Missing name");
        return;
    }
    if (!a->sessions) { /* shutting down */
        reg_api_error(c, 503, "agent is shutting down");
        return;
    }
    if (tag && tag[0] && !(svc && svc[0])) {
        reg_api_error(c, 400, "Cannot provide tag filter without service filter");
        return;
    }
    if (strlen(c->arg) + c->req->body_len > EVENT_MAX_SIZE) {
        reg_api_error(c, 413, "UserEvent exceeds size limit of %d bytes", EVENT_MAX_SIZE);
        return;
    }
    ok += filter_compile(node, &re[0], &e);
    ok += ok == 1 && filter_compile(svc, &re[1], &e);
    ok += ok == 2 && filter_compile(tag, &re[2], &e);
    if (ok < 3) {
        reg_api_error(c, 400, "Invalid %s filter: %s",
                      ok == 0   ? "node"
                      : ok == 1 ? "service"
                                : "tag",
                      e.msg);
    } else if (event_for_us(a, &re[0], &re[1], &re[2], svc && svc[0], tag && tag[0])) {
        const struct reg_event *ev = reg_sessions_event_add(a->sessions, c->arg, c->req->body,
                                                            c->req->body_len, node, svc, tag);
        reg_api_ok_json(c, event_json(ev));
    } else {
        /* Fired, but not for this agent: answer as if stored, keep nothing. */
        struct reg_event ev = {.name = (char *)c->arg,
                               .payload = (unsigned char *)c->req->body,
                               .payload_len = c->req->body_len,
                               .node_filter = (char *)(node ? node : ""),
                               .service_filter = (char *)(svc ? svc : ""),
                               .tag_filter = (char *)(tag ? tag : "")};
        uuid_v4(ev.id);
        reg_api_ok_json(c, event_json(&ev));
    }
    for (int i = 0; i < ok; i++)
        regfree(&re[i]);
}

void reg_api_event_list(struct reg_api_call *c, struct reg_api_result *res)
{
    const struct reg_sessions *s = c->api->sessions;
    const char *name = reg_api_query(c, "name");
    json_t *list = json_array();

    for (size_t i = 0; s && i < reg_sessions_event_count(s); i++) {
        const struct reg_event *ev = reg_sessions_event_at(s, i);
        if (name && name[0] && strcmp(name, ev->name) != 0)
            continue;
        if (reg_api_acl_allow(c, REG_ACL_RES_EVENT, ev->name, REG_ACL_ACCESS_READ))
            json_array_append_new(list, event_json(ev));
        else
            reg_api_acl_filtered(c, res);
    }
    res->index = c->api->state->table_index[REG_TABLE_EVENTS];
    res->index_headers = true;
    reg_api_result_json(c, res, list);
}
