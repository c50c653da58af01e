/*
 * Turning a libuv loop until a condition holds, bounded: for tests of timers on a real loop.
 * Header-only; include it after <cmocka.h> and <uv.h>.
 */
#ifndef MESH_TESTS_UNIT_RUN_UNTIL_H
#define MESH_TESTS_UNIT_RUN_UNTIL_H

/* Runs the loop until cond holds, for at most ~5 s of loop turns; asserts that it held. */
#define RUN_UNTIL(loop, cond)                                                                      \
    do {                                                                                           \
        for (int turn_ = 0; !(cond) && turn_ < 5000; turn_++) {                                    \
            uv_run((loop), UV_RUN_NOWAIT);                                                         \
            if (!(cond))                                                                           \
                uv_sleep(1);                                                                       \
        }                                                                                          \
        assert_true(cond);                                                                         \
    } while (0)

#endif
