/*
 * consul-template's scratch: a map that lives for one render, written and read through
 * methods, {{ scratch.Set "k" v }}, {{ scratch.Get "k" }}, {{ scratch.MapSet "k" "mk" v }}. The
 * parser accepts scratch only followed by one of these methods; each is called like a
 * function, and the values live in ev->scratch.
 */
#include <errno.h>
#include <string.h>

#include "lib/alloc.h"
#include "template/tmpl_internal.h"

static json_t *values(struct tmpl_eval *ev)
{
    if (!ev->scratch)
        ev->scratch = json_object();
    return ev->scratch;
}

static int scratch_key(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    *out = json_boolean(json_object_get(values(ev), json_string_value(args[0])) != NULL);
    return 0;
}

static int scratch_get(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    json_t *v = json_object_get(values(ev), json_string_value(args[0]));

    *out = json_is_null(v) ? NULL : json_incref(v);
    return 0;
}

/* Set and SetX (only when the key has no value yet); both print nothing. */
static int scratch_set(struct tmpl_eval *ev, json_t *const *args, bool replace, json_t **out)
{
    const char *k = json_string_value(args[0]);

    if (replace || !json_object_get(values(ev), k))
        json_object_set_nocheck(values(ev), k, args[1] ? args[1] : json_null());
    *out = json_string("");
    return 0;
}

static int scratch_set_fn(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    return scratch_set(ev, args, true, out);
}

static int scratch_set_x(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    return scratch_set(ev, args, false, out);
}

/* MapSet K MK V and MapSetX: the map at K (made when K has no value) gets MK = V. */
static int scratch_map_set(struct tmpl_eval *ev, json_t *const *args, const char *name,
                           bool replace, json_t **out)
{
    const char *k = json_string_value(args[0]), *mk = json_string_value(args[1]);
    json_t *map = json_object_get(values(ev), k);

    if (!map) {
        map = json_object();
        json_object_set_new_nocheck(values(ev), k, map);
    }
    if (!json_is_object(map)) {
        struct buf q = BUF_INIT;
        tmpl_quote(&q, k, strlen(k));
        int rc = tmpl_fail(ev, "error calling %s: %s is not a map", name, q.data);
        buf_free(&q);
        return rc;
    }
    if (replace || !json_object_get(map, mk)) {
        json_object_set_nocheck(map, mk, args[2] ? args[2] : json_null());
        tmpl_sort_map(map, false); /* a Go map: written with its keys sorted */
    }
    *out = json_string("");
    return 0;
}

static int scratch_map_set_fn(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    return scratch_map_set(ev, args, "MapSet", true, out);
}

static int scratch_map_set_x(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    return scratch_map_set(ev, args, "MapSetX", false, out);
}

/* MapValues K: the values of the map at K in key order; nil when K holds no map. */
static int scratch_map_values(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    json_t *map = json_object_get(values(ev), json_string_value(args[0]));
    size_t n;

    *out = NULL;
    if (!json_is_object(map))
        return 0;
    const char **keys = tmpl_sorted_keys(map, &n);
    *out = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append(*out, json_object_get(map, keys[i]));
    free(keys);
    return 0;
}

static const struct tmpl_func scratch_methods[] = {
    {"Key", scratch_key, 1, 1, "s"},
    {"Get", scratch_get, 1, 1, "s"},
    {"Set", scratch_set_fn, 2, 2, "s."},
    {"SetX", scratch_set_x, 2, 2, "s."},
    {"MapSet", scratch_map_set_fn, 3, 3, "ss."},
    {"MapSetX", scratch_map_set_x, 3, 3, "ss."},
    {"MapValues", scratch_map_values, 1, 1, "s"},
};

const struct tmpl_func *tmpl_scratch_method_find(const char *name)
{
    return tmpl_func_lookup(scratch_methods, ARRAY_LEN(scratch_methods), name);
}
