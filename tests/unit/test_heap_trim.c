/*
 * Heap trims (lib/heap_trim.c) on a real loop: requests coalesce into one trim, a later request
 * runs another, and closing drops a trim still due. The loop runs until it has no active handle
 * left, which a one-shot timer is not once it fired.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "lib/heap_trim.h"

static void close_all(uv_loop_t *loop, struct heap_trim *t)
{
    heap_trim_close(t);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

/* A burst of small blocks, freed in an order that leaves holes below live ones. */
static void churn(void)
{
    enum { N = 4096 };
    void **v = calloc(N, sizeof(*v));

    for (int i = 0; i < N; i++)
        v[i] = malloc(200);
    for (int i = 0; i < N; i += 2)
        free(v[i]);
    for (int i = 1; i < N; i += 2)
        free(v[i]);
    free(v);
}

static void test_requests_coalesce_into_one_trim(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct heap_trim t;

    uv_loop_init(&loop);
    heap_trim_init(&t, &loop);
    churn();
    heap_trim_soon(&t);
    heap_trim_soon(&t);
    heap_trim_soon(&t);
    assert_true(t.armed);
    uv_run(&loop, UV_RUN_DEFAULT); /* returns once the one-shot timer ran */
    assert_int_equal(t.trims, 1);
    assert_false(t.armed);

    churn(); /* a later burst gets its own trim */
    heap_trim_soon(&t);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(t.trims, 2);
    close_all(&loop, &t);
}

static void test_nothing_runs_unasked(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct heap_trim t;

    uv_loop_init(&loop);
    heap_trim_init(&t, &loop);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(t.trims, 0);
    heap_trim_soon(&t);
    heap_trim_close(&t); /* closing drops the trim that was due */
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(t.trims, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests_coalesce_into_one_trim),
        cmocka_unit_test(test_nothing_runs_unasked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
