/*
 * Network coordinates of the cluster's nodes (Consul's /v1/coordinate): each client agent
 * computes its own with Vivaldi (lib/vivaldi.h) from the round-trip times of its heartbeats
 * to the servers and sends it with the next heartbeat; servers keep them, serve them, and sort
 * ?near= answers by the estimated RTT. Coordinates are soft state, as they are refreshed every
 * second: they live in memory and are not journaled (Consul writes them through Raft).
 */
#ifndef MESH_REGISTRY_COORD_H
#define MESH_REGISTRY_COORD_H

#include <jansson.h>

#include "lib/err.h"
#include "lib/smap.h"
#include "lib/vivaldi.h"

struct reg_cluster_ctx;

struct reg_coords {
    struct smap by_node; /* lower-cased node name -> struct reg_node_coord */
};

struct reg_node_coord {
    char *node; /* as registered */
    struct vivaldi_coord coord;
};

void reg_coords_init(struct reg_coords *cs);
void reg_coords_free(struct reg_coords *cs);

/* Sets a node's coordinate (a heartbeat's or PUT /v1/coordinate/update's) and tells watchers. */
void reg_coords_set(struct reg_cluster_ctx *cx, const char *node, const struct vivaldi_coord *c);
/* The node's coordinate: the agent's own for its node name or "_agent"; NULL when unknown. */
const struct vivaldi_coord *reg_coords_get(const struct reg_cluster_ctx *cx, const char *node);

/* Consul's Coord object, and back: 0, or -EINVAL with e set (wrong shape or dimensions). */
json_t *reg_coord_json(const struct vivaldi_coord *c);
int reg_coord_from_json(const json_t *v, struct vivaldi_coord *c, struct err *e);

/*
 * Sorts a list answer by the estimated RTT from near's node ("_agent": this agent) to each
 * entry's node; entries whose node has no coordinate go last, in their order. node_of gives
 * an entry's node name. Nothing happens when near is NULL, "" or has no coordinate.
 */
void reg_coords_sort_near(const struct reg_cluster_ctx *cx, const char *near, json_t *list,
                          const char *(*node_of)(const json_t *entry));

#endif
