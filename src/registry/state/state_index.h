/*
 * Covering indexes (internal to state*.c): the index a read of one service name or one node
 * reports as X-Consul-Index, as Consul's state store keeps them.
 *
 * A service name's index is the last write that changed any of its instances: a register or
 * deregister, a check of the instance, a check or a field of the node that hosts it. A node's
 * index is the last write to the node, its services or its checks. Deletes count: removing an
 * instance raises its name's index like any other write. When a name loses its last instance
 * its entry goes, and the delete's index becomes the floor every absent name reports (Consul's
 * "service extinction" index); deleted nodes work the same way. So the index of a read only
 * moves when what it covers changed, and never goes backwards: an absent name reports the
 * floor, which is at least the index it had before it went away.
 *
 * Beside those, the catalog keeps Consul's three table indexes: nodes, services and checks
 * (deletes included), for the list endpoints.
 *
 * Every raw mutation of state.c calls these, so live writes and journal replay keep the same
 * indexes; reg_index_dump/reg_index_apply carry them across a snapshot.
 */
#ifndef MESH_REGISTRY_STATE_INDEX_H
#define MESH_REGISTRY_STATE_INDEX_H

#include <jansson.h>
#include <stdint.h>

#include "registry/state/state.h"

/* A node field changed, or a node check: the node and every service it hosts. */
void reg_index_node(struct reg_state *st, struct reg_node *node, uint64_t index);
/* An instance of name on node changed (service or its check). */
void reg_index_service(struct reg_state *st, struct reg_node *node, const char *name,
                       uint64_t index);
/* A check changed or went: its instance's name, or the whole node for a node check. */
void reg_index_check(struct reg_state *st, struct reg_node *node, const char *service_id,
                     uint64_t index);
/* Instance counting: a new instance of name, and one gone at index. */
void reg_index_instance_add(struct reg_state *st, const char *name);
void reg_index_instance_drop(struct reg_state *st, const char *name, uint64_t index);
/* A node and everything on it went at index (call before freeing it). */
void reg_index_node_gone(struct reg_state *st, struct reg_node *node, uint64_t index);

/* Frees the service-name table (reg_state_free). */
void reg_index_free(struct reg_state *st);
/* Adds the covering indexes to a snapshot's "index" record, and reads them back. */
void reg_index_dump(const struct reg_state *st, json_t *record);
void reg_index_apply(struct reg_state *st, const json_t *record);

#endif
