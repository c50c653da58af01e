/*
 * Counter sets and their per-worker shards (lb.h): a worker adds to its own shard with plain
 * loads and stores, the stats thread adds the shards up when a page is asked for.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/bug.h"
#include "lb/lb.h"

/* Written once by the main thread before any worker or counter set exists. */
static unsigned nshards = 1;

void lb_shards_init(unsigned workers)
{
    nshards = workers > 0 ? workers : 1;
}

unsigned lb_nshards(void)
{
    return nshards;
}

void lb_counters_init(struct lb_counters *c)
{
    memset(c, 0, sizeof(*c));
    c->shard = xcalloc_aligned(nshards, sizeof(*c->shard), _Alignof(struct lb_shard));
}

void lb_counters_close(struct lb_counters *c)
{
    FREE_NULL(c->shard);
}

void lb_counters_sum(const struct lb_counters *c, struct lb_totals *out)
{
    memset(out, 0, sizeof(*out));
    if (MESH_BUG_ON(!c->shard)) /* never initialised: nothing was counted */
        return;
    for (unsigned w = 0; w < nshards; w++) {
        const struct lb_shard *s = &c->shard[w];
        out->bin += lb_read(&s->bin);
        out->bout += lb_read(&s->bout);
        out->req_tot += lb_read(&s->req_tot);
        for (size_t i = 0; i < ARRAY_LEN(out->hrsp); i++)
            out->hrsp[i] += lb_read(&s->hrsp[i]);
        lb_times_add(&out->times, &s->times);
    }
}
