/* Journal records: encoding entities for persistence, and replaying them. */
#include "registry/state/state_journal.h"
#include "registry/state/state_index.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/base64.h"

static json_t *record(const char *op, uint64_t index)
{
    return json_pack("{s:s, s:I}", "op", op, "index", (json_int_t)index);
}

static json_t *json_or_null(const json_t *v)
{
    return v ? json_deep_copy(v) : json_null();
}

json_t *reg_journal_node(const struct reg_node *n, uint64_t index)
{
    json_t *r = record("node", index);
    json_object_set_new(r, "node",
                        json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:I, s:I}", "name", n->name, "id",
                                  n->id, "address", n->address, "datacenter", n->datacenter,
                                  "tagged_addresses", json_deep_copy(n->tagged_addresses), "meta",
                                  json_deep_copy(n->meta), "create_index",
                                  (json_int_t)n->create_index, "modify_index",
                                  (json_int_t)n->modify_index));
    json_object_set_new(json_object_get(r, "node"), "cover_index",
                        json_integer((json_int_t)n->cover_index));
    return r;
}

json_t *reg_journal_node_delete(const char *name, uint64_t index)
{
    json_t *r = record("node-delete", index);
    json_object_set_new(r, "node", json_string(name));
    return r;
}

json_t *reg_journal_service(const struct reg_service *s, uint64_t index)
{
    json_t *r = record("service", index);
    json_t *tags = json_array();

    for (size_t i = 0; i < s->ntags; i++)
        json_array_append_new(tags, json_string(s->tags[i]));
    json_object_set_new(r, "node", json_string(s->node->name));
    json_object_set_new(
        r, "service",
        json_pack("{s:s, s:s, s:o, s:s, s:i, s:o, s:o, s:i, s:i, s:b, s:s, s:o, s:o, s:I, s:I}",
                  "id", s->id, "name", s->name, "tags", tags, "address", s->address, "port",
                  s->port, "meta", json_deep_copy(s->meta), "tagged_addresses",
                  json_or_null(s->tagged_addresses), "weight_passing", s->weight_passing,
                  "weight_warning", s->weight_warning, "enable_tag_override",
                  s->enable_tag_override, "kind", s->kind, "proxy", json_or_null(s->proxy),
                  "connect", json_or_null(s->connect), "create_index", (json_int_t)s->create_index,
                  "modify_index", (json_int_t)s->modify_index));
    return r;
}

static json_t *delete_record(const char *op, const char *node, const char *id, uint64_t index)
{
    json_t *r = record(op, index);
    json_object_set_new(r, "node", json_string(node));
    json_object_set_new(r, "id", json_string(id));
    return r;
}

json_t *reg_journal_service_delete(const char *node, const char *id, uint64_t index)
{
    return delete_record("service-delete", node, id, index);
}

json_t *reg_journal_check(const struct reg_check *c, uint64_t index)
{
    json_t *r = record("check", index);
    json_object_set_new(r, "node", json_string(c->node->name));
    json_object_set_new(
        r, "check",
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:I, s:I, s:I, s:I}", "id", c->id,
                  "name", c->name, "status", reg_health_name(c->status), "notes", c->notes,
                  "output", c->output, "service_id", c->service_id, "type", c->type, "definition",
                  json_deep_copy(c->definition), "interval_ns", (json_int_t)c->interval_ns,
                  "timeout_ns", (json_int_t)c->timeout_ns, "create_index",
                  (json_int_t)c->create_index, "modify_index", (json_int_t)c->modify_index));
    return r;
}

json_t *reg_journal_check_delete(const char *node, const char *id, uint64_t index)
{
    return delete_record("check-delete", node, id, index);
}

json_t *reg_journal_kv(const struct reg_kv *kv, uint64_t index)
{
    json_t *r = record("kv", index);
    char *b64 = base64_encode(kv->value, kv->value_len);

    json_object_set_new(
        r, "kv",
        json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "key", kv->key, "value", b64, "flags",
                  (json_int_t)kv->flags, "lock_index", (json_int_t)kv->lock_index, "create_index",
                  (json_int_t)kv->create_index, "modify_index", (json_int_t)kv->modify_index));
    if (kv->session)
        json_object_set_new(json_object_get(r, "kv"), "session", json_string(kv->session));
    free(b64);
    return r;
}

json_t *reg_journal_kv_delete(const char *key, bool tree, uint64_t index)
{
    json_t *r = record(tree ? "kv-delete-tree" : "kv-delete", index);
    json_object_set_new(r, "key", json_string(key));
    return r;
}

static json_t *string_array(char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

json_t *reg_journal_session(const struct reg_session *s, uint64_t index)
{
    json_t *r = record("session", index);
    json_object_set_new(
        r, "session",
        json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:I, s:o, s:o, s:I, s:I}", "id", s->id, "name",
                  s->name, "node", s->node, "lock_delay_ns", (json_int_t)s->lock_delay_ns,
                  "behavior", s->behavior == REG_SESSION_DELETE ? "delete" : "release", "ttl",
                  s->ttl, "ttl_ns", (json_int_t)s->ttl_ns, "node_checks",
                  string_array(s->node_checks, s->n_node_checks), "service_checks",
                  string_array(s->service_checks, s->n_service_checks), "create_index",
                  (json_int_t)s->create_index, "modify_index", (json_int_t)s->modify_index));
    return r;
}

json_t *reg_journal_session_delete(const char *id, uint64_t index)
{
    json_t *r = record("session-delete", index);
    json_object_set_new(r, "id", json_string(id));
    return r;
}

json_t *reg_journal_batch(json_t *records)
{
    const json_t *last = json_array_get(records, json_array_size(records) - 1);
    json_t *r = record("batch", (uint64_t)json_integer_value(json_object_get(last, "index")));
    json_object_set_new(r, "records", records);
    return r;
}

/* ---- replay ------------------------------------------------------------------------------ */

static const char *get_str(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static uint64_t get_u64(const json_t *o, const char *k)
{
    return (uint64_t)json_integer_value(json_object_get(o, k));
}

static json_t *get_obj(const json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_object(v) ? v : NULL;
}

static int apply_node(struct reg_state *st, const json_t *n, uint64_t index)
{
    struct reg_node_fields f = {
        .name = get_str(n, "name"),
        .id = get_str(n, "id"),
        .address = get_str(n, "address"),
        .datacenter = get_str(n, "datacenter"),
        .tagged_addresses = get_obj(n, "tagged_addresses"),
        .meta = get_obj(n, "meta"),
    };
    bool changed;

    if (!f.name[0])
        return -EINVAL;
    struct reg_node *node = reg_state_node_put(st, &f, index, &changed);
    node->create_index = get_u64(n, "create_index");
    node->modify_index = get_u64(n, "modify_index");
    if (get_u64(n, "cover_index") > node->cover_index)
        node->cover_index = get_u64(n, "cover_index");
    return 0;
}

static int apply_service(struct reg_state *st, const json_t *r, uint64_t index)
{
    struct reg_node *node = reg_node_get(st, get_str(r, "node"));
    const json_t *s = get_obj(r, "service");
    const json_t *tags = json_object_get(s, "tags");

    if (!node || !s)
        return -EINVAL;
    struct reg_service t = {
        .id = (char *)get_str(s, "id"),
        .name = (char *)get_str(s, "name"),
        .ntags = json_array_size(tags),
        .address = (char *)get_str(s, "address"),
        .port = (int)get_u64(s, "port"),
        .meta = get_obj(s, "meta"),
        .tagged_addresses = get_obj(s, "tagged_addresses"),
        .weight_passing = (int)get_u64(s, "weight_passing"),
        .weight_warning = (int)get_u64(s, "weight_warning"),
        .enable_tag_override = json_is_true(json_object_get(s, "enable_tag_override")),
        .kind = (char *)get_str(s, "kind"),
        .proxy = get_obj(s, "proxy"),
        .connect = get_obj(s, "connect"),
        .create_index = get_u64(s, "create_index"),
    };
    t.tags = xcalloc(t.ntags ? t.ntags : 1, sizeof(char *));
    for (size_t i = 0; i < t.ntags; i++)
        t.tags[i] = (char *)json_string_value(json_array_get(tags, i));
    reg_state_service_put(st, node, &t, get_u64(s, "modify_index"));
    free(t.tags);
    (void)index;
    return 0;
}

static int apply_check(struct reg_state *st, const json_t *r)
{
    struct reg_node *node = reg_node_get(st, get_str(r, "node"));
    const json_t *c = get_obj(r, "check");
    enum reg_health status;

    if (!node || !c || !reg_health_parse(get_str(c, "status"), &status))
        return -EINVAL;
    struct reg_check t = {
        .id = (char *)get_str(c, "id"),
        .name = (char *)get_str(c, "name"),
        .status = status,
        .notes = (char *)get_str(c, "notes"),
        .output = (char *)get_str(c, "output"),
        .service_id = (char *)get_str(c, "service_id"),
        .type = (char *)get_str(c, "type"),
        .definition = get_obj(c, "definition"),
        .interval_ns = (int64_t)get_u64(c, "interval_ns"),
        .timeout_ns = (int64_t)get_u64(c, "timeout_ns"),
        .create_index = get_u64(c, "create_index"),
    };
    reg_state_check_put(st, node, &t, get_u64(c, "modify_index"));
    return 0;
}

static int apply_kv(struct reg_state *st, const json_t *r)
{
    const json_t *kv = get_obj(r, "kv");
    size_t len;

    if (!kv)
        return -EINVAL;
    unsigned char *value = base64_decode(get_str(kv, "value"), &len);
    if (!value)
        return -EINVAL;
    const char *session = json_string_value(json_object_get(kv, "session"));
    struct reg_kv t = {
        .key = (char *)get_str(kv, "key"),
        .value = value,
        .value_len = len,
        .flags = get_u64(kv, "flags"),
        .session = (char *)session,
        .lock_index = get_u64(kv, "lock_index"),
        .create_index = get_u64(kv, "create_index"),
        .modify_index = get_u64(kv, "modify_index"),
    };
    reg_state_kv_put(st, &t);
    free(value);
    return 0;
}

static char **get_strings(const json_t *o, const char *k, size_t *n)
{
    const json_t *a = json_object_get(o, k);
    char **v = xcalloc(json_array_size(a) + 1, sizeof(char *));

    *n = json_array_size(a);
    for (size_t i = 0; i < *n; i++)
        v[i] = (char *)json_string_value(json_array_get(a, i));
    return v;
}

static int apply_session(struct reg_state *st, const json_t *r)
{
    const json_t *s = get_obj(r, "session");

    if (!s || !get_str(s, "id")[0])
        return -EINVAL;
    struct reg_session t = {
        .id = (char *)get_str(s, "id"),
        .name = (char *)get_str(s, "name"),
        .node = (char *)get_str(s, "node"),
        .lock_delay_ns = (int64_t)get_u64(s, "lock_delay_ns"),
        .behavior = strcmp(get_str(s, "behavior"), "delete") == 0 ? REG_SESSION_DELETE
                                                                  : REG_SESSION_RELEASE,
        .ttl = (char *)get_str(s, "ttl"),
        .ttl_ns = (int64_t)get_u64(s, "ttl_ns"),
        .create_index = get_u64(s, "create_index"),
        .modify_index = get_u64(s, "modify_index"),
    };
    t.node_checks = get_strings(s, "node_checks", &t.n_node_checks);
    t.service_checks = get_strings(s, "service_checks", &t.n_service_checks);
    reg_state_session_put(st, &t);
    free(t.node_checks);
    free(t.service_checks);
    return 0;
}

/* A batch's records in order; a batch holds whole records only, never another batch. */
static int apply_batch(struct reg_state *st, const json_t *r)
{
    const json_t *records = json_object_get(r, "records");
    const json_t *rec;
    size_t i;

    if (!json_is_array(records) || json_array_size(records) == 0)
        return -EINVAL;
    json_array_foreach(records, i, rec)
    {
        if (!json_is_object(rec) || strcmp(get_str(rec, "op"), "batch") == 0)
            return -EINVAL;
        int rc = reg_state_apply(st, rec);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int reg_state_apply(struct reg_state *st, const json_t *r)
{
    const char *op = get_str(r, "op");
    uint64_t index = get_u64(r, "index");
    enum reg_table table = strncmp(op, "kv", 2) == 0 ? REG_TABLE_KV : REG_TABLE_CATALOG;
    int rc = 0;

    if (index == 0)
        return -EINVAL;
    if (strcmp(op, "batch") == 0)
        return apply_batch(st, r);
    if (strncmp(op, "acl-", 4) == 0) {
        table = REG_TABLE_ACL;
        rc = reg_acl_apply(st, r);
    } else if (strcmp(op, "node") == 0) {
        rc = apply_node(st, get_obj(r, "node"), index);
    } else if (strcmp(op, "node-delete") == 0) {
        reg_state_node_remove(st, get_str(r, "node"), index);
    } else if (strcmp(op, "service") == 0) {
        rc = apply_service(st, r, index);
    } else if (strcmp(op, "service-delete") == 0) {
        struct reg_node *n = reg_node_get(st, get_str(r, "node"));
        if (n)
            reg_state_service_remove(st, n, get_str(r, "id"), index);
    } else if (strcmp(op, "check") == 0) {
        rc = apply_check(st, r);
    } else if (strcmp(op, "check-delete") == 0) {
        struct reg_node *n = reg_node_get(st, get_str(r, "node"));
        if (n)
            reg_state_check_remove(st, n, get_str(r, "id"), index);
    } else if (strcmp(op, "kv") == 0) {
        rc = apply_kv(st, r);
    } else if (strcmp(op, "kv-delete") == 0) {
        reg_state_kv_remove(st, get_str(r, "key"), index);
    } else if (strcmp(op, "kv-delete-tree") == 0) {
        reg_state_kv_remove_tree(st, get_str(r, "key"), index);
    } else if (strcmp(op, "session") == 0) {
        table = REG_TABLE_SESSIONS;
        rc = apply_session(st, r);
    } else if (strcmp(op, "session-delete") == 0) {
        table = REG_TABLE_SESSIONS;
        reg_session_free(smap_del(&st->sessions, get_str(r, "id")));
    } else if (strncmp(op, "query", 5) == 0) {
        table = REG_TABLE_QUERIES;
        rc = reg_query_apply(st, r);
    } else if (strcmp(op, "index") == 0) {
        reg_state_advance(st, REG_TABLE_CATALOG, get_u64(r, "catalog"));
        reg_state_advance(st, REG_TABLE_SESSIONS, get_u64(r, "sessions"));
        reg_state_advance(st, REG_TABLE_KV, get_u64(r, "kv"));
        reg_state_advance(st, REG_TABLE_ACL, get_u64(r, "acl"));
        reg_state_advance(st, REG_TABLE_QUERIES, get_u64(r, "queries"));
        if (get_u64(r, "kv_floor") > st->kv_tombstone_floor)
            st->kv_tombstone_floor = get_u64(r, "kv_floor");
        reg_index_apply(st, r);
    } else {
        rc = -EINVAL;
    }
    if (rc == 0 && strcmp(op, "index") == 0)
        st->index = index > st->index ? index : st->index; /* not a write to either table */
    else if (rc == 0)
        reg_state_advance(st, table, index);
    return rc;
}

/* Hands a new record to emit, then drops it. */
static void emit_new(json_t *r, reg_journal_cb emit, void *data)
{
    emit(r, data);
    json_decref(r);
}

void reg_state_dump(const struct reg_state *st, reg_journal_cb emit, void *data)
{
    json_t *r;

    smap_foreach(&st->nodes, e)
    {
        const struct reg_node *n = e->val;
        emit_new(reg_journal_node(n, n->modify_index ? n->modify_index : 1), emit, data);
        smap_foreach(&n->services, se)
        {
            const struct reg_service *s = se->val;
            emit_new(reg_journal_service(s, s->modify_index), emit, data);
        }
        smap_foreach(&n->checks, ce)
        {
            const struct reg_check *c = ce->val;
            emit_new(reg_journal_check(c, c->modify_index), emit, data);
        }
    }
    smap_foreach(&st->kv, e)
    {
        const struct reg_kv *kv = e->val;
        emit_new(reg_journal_kv(kv, kv->modify_index), emit, data);
    }
    reg_acl_dump(st, emit, data);
    reg_query_dump(st, emit, data);
    smap_foreach(&st->sessions, e)
    {
        const struct reg_session *s = e->val;
        emit_new(reg_journal_session(s, s->modify_index), emit, data);
    }
    /* The indexes themselves: deletes leave no entity behind but moved the tables. KV
     * tombstones are not kept in a snapshot; their highest index becomes the floor of every
     * prefix query, so a prefix's index never goes backwards across a restore. */
    uint64_t kv_floor = st->kv_tombstone_floor;
    smap_foreach(&st->kv_tombstones, e)
    {
        uint64_t t = (uint64_t)(uintptr_t)e->val;
        if (t > kv_floor)
            kv_floor = t;
    }
    r = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "op", "index", "index", (json_int_t)st->index,
                  "catalog", (json_int_t)st->table_index[REG_TABLE_CATALOG], "kv",
                  (json_int_t)st->table_index[REG_TABLE_KV], "kv_floor", (json_int_t)kv_floor,
                  "sessions", (json_int_t)st->table_index[REG_TABLE_SESSIONS]);
    json_object_set_new(r, "acl", json_integer((json_int_t)st->table_index[REG_TABLE_ACL]));
    json_object_set_new(r, "queries", json_integer((json_int_t)st->table_index[REG_TABLE_QUERIES]));
    reg_index_dump(st, r);
    emit_new(r, emit, data);
}
