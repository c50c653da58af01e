/* Network coordinates (lib/vivaldi.h): estimates converge on measured RTTs, bad input is
 * refused, and one slow sample is filtered out. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "lib/vivaldi.h"

#define NODES 4

/* Nodes on a line 10 ms apart, plus 1 ms of access delay each: RTT between i and j. */
static double true_rtt(int i, int j)
{
    return i == j ? 0 : abs(i - j) * 0.010 + 0.002;
}

static void test_converges_on_measured_rtts(void **state)
{
    struct vivaldi_client c[NODES];
    char names[NODES][2] = {"a", "b", "c", "d"};

    (void)state;
    srand(7);
    for (int i = 0; i < NODES; i++)
        vivaldi_client_init(&c[i]);
    for (int round = 0; round < 400; round++)
        for (int i = 0; i < NODES; i++) {
            int j = (i + 1 + round % (NODES - 1)) % NODES;
            assert_int_equal(vivaldi_update(&c[i], names[j], &c[j].coord, true_rtt(i, j)), 0);
        }
    for (int i = 0; i < NODES; i++)
        for (int j = 0; j < NODES; j++) {
            if (i == j)
                continue;
            double est = vivaldi_distance(&c[i].coord, &c[j].coord);
            assert_true(fabs(est - true_rtt(i, j)) < 0.25 * true_rtt(i, j));
            /* The estimate is the same from both ends. */
            assert_true(fabs(est - vivaldi_distance(&c[j].coord, &c[i].coord)) < 1e-12);
        }
    for (int i = 0; i < NODES; i++)
        assert_true(c[i].coord.error < 1.5);
}

static void test_refuses_bad_input(void **state)
{
    struct vivaldi_client c;
    struct vivaldi_coord other;

    (void)state;
    vivaldi_client_init(&c);
    vivaldi_coord_init(&other);
    struct vivaldi_coord before = c.coord;
    assert_int_equal(vivaldi_update(&c, "p", &other, NAN), -EINVAL);
    assert_int_equal(vivaldi_update(&c, "p", &other, -1.0), -EINVAL);
    other.vec[3] = INFINITY;
    assert_false(vivaldi_coord_valid(&other));
    assert_int_equal(vivaldi_update(&c, "p", &other, 0.01), -EINVAL);
    assert_memory_equal(&before, &c.coord, sizeof(before));
}

static void test_fresh_coordinates(void **state)
{
    struct vivaldi_coord a, b;

    (void)state;
    vivaldi_coord_init(&a);
    vivaldi_coord_init(&b);
    assert_true(vivaldi_coord_valid(&a));
    assert_true(a.error == 1.5);
    /* Two fresh nodes are their heights apart. */
    assert_true(fabs(vivaldi_distance(&a, &b) - 2 * a.height) < 1e-12);
}

static void test_one_slow_sample_is_filtered(void **state)
{
    struct vivaldi_client a, b;

    (void)state;
    srand(3);
    vivaldi_client_init(&a);
    vivaldi_client_init(&b);
    for (int i = 0; i < 200; i++) {
        vivaldi_update(&a, "b", &b.coord, 0.005);
        vivaldi_update(&b, "a", &a.coord, 0.005);
    }
    double settled = vivaldi_distance(&a.coord, &b.coord);
    vivaldi_update(&a, "b", &b.coord, 2.0); /* one outlier: the median of 3 ignores it */
    assert_true(fabs(vivaldi_distance(&a.coord, &b.coord) - settled) < 0.001);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_converges_on_measured_rtts),
        cmocka_unit_test(test_refuses_bad_input),
        cmocka_unit_test(test_fresh_coordinates),
        cmocka_unit_test(test_one_slow_sample_is_filtered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
