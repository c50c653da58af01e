/* Standard base64 (RFC 4648 with padding), as Consul's KV values use. */
#ifndef MESH_LIB_BASE64_H
#define MESH_LIB_BASE64_H

#include <stddef.h>

/* Returns a heap NUL-terminated string. */
char *base64_encode(const void *data, size_t len);
/* Returns heap bytes (NUL-terminated for convenience) and *len, or NULL on malformed input. */
unsigned char *base64_decode(const char *s, size_t *len);

#endif
