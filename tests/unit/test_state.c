/* The registry state: index rules, catalog and KV writes, tombstones, journal and replay. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/alloc.h"
#include "registry/state/state.h"
#include "registry/state/state_journal.h"

struct recorder {
    json_t *records; /* every journal record, in order */
    int changes[REG_TABLE_COUNT];
    enum reg_table last_table;
};

static void on_journal(const json_t *record, void *data)
{
    struct recorder *r = data;
    json_array_append_new(r->records, json_deep_copy(record));
}

static void on_change(enum reg_table table, void *data)
{
    struct recorder *r = data;
    r->changes[table]++;
    r->last_table = table;
}

struct fixture {
    struct reg_state st;
    struct recorder rec;
};

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));

    reg_state_init(&f->st);
    f->rec.records = json_array();
    f->st.journal = on_journal;
    f->st.journal_data = &f->rec;
    f->st.on_change = on_change;
    f->st.change_data = &f->rec;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    reg_state_free(&f->st);
    json_decref(f->rec.records);
    free(f);
    return 0;
}

static struct reg_node *add_node(struct reg_state *st, const char *name, const char *addr)
{
    struct reg_node_fields nf = {.name = name, .address = addr, .datacenter = "dc1"};
    reg_node_upsert(st, &nf);
    return reg_node_get(st, name);
}

static uint64_t add_service(struct reg_state *st, struct reg_node *n, const char *id,
                            const char *name, int port)
{
    char *tags[] = {"Primary", "v1"};
    struct reg_service t = {
        .id = (char *)id, .name = (char *)name, .tags = tags, .ntags = 2, .port = port};
    return reg_service_upsert(st, n, &t);
}

static uint64_t add_check(struct reg_state *st, struct reg_node *n, const char *id,
                          const char *service_id, enum reg_health status)
{
    struct reg_check t = {
        .id = (char *)id, .name = (char *)id, .status = status, .service_id = (char *)service_id};
    return reg_check_upsert(st, n, &t);
}

/* ---- index rules ----------------------------------------------------------------------------- */

static void test_index_starts_at_one(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(f->st.index, 1);
    assert_int_equal(f->st.table_index[REG_TABLE_CATALOG], 1);
    assert_int_equal(f->st.table_index[REG_TABLE_KV], 1);
}

static void test_writes_take_next_index(void **state)
{
    struct fixture *f = *state;
    struct reg_node *n = add_node(&f->st, "node1", "10.0.0.1");

    assert_non_null(n);
    assert_int_equal(f->st.index, 2);
    assert_int_equal(n->create_index, 2);
    assert_int_equal(n->modify_index, 2);
    assert_int_equal(f->st.table_index[REG_TABLE_CATALOG], 2);

    assert_int_equal(add_service(&f->st, n, "web1", "web", 80), 3);
    struct reg_service *s = reg_service_get(n, "web1");
    assert_int_equal(s->create_index, 3);
    assert_int_equal(s->modify_index, 3);

    assert_int_equal(add_check(&f->st, n, "c1", "web1", REG_CRITICAL), 4);
    assert_int_equal(reg_check_get(n, "c1")->create_index, 4);

    assert_int_equal(reg_kv_set(&f->st, "a", "x", 1, 0, NULL), 5);
    assert_int_equal(f->st.table_index[REG_TABLE_KV], 5);
    assert_int_equal(f->st.table_index[REG_TABLE_CATALOG], 4);
    assert_int_equal(reg_kv_get(&f->st, "a")->create_index, 5);
    assert_int_equal(reg_kv_get(&f->st, "a")->modify_index, 5);
}

static void test_noop_upserts_keep_index(void **state)
{
    struct fixture *f = *state;
    struct reg_node *n = add_node(&f->st, "node1", "10.0.0.1");

    add_service(&f->st, n, "web1", "web", 80);
    add_check(&f->st, n, "c1", "web1", REG_PASSING);
    uint64_t idx = f->st.index;
    size_t nrec = json_array_size(f->rec.records);
    int changes = f->rec.changes[REG_TABLE_CATALOG];

    assert_non_null(add_node(&f->st, "node1", "10.0.0.1"));
    assert_int_equal(add_service(&f->st, n, "web1", "web", 80), idx);
    assert_int_equal(add_check(&f->st, n, "c1", "web1", REG_PASSING), idx);
    assert_int_equal(f->st.index, idx);
    assert_int_equal(json_array_size(f->rec.records), nrec);
    assert_int_equal(f->rec.changes[REG_TABLE_CATALOG], changes);
    /* A node upsert naming only some fields changes nothing else. */
    struct reg_node_fields nf = {.name = "NODE1"};
    reg_node_upsert(&f->st, &nf);
    assert_string_equal(n->address, "10.0.0.1");
}

static void test_noop_service_with_default_weights(void **state)
{
    struct fixture *f = *state;
    struct reg_node *n = add_node(&f->st, "node1", "10.0.0.1");
    /* A template leaving Weights, Address and Kind to their defaults, written twice. */
    struct reg_service t = {.name = "web", .port = 80};

    uint64_t first = reg_service_upsert(&f->st, n, &t);
    assert_int_equal(reg_service_get(n, "web")->weight_passing, 1);
    assert_int_equal(reg_service_upsert(&f->st, n, &t), first);
    assert_int_equal(f->st.index, first);
}

static void test_create_index_survives_replace(void **state)
{
    struct fixture *f = *state;
    struct reg_node *n = add_node(&f->st, "node1", "10.0.0.1");

    uint64_t created = add_service(&f->st, n, "web1", "web", 80);
    uint64_t modified = add_service(&f->st, n, "web1", "web", 81);
    assert_true(modified > created);
    struct reg_service *s = reg_service_get(n, "web1");
    assert_int_equal(s->create_index, created);
    assert_int_equal(s->modify_index, modified);
    assert_int_equal(s->port, 81);

    uint64_t c1 = add_check(&f->st, n, "c1", "web1", REG_CRITICAL);
    uint64_t c2 = add_check(&f->st, n, "c1", "web1", REG_PASSING);
    assert_true(c2 > c1);
    assert_int_equal(reg_check_get(n, "c1")->create_index, c1);
    assert_int_equal(reg_check_get(n, "c1")->modify_index, c2);

    struct reg_node_fields nf = {.name = "node1", .address = "10.0.0.2"};
    uint64_t created_node = n->create_index;
    uint64_t m = reg_node_upsert(&f->st, &nf);
    assert_int_equal(m, f->st.index);
    assert_int_equal(n->create_index, created_node);
    assert_int_equal(n->modify_index, m);
    assert_string_equal(n->address, "10.0.0.2");
    assert_string_equal(n->datacenter, "dc1");

    uint64_t k1 = reg_kv_set(&f->st, "k", "1", 1, 0, NULL);
    uint64_t k2 = reg_kv_set(&f->st, "k", "2", 1, 0, NULL);
    assert_int_equal(reg_kv_get(&f->st, "k")->create_index, k1);
    assert_int_equal(reg_kv_get(&f->st, "k")->modify_index, k2);
}

static void test_check_set_status(void **state)
{
    struct fixture *f = *state;
    struct reg_node *n = add_node(&f->st, "node1", "10.0.0.1");
    add_check(&f->st, n, "c1", "", REG_CRITICAL);
    struct reg_check *c = reg_check_get(n, "c1");
    uint64_t idx = f->st.index;
    size_t nrec = json_array_size(f->rec.records);

    /* Output only: memory, no index, no journal, no wake-up. */
    assert_int_equal(reg_check_set_status(&f->st, c, REG_CRITICAL, "still down"), 0);
    assert_string_equal(c->output, "still down");
    assert_int_equal(f->st.index, idx);
    assert_int_equal(c->modify_index, idx);
    assert_int_equal(json_array_size(f->rec.records), nrec);

    /* Status change: a write. */
    uint64_t w = reg_check_set_status(&f->st, c, REG_PASSING, "ok");
    assert_int_equal(w, idx + 1);
    assert_int_equal(c->status, REG_PASSING);
    assert_string_equal(c->output, "ok");
    assert_int_equal(c->modify_index, w);
    assert_int_equal(f->st.table_index[REG_TABLE_CATALOG], w);
    assert_int_equal(json_array_size(f->rec.records), nrec + 1);
    json_t *r = json_array_get(f->rec.records, nrec);
    assert_string_equal(json_string_value(json_object_get(r, "op")), "check");
    assert_string_equal(json_string_value(json_object_get(json_object_get(r, "check"), "status")),
                        "passing");

    /* Same status, NULL output: nothing. */
    assert_int_equal(reg_check_set_status(&f->st, c, REG_PASSING, NULL), 0);
    assert_string_equal(c->output, "ok");
}

static void test_node_delete_cascades(void **state)
{
    struct fixture *f = *state;
    struct reg_node *n = add_node(&f->st, "node1", "10.0.0.1");
    add_service(&f->st, n, "web1", "web", 80);
    add_check(&f->st, n, "c1", "web1", REG_PASSING);
    add_check(&f->st, n, "serfHealth", "", REG_PASSING);

    assert_int_equal(reg_node_delete(&f->st, "nope"), 0);
    uint64_t idx = f->st.index;
    assert_int_equal(reg_node_delete(&f->st, "Node1"), idx + 1);
    assert_null(reg_node_get(&f->st, "node1"));
    assert_int_equal(f->st.nodes.n, 0);
    assert_int_equal(f->st.table_index[REG_TABLE_CATALOG], idx + 1);
    json_t *r = json_array_get(f->rec.records, json_array_size(f->rec.records) - 1);
    assert_string_equal(json_string_value(json_object_get(r, "op")), "node-delete");
    assert_string_equal(json_string_value(json_object_get(r, "node")), "node1");
}

static void test_service_delete_removes_its_checks(void **state)
{
    struct fixture *f = *state;
    struct reg_node *n = add_node(&f->st, "node1", "10.0.0.1");
    add_service(&f->st, n, "web1", "web", 80);
    add_service(&f->st, n, "web2", "web", 81);
    add_check(&f->st, n, "c1", "web1", REG_PASSING);
    add_check(&f->st, n, "c1b", "web1", REG_PASSING);
    add_check(&f->st, n, "c2", "web2", REG_PASSING);
    add_check(&f->st, n, "node", "", REG_PASSING);

    assert_int_equal(reg_service_delete(&f->st, n, "missing"), 0);
    uint64_t idx = f->st.index;
    /* Passing the stored ID string itself must be safe. */
    assert_int_equal(reg_service_delete(&f->st, n, reg_service_get(n, "web1")->id), idx + 1);
    assert_null(reg_service_get(n, "web1"));
    assert_null(reg_check_get(n, "c1"));
    assert_null(reg_check_get(n, "c1b"));
    assert_non_null(reg_check_get(n, "c2"));
    assert_non_null(reg_check_get(n, "node"));

    assert_int_equal(reg_check_delete(&f->st, n, "nope"), 0);
    assert_int_equal(reg_check_delete(&f->st, n, reg_check_get(n, "c2")->id), idx + 2);
    assert_null(reg_check_get(n, "c2"));
}

static void test_case_insensitive_names_and_tags(void **state)
{
    struct fixture *f = *state;
    struct reg_node *n = add_node(&f->st, "Web-Node", "10.0.0.1");

    assert_ptr_equal(reg_node_get(&f->st, "web-node"), n);
    assert_ptr_equal(reg_node_get(&f->st, "WEB-NODE"), n);
    assert_string_equal(n->name, "Web-Node");
    add_service(&f->st, n, "web1", "web", 80);
    struct reg_service *s = reg_service_get(n, "web1");
    assert_null(reg_service_get(n, "WEB1")); /* IDs are case-sensitive */
    const char *tags[] = {"primary", "V1"};
    assert_true(reg_service_has_tags(s, tags, 2));
    const char *other[] = {"primary", "v2"};
    assert_false(reg_service_has_tags(s, other, 2));
    assert_true(reg_service_has_tags(s, NULL, 0));
    /* KV keys are case-sensitive. */
    reg_kv_set(&f->st, "Key", "v", 1, 0, NULL);
    assert_null(reg_kv_get(&f->st, "key"));
}

static void test_checks_ordered(void **state)
{
    struct fixture *f = *state;
    struct reg_node *n = add_node(&f->st, "n", "10.0.0.1");
    add_check(&f->st, n, "Zed", "", REG_PASSING);
    add_check(&f->st, n, "serfHealth", "", REG_PASSING);
    add_check(&f->st, n, "alpha", "", REG_PASSING);

    const struct reg_check **v = reg_node_checks_ordered(n);
    assert_string_equal(v[0]->id, "alpha");
    assert_string_equal(v[1]->id, "serfHealth");
    assert_string_equal(v[2]->id, "Zed");
    free(v);
}

/* ---- KV ----------------------------------------------------------------------------------------
 */

static void test_kv_cas(void **state)
{
    struct fixture *f = *state;
    uint64_t zero = 0;

    uint64_t w1 = reg_kv_set(&f->st, "k", "a", 1, 7, &zero);
    assert_int_not_equal(w1, 0);
    assert_int_equal(reg_kv_get(&f->st, "k")->flags, 7);
    uint64_t idx = f->st.index;
    assert_int_equal(reg_kv_set(&f->st, "k", "b", 1, 0, &zero), 0); /* exists */
    uint64_t stale = w1 - 1;
    assert_int_equal(reg_kv_set(&f->st, "k", "b", 1, 0, &stale), 0);
    assert_int_equal(f->st.index, idx); /* failed CAS is no write */
    assert_memory_equal(reg_kv_get(&f->st, "k")->value, "a", 1);

    uint64_t w2 = reg_kv_set(&f->st, "k", "b", 1, 0, &w1);
    assert_int_equal(w2, idx + 1);
    assert_memory_equal(reg_kv_get(&f->st, "k")->value, "b", 1);
    assert_int_equal(reg_kv_get(&f->st, "k")->create_index, w1);

    /* CAS on a missing key with N > 0 fails. */
    uint64_t n5 = 5;
    assert_int_equal(reg_kv_set(&f->st, "missing", "x", 1, 0, &n5), 0);

    /* Delete CAS: 0 never deletes, wrong index fails, right index deletes. */
    assert_int_equal(reg_kv_delete(&f->st, "k", &zero), 0);
    assert_int_equal(reg_kv_delete(&f->st, "k", &w1), 0);
    assert_non_null(reg_kv_get(&f->st, "k"));
    /* Passing the entry's own key string must be safe. */
    assert_int_not_equal(reg_kv_delete(&f->st, reg_kv_get(&f->st, "k")->key, &w2), 0);
    assert_null(reg_kv_get(&f->st, "k"));
    json_t *r = json_array_get(f->rec.records, json_array_size(f->rec.records) - 1);
    assert_string_equal(json_string_value(json_object_get(r, "key")), "k");
    assert_int_equal(reg_kv_delete(&f->st, "k", &w2), 0); /* gone */
}

static void test_kv_empty_value(void **state)
{
    struct fixture *f = *state;

    reg_kv_set(&f->st, "e", "", 0, 0, NULL);
    struct reg_kv *kv = reg_kv_get(&f->st, "e");
    assert_non_null(kv);
    assert_null(kv->value);
    assert_int_equal(kv->value_len, 0);
}

static void test_kv_delete_missing_moves_index(void **state)
{
    struct fixture *f = *state;

    reg_kv_set(&f->st, "a", "1", 1, 0, NULL);
    uint64_t idx = f->st.index;
    int changes = f->rec.changes[REG_TABLE_KV];
    assert_int_equal(reg_kv_delete(&f->st, "missing", NULL), idx + 1);
    assert_int_equal(f->st.table_index[REG_TABLE_KV], idx + 1);
    assert_int_equal(f->rec.changes[REG_TABLE_KV], changes + 1);
    assert_int_equal(f->rec.last_table, REG_TABLE_KV);
    assert_int_equal(f->st.table_index[REG_TABLE_CATALOG], 1);
}

static void test_kv_delete_tree(void **state)
{
    struct fixture *f = *state;

    reg_kv_set(&f->st, "app/a", "1", 1, 0, NULL);
    reg_kv_set(&f->st, "app/b/c", "1", 1, 0, NULL);
    reg_kv_set(&f->st, "apple", "1", 1, 0, NULL);
    reg_kv_set(&f->st, "other", "1", 1, 0, NULL);
    uint64_t idx = f->st.index;

    assert_int_equal(reg_kv_delete_tree(&f->st, "app/"), idx + 1);
    assert_null(reg_kv_get(&f->st, "app/a"));
    assert_null(reg_kv_get(&f->st, "app/b/c"));
    assert_non_null(reg_kv_get(&f->st, "apple"));
    assert_non_null(reg_kv_get(&f->st, "other"));
    assert_int_equal(f->st.kv.n, 2);
    assert_int_equal(reg_kv_prefix_index(&f->st, "app/"), idx + 1);

    assert_int_equal(reg_kv_delete_tree(&f->st, ""), idx + 2);
    assert_int_equal(f->st.kv.n, 0);
}

static void test_kv_prefix_index(void **state)
{
    struct fixture *f = *state;

    /* Nothing ever there: the table index. */
    assert_int_equal(reg_kv_prefix_index(&f->st, "x/"), 1);
    uint64_t a = reg_kv_set(&f->st, "a/1", "1", 1, 0, NULL);
    uint64_t b = reg_kv_set(&f->st, "b/1", "1", 1, 0, NULL);
    uint64_t a2 = reg_kv_set(&f->st, "a/2", "1", 1, 0, NULL);
    assert_int_equal(reg_kv_prefix_index(&f->st, "a/"), a2);
    assert_int_equal(reg_kv_prefix_index(&f->st, "b/"), b);
    assert_int_equal(reg_kv_prefix_index(&f->st, "x/"), f->st.table_index[REG_TABLE_KV]);
    (void)a;

    /* Deleting a key raises its prefix's index above the remaining keys. */
    uint64_t d = reg_kv_delete(&f->st, "a/1", NULL);
    assert_int_equal(reg_kv_prefix_index(&f->st, "a/"), d);
    assert_int_equal(reg_kv_prefix_index(&f->st, "b/"), b);
    /* Re-creating the key drops the tombstone but its ModifyIndex is higher anyway. */
    uint64_t again = reg_kv_set(&f->st, "a/1", "1", 1, 0, NULL);
    assert_int_equal(reg_kv_prefix_index(&f->st, "a/"), again);
}

static void test_kv_tombstone_floor(void **state)
{
    struct fixture *f = *state;
    char key[32];

    reg_kv_set(&f->st, "keep/x", "1", 1, 0, NULL);
    uint64_t keep = f->st.index;
    for (int i = 0; i < 4096; i++) {
        snprintf(key, sizeof(key), "t/%05d", i);
        reg_kv_set(&f->st, key, "1", 1, 0, NULL);
        reg_kv_delete(&f->st, key, NULL);
    }
    assert_int_equal(f->st.kv_tombstones.n, 4096);
    assert_int_equal(f->st.kv_tombstone_floor, 0);
    assert_int_equal(reg_kv_prefix_index(&f->st, "keep/"), keep);
    uint64_t last = f->st.index;

    /* The 4097th tombstone folds the others into the floor. */
    reg_kv_set(&f->st, "u", "1", 1, 0, NULL);
    uint64_t d = reg_kv_delete(&f->st, "u", NULL);
    assert_int_equal(f->st.kv_tombstones.n, 1);
    assert_int_equal(f->st.kv_tombstone_floor, last);
    assert_int_equal(reg_kv_prefix_index(&f->st, "keep/"), last);
    assert_int_equal(reg_kv_prefix_index(&f->st, "u"), d);
}

static void test_kv_set_keeps_lock(void **state)
{
    struct fixture *f = *state;
    /* A locked key, as replay restores it; a plain PUT keeps the lock. */
    json_t *rec =
        json_pack("{s:s, s:I, s:{s:s, s:s, s:I, s:I, s:I, s:I, s:s}}", "op", "kv", "index",
                  (json_int_t)5, "kv", "key", "lock", "value", "YQ==", "flags", (json_int_t)0,
                  "lock_index", (json_int_t)1, "create_index", (json_int_t)5, "modify_index",
                  (json_int_t)5, "session", "adf4238a-882b-9ddc-4a9d-5b6758e4159e");

    assert_int_equal(reg_state_apply(&f->st, rec), 0);
    json_decref(rec);
    assert_int_equal(f->st.index, 5);
    assert_int_equal(f->st.table_index[REG_TABLE_KV], 5);
    assert_int_not_equal(reg_kv_set(&f->st, "lock", "b", 1, 0, NULL), 0);
    struct reg_kv *kv = reg_kv_get(&f->st, "lock");
    assert_string_equal(kv->session, "adf4238a-882b-9ddc-4a9d-5b6758e4159e");
    assert_int_equal(kv->lock_index, 1);
    assert_memory_equal(kv->value, "b", 1);
}

/* ---- journal and replay ------------------------------------------------------------------------
 */

static void collect(const json_t *record, void *data)
{
    json_array_append_new(data, json_deep_copy(record));
}

static json_t *dump(const struct reg_state *st)
{
    json_t *a = json_array();
    reg_state_dump(st, collect, a);
    return a;
}

static void test_journal_ops(void **state)
{
    struct fixture *f = *state;
    static const char *const ops[] = {"node",         "service",        "check",
                                      "kv",           "kv-delete",      "kv-delete-tree",
                                      "check-delete", "service-delete", "node-delete"};
    struct reg_node *n = add_node(&f->st, "n1", "10.0.0.1");
    add_service(&f->st, n, "web1", "web", 80);
    add_check(&f->st, n, "c1", "", REG_PASSING);
    reg_kv_set(&f->st, "k", "v", 1, 0, NULL);
    reg_kv_delete(&f->st, "k", NULL);
    reg_kv_delete_tree(&f->st, "p/");
    reg_check_delete(&f->st, n, "c1");
    reg_service_delete(&f->st, n, "web1");
    reg_node_delete(&f->st, "n1");

    assert_int_equal(json_array_size(f->rec.records), 9);
    for (size_t i = 0; i < 9; i++) {
        json_t *r = json_array_get(f->rec.records, i);
        assert_string_equal(json_string_value(json_object_get(r, "op")), ops[i]);
        assert_int_equal(json_integer_value(json_object_get(r, "index")), i + 2);
    }
    assert_int_equal(f->rec.changes[REG_TABLE_CATALOG], 6);
    assert_int_equal(f->rec.changes[REG_TABLE_KV], 3);
}

static void test_replay_rebuilds_state(void **state)
{
    struct fixture *f = *state;
    struct reg_node *n = add_node(&f->st, "n1", "10.0.0.1");
    struct reg_node *m = add_node(&f->st, "N2", "10.0.0.2");
    json_t *meta = json_pack("{s:s}", "env", "prod");
    struct reg_node_fields nf = {.name = "n1", .meta = meta};
    reg_node_upsert(&f->st, &nf);
    json_decref(meta);
    add_service(&f->st, n, "web1", "web", 80);
    add_service(&f->st, n, "web1", "web", 81);
    add_service(&f->st, m, "web2", "web", 80);
    add_service(&f->st, m, "db", "db", 5432);
    add_check(&f->st, n, "c1", "web1", REG_CRITICAL);
    add_check(&f->st, m, "c2", "web2", REG_CRITICAL);
    add_check(&f->st, m, "c3", "db", REG_PASSING);
    reg_check_set_status(&f->st, reg_check_get(n, "c1"), REG_PASSING, "HTTP 200");
    reg_service_delete(&f->st, m, "db");
    reg_check_delete(&f->st, m, "c2");
    reg_kv_set(&f->st, "a/1", "one", 3, 42, NULL);
    reg_kv_set(&f->st, "a/2", "two", 3, 0, NULL);
    reg_kv_set(&f->st, "a/1", "uno", 3, 43, NULL);
    reg_kv_set(&f->st, "b/1", "", 0, 0, NULL);
    reg_kv_set(&f->st, "c/1", "x", 1, 0, NULL);
    reg_kv_delete(&f->st, "a/2", NULL);
    reg_kv_delete(&f->st, "never", NULL);
    reg_kv_delete_tree(&f->st, "c/");
    add_node(&f->st, "gone", "10.0.0.9");
    reg_node_delete(&f->st, "gone");

    struct reg_state replay;
    reg_state_init(&replay);
    size_t i;
    json_t *r;
    json_array_foreach(f->rec.records, i, r) assert_int_equal(reg_state_apply(&replay, r), 0);
    assert_int_equal(replay.index, f->st.index);
    assert_int_equal(replay.table_index[REG_TABLE_KV], f->st.table_index[REG_TABLE_KV]);
    assert_int_equal(replay.table_index[REG_TABLE_CATALOG], f->st.table_index[REG_TABLE_CATALOG]);
    assert_int_equal(reg_kv_prefix_index(&replay, "a/"), reg_kv_prefix_index(&f->st, "a/"));

    json_t *d1 = dump(&f->st), *d2 = dump(&replay);
    assert_true(json_equal(d1, d2));

    /* And a snapshot (the dump) replays into the same state too. */
    struct reg_state snap;
    reg_state_init(&snap);
    json_array_foreach(d1, i, r) assert_int_equal(reg_state_apply(&snap, r), 0);
    json_t *d3 = dump(&snap);
    assert_true(json_equal(d1, d3));
    assert_int_equal(snap.index, f->st.index);
    /* A snapshot keeps no tombstones: a prefix whose newest change was a delete must not
     * report a lower index after the restore. */
    assert_true(reg_kv_prefix_index(&snap, "a/") >= reg_kv_prefix_index(&f->st, "a/"));
    assert_true(reg_kv_prefix_index(&snap, "c/") >= reg_kv_prefix_index(&f->st, "c/"));

    json_decref(d1);
    json_decref(d2);
    json_decref(d3);
    reg_state_free(&replay);
    reg_state_free(&snap);
}

/* ---- covering indexes ------------------------------------------------------------------------ */

/* Rebuilds the fixture's state twice: from its journal records, and from a snapshot of it. */
static void rebuild(struct fixture *f, struct reg_state *replay, struct reg_state *snap)
{
    size_t i;
    json_t *r, *d = dump(&f->st);

    reg_state_init(replay);
    reg_state_init(snap);
    json_array_foreach(f->rec.records, i, r) assert_int_equal(reg_state_apply(replay, r), 0);
    json_array_foreach(d, i, r) assert_int_equal(reg_state_apply(snap, r), 0);
    json_decref(d);
}

static void test_service_index_covers_its_instances_only(void **state)
{
    struct fixture *f = *state;
    struct reg_node *n = add_node(&f->st, "n1", "10.0.0.1");
    struct reg_node *m = add_node(&f->st, "n2", "10.0.0.2");
    uint64_t db = add_service(&f->st, n, "db1", "db", 5432);

    assert_int_equal(reg_service_index(&f->st, "DB"), db);
    /* Another service on the same node, its check, another node: db does not move. */
    add_service(&f->st, n, "web1", "web", 80);
    add_check(&f->st, n, "wc", "web1", REG_PASSING);
    add_node(&f->st, "n3", "10.0.0.3");
    assert_int_equal(reg_service_index(&f->st, "db"), db);
    assert_int_equal(reg_node_index(&f->st, "n2"), m->cover_index);

    /* Its own check, and a node check of its node, do. */
    uint64_t c = add_check(&f->st, n, "dc", "db1", REG_PASSING);
    assert_int_equal(reg_service_index(&f->st, "db"), c);
    uint64_t nc = add_check(&f->st, n, "nodecheck", "", REG_PASSING);
    assert_int_equal(reg_service_index(&f->st, "db"), nc);
    assert_int_equal(reg_service_index(&f->st, "web"), nc);
    assert_int_equal(reg_node_index(&f->st, "n1"), nc);
    uint64_t st = reg_check_set_status(&f->st, reg_check_get(n, "dc"), REG_CRITICAL, "down");
    assert_int_equal(reg_service_index(&f->st, "db"), st);
    assert_int_equal(reg_node_index(&f->st, "N1"), st);

    /* A delete raises it like a write: a check, then one of two instances. */
    add_service(&f->st, m, "db2", "db", 5432);
    uint64_t del = reg_check_delete(&f->st, n, "dc");
    assert_int_equal(reg_service_index(&f->st, "db"), del);
    del = reg_service_delete(&f->st, m, "db2");
    assert_int_equal(reg_service_index(&f->st, "db"), del);
    assert_int_equal(reg_node_index(&f->st, "n2"), del);
    assert_int_equal(f->st.services_index, del);
}

static void test_absent_names_never_go_backwards(void **state)
{
    struct fixture *f = *state;
    struct reg_node *n = add_node(&f->st, "n1", "10.0.0.1");

    assert_int_equal(reg_service_index(&f->st, "never"), 1);
    assert_int_equal(reg_node_index(&f->st, "nobody"), 1);
    add_service(&f->st, n, "db1", "db", 5432);
    uint64_t gone = reg_service_delete(&f->st, n, "db1");
    assert_int_equal(reg_service_index(&f->st, "db"), gone);
    /* Renaming an instance is its old name's extinction too. */
    add_service(&f->st, n, "x", "old", 1);
    uint64_t renamed = add_service(&f->st, n, "x", "new", 1);
    assert_int_equal(reg_service_index(&f->st, "old"), renamed);
    assert_int_equal(reg_service_index(&f->st, "new"), renamed);
    /* A deleted node: its reads report the delete, and so do its services'. */
    struct reg_node *m = add_node(&f->st, "n2", "10.0.0.2");
    add_service(&f->st, m, "c1", "cache", 6379);
    uint64_t node_gone = reg_node_delete(&f->st, "n2");
    assert_int_equal(reg_node_index(&f->st, "n2"), node_gone);
    assert_int_equal(reg_service_index(&f->st, "cache"), node_gone);
}

static void test_covering_indexes_survive_replay_and_snapshot(void **state)
{
    struct fixture *f = *state;
    struct reg_node *n = add_node(&f->st, "n1", "10.0.0.1");
    struct reg_node *m = add_node(&f->st, "n2", "10.0.0.2");
    add_service(&f->st, n, "db1", "db", 5432);
    add_service(&f->st, m, "db2", "db", 5432);
    add_service(&f->st, m, "web", "web", 80);
    add_check(&f->st, m, "c", "db2", REG_PASSING);
    reg_service_delete(&f->st, m, "db2"); /* db's newest change is a delete */
    add_service(&f->st, n, "gone", "gone", 1);
    reg_service_delete(&f->st, n, "gone");
    reg_kv_set(&f->st, "k", "v", 1, 0, NULL);

    struct reg_state replay, snap;
    rebuild(f, &replay, &snap);
    const char *names[] = {"db", "web", "gone", "never"};
    for (size_t k = 0; k < 4; k++) {
        assert_int_equal(reg_service_index(&replay, names[k]), reg_service_index(&f->st, names[k]));
        assert_int_equal(reg_service_index(&snap, names[k]), reg_service_index(&f->st, names[k]));
    }
    assert_int_equal(reg_node_index(&snap, "n2"), reg_node_index(&f->st, "n2"));
    assert_int_equal(reg_node_index(&replay, "n2"), reg_node_index(&f->st, "n2"));
    assert_int_equal(snap.services_index, f->st.services_index);
    assert_int_equal(snap.checks_index, f->st.checks_index);
    assert_int_equal(snap.nodes_index, f->st.nodes_index);
    reg_state_free(&replay);
    reg_state_free(&snap);
}

static void test_queries_replay_and_snapshot(void **state)
{
    struct fixture *f = *state;
    json_t *def = json_pack("{s:s, s:{s:s}}", "Name", "q1", "Service", "Service", "db");

    uint64_t i1 = reg_query_put(&f->st, "id-1", "q1", def);
    reg_query_put(&f->st, "id-2", "Q2", def);
    uint64_t i3 = reg_query_put(&f->st, "id-1", "q1", def);
    assert_int_equal(reg_query_get(&f->st, "id-1")->create_index, i1);
    assert_int_equal(reg_query_get(&f->st, "id-1")->modify_index, i3);
    assert_ptr_equal(reg_query_find(&f->st, "q2"), reg_query_get(&f->st, "id-2"));
    assert_int_equal(reg_query_delete(&f->st, "nope"), 0);
    uint64_t del = reg_query_delete(&f->st, "id-2");
    assert_int_equal(f->st.table_index[REG_TABLE_QUERIES], del);
    assert_int_equal(f->rec.changes[REG_TABLE_QUERIES], 4);

    struct reg_state replay, snap;
    rebuild(f, &replay, &snap);
    const struct reg_state *both[] = {&replay, &snap};
    for (size_t k = 0; k < 2; k++) {
        const struct reg_query *q = reg_query_get(both[k], "id-1");
        assert_non_null(q);
        assert_null(reg_query_get(both[k], "id-2"));
        assert_int_equal(q->create_index, i1);
        assert_int_equal(q->modify_index, i3);
        assert_true(json_equal(q->def, def));
        assert_int_equal(both[k]->table_index[REG_TABLE_QUERIES], del);
    }
    json_decref(def);
    reg_state_free(&replay);
    reg_state_free(&snap);
}

static void test_apply_rejects_bad_records(void **state)
{
    struct fixture *f = *state;
    json_t *bad = json_pack("{s:s, s:I}", "op", "nonsense", "index", (json_int_t)3);
    json_t *noindex = json_pack("{s:s}", "op", "kv-delete");
    json_t *orphan = json_pack("{s:s, s:I, s:s, s:{}}", "op", "service", "index", (json_int_t)3,
                               "node", "nobody", "service");

    assert_int_equal(reg_state_apply(&f->st, bad), -EINVAL);
    assert_int_equal(reg_state_apply(&f->st, noindex), -EINVAL);
    assert_int_equal(reg_state_apply(&f->st, orphan), -EINVAL);
    assert_int_equal(f->st.index, 1);
    json_decref(bad);
    json_decref(noindex);
    json_decref(orphan);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_index_starts_at_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writes_take_next_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_noop_upserts_keep_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_noop_service_with_default_weights, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_index_survives_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_set_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_node_delete_cascades, setup, teardown),
        cmocka_unit_test_setup_teardown(test_service_delete_removes_its_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_case_insensitive_names_and_tags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checks_ordered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kv_cas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kv_empty_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kv_delete_missing_moves_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kv_delete_tree, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kv_prefix_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kv_tombstone_floor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kv_set_keeps_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_journal_ops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_rebuilds_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_service_index_covers_its_instances_only, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_absent_names_never_go_backwards, setup, teardown),
        cmocka_unit_test_setup_teardown(test_covering_indexes_survive_replay_and_snapshot, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_queries_replay_and_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_rejects_bad_records, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
