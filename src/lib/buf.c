#include "lib/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lib/alloc.h"

void buf_free(struct buf *b)
{
    FREE_NULL(b->data);
    b->len = b->cap = 0;
}

void buf_grow(struct buf *b, size_t extra)
{
    if (extra < b->cap - b->len)
        return;
    /* A size no allocation can hold: the allocator's out-of-memory path, not a wrapped sum. */
    size_t need = extra < SIZE_MAX / 2 - b->len ? b->len + extra + 1 : SIZE_MAX;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need && cap <= SIZE_MAX / 2)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
    b->data[b->len] = '\0';
}

void buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
    va_list ap2;

    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n <= 0)
        return;
    buf_reserve(b, (size_t)n);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void buf_consume(struct buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
    } else {
        memmove(b->data, b->data + n, b->len - n);
        b->len -= n;
    }
    if (b->data)
        b->data[b->len] = '\0';
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

char *buf_steal(struct buf *b)
{
    buf_reserve(b, 0);
    char *s = b->data;
    b->data = NULL;
    b->len = b->cap = 0;
    return s;
}
