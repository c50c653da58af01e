/*
 * The replicated log's open segment, checked before the engine loads it.
 *
 * libraft 0.15 appends entries to an open segment (open-N in the raft directory) in batches
 * and, loading one at start, keeps the batches up to the first that fails its checksums and
 * drops the rest without a word, whatever follows. That is right for the last write cut short
 * by a crash (a torn batch, then the file's zeroed tail), but a damaged batch with intact
 * batches after it is damage: the entries dropped are ones this server stored and may have
 * counted towards a commit. This tells the two apart, so that the server can refuse the second
 * as it refuses any other damaged file, and say so when it starts after the first.
 *
 * Reads libraft's on-disk format (its version 1), never the engine itself.
 */
#ifndef MESH_REGISTRY_OPEN_SEGMENT_H
#define MESH_REGISTRY_OPEN_SEGMENT_H

#include <stddef.h>

enum reg_open_segment {
    REG_OPEN_SEGMENT_INTACT,    /* intact batches, then zeros (or another format: the engine's) */
    REG_OPEN_SEGMENT_CUT_SHORT, /* a last batch that is not intact, and no intact one after it */
    REG_OPEN_SEGMENT_DAMAGED,   /* a batch that is not intact, and an intact one after it */
};

/*
 * Classifies the open segment whose whole content is p[len] (borrowed). Unless it is intact,
 * *at is the byte offset of the first batch that is not.
 */
enum reg_open_segment reg_open_segment_check(const void *p, size_t len, size_t *at);

#endif
