/*
 * Interned JSON values of the catalog (internal to state*.c).
 *
 * A service's Meta, TaggedAddresses, Proxy and Connect and a check's Definition are free-form
 * JSON kept as jansson trees, and a tree costs about 100 bytes per member. Most of them repeat:
 * the instances of one service carry the same Meta, every TTL check of one period the same
 * Definition. The state stores each distinct value once and counts its holders, as a string
 * table interns strings: 1,000 identical Definitions cost one tree, not 1.5 MB.
 *
 * An interned value is shared, so it is read-only: nothing may change it in place (readers
 * that need a changed copy take json_deep_copy, as the renderers do). Values are matched by
 * json_equal, so two values that json_equal calls equal share one tree, whichever of them came
 * first: an object's member order is not kept across values that differ only in it.
 */
#ifndef MESH_REGISTRY_STATE_INTERN_H
#define MESH_REGISTRY_STATE_INTERN_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct reg_json_slot {
    json_t *v; /* NULL: free */
    uint64_t hash;
    size_t holders;
};

/* Open addressing with linear probing; zeroed is empty. */
struct reg_json_pool {
    struct reg_json_slot *slots;
    size_t cap; /* 0 or a power of two */
    size_t n;
};

/*
 * The pool's value equal to v, with one holder more: a new entry (a deep copy of v) when there
 * is none. NULL for NULL. Release what it returns with reg_json_release, never json_decref.
 */
json_t *reg_json_intern(struct reg_json_pool *p, const json_t *v);
/* One holder less; the value goes with its last holder. NULL is ignored. */
void reg_json_release(struct reg_json_pool *p, json_t *v);
/* Frees the table; every holder must have released first. */
void reg_json_pool_free(struct reg_json_pool *p);

#endif
