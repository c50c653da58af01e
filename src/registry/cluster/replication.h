/*
 * Replication of the registry among servers: a replicated log of opaque entries, each applied on
 * every server in the same order once a majority stored it, with snapshots that bound the log.
 *
 * This is the one file that knows the consensus engine: canonical raft 0.15 (Debian's
 * libraft-dev) with its libuv back end. Everything else in the registry speaks this interface:
 * propose an entry, an apply callback, snapshot and restore callbacks, and leadership events,
 * so replacing the engine (cowsql/raft, a newer libraft) touches this file only.
 * docs/replication.md lists the engine's limits and the upstream fixes 0.15 lacks.
 *
 * Everything runs on the loop thread. Callbacks never run inside a call into this interface
 * (they come from the loop), except where noted.
 */
#ifndef MESH_REGISTRY_REPLICATION_H
#define MESH_REGISTRY_REPLICATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lib/buf.h"
#include "lib/err.h"

#define REG_REPL_MAX_SERVERS 16
#define REG_REPL_ADDR_MAX    64 /* "a.b.c.d:port" and then some */

struct reg_repl;

/* The state machine the log drives; ctx is reg_repl_config.ctx. */
struct reg_repl_fsm {
    /*
     * Applies one committed entry (data[len], borrowed for the call) on this server. own is
     * true when this process proposed it (its effect may already be in the state: see
     * cluster.c). Returns 0, or -EINVAL for an entry it cannot apply (logged; fatal to the
     * cluster's consistency, so the server stops).
     */
    int (*apply)(const void *data, size_t len, bool own, void *ctx);
    /*
     * Appends the whole state to out, in the form restore reads. It runs in a forked child
     * (lib/fork_worker.h) on that process's copy of the state, so the loop goes on meanwhile:
     * it may only read the state and allocate, and what it changes is lost with the child. Only
     * when no child can be forked does it run on the loop itself.
     */
    void (*snapshot)(struct buf *out, void *ctx);
    /*
     * Whether the state is now exactly what the applied entries made it, so a snapshot of it
     * may stand for them. A leader changes its state before its entries commit: while any is
     * in flight its state shows them, and a snapshot then would keep, after a restart, writes
     * the cluster may never commit. false postpones the snapshot to a later applied entry.
     */
    bool (*snapshot_ready)(void *ctx);
    /* Replaces the whole state by a snapshot's (data[len], borrowed). 0 or -EINVAL. */
    int (*restore)(const void *data, size_t len, void *ctx);
    /*
     * Leadership changed. leader true: this server leads and every entry before its term is
     * applied, so it may serve writes. false: it no longer leads (lost is true when proposals of
     * its own were still in flight: their outcome is unknown).
     */
    void (*leadership)(bool leader, bool lost, void *ctx);
    /*
     * The leader this server knows of changed: leader_id is the new one (this server's own ID
     * when it leads), 0 when none is known. Seen by the same poll as leadership, so within
     * 50 ms of the engine learning it. May be NULL.
     */
    void (*leader_changed)(uint64_t leader_id, void *ctx);
};

struct reg_repl_server {
    uint64_t id;
    char address[REG_REPL_ADDR_MAX]; /* IPv4 "a.b.c.d:port" */
    bool voter;
};

struct reg_repl_config {
    const char *dir;               /* the engine's own directory (created 0700 if missing) */
    uint64_t id;                   /* this server's ID, > 0, stable across restarts */
    const char *address;           /* "a.b.c.d:port": where the others reach it (IPv4 only) */
    unsigned election_timeout_ms;  /* 0: 1000 */
    unsigned heartbeat_timeout_ms; /* 0: 100 */
    unsigned snapshot_threshold;   /* entries between snapshots, 0: 16384 */
    const struct reg_repl_fsm *fsm;
    void *ctx;
};

enum reg_repl_role {
    REG_REPL_UNAVAILABLE = 0,
    REG_REPL_FOLLOWER,
    REG_REPL_CANDIDATE,
    REG_REPL_LEADER,
};

/* A read-only picture of the engine, for status endpoints and metrics. */
struct reg_repl_status {
    enum reg_repl_role role;
    bool leader_ready; /* leader, and its term's barrier is applied */
    uint64_t id;
    uint64_t term;
    uint64_t commit_index;
    uint64_t applied_index;
    uint64_t last_index;
    uint64_t config_index;   /* index of the committed configuration entry */
    uint64_t snapshot_index; /* the last entry the newest stored snapshot holds (0: none) */
    bool snapshot_taking;    /* a snapshot is being serialised or written */
    int snapshot_failed;     /* why the last one was not stored (-errno; -ECHILD: its writer
                                died), 0 when it was */
    uint64_t leader_id;      /* 0 when unknown */
    char leader_address[REG_REPL_ADDR_MAX];
    uint64_t last_contact_ms; /* since a leader was last heard (or since the start, before any
                                 was); 0 on the leader */
    size_t nservers;
    struct reg_repl_server servers[REG_REPL_MAX_SERVERS];
};

/* True when s is a numeric IPv4 "a.b.c.d:port" (the only form the engine accepts). */
bool reg_repl_address_valid(const char *s);

/* A server ID from a node name (a digest; never 0). */
uint64_t reg_repl_id_for(const char *node_name);

/*
 * Sets up the engine on loop (not started). Returns 0 and *out, or -errno with e set (a bad
 * address, a directory that cannot be made, an engine that refuses the directory).
 */
int reg_repl_open(struct reg_repl **out, uv_loop_t *loop, const struct reg_repl_config *cfg,
                  struct err *e);

/* True when the directory already holds a log (the server was part of a cluster). */
bool reg_repl_has_state(const struct reg_repl *r);

/* True when dir (the engine's directory, reg_repl_config.dir) holds any of a log's files. */
bool reg_repl_dir_used(const char *dir);

/*
 * Writes the first configuration (every server of a new cluster must be given the same one)
 * then starts; on a directory with state, only starts. Returns 0 or -errno with e set.
 */
int reg_repl_start(struct reg_repl *r, const struct reg_repl_server *servers, size_t n,
                   struct err *e);

/* Whether reg_repl_start succeeded. */
bool reg_repl_started(const struct reg_repl *r);

/*
 * Done callback of a proposal or membership change: status 0 when committed and applied here,
 * -ENOTCONN when this server does not lead, -ECANCELED when leadership was lost before the
 * outcome was known (the entry may still commit), another -errno otherwise.
 */
typedef void (*reg_repl_done_cb)(int status, void *arg);

/*
 * Proposes data[len] (copied) as the next entry; on the leader only. cb runs later from the
 * loop, never from inside this call. Returns 0, or -ENOTCONN when not the (ready) leader.
 */
int reg_repl_propose(struct reg_repl *r, const void *data, size_t len, reg_repl_done_cb cb,
                     void *arg);

/* Confirms leadership with a quorum and waits for every earlier entry to apply (?consistent). */
int reg_repl_barrier(struct reg_repl *r, reg_repl_done_cb cb, void *arg);

/* Adds a server as a voter (it catches up first), or removes one. Leader only. */
int reg_repl_add_voter(struct reg_repl *r, uint64_t id, const char *address, reg_repl_done_cb cb,
                       void *arg);
int reg_repl_remove(struct reg_repl *r, uint64_t id, reg_repl_done_cb cb, void *arg);

/* Hands leadership to another voter (before a planned stop). Leader only. */
int reg_repl_transfer(struct reg_repl *r, reg_repl_done_cb cb, void *arg);

void reg_repl_status(const struct reg_repl *r, struct reg_repl_status *out);

/* True when this server leads and its term's barrier is applied: it may change the state. */
bool reg_repl_leader_ready(const struct reg_repl *r);

/*
 * True when the log holds twice the snapshot threshold of entries past the newest snapshot this
 * server has or is taking. The engine keeps the whole log since its last snapshot in memory,
 * and a leader takes a snapshot only when nothing of its own is in flight
 * (reg_repl_fsm.snapshot_ready), which writes that never pause never give it: a leader whose
 * log is full makes no new entry until the snapshot is taken. If one is still being taken, that
 * means until it is written; if it failed (a full or read-only disk, a writer that died), until
 * one is stored, a retry a second later.
 */
bool reg_repl_log_full(struct reg_repl *r);

/*
 * On the leader, with nothing of its own in flight, brings the engine to ask for a snapshot
 * (it asks only after an applied entry) by proposing a barrier, unless one is being taken,
 * such a barrier is already out, or a failed snapshot's retry delay runs.
 */
void reg_repl_snapshot_nudge(struct reg_repl *r);

/*
 * Stops the engine and frees r; done(arg) runs once every handle is closed (run the loop).
 * Pending proposals get -ECANCELED first.
 */
void reg_repl_close(struct reg_repl *r, void (*done)(void *arg), void *arg);

#endif
