/*
 * Message digests as lowercase hex, the form checksums are printed in (sha256sum, md5sum, Go's
 * hex.EncodeToString). Computed by OpenSSL, which the core already links for TLS; this header
 * keeps its types out of the components.
 */
#ifndef MESH_LIB_DIGEST_H
#define MESH_LIB_DIGEST_H

#include <stddef.h>

#define DIGEST_SHA256_HEX_SIZE 65 /* 64 hex digits and the NUL */
#define DIGEST_MD5_HEX_SIZE    33

/* Each writes the digest of len bytes of data (any bytes, NULs included) into out, NUL-ended. */
void digest_sha256_hex(const void *data, size_t len, char out[DIGEST_SHA256_HEX_SIZE]);
void digest_md5_hex(const void *data, size_t len, char out[DIGEST_MD5_HEX_SIZE]);
/* HMAC-SHA256 (RFC 2104) of data under key. */
void digest_hmac_sha256_hex(const void *key, size_t keylen, const void *data, size_t len,
                            char out[DIGEST_SHA256_HEX_SIZE]);

#endif
