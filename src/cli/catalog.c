/*
 * `mesh catalog services|nodes|service`: the cluster view from /v1/catalog, printed as
 * `consul catalog` prints it. `catalog service NAME` is ours: the instances of one service.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_internal.h"
#include "lib/alloc.h"
#include "lib/url.h"

#define CATALOG_USAGE                                                                              \
    "mesh catalog <subcommand> [options] [args]\n\n"                                               \
    "  Interacts with the catalog: the cluster-wide view of nodes and services.\n\n"               \
    "Subcommands:\n"                                                                               \
    "    nodes       List all nodes in the catalog\n"                                              \
    "    service     List the instances of one service (mesh only)\n"                              \
    "    services    List all registered services in a datacenter\n"

#define SERVICES_USAGE                                                                             \
    "mesh catalog services [options]\n\n"                                                          \
    "  Retrieves the list of services registered in a given datacenter. By default,\n"             \
    "  the datacenter of the local agent is queried."

#define NODES_USAGE                                                                                \
    "mesh catalog nodes [options]\n\n"                                                             \
    "  Retrieves the list of nodes registered in a given datacenter. By default, the\n"            \
    "  datacenter of the local agent is queried."

#define SERVICE_USAGE                                                                              \
    "mesh catalog service [options] NAME\n\n"                                                      \
    "  Lists the instances of service NAME: node, service ID, address:port and tags."

#define HELP_NODE_META                                                                             \
    "Metadata to filter nodes with the given `key=value` pairs. This flag may be\n"                \
    "specified multiple times to filter on multiple sources of metadata."

static const char *jstr(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static int cstr_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorted keys of an object (borrowed from it); *n set. Free the array. */
static const char **sorted_keys(const json_t *obj, size_t *n)
{
    const char **keys;
    const char *k;
    json_t *v;
    size_t i = 0;

    *n = json_is_object(obj) ? json_object_size(obj) : 0;
    keys = xcalloc(*n ? *n : 1, sizeof(*keys));
    if (*n) {
        json_object_foreach((json_t *)obj, k, v) keys[i++] = k;
    }
    qsort(keys, *n, sizeof(*keys), cstr_cmp);
    return keys;
}

/* "k1=v1, k2=v2" in key order (consul's mapToKV). */
static void map_to_kv(struct buf *out, const json_t *obj)
{
    size_t n;
    const char **keys = sorted_keys(obj, &n);

    for (size_t i = 0; i < n; i++)
        buf_printf(out, "%s%s=%s", i ? ", " : "", keys[i], jstr(obj, keys[i]));
    free(keys);
}

void cli_catalog_render_nodes(struct buf *out, const json_t *nodes, bool detailed)
{
    struct cli_lines l = {0};

    cli_lines_add(&l, detailed ? "Node|ID|Address|DC|TaggedAddresses|Meta" : "Node|ID|Address|DC");
    for (size_t i = 0; i < json_array_size(nodes); i++) {
        const json_t *node = json_array_get(nodes, i);
        const char *id = jstr(node, "ID");
        if (detailed) {
            struct buf ta = BUF_INIT, meta = BUF_INIT;
            map_to_kv(&ta, json_object_get(node, "TaggedAddresses"));
            map_to_kv(&meta, json_object_get(node, "Meta"));
            cli_lines_add(&l, "%s|%s|%s|%s|%s|%s", jstr(node, "Node"), id, jstr(node, "Address"),
                          jstr(node, "Datacenter"), ta.data ? ta.data : "",
                          meta.data ? meta.data : "");
            buf_free(&ta);
            buf_free(&meta);
        } else {
            cli_lines_add(&l, "%s|%.*s|%s|%s", jstr(node, "Node"), strlen(id) >= 8 ? 8 : 0, id,
                          jstr(node, "Address"), jstr(node, "Datacenter"));
        }
    }
    cli_columnize(out, &l, '|', "  ");
    cli_lines_free(&l);
}

/* Tags of one service, sorted, duplicates dropped, joined by ','. */
static void join_tags(struct buf *out, const json_t *tags)
{
    size_t n = json_array_size(tags), m = 0;
    const char **v = xcalloc(n ? n : 1, sizeof(*v));

    for (size_t i = 0; i < n; i++) {
        const char *t = json_string_value(json_array_get(tags, i));
        if (t)
            v[m++] = t;
    }
    qsort(v, m, sizeof(*v), cstr_cmp);
    for (size_t i = 0, first = 1; i < m; i++) {
        if (i && strcmp(v[i], v[i - 1]) == 0)
            continue;
        buf_printf(out, "%s%s", first ? "" : ",", v[i]);
        first = 0;
    }
    free(v);
}

size_t cli_catalog_render_services(struct buf *out, const json_t *services, bool tags)
{
    size_t n;
    const char **names = sorted_keys(services, &n);
    struct cli_lines l = {0};

    for (size_t i = 0; i < n; i++) {
        if (!tags) {
            buf_printf(out, "%s\n", names[i]);
            continue;
        }
        struct buf t = BUF_INIT;
        join_tags(&t, json_object_get(services, names[i]));
        cli_lines_add(&l, "%s\t%s", names[i], t.data ? t.data : "");
        buf_free(&t);
    }
    if (tags)
        cli_tabwrite(out, &l, true);
    cli_lines_free(&l);
    free(names);
    return n;
}

void cli_catalog_render_instances(struct buf *out, const json_t *instances)
{
    struct cli_lines l = {0};

    cli_lines_add(&l, "Node|ServiceID|Address|Tags");
    for (size_t i = 0; i < json_array_size(instances); i++) {
        const json_t *s = json_array_get(instances, i);
        const char *addr = jstr(s, "ServiceAddress");
        struct buf tags = BUF_INIT;
        if (!*addr)
            addr = jstr(s, "Address");
        join_tags(&tags, json_object_get(s, "ServiceTags"));
        cli_lines_add(&l, strchr(addr, ':') ? "%s|%s|[%s]:%lld|%s" : "%s|%s|%s:%lld|%s",
                      jstr(s, "Node"), jstr(s, "ServiceID"), addr,
                      json_integer_value(json_object_get(s, "ServicePort")),
                      tags.data ? tags.data : "");
        buf_free(&tags);
    }
    cli_columnize(out, &l, '|', "  ");
    cli_lines_free(&l);
}

/* Appends node-meta=k:v for each -node-meta k=v (the CLI's syntax; the API's is k:v). */
static bool add_node_meta(struct buf *t, const struct flag_list *meta)
{
    for (size_t i = 0; i < meta->n; i++) {
        char *kv = xstrdup(meta->items[i]);
        char *eq = strchr(kv, '=');
        if (!eq) {
            fprintf(stderr, "Error parsing -node-meta: missing '=' in \"%s\"\n", kv);
            free(kv);
            return false;
        }
        *eq = ':';
        cli_query_add(t, "node-meta", kv);
        free(kv);
    }
    return true;
}

/* GET target and parse it; prints "<what>: <error>" on failure. NULL then. */
static json_t *catalog_get(const struct cli_http_opts *o, const char *target, const char *what)
{
    return cli_call_json(o, "GET", target, CLI_READ, what);
}

static void print_buf(struct buf *b)
{
    fwrite(b->data ? b->data : "", 1, b->len, stdout);
    buf_free(b);
}

/* /v1/catalog/node/NAME's Services (ID -> NodeService) as name -> [tags]. */
static json_t *node_services_by_name(const json_t *node)
{
    json_t *out = json_object();
    const char *id;
    json_t *svc;

    json_object_foreach(json_object_get(node, "Services"), id, svc)
    {
        const char *name = jstr(svc, "Service");
        json_t *tags = json_object_get(out, name);
        if (!tags) {
            tags = json_array();
            json_object_set_new(out, name, tags);
        }
        json_array_extend(tags, json_object_get(svc, "Tags"));
    }
    return out;
}

static int catalog_services(int argc, char **argv)
{
    struct cli_http_opts o = {0};
    struct flag_list meta = {0};
    char *node = NULL;
    bool tags = false;
    struct flag flags[] = {
        CLI_HTTP_FLAGS(&o),
        CLI_STALE_FLAG(&o),
        {"node", FLAG_STRING, &node, "Node `id or name` for which to list services.", false},
        {.name = "node-meta", .type = FLAG_STRING_LIST, .ptr = &meta, .help = HELP_NODE_META},
        {"tags", FLAG_BOOL, &tags,
         "Display each service's tags as a comma-separated list beside each\n"
         "service entry.",
         false},
    };
    struct buf t = BUF_INIT, out = BUF_INIT;
    json_t *v = NULL, *services = NULL;
    int first, status = 1;

    if (!cli_parse_command(flags, ARRAY_LEN(flags), SERVICES_USAGE, argc - 1, argv + 1, 0, &first,
                           &status))
        goto out;
    status = 1;
    if (node && *node) {
        buf_append_cstr(&t, "/v1/catalog/node/");
        url_encode(&t, str_from(node), false);
    } else {
        buf_append_cstr(&t, "/v1/catalog/services");
    }
    if (!add_node_meta(&t, &meta))
        goto out;
    v = catalog_get(&o, t.data,
                    node && *node ? "Error listing services for node" : "Error listing services");
    if (!v)
        goto out;
    /* An unknown node is 200 "null": no services. */
    services = node && *node ? node_services_by_name(v) : json_incref(v);
    status = 0;
    if (!cli_catalog_render_services(&out, services, tags))
        fprintf(stderr, "No services match the given query - try expanding your search.\n");
    print_buf(&out);
out:
    json_decref(services);
    json_decref(v);
    buf_free(&t);
    free(node);
    flag_list_free(&meta);
    cli_http_opts_free(&o);
    return status;
}

/* Catalog nodes from /v1/catalog/service/NAME's ServiceNodes, as consul's -service does. */
static json_t *nodes_of_service(const json_t *instances)
{
    json_t *nodes = json_array();

    for (size_t i = 0; i < json_array_size(instances); i++) {
        const json_t *s = json_array_get(instances, i);
        json_t *n = json_object();
        json_object_set_new(n, "ID", json_string(jstr(s, "ID")));
        json_object_set_new(n, "Node", json_string(jstr(s, "Node")));
        json_object_set_new(n, "Address", json_string(jstr(s, "Address")));
        json_object_set_new(n, "Datacenter", json_string(jstr(s, "Datacenter")));
        json_object_set(n, "TaggedAddresses", json_object_get(s, "TaggedAddresses"));
        json_object_set(n, "Meta", json_object_get(s, "NodeMeta"));
        json_array_append_new(nodes, n);
    }
    return nodes;
}

static int catalog_nodes(int argc, char **argv)
{
    struct cli_http_opts o = {0};
    struct flag_list meta = {0};
    char *service = NULL, *near = NULL;
    bool detailed = false;
    struct flag flags[] = {
        CLI_HTTP_FLAGS(&o),
        CLI_STALE_FLAG(&o),
        {"detailed", FLAG_BOOL, &detailed,
         "Output detailed information about the nodes including their addresses\n"
         "and metadata.",
         false},
        {"near", FLAG_STRING, &near,
         "Node name to sort the node list in ascending order based on estimated\n"
         "round-trip time from that node. Passing \"_agent\" will use this agent's\n"
         "node for sorting.",
         false},
        {.name = "node-meta", .type = FLAG_STRING_LIST, .ptr = &meta, .help = HELP_NODE_META},
        {"service", FLAG_STRING, &service,
         "Service `id or name` to filter nodes. Only nodes which are providing the\n"
         "given service will be returned.",
         false},
    };
    struct buf t = BUF_INIT, out = BUF_INIT;
    json_t *v = NULL, *nodes = NULL;
    bool by_service;
    int first, status = 1;

    if (!cli_parse_command(flags, ARRAY_LEN(flags), NODES_USAGE, argc - 1, argv + 1, 0, &first,
                           &status))
        goto out;
    status = 1;
    by_service = service && *service;
    if (by_service) {
        buf_append_cstr(&t, "/v1/catalog/service/");
        url_encode(&t, str_from(service), false);
    } else {
        buf_append_cstr(&t, "/v1/catalog/nodes");
    }
    if (near && *near)
        cli_query_add(&t, "near", near);
    if (!add_node_meta(&t, &meta))
        goto out;
    v = catalog_get(&o, t.data,
                    by_service ? "Error listing nodes for service" : "Error listing nodes");
    if (!v)
        goto out;
    nodes = by_service ? nodes_of_service(v) : json_incref(v);
    status = 0;
    if (!json_array_size(nodes)) {
        fprintf(stderr, "No nodes match the given query - try expanding your search.\n");
        goto out;
    }
    cli_catalog_render_nodes(&out, nodes, detailed);
    print_buf(&out);
out:
    json_decref(nodes);
    json_decref(v);
    buf_free(&t);
    free(service);
    free(near);
    flag_list_free(&meta);
    cli_http_opts_free(&o);
    return status;
}

static int catalog_service(int argc, char **argv)
{
    struct cli_http_opts o = {0};
    struct flag_list tags = {0};
    struct flag flags[] = {
        CLI_HTTP_FLAGS(&o),
        CLI_STALE_FLAG(&o),
        {"tag", FLAG_STRING_LIST, &tags,
         "Only list instances carrying this tag. May be repeated (all must match).", false},
    };
    struct buf t = BUF_INIT, out = BUF_INIT;
    json_t *v = NULL;
    int first, status = 1;

    if (!cli_parse_flags(flags, ARRAY_LEN(flags), SERVICE_USAGE, argc - 1, argv + 1, &first,
                         &status))
        goto out;
    status = 1;
    if (argc - 1 - first != 1) {
        fprintf(stderr, "Error! Expected exactly one argument, the service NAME (got %d)\n",
                argc - 1 - first);
        goto out;
    }
    buf_append_cstr(&t, "/v1/catalog/service/");
    url_encode(&t, str_from(argv[1 + first]), false);
    for (size_t i = 0; i < tags.n; i++)
        cli_query_add(&t, "tag", tags.items[i]);
    v = catalog_get(&o, t.data, "Error listing service instances");
    if (!v)
        goto out;
    status = 0;
    if (!json_array_size(v)) {
        fprintf(stderr, "No instances match the given query - try expanding your search.\n");
        goto out;
    }
    cli_catalog_render_instances(&out, v);
    print_buf(&out);
out:
    json_decref(v);
    buf_free(&t);
    flag_list_free(&tags);
    cli_http_opts_free(&o);
    return status;
}

int cli_catalog(int argc, char **argv)
{
    static const struct cli_subcommand subs[] = {
        {"services", catalog_services},
        {"nodes", catalog_nodes},
        {"service", catalog_service},
    };

    return cli_subcommand("mesh catalog", CATALOG_USAGE, subs, ARRAY_LEN(subs), argc, argv);
}
