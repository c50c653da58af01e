/*
 * Health checks run by the local agent: HTTP, TCP, TTL and (when enabled) script checks, all
 * driven by libuv timers and sockets on the agent's loop, so thousands of checks need no
 * threads. Results are written to the registry state with reg_check_set_status(), which raises
 * the index (and wakes watchers) only when a status changes.
 */
#ifndef MESH_REGISTRY_CHECKS_H
#define MESH_REGISTRY_CHECKS_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "registry/api/decode.h" /* struct reg_check_def: what a runner runs */
#include "registry/state/state.h"

struct reg_checks;

/* Deregisters a service whose check stayed critical too long (DeregisterCriticalServiceAfter). */
typedef void (*reg_checks_reap_cb)(const char *service_id, void *data);

/*
 * Creates the runner set for the local node `node_name` (copied). st is borrowed for the
 * lifetime of the set. reap is called from the loop when a service must be deregistered.
 */
struct reg_checks *reg_checks_new(uv_loop_t *loop, struct reg_state *st, const char *node_name,
                                  reg_checks_reap_cb reap, void *reap_data);
/* Stops every runner; pending probes are abandoned. */
void reg_checks_free(struct reg_checks *c);

/*
 * Starts running `def` (takes ownership) for the check of the same ID, which must already be in
 * the state on the local node. Replaces a runner of that ID. The first probe runs after a
 * random delay within one interval, as Consul does; TTL checks arm their timer at once.
 */
void reg_checks_start(struct reg_checks *c, struct reg_check_def *def);
/* Stops and forgets the runner of check_id (no-op when none). */
void reg_checks_stop(struct reg_checks *c, const char *check_id);

/*
 * Sets a TTL check's status from the API (pass/warn/fail/update) and re-arms its TTL timer.
 * Returns 0, -ENOENT when there is no such check, -EINVAL when it is not a TTL check.
 */
int reg_checks_ttl_update(struct reg_checks *c, const char *check_id, enum reg_health status,
                          const char *output);

#endif
