/*
 * Replicated registry servers (`-server -bootstrap-expect N`, N > 1): the registry's state as
 * the state machine of a replicated log (replication.h), and what a server of such a cluster
 * does beyond a single one (docs/replication.md).
 *
 * - Formation: each server polls the HTTP addresses of -retry-join for the servers they know;
 *   when N servers see each other, every one bootstraps the same configuration. A server that
 *   finds a cluster already formed asks its leader to add it.
 * - Writes: the leader runs a write as a single server does, mutating its state; the journal
 *   records the mutation produces (state_journal.h) become one log entry, and the answer is held
 *   until that entry is committed. Every other server applies the records of each committed
 *   entry, which is exactly what replaying a journal does, so every server holds the same
 *   entities at the same indexes. Followers forward writes and default-consistency reads to the
 *   leader; `?stale` reads are served locally.
 * - A leader that loses leadership with writes of its own in flight cannot know whether they
 *   will commit, and its state may hold effects the log will never have: it restarts itself
 *   (exec of the same command line) and rebuilds its state from its log, as after a crash.
 * - Leader-only duties (session TTLs, node failure detection, critical-service reaping, ACL
 *   bootstrap) run where reg_cluster_may_write() is true.
 */
#ifndef MESH_REGISTRY_CLUSTER_H
#define MESH_REGISTRY_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "lib/http_server.h"
#include "lib/json.h"
#include "registry/cluster/replication.h"

struct reg_agent;
struct reg_cluster_ctx;
struct reg_api_call;
struct reg_cluster;

/* True when the configuration asks for a replicated server (-server -bootstrap-expect > 1). */
bool reg_cluster_wanted(const struct reg_cluster_ctx *cx);

/*
 * Sets the agent up as a server of a replicated cluster: checks the data directory (a
 * single-server one is refused with a message saying why and what to do), installs the state's
 * journal hook and starts formation, reaching the others through cx->client (the agent makes
 * it first). Returns 0 or -errno with e set.
 */
int reg_cluster_start(struct reg_cluster_ctx *cx, struct err *e);

/*
 * Refuses, for an agent that is not a replicated server, a data directory a replicated server
 * wrote (its log in DATA_DIR/raft): on it, a single server would serve an empty registry as if
 * it were the cluster's. Returns 0 or -EINVAL with e set.
 */
int reg_cluster_check_single_data_dir(const char *data_dir, struct err *e);

/* Leaves gracefully (hands leadership over, asks to be removed) before a stop; done runs after. */
void reg_cluster_leave(struct reg_cluster_ctx *cx, void (*done)(struct reg_agent *a));

/* Stops replication; the loop must run for its handles to close. NULL cluster: no-op. */
void reg_cluster_stop(struct reg_cluster_ctx *cx);

/* True when this agent may change the state itself: no cluster, or its ready leader. */
bool reg_cluster_may_write(const struct reg_cluster_ctx *cx);

/*
 * Whether an answer to path must be held until every entry proposed so far (and this loop
 * turn's) is committed. On the leader the state runs ahead of the log, so this is what keeps a
 * client from being told of a change the cluster may never take, whether its own write or a
 * read. Reads of this server's own things (the paths a follower answers itself), and reads
 * that failed on the server's side, are not held. False when there is nothing to wait for
 * (the caller answers at once).
 */
bool reg_cluster_must_hold(const struct reg_cluster_ctx *cx, const char *path, bool write,
                           int status);

/*
 * Holds answer for req (taken over) as reg_cluster_must_hold() said it must, keeping a
 * reference to answer (the rendering many watchers share is not copied), then sends it; an
 * entry that fails turns it into a 500.
 */
void reg_cluster_hold(struct reg_cluster_ctx *cx, struct http_request *req, bool write,
                      struct http_shared_response *answer);

/*
 * Sends a call a follower must not answer itself (a write, or a read without ?stale) to the
 * leader, relaying its answer. Returns true when it took the call over.
 */
bool reg_cluster_forward(struct reg_cluster_ctx *cx, struct reg_api_call *c, bool write);

/*
 * The HTTP API addresses ("host:port") of the servers in the configuration, as far as this
 * server knows them: what client agents learn to fail over to. NULL when this server is not
 * replicated; else a new reference the caller owns.
 */
json_t *reg_cluster_http_servers(const struct reg_cluster_ctx *cx);

/* X-Consul-KnownLeader and X-Consul-LastContact of a read served here. */
void reg_cluster_read_headers(const struct reg_cluster_ctx *cx, bool *known_leader,
                              uint64_t *last_contact);

/* The engine's status (zeroed when this server is not replicated). */
void reg_cluster_status(const struct reg_cluster_ctx *cx, struct reg_repl_status *out);

/*
 * Whether this server has heard from the server named node lately, by its own means (the
 * formation probes it keeps sending to -retry-join addresses, and its leader's contact): 1
 * yes, 0 silent past the failure timeout, -ENOENT when it cannot tell (not a server of the
 * configuration, or one it never probed). A follower's member list (members.c) takes this
 * over the catalog's word, which cannot say that the leader itself died.
 */
int reg_cluster_server_heard(const struct reg_cluster_ctx *cx, const char *node);

/* Node name and HTTP address of the server with this replication ID, when known. */
const char *reg_cluster_server_node(const struct reg_cluster_ctx *cx, uint64_t id);

#endif
