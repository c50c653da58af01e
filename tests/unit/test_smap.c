#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/smap.h"

static int v1 = 1, v2 = 2, v3 = 3;

static void test_put_get_replace_del(void **state)
{
    struct smap m = SMAP_INIT;

    assert_null(smap_get(&m, "a"));
    assert_null(smap_del(&m, "a"));
    assert_int_equal(smap_lower_bound(&m, "a"), 0);
    assert_null(smap_put(&m, "b", &v1));
    assert_null(smap_put(&m, "a", &v2));
    assert_int_equal(m.n, 2);
    assert_ptr_equal(smap_get(&m, "b"), &v1);
    assert_ptr_equal(smap_get(&m, "a"), &v2);
    assert_null(smap_get(&m, "c"));
    assert_null(smap_get(&m, ""));

    /* Replace returns the old value and keeps one entry. */
    assert_ptr_equal(smap_put(&m, "b", &v3), &v1);
    assert_int_equal(m.n, 2);
    assert_ptr_equal(smap_get(&m, "b"), &v3);

    /* The empty key is a key like any other. */
    assert_null(smap_put(&m, "", &v1));
    assert_ptr_equal(smap_get(&m, ""), &v1);
    assert_string_equal(m.v[0].key, "");

    assert_ptr_equal(smap_del(&m, "a"), &v2);
    assert_null(smap_get(&m, "a"));
    assert_null(smap_del(&m, "a"));
    assert_int_equal(m.n, 2);
    smap_free(&m);
    assert_int_equal(m.n, 0);
    assert_null(m.v);
    /* Usable again after free. */
    assert_null(smap_put(&m, "x", &v1));
    smap_free(&m);
}

static void test_key_copied(void **state)
{
    struct smap m = SMAP_INIT;
    char key[8] = "abc";

    smap_put(&m, key, &v1);
    key[0] = 'z';
    assert_ptr_equal(smap_get(&m, "abc"), &v1);
    assert_null(smap_get(&m, "zbc"));
    smap_free(&m);
}

static void test_ordering(void **state)
{
    struct smap m = SMAP_INIT;
    const char *keys[] = {"web", "a/b", "a", "", "zz", "a/", "web2", "A", "a/b/c"};
    const char *want[] = {"", "A", "a", "a/", "a/b", "a/b/c", "web", "web2", "zz"};

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        smap_put(&m, keys[i], &v1);
    assert_int_equal(m.n, sizeof(want) / sizeof(want[0]));
    size_t i = 0;
    smap_foreach(&m, e)
    {
        assert_string_equal(e->key, want[i]);
        i++;
    }
    assert_int_equal(i, m.n);
    smap_free(&m);

    /* foreach over an empty map does nothing */
    smap_foreach(&m, e) fail();
}

static void test_lower_bound(void **state)
{
    struct smap m = SMAP_INIT;
    smap_put(&m, "b", &v1);
    smap_put(&m, "d", &v1);
    smap_put(&m, "f", &v1);

    assert_int_equal(smap_lower_bound(&m, ""), 0);
    assert_int_equal(smap_lower_bound(&m, "a"), 0);
    assert_int_equal(smap_lower_bound(&m, "b"), 0);
    assert_int_equal(smap_lower_bound(&m, "ba"), 1);
    assert_int_equal(smap_lower_bound(&m, "c"), 1);
    assert_int_equal(smap_lower_bound(&m, "d"), 1);
    assert_int_equal(smap_lower_bound(&m, "e"), 2);
    assert_int_equal(smap_lower_bound(&m, "f"), 2);
    assert_int_equal(smap_lower_bound(&m, "g"), 3);
    smap_free(&m);
}

static void check_range(const struct smap *m, const char *prefix, size_t want_first,
                        size_t want_end)
{
    size_t first = 99, end = 99;
    smap_prefix_range(m, prefix, &first, &end);
    assert_int_equal(first, want_first);
    assert_int_equal(end, want_end);
}

static void test_prefix_range(void **state)
{
    struct smap m = SMAP_INIT;

    check_range(&m, "", 0, 0);
    check_range(&m, "a", 0, 0);
    /* 0:"a" 1:"a/" 2:"a/b" 3:"a/b/c" 4:"a0" 5:"ab" 6:"b" */
    const char *keys[] = {"a", "a/", "a/b", "a/b/c", "a0", "ab", "b"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        smap_put(&m, keys[i], &v1);

    check_range(&m, "", 0, 7);
    check_range(&m, "a", 0, 6);
    check_range(&m, "a/", 1, 4);
    check_range(&m, "a/b", 2, 4);    /* a full key is its own prefix */
    check_range(&m, "a/b/c", 3, 4);  /* last key of its run */
    check_range(&m, "a/b/c/", 4, 4); /* nothing: empty range at the insertion point */
    check_range(&m, "ab", 5, 6);
    check_range(&m, "b", 6, 7);
    check_range(&m, "c", 7, 7);
    check_range(&m, "0", 0, 0);
    smap_free(&m);
}

static void test_del_at(void **state)
{
    struct smap m = SMAP_INIT;
    smap_put(&m, "a", &v1);
    smap_put(&m, "b", &v2);
    smap_put(&m, "c", &v3);

    assert_ptr_equal(smap_del_at(&m, 1), &v2);
    assert_int_equal(m.n, 2);
    assert_string_equal(m.v[0].key, "a");
    assert_string_equal(m.v[1].key, "c");
    assert_ptr_equal(smap_del_at(&m, 1), &v3); /* last */
    assert_ptr_equal(smap_del_at(&m, 0), &v1); /* only */
    assert_int_equal(m.n, 0);
    assert_null(smap_get(&m, "a"));

    /* Delete a prefix range from the back while walking it, as KV recurse deletes do. */
    smap_put(&m, "k/1", &v1);
    smap_put(&m, "k/2", &v1);
    smap_put(&m, "k/3", &v1);
    smap_put(&m, "l", &v2);
    size_t first, end;
    smap_prefix_range(&m, "k/", &first, &end);
    while (end > first)
        smap_del_at(&m, --end);
    assert_int_equal(m.n, 1);
    assert_string_equal(m.v[0].key, "l");
    smap_free(&m);
}

/* A plain reference: unsorted array with linear search. */
struct ref_entry {
    char key[16];
    intptr_t val;
    int live;
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_random_against_reference(void **state)
{
    enum { NKEYS = 3000, OPS = 20000 };
    struct smap m = SMAP_INIT;
    struct ref_entry *ref = calloc(NKEYS, sizeof(*ref));
    unsigned seed = 12345;

    for (size_t i = 0; i < NKEYS; i++)
        snprintf(ref[i].key, sizeof(ref[i].key), "k%x/%u", (unsigned)(i * 2654435761u) % 97,
                 (unsigned)i);
    for (int op = 0; op < OPS; op++) {
        seed = seed * 1103515245u + 12345u;
        size_t k = (seed >> 8) % NKEYS;
        int kind = (int)((seed >> 4) % 4);
        if (kind < 3) {
            intptr_t v = op + 1;
            void *old = smap_put(&m, ref[k].key, (void *)v);
            assert_int_equal((intptr_t)old, ref[k].live ? ref[k].val : 0);
            ref[k].val = v;
            ref[k].live = 1;
        } else {
            void *old = smap_del(&m, ref[k].key);
            assert_int_equal((intptr_t)old, ref[k].live ? ref[k].val : 0);
            ref[k].live = 0;
        }
    }
    size_t live = 0;
    char **sorted = calloc(NKEYS, sizeof(*sorted));
    for (size_t i = 0; i < NKEYS; i++) {
        assert_int_equal((intptr_t)smap_get(&m, ref[i].key), ref[i].live ? ref[i].val : 0);
        if (ref[i].live)
            sorted[live++] = ref[i].key;
    }
    assert_int_equal(m.n, live);
    qsort(sorted, live, sizeof(*sorted), cmp_str);
    for (size_t i = 0; i < live; i++)
        assert_string_equal(m.v[i].key, sorted[i]);

    /* Prefix ranges agree with a count over the reference. */
    const char *prefixes[] = {"", "k", "k1", "k1/", "k5/1", "k60/", "zz"};
    for (size_t p = 0; p < sizeof(prefixes) / sizeof(prefixes[0]); p++) {
        size_t want = 0, plen = strlen(prefixes[p]);
        for (size_t i = 0; i < live; i++)
            want += strncmp(sorted[i], prefixes[p], plen) == 0;
        size_t first, end;
        smap_prefix_range(&m, prefixes[p], &first, &end);
        assert_int_equal(end - first, want);
        for (size_t i = first; i < end; i++)
            assert_int_equal(strncmp(m.v[i].key, prefixes[p], plen), 0);
    }
    free(sorted);
    free(ref);
    smap_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_replace_del),
        cmocka_unit_test(test_key_copied),
        cmocka_unit_test(test_ordering),
        cmocka_unit_test(test_lower_bound),
        cmocka_unit_test(test_prefix_range),
        cmocka_unit_test(test_del_at),
        cmocka_unit_test(test_random_against_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
