/*
 * The timing wheel (lib/timerwheel.c) on a real loop: entries expire once and never before
 * their time, also past one turn of the wheel and after a stalled loop; a removed entry never
 * runs, even when removed by another's callback in the same tick; a callback may add entries;
 * and a wheel with nothing pending leaves the loop free to end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lib/alloc.h"
#include "lib/timerwheel.h"
#include "run_until.h"

struct probe {
    struct timerwheel_entry e;
    struct timerwheel *w;
    uint64_t added_at, ms; /* uv_now when added, and the delay asked for */
    int fired;
    uint64_t fired_at;
    struct probe *victim; /* removed by this one's callback */
    int readd;            /* times the callback adds it again */
};

static void on_expiry(struct timerwheel_entry *e)
{
    struct probe *p = CONTAINER_OF(e, struct probe, e);

    p->fired++;
    p->fired_at = uv_now(p->w->timer.loop);
    if (p->victim)
        timerwheel_del(p->w, &p->victim->e);
    if (p->readd > 0) {
        p->readd--;
        p->added_at = p->fired_at;
        timerwheel_add(p->w, &p->e, p->ms, on_expiry);
    }
}

static void add(struct timerwheel *w, struct probe *p, uint64_t ms)
{
    p->w = w;
    p->ms = ms;
    p->added_at = uv_now(w->timer.loop);
    timerwheel_add(w, &p->e, ms, on_expiry);
}

static void close_wheel(uv_loop_t *loop, struct timerwheel *w)
{
    timerwheel_close(w, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

static void test_expires_once_never_early(void **state)
{
    (void)state;
    static const uint64_t delays[] = {0, 1, 9, 10, 11, 25, 40, 100, 333};
    struct probe p[ARRAY_LEN(delays)] = {0};
    uv_loop_t loop;
    struct timerwheel w;

    uv_loop_init(&loop);
    timerwheel_init(&w, &loop, 10);
    for (size_t i = 0; i < ARRAY_LEN(delays); i++)
        add(&w, &p[i], delays[i]);
    assert_int_equal(w.count, ARRAY_LEN(delays));
    RUN_UNTIL(&loop, w.count == 0);
    for (size_t i = 0; i < ARRAY_LEN(delays); i++) {
        assert_int_equal(p[i].fired, 1);
        assert_false(timerwheel_pending(&p[i].e));
        assert_true(p[i].fired_at >= p[i].added_at + delays[i]);
    }
    /* Nothing is pending, so nothing is armed: the loop has nothing left to wait for. */
    assert_false(uv_is_active((uv_handle_t *)&w.timer));
    close_wheel(&loop, &w);
}

/* Ticks of 1 ms make a turn of the wheel TIMERWHEEL_SLOTS ms: an entry due three turns on
 * shares its slot with nearer ones and still waits for its own time. */
static void test_entries_past_a_turn_wait_their_time(void **state)
{
    (void)state;
    struct probe near = {0}, far = {0}, same_slot = {0};
    uv_loop_t loop;
    struct timerwheel w;

    uv_loop_init(&loop);
    timerwheel_init(&w, &loop, 1);
    add(&w, &far, 3 * TIMERWHEEL_SLOTS + 7);
    add(&w, &same_slot, 7);
    add(&w, &near, 3);
    RUN_UNTIL(&loop, same_slot.fired == 1);
    assert_int_equal(far.fired, 0);
    assert_true(timerwheel_pending(&far.e));
    RUN_UNTIL(&loop, far.fired == 1);
    assert_true(far.fired_at >= far.added_at + far.ms);
    assert_int_equal(near.fired, 1);
    close_wheel(&loop, &w);
}

static void test_removed_entries_never_run(void **state)
{
    (void)state;
    struct probe a = {0}, b = {0}, c = {0}, d = {0};
    uv_loop_t loop;
    struct timerwheel w;

    uv_loop_init(&loop);
    timerwheel_init(&w, &loop, 10);
    add(&w, &a, 5);
    add(&w, &b, 5); /* same tick as a: whichever runs first removes the other */
    a.victim = &b;
    b.victim = &a;
    add(&w, &c, 30);
    add(&w, &d, 15);
    timerwheel_del(&w, &c.e);
    timerwheel_del(&w, &c.e); /* twice is harmless */
    RUN_UNTIL(&loop, d.fired == 1);
    assert_int_equal(a.fired + b.fired, 1);
    assert_int_equal(c.fired, 0);
    assert_int_equal(w.count, 0);
    for (int i = 0; i < 50; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        uv_sleep(1);
    }
    assert_int_equal(c.fired, 0);
    assert_int_equal(a.fired + b.fired, 1);
    close_wheel(&loop, &w);
}

static void test_callback_adds_again(void **state)
{
    (void)state;
    struct probe p = {0}, now = {0};
    uv_loop_t loop;
    struct timerwheel w;

    uv_loop_init(&loop);
    timerwheel_init(&w, &loop, 5);
    p.readd = 3;
    add(&w, &p, 12);
    now.readd = 2; /* at once, from inside the tick that ran it: the next tick runs it */
    add(&w, &now, 0);
    RUN_UNTIL(&loop, p.fired == 4 && now.fired == 3);
    assert_true(p.fired_at >= p.added_at + 12);
    assert_int_equal(w.count, 0);
    close_wheel(&loop, &w);
}

static void stall(uv_timer_t *t)
{
    uv_sleep(*(unsigned *)t->data);
}

/* A loop that stalls for longer than a turn runs every entry that came due meanwhile, and the
 * ones not yet due still wait. */
static void test_stalled_loop_catches_up(void **state)
{
    (void)state;
    enum { N = 40 };
    struct probe p[N] = {0}, later = {0};
    unsigned stall_ms = 2 * TIMERWHEEL_SLOTS;
    uv_loop_t loop;
    uv_timer_t staller;
    struct timerwheel w;

    uv_loop_init(&loop);
    timerwheel_init(&w, &loop, 1);
    for (int i = 0; i < N; i++)
        add(&w, &p[i], (uint64_t)i * 37 % (3 * TIMERWHEEL_SLOTS / 2) + 1);
    add(&w, &later, 4 * TIMERWHEEL_SLOTS);
    uv_timer_init(&loop, &staller);
    staller.data = &stall_ms;
    uv_timer_start(&staller, stall, 0, 0);
    RUN_UNTIL(&loop, w.count == 1);
    for (int i = 0; i < N; i++) {
        assert_int_equal(p[i].fired, 1);
        assert_true(p[i].fired_at >= p[i].added_at + p[i].ms);
    }
    assert_int_equal(later.fired, 0);
    RUN_UNTIL(&loop, later.fired == 1);
    assert_true(later.fired_at >= later.added_at + later.ms);
    uv_close((uv_handle_t *)&staller, NULL);
    close_wheel(&loop, &w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expires_once_never_early),
        cmocka_unit_test(test_entries_past_a_turn_wait_their_time),
        cmocka_unit_test(test_removed_entries_never_run),
        cmocka_unit_test(test_callback_adds_again),
        cmocka_unit_test(test_stalled_loop_catches_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
