/*
 * Turning a libuv loop until a condition holds, bounded: for tests of timers on a real loop.
 * Header-only; include it after <cmocka.h> and <uv.h>.
 */
#ifndef MESH_TESTS_UNIT_RUN_UNTIL_H
#define MESH_TESTS_UNIT_RUN_UNTIL_H

/* Runs the loop until cond holds, for at most ~ms milliseconds of loop turns; asserts that it
 * held. */
#define RUN_UNTIL_MS(loop, cond, ms)                                                               \
    do {                                                                                           \
        for (int turn_ = 0; !(cond) && turn_ < (ms); turn_++) {                                    \
            uv_run((loop), UV_RUN_NOWAIT);                                                         \
            if (!(cond))                                                                           \
                uv_sleep(1);                                                                       \
        }                                                                                          \
        assert_true(cond);                                                                         \
    } while (0)

/* The same for at most ~5 s. */
#define RUN_UNTIL(loop, cond) RUN_UNTIL_MS(loop, cond, 5000)

#endif
