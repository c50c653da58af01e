#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/bug.h"

static void test_false_condition_passes_through(void **state)
{
    int evaluations = 0;

    (void)state;
    assert_false(MESH_BUG_ON(++evaluations == 0));
    assert_int_equal(evaluations, 1); /* evaluated exactly once */
}

/* Debug builds (this test's) abort on a broken invariant: prove it in a child. */
static void test_true_condition_aborts_in_debug_builds(void **state)
{
    (void)state;
    if (!MESH_BUG_FATAL)
        skip();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* Keep the child's expected report out of the test log. */
        if (!freopen("/dev/null", "w", stderr))
            _exit(3);
        int broken = 1;
        (void)MESH_BUG_ON(broken == 1);
        _exit(0); /* not reached when the macro is fatal */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_false_condition_passes_through),
        cmocka_unit_test(test_true_condition_aborts_in_debug_builds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
