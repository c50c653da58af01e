/*
 * Dependencies: what a data function asks the registry for. Each parses from the function's
 * argument with consul-template's grammar (docs/template.md), names itself with a canonical
 * id (one watch per distinct id), knows its request target, and turns the registry's answer
 * into the values templates read (the service object, decoded KV values).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/base64.h"
#include "lib/bug.h"
#include "lib/url.h"
#include "template/tmpl.h"

#define DEP_MAX_ARG 1024

static const char *const health_names[] = {"passing", "warning", "critical", "maintenance"};

void tmpl_dep_clear(struct tmpl_dep *dep)
{
    FREE_NULL(dep->id);
    FREE_NULL(dep->name);
    FREE_NULL(dep->tag);
    FREE_NULL(dep->dc);
    FREE_NULL(dep->query);
    FREE_NULL(dep->near);
}

static bool all_of(const char *s, size_t n, const char *extra)
{
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && (!s[i] || !strchr(extra, s[i])))
            return false;
    return true;
}

static const char *kind_func(enum tmpl_dep_kind kind)
{
    static const char *const names[] = {"service", "services", "key",         "ls",  "node",
                                        "nodes",   "node",     "datacenters", "file"};
    return names[kind];
}

/* The filter list after "|" into a bit set; empty items are skipped, as consul-template
 * does (a list of nothing but commas accepts no instance). 0 or -EINVAL. */
static int parse_health(const char *s, size_t n, unsigned *out, struct err *e, const char *arg)
{
    *out = 0;
    if (!n || !all_of(s, n, "_,"))
        return err_set(e, "service \"%s\": invalid format", arg);
    while (n) {
        const char *comma = memchr(s, ',', n);
        size_t len = comma ? (size_t)(comma - s) : n, k;
        if (len == 3 && memcmp(s, "any", 3) == 0) {
            *out |= TMPL_HEALTH_ANY;
        } else if (len) {
            for (k = 0; k < ARRAY_LEN(health_names); k++)
                if (strlen(health_names[k]) == len && memcmp(s, health_names[k], len) == 0)
                    break;
            if (k == ARRAY_LEN(health_names))
                return err_set(e, "service \"%s\": unknown health filter \"%.*s\"", arg, (int)len,
                               s);
            *out |= 1u << k;
        }
        n -= comma ? len + 1 : len;
        s += comma ? len + 1 : len;
    }
    return 0;
}

/* "[tag.]name" into dep. */
static int parse_service(const char *arg, const char *s, size_t len, struct tmpl_dep *dep,
                         struct err *e)
{
    const char *dot = len ? memrchr(s, '.', len) : NULL;
    const char *name = dot ? dot + 1 : s;
    size_t name_len = len - (size_t)(name - s);

    if (!name_len || !all_of(name, name_len, "_-") ||
        (dot && (dot == s || !all_of(s, (size_t)(dot - s), "_=:.-"))))
        return err_set(e, "service \"%s\": invalid format", arg);
    dep->name = xstrndup(name, name_len);
    if (dot)
        dep->tag = xstrndup(s, (size_t)(dot - s));
    return 0;
}

/*
 * "?ns=a&partition=b": Consul's namespace, admin partition, cluster peer and sameness group,
 * the keys consul-template accepts (the first value of a key counts, an empty one is none).
 * dep->query receives them in a fixed order, so that equal queries have one id.
 */
static int parse_query(enum tmpl_dep_kind kind, const char *arg, const char *s, size_t n,
                       struct tmpl_dep *dep, struct err *e)
{
    static const char *const keys[] = {"ns", "partition", "peer", "sameness-group"};
    const char *vals[ARRAY_LEN(keys)] = {0};
    size_t lens[ARRAY_LEN(keys)] = {0};
    struct buf b = BUF_INIT;

    if (!n || !all_of(s, n, "_-=&"))
        return err_set(e, "%s \"%s\": invalid format", kind_func(kind), arg);
    for (const char *p = s, *end = s + n; p < end;) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        size_t len = amp ? (size_t)(amp - p) : (size_t)(end - p);
        const char *eq = memchr(p, '=', len);
        size_t klen = eq ? (size_t)(eq - p) : len, k;
        for (k = 0; len && k < ARRAY_LEN(keys); k++)
            if (strlen(keys[k]) == klen && memcmp(p, keys[k], klen) == 0)
                break;
        if (len && k == ARRAY_LEN(keys))
            return err_set(e,
                           "%s \"%s\": invalid query parameter key \"%.*s\": supported keys: "
                           "ns, peer, partition, sameness-group",
                           kind_func(kind), arg, (int)klen, p);
        if (len && !vals[k] && eq) {
            vals[k] = eq + 1;
            lens[k] = len - klen - 1;
        }
        p += len + 1;
    }
    if (kind == TMPL_DEP_SERVICE && lens[2] && lens[3])
        return err_set(e, "service \"%s\": cannot specify both peer and sameness-group", arg);
    for (size_t k = 0; k < ARRAY_LEN(keys); k++)
        if (lens[k])
            buf_printf(&b, "%s%s=%.*s", b.len ? "&" : "", keys[k], (int)lens[k], vals[k]);
    dep->query = b.data ? buf_steal(&b) : NULL;
    return 0;
}

/* What follows the name, in consul-template's order: [?query][@dc][~near][|filter]. */
static int parse_tail(enum tmpl_dep_kind kind, const char *arg, const char *s, struct tmpl_dep *dep,
                      struct err *e)
{
    size_t len;

    if (*s == '?' && kind != TMPL_DEP_DATACENTERS) {
        len = strcspn(s + 1, "@~|");
        if (parse_query(kind, arg, s + 1, len, dep, e) < 0)
            return -EINVAL;
        s += 1 + len;
    }
    if (*s == '@') {
        len = strcspn(s + 1, "~|");
        if (!len || !all_of(s + 1, len, "_.-"))
            return err_set(e, "%s \"%s\": invalid datacenter", kind_func(kind), arg);
        dep->dc = xstrndup(s + 1, len);
        s += 1 + len;
    }
    /* near=NODE: the registry orders the answer by estimated round-trip time from NODE */
    if (*s == '~' && (kind == TMPL_DEP_SERVICE || kind == TMPL_DEP_NODES)) {
        len = strcspn(s + 1, "|");
        if (!len || !all_of(s + 1, len, "_.-"))
            return err_set(e, "%s \"%s\": invalid format", kind_func(kind), arg);
        dep->near = xstrndup(s + 1, len);
        s += 1 + len;
    }
    if (kind == TMPL_DEP_SERVICE) {
        dep->health = TMPL_HEALTH_PASSING;
        if (*s == '|') {
            len = strlen(s + 1);
            if (parse_health(s + 1, len, &dep->health, e, arg) < 0)
                return -EINVAL;
            s += 1 + len;
        }
    }
    if (*s)
        return err_set(e, "%s \"%s\": invalid format", kind_func(kind), arg);
    return 0;
}

static void make_id(struct tmpl_dep *dep)
{
    static const char *const prefix[] = {"health.service", "catalog.services",    "kv.get",
                                         "kv.list",        "catalog.node",        "catalog.nodes",
                                         "agent.self",     "catalog.datacenters", "file"};
    struct buf b = BUF_INIT;

    buf_printf(&b, "%s(", prefix[dep->kind]);
    if (dep->tag)
        buf_printf(&b, "%s.", dep->tag);
    buf_append_cstr(&b, dep->name);
    if (dep->query)
        buf_printf(&b, "?%s", dep->query);
    if (dep->dc)
        buf_printf(&b, "@%s", dep->dc);
    if (dep->near)
        buf_printf(&b, "~%s", dep->near);
    if (dep->kind == TMPL_DEP_SERVICE) {
        char sep = '|';
        for (size_t k = 0; k < ARRAY_LEN(health_names); k++) {
            if (dep->health & (1u << k)) {
                buf_printf(&b, "%c%s", sep, health_names[k]);
                sep = ',';
            }
        }
    }
    buf_append_cstr(&b, ")");
    dep->id = buf_steal(&b);
}

/* A file's path, without the spaces around it (consul-template trims them); "@" is a
 * character of the path there, not a datacenter. */
static int parse_file(const char *arg, size_t n, struct tmpl_dep *dep, struct err *e)
{
    while (n && isspace((unsigned char)arg[0]))
        arg++, n--;
    while (n && isspace((unsigned char)arg[n - 1]))
        n--;
    if (n == 0)
        return err_set(e, "file: invalid format: \"%.*s\"", (int)n, arg);
    dep->name = xstrndup(arg, n);
    make_id(dep);
    return 0;
}

int tmpl_dep_parse(enum tmpl_dep_kind kind, const char *arg, struct tmpl_dep *dep, struct err *e)
{
    size_t n = strlen(arg), len;
    const char *s = arg;
    int rc = 0;

    *dep = (struct tmpl_dep){.kind = kind};
    if (n > DEP_MAX_ARG)
        return err_set(e, "%s: argument longer than %d bytes", kind_func(kind), DEP_MAX_ARG);
    if (kind == TMPL_DEP_FILE)
        return parse_file(arg, n, dep, e);
    /* a key may hold "~" and "|"; only "?" and "@" end it, as in consul-template */
    len = strcspn(arg, kind == TMPL_DEP_KEY || kind == TMPL_DEP_KEY_LIST ? "?@" : "?@~|");
    switch (kind) {
    case TMPL_DEP_SERVICE:
        rc = parse_service(arg, s, len, dep, e);
        break;
    case TMPL_DEP_KEY:
    case TMPL_DEP_KEY_LIST:
        while (len && *s == '/')
            s++, len--;
        if (kind == TMPL_DEP_KEY && len == 0)
            rc = err_set(e, "key \"%s\": empty key", arg);
        dep->name = xstrndup(s, len);
        break;
    case TMPL_DEP_NODE:
        if (len && !all_of(s, len, "_.-"))
            rc = err_set(e, "node \"%s\": invalid format", arg);
        dep->name = xstrndup(s, len);
        break;
    default:
        if (len)
            rc = err_set(e, "%s \"%s\": invalid format", kind_func(kind), arg);
        dep->name = xstrdup("");
        break;
    }
    if (rc == 0)
        rc = parse_tail(kind, arg, s + len, dep, e);
    if (rc < 0)
        tmpl_dep_clear(dep);
    else
        make_id(dep);
    return rc;
}

void tmpl_dep_copy(struct tmpl_dep *dst, const struct tmpl_dep *src)
{
    *dst = *src;
    dst->id = xstrdup(src->id);
    dst->name = xstrdup(src->name);
    dst->tag = src->tag ? xstrdup(src->tag) : NULL;
    dst->dc = src->dc ? xstrdup(src->dc) : NULL;
    dst->query = src->query ? xstrdup(src->query) : NULL;
    dst->near = src->near ? xstrdup(src->near) : NULL;
}

void tmpl_dep_target(const struct tmpl_dep *dep, struct buf *out)
{
    static const char *const path[] = {
        "/v1/health/service/", "/v1/catalog/services", "/v1/kv/",        "/v1/kv/",
        "/v1/catalog/node/",   "/v1/catalog/nodes",    "/v1/agent/self", "/v1/catalog/datacenters"};
    char sep = '?';

    if (MESH_BUG_ON(dep->kind >= ARRAY_LEN(path)))
        return;

    buf_append_cstr(out, path[dep->kind]);
    if (dep->kind == TMPL_DEP_SERVICE || dep->kind == TMPL_DEP_KEY ||
        dep->kind == TMPL_DEP_KEY_LIST || dep->kind == TMPL_DEP_NODE)
        url_encode(out, str_from(dep->name), true);
    if (dep->kind == TMPL_DEP_KEY_LIST) {
        buf_append_cstr(out, "?recurse=");
        sep = '&';
    }
    if (dep->kind == TMPL_DEP_SERVICE && dep->health == TMPL_HEALTH_PASSING) {
        buf_append_cstr(out, "?passing=1");
        sep = '&';
    }
    if (dep->tag) {
        buf_printf(out, "%ctag=", sep);
        url_encode(out, str_from(dep->tag), false);
        sep = '&';
    }
    if (dep->dc) {
        buf_printf(out, "%cdc=", sep);
        url_encode(out, str_from(dep->dc), false);
        sep = '&';
    }
    if (dep->query) { /* only word characters and "-" besides its "=" and "&" */
        buf_printf(out, "%c%s", sep, dep->query);
        sep = '&';
    }
    if (dep->near) {
        buf_printf(out, "%cnear=", sep);
        url_encode(out, str_from(dep->near), false);
    }
}

/* ---- answers ----------------------------------------------------------------------------- */

static json_t *str_or_empty(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_incref((json_t *)v) : json_string("");
}

static json_t *obj_or_empty(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_object(v) ? json_incref((json_t *)v) : json_object();
}

static json_t *int_or_zero(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return json_integer(json_is_integer(v) ? json_integer_value(v) : 0);
}

/* Go's HealthChecks.AggregatedStatus: maintenance, then critical, warning, passing. */
static const char *aggregate(const json_t *checks)
{
    bool critical = false, warning = false, maint = false;
    size_t i;
    json_t *c;

    json_array_foreach(checks, i, c)
    {
        const char *id = json_string_value(json_object_get(c, "CheckID"));
        const char *st = json_string_value(json_object_get(c, "Status"));
        if (id &&
            (strcmp(id, "_node_maintenance") == 0 || strncmp(id, "_service_maintenance:", 21) == 0))
            maint = true;
        else if (st && strcmp(st, "critical") == 0)
            critical = true;
        else if (st && strcmp(st, "warning") == 0)
            warning = true;
        else if (!st || strcmp(st, "passing") != 0)
            return "";
    }
    return maint ? "maintenance" : critical ? "critical" : warning ? "warning" : "passing";
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

/* A copy of a string array, sorted. */
static json_t *sorted_strings(const json_t *arr)
{
    size_t n = 0, i;
    json_t *x, *out = json_array();
    json_t **v = xcalloc(json_array_size(arr) + 1, sizeof(*v));

    json_array_foreach(arr, i, x) if (json_is_string(x)) v[n++] = x;
    qsort(v, n, sizeof(*v), cmp_str);
    for (i = 0; i < n; i++)
        json_array_append(out, v[i]);
    free(v);
    return out;
}

/* One /v1/health/service entry as consul-template's HealthService. */
static json_t *health_service(const json_t *entry)
{
    const json_t *node = json_object_get(entry, "Node"), *svc = json_object_get(entry, "Service");
    const json_t *checks = json_object_get(entry, "Checks");
    json_t *o = json_object(), *addr = str_or_empty(svc, "Address");

    if (json_string_length(addr) == 0) {
        json_decref(addr);
        addr = str_or_empty(node, "Address");
    }
    json_object_set_new(o, "Node", str_or_empty(node, "Node"));
    json_object_set_new(o, "NodeID", str_or_empty(node, "ID"));
    json_object_set_new(o, "NodeAddress", str_or_empty(node, "Address"));
    json_object_set_new(o, "NodeDatacenter", str_or_empty(node, "Datacenter"));
    json_object_set_new(o, "NodeTaggedAddresses", obj_or_empty(node, "TaggedAddresses"));
    json_object_set_new(o, "NodeMeta", obj_or_empty(node, "Meta"));
    json_object_set_new(o, "ServiceMeta", obj_or_empty(svc, "Meta"));
    json_object_set_new(o, "Address", addr);
    json_object_set_new(o, "ServiceTaggedAddresses", obj_or_empty(svc, "TaggedAddresses"));
    json_object_set_new(o, "ID", str_or_empty(svc, "ID"));
    json_object_set_new(o, "Name", str_or_empty(svc, "Service"));
    json_object_set_new(o, "Kind", str_or_empty(svc, "Kind"));
    json_object_set_new(o, "Tags", sorted_strings(json_object_get(svc, "Tags")));
    json_object_set_new(o, "Checks",
                        json_is_array(checks) ? json_incref((json_t *)checks) : json_array());
    json_object_set_new(o, "Status", json_string(aggregate(checks)));
    json_object_set_new(o, "Port", int_or_zero(svc, "Port"));
    json_object_set_new(o, "Weights", obj_or_empty(svc, "Weights"));
    json_object_set_new(o, "Namespace", str_or_empty(svc, "Namespace"));
    return o;
}

struct sort_keys {
    const char *k1, *k2;
};

static int cmp_objects(const void *a, const void *b, void *arg)
{
    const struct sort_keys *keys = arg;
    const char *sort_key1 = keys->k1, *sort_key2 = keys->k2;
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    const char *x1 = json_string_value(json_object_get(x, sort_key1));
    const char *y1 = json_string_value(json_object_get(y, sort_key1));
    int c = strcmp(x1 ? x1 : "", y1 ? y1 : "");
    if (c || !sort_key2)
        return c;
    const char *x2 = json_string_value(json_object_get(x, sort_key2));
    const char *y2 = json_string_value(json_object_get(y, sort_key2));
    return strcmp(x2 ? x2 : "", y2 ? y2 : "");
}

/* Sorts an array of objects in place by one or two string members (a stable-enough qsort:
 * ties on both keys are the same instance). */
static void sort_objects(json_t *arr, const char *k1, const char *k2)
{
    size_t n = json_array_size(arr);
    json_t **v = xcalloc(n + 1, sizeof(*v));

    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(arr, i));
    struct sort_keys keys = {k1, k2};
    qsort_r(v, n, sizeof(*v), cmp_objects, &keys);
    json_array_clear(arr);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, v[i]);
    free(v);
}

static json_t *decode_services(const struct tmpl_dep *dep, const json_t *root)
{
    json_t *out = json_array(), *entry;
    size_t i;

    json_array_foreach(root, i, entry)
    {
        json_t *s = health_service(entry);
        const char *st = json_string_value(json_object_get(s, "Status"));
        bool keep = dep->health == TMPL_HEALTH_PASSING || dep->health == TMPL_HEALTH_ANY;
        for (size_t k = 0; !keep && k < ARRAY_LEN(health_names); k++)
            keep = (dep->health & (1u << k)) && strcmp(st, health_names[k]) == 0;
        if (keep)
            json_array_append(out, s);
        json_decref(s);
    }
    if (!dep->near) /* with near, the registry's order by round-trip time stays */
        sort_objects(out, "Node", "ID");
    return out;
}

static json_t *decode_catalog(const json_t *root)
{
    json_t *out = json_array(), *tags;
    const char *name;

    json_object_foreach((json_t *)root, name, tags)
    {
        json_t *o = json_object();
        json_object_set_new(o, "Name", json_string(name));
        json_object_set_new(o, "Tags", sorted_strings(tags));
        json_array_append_new(out, o);
    }
    sort_objects(out, "Name", NULL);
    return out;
}

static json_t *kv_value(const json_t *pair)
{
    const char *v = json_string_value(json_object_get(pair, "Value"));
    size_t n = 0;
    unsigned char *raw = v ? base64_decode(v, &n) : NULL;
    json_t *s = json_stringn_nocheck(raw ? (const char *)raw : "", raw ? n : 0);
    free(raw);
    return s;
}

static json_t *decode_pairs(const json_t *root)
{
    json_t *out = json_array(), *p;
    size_t i;
    static const char *const ints[] = {"CreateIndex", "ModifyIndex", "LockIndex", "Flags"};

    json_array_foreach(root, i, p)
    {
        json_t *o = json_object();
        json_object_set_new(o, "Key", str_or_empty(p, "Key"));
        json_object_set_new(o, "Path", str_or_empty(p, "Key"));
        json_object_set_new(o, "Value", kv_value(p));
        for (size_t k = 0; k < ARRAY_LEN(ints); k++)
            json_object_set_new(o, ints[k], int_or_zero(p, ints[k]));
        json_object_set_new(o, "Session", str_or_empty(p, "Session"));
        json_array_append_new(out, o);
    }
    return out;
}

static json_t *node_info(const json_t *n)
{
    static const char *const strs[] = {"ID", "Node", "Address", "Datacenter"};
    json_t *o = json_object();

    for (size_t k = 0; k < ARRAY_LEN(strs); k++)
        json_object_set_new(o, strs[k], str_or_empty(n, strs[k]));
    json_object_set_new(o, "TaggedAddresses", obj_or_empty(n, "TaggedAddresses"));
    json_object_set_new(o, "Meta", obj_or_empty(n, "Meta"));
    return o;
}

static json_t *decode_node(const json_t *root)
{
    json_t *o = json_object(), *svcs = json_array(), *s;
    const char *id;

    json_object_set_new(o, "Node", node_info(json_object_get(root, "Node")));
    json_object_foreach(json_object_get(root, "Services"), id, s)
    {
        json_t *x = json_object();
        json_object_set_new(x, "ID", str_or_empty(s, "ID"));
        json_object_set_new(x, "Service", str_or_empty(s, "Service"));
        json_object_set_new(x, "Tags", sorted_strings(json_object_get(s, "Tags")));
        json_object_set_new(x, "Meta", obj_or_empty(s, "Meta"));
        json_object_set_new(x, "Port", int_or_zero(s, "Port"));
        json_object_set_new(x, "Address", str_or_empty(s, "Address"));
        json_array_append_new(svcs, x);
    }
    sort_objects(svcs, "ID", NULL);
    json_object_set_new(o, "Services", svcs);
    return o;
}

static json_t *decode_root(const struct tmpl_dep *dep, const json_t *root)
{
    size_t i;
    json_t *x, *out;

    switch (dep->kind) {
    case TMPL_DEP_SERVICE:
        return json_is_array(root) ? decode_services(dep, root) : NULL;
    case TMPL_DEP_SERVICES:
        return json_is_object(root) ? decode_catalog(root) : NULL;
    case TMPL_DEP_KEY:
        return json_is_array(root) && json_array_size(root) ? kv_value(json_array_get(root, 0))
                                                            : NULL;
    case TMPL_DEP_KEY_LIST:
        return json_is_array(root) ? decode_pairs(root) : NULL;
    case TMPL_DEP_NODE:
        return json_is_null(root) ? json_null() : json_is_object(root) ? decode_node(root) : NULL;
    case TMPL_DEP_NODES:
        if (!json_is_array(root))
            return NULL;
        out = json_array();
        json_array_foreach(root, i, x) json_array_append_new(out, node_info(x));
        if (!dep->near)
            sort_objects(out, "Node", NULL);
        return out;
    case TMPL_DEP_DATACENTERS:
        if (!json_is_array(root))
            return NULL;
        json_array_foreach(root, i, x) if (!json_is_string(x)) return NULL;
        return json_incref((json_t *)root);
    case TMPL_DEP_FILE: /* read by watch.c, never asked of the registry */
        return NULL;
    default: {
        const json_t *name = json_object_get(json_object_get(root, "Config"), "NodeName");
        return json_is_string(name) ? json_incref((json_t *)name) : NULL;
    }
    }
}

/* Marks the members of obj named in names that hold objects, each with zero as the value of
 * a key missing from it. */
static void mark_members(json_t *obj, const char *const *names, size_t n, const json_t *zero,
                         void (*mark)(void *arg, json_t *map, const json_t *zero), void *arg)
{
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_object_get(obj, names[i]);
        if (json_is_object(m))
            mark(arg, m, zero);
    }
}

void tmpl_dep_map_zeros(const struct tmpl_dep *dep, json_t *data,
                        void (*mark)(void *arg, json_t *map, const json_t *zero), void *arg)
{
    /* health_service's, node_info's and decode_node's services' map[string]string fields, and
     * health_service's ServiceTaggedAddresses, a map[string]api.ServiceAddress (Weights is a
     * struct, not a map) */
    static const char *const service[] = {"NodeTaggedAddresses", "NodeMeta", "ServiceMeta"};
    static const char *const service_addrs[] = {"ServiceTaggedAddresses"};
    static const char *const node[] = {"TaggedAddresses", "Meta"}, *const node_service[] = {"Meta"};
    json_t *str = json_string(""), *addr = json_pack("{s:s, s:i}", "Address", "", "Port", 0);
    size_t i;
    json_t *x;

    switch (dep->kind) {
    case TMPL_DEP_SERVICE:
        json_array_foreach(data, i, x)
        {
            mark_members(x, service, ARRAY_LEN(service), str, mark, arg);
            mark_members(x, service_addrs, ARRAY_LEN(service_addrs), addr, mark, arg);
        }
        break;
    case TMPL_DEP_NODES:
        json_array_foreach(data, i, x) mark_members(x, node, ARRAY_LEN(node), str, mark, arg);
        break;
    case TMPL_DEP_NODE:
        mark_members(json_object_get(data, "Node"), node, ARRAY_LEN(node), str, mark, arg);
        json_array_foreach(json_object_get(data, "Services"), i, x)
            mark_members(x, node_service, ARRAY_LEN(node_service), str, mark, arg);
        break;
    default:
        break;
    }
    json_decref(str);
    json_decref(addr);
}

json_t *tmpl_dep_decode(const struct tmpl_dep *dep, int status, const char *body, size_t len,
                        struct err *e)
{
    json_error_t jerr;

    if (status == 404 && dep->kind == TMPL_DEP_KEY)
        return json_null(); /* the key does not exist (yet) */
    if (status == 404 && dep->kind == TMPL_DEP_KEY_LIST)
        return json_array();
    if (status == 404 && dep->kind == TMPL_DEP_NODE)
        return json_null();
    if (status != 200) {
        char detail[200];
        snprintf(detail, sizeof(detail), "%.*s", (int)(len < 150 ? len : 150), body);
        detail[strcspn(detail, "\r\n")] = '\0';
        err_set(e, "unexpected response code: %d (%s)", status, detail);
        return NULL;
    }
    json_t *root = json_loadb(body, len, JSON_DECODE_ANY, &jerr);
    json_t *out = root ? decode_root(dep, root) : NULL;
    json_decref(root);
    if (!out)
        err_set(e, "%s: the answer is not what %s returns", dep->id, kind_func(dep->kind));
    return out;
}
