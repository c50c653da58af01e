#include "lib/smap.h"

#include <string.h>

#include "lib/alloc.h"

void smap_free(struct smap *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->v[i].key);
    FREE_NULL(m->v);
    m->n = m->cap = 0;
}

size_t smap_lower_bound(const struct smap *m, const char *key)
{
    size_t lo = 0, hi = m->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(m->v[mid].key, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void *smap_get(const struct smap *m, const char *key)
{
    size_t i = smap_lower_bound(m, key);
    return i < m->n && strcmp(m->v[i].key, key) == 0 ? m->v[i].val : NULL;
}

void *smap_put(struct smap *m, const char *key, void *val)
{
    size_t i = smap_lower_bound(m, key);

    if (i < m->n && strcmp(m->v[i].key, key) == 0) {
        void *old = m->v[i].val;
        m->v[i].val = val;
        return old;
    }
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 16;
        m->v = xrealloc(m->v, m->cap * sizeof(*m->v));
    }
    memmove(&m->v[i + 1], &m->v[i], (m->n - i) * sizeof(*m->v));
    m->v[i].key = xstrdup(key);
    m->v[i].val = val;
    m->n++;
    return NULL;
}

void *smap_del_at(struct smap *m, size_t i)
{
    void *val = m->v[i].val;

    free(m->v[i].key);
    memmove(&m->v[i], &m->v[i + 1], (m->n - i - 1) * sizeof(*m->v));
    m->n--;
    return val;
}

void *smap_del(struct smap *m, const char *key)
{
    size_t i = smap_lower_bound(m, key);
    if (i < m->n && strcmp(m->v[i].key, key) == 0)
        return smap_del_at(m, i);
    return NULL;
}

void smap_prefix_range(const struct smap *m, const char *prefix, size_t *first, size_t *end)
{
    size_t plen = strlen(prefix);
    size_t i = smap_lower_bound(m, prefix);

    *first = i;
    while (i < m->n && strncmp(m->v[i].key, prefix, plen) == 0)
        i++;
    *end = i;
}
