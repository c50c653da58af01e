/*
 * Journal records of the registry state (internal to state*.c and persistence tests).
 *
 * A record is a JSON object {"op": ..., "index": N, ...} describing one committed mutation with
 * full fidelity (entities carry their CreateIndex/ModifyIndex), so that replaying records in
 * order rebuilds the state exactly. The format is documented in docs/registry-storage.md.
 */
#ifndef MESH_REGISTRY_STATE_JOURNAL_H
#define MESH_REGISTRY_STATE_JOURNAL_H

#include <jansson.h>

#include "registry/state/state.h"

/* Record builders: each returns a new reference. */
json_t *reg_journal_node(const struct reg_node *n, uint64_t index);
json_t *reg_journal_node_delete(const char *name, uint64_t index);
json_t *reg_journal_service(const struct reg_service *s, uint64_t index);
json_t *reg_journal_service_delete(const char *node, const char *id, uint64_t index);
json_t *reg_journal_check(const struct reg_check *c, uint64_t index);
json_t *reg_journal_check_delete(const char *node, const char *id, uint64_t index);
json_t *reg_journal_kv(const struct reg_kv *kv, uint64_t index);
json_t *reg_journal_kv_delete(const char *key, bool tree, uint64_t index);
json_t *reg_journal_session(const struct reg_session *s, uint64_t index);
json_t *reg_journal_session_delete(const char *id, uint64_t index);
/* The records of one write (an array of two or more, consumed) as one "batch" record at the
 * last one's index: appended as a single line, so a crash leaves all of them or none. */
json_t *reg_journal_batch(json_t *records);

/* Raw mutations at a given index, without journal or notification (used by replay). */
struct reg_node *reg_state_node_put(struct reg_state *st, const struct reg_node_fields *f,
                                    uint64_t index, bool *changed);
void reg_state_service_put(struct reg_state *st, struct reg_node *node, const struct reg_service *t,
                           uint64_t index);
bool reg_state_service_remove(struct reg_state *st, struct reg_node *node, const char *id,
                              uint64_t index);
void reg_state_check_put(struct reg_state *st, struct reg_node *node, const struct reg_check *t,
                         uint64_t index);
bool reg_state_check_remove(struct reg_state *st, struct reg_node *node, const char *id,
                            uint64_t index);
bool reg_state_node_remove(struct reg_state *st, const char *name, uint64_t index);
void reg_state_kv_put(struct reg_state *st, const struct reg_kv *t);
void reg_state_kv_remove(struct reg_state *st, const char *key, uint64_t index);
void reg_state_kv_remove_tree(struct reg_state *st, const char *prefix, uint64_t index);
/* Stores a copy of a session template at its own indexes (state_session.c). */
void reg_state_session_put(struct reg_state *st, const struct reg_session *t);
void reg_state_advance(struct reg_state *st, enum reg_table table, uint64_t index);
/* Takes the next index for a write to table; then journals a record (consumed) and tells the
 * watchers. Every write goes through these two. */
uint64_t reg_state_next_index(struct reg_state *st, enum reg_table table);
void reg_state_commit(struct reg_state *st, enum reg_table table, json_t *record);
/* reg_state_commit for a write that changes several entities (an array of records, consumed;
 * may be empty): they are journaled as one record (reg_journal_batch). */
void reg_state_commit_all(struct reg_state *st, enum reg_table table, json_t *records);

#endif
