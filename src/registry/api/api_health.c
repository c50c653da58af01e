/* The /v1/health endpoints: services with their checks (docs/api.md). */
#include <stdlib.h>
#include <string.h>

#include "registry/agent/agent_internal.h"
#include "registry/api/api_acl.h"
#include "registry/api/api_routes.h"
#include "registry/api/catalog_query.h"
#include "registry/cluster/coord.h"
#include "registry/api/render.h"

/* A check as the call's token may see it (render_check_fn). */
static json_t *check_for_call(const struct reg_check *c, const void *call)
{
    return api_acl_render_check(call, c);
}

struct health_service_ctx {
    json_t *list;
    bool passing_only;
    struct api_call *c;
    struct api_result *res;
};

static void add_health_entry(const struct reg_service *s, void *data)
{
    struct health_service_ctx *ctx = data;
    bool all_passing;

    if (!api_acl_service_visible(ctx->c, ctx->res, s, true))
        return;
    json_t *checks = render_health_checks(s, check_for_call, ctx->c, &all_passing);

    /* ?passing drops an instance when any of its checks, node-level included, is not
     * exactly passing: warning instances go too. */
    if (ctx->passing_only && !all_passing) {
        json_decref(checks);
        return;
    }
    json_array_append_new(ctx->list, render_health_entry(s, checks));
}

void api_health_service(struct api_call *c, struct api_result *res)
{
    struct health_service_ctx ctx = {NULL, false, c, res};
    struct catalog_filter f;

    if (api_query_bool(c, "passing", &ctx.passing_only) < 0) {
        api_result_error(res, 400, "Invalid value for ?passing");
        return;
    }
    if (catalog_filter_parse(c, &f, res) < 0)
        return;
    ctx.list = json_array();
    catalog_foreach_service(&c->agent->state, &f, c->arg, add_health_entry, &ctx);
    catalog_filter_free(&f);
    catalog_result_index(res, reg_service_index(&c->agent->state, c->arg));
    coords_sort_near(c->agent, api_query(c, "near"), ctx.list, render_health_entry_node);
    api_result_json(c, res, ctx.list);
}

void api_health_checks(struct api_call *c, struct api_result *res)
{
    struct catalog_filter f;

    if (catalog_filter_parse(c, &f, res) < 0)
        return;
    json_t *list = json_array();
    smap_foreach(&c->agent->state.nodes, ne)
    {
        const struct reg_node *n = ne->val;
        if (!catalog_node_matches(&f, n))
            continue;
        smap_foreach(&n->checks, ce)
        {
            const struct reg_check *chk = ce->val;
            const struct reg_service *s =
                chk->service_id[0] ? reg_service_get(n, chk->service_id) : NULL;
            if (s && strcasecmp(s->name, c->arg) == 0 && api_acl_check_visible(c, res, chk, true))
                json_array_append_new(list, api_acl_render_check(c, chk));
        }
    }
    catalog_filter_free(&f);
    catalog_result_index(res, reg_service_index(&c->agent->state, c->arg));
    api_result_json(c, res, list);
}

void api_health_node(struct api_call *c, struct api_result *res)
{
    const struct reg_node *n = reg_node_get(&c->agent->state, c->arg);
    json_t *list = json_array();

    if (n) {
        const struct reg_check **ordered = reg_node_checks_ordered(n);
        for (size_t i = 0; i < n->checks.n; i++)
            if (api_acl_check_visible(c, res, ordered[i], true))
                json_array_append_new(list, api_acl_render_check(c, ordered[i]));
        free(ordered);
    }
    catalog_result_index(res, reg_node_index(&c->agent->state, c->arg));
    api_result_json(c, res, list);
}

/* Instances reachable through ingress gateways: there are no gateways here, so none, with the
 * service's index so a watcher waits as it would on Consul. */
void api_health_ingress(struct api_call *c, struct api_result *res)
{
    catalog_result_index(res, reg_service_index(&c->agent->state, c->arg));
    api_result_json(c, res, json_array());
}

void api_health_state(struct api_call *c, struct api_result *res)
{
    enum reg_health want;
    bool any = strcmp(c->arg, "any") == 0;

    if (!any && !reg_health_parse(c->arg, &want)) {
        api_result_error(res, 400, "Invalid check state: %s", c->arg);
        return;
    }
    struct catalog_filter f;
    if (catalog_filter_parse(c, &f, res) < 0)
        return;
    json_t *list = json_array();
    smap_foreach(&c->agent->state.nodes, ne)
    {
        const struct reg_node *n = ne->val;
        if (!catalog_node_matches(&f, n))
            continue;
        const struct reg_check **ordered = reg_node_checks_ordered(n);
        for (size_t i = 0; i < n->checks.n; i++)
            if ((any || ordered[i]->status == want) &&
                api_acl_check_visible(c, res, ordered[i], true))
                json_array_append_new(list, api_acl_render_check(c, ordered[i]));
        free(ordered);
    }
    catalog_filter_free(&f);
    catalog_result_index(res, c->agent->state.checks_index);
    api_result_json(c, res, list);
}
