/*
 * UUIDs and secret random bytes from the kernel's CSPRNG (getrandom(2)). Everything meshkit mints
 * that a peer must not guess (ACL SecretIDs, session IDs, node IDs) comes from here.
 *
 * There is no fallback: if the kernel cannot give random bytes, the process aborts rather than
 * hand out a predictable secret. getrandom only fails that way on a kernel without the syscall
 * (before Linux 3.17) or under a seccomp filter that forbids it.
 */
#ifndef MESH_LIB_UUID_H
#define MESH_LIB_UUID_H

#include <stdbool.h>
#include <stddef.h>

#define UUID_STR_LEN 36 /* "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx", without the NUL */

/* Fills buf with n bytes from getrandom(2), blocking until the pool is seeded; aborts on
 * failure. */
void uuid_random_bytes(void *buf, size_t n);

/* A random RFC 4122 version 4 UUID, lower-case hex, NUL-terminated. */
void uuid_v4(char out[UUID_STR_LEN + 1]);

/* True when s is a UUID's text form: 8-4-4-4-12 hex digits (either case), nothing more. */
bool uuid_is_text(const char *s);

/* Formats 16 bytes as a version 4 UUID, setting the version and variant bits (for UUIDs
 * derived from other data, e.g. a hash). */
void uuid_format_v4(const unsigned char bytes[16], char out[UUID_STR_LEN + 1]);

#endif
