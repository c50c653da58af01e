/*
 * Server pickers, one per worker thread: weighted round robin (one sequence per server set,
 * shared by every worker through an atomic cursor, so the rotation is strict across workers
 * and connections), least connections (ties in round robin order, per worker) and random with
 * two choices. Only servers that are UP with a weight above 0 and below their maxconn are
 * picked.
 */
#ifndef MESH_LB_BALANCE_H
#define MESH_LB_BALANCE_H

#include <stddef.h>
#include <stdint.h>

#include "lb/lb.h"

struct lb_picker {
    enum lb_balance algo;
    struct lb_server_set *set; /* owned reference, NULL before the first sync */
    uint64_t generation;       /* of set, compared with the backend's before re-acquiring */
    size_t *scratch;           /* eligible indices (random), one per server of set */
    size_t rr;                 /* leastconn: where the tie-breaking scan starts */
    uint64_t rng;              /* xorshift64* state */
};

/* Initialises an empty picker. seed may be anything (0 is replaced). */
void lb_picker_init(struct lb_picker *p, enum lb_balance algo, uint64_t seed);
/* Drops the set reference and frees the picker's arrays. */
void lb_picker_close(struct lb_picker *p);
/*
 * Picks up the backend's current set when its generation moved since the last call (two
 * atomic loads otherwise; lb_backend_acquire only on a change), after replacing a set whose
 * round robin sequence predates a weight change (lb_backend_reweigh). b is borrowed.
 */
void lb_picker_sync(struct lb_picker *p, struct lb_backend *b);
/* Uses set from now on (takes over the caller's reference; NULL allowed). */
void lb_picker_use(struct lb_picker *p, struct lb_server_set *set);

/*
 * Picks a server and takes a request slot on it (s->c.scur incremented, smax and stot kept),
 * so a server at its maxconn (s->maxconn, or default_maxconn when that is 0; 0 = unlimited)
 * is never over-committed by concurrent workers. avoid (may be NULL) is skipped unless it is
 * the only candidate (redispatch). Returns a borrowed server (alive while the picker's set
 * is, callers that keep it longer take a reference), or NULL: then *full (may be NULL) is set
 * to a server that was usable but at its maxconn (the request may queue), or NULL when no
 * server is usable at all.
 */
struct lb_server *lb_picker_pick(struct lb_picker *p, int default_maxconn,
                                 const struct lb_server *avoid, struct lb_server **full);

/*
 * Builds set->rr_seq from the servers' weights (called by lb_server_set_new): one cycle in
 * which each server appears weight/g times (g: the weights' greatest common divisor), spread
 * out by earliest deadline first, the k-th turn of a server of weight w being due at
 * (k + 1/2) / w of the cycle (ties in set order). Equal weights give plain rotation.
 */
void lb_rr_build(struct lb_server_set *set);

/* Gives back the request slot taken by lb_picker_pick. */
void lb_server_release(struct lb_server *s);

/* Takes a request slot on s unless it is at maxconn (0 = unlimited). True when taken. */
bool lb_server_take_slot(struct lb_server *s, int maxconn);

#endif
