/* Hex digests against the published test vectors (FIPS 180-2, RFC 1321, RFC 4231). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "lib/digest.h"

static void test_sha256(void **state)
{
    char out[DIGEST_SHA256_HEX_SIZE];

    digest_sha256_hex("", 0, out);
    assert_string_equal(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    digest_sha256_hex("abc", 3, out);
    assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    /* bytes, not a C string: the NUL is hashed */
    digest_sha256_hex("\0", 1, out);
    assert_string_equal(out, "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
}

static void test_md5(void **state)
{
    char out[DIGEST_MD5_HEX_SIZE];

    digest_md5_hex("", 0, out);
    assert_string_equal(out, "d41d8cd98f00b204e9800998ecf8427e");
    digest_md5_hex("message digest", 14, out);
    assert_string_equal(out, "f96b697d7cb7938d525a2f31aaf161d0");
}

static void test_hmac_sha256(void **state)
{
    char out[DIGEST_SHA256_HEX_SIZE];
    const char *data = "what do ya want for nothing?";

    digest_hmac_sha256_hex("Jefe", 4, data, strlen(data), out);
    assert_string_equal(out, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_md5),
        cmocka_unit_test(test_hmac_sha256),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
