/*
 * Fuzz target for the open segment check (registry/cluster/open_segment.h): the input is a
 * segment file's content. The check must classify it without reading past it; a segment that
 * is not intact names a batch boundary inside it, and what comes before that boundary is
 * intact on its own.
 */
#include <stdint.h>
#include <stdlib.h>

#include "registry/cluster/open_segment.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t at = 0, again = 0;
    enum reg_open_segment seg = reg_open_segment_check(data, size, &at);

    if (seg == REG_OPEN_SEGMENT_INTACT)
        return 0;
    if (seg != REG_OPEN_SEGMENT_CUT_SHORT && seg != REG_OPEN_SEGMENT_DAMAGED)
        abort();
    if (at < 8 || at >= size || at % 8 != 0)
        abort();
    if (reg_open_segment_check(data, at, &again) != REG_OPEN_SEGMENT_INTACT)
        abort();
    return 0;
}
