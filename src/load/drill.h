/*
 * `mesh drill failover|scale|node-loss`: the original's failure scenarios as one command. Load
 * runs (`mesh load run`, as a process) against the local cluster's load balancer while the
 * operator commands (`mesh stop-service web1`, ...) run on a timeline; then it prints, per phase
 * between two events, what the users saw, and marks the events in the report.
 */
#ifndef MESH_LOAD_DRILL_H
#define MESH_LOAD_DRILL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

/* `mesh drill KIND [flags]`: argv[0] is "drill". Returns the exit code. */
int load_drill_main(int argc, char **argv);

/*
 * The per-phase summary of a drill from its report (borrowed; the one `mesh load run --output`
 * wrote, with meshkit.events set): one phase before the first event and one from each event to
 * the next. Caller owns the result, an array of
 *   {"name", "start_s", "end_s", "requests", "failures", "by_kind": {"503": n, "ECONNREFUSED":
 *    n}, "accepted": {"503": n}, "p99_ms" (worst per-second p99, null without responses),
 *    "detect_s", "recover_s"}
 * A status >= 400 is a failure unless meshkit.accepted_codes (the user's script's checks, from
 * `mesh drill -script`) lists it: then it is counted under "accepted".
 * detect_s (after stop-service / kill-node / scale-down NODE): seconds until the load balancer
 * stopped sending to NODE's instances for the rest of the phase; recover_s (after start-service /
 * revive-node / scale-up NODE): seconds until an instance of NODE that was not serving before
 * the event served a request. Null when not applicable or not seen within the phase.
 */
json_t *load_drill_phases(const json_t *report);

/*
 * Whether a response with this status failed: 400 or higher, unless the script's checks accept
 * it (accepted: meshkit.accepted_codes, may be NULL). The drill's failures column and the
 * report's errors card both count these, with the transport errors.
 */
bool load_status_failed(const json_t *accepted, int status);

/* Prints phases (from load_drill_phases) as an aligned table to f. */
void load_drill_print(FILE *f, const json_t *phases);

#endif
