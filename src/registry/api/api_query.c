/*
 * Prepared queries (/v1/query): stored definitions of a health query on one service, executed
 * by ID or name through the API or DNS (NAME.query.consul). One datacenter and no network
 * coordinates here, so Failover never finds another datacenter and Near leaves the order
 * shuffled; both are stored and returned as given.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/alloc.h"
#include "lib/json.h"
#include "lib/uuid.h"
#include "registry/api/api_routes.h"
#include "registry/api/catalog_query.h"
#include "registry/api/render.h"
#include "registry/settings/settings.h"

#define WHERE "PreparedQuery"

/* The definition Consul returns, every field present, before the body's values. */
static json_t *query_template(void)
{
    return json_pack("{s:s, s:s, s:s, s:{s:s, s:s, s:b}, s:{s:s, s:{s:i, s:[]}, s:n, s:b, s:s, "
                     "s:n, s:n, s:n, s:b}, s:{s:s}}",
                     "Name", "", "Session", "", "Token", "", "Template", "Type", "", "Regexp", "",
                     "RemoveEmptyTags", 0, "Service", "Service", "", "Failover", "NearestN", 0,
                     "Datacenters", "IgnoreCheckIDs", "OnlyPassing", 0, "Near", "", "Tags",
                     "NodeMeta", "ServiceMeta", "Connect", 0, "DNS", "TTL", "");
}

/* Copies body[key] over def[key] when present, checking its JSON type against def's. */
static int take(json_t *def, const json_t *body, const char *key, const char *where, struct err *e)
{
    json_t *v = json_iget(body, key), *cur = json_object_get(def, key);

    if (!v || json_is_null(v))
        return 0;
    bool ok = json_is_string(cur)    ? json_is_string(v)
              : json_is_boolean(cur) ? json_is_boolean(v)
              : json_is_integer(cur) ? json_is_integer(v)
                                     : json_is_array(v) || json_is_object(v);
    if (json_is_null(cur)) /* IgnoreCheckIDs, Tags: lists; NodeMeta, ServiceMeta: maps */
        ok = strcmp(key, "NodeMeta") == 0 || strcmp(key, "ServiceMeta") == 0 ? json_is_object(v)
                                                                             : json_is_array(v);
    if (!ok)
        return err_set(e, "json: cannot unmarshal %s into Go struct field %s.%s", json_type_name(v),
                       where, key);
    json_object_set(def, key, v);
    return 0;
}

static int take_all(json_t *def, const json_t *body, const char *where, struct err *e)
{
    const char *key;
    json_t *cur;

    json_object_foreach(def, key, cur)
    {
        json_t *sub = json_iget(body, key);
        if (json_is_object(cur) && json_is_object(sub)) {
            char inner[96];
            snprintf(inner, sizeof(inner), "%s.%s", where, key);
            if (take_all(cur, sub, inner, e) < 0)
                return -EINVAL;
        } else if (take(def, body, key, where, e) < 0) {
            return -EINVAL;
        }
    }
    return 0;
}

/*
 * Decodes and validates a definition (self: the query being updated, NULL on create). Returns
 * the complete definition, or NULL after answering the error.
 */
static json_t *decode(struct reg_api_call *c, const char *self)
{
    const struct reg_state *st = c->api->state;
    struct err e;
    json_t *body = reg_api_body_json(c, false);

    if (!body)
        return NULL;
    json_t *def = query_template();
    int rc = take_all(def, body, WHERE, &e);
    json_decref(body);
    if (rc < 0) {
        reg_api_error(c, 400, "Request decode failed: %s", e.msg);
        goto err_after_def;
    }
    const json_t *svc = json_object_get(def, "Service");
    const char *name = json_string_value(json_object_get(def, "Name"));
    const char *session = json_string_value(json_object_get(def, "Session"));
    const char *tmpl = json_string_value(json_object_get(json_object_get(def, "Template"), "Type"));
    const struct reg_query *same = reg_query_by_name(st, name);
    if (!json_string_value(json_object_get(svc, "Service"))[0]) {
        reg_api_error(c, 500, "Must provide a Service name to query");
    } else if (tmpl[0]) {
        reg_api_error(c, 500, "Bad Template: prepared query templates are not supported");
    } else if (uuid_is_text(name)) { /* names and IDs share a lookup */
        reg_api_error(c, 500, "Query name cannot be a UUID");
    } else if (same && (!self || strcmp(same->id, self) != 0)) {
        reg_api_error(c, 500, "Name '%s' aliases an existing query name", name);
    } else if (session[0] && !reg_session_get(st, session)) {
        reg_api_error(c, 500, "invalid session \"%s\"", session);
    } else {
        return def;
    }
err_after_def:
    json_decref(def);
    return NULL;
}

static json_t *query_json(const struct reg_query *q)
{
    json_t *o = json_pack("{s:s}", "ID", q->id);

    json_object_update(o, q->def);
    json_object_set_new(o, "CreateIndex", json_integer((json_int_t)q->create_index));
    json_object_set_new(o, "ModifyIndex", json_integer((json_int_t)q->modify_index));
    return o;
}

/* ---- create, read, update, delete -------------------------------------------------------- */

void reg_api_query_create(struct reg_api_call *c)
{
    char id[37];
    json_t *def = decode(c, NULL);

    if (!def)
        return;
    uuid_v4(id);
    reg_query_put(c->api->state, id, json_string_value(json_object_get(def, "Name")), def);
    json_decref(def);
    reg_api_ok_json(c, json_pack("{s:s}", "ID", id));
}

void reg_api_query_list(struct reg_api_call *c, struct reg_api_result *res)
{
    json_t *list = json_array();

    smap_foreach(&c->api->state->queries, e) json_array_append_new(list, query_json(e->val));
    res->index = c->api->state->table_index[REG_TABLE_QUERIES];
    res->index_headers = true;
    reg_api_result_json(c, res, list);
}

void reg_api_query_update(struct reg_api_call *c)
{
    struct reg_state *st = c->api->state;

    if (!reg_query_get(st, c->arg)) {
        reg_api_error(c, 404, "Query not found");
        return;
    }
    json_t *def = decode(c, c->arg);
    if (!def)
        return;
    reg_query_put(st, c->arg, json_string_value(json_object_get(def, "Name")), def);
    json_decref(def);
    reg_api_ok_empty(c);
}

void reg_api_query_delete(struct reg_api_call *c)
{
    if (!reg_query_delete(c->api->state, c->arg)) {
        reg_api_error(c, 404, "Query not found");
        return;
    }
    reg_api_ok_empty(c);
}

/* ---- execute ----------------------------------------------------------------------------- */

struct exec_ctx {
    const struct reg_query *q;
    json_t *nodes;
};

static void add_instance(const struct reg_service *s, void *data)
{
    struct exec_ctx *x = data;

    bool all_passing;

    if (reg_query_selects(x->q, s))
        json_array_append_new(
            x->nodes,
            reg_render_health_entry(s, reg_render_health_checks(s, NULL, NULL, &all_passing)));
}

/* The instances a query selects, shuffled (no coordinates to sort by Near). New reference. */
static json_t *run_query(const struct reg_api *a, const struct reg_query *q, const char *near)
{
    struct reg_catalog_filter f = {.ntags = 0};
    struct exec_ctx x = {q, json_array()};
    const json_t *svc = json_object_get(q->def, "Service");

    reg_catalog_foreach_service(a->state, &f, json_string_value(json_object_get(svc, "Service")),
                                add_instance, &x);
    for (size_t i = json_array_size(x.nodes); i > 1; i--) { /* Fisher-Yates */
        size_t j = (size_t)rand() % i;
        json_t *t = json_incref(json_array_get(x.nodes, i - 1));
        json_array_set(x.nodes, i - 1, json_array_get(x.nodes, j));
        json_array_set_new(x.nodes, j, t);
    }
    /* Near ("_agent" or a node) sorts by estimated RTT; a ?near= on the request wins. */
    a->ops->sort_near(a->agent,
                      near && near[0] ? near : json_string_value(json_object_get(svc, "Near")),
                      x.nodes, reg_render_health_entry_node);
    return x.nodes;
}

/* GET /v1/query/ID, /v1/query/ID-or-NAME/execute and .../explain. */
void reg_api_query_get(struct reg_api_call *c, struct reg_api_result *res)
{
    const struct reg_state *st = c->api->state;
    char *arg = xstrdup(c->arg);
    char *verb = strrchr(arg, '/');
    const struct reg_query *q;

    if (verb)
        *verb++ = '\0';
    q = verb ? reg_query_find(st, arg) : reg_query_get(st, arg);
    res->index = st->table_index[REG_TABLE_QUERIES];
    res->index_headers = true;
    if (!q || (verb && strcmp(verb, "execute") != 0 && strcmp(verb, "explain") != 0)) {
        reg_api_result_error(res, 404, "Query not found");
    } else if (!verb) {
        reg_api_result_json(c, res, json_pack("[o]", query_json(q)));
    } else if (strcmp(verb, "explain") == 0) {
        reg_api_result_json(c, res, json_pack("{s:o}", "Query", query_json(q)));
    } else {
        json_t *nodes = run_query(c->api, q, reg_api_query(c, "near"));
        const char *limit = reg_api_query(c, "limit");
        long n = limit ? strtol(limit, NULL, 10) : 0;
        while (n > 0 && json_array_size(nodes) > (size_t)n)
            json_array_remove(nodes, json_array_size(nodes) - 1);
        reg_api_result_json(
            c, res,
            json_pack("{s:O, s:o, s:O, s:s, s:i}", "Service",
                      json_object_get(json_object_get(q->def, "Service"), "Service"), "Nodes",
                      nodes, "DNS", json_object_get(q->def, "DNS"), "Datacenter",
                      c->api->cfg->datacenter, "Failovers", 0));
    }
    free(arg);
}
