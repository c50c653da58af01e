#include "registry/cluster/coord.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/alloc.h"
#include "registry/cluster/cluster_ctx.h"
#include "registry/settings/settings.h"
#include "registry/state/state.h"

void reg_coords_init(struct reg_coords *cs)
{
    cs->by_node = SMAP_INIT;
}

void reg_coords_free(struct reg_coords *cs)
{
    smap_foreach(&cs->by_node, e)
    {
        struct reg_node_coord *nc = e->val;
        free(nc->node);
        free(nc);
    }
    smap_free(&cs->by_node);
}

void reg_coords_set(struct reg_cluster_ctx *cx, const char *node, const struct vivaldi_coord *c)
{
    if (strcasecmp(node, cx->cfg->node_name) == 0) {
        cx->vivaldi->coord = *c;
        reg_state_touch(cx->state, REG_TABLE_COORDS);
        return;
    }
    char *key = reg_fold(node);
    struct reg_node_coord *nc = smap_get(&cx->coords.by_node, key);

    if (!nc) {
        nc = xcalloc(1, sizeof(*nc));
        nc->node = xstrdup(node);
        smap_put(&cx->coords.by_node, key, nc);
    }
    free(key);
    nc->coord = *c;
    reg_state_touch(cx->state, REG_TABLE_COORDS);
}

const struct vivaldi_coord *reg_coords_get(const struct reg_cluster_ctx *cx, const char *node)
{
    if (strcmp(node, "_agent") == 0 || strcasecmp(node, cx->cfg->node_name) == 0)
        return &cx->vivaldi->coord;
    char *key = reg_fold(node);
    const struct reg_node_coord *nc = smap_get(&cx->coords.by_node, key);
    free(key);
    return nc ? &nc->coord : NULL;
}

json_t *reg_coord_json(const struct vivaldi_coord *c)
{
    json_t *vec = json_array();

    for (int i = 0; i < VIVALDI_DIMENSIONS; i++)
        json_array_append_new(vec, json_real(c->vec[i]));
    return json_pack("{s:o, s:f, s:f, s:f}", "Vec", vec, "Error", c->error, "Adjustment",
                     c->adjustment, "Height", c->height);
}

static int read_number(const json_t *o, const char *k, double *out, struct err *e)
{
    const json_t *v = json_object_get(o, k);

    if (!json_is_number(v))
        return err_set(e, "Coord.%s must be a number", k);
    *out = json_number_value(v);
    return 0;
}

int reg_coord_from_json(const json_t *v, struct vivaldi_coord *c, struct err *e)
{
    const json_t *vec = json_object_get(v, "Vec");

    if (!json_is_object(v) || !json_is_array(vec))
        return err_set(e, "Coord must be an object with Vec, Error, Adjustment and Height");
    if (json_array_size(vec) != VIVALDI_DIMENSIONS)
        return err_set(e, "coordinate is not compatible: %zu dimensions, want %d",
                       json_array_size(vec), VIVALDI_DIMENSIONS);
    for (int i = 0; i < VIVALDI_DIMENSIONS; i++) {
        if (!json_is_number(json_array_get(vec, (size_t)i)))
            return err_set(e, "Coord.Vec must hold numbers");
        c->vec[i] = json_number_value(json_array_get(vec, (size_t)i));
    }
    if (read_number(v, "Error", &c->error, e) < 0 ||
        read_number(v, "Adjustment", &c->adjustment, e) < 0 ||
        read_number(v, "Height", &c->height, e) < 0)
        return -EINVAL;
    if (!vivaldi_coord_valid(c))
        return err_set(e, "coordinate is not valid");
    return 0;
}

struct ranked {
    json_t *entry;
    double rtt; /* seconds; HUGE_VAL without a coordinate */
    size_t pos; /* the entry's place before sorting: ties keep it */
};

static int by_rtt(const void *a, const void *b)
{
    const struct ranked *x = a, *y = b;
    if (x->rtt != y->rtt)
        return x->rtt < y->rtt ? -1 : 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

void reg_coords_sort_near(const struct reg_cluster_ctx *cx, const char *near, json_t *list,
                          const char *(*node_of)(const json_t *entry))
{
    const struct vivaldi_coord *from = near && near[0] ? reg_coords_get(cx, near) : NULL;
    size_t n = json_array_size(list);

    if (!from || n < 2)
        return;
    struct ranked *r = xcalloc(n, sizeof(*r));
    for (size_t i = 0; i < n; i++) {
        const struct vivaldi_coord *to = reg_coords_get(cx, node_of(json_array_get(list, i)));
        r[i] = (struct ranked){json_incref(json_array_get(list, i)),
                               to ? vivaldi_distance(from, to) : HUGE_VAL, i};
    }
    qsort(r, n, sizeof(*r), by_rtt);
    json_array_clear(list);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, r[i].entry);
    free(r);
}
