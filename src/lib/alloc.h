/*
 * Allocation that never returns NULL: on out-of-memory the process logs and aborts, so call
 * sites do not test results. (The supervisor restarts what dies; a half-handled ENOMEM is worse.)
 *
 * jansson allocates through xmalloc too: every binary that links this file sets it up before
 * main (json_set_alloc_funcs), so a json_object() or json_dumps() that returns NULL for want of
 * memory, unchecked at a call site, cannot happen. Its strings are still freed with free().
 */
#ifndef MESH_LIB_ALLOC_H
#define MESH_LIB_ALLOC_H

#include <stddef.h>
#include <stdlib.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
/*
 * count zeroed objects of size bytes at an address that is a multiple of align (a power of
 * two, at least sizeof(void *)): per-thread data kept on cache lines of its own. free() it.
 */
void *xcalloc_aligned(size_t count, size_t size, size_t align);
char *xstrdup(const char *s);
/* Copies n bytes of s and NUL-terminates; s need not be terminated. */
char *xstrndup(const char *s, size_t n);
/* Duplicates n bytes (no terminator added). */
void *xmemdup(const void *p, size_t n);
/* printf into a fresh heap string. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Frees and clears the pointer, so no reachable pointer dangles. */
#define FREE_NULL(p)                                                                               \
    do {                                                                                           \
        free(p);                                                                                   \
        (p) = NULL;                                                                                \
    } while (0)

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* container_of: the struct that embeds member `m` at address `p`. */
#define CONTAINER_OF(p, type, m) ((type *)((char *)(p)-offsetof(type, m)))

#endif
