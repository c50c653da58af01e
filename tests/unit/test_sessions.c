/*
 * Sessions in the registry state: create and its checks, invalidation (destroy, critical check,
 * deleted node), lock-delay on a fake clock, acquire/release, txn atomicity, journal replay;
 * and the runtime's TTL reaping on a real loop.
 */
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
#include "registry/api/sessions.h"
#include "registry/api/render.h"
#include "registry/state/state.h"
#include "registry/state/state_journal.h"

#define SID_A "aaaaaaaa-0000-4000-8000-000000000001"
#define SID_B "bbbbbbbb-0000-4000-8000-000000000002"

struct fixture {
    struct reg_state st;
    json_t *records;
    uint64_t now; /* the fake lock-delay clock, ms */
};

static void on_journal(const json_t *record, void *data)
{
    struct fixture *f = data;
    json_array_append_new(f->records, json_deep_copy(record));
}

static uint64_t fake_clock(void *data)
{
    struct fixture *f = data;
    return f->now;
}

static void add_check(struct reg_state *st, const char *id, enum reg_health status)
{
    struct reg_check c = {.id = (char *)id, .name = (char *)id, .status = status};
    reg_check_upsert(st, reg_node_get(st, "n1"), &c);
}

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    struct reg_node_fields nf = {.name = "n1", .address = "127.0.0.1"};

    reg_state_init(&f->st);
    f->records = json_array();
    f->st.journal = on_journal;
    f->st.journal_data = f;
    f->st.clock = fake_clock;
    f->st.clock_data = f;
    f->now = 1000;
    reg_node_upsert(&f->st, &nf);
    add_check(&f->st, "serfHealth", REG_PASSING);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    reg_state_free(&f->st);
    json_decref(f->records);
    free(f);
    return 0;
}

static char *serf[] = {"serfHealth"};

/* Creates a session on n1 tied to checks (default serfHealth). */
static int make_session(struct fixture *f, const char *id, int64_t lock_delay_ms,
                        enum reg_session_behavior b, char **checks, size_t nchecks)
{
    struct reg_session t = {
        .id = (char *)id,
        .name = "test",
        .node = "N1", /* node names match case-insensitively */
        .lock_delay_ns = lock_delay_ms * 1000000,
        .behavior = b,
        .ttl = "",
        .node_checks = checks ? checks : serf,
        .n_node_checks = checks ? nchecks : 1,
    };
    struct err e = {""};
    uint64_t index = 0;
    int rc = reg_session_create(&f->st, &t, &index, &e);
    if (rc == 0)
        assert_int_equal(index, f->st.index);
    return rc;
}

static void test_create_validates(void **state)
{
    struct fixture *f = *state;
    char *missing[] = {"nope"};
    char *crit[] = {"down"};
    struct err e = {""};
    uint64_t index;

    add_check(&f->st, "down", REG_CRITICAL);
    assert_int_equal(make_session(f, SID_A, 0, REG_SESSION_RELEASE, missing, 1), -ENOENT);
    assert_int_equal(make_session(f, SID_A, 0, REG_SESSION_RELEASE, crit, 1), -EINVAL);
    struct reg_session ghost = {.id = SID_B, .node = "ghost", .ttl = ""};
    assert_int_equal(reg_session_create(&f->st, &ghost, &index, &e), -ENOENT);
    assert_string_equal(e.msg, "Missing node registration");
    assert_int_equal(f->st.sessions.n, 0);

    assert_int_equal(make_session(f, SID_A, 0, REG_SESSION_RELEASE, NULL, 0), 0);
    const struct reg_session *s = reg_session_get(&f->st, SID_A);
    assert_non_null(s);
    assert_string_equal(s->node, "n1"); /* stored under the node's own spelling */
    assert_int_equal(f->st.table_index[REG_TABLE_SESSIONS], s->create_index);
    json_t *j = reg_session_json(s);
    assert_string_equal(json_string_value(json_object_get(j, "Behavior")), "release");
    assert_null(json_object_get(j, "Checks")); /* only serfHealth: legacy field left out */
    assert_true(json_is_null(json_object_get(j, "ServiceChecks")));
    json_decref(j);
}

static void test_acquire_release(void **state)
{
    struct fixture *f = *state;
    uint64_t index;

    assert_int_equal(make_session(f, SID_A, 0, REG_SESSION_RELEASE, NULL, 0), 0);
    assert_int_equal(make_session(f, SID_B, 0, REG_SESSION_RELEASE, NULL, 0), 0);
    assert_int_equal(reg_kv_acquire(&f->st, "k", "v", 1, 0, "unknown", &index), -ENOENT);
    assert_int_equal(reg_kv_acquire(&f->st, "k", "v1", 2, 5, SID_A, &index), 0);
    const struct reg_kv *kv = reg_kv_get(&f->st, "k");
    assert_string_equal(kv->session, SID_A);
    assert_int_equal(kv->lock_index, 1);
    assert_int_equal(kv->flags, 5);
    assert_int_equal(kv->modify_index, index);
    assert_int_equal(reg_kv_acquire(&f->st, "k", "x", 1, 0, SID_B, &index), -EBUSY);
    assert_int_equal(reg_kv_acquire(&f->st, "k", "v2", 2, 0, SID_A, &index), 0);
    kv = reg_kv_get(&f->st, "k");
    assert_int_equal(kv->lock_index, 1); /* re-acquire by the holder */
    assert_memory_equal(kv->value, "v2", 2);
    assert_int_equal(reg_kv_release(&f->st, "k", "", 0, 0, SID_B, &index), -EPERM);
    assert_int_equal(reg_kv_release(&f->st, "k", "", 0, 0, SID_A, &index), 0);
    kv = reg_kv_get(&f->st, "k");
    assert_null(kv->session);
    assert_int_equal(kv->lock_index, 1);
    assert_int_equal(reg_kv_acquire(&f->st, "k", "", 0, 0, SID_B, &index), 0);
    assert_int_equal(reg_kv_get(&f->st, "k")->lock_index, 2);
}

static void test_destroy_releases_and_delays(void **state)
{
    struct fixture *f = *state;
    uint64_t index;

    assert_int_equal(make_session(f, SID_A, 500, REG_SESSION_RELEASE, NULL, 0), 0);
    assert_int_equal(make_session(f, SID_B, 0, REG_SESSION_RELEASE, NULL, 0), 0);
    assert_int_equal(reg_kv_acquire(&f->st, "lock", "x", 1, 0, SID_A, &index), 0);
    uint64_t before = reg_kv_get(&f->st, "lock")->modify_index;
    uint64_t at = reg_session_destroy(&f->st, SID_A);
    assert_true(at > before);
    assert_null(reg_session_get(&f->st, SID_A));
    const struct reg_kv *kv = reg_kv_get(&f->st, "lock");
    assert_null(kv->session);
    assert_int_equal(kv->modify_index, at);
    assert_int_equal(f->st.table_index[REG_TABLE_KV], at);
    assert_int_equal(reg_session_destroy(&f->st, SID_A), 0);

    assert_true(reg_kv_lock_delayed(&f->st, "lock"));
    assert_int_equal(reg_kv_acquire(&f->st, "lock", "", 0, 0, SID_B, &index), -EBUSY);
    f->now += 499;
    assert_int_equal(reg_kv_acquire(&f->st, "lock", "", 0, 0, SID_B, &index), -EBUSY);
    f->now += 1;
    assert_int_equal(reg_kv_acquire(&f->st, "lock", "", 0, 0, SID_B, &index), 0);
    assert_false(reg_kv_lock_delayed(&f->st, "lock"));
}

static void test_behavior_delete(void **state)
{
    struct fixture *f = *state;
    uint64_t index;

    assert_int_equal(make_session(f, SID_A, 0, REG_SESSION_DELETE, NULL, 0), 0);
    assert_int_equal(reg_kv_acquire(&f->st, "a", "1", 1, 0, SID_A, &index), 0);
    assert_int_equal(reg_kv_acquire(&f->st, "b", "2", 1, 0, SID_A, &index), 0);
    reg_kv_set(&f->st, "c", "3", 1, 0, NULL);
    reg_session_destroy(&f->st, SID_A);
    assert_null(reg_kv_get(&f->st, "a"));
    assert_null(reg_kv_get(&f->st, "b"));
    assert_non_null(reg_kv_get(&f->st, "c"));
}

static void test_critical_check_and_node_delete(void **state)
{
    struct fixture *f = *state;
    char *web[] = {"web"};
    uint64_t index;

    add_check(&f->st, "web", REG_PASSING);
    assert_int_equal(make_session(f, SID_A, 0, REG_SESSION_RELEASE, web, 1), 0);
    assert_int_equal(make_session(f, SID_B, 0, REG_SESSION_RELEASE, NULL, 0), 0);
    assert_int_equal(reg_kv_acquire(&f->st, "held", "", 0, 0, SID_A, &index), 0);
    /* a warning keeps the session */
    reg_check_set_status(&f->st, reg_check_get(reg_node_get(&f->st, "n1"), "web"), REG_WARNING,
                         NULL);
    assert_non_null(reg_session_get(&f->st, SID_A));
    reg_check_set_status(&f->st, reg_check_get(reg_node_get(&f->st, "n1"), "web"), REG_CRITICAL,
                         "down");
    assert_null(reg_session_get(&f->st, SID_A));
    assert_null(reg_kv_get(&f->st, "held")->session);
    assert_non_null(reg_session_get(&f->st, SID_B)); /* not tied to "web" */

    reg_node_delete(&f->st, "n1");
    assert_int_equal(f->st.sessions.n, 0);
}

static void test_check_delete_invalidates(void **state)
{
    struct fixture *f = *state;
    char *web[] = {"web"};

    add_check(&f->st, "web", REG_PASSING);
    assert_int_equal(make_session(f, SID_A, 0, REG_SESSION_RELEASE, web, 1), 0);
    reg_check_delete(&f->st, reg_node_get(&f->st, "n1"), "web");
    assert_null(reg_session_get(&f->st, SID_A));
}

static json_t *op(const char *verb, const char *key, const char *value_b64, uint64_t index,
                  const char *session)
{
    json_t *kv = json_pack("{s:s, s:s}", "Verb", verb, "Key", key);
    if (value_b64)
        json_object_set_new(kv, "Value", json_string(value_b64));
    if (index)
        json_object_set_new(kv, "Index", json_integer((json_int_t)index));
    if (session)
        json_object_set_new(kv, "Session", json_string(session));
    return json_pack("{s:o}", "KV", kv);
}

static void test_txn_atomic(void **state)
{
    struct fixture *f = *state;
    json_t *results, *errors;

    reg_kv_set(&f->st, "t/a", "1", 1, 0, NULL);
    uint64_t a_index = reg_kv_get(&f->st, "t/a")->modify_index;
    uint64_t before = f->st.index;
    size_t records = json_array_size(f->records);

    /* a failing op anywhere leaves everything as it was */
    json_t *ops = json_pack("[o, o, o]", op("set", "t/b", "Mg==", 0, NULL),
                            op("delete", "t/a", NULL, 0, NULL), op("cas", "t/c", "Mw==", 99, NULL));
    assert_int_equal(reg_txn_apply(&f->st, ops, reg_render_kv, &results, &errors), -EINVAL);
    json_decref(ops);
    assert_null(results);
    assert_int_equal(json_array_size(errors), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(errors, 0), "OpIndex")), 2);
    json_decref(errors);
    assert_int_equal(f->st.index, before);
    assert_int_equal(json_array_size(f->records), records);
    assert_null(reg_kv_get(&f->st, "t/b"));
    assert_non_null(reg_kv_get(&f->st, "t/a"));

    /* later ops see earlier ones; all writes share one index */
    ops = json_pack("[o, o, o, o, o]", op("check-index", "t/a", NULL, a_index, NULL),
                    op("set", "t/b", "Mg==", 0, NULL), op("get", "t/b", NULL, 0, NULL),
                    op("delete-tree", "t/", NULL, 0, NULL),
                    op("check-not-exists", "t/a", NULL, 0, NULL));
    assert_int_equal(reg_txn_apply(&f->st, ops, reg_render_kv, &results, &errors), 0);
    json_decref(ops);
    assert_null(errors);
    assert_int_equal(json_array_size(results), 3);
    json_t *got = json_object_get(json_array_get(results, 2), "KV");
    assert_string_equal(json_string_value(json_object_get(got, "Value")), "Mg==");
    assert_int_equal(json_integer_value(json_object_get(got, "ModifyIndex")), before + 1);
    json_decref(results);
    assert_int_equal(f->st.index, before + 1);
    assert_null(reg_kv_get(&f->st, "t/a"));
    assert_null(reg_kv_get(&f->st, "t/b"));
}

static void test_txn_lock(void **state)
{
    struct fixture *f = *state;
    json_t *results, *errors;

    assert_int_equal(make_session(f, SID_A, 0, REG_SESSION_RELEASE, NULL, 0), 0);
    json_t *ops = json_pack("[o, o]", op("lock", "l", NULL, 0, SID_A),
                            op("check-session", "l", NULL, 0, SID_A));
    assert_int_equal(reg_txn_apply(&f->st, ops, reg_render_kv, &results, &errors), 0);
    json_decref(ops);
    json_decref(results);
    assert_string_equal(reg_kv_get(&f->st, "l")->session, SID_A);
    assert_int_equal(reg_kv_get(&f->st, "l")->lock_index, 1);
    ops = json_pack("[o]", op("lock", "l2", NULL, 0, "bogus"));
    assert_int_equal(reg_txn_apply(&f->st, ops, reg_render_kv, &results, &errors), -EINVAL);
    json_decref(ops);
    assert_non_null(strstr(json_string_value(json_object_get(json_array_get(errors, 0), "What")),
                           "invalid session"));
    json_decref(errors);
}

/* The journal rebuilds sessions and the released key. */
static void test_replay(void **state)
{
    struct fixture *f = *state;
    struct reg_state copy;
    uint64_t index;

    assert_int_equal(make_session(f, SID_A, 0, REG_SESSION_RELEASE, NULL, 0), 0);
    assert_int_equal(make_session(f, SID_B, 0, REG_SESSION_DELETE, NULL, 0), 0);
    assert_int_equal(reg_kv_acquire(&f->st, "k", "v", 1, 0, SID_A, &index), 0);
    assert_int_equal(reg_kv_acquire(&f->st, "gone", "v", 1, 0, SID_B, &index), 0);
    reg_session_destroy(&f->st, SID_B);
    reg_state_init(&copy);
    for (size_t i = 0; i < json_array_size(f->records); i++)
        assert_int_equal(reg_state_apply(&copy, json_array_get(f->records, i)), 0);
    assert_int_equal(copy.sessions.n, 1);
    const struct reg_session *s = reg_session_get(&copy, SID_A);
    assert_non_null(s);
    assert_int_equal(s->n_node_checks, 1);
    assert_string_equal(s->node_checks[0], "serfHealth");
    assert_string_equal(reg_kv_get(&copy, "k")->session, SID_A);
    assert_null(reg_kv_get(&copy, "gone"));
    assert_int_equal(copy.table_index[REG_TABLE_SESSIONS], f->st.table_index[REG_TABLE_SESSIONS]);
    reg_state_free(&copy);
}

/* A write that changes several entities is one record, so a crash appending it leaves all of
 * it or none; a batch holds whole records only. */
static void test_one_write_one_record(void **state)
{
    struct fixture *f = *state;
    json_t *results, *errors;
    struct reg_state copy;

    json_t *ops = json_pack("[o, o, o]", op("set", "t/a", "MQ==", 0, NULL),
                            op("set", "t/b", "Mg==", 0, NULL), op("set", "t/c", "Mw==", 0, NULL));
    size_t before = json_array_size(f->records);
    assert_int_equal(reg_txn_apply(&f->st, ops, reg_render_kv, &results, &errors), 0);
    json_decref(ops);
    json_decref(results);
    assert_int_equal(json_array_size(f->records), before + 1);
    const json_t *batch = json_array_get(f->records, before);
    assert_string_equal(json_string_value(json_object_get(batch, "op")), "batch");
    assert_int_equal(json_integer_value(json_object_get(batch, "index")), f->st.index);
    assert_int_equal(json_array_size(json_object_get(batch, "records")), 3);

    reg_state_init(&copy);
    for (size_t i = 0; i < json_array_size(f->records); i++)
        assert_int_equal(reg_state_apply(&copy, json_array_get(f->records, i)), 0);
    assert_memory_equal(reg_kv_get(&copy, "t/c")->value, "3", 1);
    assert_int_equal(copy.index, f->st.index);
    json_t *nested = json_pack("{s:s, s:i, s:[O]}", "op", "batch", "index", 99, "records", batch);
    assert_int_equal(reg_state_apply(&copy, nested), -EINVAL);
    json_decref(nested);
    nested = json_pack("{s:s, s:i, s:[]}", "op", "batch", "index", 99, "records");
    assert_int_equal(reg_state_apply(&copy, nested), -EINVAL);
    json_decref(nested);
    reg_state_free(&copy);
}

/* The runtime reaps a session 2 x TTL after its last renew (a short TTL set directly: the
 * API's 10 s minimum is not the state's business). */
static void test_ttl_reaped_on_loop(void **state)
{
    struct fixture *f = *state;
    uv_loop_t loop;

    assert_int_equal(uv_loop_init(&loop), 0);
    struct reg_sessions *rt = reg_sessions_new(&loop, &f->st);
    struct reg_session t = {.id = SID_A, .node = "n1", .ttl = "50ms", .ttl_ns = 50000000};
    struct err e = {""};
    uint64_t index;
    assert_int_equal(reg_session_create(&f->st, &t, &index, &e), 0);
    reg_sessions_track(rt, reg_session_get(&f->st, SID_A));
    uint64_t start = uv_now(&loop);
    /* renew once after 60 ms: the session must now live until ~160 ms */
    while (uv_now(&loop) - start < 60) {
        uv_run(&loop, UV_RUN_NOWAIT);
        uv_sleep(5);
        uv_update_time(&loop);
    }
    assert_non_null(reg_session_get(&f->st, SID_A));
    reg_sessions_track(rt, reg_session_get(&f->st, SID_A));
    while (reg_session_get(&f->st, SID_A) && uv_now(&loop) - start < 2000) {
        uv_run(&loop, UV_RUN_ONCE);
        uv_update_time(&loop);
    }
    uint64_t took = uv_now(&loop) - start;
    assert_null(reg_session_get(&f->st, SID_A));
    assert_true(took >= 155 && took < 1000);
    reg_sessions_free(rt);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_events_ring(void **state)
{
    struct fixture *f = *state;
    uv_loop_t loop;
    char name[32];

    assert_int_equal(uv_loop_init(&loop), 0);
    struct reg_sessions *rt = reg_sessions_new(&loop, &f->st);
    uint64_t before = f->st.table_index[REG_TABLE_EVENTS];
    for (int i = 0; i < REG_EVENTS_MAX + 3; i++) {
        snprintf(name, sizeof(name), "e%d", i);
        reg_sessions_event_add(rt, name, "p", 1, NULL, NULL, NULL);
    }
    assert_true(f->st.table_index[REG_TABLE_EVENTS] > before);
    assert_int_equal(reg_sessions_event_count(rt), REG_EVENTS_MAX);
    assert_string_equal(reg_sessions_event_at(rt, 0)->name, "e3");
    assert_int_equal(reg_sessions_event_at(rt, REG_EVENTS_MAX - 1)->ltime, REG_EVENTS_MAX + 3);
    reg_sessions_free(rt);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_validates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acquire_release, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_releases_and_delays, setup, teardown),
        cmocka_unit_test_setup_teardown(test_behavior_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_critical_check_and_node_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_delete_invalidates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_txn_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_txn_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_write_one_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ttl_reaped_on_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_ring, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
