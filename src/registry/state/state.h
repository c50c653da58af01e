/*
 * The registry's state: the catalog (nodes, their services and checks) and the KV store, with
 * Consul's raft-style index. Every write takes the next value of one global 64-bit index and
 * stamps it on what it created or changed (CreateIndex / ModifyIndex) and on the table it
 * touched, so a reader can tell whether anything it depends on changed since a given index.
 *
 * All mutations go through this interface, which makes it the single place that (a) bumps the
 * index, (b) tells the watch engine which table changed and (c) hands a journal record to
 * persistence. Replaying journal records through state_apply() rebuilds the same state.
 *
 * Name matching follows Consul: node and service names and tags compare case-insensitively,
 * KV keys and IDs case-sensitively. Everything here runs on the loop thread.
 */
#ifndef MESH_REGISTRY_STATE_H
#define MESH_REGISTRY_STATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"
#include "lib/smap.h"
#include "registry/state/state_intern.h"

enum reg_table {
    REG_TABLE_CATALOG = 0, /* nodes, services, checks */
    REG_TABLE_KV,
    REG_TABLE_SESSIONS,
    REG_TABLE_ACL,     /* tokens and policies */
    REG_TABLE_EVENTS,  /* user events (not persisted, as in Consul) */
    REG_TABLE_QUERIES, /* prepared queries */
    REG_TABLE_COORDS,  /* network coordinates (coord.h; not journaled) */
    /* count sentinel */
    REG_TABLE_COUNT
};

enum reg_health {
    REG_PASSING = 0,
    REG_WARNING,
    REG_CRITICAL,
    /* count sentinel */
    REG_HEALTH_COUNT
};

const char *reg_health_name(enum reg_health h);
/* "passing" / "warning" / "critical" (exact, lower case); false otherwise. */
bool reg_health_parse(const char *s, enum reg_health *out);

struct reg_node {
    char *name;
    char *id; /* UUID */
    char *address;
    char *datacenter;
    json_t *tagged_addresses; /* object of strings, owned */
    json_t *meta;             /* object of strings, owned */
    struct smap services;     /* service ID -> struct reg_service */
    struct smap checks;       /* check ID -> struct reg_check */
    uint64_t create_index;
    uint64_t modify_index;
    uint64_t cover_index; /* last write to the node, its services or checks (state_index.h) */
};

struct reg_service {
    struct reg_node *node; /* back pointer */
    char *id;
    char *name;
    char **tags; /* tags[ntags], as given */
    size_t ntags;
    char *address;
    int port;
    /* The JSON members are owned by a template; in the state they are interned (shared with
     * every equal value, state_intern.h) and must not be changed in place. */
    json_t *meta;             /* object of strings */
    json_t *tagged_addresses; /* object {name: {Address, Port}}, may be NULL */
    int weight_passing;
    int weight_warning;
    bool enable_tag_override;
    char *kind;    /* "" for typical services */
    json_t *proxy; /* opaque, may be NULL */
    json_t *connect;
    uint64_t create_index;
    uint64_t modify_index;
};

struct reg_check {
    struct reg_node *node;
    char *id;
    char *name;
    enum reg_health status;
    char *notes;
    char *output;
    char *service_id;   /* "" for node checks */
    char *type;         /* "http", "tcp", "ttl", "script", "" */
    json_t *definition; /* Consul's Definition object: owned by a template, interned in the state */
    int64_t interval_ns;
    int64_t timeout_ns;
    uint64_t create_index;
    uint64_t modify_index;
};

struct reg_kv {
    char *key;
    unsigned char *value; /* NULL when the value is empty */
    size_t value_len;
    uint64_t flags;
    char *session; /* NULL unless locked */
    uint64_t lock_index;
    uint64_t create_index;
    uint64_t modify_index;
};

enum reg_session_behavior {
    REG_SESSION_RELEASE = 0, /* keys held are released on invalidation */
    REG_SESSION_DELETE,      /* keys held are deleted on invalidation */
};

struct reg_session {
    char *id; /* UUID */
    char *name;
    char *node; /* node name as registered */
    int64_t lock_delay_ns;
    enum reg_session_behavior behavior;
    char *ttl;          /* as given ("30s"), "" when none */
    int64_t ttl_ns;     /* 0 when none */
    char **node_checks; /* node_checks[n_node_checks] check IDs */
    size_t n_node_checks;
    char **service_checks; /* service_checks[n_service_checks] check IDs */
    size_t n_service_checks;
    uint64_t create_index;
    uint64_t modify_index;
    uint64_t expires_ms; /* runtime only (sessions.c): TTL reap deadline, 0 when none */
};

/* Receives one journal record (a JSON object, borrowed) for each committed mutation. */
typedef void (*reg_journal_cb)(const json_t *record, void *data);
/* Told after each mutation which table changed. */
typedef void (*reg_change_cb)(enum reg_table table, void *data);

struct reg_state {
    uint64_t index;                        /* last index handed out, >= 1 */
    uint64_t table_index[REG_TABLE_COUNT]; /* last write (including deletes) per table */
    struct smap nodes;                     /* lower-cased node name -> struct reg_node */
    struct smap kv;                        /* key -> struct reg_kv */
    /* Deleted keys -> their delete index (uint64_t in the pointer's place), so a prefix query's
     * index moves on a delete; when too many pile up they are dropped and their highest index
     * becomes a floor every prefix query reports at least. */
    struct smap kv_tombstones;
    uint64_t kv_tombstone_floor;
    /* Covering indexes (state_index.h): folded service name -> its entry, the floors absent
     * names and nodes report, and Consul's nodes / services / checks table indexes. */
    struct smap service_index;
    uint64_t service_gone_index;
    uint64_t node_gone_index;
    uint64_t nodes_index;
    uint64_t services_index;
    uint64_t checks_index;
    reg_journal_cb journal;
    void *journal_data;
    reg_change_cb on_change;
    void *change_data;
    struct reg_json_pool json_pool; /* the services' and checks' JSON members (state_intern.h) */
    /* ACLs (state_acl.c) */
    struct smap acl_tokens;   /* AccessorID -> struct reg_acl_token */
    struct smap acl_secrets;  /* SecretID -> struct reg_acl_token (same objects, borrowed) */
    struct smap acl_policies; /* ID -> struct reg_acl_policy */
    uint64_t acl_bootstrap;   /* index of the last ACL bootstrap, 0 before any */
    bool acl_ready;           /* runtime only: the built-in ACL objects were ensured */
    struct smap sessions;     /* session ID -> struct reg_session */
    struct smap queries;      /* prepared query ID -> struct reg_query (state_query.c) */
    struct smap lock_delay;   /* key -> lock-delay end in clock ms (uint64_t in the pointer) */
    /* The lock-delay clock in ms (sessions.c sets it; tests use a fake). NULL: no lock-delay. */
    uint64_t (*clock)(void *data);
    void *clock_data;
};

void reg_state_init(struct reg_state *st);
void reg_state_free(struct reg_state *st);

/*
 * Frees what a service or check template owns (strings, tags, JSON) and zeroes it; the struct
 * itself is the caller's (decoded registrations embed them).
 */
void reg_service_clear(struct reg_service *s);
void reg_check_clear(struct reg_check *c);

/* ---- catalog reads ---- */

struct reg_node *reg_node_get(const struct reg_state *st, const char *name);
struct reg_service *reg_service_get(const struct reg_node *node, const char *id);
struct reg_check *reg_check_get(const struct reg_node *node, const char *id);
/*
 * The node's checks in the order Consul lists them: by check ID, case-insensitively (its
 * index lower-cases IDs, so "serfHealth" comes before "Zed"). Heap array of node->checks.n
 * borrowed pointers; the caller frees the array.
 */
const struct reg_check **reg_node_checks_ordered(const struct reg_node *node);
/* True when the service carries every tag in tags (case-insensitive). */
bool reg_service_has_tags(const struct reg_service *svc, const char *const *tags, size_t ntags);

/*
 * X-Consul-Index of a read covering one service name (its instances, their checks and nodes)
 * or one node (its fields, services and checks): the last write that changed it, deletes
 * included; for an absent name, the last index at which a name (a node) went away, or 1.
 */
uint64_t reg_service_index(const struct reg_state *st, const char *name);
uint64_t reg_node_index(const struct reg_state *st, const char *name);

/* ---- catalog writes: each returns the index it committed at ---- */

/*
 * Creates or updates a node. Fields not NULL replace the current ones; json objects are
 * copied. A node is only rewritten (and its ModifyIndex bumped) when something changed.
 */
struct reg_node_fields {
    const char *name;
    const char *id;
    const char *address;
    const char *datacenter;
    const json_t *tagged_addresses;
    const json_t *meta;
};
uint64_t reg_node_upsert(struct reg_state *st, const struct reg_node_fields *f);
/* Removes a node with its services and checks. Returns 0 when there was no such node. */
uint64_t reg_node_delete(struct reg_state *st, const char *name);

/*
 * Creates or replaces a service on an existing node. `svc` is a template the state copies
 * (node, indexes ignored). CreateIndex survives a replace; ModifyIndex moves only on change.
 */
uint64_t reg_service_upsert(struct reg_state *st, struct reg_node *node,
                            const struct reg_service *svc);
/* Removes a service and the checks bound to it. 0 when absent. */
uint64_t reg_service_delete(struct reg_state *st, struct reg_node *node, const char *id);

/* Creates or replaces a check (copied from `chk`), as reg_service_upsert. */
uint64_t reg_check_upsert(struct reg_state *st, struct reg_node *node, const struct reg_check *chk);
/*
 * Sets status and output. A status change is a write (index, journal); an output-only change
 * updates memory only, as Consul defers output-only syncs, and returns 0.
 */
uint64_t reg_check_set_status(struct reg_state *st, struct reg_check *chk, enum reg_health status,
                              const char *output);
uint64_t reg_check_delete(struct reg_state *st, struct reg_node *node, const char *id);

/* ---- KV ---- */

struct reg_kv *reg_kv_get(const struct reg_state *st, const char *key);
/*
 * Writes a value (copied). With cas, the write happens only if the key's ModifyIndex equals
 * *cas (0: only if absent). Returns the commit index, or 0 when the CAS failed.
 */
uint64_t reg_kv_set(struct reg_state *st, const char *key, const void *value, size_t len,
                    uint64_t flags, const uint64_t *cas);
/* Deletes one key (cas as above; the delete always counts as a write, even of a missing key). */
uint64_t reg_kv_delete(struct reg_state *st, const char *key, const uint64_t *cas);
/*
 * Index of a prefix query (recurse/keys): the highest ModifyIndex under the prefix, including
 * deleted keys' tombstones; the KV table index when nothing was ever there.
 */
uint64_t reg_kv_prefix_index(const struct reg_state *st, const char *prefix);
/* Deletes every key with the prefix. */
uint64_t reg_kv_delete_tree(struct reg_state *st, const char *prefix);

/* ---- ACLs (state_acl.c): tokens and policies, journaled as acl-token[-delete] and
 * acl-policy[-delete] (a bootstrap's acl-token record says "bootstrap"; a snapshot keeps the
 * bootstrap index as acl-bootstrap). Tokens link policies by ID; a link to a deleted policy is
 * ignored. ---- */

#define REG_ACL_ANONYMOUS_ID         "00000000-0000-0000-0000-000000000002"
#define REG_ACL_MANAGEMENT_POLICY_ID "00000000-0000-0000-0000-000000000001"

struct reg_acl_rules;

struct reg_acl_policy {
    char *id;
    char *name;
    char *description;
    char *rules;                  /* as given */
    json_t *datacenters;          /* array of strings, owned */
    struct reg_acl_rules *parsed; /* owned */
    uint64_t create_index;
    uint64_t modify_index;
};

struct reg_acl_token {
    char *accessor_id;
    char *secret_id;
    char *description;
    char **policy_ids; /* policy_ids[npolicies] */
    size_t npolicies;
    bool local;
    char *create_time; /* RFC 3339 */
    uint64_t create_index;
    uint64_t modify_index;
};

const struct reg_acl_token *reg_acl_token_get(const struct reg_state *st, const char *accessor);
const struct reg_acl_token *reg_acl_token_by_secret(const struct reg_state *st, const char *secret);
const struct reg_acl_policy *reg_acl_policy_get(const struct reg_state *st, const char *id);
/* Policy names are unique (case-sensitive). NULL when absent. */
const struct reg_acl_policy *reg_acl_policy_by_name(const struct reg_state *st, const char *name);
/*
 * Creates or replaces a token (copied; CreateIndex survives a replace). t may borrow the
 * strings of the token it replaces. Returns the index.
 */
uint64_t reg_acl_token_put(struct reg_state *st, const struct reg_acl_token *t);
/*
 * reg_acl_token_put for a bootstrap's management token: its index becomes the bootstrap index
 * (journaled with the token, so replicas and replays have it too). Returns the index.
 */
uint64_t reg_acl_token_bootstrap(struct reg_state *st, const struct reg_acl_token *t);
/*
 * Consul's reset index: the index of the last bootstrap, which no other ACL write moves; 0 when
 * none was made (a bootstrap is allowed). State written before bootstraps were recorded counts
 * the CreateIndex of its oldest management token.
 */
uint64_t reg_acl_bootstrap_index(const struct reg_state *st);
/* Deletes a token. 0 when absent. */
uint64_t reg_acl_token_delete(struct reg_state *st, const char *accessor);
/* Creates or replaces a policy (copied). Returns 0 with *index set, or -EINVAL with e set when
 * its Rules do not parse (nothing changes then). */
int reg_acl_policy_put(struct reg_state *st, const struct reg_acl_policy *p, uint64_t *index,
                       struct err *e);
/* Deletes a policy. 0 when absent. */
uint64_t reg_acl_policy_delete(struct reg_state *st, const char *id);
/* True when the token links the global-management policy. */
bool reg_acl_token_is_management(const struct reg_acl_token *t);
/* Frees the ACL tables (called by reg_state_free). */
void reg_acl_state_free(struct reg_state *st);
/* Replay of one acl-* journal record (state_journal.c). 0 or -EINVAL. */
int reg_acl_apply(struct reg_state *st, const json_t *record);
/* Emits the records that rebuild the ACL tables (reg_state_dump). */
void reg_acl_dump(const struct reg_state *st, reg_journal_cb emit, void *data);

/* ---- sessions (state_session.c) ---- */

struct reg_session *reg_session_get(const struct reg_state *st, const char *id);
/*
 * Creates a session from the template t (copied, id included; indexes ignored). The node must
 * exist and every listed check must exist on it and not be critical. Returns 0 with *index
 * set, or -ENOENT with e set to Consul's text (answered with a 500).
 */
int reg_session_create(struct reg_state *st, const struct reg_session *t, uint64_t *index,
                       struct err *e);
/*
 * Invalidates a session: releases (or, with Behavior delete, deletes) every key it holds, puts
 * those keys in lock-delay, then removes the session. Returns the index, 0 when absent.
 */
uint64_t reg_session_destroy(struct reg_state *st, const char *id);
/* Invalidation hooks (called by state.c): sessions of a node being deleted, or tied to a check
 * that turned critical or is being deleted. */
void reg_sessions_node_gone(struct reg_state *st, const char *node);
void reg_sessions_check_gone(struct reg_state *st, const char *node, const char *check_id);
/* Sessions as a JSON array (new reference), all of them or only node's (node != NULL). */
json_t *reg_session_list_json(const struct reg_state *st, const char *node);
/* Consul's session object (new reference). */
json_t *reg_session_json(const struct reg_session *s);
void reg_session_free(struct reg_session *s);

/*
 * KV locks. acquire: 0 when the session holds the key afterwards (value and flags written,
 * LockIndex bumped on a new hold); -EBUSY when held by another session or in lock-delay;
 * -ENOENT for an unknown session. release: 0 when the session held it (Session cleared,
 * value written); -EPERM otherwise. *index gets the commit index on 0.
 */
int reg_kv_acquire(struct reg_state *st, const char *key, const void *value, size_t len,
                   uint64_t flags, const char *session, uint64_t *index);
int reg_kv_release(struct reg_state *st, const char *key, const void *value, size_t len,
                   uint64_t flags, const char *session, uint64_t *index);
/* True while key is in lock-delay. */
bool reg_kv_lock_delayed(struct reg_state *st, const char *key);

/* The caller's JSON shape of a KV entry in a transaction's Results (a new reference). */
typedef json_t *(*reg_txn_render_fn)(const struct reg_kv *kv);

/*
 * Applies a KV transaction: ops is Consul's array of {"KV": {...}} (validated by the caller for
 * shape and size). Either every op applies at one index and *results gets the Results array
 * (each entry through render: the state knows no response shapes), or nothing changes and
 * *errors gets the Errors array. Returns 0 or -EINVAL (errors set).
 */
int reg_txn_apply(struct reg_state *st, const json_t *ops, reg_txn_render_fn render,
                  json_t **results, json_t **errors);

/* ---- prepared queries (state_query.c), journaled as query and query-delete ---- */

struct reg_query {
    char *id;
    char *name;  /* "" when unnamed */
    json_t *def; /* the definition as the API returns it, without ID and indexes; owned */
    uint64_t create_index;
    uint64_t modify_index;
};

const struct reg_query *reg_query_get(const struct reg_state *st, const char *id);
/* By name, case-insensitively; NULL for "" or none. */
const struct reg_query *reg_query_by_name(const struct reg_state *st, const char *name);
/* By ID, else by name: how execute and DNS name a query. */
const struct reg_query *reg_query_find(const struct reg_state *st, const char *id_or_name);
/* Creates or replaces the query id (def copied). Returns the index. */
uint64_t reg_query_put(struct reg_state *st, const char *id, const char *name, const json_t *def);
/* 0 when absent. */
uint64_t reg_query_delete(struct reg_state *st, const char *id);
/*
 * Whether the query selects an instance of its service: every tag of Service.Tags carried
 * ("!tag": not carried), and no check of the instance or its node critical (nor warning with
 * OnlyPassing) but those in IgnoreCheckIDs.
 */
bool reg_query_selects(const struct reg_query *q, const struct reg_service *s);
/* Frees the table (reg_state_free); replay of query records; snapshot records. */
void reg_query_state_free(struct reg_state *st);
int reg_query_apply(struct reg_state *st, const json_t *record);
void reg_query_dump(const struct reg_state *st, reg_journal_cb emit, void *data);

/* Bumps a table's index without a journal record (user events) and tells the watchers. */
uint64_t reg_state_touch(struct reg_state *st, enum reg_table table);

/* ---- journal ---- */

/*
 * Applies one journal record, as produced through st->journal, without producing another.
 * Returns 0, or -EINVAL for a record it does not understand.
 */
int reg_state_apply(struct reg_state *st, const json_t *record);
/* Calls emit for a sequence of records that rebuilds the whole state (a snapshot). */
void reg_state_dump(const struct reg_state *st, reg_journal_cb emit, void *data);

/* Lower-cases s into a heap string: the key of case-insensitive maps. */
char *reg_fold(const char *s);

#endif
