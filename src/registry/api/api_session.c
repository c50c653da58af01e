/* The /v1/session endpoints (docs/agent.md, Sessions). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/alloc.h"
#include "lib/duration.h"
#include "lib/uuid.h"
#include "registry/api/api_acl.h"
#include "registry/api/api_routes.h"
#include "registry/api/sessions.h"
#include "registry/settings/settings.h"

#define LOCK_DELAY_DEFAULT_NS (15 * DURATION_SEC)
#define LOCK_DELAY_MAX_NS     (60 * DURATION_SEC)

/* Go's JSON decoder matches field names case-insensitively. */
static json_t *field(const json_t *obj, const char *name)
{
    const char *k;
    json_t *v;

    json_object_foreach((json_t *)obj, k, v)
    {
        if (strcasecmp(k, name) == 0)
            return v;
    }
    return NULL;
}

/* A decoded create body; strings and arrays are heap, borrowed strings point into the JSON. */
struct create_req {
    struct reg_session t;
    char id[37];
};

static void create_req_free(struct create_req *r)
{
    free(r->t.node_checks);
    free(r->t.service_checks);
}

/* LockDelay: a Go duration string, or a number (< 1000: seconds, else nanoseconds). */
static int parse_lock_delay(const json_t *v, int64_t *ns, struct err *e)
{
    if (json_is_string(v)) {
        if (duration_parse(str_from(json_string_value(v)), ns) < 0)
            return err_set(e, "Request decode failed: invalid LockDelay \"%s\"",
                           json_string_value(v));
    } else if (json_is_number(v)) {
        double d = json_number_value(v);
        if (d < 0 || d > 1e18)
            return err_set(e, "Request decode failed: invalid LockDelay");
        *ns = d < 1000 ? (int64_t)(d * (double)DURATION_SEC) : (int64_t)d;
    } else if (!json_is_null(v)) {
        return err_set(e, "Request decode failed: invalid LockDelay");
    }
    if (*ns > LOCK_DELAY_MAX_NS)
        return err_set(e, "Invalid Lock Delay '%lld'. Must be between 0 and 60s", (long long)*ns);
    return 0;
}

static int parse_ttl(struct create_req *r, const json_t *v, struct err *e)
{
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return err_set(e, "Request decode failed: TTL must be a string");
    r->t.ttl = (char *)json_string_value(v);
    if (!r->t.ttl[0])
        return 0;
    if (duration_parse(str_from(r->t.ttl), &r->t.ttl_ns) < 0)
        return err_set(e, "Session TTL '%s' invalid: time: invalid duration \"%s\"", r->t.ttl,
                       r->t.ttl);
    if (r->t.ttl_ns != 0 &&
        (r->t.ttl_ns < REG_SESSION_TTL_MIN_NS || r->t.ttl_ns > REG_SESSION_TTL_MAX_NS))
        return err_set(e, "Invalid Session TTL '%lld', must be between [10s=24h0m0s]",
                       (long long)r->t.ttl_ns);
    return 0;
}

/* An array of check ID strings, or of {"ID": ...} objects (ServiceChecks). */
static int parse_checks(const json_t *v, bool objects, char ***out, size_t *n, struct err *e)
{
    free(*out);
    *out = xcalloc(json_array_size(v) + 1, sizeof(char *));
    *n = 0;
    if (json_is_null(v))
        return 0;
    if (!json_is_array(v))
        return err_set(e, "Request decode failed: checks must be an array");
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *el = json_array_get(v, i);
        const char *id = json_string_value(objects ? field(el, "ID") : el);
        if (!id)
            return err_set(e, "Request decode failed: bad check entry");
        (*out)[(*n)++] = (char *)id;
    }
    return 0;
}

static int parse_create(struct reg_api_call *c, const json_t *body, struct create_req *r,
                        struct err *e)
{
    static char *serf[] = {"serfHealth"};
    const json_t *v;

    uuid_v4(r->id);
    r->t.id = r->id;
    r->t.name = "";
    r->t.node = c->api->cfg->node_name;
    r->t.lock_delay_ns = LOCK_DELAY_DEFAULT_NS;
    r->t.ttl = "";
    r->t.node_checks = xcalloc(2, sizeof(char *));
    r->t.node_checks[0] = serf[0];
    r->t.n_node_checks = 1;
    if ((v = field(body, "Name")) && json_is_string(v))
        r->t.name = (char *)json_string_value(v);
    if ((v = field(body, "Node")) && json_is_string(v) && json_string_length(v))
        r->t.node = (char *)json_string_value(v);
    if ((v = field(body, "LockDelay")) && parse_lock_delay(v, &r->t.lock_delay_ns, e) < 0)
        return -EINVAL;
    if ((v = field(body, "Behavior")) && json_is_string(v) && json_string_length(v)) {
        if (strcmp(json_string_value(v), "delete") == 0)
            r->t.behavior = REG_SESSION_DELETE;
        else if (strcmp(json_string_value(v), "release") != 0)
            return err_set(e, "Invalid Behavior setting '%s'", json_string_value(v));
    }
    if (parse_ttl(r, field(body, "TTL"), e) < 0)
        return -EINVAL;
    /* NodeChecks wins over the legacy Checks; either replaces the serfHealth default. */
    if ((v = field(body, "NodeChecks")) || (v = field(body, "Checks")))
        if (parse_checks(v, false, &r->t.node_checks, &r->t.n_node_checks, e) < 0)
            return -EINVAL;
    if ((v = field(body, "ServiceChecks")))
        if (parse_checks(v, true, &r->t.service_checks, &r->t.n_service_checks, e) < 0)
            return -EINVAL;
    return 0;
}

void reg_api_session_create(struct reg_api_call *c)
{
    struct reg_api *a = c->api;
    struct create_req r = {0};
    struct err e = {""};
    uint64_t index;
    /* Consul decodes the body only when there is one. */
    json_t *body = reg_api_body_json(c, true);

    if (!body)
        return;
    int rc = parse_create(c, body, &r, &e);
    if (rc == 0 && !reg_api_acl_require(c, REG_ACL_RES_SESSION, r.t.node, REG_ACL_ACCESS_WRITE)) {
        create_req_free(&r);
        json_decref(body);
        return;
    }
    if (rc == 0)
        rc = reg_session_create(a->state, &r.t, &index, &e) < 0 ? -EINVAL : 1;
    if (rc < 0) {
        reg_api_error(c, strncmp(e.msg, "Request decode", 14) == 0 ? 400 : 500, "%s", e.msg);
    } else {
        reg_sessions_track(a->sessions, reg_session_get(a->state, r.id));
        reg_api_ok_json(c, json_pack("{s:s}", "ID", r.id));
    }
    create_req_free(&r);
    json_decref(body);
}

void reg_api_session_destroy(struct reg_api_call *c)
{
    if (!c->arg[0]) {
        reg_api_error(c, 400, "Missing session");
        return;
    }
    const struct reg_session *s = reg_session_get(c->api->state, c->arg);
    if (s && !reg_api_acl_require(c, REG_ACL_RES_SESSION, s->node, REG_ACL_ACCESS_WRITE))
        return;
    reg_session_destroy(c->api->state, c->arg);
    reg_api_ok_json(c, json_true());
}

void reg_api_session_renew(struct reg_api_call *c)
{
    struct reg_session *s;

    if (!c->arg[0]) {
        reg_api_error(c, 400, "Missing session");
        return;
    }
    s = reg_session_get(c->api->state, c->arg);
    if (!s) {
        reg_api_error(c, 404, "Session id '%s' not found", c->arg);
        return;
    }
    if (!reg_api_acl_require(c, REG_ACL_RES_SESSION, s->node, REG_ACL_ACCESS_WRITE))
        return;
    reg_sessions_track(c->api->sessions, s);
    reg_api_ok_json(c, json_pack("[o]", reg_session_json(s)));
}

/* Drops the sessions of nodes the token may not read (session:read), as Consul filters. */
static void session_result(struct reg_api_call *c, struct reg_api_result *res, json_t *list)
{
    for (size_t i = json_array_size(list); i > 0; i--) {
        const char *node = json_string_value(json_object_get(json_array_get(list, i - 1), "Node"));
        if (!reg_api_acl_allow(c, REG_ACL_RES_SESSION, node ? node : "", REG_ACL_ACCESS_READ)) {
            json_array_remove(list, i - 1);
            reg_api_acl_filtered(c, res);
        }
    }
    res->index = c->api->state->table_index[REG_TABLE_SESSIONS];
    res->index_headers = true;
    reg_api_result_json(c, res, list);
}

void reg_api_session_info(struct reg_api_call *c, struct reg_api_result *res)
{
    const struct reg_session *s;
    json_t *list = json_array();

    if (!c->arg[0]) {
        json_decref(list);
        reg_api_result_error(res, 400, "Missing session");
        return;
    }
    s = reg_session_get(c->api->state, c->arg);
    if (s)
        json_array_append_new(list, reg_session_json(s));
    session_result(c, res, list);
}

void reg_api_session_node(struct reg_api_call *c, struct reg_api_result *res)
{
    if (!c->arg[0]) {
        reg_api_result_error(res, 400, "Missing node name");
        return;
    }
    session_result(c, res, reg_session_list_json(c->api->state, c->arg));
}

void reg_api_session_list(struct reg_api_call *c, struct reg_api_result *res)
{
    session_result(c, res, reg_session_list_json(c->api->state, NULL));
}
