/*
 * The open segment check (registry/cluster/open_segment.h) on segments built here in libraft
 * 0.15's format: intact batches then zeros, a batch damaged with intact ones after it, and a
 * last write cut short. tests/e2e/test_raft_damage.py runs it on the engine's own files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "registry/cluster/open_segment.h"

#define SEG_SIZE 4096

/* libraft's CRC-32, bit by bit: MSB first, polynomial 0x04C11DB7, from 0, no final XOR. */
static uint32_t raft_crc(const unsigned char *p, size_t n)
{
    uint32_t c = 0;

    for (size_t i = 0; i < n; i++) {
        c ^= (uint32_t)p[i] << 24;
        for (int k = 0; k < 8; k++)
            c = c & 0x80000000u ? (c << 1) ^ 0x04C11DB7u : c << 1;
    }
    return c;
}

static void put_le(unsigned char *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Appends at seg[off] a batch of n entries of size bytes each (a multiple of 8) filled with
 * fill; returns the offset after it. */
static size_t add_batch(unsigned char *seg, size_t off, unsigned n, size_t size, int fill)
{
    unsigned char *crcs = seg + off, *header = seg + off + 8;
    size_t header_len = 8 + 16 * (size_t)n;

    put_le(header, n, 8);
    for (unsigned i = 0; i < n; i++) {
        unsigned char *e = header + 8 + 16 * i;
        put_le(e, 3, 8); /* term */
        e[8] = 1;        /* RAFT_COMMAND */
        put_le(e + 12, size, 4);
    }
    unsigned char *data = header + header_len;
    memset(data, fill, n * size);
    put_le(crcs, raft_crc(header, header_len), 4);
    put_le(crcs + 4, raft_crc(data, n * size), 4);
    return off + 8 + header_len + n * size;
}

/* A segment of three batches, then zeros; ends[i] is where batch i ends (ends[-1] is 8). */
static void build(unsigned char seg[SEG_SIZE], size_t ends[3])
{
    memset(seg, 0, SEG_SIZE);
    put_le(seg, 1, 8); /* format version */
    ends[0] = add_batch(seg, 8, 1, 16, 'a');
    ends[1] = add_batch(seg, ends[0], 3, 8, 'b');
    ends[2] = add_batch(seg, ends[1], 2, 24, 'c');
}

static void test_crc_is_libraft_s(void **state)
{
    (void)state;
    /* CRC-32/POSIX before its final inversion (the catalogue's check value is 0x765E7680). */
    assert_int_equal(raft_crc((const unsigned char *)"123456789", 9), 0x89A1897Fu);
}

static void test_intact_batches_then_zeros(void **state)
{
    unsigned char seg[SEG_SIZE];
    size_t ends[3], at = 0;

    (void)state;
    build(seg, ends);
    assert_int_equal(reg_open_segment_check(seg, sizeof(seg), &at), REG_OPEN_SEGMENT_INTACT);
    /* Exactly filled, no zeros after. */
    assert_int_equal(reg_open_segment_check(seg, ends[2], &at), REG_OPEN_SEGMENT_INTACT);
}

static void test_damage_with_intact_batches_after_it(void **state)
{
    unsigned char seg[SEG_SIZE];
    size_t ends[3], at = 0;

    (void)state;
    build(seg, ends);
    seg[8] ^= 0xFF; /* the first batch's header checksum */
    assert_int_equal(reg_open_segment_check(seg, sizeof(seg), &at), REG_OPEN_SEGMENT_DAMAGED);
    assert_int_equal(at, 8);

    build(seg, ends);
    seg[ends[1] - 1] ^= 0x01; /* the second batch's data */
    assert_int_equal(reg_open_segment_check(seg, sizeof(seg), &at), REG_OPEN_SEGMENT_DAMAGED);
    assert_int_equal(at, ends[0]);

    build(seg, ends);
    put_le(seg + ends[0] + 8, UINT64_MAX, 8); /* the second batch's count */
    assert_int_equal(reg_open_segment_check(seg, sizeof(seg), &at), REG_OPEN_SEGMENT_DAMAGED);
    assert_int_equal(at, ends[0]);
}

static void test_last_write_cut_short(void **state)
{
    unsigned char seg[SEG_SIZE];
    size_t ends[3], at = 0;

    (void)state;
    build(seg, ends);
    memset(seg + ends[2] - 20, 0, 20); /* the last batch's data did not all land */
    assert_int_equal(reg_open_segment_check(seg, sizeof(seg), &at), REG_OPEN_SEGMENT_CUT_SHORT);
    assert_int_equal(at, ends[1]);

    build(seg, ends); /* the file ends inside the last batch */
    assert_int_equal(reg_open_segment_check(seg, ends[2] - 8, &at), REG_OPEN_SEGMENT_CUT_SHORT);
    assert_int_equal(at, ends[1]);
}

static void test_other_formats_are_the_engine_s(void **state)
{
    unsigned char seg[SEG_SIZE];
    size_t ends[3], at = 0;

    (void)state;
    build(seg, ends);
    put_le(seg, 2, 8);
    assert_int_equal(reg_open_segment_check(seg, sizeof(seg), &at), REG_OPEN_SEGMENT_INTACT);
    memset(seg, 0, sizeof(seg)); /* allocated, never written */
    assert_int_equal(reg_open_segment_check(seg, sizeof(seg), &at), REG_OPEN_SEGMENT_INTACT);
    assert_int_equal(reg_open_segment_check(seg, 3, &at), REG_OPEN_SEGMENT_INTACT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc_is_libraft_s),
        cmocka_unit_test(test_intact_batches_then_zeros),
        cmocka_unit_test(test_damage_with_intact_batches_after_it),
        cmocka_unit_test(test_last_write_cut_short),
        cmocka_unit_test(test_other_formats_are_the_engine_s),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
