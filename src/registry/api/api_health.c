/* The /v1/health endpoints: services with their checks (docs/api.md). */
#include <stdlib.h>
#include <string.h>

#include "registry/agent/agent_config.h"
#include "registry/api/api_acl.h"
#include "registry/api/api_routes.h"
#include "registry/api/catalog_query.h"
#include "registry/api/render.h"

/* A check as the call's token may see it (reg_render_check_fn). */
static json_t *check_for_call(const struct reg_check *c, const void *call)
{
    return reg_api_acl_render_check(call, c);
}

struct health_service_ctx {
    json_t *list;
    bool passing_only;
    struct reg_api_call *c;
    struct reg_api_result *res;
};

static void add_health_entry(const struct reg_service *s, void *data)
{
    struct health_service_ctx *ctx = data;
    bool all_passing;

    if (!reg_api_acl_service_visible(ctx->c, ctx->res, s, true))
        return;
    json_t *checks = reg_render_health_checks(s, check_for_call, ctx->c, &all_passing);

    /* ?passing drops an instance when any of its checks, node-level included, is not
     * exactly passing: warning instances go too. */
    if (ctx->passing_only && !all_passing) {
        json_decref(checks);
        return;
    }
    json_array_append_new(ctx->list, reg_render_health_entry(s, checks));
}

void reg_api_health_service(struct reg_api_call *c, struct reg_api_result *res)
{
    struct health_service_ctx ctx = {NULL, false, c, res};
    struct reg_catalog_filter f;

    if (reg_api_query_bool(c, "passing", &ctx.passing_only) < 0) {
        reg_api_result_error(res, 400, "Invalid value for ?passing");
        return;
    }
    if (reg_catalog_filter_parse(c, &f, res) < 0)
        return;
    ctx.list = json_array();
    reg_catalog_foreach_service(c->api->state, &f, c->arg, add_health_entry, &ctx);
    reg_catalog_filter_free(&f);
    reg_catalog_result_index(res, reg_service_index(c->api->state, c->arg));
    c->api->ops->sort_near(c->api->agent, reg_api_query(c, "near"), ctx.list,
                           reg_render_health_entry_node);
    reg_api_result_json(c, res, ctx.list);
}

void reg_api_health_checks(struct reg_api_call *c, struct reg_api_result *res)
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
        smap_foreach(&n->checks, ce)
        {
            const struct reg_check *chk = ce->val;
            const struct reg_service *s =
                chk->service_id[0] ? reg_service_get(n, chk->service_id) : NULL;
            if (s && strcasecmp(s->name, c->arg) == 0 &&
                reg_api_acl_check_visible(c, res, chk, true))
                json_array_append_new(list, reg_api_acl_render_check(c, chk));
        }
    }
    reg_catalog_filter_free(&f);
    reg_catalog_result_index(res, reg_service_index(c->api->state, c->arg));
    reg_api_result_json(c, res, list);
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

void reg_api_health_state(struct reg_api_call *c, struct reg_api_result *res)
{
    enum reg_health want;
    bool any = strcmp(c->arg, "any") == 0;

    if (!any && !reg_health_parse(c->arg, &want)) {
        reg_api_result_error(res, 400, "Invalid check state: %s", c->arg);
        return;
    }
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
            if ((any || ordered[i]->status == want) &&
                reg_api_acl_check_visible(c, res, ordered[i], true))
                json_array_append_new(list, reg_api_acl_render_check(c, ordered[i]));
        free(ordered);
    }
    reg_catalog_filter_free(&f);
    reg_catalog_result_index(res, c->api->state->checks_index);
    reg_api_result_json(c, res, list);
}
