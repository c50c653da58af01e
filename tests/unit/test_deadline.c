/*
 * Deadlines (lib/deadline.c) on a real loop: they expire once, never before their time, after
 * being moved later or earlier; a cleared one never expires; and moving one later leaves the
 * armed timer alone (the point of them).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lib/deadline.h"
#include "run_until.h"

struct probe {
    struct deadline d;
    int fired;
    uint64_t fired_at; /* uv_now */
    int closed;
};

static void on_expiry(struct deadline *d)
{
    struct probe *p = d->data;
    p->fired++;
    p->fired_at = uv_now(d->timer.loop);
}

static void on_closed(uv_handle_t *h)
{
    struct probe *p = h->data;
    p->closed++;
}

static void close_probe(uv_loop_t *loop, struct probe *p)
{
    deadline_close(&p->d, on_closed);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(p->closed, 1);
    assert_int_equal(uv_loop_close(loop), 0);
}

static void test_expires_once_not_before_its_time(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct probe p = {0};

    uv_loop_init(&loop);
    deadline_init(&p.d, &loop, on_expiry, &p);
    uint64_t t0 = uv_now(&loop);
    deadline_set(&p.d, 20);
    RUN_UNTIL(&loop, p.fired == 1);
    assert_true(p.fired_at >= t0 + 20);
    for (int i = 0; i < 30; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        uv_sleep(1);
    }
    assert_int_equal(p.fired, 1);
    close_probe(&loop, &p);
}

static void test_moved_later_expires_at_the_new_time_without_rearming(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct probe p = {0};

    uv_loop_init(&loop);
    deadline_init(&p.d, &loop, on_expiry, &p);
    deadline_set(&p.d, 10);
    uint64_t armed = p.d.armed;
    deadline_set(&p.d, 60); /* later: the armed timer stays as it was */
    assert_int_equal(p.d.armed, armed);
    uint64_t due = p.d.due;
    RUN_UNTIL(&loop, p.fired == 1);
    assert_true(p.fired_at >= due); /* the early wake-up re-armed instead of expiring */
    close_probe(&loop, &p);
}

static void test_moved_earlier_expires_early(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct probe p = {0};

    uv_loop_init(&loop);
    deadline_init(&p.d, &loop, on_expiry, &p);
    deadline_set(&p.d, 60000);
    deadline_set(&p.d, 10);
    assert_int_equal(p.d.armed, p.d.due);
    RUN_UNTIL(&loop, p.fired == 1);
    close_probe(&loop, &p);
}

static void test_cleared_never_expires_and_can_be_set_again(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct probe p = {0};

    uv_loop_init(&loop);
    deadline_init(&p.d, &loop, on_expiry, &p);
    deadline_set(&p.d, 5);
    deadline_clear(&p.d);
    RUN_UNTIL(&loop, p.d.armed == 0); /* the timer went off, for nothing */
    assert_int_equal(p.fired, 0);
    deadline_set(&p.d, 5);
    RUN_UNTIL(&loop, p.fired == 1);
    close_probe(&loop, &p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expires_once_not_before_its_time),
        cmocka_unit_test(test_moved_later_expires_at_the_new_time_without_rearming),
        cmocka_unit_test(test_moved_earlier_expires_early),
        cmocka_unit_test(test_cleared_never_expires_and_can_be_set_again),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
