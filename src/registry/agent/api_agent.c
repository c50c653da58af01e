/* The /v1/agent endpoints: the local node's view (docs/api.md). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/buf.h"
#include "lib/json.h"
#include "registry/agent/agent_internal.h"
#include "registry/api/api_acl.h"
#include "registry/api/api_routes.h"
#include "registry/api/decode.h"
#include "registry/cluster/members.h"
#include "registry/api/render.h"
#include "registry/agent/sync.h"

#define NODE_MAINT_ID      "_node_maintenance"
#define SERVICE_MAINT_PREF "_service_maintenance:"

static struct reg_decode_opts decode_opts_of(const struct reg_agent *a)
{
    return (struct reg_decode_opts){.allow_scripts = a->cfg.enable_script_checks};
}

/* A service the agent itself registered (not a server's built-in one), or NULL. */
static struct reg_service *own_service(struct reg_agent *a, const char *id)
{
    return reg_agent_builtin_service(a, id) ? NULL : reg_service_get(reg_agent_local_node(a), id);
}

/* ---- reads ------------------------------------------------------------------------------- */

void reg_api_agent_services(struct reg_api_call *c, struct reg_api_result *res)
{
    struct reg_node *node = reg_agent_local_node(c->api->agent);
    json_t *out = json_object();

    smap_foreach(&node->services, e)
    {
        if (!reg_agent_builtin_service(c->api->agent, e->key) &&
            reg_api_acl_service_visible(c, res, e->val, false))
            json_object_set_new(out, e->key,
                                reg_render_agent_service(e->val, c->api->agent->cfg.datacenter));
    }
    reg_api_result_json(c, res, out);
}

void reg_api_agent_service(struct reg_api_call *c, struct reg_api_result *res)
{
    struct reg_service *s = own_service(c->api->agent, c->arg);

    if (!s) {
        reg_api_result_error(res, 404, "unknown service ID: %s", c->arg);
        return;
    }
    if (!reg_api_acl_require_read(c, res, REG_ACL_RES_SERVICE, s->name))
        return;
    json_t *o = reg_render_agent_service(s, c->api->agent->cfg.datacenter);
    struct buf b = BUF_INIT;
    json_append(&b, o, false);
    snprintf(res->content_hash, sizeof(res->content_hash), "%016llx",
             (unsigned long long)reg_watch_hash(b.data, b.len));
    buf_free(&b);
    json_object_set_new(o, "ContentHash", json_string(res->content_hash));
    reg_api_result_json(c, res, o);
}

void reg_api_agent_checks(struct reg_api_call *c, struct reg_api_result *res)
{
    struct reg_node *node = reg_agent_local_node(c->api->agent);
    json_t *out = json_object();

    smap_foreach(&node->checks, e)
    {
        const struct reg_check *chk = e->val;
        if (strcmp(chk->id, "serfHealth") != 0 && reg_api_acl_check_visible(c, res, chk, false))
            json_object_set_new(out, e->key, reg_api_acl_render_check(c, chk));
    }
    reg_api_result_json(c, res, out);
}

/* Aggregated status of a local service: Consul's maintenance > critical > warning > passing. */
static const char *aggregate(const struct reg_node *node, const struct reg_service *s,
                             int *http_status)
{
    enum reg_health worst = REG_PASSING;
    bool maint = false;

    smap_foreach(&node->checks, e)
    {
        const struct reg_check *chk = e->val;
        if (chk->service_id[0] && strcmp(chk->service_id, s->id) != 0)
            continue;
        if (strcmp(chk->id, NODE_MAINT_ID) == 0 || strncmp(chk->id, SERVICE_MAINT_PREF, 21) == 0)
            maint = true;
        if (chk->status > worst)
            worst = chk->status;
    }
    *http_status = maint || worst == REG_CRITICAL ? 503 : worst == REG_WARNING ? 429 : 200;
    return maint ? "maintenance" : reg_health_name(worst);
}

static json_t *local_health(const struct reg_api_call *c, const struct reg_node *node,
                            const struct reg_service *s, int *http_status)
{
    json_t *checks = json_array();
    const char *agg = aggregate(node, s, http_status);

    smap_foreach(&node->checks, e)
    {
        const struct reg_check *chk = e->val;
        if (!chk->service_id[0] || strcmp(chk->service_id, s->id) == 0)
            json_array_append_new(checks, reg_api_acl_render_check(c, chk));
    }
    return json_pack("{s:s, s:o, s:o}", "AggregatedStatus", agg, "Service",
                     reg_render_agent_service(s, c->api->agent->cfg.datacenter), "Checks", checks);
}

static bool wants_text(const struct reg_api_call *c)
{
    const char *fmt = reg_api_query(c, "format");
    const struct http_header *accept = http_request_header(c->req, "Accept");
    return (fmt && strcmp(fmt, "text") == 0) ||
           (accept && accept->value.n >= 10 && strncmp(accept->value.p, "text/plain", 10) == 0);
}

static void health_text(struct reg_api_result *res, const char *status)
{
    buf_reset(&res->body);
    buf_append_cstr(&res->body, status);
    res->content_type = "text/plain; charset=utf-8";
}

void reg_api_agent_health_service_id(struct reg_api_call *c, struct reg_api_result *res)
{
    struct reg_node *node = reg_agent_local_node(c->api->agent);
    struct reg_service *s = c->arg[0] ? own_service(c->api->agent, c->arg) : NULL;
    int status;

    if (!c->arg[0]) {
        reg_api_result_error(res, 400, "Missing serviceID");
        return;
    }
    if (!s) {
        reg_api_result_error(res, 404, "ServiceId %s not found", c->arg);
        return;
    }
    if (!reg_api_acl_require_read(c, res, REG_ACL_RES_SERVICE, s->name))
        return;
    json_t *h = local_health(c, node, s, &status);
    if (wants_text(c)) {
        health_text(res, json_string_value(json_object_get(h, "AggregatedStatus")));
        json_decref(h);
    } else {
        reg_api_result_json(c, res, h);
    }
    res->status = status;
}

void reg_api_agent_health_service_name(struct reg_api_call *c, struct reg_api_result *res)
{
    struct reg_node *node = reg_agent_local_node(c->api->agent);
    json_t *list = json_array();
    int worst = 0, status;
    const char *worst_text = "passing";
    const char *denied = NULL; /* a matching service the token may not read */

    if (!c->arg[0]) {
        json_decref(list);
        reg_api_result_error(res, 400, "Missing service Name");
        return;
    }
    smap_foreach(&node->services, e)
    {
        const struct reg_service *s = e->val;
        if (strcasecmp(s->name, c->arg) != 0 || reg_agent_builtin_service(c->api->agent, s->id))
            continue;
        if (!reg_api_acl_allow(c, REG_ACL_RES_SERVICE, s->name, REG_ACL_ACCESS_READ)) {
            denied = s->name;
            continue;
        }
        json_t *h = local_health(c, node, s, &status);
        if (status > worst) {
            worst = status;
            worst_text = json_string_value(json_object_get(h, "AggregatedStatus"));
        }
        json_array_append_new(list, h);
    }
    if (json_array_size(list) == 0) {
        json_decref(list);
        if (!denied || reg_api_acl_require_read(c, res, REG_ACL_RES_SERVICE, denied))
            reg_api_result_error(res, 404, "ServiceName %s Not Found", c->arg);
        return;
    }
    if (wants_text(c)) {
        health_text(res, worst_text);
        json_decref(list);
    } else {
        reg_api_result_json(c, res, list);
    }
    res->status = worst;
}

/* ---- service and check registration ------------------------------------------------------ */

/* Registers a decoded check on the local node and starts its runner. Takes r->run. */
static void register_check(struct reg_agent *a, struct reg_check_reg *r, bool keep_status)
{
    struct reg_node *node = reg_agent_local_node(a);
    struct reg_check *old = reg_check_get(node, r->chk.id);

    /* Re-registering an existing check keeps what it last observed, so a service that
     * re-registers on every start does not flap to critical. */
    if (old && keep_status) {
        r->chk.status = old->status;
        free(r->chk.output);
        r->chk.output = xstrdup(old->output);
    }
    reg_check_upsert(&a->state, node, &r->chk);
    if (r->run->kind == REG_CHECK_NONE) {
        reg_checks_stop(a->checks, r->chk.id);
        reg_check_def_free(r->run);
    } else {
        reg_checks_start(a->checks, r->run);
    }
    r->run = NULL;
}

int reg_agent_register_service(struct reg_agent *a, struct reg_service_reg *r, bool replace_checks)
{
    struct reg_node *node = reg_agent_local_node(a);

    reg_service_upsert(&a->state, node, &r->svc);
    if (replace_checks) {
        for (size_t i = 0; i < node->checks.n;) {
            struct reg_check *chk = node->checks.v[i].val;
            bool keep = strcmp(chk->service_id, r->svc.id) != 0 ||
                        strncmp(chk->id, SERVICE_MAINT_PREF, 21) == 0;
            for (size_t j = 0; j < r->nchecks && !keep; j++)
                keep = strcmp(r->checks[j].chk.id, chk->id) == 0;
            if (keep) {
                i++;
                continue;
            }
            reg_checks_stop(a->checks, chk->id);
            reg_check_delete(&a->state, node, chk->id);
        }
    }
    for (size_t i = 0; i < r->nchecks; i++)
        register_check(a, &r->checks[i], !r->checks[i].status_given);
    return 0;
}

void reg_api_agent_service_register(struct reg_api_call *c)
{
    struct reg_agent *a = c->api->agent;
    struct reg_decode_opts opts = decode_opts_of(a);
    struct reg_service_reg r;
    struct err e;
    bool replace;

    json_t *body = reg_api_body_json(c, false);
    if (!body)
        return;
    if (reg_api_query_bool(c, "replace-existing-checks", &replace) < 0) {
        json_decref(body);
        reg_api_error(c, 400, "Invalid value for replace-existing-checks");
        return;
    }
    int rc = reg_decode_service(body, &opts, &r, &e);
    json_decref(body);
    if (rc < 0) {
        reg_service_reg_free(&r);
        reg_api_error(c, 400, "%s", e.msg);
        return;
    }
    if (!reg_api_acl_require(c, REG_ACL_RES_SERVICE, r.svc.name, REG_ACL_ACCESS_WRITE)) {
        reg_service_reg_free(&r);
        return;
    }
    reg_agent_register_service(a, &r, replace);
    reg_service_reg_free(&r);
    reg_api_ok_empty(c);
}

void reg_api_agent_service_deregister(struct reg_api_call *c)
{
    const struct reg_service *svc = own_service(c->api->agent, c->arg);

    if (svc && !reg_api_acl_require(c, REG_ACL_RES_SERVICE, svc->name, REG_ACL_ACCESS_WRITE))
        return;
    if (!svc || reg_agent_service_deregister(c->api->agent, c->arg) < 0) {
        reg_api_error(c, 404,
                      "Unknown service ID \"%s\". Ensure that the service ID is passed, not the "
                      "service name.",
                      c->arg);
        return;
    }
    reg_api_ok_empty(c);
}

/*
 * Consul's rule for check operations: service:write on the check's service, or node:write on
 * the agent's node for a node-level check. An unknown check passes (the handler answers 404).
 * Answers 403 and returns false when denied.
 */
static bool may_write_check(struct reg_api_call *c, const char *check_id, const char *service_id)
{
    struct reg_node *node = reg_agent_local_node(c->api->agent);
    const struct reg_check *chk = check_id ? reg_check_get(node, check_id) : NULL;
    const char *sid = service_id ? service_id : chk ? chk->service_id : NULL;

    if (!sid)
        return true;
    const struct reg_service *svc = sid[0] ? reg_service_get(node, sid) : NULL;
    if (svc)
        return reg_api_acl_require(c, REG_ACL_RES_SERVICE, svc->name, REG_ACL_ACCESS_WRITE);
    return reg_api_acl_require(c, REG_ACL_RES_NODE, node->name, REG_ACL_ACCESS_WRITE);
}

void reg_api_agent_check_register(struct reg_api_call *c)
{
    struct reg_agent *a = c->api->agent;
    struct reg_decode_opts opts = decode_opts_of(a);
    struct reg_check_reg r;
    struct err e;

    json_t *body = reg_api_body_json(c, false);
    if (!body)
        return;
    json_t *status = json_iget(body, "Status");
    enum reg_health h;
    if (json_is_string(status) && json_string_length(status) &&
        !reg_health_parse(json_string_value(status), &h)) {
        json_decref(body);
        reg_api_error(c, 400, "Bad check status");
        return;
    }
    int rc = reg_decode_check(body, &opts, NULL, NULL, NULL, &r, &e);
    json_decref(body);
    if (rc < 0) {
        reg_check_reg_free(&r);
        reg_api_error(c, 400, "%s", e.msg);
        return;
    }
    if (!may_write_check(c, NULL, r.chk.service_id)) {
        reg_check_reg_free(&r);
        return;
    }
    if (r.chk.service_id[0] && !own_service(a, r.chk.service_id)) {
        reg_api_error(c, 404, "ServiceID \"%s\" does not exist", r.chk.service_id);
        reg_check_reg_free(&r);
        return;
    }
    register_check(a, &r, !r.status_given);
    reg_check_reg_free(&r);
    reg_api_ok_empty(c);
}

void reg_api_agent_check_deregister(struct reg_api_call *c)
{
    struct reg_agent *a = c->api->agent;

    if (!may_write_check(c, c->arg, NULL))
        return;
    reg_checks_stop(a->checks, c->arg);
    if (!reg_check_delete(&a->state, reg_agent_local_node(a), c->arg)) {
        reg_api_error(c, 404,
                      "Unknown check ID \"%s\". Ensure that the check ID is passed, not the check "
                      "name.",
                      c->arg);
        return;
    }
    reg_api_ok_empty(c);
}

static void ttl_update(struct reg_api_call *c, enum reg_health status, const char *output)
{
    if (!may_write_check(c, c->arg, NULL))
        return;
    int rc = reg_checks_ttl_update(c->api->agent->checks, c->arg, status, output ? output : "");

    if (rc == -ENOENT)
        reg_api_error(c, 404,
                      "Unknown check ID \"%s\". Ensure that the check ID is passed, not the check "
                      "name.",
                      c->arg);
    else if (rc < 0)
        reg_api_error(c, 500, "CheckID \"%s\" does not have associated TTL", c->arg);
    else
        reg_api_ok_empty(c);
}

void reg_api_agent_check_pass(struct reg_api_call *c)
{
    ttl_update(c, REG_PASSING, reg_api_query(c, "note"));
}

void reg_api_agent_check_warn(struct reg_api_call *c)
{
    ttl_update(c, REG_WARNING, reg_api_query(c, "note"));
}

void reg_api_agent_check_fail(struct reg_api_call *c)
{
    ttl_update(c, REG_CRITICAL, reg_api_query(c, "note"));
}

void reg_api_agent_check_update(struct reg_api_call *c)
{
    const char *status = NULL, *output = NULL;
    enum reg_health h;
    struct err e;

    json_t *body = reg_api_body_json(c, false);
    if (!body)
        return;
    if (json_read_string(body, "Status", "checkUpdate.Status", &status, &e) < 0 ||
        json_read_string(body, "Output", "checkUpdate.Output", &output, &e) < 0) {
        reg_api_error(c, 400, "Request decode failed: %s", e.msg);
    } else if (!status || !reg_health_parse(status, &h)) {
        reg_api_error(c, 400, "Invalid check status: '%s'", status ? status : "");
    } else {
        ttl_update(c, h, output);
    }
    json_decref(body);
}

/* ---- maintenance ------------------------------------------------------------------------- */

/* Parses ?enable; answers 400 and returns -EINVAL when missing or not a bool. */
static int parse_enable(struct reg_api_call *c, bool *enable)
{
    const char *v = reg_api_query(c, "enable");

    if (!v || !v[0]) {
        reg_api_error(c, 400, "Missing value for enable");
        return -EINVAL;
    }
    if (reg_api_query_bool(c, "enable", enable) < 0) {
        reg_api_error(c, 400, "Invalid value for enable: \"%s\"", v);
        return -EINVAL;
    }
    return 0;
}

static void set_maintenance(struct reg_agent *a, const char *id, const char *name,
                            const char *service_id, const char *reason, bool enable)
{
    struct reg_node *node = reg_agent_local_node(a);

    if (!enable) {
        reg_check_delete(&a->state, node, id);
        return;
    }
    struct reg_check chk = {
        .id = (char *)id,
        .name = (char *)name,
        .status = REG_CRITICAL,
        .notes = (char *)reason,
        .service_id = (char *)service_id,
        .type = "maintenance",
    };
    reg_check_upsert(&a->state, node, &chk);
}

void reg_api_agent_maintenance(struct reg_api_call *c)
{
    const char *reason = reg_api_query(c, "reason");
    bool enable;

    if (parse_enable(c, &enable) < 0)
        return;
    set_maintenance(c->api->agent, NODE_MAINT_ID, "Node Maintenance Mode", "",
                    reason && reason[0] ? reason
                                        : "Maintenance mode is enabled for this node, but no "
                                          "reason was provided. This is a default message.",
                    enable);
    reg_api_ok_empty(c);
}

void reg_api_agent_service_maintenance(struct reg_api_call *c)
{
    const char *reason = reg_api_query(c, "reason");
    bool enable;

    if (parse_enable(c, &enable) < 0)
        return;
    const struct reg_service *svc = own_service(c->api->agent, c->arg);
    if (!svc) {
        reg_api_error(c, 404, "No service registered with ID \"%s\"", c->arg);
        return;
    }
    /* Taking a service out of rotation is a write on it (Consul's service:write). */
    if (!reg_api_acl_require(c, REG_ACL_RES_SERVICE, svc->name, REG_ACL_ACCESS_WRITE))
        return;
    char *id = xasprintf(SERVICE_MAINT_PREF "%s", c->arg);
    set_maintenance(c->api->agent, id, "Service Maintenance Mode", c->arg,
                    reason && reason[0] ? reason
                                        : "Maintenance mode is enabled for this service, but no "
                                          "reason was provided. This is a default message.",
                    enable);
    free(id);
    reg_api_ok_empty(c);
}

/* ---- leave and reload --------------------------------------------------------------------- */

void reg_api_agent_leave(struct reg_api_call *c)
{
    struct reg_agent *a = c->api->agent;

    reg_api_ok_empty(c);
    reg_agent_leave(a);
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

void reg_api_agent_reload(struct reg_api_call *c)
{
    struct err e;

    if (reg_agent_reload(c->api->agent, &e) < 0) {
        reg_api_error(c, 500, "Failed reloading: %s", e.msg);
        return;
    }
    reg_api_ok_empty(c);
}
