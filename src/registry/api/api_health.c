/* The /v1/health endpoints: services with their checks (docs/api.md). */
#include <stdlib.h>
#include <string.h>

#include "registry/api/api_acl.h"
#include "registry/api/api_routes.h"
#include "registry/api/catalog_query.h"
#include "registry/api/render.h"
#include "registry/settings/settings.h"

/* A check as the call's token may see it (reg_render_check_fn). */
static json_t *check_for_call(const struct reg_check *c, const void *call)
{
    return reg_api_acl_render_check(call, c);
}

struct health_service_ctx {
    json_t *list;
    bool passing_only;
    struct reg_api_call *c; /* whose token renders the checks */
};

static void add_health_entry(const struct reg_service *s, void *data)
{
    struct health_service_ctx *ctx = data;
    bool all_passing;
    json_t *checks = reg_render_health_checks(s, check_for_call, ctx->c, &all_passing);

    /* ?passing drops an instance when any of its checks, node-level included, is not
     * exactly passing: warning instances go too. */
    if (ctx->passing_only && !all_passing) {
        json_decref(checks);
        return;
    }
    json_array_append_new(ctx->list, reg_render_health_entry(s, checks));
}

/* The instances of the service c->arg, or (connect) its Connect endpoints, with their checks. */
static void health_entries(struct reg_api_call *c, struct reg_api_result *res, bool connect)
{
    struct health_service_ctx ctx = {NULL, false, c};
    struct reg_catalog_filter f;

    if (reg_api_query_bool(c, "passing", &ctx.passing_only) < 0) {
        reg_api_result_error(res, 400, "Invalid value for ?passing");
        return;
    }
    if (reg_catalog_filter_parse(c, &f, res) < 0)
        return;
    ctx.list = json_array();
    uint64_t index =
        reg_catalog_foreach_visible(c, res, &f, c->arg, connect, true, add_health_entry, &ctx);
    reg_catalog_filter_free(&f);
    reg_catalog_result_index(res, index);
    c->api->ops->sort_near(c->api->agent, reg_api_query(c, "near"), ctx.list,
                           reg_render_health_entry_node);
    reg_api_result_json(c, res, ctx.list);
}

void reg_api_health_service(struct reg_api_call *c, struct reg_api_result *res)
{
    health_entries(c, res, false);
}

void reg_api_health_connect(struct reg_api_call *c, struct reg_api_result *res)
{
    health_entries(c, res, true);
}

/* Whether a check of node n belongs in a list (data: the list's criterion). */
typedef bool (*check_wanted_fn)(const struct reg_node *n, const struct reg_check *chk,
                                const void *data);

/*
 * The checks of the nodes the call's ?node-meta selects that wanted keeps and the call's token
 * may see, node by node, each node's in Consul's order (or by estimated RTT from ?near=, as
 * Consul sorts /v1/health/checks and /v1/health/state). Sets res to the list (or to the 400 of
 * a bad filter) with index.
 */
static void list_checks(struct reg_api_call *c, struct reg_api_result *res, uint64_t index,
                        check_wanted_fn wanted, const void *data)
{
    struct reg_catalog_filter f;

    if (reg_catalog_filter_parse(c, &f, res) < 0)
        return;
    json_t *list = json_array();
    smap_foreach(&c->api->state->nodes, ne)
    {
        const struct reg_node *n = ne->val;
        if (!reg_catalog_node_matches(&f, n))
            continue;
        const struct reg_check **ordered = reg_node_checks_ordered(n);
        for (size_t i = 0; i < n->checks.n; i++)
            if (wanted(n, ordered[i], data) && reg_api_acl_check_visible(c, res, ordered[i], true))
                json_array_append_new(list, reg_api_acl_render_check(c, ordered[i]));
        free(ordered);
    }
    reg_catalog_filter_free(&f);
    reg_catalog_result_index(res, index);
    c->api->ops->sort_near(c->api->agent, reg_api_query(c, "near"), list, reg_render_entry_node);
    reg_api_result_json(c, res, list);
}

/* data: the service name. */
static bool check_of_service(const struct reg_node *n, const struct reg_check *chk,
                             const void *data)
{
    const struct reg_service *s = chk->service_id[0] ? reg_service_get(n, chk->service_id) : NULL;
    return s && strcasecmp(s->name, data) == 0;
}

void reg_api_health_checks(struct reg_api_call *c, struct reg_api_result *res)
{
    list_checks(c, res, reg_service_index(c->api->state, c->arg), check_of_service, c->arg);
}

void reg_api_health_node(struct reg_api_call *c, struct reg_api_result *res)
{
    const struct reg_node *n = reg_node_get(c->api->state, c->arg);
    json_t *list = json_array();

    if (n) {
        const struct reg_check **ordered = reg_node_checks_ordered(n);
        for (size_t i = 0; i < n->checks.n; i++)
            if (reg_api_acl_check_visible(c, res, ordered[i], true))
                json_array_append_new(list, reg_api_acl_render_check(c, ordered[i]));
        free(ordered);
    }
    reg_catalog_result_index(res, reg_node_index(c->api->state, c->arg));
    reg_api_result_json(c, res, list);
}

/* Instances reachable through ingress gateways: there are no gateways here, so none, with the
 * service's index so a watcher waits as it would on Consul. */
void reg_api_health_ingress(struct reg_api_call *c, struct reg_api_result *res)
{
    reg_catalog_result_index(res, reg_service_index(c->api->state, c->arg));
    reg_api_result_json(c, res, json_array());
}

/* data: the wanted status, or NULL for any. */
static bool check_in_state(const struct reg_node *n, const struct reg_check *chk, const void *data)
{
    const enum reg_health *want = data;

    (void)n;
    return !want || chk->status == *want;
}

void reg_api_health_state(struct reg_api_call *c, struct reg_api_result *res)
{
    enum reg_health want;
    bool any = strcmp(c->arg, "any") == 0;

    if (!any && !reg_health_parse(c->arg, &want)) {
        reg_api_result_error(res, 400, "Invalid check state: %s", c->arg);
        return;
    }
    list_checks(c, res, c->api->state->checks_index, check_in_state, any ? NULL : &want);
}
