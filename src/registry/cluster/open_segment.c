/*
 * libraft 0.15's segment format, as its src/uv_segment.c and src/uv_encoding.c write it: an
 * 8-byte format version (1), then batches, back to back, then zeros (an open segment is
 * allocated whole in advance). A batch is
 *
 *   u32 CRC of the header | u32 CRC of the data | header: u64 entry count n, then per entry
 *   u64 term, u8 type, 3 bytes unused, u32 data size | the entries' data, one after another
 *
 * little-endian, every size a multiple of 8, so batches start at offsets that are multiples
 * of 8. The CRC is libiberty's crc32 (MSB first, polynomial 0x04C11DB7, initial value 0, no
 * final XOR), not zlib's (lib/crc32.h).
 */
#include "registry/cluster/open_segment.h"

#include <stdbool.h>
#include <stdint.h>

#define SEGMENT_FORMAT   1
#define SEGMENT_MAX_SIZE (8u << 20)               /* libraft's UV__MAX_SEGMENT_SIZE */
#define BATCH_MAX_N      (SEGMENT_MAX_SIZE / 32u) /* the engine's own bound on a count */
#define ENTRY_HEADER     16u

struct crc_table {
    uint32_t t[256];
};

static void crc_table_init(struct crc_table *ct)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i << 24;
        for (int k = 0; k < 8; k++)
            c = c & 0x80000000u ? (c << 1) ^ 0x04C11DB7u : c << 1;
        ct->t[i] = c;
    }
}

static uint32_t crc(const struct crc_table *ct, const unsigned char *p, size_t n)
{
    uint32_t c = 0;

    for (size_t i = 0; i < n; i++)
        c = (c << 8) ^ ct->t[((c >> 24) ^ p[i]) & 0xFF];
    return c;
}

static uint64_t get_le(const unsigned char *p, int bytes)
{
    uint64_t v = 0;

    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* The size of the intact batch at the start of p[len], or 0 when there is none. */
static size_t intact_batch(const struct crc_table *ct, const unsigned char *p, size_t len)
{
    if (len < 16)
        return 0;
    uint64_t n = get_le(p + 8, 8);
    if (n == 0 || n > BATCH_MAX_N || (len - 16) / ENTRY_HEADER < n)
        return 0;
    size_t header = 8 + (size_t)n * ENTRY_HEADER; /* the count and the entries' headers */
    if (crc(ct, p + 8, header) != (uint32_t)get_le(p, 4))
        return 0;
    size_t data = 0, room = len - 8 - header;
    for (uint64_t i = 0; i < n && data <= room; i++)
        data += (size_t)get_le(p + 16 + i * ENTRY_HEADER + 12, 4);
    if (data > room || crc(ct, p + 8 + header, data) != (uint32_t)get_le(p + 4, 4))
        return 0;
    return 8 + header + data;
}

static bool all_zeros(const unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i])
            return false;
    return true;
}

enum reg_open_segment reg_open_segment_check(const void *data, size_t len, size_t *at)
{
    const unsigned char *p = data;
    struct crc_table ct;
    size_t off = 8;

    /* Empty, never written, or another format: what the engine does with it stands. */
    if (len < off || get_le(p, 8) != SEGMENT_FORMAT)
        return REG_OPEN_SEGMENT_INTACT;
    crc_table_init(&ct);
    for (size_t n; (n = intact_batch(&ct, p + off, len - off)) > 0;)
        off += n;
    if (all_zeros(p + off, len - off))
        return REG_OPEN_SEGMENT_INTACT;
    *at = off;
    for (size_t q = off + 8; q + 16 <= len; q += 8)
        if (intact_batch(&ct, p + q, len - q) > 0)
            return REG_OPEN_SEGMENT_DAMAGED;
    return REG_OPEN_SEGMENT_CUT_SHORT;
}
