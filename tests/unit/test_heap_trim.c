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
#include <unistd.h>

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

/* A request while a trim is due moves it to the quiet delay after itself: deadlines in loop
 * time, computed, not measured. */
static void test_a_request_pushes_the_trim_back(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct heap_trim t;

    uv_loop_init(&loop);
    heap_trim_init(&t, &loop);
    t.quiet_ms = 100;
    t.max_delay_ms = 100000;
    uint64_t t0 = uv_now(&loop);
    heap_trim_soon(&t);
    /* due from the request's own time, which may be a tick past t0: never a fixed t0 + 100 */
    assert_true(t.first_ms >= t0);
    assert_int_equal(t.due_ms, t.first_ms + 100);
    /* The loop's cached time stands still while a callback works (renders a large answer):
     * the quiet delay runs from the request's real time. */
    usleep(150 * 1000);
    heap_trim_soon(&t);
    assert_true(t.due_ms >= t0 + 150 + 100);
    uv_run(&loop, UV_RUN_DEFAULT); /* returns once the one-shot timer ran */
    assert_int_equal(t.trims, 1);
    assert_true(t.trim_ns > 0);
    close_all(&loop, &t);
}

/* However long the quiet delay, a trim is due at most max_delay_ms after the first request. */
static void test_the_trim_waits_no_longer_than_the_bound(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct heap_trim t;

    uv_loop_init(&loop);
    heap_trim_init(&t, &loop);
    t.quiet_ms = 600000; /* the test would hang for 10 minutes without the bound */
    t.max_delay_ms = 30;
    uint64_t t0 = uv_now(&loop);
    heap_trim_soon(&t);
    assert_true(t.first_ms >= t0);
    assert_int_equal(t.due_ms, t.first_ms + 30);
    churn();
    heap_trim_soon(&t);
    assert_int_equal(t.due_ms, t.first_ms + 30);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(t.trims, 1);
    close_all(&loop, &t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests_coalesce_into_one_trim),
        cmocka_unit_test(test_nothing_runs_unasked),
        cmocka_unit_test(test_a_request_pushes_the_trim_back),
        cmocka_unit_test(test_the_trim_waits_no_longer_than_the_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
