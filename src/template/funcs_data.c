/*
 * The functions that read the registry (service, services, key, keyOrDefault, keyExists, ls,
 * tree, node, nodes, datacenters) or a local file (file), and byTag, byMeta and byPort, which
 * regroup service lists. Each records its dependency; until the dependency has data it yields an
 * empty value and the render counts as incomplete.
 */
#include <errno.h>
#include <string.h>

#include "lib/alloc.h"
#include "template/tmpl_internal.h"

/* The query argument: a string, optionally joined by more ("service "web" "any"). Free it. */
static char *query_arg(json_t *const *args, size_t nargs)
{
    struct buf b = BUF_INIT;

    for (size_t i = 0; i < nargs; i++) {
        if (i)
            buf_append_cstr(&b, "|");
        buf_append_cstr(&b, json_string_value(args[i]));
    }
    return b.data ? buf_steal(&b) : xstrdup("");
}

static int data_of(struct tmpl_eval *ev, enum tmpl_dep_kind kind, json_t *const *args, size_t nargs,
                   json_t **data)
{
    char *arg = query_arg(args, nargs);
    int rc;

    rc = tmpl_eval_dep(ev, kind, arg, data);
    free(arg);
    return rc;
}

static int fn_service(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    json_t *data;

    if (data_of(ev, TMPL_DEP_SERVICE, args, nargs, &data) < 0)
        return -EINVAL;
    *out = data ? json_incref(data) : json_array();
    return 0;
}

static int fn_services(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    json_t *data;

    if (data_of(ev, TMPL_DEP_SERVICES, args, nargs, &data) < 0)
        return -EINVAL;
    *out = data ? json_incref(data) : json_array();
    return 0;
}

/* datacenters [IGNORE_INACCESSIBLE]: the registry's datacenters. consul-template's flag drops
 * those that do not answer; every datacenter a registry lists answers here, so it changes
 * nothing. */
static int fn_datacenters(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    json_t *data;

    if (nargs && !json_is_boolean(args[0]))
        return tmpl_fail(ev, "wrong type for value; expected bool; got %s",
                         tmpl_type_name(args[0]));
    if (tmpl_eval_dep(ev, TMPL_DEP_DATACENTERS, "", &data) < 0)
        return -EINVAL;
    *out = data ? json_incref(data) : json_array();
    return 0;
}

/* file PATH: the file's content, re-read when it changes (watch.c polls it); "" for an empty
 * PATH, as consul-template gives, without a dependency. */
static int fn_file(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    json_t *data;

    if (json_string_length(args[0]) == 0) {
        *out = json_string("");
        return 0;
    }
    if (tmpl_eval_dep(ev, TMPL_DEP_FILE, json_string_value(args[0]), &data) < 0)
        return -EINVAL;
    *out = json_is_string(data) ? json_incref(data) : json_string("");
    return 0;
}

static int fn_nodes(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    json_t *data;

    if (data_of(ev, TMPL_DEP_NODES, args, nargs, &data) < 0)
        return -EINVAL;
    *out = data ? json_incref(data) : json_array();
    return 0;
}

/* key: the value; a key that does not exist holds the render back until it does. */
static int fn_key(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    json_t *data;

    if (data_of(ev, TMPL_DEP_KEY, args, 1, &data) < 0)
        return -EINVAL;
    if (data && json_is_null(data))
        ev->used->missing++;
    *out = json_is_string(data) ? json_incref(data) : json_string("");
    return 0;
}

static int fn_key_or_default(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    json_t *data;

    if (data_of(ev, TMPL_DEP_KEY, args, 1, &data) < 0)
        return -EINVAL;
    *out = json_incref(json_string_length(data) ? data : args[1]);
    return 0;
}

static int fn_key_exists(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    json_t *data;

    if (data_of(ev, TMPL_DEP_KEY, args, 1, &data) < 0)
        return -EINVAL;
    *out = json_boolean(json_is_string(data));
    return 0;
}

/*
 * ls (top-level pairs only) and tree (every pair but folders), Key relative to the prefix. The
 * safe variants (safeLs, safeTree) hold the render back while the answer has no pair, as a key
 * that does not exist does: a prefix emptied by accident does not empty the file.
 */
static int list_pairs(struct tmpl_eval *ev, json_t *const *args, bool top_only, bool safe,
                      json_t **out)
{
    json_t *data, *p;
    size_t i;

    if (data_of(ev, TMPL_DEP_KEY_LIST, args, 1, &data) < 0)
        return -EINVAL;
    const char *arg = json_string_value(args[0]);
    size_t plen = strcspn(arg, "?@");
    while (plen && *arg == '/')
        arg++, plen--;
    *out = json_array();
    json_array_foreach(data, i, p)
    {
        const char *full = json_string_value(json_object_get(p, "Path"));
        if (!full || strncmp(full, arg, plen) != 0)
            continue;
        const char *rel = full + plen;
        while (*rel == '/')
            rel++;
        size_t flen = strlen(full);
        bool skip = top_only ? (!rel[0] || strchr(rel, '/')) : (flen && full[flen - 1] == '/');
        if (skip)
            continue;
        json_t *o = json_deep_copy(p);
        json_object_set_new(o, "Key", json_string(rel));
        json_array_append_new(*out, o);
    }
    if (safe && data && json_array_size(*out) == 0)
        ev->used->missing++;
    return 0;
}

static int fn_ls(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    return list_pairs(ev, args, true, false, out);
}

static int fn_tree(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    return list_pairs(ev, args, false, false, out);
}

static int fn_safe_ls(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    return list_pairs(ev, args, true, true, out);
}

static int fn_safe_tree(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    return list_pairs(ev, args, false, true, out);
}

/* node [name]: without a name, the node of the agent asked (agent/self first). */
static int fn_node(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    char *arg = query_arg(args, nargs);
    json_t *self = NULL, *data = NULL;
    int rc;

    if (arg[0] == '\0' || arg[0] == '?' || arg[0] == '@') {
        if ((rc = tmpl_eval_dep(ev, TMPL_DEP_SELF, "", &self)) < 0 || !self)
            goto done;
        char *named = xasprintf("%s%s", json_string_value(self), arg);
        free(arg);
        arg = named;
    }
    rc = tmpl_eval_dep(ev, TMPL_DEP_NODE, arg, &data);
done:
    free(arg);
    *out = data && !json_is_null(data) ? json_incref(data) : NULL;
    return rc;
}

/* byTag: map from each tag to the services carrying it (a service with two tags is in both). */
static int fn_by_tag(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    json_t *s, *t;
    size_t i, j;

    if (!json_is_array(args[0]))
        return tmpl_fail(ev, "byTag: wrong argument type %s", tmpl_type_name(args[0]));
    *out = json_object();
    json_array_foreach(args[0], i, s)
    {
        json_array_foreach(json_object_get(s, "Tags"), j, t)
        {
            const char *tag = json_string_value(t);
            json_t *list = tag ? json_object_get(*out, tag) : NULL;
            if (!tag)
                continue;
            if (!list) {
                list = json_array();
                json_object_set_new(*out, tag, list);
            }
            json_array_append(list, s);
        }
    }
    return 0;
}

/*
 * byPort: map from each port to the services listening on it. Go's keys are integers; here they
 * are their decimal text, in text order (toJSON's, which writes Go's int keys as strings), and
 * marked so that range visits them as Go ranges a map[int]: by number, with integer keys.
 */
static int fn_by_port(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    json_t *s;
    size_t i;

    if (args[0] && !json_is_null(args[0]) && !json_is_array(args[0]))
        return tmpl_fail(ev, "byPort: wrong argument type %s", tmpl_type_name(args[0]));
    *out = json_object();
    json_array_foreach(args[0], i, s)
    {
        const json_t *port = json_object_get(s, "Port");
        char key[24];
        if (!json_is_integer(port)) /* a catalog service's port */
            port = json_object_get(s, "ServicePort");
        if (!json_is_integer(port))
            continue;
        snprintf(key, sizeof(key), "%lld", (long long)json_integer_value(port));
        json_t *list = json_object_get(*out, key);
        if (!list) {
            list = json_array();
            json_object_set_new(*out, key, list);
        }
        json_array_append(list, s);
    }
    tmpl_sort_map(*out, false);
    tmpl_mark_int_keyed(ev, *out);
    return 0;
}

/* byMeta KEY SERVICES: map from each value of ServiceMeta[KEY] to the services carrying it
 * (services without the key are grouped under ""). */
static int fn_by_meta(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    json_t *s;
    size_t i;

    *out = json_object();
    json_array_foreach(args[1], i, s)
    {
        const json_t *v =
            json_object_get(json_object_get(s, "ServiceMeta"), json_string_value(args[0]));
        const char *key = json_is_string(v) ? json_string_value(v) : "";
        json_t *list = json_object_get(*out, key);
        if (!list) {
            list = json_array();
            json_object_set_new(*out, key, list);
        }
        json_array_append(list, s);
    }
    return 0;
}

/*
 * byKey PAIRS: map from each key's first segment to a map from the rest of the key to the pair,
 * its Key made that rest (pairs with nothing after the first segment are left out).
 */
static int fn_by_key(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    json_t *p, *group;
    size_t i;
    const char *k;

    *out = json_object();
    json_array_foreach(args[0], i, p)
    {
        const char *key = json_string_value(json_object_get(p, "Key"));
        const char *slash = key ? strchr(key, '/') : NULL;
        if (!slash || !slash[1])
            continue;
        char *top = xstrndup(key, (size_t)(slash - key));
        if (!(group = json_object_get(*out, top))) {
            group = json_object();
            json_object_set_new_nocheck(*out, top, group);
        }
        json_t *copy = json_copy(p);
        json_object_set_new(copy, "Key", json_string_nocheck(slash + 1));
        json_object_set_new_nocheck(group, slash + 1, copy);
        free(top);
    }
    tmpl_sort_map(*out, false);
    json_object_foreach(*out, k, group) tmpl_sort_map(group, false);
    return 0;
}

/*
 * Puts value at key in the nested maps under root, one level per key segment ("a/b" = 1 is
 * {a: {b: 1}}). A segment that already holds a value cannot become a map: consul-template's
 * error, named after fname. A key of more segments than parseJSON's deepest value
 * (JSON_PARSER_MAX_DEPTH) is refused: sorting, printing and freeing the maps recurse per level,
 * and a KV value's map of one key "a/a/a..." would overflow their stack. 0 or -EINVAL.
 */
static int explode_into(struct tmpl_eval *ev, json_t *root, const char *key, json_t *value,
                        const char *fname)
{
    const char *parent = key; /* the key as the level above saw it, for the error */
    const char *slash;
    json_t *m = root;

    for (int depth = 1; (slash = strchr(key, '/')); depth++) {
        if (depth >= JSON_PARSER_MAX_DEPTH)
            return tmpl_fail(ev, "error calling %s: %s: a key of more than %d segments", fname,
                             fname, JSON_PARSER_MAX_DEPTH);
        char *top = xstrndup(key, (size_t)(slash - key));
        json_t *next = json_object_get(m, top);
        if (!next) {
            next = json_object();
            json_object_set_new_nocheck(m, top, next);
        } else if (!json_is_object(next)) {
            struct buf q = BUF_INIT;
            tmpl_quote(&q, parent, strlen(parent));
            buf_append_cstr(&q, ": ");
            tmpl_quote(&q, top, strlen(top));
            buf_append_cstr(&q, " already has value ");
            tmpl_sprintf(&q, "%q", 2, &next, 1);
            int rc = tmpl_fail(ev, "error calling %s: %s: not a map: %s", fname, fname, q.data);
            buf_free(&q);
            free(top);
            return rc;
        }
        free(top);
        m = next;
        parent = key;
        key = slash + 1;
    }
    if (*key)
        json_object_set_nocheck(m, key, value ? value : json_null());
    return 0;
}

/* explode PAIRS: KV pairs as nested maps, their values at the leaves. */
static int fn_explode(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    json_t *p, *root = json_object();
    size_t i;

    json_array_foreach(args[0], i, p)
    {
        const char *key = json_string_value(json_object_get(p, "Key"));
        if (key && explode_into(ev, root, key, json_object_get(p, "Value"), "explode") < 0) {
            json_decref(root);
            return -EINVAL;
        }
    }
    tmpl_sort_map(root, true);
    *out = root;
    return 0;
}

/* explodeMap MAP: a map whose keys are paths as nested maps, keys taken in sorted order. */
static int fn_explode_map(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    json_t *root = json_object();
    size_t n;
    const char **keys;

    if (!json_is_object(args[0]) && !json_is_null(args[0]) && args[0]) {
        json_decref(root);
        return tmpl_fail(ev, "wrong type for value; expected map[string]interface {}; got %s",
                         tmpl_type_name(args[0]));
    }
    keys = json_is_object(args[0]) ? tmpl_sorted_keys(args[0], &n) : NULL;
    for (size_t i = 0; keys && i < n; i++) {
        if (explode_into(ev, root, keys[i], json_object_get(args[0], keys[i]), "explodeMap") < 0) {
            free(keys);
            json_decref(root);
            return -EINVAL;
        }
    }
    free(keys);
    tmpl_sort_map(root, true);
    *out = root;
    return 0;
}

/* mergo's isEmptyValue: Go's zero values and empty containers. */
static bool is_empty(const json_t *v)
{
    return !v || json_is_null(v) || json_is_false(v) ||
           (json_is_integer(v) && json_integer_value(v) == 0) ||
           (json_is_real(v) && json_real_value(v) == 0) ||
           (json_is_string(v) && json_string_length(v) == 0) ||
           (json_is_array(v) && json_array_size(v) == 0) ||
           (json_is_object(v) && json_object_size(v) == 0);
}

/*
 * mergo.Map(dst, src) as consul-template calls it, into dst (a copy the function owns): a key
 * dst lacks, or holds empty, takes src's value; maps on both sides merge key by key, at every
 * depth; anything else (lists too) stays dst's, or, with override, becomes src's, even an
 * empty value (null only with override). Unlike Go, the arguments are left unchanged (mergo
 * writes into dst's map, which the template may read again).
 */
static void merge_into(json_t *dst, const json_t *src, bool override)
{
    const char *k;
    json_t *sv;

    json_object_foreach((json_t *)src, k, sv)
    {
        json_t *dv = json_object_get(dst, k);
        if (json_is_null(sv)) {
            if (override)
                json_object_set_new(dst, k, json_null());
            continue;
        }
        if (json_is_object(sv) && json_is_object(dv)) {
            merge_into(dv, sv, override);
            continue;
        }
        if (override || is_empty(dv))
            json_object_set_new(dst, k, json_deep_copy(sv));
    }
}

static int merge_maps(struct tmpl_eval *ev, json_t *const *args, bool override, json_t **out)
{
    for (size_t i = 0; i < 2; i++)
        if (!json_is_object(args[i]))
            return tmpl_fail(ev, "wrong type for value; expected map[string]interface {}; got %s",
                             tmpl_type_name(args[i]));
    *out = json_deep_copy(args[0]);
    merge_into(*out, args[1], override);
    tmpl_sort_map(*out, true);
    return 0;
}

/* mergeMap DST SRC: DST's values win; mergeMapWithOverride DST SRC: SRC's win. */
static int fn_merge_map(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    return merge_maps(ev, args, false, out);
}

static int fn_merge_map_override(struct tmpl_eval *ev, json_t *const *args, size_t nargs,
                                 json_t **out)
{
    return merge_maps(ev, args, true, out);
}

static const struct tmpl_func data_funcs[] = {
    {"service", fn_service, 1, 2, "s"},
    {"services", fn_services, 0, 1, "s"},
    {"key", fn_key, 1, 1, "s"},
    {"keyOrDefault", fn_key_or_default, 2, 2, "s"},
    {"keyExists", fn_key_exists, 1, 1, "s"},
    {"ls", fn_ls, 1, 1, "s"},
    {"tree", fn_tree, 1, 1, "s"},
    {"safeLs", fn_safe_ls, 1, 1, "s"},
    {"safeTree", fn_safe_tree, 1, 1, "s"},
    {"node", fn_node, 0, 1, "s"},
    {"nodes", fn_nodes, 0, 1, "s"},
    {"datacenters", fn_datacenters, 0, 1, NULL}, /* a bool, checked by the function */
    {"file", fn_file, 1, 1, "s"},
    {"byTag", fn_by_tag, 1, 1, NULL}, /* reports its own type error, as consul-template does */
    {"byMeta", fn_by_meta, 2, 2, "sl"},
    {"byPort", fn_by_port, 1, 1, NULL}, /* reports its own type error, as consul-template does */
    {"byKey", fn_by_key, 1, 1, "l"},
    {"explode", fn_explode, 1, 1, "l"},
    {"explodeMap", fn_explode_map, 1, 1, NULL}, /* a map, checked by the function */
    {"mergeMap", fn_merge_map, 2, 2, NULL},     /* maps, checked by the function */
    {"mergeMapWithOverride", fn_merge_map_override, 2, 2, NULL},
};

const struct tmpl_func *tmpl_data_func_find(const char *name)
{
    return tmpl_func_lookup(data_funcs, ARRAY_LEN(data_funcs), name);
}
