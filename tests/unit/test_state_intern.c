/*
 * Interned JSON of the registry state (state/state_intern.c): equal values share one tree and
 * go with their last holder; values that render differently (member order, 1 and 1.0, 0.0 and
 * -0.0) never share; the table survives growth and removals in any order; and the catalog
 * stores its services' and checks' JSON through it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "registry/state/state.h"
#include "registry/state/state_intern.h"

static void test_equal_values_share_one_tree(void **state)
{
    (void)state;
    struct reg_json_pool p = {0};
    json_t *a = json_pack("{s:s, s:[i, b]}", "version", "1.4.2", "list", 1, 1);
    json_t *b = json_deep_copy(a);

    json_t *sa = reg_json_intern(&p, a);
    json_t *sb = reg_json_intern(&p, b);
    assert_ptr_equal(sa, sb);
    assert_ptr_not_equal(sa, a); /* the pool keeps its own copy */
    assert_int_equal(p.n, 1);
    json_object_set_new(a, "version", json_string("2")); /* the caller's stays the caller's */
    assert_string_equal(json_string_value(json_object_get(sa, "version")), "1.4.2");
    reg_json_release(&p, sa);
    assert_int_equal(p.n, 1); /* one holder left */
    reg_json_release(&p, sb);
    assert_int_equal(p.n, 0);
    assert_null(reg_json_intern(&p, NULL));
    reg_json_release(&p, NULL);
    json_decref(a);
    json_decref(b);
    reg_json_pool_free(&p);
}

static void test_values_that_render_differently_do_not_share(void **state)
{
    (void)state;
    struct reg_json_pool p = {0};
    const char *texts[] = {
        "{\"a\":\"1\",\"b\":\"2\"}",
        "{\"b\":\"2\",\"a\":\"1\"}", /* member order */
        "[1]",
        "[1.0]",
        "[0.0]",
        "[-0.0]", /* integer, real, sign */
        "{\"a\":null}",
        "{\"a\":false}",
        "{\"a\":\"\"}",
        "{}",
        "[]",
        "\"\"",
    };
    enum { N = sizeof(texts) / sizeof(texts[0]) };
    json_t *held[N];

    for (size_t i = 0; i < N; i++) {
        json_t *v = json_loads(texts[i], JSON_DECODE_ANY, NULL);
        assert_non_null(v);
        held[i] = reg_json_intern(&p, v);
        char *out = json_dumps(held[i], JSON_COMPACT | JSON_ENCODE_ANY);
        assert_string_equal(out, texts[i]); /* renders as given */
        free(out);
        json_decref(v);
    }
    assert_int_equal(p.n, N);
    for (size_t i = 0; i < N; i++)
        reg_json_release(&p, held[i]);
    assert_int_equal(p.n, 0);
    reg_json_pool_free(&p);
}

static void test_table_survives_growth_and_removals(void **state)
{
    (void)state;
    enum { N = 2000 };
    struct reg_json_pool p = {0};
    json_t **held = calloc(N, sizeof(*held));

    for (int i = 0; i < N; i++) {
        json_t *v = json_pack("{s:i}", "n", i);
        held[i] = reg_json_intern(&p, v);
        json_decref(v);
    }
    assert_int_equal(p.n, N);
    /* Remove in a scattered order (7 is prime to N), checking the rest stay reachable. */
    for (int k = 0; k < N / 2; k++)
        reg_json_release(&p, held[(k * 7) % N]), held[(k * 7) % N] = NULL;
    assert_int_equal(p.n, N - N / 2);
    for (int i = 0; i < N; i++) {
        json_t *v = json_pack("{s:i}", "n", i);
        json_t *again = reg_json_intern(&p, v);
        if (held[i])
            assert_ptr_equal(again, held[i]);
        reg_json_release(&p, again);
        json_decref(v);
    }
    assert_int_equal(p.n, N - N / 2);
    for (int i = 0; i < N; i++)
        reg_json_release(&p, held[i]);
    assert_int_equal(p.n, 0);
    free(held);
    reg_json_pool_free(&p);
}

static void test_catalog_stores_through_the_pool(void **state)
{
    (void)state;
    struct reg_state st;
    struct reg_node_fields nf = {.name = "n1", .address = "10.0.0.1", .datacenter = "dc1"};
    json_t *meta = json_pack("{s:s}", "version", "1");
    json_t *def = json_pack("{s:s, s:s}", "Interval", "0s", "TTL", "60s");

    reg_state_init(&st);
    reg_node_upsert(&st, &nf);
    struct reg_node *n = reg_node_get(&st, "n1");
    for (int i = 0; i < 50; i++) {
        char id[16], cid[24];
        snprintf(id, sizeof(id), "web-%d", i);
        snprintf(cid, sizeof(cid), "web-%d-ttl", i);
        struct reg_service s = {.id = id, .name = "web", .meta = meta};
        struct reg_check c = {.id = cid, .name = cid, .service_id = id, .definition = def};
        reg_service_upsert(&st, n, &s);
        reg_check_upsert(&st, n, &c);
    }
    const struct reg_service *s0 = reg_service_get(n, "web-0");
    const struct reg_service *s49 = reg_service_get(n, "web-49");
    assert_ptr_equal(s0->meta, s49->meta);
    assert_ptr_equal(reg_check_get(n, "web-0-ttl")->definition,
                     reg_check_get(n, "web-49-ttl")->definition);
    assert_int_equal(st.json_pool.n, 2); /* one Meta, one Definition */

    /* A changed Meta is a new value for that service alone. */
    json_t *meta2 = json_pack("{s:s}", "version", "2");
    struct reg_service s = {.id = "web-7", .name = "web", .meta = meta2};
    reg_service_upsert(&st, n, &s);
    assert_string_equal(
        json_string_value(json_object_get(reg_service_get(n, "web-7")->meta, "version")), "2");
    assert_string_equal(json_string_value(json_object_get(s0->meta, "version")), "1");
    assert_int_equal(st.json_pool.n, 3);

    /* Deleting every holder lets the values go; the state frees with nothing left over. */
    for (int i = 0; i < 50; i++) {
        char id[16];
        snprintf(id, sizeof(id), "web-%d", i);
        reg_service_delete(&st, n, id); /* its check goes with it */
    }
    assert_int_equal(st.json_pool.n, 0);
    json_decref(meta);
    json_decref(meta2);
    json_decref(def);
    reg_state_free(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equal_values_share_one_tree),
        cmocka_unit_test(test_values_that_render_differently_do_not_share),
        cmocka_unit_test(test_table_survives_growth_and_removals),
        cmocka_unit_test(test_catalog_stores_through_the_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
