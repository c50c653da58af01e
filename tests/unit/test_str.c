/* Unit tests for lib/str: the edit distance behind "did you mean" hints, sizes for people,
 * UTF-8 encoding. */
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

static void test_format_bytes(void **state)
{
    char out[16], tiny[4];

    (void)state;
    str_format_bytes(0, out, sizeof(out));
    assert_string_equal(out, "0 B");
    str_format_bytes(512, out, sizeof(out));
    assert_string_equal(out, "512 B");
    str_format_bytes(12600, out, sizeof(out));
    assert_string_equal(out, "12.6 kB");
    str_format_bytes(3801088, out, sizeof(out));
    assert_string_equal(out, "3.8 MB");
    str_format_bytes(999960, out, sizeof(out)); /* not "1000.0 kB" */
    assert_string_equal(out, "1.0 MB");
    str_format_bytes(UINT64_MAX, out, sizeof(out));
    assert_string_equal(out, "18.4 EB");
    str_format_bytes(3801088, tiny, sizeof(tiny));
    assert_string_equal(tiny, "3.8");
}

static void test_utf8_put(void **state)
{
    static const struct {
        uint32_t cp;
        const char *utf8;
    } cases[] = {{0x41, "A"},
                 {0x7f, "\x7f"},
                 {0x80, "\xc2\x80"},
                 {0xe9, "\xc3\xa9"},
                 {0x7ff, "\xdf\xbf"},
                 {0x800, "\xe0\xa0\x80"},
                 {0xfffd, "\xef\xbf\xbd"},
                 {0x10000, "\xf0\x90\x80\x80"},
                 {0x10ffff, "\xf4\x8f\xbf\xbf"}};
    char out[4];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        size_t n = str_utf8_put(out, cases[i].cp);

        assert_int_equal(n, strlen(cases[i].utf8));
        assert_memory_equal(out, cases[i].utf8, n);
        assert_int_equal(str_utf8_seq_len((struct str){out, n}), n); /* reads back whole */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_distance),
        cmocka_unit_test(test_format_bytes),
        cmocka_unit_test(test_utf8_put),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
