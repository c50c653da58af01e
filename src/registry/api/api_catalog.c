/* The /v1/catalog endpoints: the cluster-wide view (docs/api.md). */
#include <errno.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/json.h"
#include "registry/api/api_acl.h"
#include "registry/api/api_routes.h"
#include "registry/api/catalog_query.h"
#include "registry/api/render.h"
#include "registry/settings/settings.h"

void reg_api_catalog_datacenters(struct reg_api_call *c, struct reg_api_result *res)
{
    reg_api_result_json(c, res, json_pack("[s]", c->api->cfg->datacenter));
}

static json_t *render_node(struct reg_api_call *c, struct reg_api_result *res,
                           const struct reg_node *n)
{
    (void)c;
    (void)res;
    return reg_render_node(n);
}

void reg_api_catalog_nodes(struct reg_api_call *c, struct reg_api_result *res)
{
    json_t *list = reg_catalog_visible_nodes(c, res, render_node);

    if (!list)
        return;
    reg_catalog_result_index(res, c->api->state->nodes_index);
    c->api->ops->sort_near(c->api->agent, reg_api_query(c, "near"), list, reg_render_entry_node);
    reg_api_result_json(c, res, list);
}

/* Collects the distinct tags of each service name. */
static void add_service_tags(const struct reg_service *s, void *ctx)
{
    json_t *out = ctx;
    json_t *tags = json_object_get(out, s->name);

    if (!tags) {
        tags = json_array();
        json_object_set_new(out, s->name, tags);
    }
    for (size_t i = 0; i < s->ntags; i++) {
        bool seen = false;
        for (size_t k = 0; k < json_array_size(tags) && !seen; k++)
            seen = strcmp(json_string_value(json_array_get(tags, k)), s->tags[i]) == 0;
        if (!seen)
            json_array_append_new(tags, json_string(s->tags[i]));
    }
}

void reg_api_catalog_services(struct reg_api_call *c, struct reg_api_result *res)
{
    struct reg_catalog_filter f;

    if (reg_catalog_filter_parse(c, &f, res) < 0)
        return;
    json_t *out = json_object();
    reg_catalog_foreach_visible(c, res, &f, NULL, false, false, add_service_tags, out);
    reg_catalog_filter_free(&f);
    reg_catalog_result_index(res, c->api->state->services_index);
    reg_api_result_json(c, res, out);
}

static void add_service_node(const struct reg_service *s, void *ctx)
{
    json_array_append_new(ctx, reg_render_service_node(s));
}

/* The instances of the service c->arg, or (connect) its Connect endpoints, as service nodes. */
static void service_nodes(struct reg_api_call *c, struct reg_api_result *res, bool connect)
{
    struct reg_catalog_filter f;

    if (reg_catalog_filter_parse(c, &f, res) < 0)
        return;
    json_t *list = json_array();
    uint64_t index =
        reg_catalog_foreach_visible(c, res, &f, c->arg, connect, true, add_service_node, list);
    reg_catalog_filter_free(&f);
    reg_catalog_result_index(res, index);
    c->api->ops->sort_near(c->api->agent, reg_api_query(c, "near"), list, reg_render_entry_node);
    reg_api_result_json(c, res, list);
}

void reg_api_catalog_service(struct reg_api_call *c, struct reg_api_result *res)
{
    service_nodes(c, res, false);
}

void reg_api_catalog_connect(struct reg_api_call *c, struct reg_api_result *res)
{
    service_nodes(c, res, true);
}

static void node_view(struct reg_api_call *c, struct reg_api_result *res, bool as_list)
{
    const struct reg_node *n = reg_node_get(c->api->state, c->arg);

    reg_catalog_result_index(res, reg_node_index(c->api->state, c->arg));
    if (n && !reg_api_acl_allow(c, REG_ACL_RES_NODE, n->name, REG_ACL_ACCESS_READ)) {
        reg_api_acl_filtered(c, res);
        n = NULL;
    }
    if (!n) {
        reg_api_result_json(c, res, json_null());
        return;
    }
    json_t *services = as_list ? json_array() : json_object();
    smap_foreach(&n->services, e)
    {
        if (!reg_api_acl_service_visible(c, res, e->val, false))
            continue;
        if (as_list)
            json_array_append_new(services, reg_render_node_service(e->val));
        else
            json_object_set_new(services, e->key, reg_render_node_service(e->val));
    }
    reg_api_result_json(c, res,
                        json_pack("{s:o, s:o}", "Node", reg_render_node(n), "Services", services));
}

void reg_api_catalog_node(struct reg_api_call *c, struct reg_api_result *res)
{
    node_view(c, res, false);
}

void reg_api_catalog_node_services(struct reg_api_call *c, struct reg_api_result *res)
{
    node_view(c, res, true);
}

/* ---- writes ------------------------------------------------------------------------------ */

void reg_api_catalog_register(struct reg_api_call *c)
{
    struct reg_api *a = c->api;
    struct reg_catalog_registration r;
    struct err e;

    json_t *body = reg_api_body_json(c, false);
    if (!body)
        return;
    int rc = reg_catalog_registration_decode(body, &r, &e);
    json_decref(body);
    if (rc < 0) {
        reg_catalog_registration_free(&r);
        reg_api_error(c, 400, "%s", e.msg);
        return;
    }
    if (!reg_api_dc_known(c, r.node.datacenter)) {
        reg_catalog_registration_free(&r);
        reg_api_error(c, 500, "No path to datacenter");
        return;
    }
    if (!r.node.datacenter || !r.node.datacenter[0])
        r.node.datacenter = a->cfg->datacenter; /* Consul fills in its own */
    if (!reg_api_acl_require(c, REG_ACL_RES_NODE, r.node.name ? r.node.name : "",
                             REG_ACL_ACCESS_WRITE) ||
        (r.has_service &&
         !reg_api_acl_require(c, REG_ACL_RES_SERVICE, r.service.svc.name, REG_ACL_ACCESS_WRITE))) {
        reg_catalog_registration_free(&r);
        return;
    }
    rc = reg_catalog_registration_apply(a->state, &r, &e);
    reg_catalog_registration_free(&r);
    if (rc < 0) {
        reg_api_error(c, 400, "%s", e.msg);
        return;
    }
    reg_api_ok_json(c, json_true());
}

void reg_api_catalog_deregister(struct reg_api_call *c)
{
    struct reg_api *a = c->api;
    const char *node = NULL, *service_id = NULL, *check_id = NULL, *dc = NULL;
    struct err e;

    json_t *body = reg_api_body_json(c, false);
    if (!body)
        return;
    if (json_read_string(body, "Node", "DeregisterRequest.Node", &node, &e) < 0 ||
        json_read_string(body, "ServiceID", "DeregisterRequest.ServiceID", &service_id, &e) < 0 ||
        json_read_string(body, "CheckID", "DeregisterRequest.CheckID", &check_id, &e) < 0 ||
        json_read_string(body, "Datacenter", "DeregisterRequest.Datacenter", &dc, &e) < 0) {
        reg_api_error(c, 400, "Request decode failed: %s", e.msg);
    } else if (!reg_api_dc_known(c, dc)) {
        reg_api_error(c, 500, "No path to datacenter");
    } else if (!node || !node[0]) {
        reg_api_error(c, 400, "Must provide node");
    } else if (reg_api_acl_require(c, REG_ACL_RES_NODE, node, REG_ACL_ACCESS_WRITE)) {
        struct reg_node *n = reg_node_get(a->state, node);
        /* What goes from the agent's own node also stops running (its check runners). */
        bool own = n && n == a->ops->local_node(a->agent);
        if (n && service_id && service_id[0]) {
            if (own)
                a->ops->stop_checks(a->agent, service_id, NULL);
            reg_service_delete(a->state, n, service_id);
        } else if (n && check_id && check_id[0]) {
            if (own)
                a->ops->stop_checks(a->agent, NULL, check_id);
            reg_check_delete(a->state, n, check_id);
        } else if (n && !own) {
            reg_node_delete(a->state, node);
        }
        reg_api_ok_json(c, json_true());
    }
    json_decref(body);
}
