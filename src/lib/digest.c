#include "lib/digest.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

static void to_hex(const unsigned char *md, unsigned n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (unsigned i = 0; i < n; i++) {
        out[2 * i] = digits[md[i] >> 4];
        out[2 * i + 1] = digits[md[i] & 0xf];
    }
    out[2 * n] = '\0';
}

/* OpenSSL fails these only without memory or with its default provider missing. Neither is
 * recoverable here and a wrong checksum must never be printed: abort, as allocators do. */
static void fail(const char *what)
{
    fprintf(stderr, "fatal: %s failed\n", what);
    abort();
}

static void digest_hex(const EVP_MD *type, const void *data, size_t len, char *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;

    if (EVP_Digest(data, len, md, &n, type, NULL) != 1)
        fail("EVP_Digest");
    to_hex(md, n, out);
}

void digest_sha256_hex(const void *data, size_t len, char out[DIGEST_SHA256_HEX_SIZE])
{
    digest_hex(EVP_sha256(), data, len, out);
}

void digest_md5_hex(const void *data, size_t len, char out[DIGEST_MD5_HEX_SIZE])
{
    digest_hex(EVP_md5(), data, len, out);
}

void digest_hmac_sha256_hex(const void *key, size_t keylen, const void *data, size_t len,
                            char out[DIGEST_SHA256_HEX_SIZE])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;

    if (keylen > INT_MAX || !HMAC(EVP_sha256(), key, (int)keylen, data, len, md, &n))
        fail("HMAC");
    to_hex(md, n, out);
}
