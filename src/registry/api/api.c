/* Routing and the response conventions of Consul's HTTP API. */
#include "registry/api/api.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/duration.h"
#include "lib/bexpr.h"
#include "lib/bug.h"
#include "lib/json.h"
#include "lib/log.h"
#include "registry/api/api_filter.h"
#include "registry/api/api_acl.h"
#include "registry/api/api_routes.h"
#include "registry/api/watch.h"
#include "registry/settings/settings.h"

#define WAIT_DEFAULT_MS (5 * 60 * 1000)
#define WAIT_MAX_MS     (10 * 60 * 1000)

/* The route table's words: a path matched whole (EXACT) or as a prefix whose rest is the
 * call's argument (PREFIX); a read answered at once (NOW) or one that may block on ?index
 * (BLOCKING). */
#define EXACT    false
#define PREFIX   true
#define NOW      false
#define BLOCKING true

#define READ(m, p, pre, fn, tbl, blk, acl)                                                         \
    {                                                                                              \
        m, p, pre, NULL, fn, tbl, blk, acl                                                         \
    }
#define WRITE(m, p, pre, fn, acl)                                                                  \
    {                                                                                              \
        m, p, pre, fn, NULL, REG_TABLE_CATALOG, false, acl                                         \
    }
/* How each route is authorized (api_routes.h); docs/acl.md states the same, row by row. */
#define ACL_PUBLIC                                                                                 \
    {                                                                                              \
        REG_API_ACL_PUBLIC, REG_ACL_RES_NONE, REG_ACL_ACCESS_READ, REG_API_ACL_NAME_NONE           \
    }
#define ACL_ROUTE(res, acc, name)                                                                  \
    {                                                                                              \
        REG_API_ACL_ROUTE, REG_ACL_RES_##res, REG_ACL_ACCESS_##acc, REG_API_ACL_NAME_##name        \
    }
#define ACL_HANDLER(res, acc)                                                                      \
    {                                                                                              \
        REG_API_ACL_HANDLER, REG_ACL_RES_##res, REG_ACL_ACCESS_##acc, REG_API_ACL_NAME_NONE        \
    }
#define ACL_FILTER(res)                                                                            \
    {                                                                                              \
        REG_API_ACL_FILTER, REG_ACL_RES_##res, REG_ACL_ACCESS_READ, REG_API_ACL_NAME_NONE          \
    }
#define CAT REG_TABLE_CATALOG
/* An ACL endpoint meshkit does not implement (api_acl.c): acl:read or acl:write as Consul's. */
#define UNSERVED_READ(p, pre)                                                                      \
    READ("GET", p, pre, reg_api_acl_unserved_read, REG_TABLE_ACL, NOW, ACL_ROUTE(ACL, READ, NONE))
#define UNSERVED_WRITE(m, p, pre)                                                                  \
    WRITE(m, p, pre, reg_api_acl_unserved_write, ACL_ROUTE(ACL, WRITE, NONE))
/* A kind of ACL object: its list, its create, and read, update and delete by ID. */
#define UNSERVED_KIND(list, create, one)                                                           \
    UNSERVED_READ(list, EXACT), UNSERVED_WRITE("PUT", create, EXACT), UNSERVED_READ(one, PREFIX),  \
        UNSERVED_WRITE("PUT", one, PREFIX), UNSERVED_WRITE("DELETE", one, PREFIX)

static const struct reg_api_route routes[] = {
    READ("GET", "/v1/agent/self", EXACT, reg_api_agent_self, CAT, NOW,
         ACL_ROUTE(AGENT, READ, NODE)),
    READ("GET", "/v1/agent/version", EXACT, reg_api_agent_version, CAT, NOW,
         ACL_ROUTE(AGENT, READ, NODE)),
    READ("GET", "/v1/agent/host", EXACT, reg_api_agent_host, CAT, NOW,
         ACL_ROUTE(OPERATOR, READ, NONE)),
    READ("GET", "/v1/agent/metrics", EXACT, reg_api_agent_metrics, CAT, NOW,
         ACL_ROUTE(AGENT, READ, NODE)),
    READ("GET", "/v1/agent/members", EXACT, reg_api_agent_members, CAT, NOW, ACL_FILTER(NODE)),
    READ("GET", "/v1/agent/services", EXACT, reg_api_agent_services, CAT, NOW, ACL_FILTER(SERVICE)),
    READ("GET", "/v1/agent/service/", PREFIX, reg_api_agent_service, CAT, NOW,
         ACL_HANDLER(SERVICE, READ)),
    READ("GET", "/v1/agent/checks", EXACT, reg_api_agent_checks, CAT, NOW, ACL_FILTER(SERVICE)),
    READ("GET", "/v1/agent/health/service/id/", PREFIX, reg_api_agent_health_service_id, CAT, NOW,
         ACL_HANDLER(SERVICE, READ)),
    READ("GET", "/v1/agent/health/service/name/", PREFIX, reg_api_agent_health_service_name, CAT,
         NOW, ACL_HANDLER(SERVICE, READ)),
    WRITE("PUT", "/v1/agent/service/register", EXACT, reg_api_agent_service_register,
          ACL_HANDLER(SERVICE, WRITE)),
    WRITE("PUT", "/v1/agent/service/deregister/", PREFIX, reg_api_agent_service_deregister,
          ACL_HANDLER(SERVICE, WRITE)),
    WRITE("PUT", "/v1/agent/service/maintenance/", PREFIX, reg_api_agent_service_maintenance,
          ACL_HANDLER(SERVICE, WRITE)),
    WRITE("PUT", "/v1/agent/check/register", EXACT, reg_api_agent_check_register,
          ACL_HANDLER(SERVICE, WRITE)),
    WRITE("PUT", "/v1/agent/check/deregister/", PREFIX, reg_api_agent_check_deregister,
          ACL_HANDLER(SERVICE, WRITE)),
    WRITE("PUT", "/v1/agent/check/pass/", PREFIX, reg_api_agent_check_pass,
          ACL_HANDLER(SERVICE, WRITE)),
    WRITE("PUT", "/v1/agent/check/warn/", PREFIX, reg_api_agent_check_warn,
          ACL_HANDLER(SERVICE, WRITE)),
    WRITE("PUT", "/v1/agent/check/fail/", PREFIX, reg_api_agent_check_fail,
          ACL_HANDLER(SERVICE, WRITE)),
    WRITE("PUT", "/v1/agent/check/update/", PREFIX, reg_api_agent_check_update,
          ACL_HANDLER(SERVICE, WRITE)),
    WRITE("PUT", "/v1/agent/maintenance", EXACT, reg_api_agent_maintenance,
          ACL_ROUTE(NODE, WRITE, NODE)),
    WRITE("PUT", "/v1/agent/join/", PREFIX, reg_api_agent_join, ACL_ROUTE(AGENT, WRITE, NODE)),
    WRITE("PUT", "/v1/agent/leave", EXACT, reg_api_agent_leave, ACL_ROUTE(AGENT, WRITE, NODE)),
    WRITE("PUT", "/v1/agent/force-leave/", PREFIX, reg_api_agent_force_leave,
          ACL_ROUTE(OPERATOR, WRITE, NONE)),
    WRITE("PUT", "/v1/agent/reload", EXACT, reg_api_agent_reload, ACL_ROUTE(AGENT, WRITE, NODE)),
    WRITE("PUT", "/v1/agent/token/", PREFIX, reg_api_agent_token, ACL_ROUTE(AGENT, WRITE, NODE)),

    READ("GET", "/v1/catalog/datacenters", EXACT, reg_api_catalog_datacenters, CAT, NOW,
         ACL_PUBLIC),
    READ("GET", "/v1/catalog/nodes", EXACT, reg_api_catalog_nodes, CAT, BLOCKING, ACL_FILTER(NODE)),
    READ("GET", "/v1/catalog/services", EXACT, reg_api_catalog_services, CAT, BLOCKING,
         ACL_FILTER(SERVICE)),
    READ("GET", "/v1/catalog/service/", PREFIX, reg_api_catalog_service, CAT, BLOCKING,
         ACL_FILTER(SERVICE)),
    READ("GET", "/v1/catalog/connect/", PREFIX, reg_api_catalog_connect, CAT, BLOCKING,
         ACL_FILTER(SERVICE)),
    READ("GET", "/v1/catalog/node/", PREFIX, reg_api_catalog_node, CAT, BLOCKING, ACL_FILTER(NODE)),
    READ("GET", "/v1/catalog/node-services/", PREFIX, reg_api_catalog_node_services, CAT, BLOCKING,
         ACL_FILTER(NODE)),
    WRITE("PUT", "/v1/catalog/register", EXACT, reg_api_catalog_register, ACL_HANDLER(NODE, WRITE)),
    WRITE("PUT", "/v1/catalog/deregister", EXACT, reg_api_catalog_deregister,
          ACL_HANDLER(NODE, WRITE)),

    READ("GET", "/v1/health/service/", PREFIX, reg_api_health_service, CAT, BLOCKING,
         ACL_FILTER(SERVICE)),
    READ("GET", "/v1/health/connect/", PREFIX, reg_api_health_connect, CAT, BLOCKING,
         ACL_FILTER(SERVICE)),
    READ("GET", "/v1/health/checks/", PREFIX, reg_api_health_checks, CAT, BLOCKING,
         ACL_FILTER(SERVICE)),
    READ("GET", "/v1/health/node/", PREFIX, reg_api_health_node, CAT, BLOCKING, ACL_FILTER(NODE)),
    READ("GET", "/v1/health/state/", PREFIX, reg_api_health_state, CAT, BLOCKING, ACL_FILTER(NODE)),
    READ("GET", "/v1/health/ingress/", PREFIX, reg_api_health_ingress, CAT, BLOCKING,
         ACL_ROUTE(SERVICE, READ, ARG)),

    READ("GET", "/v1/kv/", PREFIX, reg_api_kv_get, REG_TABLE_KV, BLOCKING, ACL_HANDLER(KEY, READ)),
    WRITE("PUT", "/v1/kv/", PREFIX, reg_api_kv_put, ACL_ROUTE(KEY, WRITE, ARG)),
    WRITE("DELETE", "/v1/kv/", PREFIX, reg_api_kv_delete, ACL_ROUTE(KEY, WRITE, ARG)),

    /* sessions: api_session.c */
    WRITE("PUT", "/v1/session/create", EXACT, reg_api_session_create, ACL_HANDLER(SESSION, WRITE)),
    WRITE("PUT", "/v1/session/destroy/", PREFIX, reg_api_session_destroy,
          ACL_HANDLER(SESSION, WRITE)),
    WRITE("PUT", "/v1/session/renew/", PREFIX, reg_api_session_renew, ACL_HANDLER(SESSION, WRITE)),
    READ("GET", "/v1/session/info/", PREFIX, reg_api_session_info, REG_TABLE_SESSIONS, BLOCKING,
         ACL_FILTER(SESSION)),
    READ("GET", "/v1/session/node/", PREFIX, reg_api_session_node, REG_TABLE_SESSIONS, BLOCKING,
         ACL_FILTER(SESSION)),
    READ("GET", "/v1/session/list", EXACT, reg_api_session_list, REG_TABLE_SESSIONS, BLOCKING,
         ACL_FILTER(SESSION)),
    /* transactions and events: api_txn.c, api_event.c */
    WRITE("PUT", "/v1/txn", EXACT, reg_api_txn, ACL_HANDLER(KEY, WRITE)),
    WRITE("PUT", "/v1/event/fire/", PREFIX, reg_api_event_fire, ACL_ROUTE(EVENT, WRITE, ARG)),
    READ("GET", "/v1/event/list", EXACT, reg_api_event_list, REG_TABLE_EVENTS, BLOCKING,
         ACL_FILTER(EVENT)),
    /* prepared queries: api_query.c (Consul creates with POST, an alias of PUT here). No
     * query:* rules here: reading and managing queries is an operator's. */
    WRITE("PUT", "/v1/query", EXACT, reg_api_query_create, ACL_ROUTE(OPERATOR, WRITE, NONE)),
    READ("GET", "/v1/query", EXACT, reg_api_query_list, REG_TABLE_QUERIES, BLOCKING,
         ACL_ROUTE(OPERATOR, READ, NONE)),
    READ("GET", "/v1/query/", PREFIX, reg_api_query_get, REG_TABLE_QUERIES, NOW,
         ACL_ROUTE(OPERATOR, READ, NONE)),
    WRITE("PUT", "/v1/query/", PREFIX, reg_api_query_update, ACL_ROUTE(OPERATOR, WRITE, NONE)),
    WRITE("DELETE", "/v1/query/", PREFIX, reg_api_query_delete, ACL_ROUTE(OPERATOR, WRITE, NONE)),
    /* network coordinates: api_coord.c */
    READ("GET", "/v1/coordinate/datacenters", EXACT, reg_api_coordinate_datacenters, CAT, NOW,
         ACL_FILTER(NODE)),
    READ("GET", "/v1/coordinate/nodes", EXACT, reg_api_coordinate_nodes, REG_TABLE_COORDS, BLOCKING,
         ACL_FILTER(NODE)),
    READ("GET", "/v1/coordinate/node/", PREFIX, reg_api_coordinate_node, REG_TABLE_COORDS, BLOCKING,
         ACL_ROUTE(NODE, READ, ARG)),
    WRITE("PUT", "/v1/coordinate/update", EXACT, reg_api_coordinate_update,
          ACL_HANDLER(NODE, WRITE)),
    /* ACLs: api_acl.c */
    WRITE("PUT", "/v1/acl/bootstrap", EXACT, reg_api_acl_bootstrap, ACL_PUBLIC),
    READ("GET", "/v1/acl/token/self", EXACT, reg_api_acl_token_self, REG_TABLE_ACL, NOW,
         ACL_PUBLIC),
    WRITE("PUT", "/v1/acl/token", EXACT, reg_api_acl_token_create, ACL_ROUTE(ACL, WRITE, NONE)),
    READ("GET", "/v1/acl/token/", PREFIX, reg_api_acl_token_read, REG_TABLE_ACL, BLOCKING,
         ACL_ROUTE(ACL, READ, NONE)),
    WRITE("PUT", "/v1/acl/token/", PREFIX, reg_api_acl_token_update, ACL_ROUTE(ACL, WRITE, NONE)),
    WRITE("DELETE", "/v1/acl/token/", PREFIX, reg_api_acl_token_delete,
          ACL_ROUTE(ACL, WRITE, NONE)),
    READ("GET", "/v1/acl/tokens", EXACT, reg_api_acl_token_list, REG_TABLE_ACL, BLOCKING,
         ACL_ROUTE(ACL, READ, NONE)),
    WRITE("PUT", "/v1/acl/policy", EXACT, reg_api_acl_policy_create, ACL_ROUTE(ACL, WRITE, NONE)),
    READ("GET", "/v1/acl/policy/", PREFIX, reg_api_acl_policy_read, REG_TABLE_ACL, BLOCKING,
         ACL_ROUTE(ACL, READ, NONE)),
    READ("GET", "/v1/acl/policy/name/", PREFIX, reg_api_acl_policy_read_by_name, REG_TABLE_ACL,
         BLOCKING, ACL_ROUTE(ACL, READ, NONE)),
    WRITE("PUT", "/v1/acl/policy/", PREFIX, reg_api_acl_policy_update, ACL_ROUTE(ACL, WRITE, NONE)),
    WRITE("DELETE", "/v1/acl/policy/", PREFIX, reg_api_acl_policy_delete,
          ACL_ROUTE(ACL, WRITE, NONE)),
    READ("GET", "/v1/acl/policies", EXACT, reg_api_acl_policy_list, REG_TABLE_ACL, BLOCKING,
         ACL_ROUTE(ACL, READ, NONE)),
    /* Consul's other ACL endpoints, not implemented: 401 with ACLs off, as Consul, else 404 */
    UNSERVED_READ("/v1/acl/replication", EXACT),
    UNSERVED_WRITE("POST", "/v1/acl/login", EXACT),
    UNSERVED_WRITE("POST", "/v1/acl/logout", EXACT),
    UNSERVED_KIND("/v1/acl/roles", "/v1/acl/role", "/v1/acl/role/"),
    UNSERVED_READ("/v1/acl/role/name/", PREFIX),
    UNSERVED_KIND("/v1/acl/binding-rules", "/v1/acl/binding-rule", "/v1/acl/binding-rule/"),
    UNSERVED_KIND("/v1/acl/auth-methods", "/v1/acl/auth-method", "/v1/acl/auth-method/"),
    UNSERVED_READ("/v1/acl/templated-policies", EXACT),
    UNSERVED_READ("/v1/acl/templated-policy/name/", PREFIX),
    UNSERVED_WRITE("POST", "/v1/acl/templated-policy/preview/", PREFIX),
    UNSERVED_WRITE("POST", "/v1/internal/acl/authorize", EXACT),

    /* meshkit internal: api_internal.c */
    WRITE("PUT", "/v1/internal/mesh/heartbeat", EXACT, reg_api_internal_heartbeat,
          ACL_HANDLER(NODE, WRITE)),
    WRITE("PUT", "/v1/internal/mesh/leave", EXACT, reg_api_internal_leave,
          ACL_HANDLER(NODE, WRITE)),
    READ("GET", "/v1/internal/mesh/acl/resolve", EXACT, reg_api_internal_acl_resolve, REG_TABLE_ACL,
         NOW, ACL_PUBLIC),

    READ("GET", "/v1/internal/ui/services", EXACT, reg_api_ui_services, CAT, BLOCKING,
         ACL_FILTER(SERVICE)),
    READ("GET", "/v1/internal/ui/nodes", EXACT, reg_api_ui_nodes, CAT, BLOCKING, ACL_FILTER(NODE)),

    READ("GET", "/v1/status/leader", EXACT, reg_api_status_leader, CAT, NOW, ACL_PUBLIC),
    READ("GET", "/v1/internal/mesh/raft/info", EXACT, reg_api_cluster_info, CAT, NOW, ACL_PUBLIC),
    WRITE("PUT", "/v1/internal/mesh/raft/join", EXACT, reg_api_cluster_join,
          ACL_ROUTE(OPERATOR, WRITE, NONE)),
    READ("GET", "/v1/status/peers", EXACT, reg_api_status_peers, CAT, NOW, ACL_PUBLIC),
    READ("GET", "/v1/operator/raft/configuration", EXACT, reg_api_operator_raft_configuration, CAT,
         NOW, ACL_ROUTE(OPERATOR, READ, NONE)),
    WRITE("DELETE", "/v1/operator/raft/peer", EXACT, reg_api_operator_raft_remove_peer,
          ACL_ROUTE(OPERATOR, WRITE, NONE)),
};

const struct reg_api_route *reg_api_route_table(size_t *n)
{
    *n = ARRAY_LEN(routes);
    return routes;
}

/* ---- call lifetime ----------------------------------------------------------------------- */

void reg_api_call_free(struct reg_api_call *c)
{
    url_query_free(&c->query);
    free(c->path);
    free(c->token);
    reg_acl_authz_free(&c->authz);
    bexpr_free(c->filter);
    free(c);
}

/* X-Consul-Default-ACL-Policy, which every answer carries. */
static const char *default_policy(const struct reg_api *a)
{
    const struct reg_settings *cfg = a->cfg;
    return cfg->acl_enabled && cfg->acl_default_policy ? cfg->acl_default_policy : "allow";
}

static void add_common_headers(struct reg_api_call *c)
{
    http_response_header(c->req, "X-Consul-Default-ACL-Policy", "%s", default_policy(c->api));
}

/*
 * True when a write handler's change did not reach the journal (a full disk, an I/O error): it
 * must not be acknowledged. *err gets the failure.
 */
static bool write_unpersisted(const struct reg_api_call *c, int *err)
{
    if (!c->route || !c->route->write)
        return false;
    *err = c->api->ops->write_failed(c->api->agent, &c->mark);
    return *err < 0;
}

/* Consul compresses the answers of its API (/v1/), not the web UI's files. */
static bool compressible(const struct reg_api_call *c)
{
    return strncmp(c->path, "/v1/", 4) == 0;
}

static void respond(struct reg_api_call *c, int status, const char *type, const void *body,
                    size_t len)
{
    char msg[256];
    int err;

    if (status < 300 && write_unpersisted(c, &err)) {
        int n = snprintf(msg, sizeof(msg),
                         "failed to persist the change: %s (it is not acknowledged; the server "
                         "retries writing its state)\n",
                         strerror(-err));
        status = 500;
        type = "text/plain; charset=utf-8";
        body = msg;
        len = n > 0 && (size_t)n < sizeof(msg) ? (size_t)n : strlen(msg);
    }
    add_common_headers(c);
    /* In a replicated cluster nothing is told before the log has committed it. */
    bool write = c->route && c->route->write;
    if (c->api->ops->must_hold(c->api->agent, c->path, write, status)) {
        struct buf copy = BUF_INIT; /* body is borrowed for the call only */
        buf_append(&copy, body, len);
        struct http_shared_response *answer = http_shared_response_new(status, type, &copy);
        if (compressible(c))
            http_shared_response_gzip(answer, HTTP_GZIP_MIN_SIZE);
        c->api->ops->hold(c->api->agent, c->req, write, answer);
        http_shared_response_unref(answer);
    } else {
        if (compressible(c))
            http_respond_gzip(c->req, status, type, body, len, HTTP_GZIP_MIN_SIZE);
        else
            http_respond(c->req, status, type, body, len);
        c->api->ops->answered(c->api->agent, len);
    }
    reg_api_call_free(c);
}

/* respond() for a read's answer, which may answer many calls (borrowed). */
static void respond_shared(struct reg_api_call *c, struct http_shared_response *answer)
{
    struct reg_api *a = c->api;

    if (a->ops->must_hold(a->agent, c->path, false, answer->status)) {
        a->ops->hold(a->agent, c->req, false, answer);
    } else {
        http_respond_shared(c->req, answer);
        a->ops->answered(a->agent, answer->body.len);
    }
    reg_api_call_free(c);
}

void reg_api_answer(struct reg_api_call *c, int status, const char *content_type, const void *body,
                    size_t len)
{
    respond(c, status, content_type, body, len);
}

void reg_api_error(struct reg_api_call *c, int status, const char *fmt, ...)
{
    struct buf b = BUF_INIT;
    va_list ap;

    va_start(ap, fmt);
    buf_vprintf(&b, fmt, ap);
    va_end(ap);
    if (b.len == 0 || b.data[b.len - 1] != '\n')
        buf_append(&b, "\n", 1);
    respond(c, status, "text/plain; charset=utf-8", b.data, b.len);
    buf_free(&b);
}

void reg_api_ok_empty(struct reg_api_call *c)
{
    respond(c, 200, NULL, "", 0);
}

void reg_api_ok_json(struct reg_api_call *c, json_t *v)
{
    struct buf b = BUF_INIT;

    json_append(&b, v, c->pretty);
    json_decref(v);
    respond(c, 200, "application/json", b.data, b.len);
    buf_free(&b);
}

void reg_api_result_json(struct reg_api_call *c, struct reg_api_result *res, json_t *v)
{
    struct err e;

    if (reg_api_filter_apply(c, v, &e) < 0) {
        json_decref(v);
        reg_api_result_error(res, 400, "Failed to evaluate the filter: %s", e.msg);
        return;
    }
    buf_reset(&res->body);
    json_append(&res->body, v, c->pretty);
    json_decref(v);
    res->status = 200;
    res->content_type = "application/json";
}

void reg_api_result_error(struct reg_api_result *res, int status, const char *fmt, ...)
{
    va_list ap;

    buf_reset(&res->body);
    va_start(ap, fmt);
    buf_vprintf(&res->body, fmt, ap);
    va_end(ap);
    buf_append(&res->body, "\n", 1);
    res->status = status;
    res->content_type = "text/plain; charset=utf-8";
    res->index_headers = false;
}

json_t *reg_api_body_load(const struct reg_api_call *c, json_error_t *jerr)
{
    if (json_text_depth(c->req->body, c->req->body_len) > REG_API_MAX_JSON_DEPTH) {
        snprintf(jerr->text, sizeof(jerr->text), "JSON nested deeper than %d levels",
                 REG_API_MAX_JSON_DEPTH);
        return NULL;
    }
    return json_loadb(c->req->body, c->req->body_len, 0, jerr);
}

json_t *reg_api_body_json(struct reg_api_call *c, bool allow_empty)
{
    json_error_t jerr;

    if (c->req->body_len == 0 && allow_empty)
        return json_object();
    json_t *v = reg_api_body_load(c, &jerr);
    if (!v) {
        reg_api_error(c, 400, "Request decode failed: %s", jerr.text);
        return NULL;
    }
    if (!json_is_object(v)) {
        reg_api_error(c, 400,
                      "Request decode failed: json: cannot unmarshal %s into Go value of type "
                      "map[string]interface {}",
                      json_type_name(v));
        json_decref(v);
        return NULL;
    }
    return v;
}

bool reg_api_dc_known(const struct reg_api_call *c, const char *dc)
{
    return !dc || !dc[0] || strcasecmp(dc, c->api->cfg->datacenter) == 0;
}

const char *reg_api_query(const struct reg_api_call *c, const char *name)
{
    return url_query_get(&c->query, name);
}

bool reg_api_query_has(const struct reg_api_call *c, const char *name)
{
    return url_query_has(&c->query, name);
}

int reg_api_query_bool(const struct reg_api_call *c, const char *name, bool *out)
{
    const char *v = url_query_get(&c->query, name);

    *out = false;
    if (!v)
        return 0;
    static const char *const yes[] = {"", "1", "t", "T", "true", "TRUE", "True"};
    static const char *const no[] = {"0", "f", "F", "false", "FALSE", "False"};
    for (size_t i = 0; i < ARRAY_LEN(yes); i++)
        if (strcmp(v, yes[i]) == 0)
            return *out = true, 0;
    for (size_t i = 0; i < ARRAY_LEN(no); i++)
        if (strcmp(v, no[i]) == 0)
            return 0;
    return -EINVAL;
}

/* ---- reads and blocking ------------------------------------------------------------------ */

uint64_t reg_api_result_hash(const struct reg_api_result *res)
{
    uint64_t h = reg_watch_hash(res->body.data, res->body.len);
    return h ^ (uint64_t)res->status * 0x9e3779b97f4a7c15ull;
}

/* The consistency mode a read was served in, as Consul names it: ?cached reads go through
 * Consul's agent cache, which asks for stale reads. */
static const char *effective_consistency(const struct reg_api_call *c)
{
    if (reg_api_query_has(c, "consistent"))
        return "consistent";
    if (reg_api_query_has(c, "stale") || reg_api_query_has(c, "cached"))
        return "stale";
    return "leader";
}

/*
 * The reads Consul's agent cache answers with ?cached (the "Agent Caching" column of its docs).
 * meshkit keeps no such cache: each is a miss, read fresh (so no Age header, which Consul sends
 * with hits only).
 */
static bool cacheable(const char *path)
{
    static const char *const prefixes[] = {"/v1/catalog/services", "/v1/catalog/service/",
                                           "/v1/catalog/connect/", "/v1/health/service/",
                                           "/v1/health/connect/",  "/v1/health/ingress/"};
    size_t n = strlen(path);

    for (size_t i = 0; i < ARRAY_LEN(prefixes); i++)
        if (strncmp(path, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    return strncmp(path, "/v1/query/", 10) == 0 && n > 8 && strcmp(path + n - 8, "/execute") == 0;
}

struct http_shared_response *reg_api_result_response(const struct reg_api_call *c,
                                                     struct reg_api_result *res)
{
    struct http_shared_response *r =
        http_shared_response_new(res->status, res->content_type, &res->body);
    if (compressible(c))
        http_shared_response_gzip(r, HTTP_GZIP_MIN_SIZE);

    http_shared_response_header(r, "X-Consul-Default-ACL-Policy", "%s", default_policy(c->api));
    if (res->index_headers) {
        bool known;
        uint64_t contact;
        c->api->ops->read_headers(c->api->agent, &known, &contact);
        http_shared_response_header(r, "X-Consul-Index", "%" PRIu64, res->index ? res->index : 1);
        http_shared_response_header(r, "X-Consul-KnownLeader", "%s", known ? "true" : "false");
        http_shared_response_header(r, "X-Consul-LastContact", "%" PRIu64, contact);
        /* Both depend on the query, which is part of the key a shared answer is sent by. */
        http_shared_response_header(r, "X-Consul-Effective-Consistency", "%s",
                                    effective_consistency(c));
        http_shared_response_header(r, "X-Consul-Query-Backend", "blocking-query");
    }
    if (res->status == 200 && reg_api_query_has(c, "cached") && cacheable(c->path))
        http_shared_response_header(r, "X-Cache", "MISS");
    if (res->content_hash[0])
        http_shared_response_header(r, "X-Consul-ContentHash", "%s", res->content_hash);
    if (res->acl_filtered)
        http_shared_response_header(r, "X-Consul-Results-Filtered-By-ACLs", "true");
    return r;
}

static void send_result(struct reg_api_call *c, struct reg_api_result *res)
{
    struct http_shared_response *answer = reg_api_result_response(c, res);

    respond_shared(c, answer);
    http_shared_response_unref(answer);
}

static void run_read(struct reg_api_call *c, struct reg_api_result *res)
{
    memset(res, 0, sizeof(*res));
    res->status = 200;
    res->content_type = "application/json";
    /* Again on every run: a parked query outlives policy and token changes. (A client
     * agent's stale cache entry is good enough here; the next request refreshes it.) */
    int rc = reg_api_acl_resolve(c);
    if (rc < 0 && rc != -EAGAIN) {
        reg_api_result_error(res, 403, "ACL not found");
        return;
    }
    c->read(c, res);
}

void reg_api_call_reread(struct reg_api_call *c, struct reg_api_result *res)
{
    run_read(c, res);
}

void reg_api_call_answer(struct reg_api_call *c, struct http_shared_response *answer)
{
    respond_shared(c, answer);
}

void reg_api_result_free(struct reg_api_result *res)
{
    buf_free(&res->body);
}

/* A field of the key as a netstring ("5:hello"): no two different lists of fields give the
 * same key, whatever bytes they hold. */
static void key_field(struct buf *key, const char *p, size_t n)
{
    buf_printf(key, "%zu:", n);
    buf_append(key, p, n);
}

/* ?index and ?wait decide when a blocking query answers, never what. */
static bool decides_answer(const struct url_param *p)
{
    return strcmp(p->name, "index") != 0 && strcmp(p->name, "wait") != 0;
}

void reg_api_call_share_key(const struct reg_api_call *c, struct buf *key)
{
    const struct http_header *accept = http_request_header(c->req, "Accept");
    size_t nparams = 0;

    for (size_t i = 0; i < c->query.n; i++)
        nparams += decides_answer(&c->query.params[i]);
    key_field(key, c->path, strlen(c->path));
    buf_printf(key, "%zu,", nparams);
    for (size_t i = 0; i < c->query.n; i++) {
        const struct url_param *p = &c->query.params[i];
        if (!decides_answer(p))
            continue;
        key_field(key, p->name, strlen(p->name));
        key_field(key, p->has_value ? "=" : "", p->has_value);
        key_field(key, p->value, strlen(p->value));
    }
    /* Then Accept and the token, each after a field that is empty when it is absent. */
    key_field(key, "A", accept != NULL);
    if (accept)
        key_field(key, accept->value.p, accept->value.n);
    if (!c->api->cfg->acl_enabled)
        return; /* every caller has the same rights */
    /* Whether the request carried the token decides X-Consul-Results-Filtered-By-ACLs. */
    key_field(key, c->token_given ? "g" : "d", c->token != NULL);
    if (c->token)
        key_field(key, c->token, strlen(c->token));
}

/* Parses ?index and ?wait; answers 400 and returns false when malformed. */
static bool parse_blocking(struct reg_api_call *c, uint64_t *wait_ms)
{
    const char *idx = reg_api_query(c, "index");
    const char *wait = reg_api_query(c, "wait");
    unsigned long long v;
    int64_t ns;

    *wait_ms = WAIT_DEFAULT_MS;
    if (idx && idx[0] && !str_to_u64(str_from(idx), &v)) {
        reg_api_error(c, 400, "Invalid index");
        return false;
    }
    c->min_index = idx && idx[0] ? v : 0;
    if (wait && wait[0]) {
        if (duration_parse(str_from(wait), &ns) < 0) {
            reg_api_error(c, 400, "Invalid wait time");
            return false;
        }
        *wait_ms = (uint64_t)(ns / DURATION_MS);
        if (*wait_ms > WAIT_MAX_MS)
            *wait_ms = WAIT_MAX_MS;
    }
    /* Consul adds up to wait/16 of jitter so that many watchers do not return in lockstep. */
    *wait_ms += *wait_ms >= 16 ? (uint64_t)rand() % (*wait_ms / 16) : 0;
    return true;
}

static void serve_read(struct reg_api_call *c, const struct reg_api_route *r)
{
    struct reg_api_result res;
    uint64_t wait_ms = 0;

    c->read = r->read;
    c->table = r->table;
    c->hash = reg_api_query(c, "hash");
    if (reg_api_filter_prepare(c, r->path) < 0)
        return;
    if ((r->blocking || (c->hash && c->hash[0])) && !parse_blocking(c, &wait_ms))
        return;
    run_read(c, &res);
    /* Index blocking (catalog, health, KV), or hash blocking (agent/service/:id). */
    bool park =
        (r->blocking && c->min_index > 0 && res.index_headers && res.index <= c->min_index) ||
        (c->hash && c->hash[0] && res.content_hash[0] && strcmp(c->hash, res.content_hash) == 0);
    if (park) {
        struct buf key = BUF_INIT;
        reg_api_call_share_key(c, &key);
        reg_watch_park(c->api->watches, c, r->table, reg_api_result_hash(&res), wait_ms, &key);
    } else {
        send_result(c, &res);
    }
    buf_free(&res.body);
}

/* ---- routing ----------------------------------------------------------------------------- */

static bool route_matches(const struct reg_api_route *r, const char *path)
{
    size_t n = strlen(r->path);
    if (r->prefix)
        return strncmp(path, r->path, n) == 0;
    return strcmp(path, r->path) == 0;
}

/* Rejects parameters Consul rejects for every endpoint. Returns false after answering. */
static bool check_common_params(struct reg_api_call *c)
{
    const char *dc = reg_api_query(c, "dc");
    const char *ns = reg_api_query(c, "ns");
    const struct http_header *nsh = http_request_header(c->req, "X-Consul-Namespace");

    if (reg_api_query_has(c, "stale") && reg_api_query_has(c, "consistent")) {
        reg_api_error(c, 400, "Cannot specify ?stale with ?consistent, conflicting semantics.");
        return false;
    }
    if (reg_api_query_has(c, "cached") && reg_api_query_has(c, "consistent")) {
        reg_api_error(c, 400, "Cannot specify ?cached with ?consistent, conflicting semantics.");
        return false;
    }
    if ((ns && ns[0] && strcmp(ns, "default") != 0) ||
        (nsh && nsh->value.n && !str_eq_cstr(nsh->value, "default"))) {
        reg_api_error(
            c, 400, "Invalid query parameter: \"ns\" - Namespaces are a Consul Enterprise feature");
        return false;
    }
    if (!reg_api_dc_known(c, dc)) {
        reg_api_error(c, 500, "No path to datacenter");
        return false;
    }
    return true;
}

static void dispatch(struct reg_api_call *c);

/* Resolves the call's token and checks the route's permission. Returns false after answering. */
static bool authorize(struct reg_api_call *c, const struct reg_api_route *r)
{
    struct reg_api *a = c->api;

    a->ops->acl_ensure(a->agent);
    int rc = reg_api_acl_resolve(c);
    if (rc == -EAGAIN || rc == REG_API_ACL_STALE) {
        /* A client agent learning what the token may do from a server: resume after. */
        a->ops->acl_fetch(a->agent, c, dispatch);
        return false;
    }
    if (rc < 0) {
        reg_api_error(c, 403, "ACL not found");
        return false;
    }
    if (MESH_BUG_ON(r->acl.kind == REG_API_ACL_UNSET)) {
        reg_api_error(c, 500, "route %s declares no ACL rule", r->path);
        return false;
    }
    if (r->acl.kind != REG_API_ACL_ROUTE)
        return true; /* public, or the handler checks and filters (api_routes.h) */
    const char *name = r->acl.name == REG_API_ACL_NAME_ARG    ? c->arg
                       : r->acl.name == REG_API_ACL_NAME_NODE ? a->cfg->node_name
                                                              : "";
    return reg_api_acl_require(c, r->acl.res, name, r->acl.acc);
}

static void answer_root(struct reg_api_call *c)
{
    bool ui = c->api->cfg->ui;

    /* The target "*": Go's server answers OPTIONS itself (200, Content-Length 0: net/http
     * serverHandler, globalOptionsHandler) and its ServeMux any other method 400, no body. */
    if (strcmp(c->path, "*") == 0) {
        respond(c, str_eq_cstr(c->req->method, "OPTIONS") ? 200 : 400, NULL, "", 0);
        return;
    }
    if (ui && (strcmp(c->path, "/ui") == 0 || strncmp(c->path, "/ui/", 4) == 0)) {
        reg_api_ui_serve(c);
        return;
    }
    if (ui && strcmp(c->path, "/") == 0) {
        /* 302, not Consul's 301: a browser would remember a 301 after the UI is turned off. */
        http_response_header(c->req, "Location", "/ui/");
        respond(c, 302, "text/plain; charset=utf-8", "", 0);
        return;
    }
    if (strcmp(c->path, "/") == 0) {
        static const char text[] = "Consul Agent: meshkit registry\n";
        respond(c, 200, "text/plain; charset=utf-8", text, sizeof(text) - 1);
        return;
    }
    reg_api_error(c, 404, "Invalid URL path: not a recognized HTTP API endpoint");
}

/* Length of the longest route path matching `path`: the route that owns it (a prefix route
 * such as /v1/agent/service/ must not answer for /v1/agent/service/register). */
static size_t owner_len(const char *path)
{
    size_t best = 0;
    for (size_t i = 0; i < ARRAY_LEN(routes); i++)
        if (route_matches(&routes[i], path) && strlen(routes[i].path) > best)
            best = strlen(routes[i].path);
    return best;
}

/* Lists the methods of the routes owning the path into allow ("OPTIONS,GET,PUT"). */
static void allowed_methods(const char *path, size_t owner, struct buf *allow)
{
    buf_append_cstr(allow, "OPTIONS");
    for (size_t i = 0; i < ARRAY_LEN(routes); i++) {
        const struct reg_api_route *r = &routes[i];
        if (route_matches(r, path) && strlen(r->path) == owner && !strstr(allow->data, r->method)) {
            buf_append(allow, ",", 1);
            buf_append_cstr(allow, r->method);
        }
    }
}

/* Older Consul took GET for check pass/warn/fail (its docs' curl samples still do), and POST
 * for writes: harmless aliases of PUT. */
static bool method_alias(const struct reg_api_route *r, struct str method)
{
    if (strcmp(r->method, "PUT") != 0)
        return false;
    if (str_eq_cstr(method, "POST"))
        return true;
    return str_eq_cstr(method, "GET") && (strcmp(r->path, "/v1/agent/check/pass/") == 0 ||
                                          strcmp(r->path, "/v1/agent/check/warn/") == 0 ||
                                          strcmp(r->path, "/v1/agent/check/fail/") == 0);
}

static const struct reg_api_route *find_route(const char *path, struct str method, size_t *owner)
{
    *owner = owner_len(path);
    for (size_t i = 0; i < ARRAY_LEN(routes); i++) {
        const struct reg_api_route *r = &routes[i];
        if (!route_matches(r, path) || strlen(r->path) != *owner)
            continue;
        if (str_eq_cstr(method, r->method) || (str_eq_cstr(method, "HEAD") && r->read) ||
            method_alias(r, method))
            return r;
    }
    return NULL;
}

void reg_api_handle(struct http_request *req, void *data)
{
    struct reg_api_call *c = xcalloc(1, sizeof(*c));
    struct buf path = BUF_INIT;

    c->api = data;
    c->req = req;
    c->api->ops->count_request(c->api->agent, req->method);
    /* Every key, name and ID a handler reads from the path or the query comes through here:
     * a NUL or invalid UTF-8 is refused once, so no endpoint can store "victim%00x" as
     * "victim" or let "%00junk?recurse" become the empty prefix. */
    int rc = url_decode(req->path, false, &path);
    if (rc == 0)
        rc = url_query_parse(req->query, &c->query);
    if (rc < 0) {
        buf_free(&path);
        c->path = xstrdup("");
        if (rc == -EILSEQ)
            reg_api_error(c, 400,
                          "Invalid URL: a path segment or query value is not UTF-8 text "
                          "(NUL or invalid byte)");
        else
            reg_api_error(c, 400, "Invalid URL escape in request");
        return;
    }
    c->path = buf_steal(&path);
    c->pretty = reg_api_query_has(c, "pretty");
    if (strncmp(c->path, "/v1/", 4) != 0) {
        answer_root(c);
        return;
    }
    size_t owner;
    const struct reg_api_route *r = find_route(c->path, req->method, &owner);
    if (!r) {
        if (!owner) {
            reg_api_error(c, 404, "Invalid URL path: not a recognized HTTP API endpoint");
            return;
        }
        struct buf allow = BUF_INIT;
        allowed_methods(c->path, owner, &allow);
        http_response_header(req, "Allow", "%s", allow.data);
        buf_free(&allow);
        if (str_eq_cstr(req->method, "OPTIONS"))
            reg_api_ok_empty(c);
        else
            reg_api_error(c, 405, "method %.*s not allowed", STR_FMT(req->method));
        return;
    }
    c->arg = r->prefix ? c->path + strlen(r->path) : "";
    if (c->api->ops->forward_to_server(c->api->agent, c))
        return; /* a client agent: the servers answer */
    c->route = r;
    if (c->api->ops->forward_to_leader(c->api->agent, c, r->write != NULL))
        return; /* a follower of a replicated cluster: the leader answers */
    if (check_common_params(c))
        dispatch(c);
}

void reg_api_call_resume(struct reg_api_call *c)
{
    if (check_common_params(c))
        dispatch(c);
}

/* Authorizes the call for its route, then runs the handler. */
static void dispatch(struct reg_api_call *c)
{
    const struct reg_api_route *r = c->route;

    if (!authorize(c, r))
        return;
    c->api->ops->write_mark(c->api->agent, &c->mark);
    if (r->write)
        r->write(c);
    else
        serve_read(c, r);
}
