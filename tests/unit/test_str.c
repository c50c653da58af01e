/* Unit tests for lib/str: the edit distance behind "did you mean" hints. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lib/str.h"

static void test_distance(void **state)
{
    char long_key[STR_DISTANCE_MAX + 2];

    (void)state;
    assert_int_equal(str_distance("url", "url"), 0);
    assert_int_equal(str_distance("ur", "url"), 1);
    assert_int_equal(str_distance("", "url"), 3);
    assert_int_equal(str_distance("timeuot", "timeout"), 1); /* a swap */
    assert_int_equal(str_distance("heders", "headers"), 1);
    assert_int_equal(str_distance("kitten", "sitting"), 3);
    assert_int_equal(str_distance("json", "body"), 4);
    memset(long_key, 'a', sizeof(long_key) - 1);
    long_key[sizeof(long_key) - 1] = '\0';
    assert_int_equal(str_distance(long_key, "a"), SIZE_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_distance),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
