/*
 * Growable byte buffer. Owns its memory; data is always NUL-terminated past len so it can be
 * handed to C string functions, but may contain NULs.
 */
#ifndef MESH_LIB_BUF_H
#define MESH_LIB_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include "lib/str.h"

struct buf {
    char *data;
    size_t len;
    size_t cap;
};

#define BUF_INIT ((struct buf){NULL, 0, 0})

void buf_free(struct buf *b);
/* Makes room for `extra` more bytes (plus the terminator): buf_reserve's slow path. */
void buf_grow(struct buf *b, size_t extra);

/*
 * The appends are inline: a proxied request makes about twenty small ones (its rewritten
 * heads), and the room is nearly always there already.
 */

/* Ensures room for `extra` more bytes (plus the terminator). */
static inline void buf_reserve(struct buf *b, size_t extra)
{
    /*
     * len <= cap always, so this cannot wrap where len + extra + 1 could. No storage means cap 0,
     * so the second test adds nothing but says it where clang's analyzer sees it: it loses the
     * sign of a length cast from a regoff_t and took an empty buffer for one with room.
     */
    if (extra >= b->cap - b->len || !b->data)
        buf_grow(b, extra);
}

static inline void buf_append(struct buf *b, const void *p, size_t n)
{
    buf_reserve(b, n);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static inline void buf_append_str(struct buf *b, struct str s)
{
    buf_append(b, s.p, s.n);
}

static inline void buf_append_cstr(struct buf *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Removes the first n bytes (n <= len), keeping the rest. */
void buf_consume(struct buf *b, size_t n);
void buf_reset(struct buf *b);
/* Gives the heap string to the caller (who frees it) and leaves b empty. Never NULL. */
char *buf_steal(struct buf *b);

static inline struct str buf_str(const struct buf *b)
{
    return (struct str){b->data, b->len};
}

#endif
