/*
 * The web UI: its static files under /ui/ (compiled in, see ui_assets.h) and the two summary
 * reads it uses where the public API would need one request per service or per node
 * (GET /v1/internal/ui/services and /v1/internal/ui/nodes, Consul's shapes; docs/api.md).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/alloc.h"
#include "lib/json.h"
#include "lib/smap.h"
#include "registry/api/api_acl.h"
#include "registry/api/api_filter.h"
#include "registry/api/api_routes.h"
#include "registry/api/catalog_query.h"
#include "registry/api/render.h"
#include "registry/api/ui_assets.h"
#include "registry/settings/settings.h"

/* The pages fetch only from the agent itself; nothing inline, nothing from elsewhere. */
#define UI_CSP                                                                                     \
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "                \
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

static const struct reg_ui_asset *find_asset(const char *name)
{
    for (size_t i = 0; i < reg_ui_assets_count; i++)
        if (strcmp(reg_ui_assets[i].name, name) == 0)
            return &reg_ui_assets[i];
    return NULL;
}

/* If-None-Match: "*" or a comma-separated list of entity tags, weak ones compared weakly. */
static bool etag_matches(const struct http_request *req, const char *etag)
{
    const struct http_header *h = http_request_header(req, "If-None-Match");
    size_t elen = strlen(etag);

    if (!h)
        return false;
    struct str list = h->value, item;
    while (http_list_next(&list, &item)) {
        if (item.n >= 2 && item.p[0] == 'W' && item.p[1] == '/')
            item = str_skip(item, 2);
        if (str_eq_cstr(item, "*") || (item.n == elen && memcmp(item.p, etag, elen) == 0))
            return true;
    }
    return false;
}

void reg_api_ui_serve(struct reg_api_call *c)
{
    struct http_request *req = c->req;
    const char *rest = c->path + 3; /* after "/ui" */

    if (rest[0] == '\0') { /* "/ui": relative links in the page need the slash */
        http_response_header(req, "Location", "/ui/");
        reg_api_answer(c, 301, "text/plain; charset=utf-8", "", 0);
        return;
    }
    if (!str_eq_cstr(req->method, "GET") && !str_eq_cstr(req->method, "HEAD")) {
        http_response_header(req, "Allow", "GET, HEAD");
        reg_api_error(c, 405, "method %.*s not allowed", STR_FMT(req->method));
        return;
    }
    const struct reg_ui_asset *a = find_asset(rest[1] ? rest + 1 : "index.html");
    if (!a) {
        reg_api_error(c, 404, "no such file in the web UI: %s", c->path);
        return;
    }
    /* Revalidate on each load (no-cache): an upgraded agent serves its new UI at once, and an
     * unchanged file costs a 304. */
    http_response_header(req, "ETag", "%s", a->etag);
    http_response_header(req, "Cache-Control", "no-cache");
    http_response_header(req, "X-Content-Type-Options", "nosniff");
    if (strncmp(a->content_type, "text/html", 9) == 0) {
        http_response_header(req, "Content-Security-Policy", "%s", UI_CSP);
        http_response_header(req, "Referrer-Policy", "no-referrer");
    }
    if (etag_matches(req, a->etag))
        reg_api_answer(c, 304, NULL, "", 0);
    else
        reg_api_answer(c, 200, a->content_type, a->data, a->len);
}

/* ---- /v1/internal/ui/services ------------------------------------------------------------ */

struct ui_services_ctx {
    struct reg_api_call *c;
    struct smap by_name; /* service name -> summary object (owned), walked in name order */
    struct err e;        /* why the call's filter could not be evaluated */
    bool failed;         /* ... and so the answer is that 400 */
};

/* Appends s unless arr holds it already; whether it did. */
static bool add_unique_string(json_t *arr, const char *s)
{
    for (size_t i = 0; i < json_array_size(arr); i++)
        if (strcmp(json_string_value(json_array_get(arr, i)), s) == 0)
            return false;
    json_array_append_new(arr, json_string(s));
    return true;
}

static int cmp_json_string(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

/* Sorts an array of strings bytewise, as Go's sort.Strings. */
static void sort_strings(json_t *arr)
{
    size_t n = json_array_size(arr);
    json_t **v = xcalloc(n ? n : 1, sizeof(*v));

    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(arr, i));
    qsort(v, n, sizeof(*v), cmp_json_string);
    json_array_clear(arr);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, v[i]);
    free(v);
}

static void count_check(json_t *sum, enum reg_health status)
{
    static const char *const keys[REG_HEALTH_COUNT] = {"ChecksPassing", "ChecksWarning",
                                                       "ChecksCritical"};
    json_t *v = json_object_get(sum, keys[status]);
    json_integer_set(v, json_integer_value(v) + 1);
}

/*
 * Whether the instance passes the call's ?filter, which Consul evaluates over the instance as
 * its service dump holds it (a CheckServiceNode: Node, Service, Checks) before summarising.
 */
static bool instance_selected(struct ui_services_ctx *ctx, const struct reg_service *s)
{
    bool all_passing;

    if (ctx->failed)
        return false;
    if (!ctx->c->filter)
        return true;
    json_t *entry =
        reg_render_health_entry(s, reg_render_health_checks(s, NULL, NULL, &all_passing));
    int r = reg_api_filter_match(ctx->c, entry, &ctx->e);
    json_decref(entry);
    ctx->failed = r < 0;
    return r > 0;
}

static void add_service_summary(const struct reg_service *s, void *data)
{
    struct ui_services_ctx *ctx = data;
    if (!instance_selected(ctx, s))
        return;
    json_t *sum = smap_get(&ctx->by_name, s->name);
    if (!sum) {
        sum = json_pack("{s:s, s:s, s:s, s:[], s:[], s:I, s:I, s:I, s:I}", "Kind", s->kind, "Name",
                        s->name, "Datacenter", ctx->c->api->cfg->datacenter, "Tags", "Nodes",
                        "InstanceCount", (json_int_t)0, "ChecksPassing", (json_int_t)0,
                        "ChecksWarning", (json_int_t)0, "ChecksCritical", (json_int_t)0);
        smap_put(&ctx->by_name, s->name, sum);
    }
    json_t *n = json_object_get(sum, "InstanceCount");
    json_integer_set(n, json_integer_value(n) + 1);
    for (size_t i = 0; i < s->ntags; i++)
        add_unique_string(json_object_get(sum, "Tags"), s->tags[i]);
    bool first_on_node = add_unique_string(json_object_get(sum, "Nodes"), s->node->name);
    /*
     * Consul counts each check once per service, keyed by node and CheckID: the instance's own
     * checks, and its node's only for the service's first instance on that node.
     */
    smap_foreach(&s->node->checks, e)
    {
        const struct reg_check *chk = e->val;
        if (chk->service_id[0] ? strcmp(chk->service_id, s->id) == 0 : first_on_node)
            count_check(sum, chk->status);
    }
}

void reg_api_ui_services(struct reg_api_call *c, struct reg_api_result *res)
{
    struct reg_catalog_filter f;

    if (reg_catalog_filter_parse(c, &f, res) < 0)
        return;
    struct ui_services_ctx ctx = {c, SMAP_INIT, {{0}}, false};
    /* Consul summarises its service dump, whose ACL filter keeps an instance only with node:read
     * too: a summary's Nodes, and a ?filter over Node, never show a node the token may not read */
    reg_catalog_foreach_visible(c, res, &f, NULL, false, true, add_service_summary, &ctx);
    reg_catalog_filter_free(&f);
    /* Consul's order: summaries by name, each one's Tags and Nodes sorted. */
    json_t *out = json_array();
    smap_foreach(&ctx.by_name, e)
    {
        sort_strings(json_object_get(e->val, "Tags"));
        sort_strings(json_object_get(e->val, "Nodes"));
        json_array_append_new(out, e->val);
    }
    smap_free(&ctx.by_name);
    if (ctx.failed) {
        json_decref(out);
        reg_api_result_error(res, 400, "Failed to evaluate the filter: %s", ctx.e.msg);
        return;
    }
    reg_catalog_result_index(res, c->api->state->table_index[REG_TABLE_CATALOG]);
    reg_api_result_json(c, res, out);
}

/* ---- /v1/internal/ui/nodes --------------------------------------------------------------- */

static json_t *node_summary(struct reg_api_call *c, struct reg_api_result *res,
                            const struct reg_node *n)
{
    json_t *node = reg_render_node(n);
    json_t *services = json_array();
    json_t *checks = json_array();

    smap_foreach(&n->services, e)
    {
        const struct reg_service *s = e->val;
        if (reg_api_acl_service_visible(c, res, s, false))
            json_array_append_new(services, reg_render_node_service(s));
    }
    const struct reg_check **ordered = reg_node_checks_ordered(n);
    for (size_t i = 0; i < n->checks.n; i++) {
        const struct reg_check *chk = ordered[i];
        const struct reg_service *s =
            chk->service_id[0] ? reg_service_get(n, chk->service_id) : NULL;
        if (!s || reg_api_acl_service_visible(c, res, s, false))
            json_array_append_new(checks, reg_api_acl_render_check(c, chk));
    }
    free(ordered);
    json_object_set_new(node, "Services", services);
    json_object_set_new(node, "Checks", checks);
    return node;
}

void reg_api_ui_nodes(struct reg_api_call *c, struct reg_api_result *res)
{
    json_t *list = reg_catalog_visible_nodes(c, res, node_summary);

    if (!list)
        return;
    reg_catalog_result_index(res, c->api->state->table_index[REG_TABLE_CATALOG]);
    reg_api_result_json(c, res, list);
}
