/*
 * Blocking queries. A read with ?index=N parks when its result's index is not above N. Parked
 * queries are grouped by the table they read; when a write touches a table, every query parked
 * on it is re-run once per loop iteration (writes in one iteration are batched) and answered
 * only if its response body differs from the one it parked with. So a change wakes exactly the
 * watchers whose result changed, while X-Consul-Index keeps Consul's meaning (it may move on
 * unrelated writes, never backwards). A query also answers when its wait time runs out: never
 * before, and at most one tick of the set's timing wheel (REG_WATCH_TICK_MS) after, as Consul
 * adds up to wait/16 of its own.
 *
 * Watchers of the same read share its re-run: parked queries carry a key naming everything
 * their answer depends on besides the state (reg_api_call_share_key), and the queries of one
 * table with equal keys are rendered once, body and head (X-Consul-Index and the rest are the
 * same for all of them), and that answer is sent to each of them. So a thousand watchers of
 * one service cost one rendering and a thousand writes after a change; on a replicated leader,
 * where answers wait for the log to commit, each waits holding a reference to it, not a copy.
 */
#ifndef MESH_REGISTRY_WATCH_H
#define MESH_REGISTRY_WATCH_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "lib/buf.h"
#include "lib/timerwheel.h"
#include "registry/state/state.h"

struct reg_api_call;
struct reg_watch;

/* How finely parked queries' wait times are kept (lib/timerwheel.h). */
#define REG_WATCH_TICK_MS 50

struct reg_watch_set {
    uv_loop_t *loop;
    struct reg_watch *parked[REG_TABLE_COUNT]; /* lists per table */
    bool dirty[REG_TABLE_COUNT];
    uv_prepare_t before_poll; /* re-runs dirty tables' queries once per iteration */
    struct timerwheel expiry; /* the parked queries' wait times, none with a timer of its own */
    size_t count;
    uint64_t renders; /* reads run again for parked queries (counted in the agent's metrics) */
};

void reg_watch_set_init(struct reg_watch_set *ws, uv_loop_t *loop);
/* Answers every parked query with its current result, then closes the set's handles. */
void reg_watch_set_close(struct reg_watch_set *ws);

/* The state's change hook: marks a table dirty. data is the struct reg_watch_set. */
void reg_watch_on_change(enum reg_table table, void *data);

/*
 * Parks call (taken over) on table until its result's body hash differs from body_hash or
 * wait_ms passes. key (taken over, left empty) is the call's reg_api_call_share_key(). The call
 * is re-run with reg_api_call_reread() and freed after it answers.
 */
void reg_watch_park(struct reg_watch_set *ws, struct reg_api_call *call, enum reg_table table,
                    uint64_t body_hash, uint64_t wait_ms, struct buf *key);

/* 64-bit FNV-1a of a buffer (the change test of parked queries). */
uint64_t reg_watch_hash(const void *p, size_t n);

#endif
