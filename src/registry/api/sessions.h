/*
 * The session runtime: TTL reaping (Consul invalidates a session once it goes 2 x TTL without a
 * renew), the lock-delay clock the state uses, and the buffer of the last user events (events
 * are not state: they are neither journaled nor replicated, as in Consul). The session and event
 * endpoints drive it; the agent creates it on its loop and turns reaping on while it leads.
 */
#ifndef MESH_REGISTRY_SESSIONS_H
#define MESH_REGISTRY_SESSIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lib/duration.h"
#include "registry/state/state.h"

/* The TTLs a session may have (Consul's session_ttl_min, fixed here, and its maximum). */
#define REG_SESSION_TTL_MIN_NS (10 * DURATION_SEC)
#define REG_SESSION_TTL_MAX_NS (86400 * DURATION_SEC)

#define REG_EVENTS_MAX 256 /* events kept for /v1/event/list, as Consul's agent keeps */

struct reg_sessions;

/* A user event. Strings are owned by the runtime. */
struct reg_event {
    char id[37];
    char *name;
    unsigned char *payload; /* NULL when empty */
    size_t payload_len;
    char *node_filter;
    char *service_filter;
    char *tag_filter;
    uint64_t ltime;
};

/*
 * Creates the runtime on loop for st (borrowed; must outlive it): sets st's lock-delay clock and
 * starts the TTL timer of every session already in st (after a restart, from a full TTL).
 */
struct reg_sessions *reg_sessions_new(uv_loop_t *loop, struct reg_state *st);
/* Clears st's clock and closes the timer; the memory goes in the close callback. s may be NULL. */
void reg_sessions_free(struct reg_sessions *s);

/* (Re)starts sess's TTL: it is invalidated when 2 x TTL pass without another call. No-op
 * without a TTL. */
void reg_sessions_track(struct reg_sessions *s, struct reg_session *sess);

/*
 * Turns TTL reaping off (a replicated server that stopped leading: the leader reaps) or on
 * again (it leads now): every session's TTL restarts in full, as on a new Consul leader.
 */
void reg_sessions_set_active(struct reg_sessions *s, bool active);

/*
 * Stores an event (fields copied; filters may be NULL), giving it an ID and the next Lamport
 * time; the oldest is dropped past REG_EVENTS_MAX. Bumps REG_TABLE_EVENTS. Returns the stored
 * event (borrowed until the next add).
 */
const struct reg_event *reg_sessions_event_add(struct reg_sessions *s, const char *name,
                                               const void *payload, size_t len,
                                               const char *node_filter, const char *service_filter,
                                               const char *tag_filter);
/* Number of events kept, and the i-th, oldest first. */
size_t reg_sessions_event_count(const struct reg_sessions *s);
const struct reg_event *reg_sessions_event_at(const struct reg_sessions *s, size_t i);

#endif
