/*
 * ?filter= on the read endpoints that take it in Consul: the expression (lib/bexpr) is parsed
 * once per call, checked against the type of the endpoint's answer (as go-bexpr does when Consul
 * creates the filter, so a bad selector is refused however little data there is), and applied
 * to the rendered JSON, so every endpoint filters the same way and a blocking query wakes only
 * when the filtered answer changes (its hash is of the filtered body).
 */
#include "registry/api/api_filter.h"

#include <string.h>

#include "lib/bexpr.h"

enum filter_target {
    FILTER_NONE,          /* the endpoint takes no filter: refuse rather than ignore it */
    FILTER_LIST,          /* the elements of the top-level array */
    FILTER_MAP_VALUES,    /* the values of the top-level object */
    FILTER_NODE_SERVICES, /* the values of the "Services" member */
    FILTER_IN_HANDLER,    /* what the answer is built from: the handler asks reg_api_filter_match */
};

/*
 * The types Consul filters, with the fields go-bexpr finds in them (Consul's structs.Node,
 * NodeService, ServiceNode, HealthCheck, CheckServiceNode, NodeInfo and serf.Member). A field
 * Consul has and meshkit never fills (PeerName, Proxy, ...) is still a valid selector: it reads as
 * absent.
 */
#define END                                                                                        \
    {                                                                                              \
        NULL, 0, NULL                                                                              \
    }

static const struct bexpr_field string_value[] = {{"", BEXPR_STRING, NULL}, END};

static const struct bexpr_field service_address[] = {
    {"Address", BEXPR_STRING, NULL},
    {"Port", BEXPR_INT, NULL},
    END,
};
static const struct bexpr_field service_address_value[] = {
    {"", BEXPR_STRUCT, service_address},
    END,
};

static const struct bexpr_field weights[] = {
    {"Passing", BEXPR_INT, NULL},
    {"Warning", BEXPR_INT, NULL},
    END,
};

static const struct bexpr_field mesh_gateway[] = {{"Mode", BEXPR_STRING, NULL}, END};

static const struct bexpr_field upstream[] = {
    {"DestinationType", BEXPR_STRING, NULL},      {"DestinationNamespace", BEXPR_STRING, NULL},
    {"DestinationPartition", BEXPR_STRING, NULL}, {"DestinationPeer", BEXPR_STRING, NULL},
    {"DestinationName", BEXPR_STRING, NULL},      {"Datacenter", BEXPR_STRING, NULL},
    {"LocalBindAddress", BEXPR_STRING, NULL},     {"LocalBindPort", BEXPR_INT, NULL},
    {"LocalBindSocketPath", BEXPR_STRING, NULL},  {"LocalBindSocketMode", BEXPR_STRING, NULL},
    {"MeshGateway", BEXPR_STRUCT, mesh_gateway},  END,
};

static const struct bexpr_field expose_path[] = {
    {"ListenerPort", BEXPR_INT, NULL},     {"Path", BEXPR_STRING, NULL},
    {"LocalPathPort", BEXPR_INT, NULL},    {"Protocol", BEXPR_STRING, NULL},
    {"ParsedFromCheck", BEXPR_BOOL, NULL}, END,
};

static const struct bexpr_field expose[] = {
    {"Checks", BEXPR_BOOL, NULL},
    {"Paths", BEXPR_LIST, expose_path},
    END,
};

static const struct bexpr_field transparent_proxy[] = {
    {"OutboundListenerPort", BEXPR_INT, NULL},
    {"DialedDirectly", BEXPR_BOOL, NULL},
    END,
};

static const struct bexpr_field access_logs[] = {
    {"Enabled", BEXPR_BOOL, NULL},
    {"DisableListenerLogs", BEXPR_BOOL, NULL},
    {"Type", BEXPR_STRING, NULL},
    {"Path", BEXPR_STRING, NULL},
    {"JSONPath", BEXPR_STRING, NULL},
    {"TextPath", BEXPR_STRING, NULL},
    END,
};

static const struct bexpr_field envoy_extension[] = {
    {"Name", BEXPR_STRING, NULL},
    {"Required", BEXPR_BOOL, NULL},
    {"ConsulVersion", BEXPR_STRING, NULL},
    {"EnvoyVersion", BEXPR_STRING, NULL},
    END,
};

static const struct bexpr_field proxy[] = {
    {"EnvoyExtensions", BEXPR_LIST, envoy_extension},
    {"DestinationServiceName", BEXPR_STRING, NULL},
    {"DestinationServiceID", BEXPR_STRING, NULL},
    {"LocalServiceAddress", BEXPR_STRING, NULL},
    {"LocalServicePort", BEXPR_INT, NULL},
    {"LocalServiceSocketPath", BEXPR_STRING, NULL},
    {"Upstreams", BEXPR_LIST, upstream},
    {"MeshGateway", BEXPR_STRUCT, mesh_gateway},
    {"Expose", BEXPR_STRUCT, expose},
    {"TransparentProxy", BEXPR_STRUCT, transparent_proxy},
    {"Mode", BEXPR_STRING, NULL},
    {"AccessLogs", BEXPR_STRUCT, access_logs},
    END,
};

static const struct bexpr_field service_connect[] = {{"Native", BEXPR_BOOL, NULL}, END};

/* /v1/catalog/nodes, and the Node of a health entry */
static const struct bexpr_field node[] = {
    {"ID", BEXPR_STRING, NULL},
    {"Node", BEXPR_STRING, NULL},
    {"Partition", BEXPR_STRING, NULL},
    {"PeerName", BEXPR_STRING, NULL},
    {"Address", BEXPR_STRING, NULL},
    {"Datacenter", BEXPR_STRING, NULL},
    {"TaggedAddresses", BEXPR_MAP, string_value},
    {"Meta", BEXPR_MAP, string_value},
    END,
};

/* /v1/agent/services, the Services of /v1/catalog/node(-services), a health entry's Service */
static const struct bexpr_field node_service[] = {
    {"Kind", BEXPR_STRING, NULL},
    {"ID", BEXPR_STRING, NULL},
    {"Service", BEXPR_STRING, NULL},
    {"Tags", BEXPR_STRINGS, NULL},
    {"Address", BEXPR_STRING, NULL},
    {"TaggedAddresses", BEXPR_MAP, service_address_value},
    {"Meta", BEXPR_MAP, string_value},
    {"Port", BEXPR_INT, NULL},
    {"SocketPath", BEXPR_STRING, NULL},
    {"Weights", BEXPR_STRUCT, weights},
    {"EnableTagOverride", BEXPR_BOOL, NULL},
    {"Proxy", BEXPR_STRUCT, proxy},
    {"ServiceConnect", BEXPR_STRUCT, service_connect},
    {"PeerName", BEXPR_STRING, NULL},
    END,
};

/* /v1/catalog/service/NAME */
static const struct bexpr_field service_node[] = {
    {"ID", BEXPR_STRING, NULL},
    {"Node", BEXPR_STRING, NULL},
    {"Address", BEXPR_STRING, NULL},
    {"Datacenter", BEXPR_STRING, NULL},
    {"TaggedAddresses", BEXPR_MAP, string_value},
    {"NodeMeta", BEXPR_MAP, string_value},
    {"ServiceKind", BEXPR_STRING, NULL},
    {"ServiceID", BEXPR_STRING, NULL},
    {"ServiceName", BEXPR_STRING, NULL},
    {"ServiceTags", BEXPR_STRINGS, NULL},
    {"ServiceAddress", BEXPR_STRING, NULL},
    {"ServiceTaggedAddresses", BEXPR_MAP, service_address_value},
    {"ServiceMeta", BEXPR_MAP, string_value},
    {"ServicePort", BEXPR_INT, NULL},
    {"ServiceSocketPath", BEXPR_STRING, NULL},
    {"ServiceWeights", BEXPR_STRUCT, weights},
    {"ServiceEnableTagOverride", BEXPR_BOOL, NULL},
    {"ServiceProxy", BEXPR_STRUCT, proxy},
    {"ServiceConnect", BEXPR_STRUCT, service_connect},
    {"PeerName", BEXPR_STRING, NULL},
    END,
};

/* /v1/agent/checks, /v1/health/checks|node|state, a health entry's Checks */
static const struct bexpr_field health_check[] = {
    {"Node", BEXPR_STRING, NULL},
    {"CheckID", BEXPR_STRING, NULL},
    {"Name", BEXPR_STRING, NULL},
    {"Status", BEXPR_STRING, NULL},
    {"Notes", BEXPR_STRING, NULL},
    {"Output", BEXPR_STRING, NULL},
    {"ServiceID", BEXPR_STRING, NULL},
    {"ServiceName", BEXPR_STRING, NULL},
    {"ServiceTags", BEXPR_STRINGS, NULL},
    {"Type", BEXPR_STRING, NULL},
    {"Interval", BEXPR_STRING, NULL},
    {"Timeout", BEXPR_STRING, NULL},
    {"ExposedPort", BEXPR_INT, NULL},
    {"PeerName", BEXPR_STRING, NULL},
    {"LastCheckStartTime", BEXPR_OPAQUE, NULL},
    END,
};

/* /v1/internal/ui/nodes: Consul's NodeInfo, a node with its services and checks */
static const struct bexpr_field node_info[] = {
    {"ID", BEXPR_STRING, NULL},           {"Node", BEXPR_STRING, NULL},
    {"Partition", BEXPR_STRING, NULL},    {"PeerName", BEXPR_STRING, NULL},
    {"Address", BEXPR_STRING, NULL},      {"TaggedAddresses", BEXPR_MAP, string_value},
    {"Meta", BEXPR_MAP, string_value},    {"Services", BEXPR_LIST, node_service},
    {"Checks", BEXPR_LIST, health_check}, END,
};

/* /v1/health/service/NAME, and the instances /v1/internal/ui/services summarises */
static const struct bexpr_field check_service_node[] = {
    {"Node", BEXPR_STRUCT, node},
    {"Service", BEXPR_STRUCT, node_service},
    {"Checks", BEXPR_LIST, health_check},
    END,
};

/* /v1/agent/members. Go's Addr is a net.IP (bytes); here it is its text, compared as a string. */
static const struct bexpr_field member[] = {
    {"Name", BEXPR_STRING, NULL},     {"Addr", BEXPR_STRING, NULL},
    {"Port", BEXPR_INT, NULL},        {"Tags", BEXPR_MAP, string_value},
    {"Status", BEXPR_INT, NULL},      {"ProtocolMin", BEXPR_INT, NULL},
    {"ProtocolMax", BEXPR_INT, NULL}, {"ProtocolCur", BEXPR_INT, NULL},
    {"DelegateMin", BEXPR_INT, NULL}, {"DelegateMax", BEXPR_INT, NULL},
    {"DelegateCur", BEXPR_INT, NULL}, END,
};

#undef END

/* Consul's filtering docs: what each endpoint's filter selects from, and its type. */
static const struct filter_route {
    const char *path; /* a route's path */
    enum filter_target target;
    const struct bexpr_field *fields;
} routes[] = {
    {"/v1/agent/services", FILTER_MAP_VALUES, node_service},
    {"/v1/agent/checks", FILTER_MAP_VALUES, health_check},
    {"/v1/agent/members", FILTER_LIST, member},
    {"/v1/catalog/nodes", FILTER_LIST, node},
    {"/v1/catalog/service/", FILTER_LIST, service_node},
    {"/v1/catalog/connect/", FILTER_LIST, service_node},
    {"/v1/catalog/node-services/", FILTER_NODE_SERVICES, node_service},
    {"/v1/catalog/node/", FILTER_NODE_SERVICES, node_service},
    {"/v1/health/service/", FILTER_LIST, check_service_node},
    {"/v1/health/connect/", FILTER_LIST, check_service_node},
    {"/v1/health/checks/", FILTER_LIST, health_check},
    {"/v1/health/node/", FILTER_LIST, health_check},
    {"/v1/health/state/", FILTER_LIST, health_check},
    /* not in the filtering docs, but Internal.NodeDump filters (agent/consul/internal_endpoint.go)
     */
    {"/v1/internal/ui/nodes", FILTER_LIST, node_info},
    /* Internal.ServiceDump filters its CheckServiceNodes, and UIServices summarises what is left
     * (agent/ui_endpoint.go): the filter picks instances, not summaries. */
    {"/v1/internal/ui/services", FILTER_IN_HANDLER, check_service_node},
};

static const struct filter_route *route_of(const char *route_path)
{
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (strcmp(routes[i].path, route_path) == 0)
            return &routes[i];
    return NULL;
}

const struct bexpr_field *reg_api_filter_fields(const char *route_path)
{
    const struct filter_route *r = route_of(route_path);

    return r ? r->fields : NULL;
}

int reg_api_filter_prepare(struct reg_api_call *c, const char *route_path)
{
    const char *src = reg_api_query(c, "filter");
    struct err e = {{0}};

    if (!src || !src[0])
        return 0;
    const struct filter_route *r = route_of(route_path);
    if (!r) {
        reg_api_error(c, 400,
                      "Failed to create boolean expression evaluator: filter is not "
                      "supported by this endpoint");
        return -1;
    }
    /* Checked against the answer's type, not its data: an empty answer refuses it too. */
    c->filter = bexpr_parse(src, &e);
    if (!c->filter || bexpr_check(c->filter, r->fields, &e) < 0) {
        bexpr_free(c->filter);
        c->filter = NULL;
        reg_api_error(c, 400, "Failed to create boolean expression evaluator: %s", e.msg);
        return -1;
    }
    c->filter_target = r->target;
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

int reg_api_filter_match(const struct reg_api_call *c, const json_t *item, struct err *e)
{
    return c->filter ? bexpr_eval(c->filter, item, e) : 1;
}

int reg_api_filter_apply(const struct reg_api_call *c, json_t *v, struct err *e)
{
    if (!c->filter || c->filter_target == FILTER_IN_HANDLER)
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
