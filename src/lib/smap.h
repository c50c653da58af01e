/*
 * Sorted map from strings to pointers: a sorted array with binary search. Lookups are
 * O(log n); inserts and removals move the tail (O(n) memmove), which stays cheap for the tens of
 * thousands of entries a registry holds, and in exchange prefix scans and ordered listings (KV
 * recurse, catalog output sorted by name) are a plain walk.
 */
#ifndef MESH_LIB_SMAP_H
#define MESH_LIB_SMAP_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/str.h"

struct smap_entry {
    char *key; /* owned by the map */
    void *val; /* owned by the caller */
};

struct smap {
    struct smap_entry *v;
    size_t n;
    size_t cap;
};

#define SMAP_INIT ((struct smap){NULL, 0, 0})

/* Frees the keys and the array; values are the caller's to free first. */
void smap_free(struct smap *m);
void *smap_get(const struct smap *m, const char *key);
/* Index of the first entry whose key is >= key (n when none). */
size_t smap_lower_bound(const struct smap *m, const char *key);
/* Inserts or replaces; returns the previous value (NULL when new). Copies key. */
void *smap_put(struct smap *m, const char *key, void *val);
/* Removes key; returns its value (NULL when absent). */
void *smap_del(struct smap *m, const char *key);
/* Removes the entry at position i and returns its value. */
void *smap_del_at(struct smap *m, size_t i);

/* Iterates over entries whose key starts with prefix: for (i = first; i < end; i++). */
void smap_prefix_range(const struct smap *m, const char *prefix, size_t *first, size_t *end);

#define smap_foreach(m, e) for (struct smap_entry *e = (m)->v; e && e < (m)->v + (m)->n; e++)

#endif
