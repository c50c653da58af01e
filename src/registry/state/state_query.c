/*
 * Prepared queries in the registry state: each is kept as the definition Consul returns (the
 * API decodes and completes it), under its ID, with its indexes. Journaled as query and
 * query-delete records, so they survive restarts like the catalog.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/alloc.h"
#include "registry/state/state.h"
#include "registry/state/state_journal.h"

static void query_free(struct reg_query *q)
{
    free(q->id);
    free(q->name);
    json_decref(q->def);
    free(q);
}

void reg_query_state_free(struct reg_state *st)
{
    smap_foreach(&st->queries, e) query_free(e->val);
    smap_free(&st->queries);
}

const struct reg_query *reg_query_get(const struct reg_state *st, const char *id)
{
    return smap_get(&st->queries, id);
}

const struct reg_query *reg_query_by_name(const struct reg_state *st, const char *name)
{
    if (!name[0])
        return NULL;
    smap_foreach(&st->queries, e)
    {
        const struct reg_query *q = e->val;
        if (strcasecmp(q->name, name) == 0)
            return q;
    }
    return NULL;
}

const struct reg_query *reg_query_find(const struct reg_state *st, const char *id_or_name)
{
    const struct reg_query *q = reg_query_get(st, id_or_name);
    return q ? q : reg_query_by_name(st, id_or_name);
}

static bool carries(const json_t *ids, const char *id)
{
    size_t i;
    json_t *v;

    json_array_foreach(ids, i, v) if (json_is_string(v) &&
                                      strcmp(json_string_value(v), id) == 0) return true;
    return false;
}

bool reg_query_selects(const struct reg_query *q, const struct reg_service *s)
{
    const json_t *svc = json_object_get(q->def, "Service");
    const json_t *tags = json_object_get(svc, "Tags"),
                 *ignore = json_object_get(svc, "IgnoreCheckIDs");
    bool only_passing = json_is_true(json_object_get(svc, "OnlyPassing"));
    size_t i;
    json_t *t;

    json_array_foreach(tags, i, t)
    {
        const char *tag = json_string_value(t);
        if (!tag || !tag[0])
            continue;
        bool negate = tag[0] == '!';
        const char *want = negate ? tag + 1 : tag;
        if (reg_service_has_tags(s, &want, 1) == negate)
            return false;
    }
    smap_foreach(&s->node->checks, e)
    {
        const struct reg_check *chk = e->val;
        if (carries(ignore, chk->id) || (chk->service_id[0] && strcmp(chk->service_id, s->id) != 0))
            continue;
        if (chk->status == REG_CRITICAL || (only_passing && chk->status == REG_WARNING))
            return false;
    }
    return true;
}

static json_t *journal_query(const struct reg_query *q)
{
    json_t *r = json_pack("{s:s, s:I}", "op", "query", "index", (json_int_t)q->modify_index);
    json_object_set_new(r, "query",
                        json_pack("{s:s, s:s, s:O, s:I, s:I}", "id", q->id, "name", q->name,
                                  "definition", q->def, "create_index", (json_int_t)q->create_index,
                                  "modify_index", (json_int_t)q->modify_index));
    return r;
}

/* Stores a copy at the template's indexes (replay) or at index (a write). */
static struct reg_query *query_store(struct reg_state *st, const char *id, const char *name,
                                     const json_t *def, uint64_t create, uint64_t modify)
{
    struct reg_query *q = smap_get(&st->queries, id);

    if (!q) {
        q = xcalloc(1, sizeof(*q));
        q->id = xstrdup(id);
        q->create_index = create;
        smap_put(&st->queries, id, q);
    } else {
        free(q->name);
        json_decref(q->def);
    }
    q->name = xstrdup(name);
    q->def = json_deep_copy(def);
    q->modify_index = modify;
    return q;
}

uint64_t reg_query_put(struct reg_state *st, const char *id, const char *name, const json_t *def)
{
    uint64_t index = reg_state_next_index(st, REG_TABLE_QUERIES);
    const struct reg_query *q = query_store(st, id, name, def, index, index);

    reg_state_commit(st, REG_TABLE_QUERIES, journal_query(q));
    return index;
}

uint64_t reg_query_delete(struct reg_state *st, const char *id)
{
    struct reg_query *q = smap_del(&st->queries, id);

    if (!q)
        return 0;
    uint64_t index = reg_state_next_index(st, REG_TABLE_QUERIES);
    reg_state_commit(st, REG_TABLE_QUERIES,
                     json_pack("{s:s, s:I, s:s}", "op", "query-delete", "index", (json_int_t)index,
                               "id", q->id));
    query_free(q);
    return index;
}

static uint64_t get_u64(const json_t *o, const char *k)
{
    json_int_t v = json_integer_value(json_object_get(o, k));
    return v > 0 ? (uint64_t)v : 0;
}

int reg_query_apply(struct reg_state *st, const json_t *record)
{
    const char *op = json_string_value(json_object_get(record, "op"));

    if (op && strcmp(op, "query-delete") == 0) {
        const char *id = json_string_value(json_object_get(record, "id"));
        if (!id)
            return -EINVAL;
        struct reg_query *q = smap_del(&st->queries, id);
        if (q)
            query_free(q);
        return 0;
    }
    const json_t *q = json_object_get(record, "query");
    const char *id = json_string_value(json_object_get(q, "id"));
    const char *name = json_string_value(json_object_get(q, "name"));
    const json_t *def = json_object_get(q, "definition");
    if (!id || !name || !json_is_object(def))
        return -EINVAL;
    query_store(st, id, name, def, get_u64(q, "create_index"), get_u64(q, "modify_index"));
    return 0;
}

void reg_query_dump(const struct reg_state *st, reg_journal_cb emit, void *data)
{
    smap_foreach(&st->queries, e)
    {
        json_t *r = journal_query(e->val);
        emit(r, data);
        json_decref(r);
    }
}
