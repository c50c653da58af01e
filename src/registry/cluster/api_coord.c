/* The /v1/coordinate endpoints (coord.h). */
#include <string.h>
#include <strings.h>

#include "lib/alloc.h"
#include "lib/json.h"
#include "registry/cluster/cluster_ctx.h"
#include "registry/settings/settings.h"
#include "registry/state/state.h"
#include "registry/api/api_acl.h"
#include "registry/api/api_routes.h"
#include "registry/cluster/coord.h"

static json_t *node_coord_json(const char *node, const struct vivaldi_coord *c)
{
    return json_pack("{s:s, s:s, s:o}", "Node", node, "Segment", "", "Coord", reg_coord_json(c));
}

/* Every catalog node with a coordinate the token may read, by name: a server's own, and
 * those agents reported. */
static json_t *all_nodes(struct reg_api_call *c, struct reg_api_result *res)
{
    const struct reg_cluster_ctx *cx = c->api->cluster;
    json_t *list = json_array();

    smap_foreach(&cx->state->nodes, e)
    {
        const struct reg_node *n = e->val;
        const struct vivaldi_coord *co = reg_coords_get(cx, n->name);
        if (!co)
            continue;
        if (reg_api_acl_allow(c, REG_ACL_RES_NODE, n->name, REG_ACL_ACCESS_READ))
            json_array_append_new(list, node_coord_json(n->name, co));
        else
            reg_api_acl_filtered(c, res);
    }
    return list;
}

static void coord_index(struct reg_api_call *c, struct reg_api_result *res)
{
    res->index = c->api->cluster->state->table_index[REG_TABLE_COORDS];
    res->index_headers = true;
}

void reg_api_coordinate_datacenters(struct reg_api_call *c, struct reg_api_result *res)
{
    struct reg_cluster_ctx *cx = c->api->cluster;
    char *name = xasprintf("%s.%s", cx->cfg->node_name, cx->cfg->datacenter);
    json_t *servers = json_array();

    /* The WAN pool is this datacenter's servers: this one, when it is a server. */
    if (cx->cfg->server &&
        reg_api_acl_allow(c, REG_ACL_RES_NODE, cx->cfg->node_name, REG_ACL_ACCESS_READ))
        json_array_append_new(servers, node_coord_json(name, &cx->vivaldi->coord));
    else if (cx->cfg->server)
        reg_api_acl_filtered(c, res);
    free(name);
    reg_api_result_json(c, res,
                        json_pack("[{s:s, s:s, s:o}]", "Datacenter", cx->cfg->datacenter, "AreaID",
                                  "wan", "Coordinates", servers));
}

void reg_api_coordinate_nodes(struct reg_api_call *c, struct reg_api_result *res)
{
    coord_index(c, res);
    reg_api_result_json(c, res, all_nodes(c, res));
}

void reg_api_coordinate_node(struct reg_api_call *c, struct reg_api_result *res)
{
    const struct reg_cluster_ctx *cx = c->api->cluster;
    const struct reg_node *n = reg_node_get(cx->state, c->arg);
    const struct vivaldi_coord *co = n ? reg_coords_get(cx, n->name) : NULL;

    if (!co) { /* Consul's 404 here has an empty body, and the index headers */
        res->status = 404;
        res->content_type = "text/plain; charset=utf-8";
        coord_index(c, res);
        return;
    }
    coord_index(c, res);
    reg_api_result_json(c, res, json_pack("[o]", node_coord_json(n->name, co)));
}

void reg_api_coordinate_update(struct reg_api_call *c)
{
    struct reg_cluster_ctx *cx = c->api->cluster;
    const char *node = NULL;
    struct vivaldi_coord co;
    struct err e;
    json_t *body = reg_api_body_json(c, false);

    if (!body)
        return;
    if (json_read_string(body, "Node", "CoordinateUpdateRequest.Node", &node, &e) < 0) {
        reg_api_error(c, 400, "Request decode failed: %s", e.msg);
    } else if (!node || !node[0]) {
        reg_api_error(c, 400, "Must provide node");
    } else if (reg_coord_from_json(json_iget(body, "Coord"), &co, &e) < 0) {
        reg_api_error(c, 400, "Request decode failed: %s", e.msg);
    } else if (!reg_node_get(cx->state, node)) {
        reg_api_error(c, 500, "rpc error making call: node \"%s\" not found", node);
    } else if (reg_api_acl_require(c, REG_ACL_RES_NODE, node, REG_ACL_ACCESS_WRITE)) {
        reg_coords_set(cx, node, &co);
        reg_api_ok_empty(c);
    }
    json_decref(body);
}
