/*
 * ?filter= on the read endpoints that take it in Consul: the expression (lib/bexpr) is parsed
 * once per call and applied to the rendered JSON, so every endpoint filters the same way and a
 * blocking query wakes only when the filtered answer changes (its hash is of the filtered body).
 */
#include "registry/api/api_filter.h"

#include <string.h>

#include "lib/bexpr.h"

enum filter_target {
    FILTER_NONE,          /* the endpoint takes no filter: refuse rather than ignore it */
    FILTER_LIST,          /* the elements of the top-level array */
    FILTER_MAP_VALUES,    /* the values of the top-level object */
    FILTER_NODE_SERVICES, /* the values of the "Services" member */
};

/* Consul's filtering docs: what each endpoint's filter selects from. */
static const struct {
    const char *path; /* a route's path */
    enum filter_target target;
} targets[] = {
    {"/v1/agent/services", FILTER_MAP_VALUES},
    {"/v1/agent/checks", FILTER_MAP_VALUES},
    {"/v1/agent/members", FILTER_LIST},
    {"/v1/catalog/nodes", FILTER_LIST},
    {"/v1/catalog/service/", FILTER_LIST},
    {"/v1/catalog/node-services/", FILTER_NODE_SERVICES},
    {"/v1/catalog/node/", FILTER_NODE_SERVICES},
    {"/v1/health/service/", FILTER_LIST},
    {"/v1/health/checks/", FILTER_LIST},
    {"/v1/health/node/", FILTER_LIST},
    {"/v1/health/state/", FILTER_LIST},
};

static enum filter_target target_of(const char *route_path)
{
    for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++)
        if (strcmp(targets[i].path, route_path) == 0)
            return targets[i].target;
    return FILTER_NONE;
}

int reg_api_filter_prepare(struct reg_api_call *c, const char *route_path)
{
    const char *src = reg_api_query(c, "filter");
    struct err e = {{0}};

    if (!src || !src[0])
        return 0;
    c->filter_target = target_of(route_path);
    if (c->filter_target == FILTER_NONE) {
        reg_api_error(c, 400,
                      "Failed to create boolean expression evaluator: filter is not "
                      "supported by this endpoint");
        return -1;
    }
    c->filter = bexpr_parse(src, &e);
    if (!c->filter) {
        reg_api_error(c, 400, "Failed to create boolean expression evaluator: %s", e.msg);
        return -1;
    }
    return 0;
}

/* Keeps the items of a list, or the members of an object, that match. */
static int filter_items(const struct bexpr *x, json_t *v, struct err *e)
{
    size_t i = 0;
    int r;

    if (json_is_array(v)) {
        while (i < json_array_size(v)) {
            r = bexpr_eval(x, json_array_get(v, i), e);
            if (r < 0)
                return r;
            if (r)
                i++;
            else
                json_array_remove(v, i);
        }
        return 0;
    }
    const char *key;
    json_t *item, *tmp;
    json_object_foreach_safe(v, tmp, key, item)
    {
        r = bexpr_eval(x, item, e);
        if (r < 0)
            return r;
        if (!r)
            json_object_del(v, key);
    }
    return 0;
}

int reg_api_filter_apply(const struct reg_api_call *c, json_t *v, struct err *e)
{
    if (!c->filter)
        return 0;
    if (c->filter_target == FILTER_NODE_SERVICES) {
        json_t *services = json_object_get(v, "Services");
        return services ? filter_items(c->filter, services, e) : 0;
    }
    if (c->filter_target == FILTER_LIST && !json_is_array(v))
        return 0;
    if (c->filter_target == FILTER_MAP_VALUES && !json_is_object(v))
        return 0;
    return filter_items(c->filter, v, e);
}
