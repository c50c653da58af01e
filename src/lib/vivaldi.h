/*
 * Network coordinates: the Vivaldi algorithm as Consul's serf/coordinate package runs it
 * (Dabek et al., "Vivaldi: A Decentralized Network Coordinate System", SIGCOMM 2004, with the
 * height vector and adjustment of Ledlie et al., "Network Coordinates in the Wild"). Each node
 * keeps a point in an 8-dimensional space plus a height; the distance between two points
 * estimates the round-trip time between the nodes, in seconds. A node refines its point with
 * every RTT it measures to another node whose coordinate it knows.
 */
#ifndef MESH_LIB_VIVALDI_H
#define MESH_LIB_VIVALDI_H

#include <stdbool.h>
#include <stddef.h>

#define VIVALDI_DIMENSIONS        8
#define VIVALDI_LATENCY_FILTER    3 /* samples per peer, median taken */
#define VIVALDI_ADJUSTMENT_WINDOW 20

/* Consul's Coord object: {"Vec", "Error", "Adjustment", "Height"}; seconds. */
struct vivaldi_coord {
    double vec[VIVALDI_DIMENSIONS];
    double error;
    double adjustment;
    double height;
};

/* The estimated RTT between two coordinates, in seconds. */
double vivaldi_distance(const struct vivaldi_coord *a, const struct vivaldi_coord *b);
/* The origin with the maximal error: a node that has measured nothing yet. */
void vivaldi_coord_init(struct vivaldi_coord *c);
/* False when a field is NaN or infinite (a peer's bad coordinate is refused). */
bool vivaldi_coord_valid(const struct vivaldi_coord *c);

/* One node's estimator. Caller-allocated; no heap. */
struct vivaldi_client {
    struct vivaldi_coord coord;
    struct vivaldi_coord origin;
    double adjustment_samples[VIVALDI_ADJUSTMENT_WINDOW];
    size_t adjustment_index;
    /* The last RTTs to one peer (a client agent measures its servers: a few peers). */
    struct vivaldi_peer {
        char name[64];
        double samples[VIVALDI_LATENCY_FILTER];
        size_t n;
    } peers[8];
    size_t npeers;
};

void vivaldi_client_init(struct vivaldi_client *v);
/*
 * Folds one RTT measurement (seconds) to peer, whose coordinate is other, into the client's
 * coordinate. Returns 0, or -EINVAL when other or rtt is not usable (nothing changes).
 */
int vivaldi_update(struct vivaldi_client *v, const char *peer, const struct vivaldi_coord *other,
                   double rtt);

#endif
