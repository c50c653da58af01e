#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lib/crc32.h"

/* Check values from the CRC catalogue ("CRC-32/ISO-HDLC") and zlib's crc32(). */
static void test_known_values(void **state)
{
    (void)state;
    assert_int_equal(crc32_compute("", 0), 0x00000000u);
    assert_int_equal(crc32_compute(NULL, 0), 0x00000000u);
    assert_int_equal(crc32_compute("a", 1), 0xe8b7be43u);
    assert_int_equal(crc32_compute("123456789", 9), 0xcbf43926u);
    const char *fox = "The quick brown fox jumps over the lazy dog";
    assert_int_equal(crc32_compute(fox, strlen(fox)), 0x414fa339u);
}

static void test_binary_bytes(void **state)
{
    unsigned char zeros[32] = {0};
    unsigned char ones[32];

    (void)state;
    memset(ones, 0xff, sizeof(ones));
    /* The iSCSI vectors (RFC 3720 B.4) under this polynomial, as Python's zlib.crc32 gives. */
    assert_int_equal(crc32_compute(zeros, sizeof(zeros)), 0x190a55adu);
    assert_int_equal(crc32_compute(ones, sizeof(ones)), 0xff6cab0bu);
}

static void test_incremental_matches_one_shot(void **state)
{
    unsigned char data[1000];

    (void)state;
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (unsigned char)(i * 31 + 7);
    uint32_t whole = crc32_compute(data, sizeof(data));
    for (size_t split = 0; split <= sizeof(data); split += 37) {
        uint32_t crc = crc32_update(0, data, split);
        crc = crc32_update(crc, data + split, sizeof(data) - split);
        assert_int_equal(crc, whole);
    }
}

static void test_detects_single_bit_flip(void **state)
{
    char s[] = "{\"op\":\"kv\",\"index\":42}";
    uint32_t orig = crc32_compute(s, strlen(s));

    (void)state;
    for (size_t i = 0; i < strlen(s); i++) {
        for (int bit = 0; bit < 8; bit++) {
            s[i] ^= (char)(1 << bit);
            assert_int_not_equal(crc32_compute(s, strlen(s)), orig);
            s[i] ^= (char)(1 << bit);
        }
    }
    assert_int_equal(crc32_compute(s, strlen(s)), orig);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_values),
        cmocka_unit_test(test_binary_bytes),
        cmocka_unit_test(test_incremental_matches_one_shot),
        cmocka_unit_test(test_detects_single_bit_flip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
