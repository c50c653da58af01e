/* Raising the soft limit on open files (lib/rlimit.c), from a lowered one and at the hard one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>

#include <cmocka.h>

#include "lib/rlimit.h"

static void test_soft_limit_goes_up_to_the_hard_one(void **state)
{
    struct rlimit saved, low, now;

    assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
    if (saved.rlim_max <= 64)
        skip(); /* nothing to raise */
    low = saved;
    low.rlim_cur = 64;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    assert_int_equal(rlimit_nofile_raise(), 0);
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &now), 0);
    assert_true(now.rlim_cur == saved.rlim_max);
    assert_true(now.rlim_max == saved.rlim_max);
    /* At the hard limit already: nothing to do, and no error. */
    assert_int_equal(rlimit_nofile_raise(), 0);
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &now), 0);
    assert_true(now.rlim_cur == saved.rlim_max);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_soft_limit_goes_up_to_the_hard_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
