/* Server pickers: the shared round robin sequence, leastconn, random two choices, skipping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/alloc.h"
#include "lb/balance.h"

static struct lb_server_set *make_set(const int *weights, size_t n)
{
    struct lb_server *v[16];
    char id[48], name[32];

    for (size_t i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "127.0.0.1:%zu", 3000 + i);
        snprintf(name, sizeof(name), "srv%zu", i + 1);
        v[i] = lb_server_new(id, name, "127.0.0.1", 3000 + (int)i, weights[i]);
    }
    struct lb_server_set *set = lb_server_set_new(v, n);
    for (size_t i = 0; i < n; i++)
        lb_server_unref(v[i]);
    return set;
}

static int index_of(struct lb_server_set *set, struct lb_server *s)
{
    for (size_t i = 0; i < set->n; i++)
        if (set->v[i] == s)
            return (int)i;
    return -1;
}

/* Picks and releases at once (no load), returning the index picked. */
static int pick_idx(struct lb_picker *p)
{
    struct lb_server *s = lb_picker_pick(p, 0, NULL, NULL);
    if (!s)
        return -1;
    lb_server_release(s);
    return index_of(p->set, s);
}

static void test_rr_5_1_1(void **state)
{
    (void)state;
    int w[] = {5, 1, 1};
    struct lb_picker p;
    lb_picker_init(&p, LB_BALANCE_ROUNDROBIN, 1);
    lb_picker_use(&p, make_set(w, 3));
    /* turns due at (k + 1/2) / w: a at .1 .3 .5 .7 .9, b and c at .5 (ties in set order) */
    int want[] = {0, 0, 0, 1, 2, 0, 0};
    for (int round = 0; round < 3; round++) {
        int count[3] = {0};
        for (int i = 0; i < 7; i++) {
            int got = pick_idx(&p);
            assert_int_equal(got, want[i]);
            count[got]++;
        }
        assert_int_equal(count[0], 5);
        assert_int_equal(count[1], 1);
        assert_int_equal(count[2], 1);
    }
    lb_picker_close(&p);
}

static void test_rr_equal_and_skips(void **state)
{
    (void)state;
    int w[] = {1, 1, 1, 0};
    struct lb_picker p;
    lb_picker_init(&p, LB_BALANCE_ROUNDROBIN, 1);
    lb_picker_use(&p, make_set(w, 4));
    int count[4] = {0};
    for (int i = 0; i < 30; i++)
        count[pick_idx(&p)]++;
    assert_int_equal(count[0], 10);
    assert_int_equal(count[1], 10);
    assert_int_equal(count[2], 10);
    assert_int_equal(count[3], 0); /* weight 0 */

    lb_server_set_state(p.set->v[1], LB_SRV_DOWN);
    lb_server_set_state(p.set->v[2], LB_SRV_DRAIN);
    for (int i = 0; i < 10; i++)
        assert_int_equal(pick_idx(&p), 0);
    lb_server_set_state(p.set->v[0], LB_SRV_MAINT);
    struct lb_server *full = (struct lb_server *)1;
    assert_null(lb_picker_pick(&p, 0, NULL, &full));
    assert_null(full); /* nothing usable at all: no queueing */
    lb_picker_close(&p);
}

static struct lb_backend *backend_new(void)
{
    struct lb_backend *b = calloc(1, sizeof(*b));
    pthread_mutex_init(&b->lock, NULL);
    return b;
}

static void backend_free(struct lb_backend *b)
{
    lb_backend_publish(b, NULL);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

/* Like pick_idx for a picker that syncs with b first, as a worker does per request. */
static int sync_pick_idx(struct lb_picker *p, struct lb_backend *b)
{
    lb_picker_sync(p, b);
    return pick_idx(p);
}

/* Two workers (pickers) taking turns share one sequence: no server twice in a row. */
static void test_rr_shared_between_workers(void **state)
{
    (void)state;
    int w[] = {1, 1, 1};
    struct lb_backend *b = backend_new();
    struct lb_picker p[2];
    lb_picker_init(&p[0], LB_BALANCE_ROUNDROBIN, 1);
    lb_picker_init(&p[1], LB_BALANCE_ROUNDROBIN, 2);
    lb_backend_publish(b, make_set(w, 3));
    /* uneven interleaving: which worker serves a request must not matter */
    int worker[] = {0, 0, 1, 0, 1, 1, 1, 0, 1, 0, 0, 0};
    for (size_t i = 0; i < ARRAY_LEN(worker); i++)
        assert_int_equal(sync_pick_idx(&p[worker[i]], b), (int)(i % 3));

    /* a server going down is skipped without breaking the alternation of the others */
    lb_server_set_state(b->current->v[1], LB_SRV_DOWN);
    int last = -1;
    for (int i = 0; i < 12; i++) {
        int got = sync_pick_idx(&p[i % 3 == 0], b);
        assert_int_not_equal(got, 1);
        assert_int_not_equal(got, last);
        last = got;
    }
    lb_picker_close(&p[0]);
    lb_picker_close(&p[1]);
    backend_free(b);
}

/* A weight change reaches the shared sequence at the next pick of any worker. */
static void test_rr_reweigh(void **state)
{
    (void)state;
    int w[] = {1, 1};
    struct lb_backend *b = backend_new();
    struct lb_picker p[2];
    lb_picker_init(&p[0], LB_BALANCE_ROUNDROBIN, 1);
    lb_picker_init(&p[1], LB_BALANCE_ROUNDROBIN, 2);
    lb_backend_publish(b, make_set(w, 2));
    assert_int_equal(sync_pick_idx(&p[0], b), 0);
    assert_int_equal(sync_pick_idx(&p[1], b), 1);
    struct lb_server_set *before = b->current;
    lb_server_set_weight(before->v[0], 3);
    int count[2] = {0};
    for (int i = 0; i < 40; i++)
        count[sync_pick_idx(&p[i % 2], b)]++;
    assert_ptr_not_equal(b->current, before);
    assert_int_equal(count[0], 30);
    assert_int_equal(count[1], 10);
    lb_picker_close(&p[0]);
    lb_picker_close(&p[1]);
    backend_free(b);
}

static void test_maxconn_full(void **state)
{
    (void)state;
    int w[] = {1, 1};
    struct lb_picker p;
    lb_picker_init(&p, LB_BALANCE_ROUNDROBIN, 1);
    lb_picker_use(&p, make_set(w, 2));
    struct lb_server *a = lb_picker_pick(&p, 1, NULL, NULL);
    struct lb_server *b = lb_picker_pick(&p, 1, NULL, NULL);
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    assert_int_equal(lb_read(&a->c.scur), 1);
    struct lb_server *full = NULL;
    assert_null(lb_picker_pick(&p, 1, NULL, &full));
    assert_non_null(full); /* usable but full: the request may queue */
    lb_server_release(b);
    assert_ptr_equal(lb_picker_pick(&p, 1, NULL, NULL), b);
    lb_server_release(a);
    lb_server_release(b);
    assert_int_equal(lb_read(&a->c.scur), 0);
    assert_int_equal(lb_read(&a->c.smax), 1);
    lb_picker_close(&p);
}

static void test_avoid(void **state)
{
    (void)state;
    int w[] = {1, 1};
    struct lb_picker p;
    lb_picker_init(&p, LB_BALANCE_ROUNDROBIN, 1);
    lb_picker_use(&p, make_set(w, 2));
    struct lb_server *a = p.set->v[0];
    for (int i = 0; i < 5; i++) {
        struct lb_server *s = lb_picker_pick(&p, 0, a, NULL);
        assert_ptr_equal(s, p.set->v[1]);
        lb_server_release(s);
    }
    lb_server_set_state(p.set->v[1], LB_SRV_DOWN);
    struct lb_server *s = lb_picker_pick(&p, 0, a, NULL); /* the only one left */
    assert_ptr_equal(s, a);
    lb_server_release(s);
    lb_picker_close(&p);
}

static void test_leastconn(void **state)
{
    (void)state;
    int w[] = {1, 1, 1};
    struct lb_picker p;
    lb_picker_init(&p, LB_BALANCE_LEASTCONN, 1);
    lb_picker_use(&p, make_set(w, 3));
    /* ties rotate */
    assert_int_equal(pick_idx(&p), 0);
    assert_int_equal(pick_idx(&p), 1);
    assert_int_equal(pick_idx(&p), 2);
    assert_int_equal(pick_idx(&p), 0);
    /* load: the least loaded wins whatever the rotation */
    struct lb_server *held[4];
    held[0] = lb_picker_pick(&p, 0, NULL, NULL); /* 1 */
    held[1] = lb_picker_pick(&p, 0, NULL, NULL); /* 2 */
    held[2] = lb_picker_pick(&p, 0, NULL, NULL); /* 0 */
    assert_int_equal(index_of(p.set, held[0]), 1);
    assert_int_equal(index_of(p.set, held[1]), 2);
    assert_int_equal(index_of(p.set, held[2]), 0);
    lb_server_release(held[1]); /* server 2 now has 0 */
    held[3] = lb_picker_pick(&p, 0, NULL, NULL);
    assert_int_equal(index_of(p.set, held[3]), 2);
    lb_server_release(held[0]);
    lb_server_release(held[2]);
    lb_server_release(held[3]);
    lb_picker_close(&p);
}

static void test_random_two(void **state)
{
    (void)state;
    int w[] = {1, 1};
    struct lb_picker p;
    lb_picker_init(&p, LB_BALANCE_RANDOM, 42);
    lb_picker_use(&p, make_set(w, 2));
    /* with two servers, both are always the two choices: the less loaded always wins */
    for (int i = 0; i < 5; i++)
        lb_server_take_slot(p.set->v[0], 0);
    for (int i = 0; i < 50; i++)
        assert_int_equal(pick_idx(&p), 1);
    lb_picker_close(&p);

    int w4[] = {1, 1, 1, 1};
    lb_picker_init(&p, LB_BALANCE_RANDOM, 7);
    lb_picker_use(&p, make_set(w4, 4));
    for (int i = 0; i < 10; i++)
        lb_server_take_slot(p.set->v[0], 0);
    int count[4] = {0};
    for (int i = 0; i < 400; i++)
        count[pick_idx(&p)]++;
    /* server 0 only wins against... nobody: it is the most loaded of any pair */
    assert_int_equal(count[0], 0);
    assert_true(count[1] > 50 && count[2] > 50 && count[3] > 50);
    lb_server_set_state(p.set->v[1], LB_SRV_DOWN);
    for (int i = 0; i < 50; i++)
        assert_int_not_equal(pick_idx(&p), 1);
    lb_picker_close(&p);
}

static void test_sync_generation(void **state)
{
    (void)state;
    int w[] = {1};
    struct lb_backend b;
    memset(&b, 0, sizeof(b));
    pthread_mutex_init(&b.lock, NULL);
    struct lb_picker p;
    lb_picker_init(&p, LB_BALANCE_ROUNDROBIN, 1);
    lb_picker_sync(&p, &b);
    assert_int_equal(pick_idx(&p), -1);
    lb_backend_publish(&b, make_set(w, 1));
    lb_picker_sync(&p, &b);
    assert_int_equal(pick_idx(&p), 0);
    struct lb_server_set *old = p.set;
    lb_picker_sync(&p, &b); /* unchanged generation: same set */
    assert_ptr_equal(p.set, old);
    int w2[] = {1, 1};
    lb_backend_publish(&b, make_set(w2, 2));
    lb_picker_sync(&p, &b);
    assert_int_equal(p.set->n, 2);
    lb_picker_close(&p);
    lb_backend_publish(&b, NULL);
    pthread_mutex_destroy(&b.lock);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rr_5_1_1),
        cmocka_unit_test(test_rr_equal_and_skips),
        cmocka_unit_test(test_rr_shared_between_workers),
        cmocka_unit_test(test_rr_reweigh),
        cmocka_unit_test(test_maxconn_full),
        cmocka_unit_test(test_avoid),
        cmocka_unit_test(test_leastconn),
        cmocka_unit_test(test_random_two),
        cmocka_unit_test(test_sync_generation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
