#include "registry/state/state_index.h"

#include <stdlib.h>

#include "lib/alloc.h"
#include "lib/bug.h"

/* One service name's entry: its index and how many instances carry the name. */
struct name_index {
    uint64_t index;
    size_t instances;
};

static void index_raise(uint64_t *at, uint64_t index)
{
    if (index > *at)
        *at = index;
}

static struct name_index *name_entry(const struct reg_state *st, const char *name)
{
    char *key = reg_fold(name);
    struct name_index *e = smap_get(&st->service_index, key);
    free(key);
    return e;
}

uint64_t reg_service_index(const struct reg_state *st, const char *name)
{
    const struct name_index *e = name_entry(st, name);
    uint64_t floor = st->service_gone_index ? st->service_gone_index : 1;

    return e && e->index > floor ? e->index : floor;
}

uint64_t reg_node_index(const struct reg_state *st, const char *name)
{
    const struct reg_node *n = reg_node_get(st, name);
    uint64_t floor = st->node_gone_index ? st->node_gone_index : 1;

    return n && n->cover_index > floor ? n->cover_index : floor;
}

void reg_index_service(struct reg_state *st, struct reg_node *node, const char *name,
                       uint64_t index)
{
    struct name_index *e = name_entry(st, name);

    index_raise(&node->cover_index, index);
    if (e)
        index_raise(&e->index, index);
}

void reg_index_node(struct reg_state *st, struct reg_node *node, uint64_t index)
{
    index_raise(&node->cover_index, index);
    index_raise(&st->nodes_index, index);
    smap_foreach(&node->services, e)
    {
        const struct reg_service *s = e->val;
        reg_index_service(st, node, s->name, index);
    }
}

void reg_index_check(struct reg_state *st, struct reg_node *node, const char *service_id,
                     uint64_t index)
{
    index_raise(&st->checks_index, index);
    if (!service_id || !service_id[0]) {
        index_raise(&node->cover_index, index);
        smap_foreach(&node->services, e)
        {
            const struct reg_service *s = e->val;
            reg_index_service(st, node, s->name, index);
        }
        return;
    }
    const struct reg_service *s = reg_service_get(node, service_id);
    index_raise(&node->cover_index, index);
    if (s)
        reg_index_service(st, node, s->name, index);
}

void reg_index_instance_add(struct reg_state *st, const char *name)
{
    char *key = reg_fold(name);
    struct name_index *e = smap_get(&st->service_index, key);

    if (!e) {
        e = xcalloc(1, sizeof(*e));
        smap_put(&st->service_index, key, e);
    }
    e->instances++;
    free(key);
}

void reg_index_instance_drop(struct reg_state *st, const char *name, uint64_t index)
{
    char *key = reg_fold(name);
    struct name_index *e = smap_get(&st->service_index, key);

    index_raise(&st->services_index, index);
    if (!MESH_BUG_ON(!e || e->instances == 0)) {
        index_raise(&e->index, index);
        if (--e->instances == 0) {
            /* The name is extinct: its index lives on as the floor of absent names. */
            index_raise(&st->service_gone_index, e->index);
            free(smap_del(&st->service_index, key));
        }
    }
    free(key);
}

void reg_index_node_gone(struct reg_state *st, struct reg_node *node, uint64_t index)
{
    index_raise(&st->nodes_index, index);
    if (node->checks.n)
        index_raise(&st->checks_index, index);
    smap_foreach(&node->services, e)
    {
        const struct reg_service *s = e->val;
        reg_index_instance_drop(st, s->name, index);
    }
    index_raise(&st->node_gone_index, index);
}

void reg_index_free(struct reg_state *st)
{
    smap_foreach(&st->service_index, e) free(e->val);
    smap_free(&st->service_index);
}

void reg_index_dump(const struct reg_state *st, json_t *record)
{
    json_t *names = json_object();

    smap_foreach(&st->service_index, e)
    {
        const struct name_index *ni = e->val;
        json_object_set_new(names, e->key, json_integer((json_int_t)ni->index));
    }
    json_object_set_new(record, "service_names", names);
    json_object_set_new(record, "service_gone", json_integer((json_int_t)st->service_gone_index));
    json_object_set_new(record, "node_gone", json_integer((json_int_t)st->node_gone_index));
    json_object_set_new(record, "nodes", json_integer((json_int_t)st->nodes_index));
    json_object_set_new(record, "services", json_integer((json_int_t)st->services_index));
    json_object_set_new(record, "checks", json_integer((json_int_t)st->checks_index));
}

static uint64_t get_index(const json_t *o, const char *k)
{
    json_int_t v = json_integer_value(json_object_get(o, k));
    return v > 0 ? (uint64_t)v : 0;
}

void reg_index_apply(struct reg_state *st, const json_t *record)
{
    const char *name;
    json_t *v;

    /* Names come after their instances in a snapshot, so each entry exists; an unknown name
     * (a journal older than this record's fields) is skipped. */
    json_object_foreach((json_t *)json_object_get(record, "service_names"), name, v)
    {
        struct name_index *e = smap_get(&st->service_index, name);
        if (e && json_integer_value(v) > 0)
            index_raise(&e->index, (uint64_t)json_integer_value(v));
    }
    index_raise(&st->service_gone_index, get_index(record, "service_gone"));
    index_raise(&st->node_gone_index, get_index(record, "node_gone"));
    index_raise(&st->nodes_index, get_index(record, "nodes"));
    index_raise(&st->services_index, get_index(record, "services"));
    index_raise(&st->checks_index, get_index(record, "checks"));
}
