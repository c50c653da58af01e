#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/list.h"

/* The node sits away from the start, so an entry computed without its offset would be wrong. */
struct item {
    int value;
    struct list_node link;
};

/* The values of head's list, first to last, into out (at most n); the count. */
static size_t values(struct list_node *head, int *out, size_t n)
{
    struct item *it;
    size_t k = 0;

    LIST_FOR_EACH(it, head, link) {
        if (k < n)
            out[k] = it->value;
        k++;
    }
    return k;
}

static void assert_values(struct list_node *head, const int *want, size_t n)
{
    int got[16];

    assert_int_equal(values(head, got, 16), n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(got[i], want[i]);
    /* The links back agree with the links forward. */
    struct item *it;
    size_t i = n;
    LIST_FOR_EACH_REVERSE(it, head, link) {
        assert_true(i > 0);
        assert_int_equal(it->value, want[--i]);
    }
    assert_int_equal(i, 0);
}

static void test_empty_list(void **state)
{
    struct list_node head;
    struct item *it;
    int visits = 0;

    (void)state;
    list_init(&head);
    assert_true(list_empty(&head));
    assert_null(list_first(&head));
    assert_null(list_last(&head));
    assert_null(LIST_ENTRY(list_first(&head), struct item, link));
    LIST_FOR_EACH(it, &head, link)
        visits++;
    assert_int_equal(visits, 0);
}

static void test_insert_at_either_end(void **state)
{
    struct item a = {.value = 1}, b = {.value = 2}, c = {.value = 3};
    struct list_node head;

    (void)state;
    list_init(&head);
    assert_false(list_linked(&a.link)); /* zeroed memory is an unlinked node */
    list_insert_tail(&head, &b.link);
    list_insert_head(&head, &a.link);
    list_insert_tail(&head, &c.link);
    assert_true(list_linked(&a.link));
    assert_false(list_empty(&head));
    assert_values(&head, (int[]){1, 2, 3}, 3);
    assert_ptr_equal(LIST_ENTRY(list_first(&head), struct item, link), &a);
    assert_ptr_equal(LIST_ENTRY(list_last(&head), struct item, link), &c);
}

static void test_remove_anywhere_and_reinsert(void **state)
{
    struct item it[4] = {{.value = 0}, {.value = 1}, {.value = 2}, {.value = 3}};
    struct list_node head;

    (void)state;
    list_init(&head);
    for (int i = 0; i < 4; i++)
        list_insert_tail(&head, &it[i].link);

    list_remove(&it[2].link); /* middle */
    assert_false(list_linked(&it[2].link));
    assert_values(&head, (int[]){0, 1, 3}, 3);
    list_remove(&it[0].link); /* first */
    assert_values(&head, (int[]){1, 3}, 2);
    list_remove(&it[3].link); /* last */
    assert_values(&head, (int[]){1}, 1);

    /* A removed node goes back in like a new one: moved to the front, as an LRU does. */
    list_insert_tail(&head, &it[3].link);
    list_remove(&it[3].link);
    list_insert_head(&head, &it[3].link);
    assert_values(&head, (int[]){3, 1}, 2);

    list_remove(&it[1].link);
    list_remove(&it[3].link);
    assert_true(list_empty(&head));
    assert_null(list_first(&head));
}

/* The walk reads its next step before the body runs: the body may unlink or free its entry. */
static void test_walk_survives_removing_the_current_entry(void **state)
{
    struct list_node head;
    struct item *it;

    (void)state;
    list_init(&head);
    for (int i = 0; i < 6; i++) {
        struct item *n = calloc(1, sizeof(*n));
        assert_non_null(n);
        n->value = i;
        list_insert_tail(&head, &n->link);
    }
    LIST_FOR_EACH(it, &head, link) {
        if (it->value % 2 == 0) {
            list_remove(&it->link);
            free(it); /* ASan reports any later read of it */
        }
    }
    assert_values(&head, (int[]){1, 3, 5}, 3);

    LIST_FOR_EACH_REVERSE(it, &head, link) {
        if (it->value == 5 || it->value == 1) {
            list_remove(&it->link);
            free(it);
        }
    }
    assert_values(&head, (int[]){3}, 1);

    LIST_FOR_EACH(it, &head, link) {
        list_remove(&it->link);
        free(it);
    }
    assert_true(list_empty(&head));
}

/* Runs fn in a child with stderr silenced; true when the child died of SIGABRT. */
static bool aborts(void (*fn)(void))
{
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stderr))
            _exit(3);
        fn();
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

static void remove_unlinked(void)
{
    struct item a = {.value = 1};
    list_remove(&a.link);
}

static void remove_twice(void)
{
    struct item a = {.value = 1};
    struct list_node head;

    list_init(&head);
    list_insert_tail(&head, &a.link);
    list_remove(&a.link);
    list_remove(&a.link);
}

static void insert_linked(void)
{
    struct item a = {.value = 1};
    struct list_node head, other;

    list_init(&head);
    list_init(&other);
    list_insert_tail(&head, &a.link);
    list_insert_head(&other, &a.link);
}

static void insert_into_uninitialised(void)
{
    struct item a = {.value = 1};
    struct list_node head = {0};

    list_insert_tail(&head, &a.link);
}

/* A node in the wrong state is a broken invariant: fatal in debug builds (this test's). */
static void test_misuse_aborts_in_debug_builds(void **state)
{
    (void)state;
    if (!MESH_BUG_FATAL)
        skip();
    assert_true(aborts(remove_unlinked));
    assert_true(aborts(remove_twice));
    assert_true(aborts(insert_linked));
    assert_true(aborts(insert_into_uninitialised));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_list),
        cmocka_unit_test(test_insert_at_either_end),
        cmocka_unit_test(test_remove_anywhere_and_reinsert),
        cmocka_unit_test(test_walk_survives_removing_the_current_entry),
        cmocka_unit_test(test_misuse_aborts_in_debug_builds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
