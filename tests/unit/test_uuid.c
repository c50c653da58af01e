#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lib/uuid.h"

/* 8-4-4-4-12 lower-case hex, version 4, RFC 4122 variant (8, 9, a or b). */
static bool is_v4(const char *s)
{
    if (strlen(s) != UUID_STR_LEN)
        return false;
    for (size_t i = 0; i < UUID_STR_LEN; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !strchr("0123456789abcdef", s[i]))
            return false;
    }
    return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

static void test_format_sets_version_and_variant(void **state)
{
    unsigned char ones[16], zeros[16] = {0};
    char out[UUID_STR_LEN + 1];

    (void)state;
    memset(ones, 0xff, sizeof(ones));
    uuid_format_v4(ones, out);
    assert_string_equal(out, "ffffffff-ffff-4fff-bfff-ffffffffffff");
    uuid_format_v4(zeros, out);
    assert_string_equal(out, "00000000-0000-4000-8000-000000000000");
    const unsigned char seq[16] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
                                   0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
    uuid_format_v4(seq, out);
    assert_string_equal(out, "01234567-89ab-4def-8123-456789abcdef");
}

/* Many draws: all well-formed, all distinct, and every hex digit of the random positions shows
 * up (a generator stuck on a constant or on a few bits would fail). */
static void test_v4_random_and_distinct(void **state)
{
    enum { N = 512 };
    static char ids[N][UUID_STR_LEN + 1];
    bool seen[16] = {false};

    (void)state;
    for (size_t i = 0; i < N; i++) {
        uuid_v4(ids[i]);
        assert_true(is_v4(ids[i]));
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(ids[i], ids[j]);
        const char *digit = strchr("0123456789abcdef", ids[i][0]);
        seen[digit - "0123456789abcdef"] = true;
    }
    for (size_t d = 0; d < 16; d++)
        assert_true(seen[d]);
}

static void test_random_bytes_fill_large_buffers(void **state)
{
    static unsigned char buf[1 << 16];
    size_t zeros = 0;

    (void)state;
    memset(buf, 0, sizeof(buf));
    uuid_random_bytes(buf, sizeof(buf));
    for (size_t i = 0; i < sizeof(buf); i++)
        zeros += buf[i] == 0;
    /* 1/256 expected: 256 of 65536; far from all-zero and far from none. */
    assert_in_range(zeros, 64, 1024);
    uuid_random_bytes(buf, 0); /* nothing to do, no call needed */
}

/* The text form only: what a node-id file or a prepared query's ID must hold. */
static void test_is_text(void **state)
{
    char id[UUID_STR_LEN + 1];

    (void)state;
    uuid_v4(id);
    assert_true(uuid_is_text(id));
    assert_true(uuid_is_text("0123ABCD-ef01-4abc-89AB-0123456789ab"));
    assert_false(uuid_is_text(""));
    assert_false(uuid_is_text("0123abcd-ef01-4abc-89ab-0123456789a"));   /* one digit short */
    assert_false(uuid_is_text("0123abcd-ef01-4abc-89ab-0123456789abc")); /* one too many */
    assert_false(uuid_is_text("0123abcd-ef01-4abc-89ab-0123456789ag"));  /* not hex */
    assert_false(uuid_is_text("0123abcdef01-4abc-89ab-0123456789ab-"));  /* dash moved */
    id[10] = (char)0xb4;
    assert_false(uuid_is_text(id));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_sets_version_and_variant),
        cmocka_unit_test(test_v4_random_and_distinct),
        cmocka_unit_test(test_random_bytes_fill_large_buffers),
        cmocka_unit_test(test_is_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
