#include "lib/uuid.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

void uuid_random_bytes(void *buf, size_t n)
{
    unsigned char *p = buf;

    /* getrandom returns at most 32 MiB per call and may be cut short by a signal. */
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            fprintf(stderr, "fatal: getrandom failed (%s): refusing to mint predictable IDs\n",
                    got < 0 ? strerror(errno) : "no bytes");
            abort();
        }
        p += got;
        n -= (size_t)got;
    }
}

bool uuid_is_text(const char *s)
{
    static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";

    if (strlen(s) != sizeof(shape) - 1)
        return false;
    for (size_t i = 0; shape[i]; i++)
        if (shape[i] == '-' ? s[i] != '-' : !strchr("0123456789abcdefABCDEF", s[i]))
            return false;
    return true;
}

void uuid_format_v4(const unsigned char bytes[16], char out[UUID_STR_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    size_t o = 0;

    memcpy(b, bytes, sizeof(b));
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    for (size_t i = 0; i < sizeof(b); i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 0x0f];
    }
    out[o] = '\0';
}

void uuid_v4(char out[UUID_STR_LEN + 1])
{
    unsigned char b[16];

    uuid_random_bytes(b, sizeof(b));
    uuid_format_v4(b, out);
}
