#include "registry/state/state_intern.h"

#include <string.h>

#include "lib/alloc.h"
#include "lib/bug.h"

#define POOL_MIN_CAP 64

/* ---- hashing and equality: structural, member order included ---------------------------- */

static uint64_t mix(uint64_t h, uint64_t x)
{
    h ^= x + 0x9e3779b97f4a7c15u + (h << 6) + (h >> 2);
    return h;
}

static uint64_t hash_bytes(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3u;
    return mix(h, n);
}

static uint64_t hash_json(const json_t *v)
{
    uint64_t h = mix(0xcbf29ce484222325u, (uint64_t)json_typeof(v));
    const char *k;
    size_t klen, i;
    json_t *m;

    switch (json_typeof(v)) {
    case JSON_OBJECT:
        json_object_keylen_foreach((json_t *)v, k, klen, m) h =
            mix(hash_bytes(h, k, klen), hash_json(m));
        break;
    case JSON_ARRAY:
        json_array_foreach(v, i, m) h = mix(h, hash_json(m));
        break;
    case JSON_STRING:
        h = hash_bytes(h, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        h = mix(h, (uint64_t)json_integer_value(v));
        break;
    case JSON_REAL: {
        double d = json_real_value(v);
        uint64_t bits;
        memcpy(&bits, &d, sizeof(bits));
        h = mix(h, bits);
        break;
    }
    default: /* true, false, null: the type says it all */
        break;
    }
    return h;
}

/*
 * Equal down to how the value renders: same types (1 is not 1.0), same bits of every real (0.0
 * is not -0.0), and an object's members in the same order. So a shared value renders exactly as
 * each of its holders gave it.
 */
static bool same_json(const json_t *a, const json_t *b)
{
    if (json_typeof(a) != json_typeof(b))
        return false;
    switch (json_typeof(a)) {
    case JSON_OBJECT: {
        if (json_object_size(a) != json_object_size(b))
            return false;
        void *ia = json_object_iter((json_t *)a), *ib = json_object_iter((json_t *)b);
        for (; ia && ib; ia = json_object_iter_next((json_t *)a, ia),
                         ib = json_object_iter_next((json_t *)b, ib))
            if (json_object_iter_key_len(ia) != json_object_iter_key_len(ib) ||
                memcmp(json_object_iter_key(ia), json_object_iter_key(ib),
                       json_object_iter_key_len(ia)) != 0 ||
                !same_json(json_object_iter_value(ia), json_object_iter_value(ib)))
                return false;
        return true;
    }
    case JSON_ARRAY:
        if (json_array_size(a) != json_array_size(b))
            return false;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!same_json(json_array_get(a, i), json_array_get(b, i)))
                return false;
        return true;
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    case JSON_INTEGER:
        return json_integer_value(a) == json_integer_value(b);
    case JSON_REAL: {
        double x = json_real_value(a), y = json_real_value(b);
        return memcmp(&x, &y, sizeof(x)) == 0;
    }
    default:
        return true;
    }
}

/* ---- the table ---------------------------------------------------------------------------- */

static size_t slot_of(const struct reg_json_pool *p, uint64_t hash)
{
    return (size_t)hash & (p->cap - 1);
}

static void grow(struct reg_json_pool *p)
{
    struct reg_json_slot *old = p->slots;
    size_t old_cap = p->cap;

    p->cap = old_cap ? old_cap * 2 : POOL_MIN_CAP;
    p->slots = xcalloc(p->cap, sizeof(*p->slots));
    for (size_t i = 0; i < old_cap; i++) {
        if (!old[i].v)
            continue;
        size_t j = slot_of(p, old[i].hash);
        while (p->slots[j].v)
            j = (j + 1) & (p->cap - 1);
        p->slots[j] = old[i];
    }
    free(old);
}

json_t *reg_json_intern(struct reg_json_pool *p, const json_t *v)
{
    if (!v)
        return NULL;
    if ((p->n + 1) * 4 > p->cap * 3) /* load factor at most 3/4 */
        grow(p);
    uint64_t hash = hash_json(v);
    size_t i = slot_of(p, hash);
    for (; p->slots[i].v; i = (i + 1) & (p->cap - 1)) {
        struct reg_json_slot *s = &p->slots[i];
        if (s->hash == hash && same_json(s->v, v)) {
            s->holders++;
            return s->v;
        }
    }
    p->slots[i] = (struct reg_json_slot){json_deep_copy(v), hash, 1};
    p->n++;
    return p->slots[i].v;
}

/* Backward-shift deletion: the entries after the hole that probed past it move into it. */
static void remove_at(struct reg_json_pool *p, size_t hole)
{
    size_t mask = p->cap - 1;

    for (size_t j = (hole + 1) & mask; p->slots[j].v; j = (j + 1) & mask) {
        size_t home = slot_of(p, p->slots[j].hash);
        /* j may fill the hole unless its home lies cyclically in (hole, j]. */
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            p->slots[hole] = p->slots[j];
            hole = j;
        }
    }
    p->slots[hole] = (struct reg_json_slot){0};
    p->n--;
}

void reg_json_release(struct reg_json_pool *p, json_t *v)
{
    if (!v)
        return;
    size_t mask = p->cap - 1;
    size_t i = p->cap ? slot_of(p, hash_json(v)) : 0;
    while (p->cap && p->slots[i].v && p->slots[i].v != v)
        i = (i + 1) & mask;
    if (MESH_BUG_ON(!p->cap || !p->slots[i].v)) /* not from this pool: leave it be */
        return;
    if (--p->slots[i].holders == 0) {
        json_decref(p->slots[i].v);
        remove_at(p, i);
    }
}

void reg_json_pool_free(struct reg_json_pool *p)
{
    for (size_t i = 0; i < p->cap; i++)
        json_decref(p->slots[i].v);
    free(p->slots);
    memset(p, 0, sizeof(*p));
}
