/*
 * Consul's HTTP API: routing, request decoding helpers and response conventions
 * (docs/api.md, Conventions): percent-decoded paths, method checks with
 * 405 + Allow, exactly 200 on success, text/plain errors, compact JSON unless ?pretty, and the
 * X-Consul-* headers on reads.
 */
#ifndef MESH_REGISTRY_API_H
#define MESH_REGISTRY_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/http_server.h"
#include "lib/url.h"
#include "registry/state/acl.h"
#include "registry/state/state.h"

/* The outcome of a read: what to send, and the index it reflects. */
struct reg_api_result {
    int status;               /* 200 unless an error */
    const char *content_type; /* default application/json */
    struct buf body;
    uint64_t index;        /* X-Consul-Index when index_headers */
    bool index_headers;    /* send X-Consul-Index, KnownLeader, LastContact */
    char content_hash[17]; /* X-Consul-ContentHash (agent service), "" when none: held
                            * here, as the result may be sent after other reads ran */
    bool acl_filtered;     /* X-Consul-Results-Filtered-By-ACLs: true */
};

struct reg_api_call;
typedef void (*reg_api_write_fn)(struct reg_api_call *c);
typedef void (*reg_api_read_fn)(struct reg_api_call *c, struct reg_api_result *res);

struct reg_api_route;

struct bexpr;
struct reg_agent;
struct reg_settings;
struct reg_cluster_ctx;
struct reg_node;
struct reg_sessions;
struct reg_watch_set;

/* What acl_resolve returns for an answer that is usable but old (a client agent's cache). */
#define REG_API_ACL_STALE 1

/* Where the journal and the replicated log stood when a write handler started. */
struct reg_api_write_mark {
    uint64_t unwritten; /* reg_persist_unwritten */
};

/*
 * What only the agent serving the API can do; the agent fills the table (agent/agent_api.c).
 * Every op gets the context's agent, which the API never looks into.
 */
struct reg_api_ops {
    /* Counts a request for /v1/agent/metrics. */
    void (*count_request)(struct reg_agent *a, struct str method);
    /* An answer of len bytes was handed to the connection (to give back the memory a large
     * one was built in: lib/heap_trim.h). */
    void (*answered)(struct reg_agent *a, size_t len);

    /* A client agent sends what it does not own to a server and relays the answer; true
     * when it took the call over (cluster/forward.h). */
    bool (*forward_to_server)(struct reg_agent *a, struct reg_api_call *c);
    /* A follower of a replicated cluster sends writes and consistent reads to the leader;
     * true when it took the call over (cluster/cluster.h). */
    bool (*forward_to_leader)(struct reg_agent *a, struct reg_api_call *c, bool write);

    /* Creates the built-in ACL objects once, where this agent may write the state. */
    void (*acl_ensure)(struct reg_agent *a);
    /* Resolves c->token into c->authz: 0; -ENOENT (ACL not found); -EAGAIN (nothing known
     * yet: fetch); REG_API_ACL_STALE (usable, but fetch again). */
    int (*acl_resolve)(struct reg_agent *a, struct reg_api_call *c);
    /* Asks a server what c->token may do, then calls resume(c) (agent/acl_client.h). */
    void (*acl_fetch)(struct reg_agent *a, struct reg_api_call *c, reg_api_write_fn resume);

    /* Durability of writes: the mark taken before a write handler runs; whether what it
     * wrote failed to reach the journal (0, or the -errno that stopped it). */
    void (*write_mark)(const struct reg_agent *a, struct reg_api_write_mark *m);
    int (*write_failed)(const struct reg_agent *a, const struct reg_api_write_mark *m);
    /* Whether an answer to path (a write's or a read's) must wait until the replicated log
     * has committed every change it could show; hold() then takes the request over until
     * then, with a reference to its answer (so a rendering shared by many is never copied). */
    bool (*must_hold)(const struct reg_agent *a, const char *path, bool write, int status);
    void (*hold)(struct reg_agent *a, struct http_request *req, bool write,
                 struct http_shared_response *answer);
    /* X-Consul-KnownLeader and X-Consul-LastContact of a read served here. */
    void (*read_headers)(const struct reg_agent *a, bool *known_leader, uint64_t *last_contact);

    /* The agent's own node in the catalog. */
    struct reg_node *(*local_node)(struct reg_agent *a);
    /* Stops the runners of the agent's own checks: one (check_id), or a service's. */
    void (*stop_checks)(struct reg_agent *a, const char *service_id, const char *check_id);
    /* Sorts list by estimated round-trip time from node near (?near=; "_agent": this one). */
    void (*sort_near)(const struct reg_agent *a, const char *near, json_t *list,
                      const char *(*node_of)(const json_t *entry));
};

/*
 * The narrow context every handler in api/ works with, instead of the agent: the state it
 * reads and changes, the parked blocking queries, the settings, the session runtime, and ops
 * for the rest. The agent owns it and fills it before its HTTP servers start.
 */
struct reg_api {
    struct reg_state *state;
    struct reg_watch_set *watches;
    struct reg_settings *cfg;      /* PUT /v1/agent/token changes its tokens */
    struct reg_sessions *sessions; /* NULL once the agent shuts down */
    const struct reg_api_ops *ops;
    struct reg_agent *agent; /* opaque here: handed back to ops */
    /* Opaque here: the context of the cluster's endpoints (cluster/cluster_ctx.h), which are
     * routed from here but live in cluster/. */
    struct reg_cluster_ctx *cluster;
};

struct reg_api_call {
    struct reg_api *api; /* the context it is served in */
    struct http_request *req;
    char *path;      /* percent-decoded path */
    const char *arg; /* decoded path after the route prefix ("" when none) */
    struct url_query query;
    bool pretty;
    reg_api_read_fn read; /* the read being served (blocking queries re-run it) */
    enum reg_table table;
    uint64_t min_index;                /* ?index */
    const char *hash;                  /* ?hash (agent service hash blocking) */
    const struct reg_api_route *route; /* the route being served */
    char *token;       /* the secret in use (request or default token), owned, may be NULL */
    bool token_picked; /* token was looked up */
    bool token_given;  /* the request itself carried a token */
    struct reg_acl_authz authz;     /* what the token may do (reg_api_acl_resolve) */
    struct bexpr *filter;           /* ?filter, parsed (api_filter.c); owned, may be NULL */
    int filter_target;              /* what the filter selects from (api_filter.c) */
    struct reg_api_write_mark mark; /* taken when its handler started */
    uint64_t hold_until; /* cluster.c: loop time a call waiting for a leader gives up at */
};

/* Serves one HTTP request: the agent's http_handler_cb. data is the struct reg_api. */
void reg_api_handle(struct http_request *req, void *data);

/*
 * A parked call's read, run again (its token resolved again: a parked query outlives policy and
 * token changes). res is initialised here; release it with reg_api_result_free(). Every call
 * with the same reg_api_call_share_key() gets the same result from the same state, so one run
 * serves them all.
 */
void reg_api_call_reread(struct reg_api_call *c, struct reg_api_result *res);
/*
 * The answer res makes, its body taken over: the status, the body and the X-Consul-* fields,
 * formatted once for c and every call with the same reg_api_call_share_key(). A new reference.
 */
struct http_shared_response *reg_api_result_response(const struct reg_api_call *c,
                                                     struct reg_api_result *res);
/* Answers a parked call with answer (borrowed; a holder takes a reference). Frees the call. */
void reg_api_call_answer(struct reg_api_call *c, struct http_shared_response *answer);
/* What tells two results of a read apart (status and body): a parked call answers once the
 * hash of its read's result differs from the one it parked with. */
uint64_t reg_api_result_hash(const struct reg_api_result *res);
void reg_api_result_free(struct reg_api_result *res);
/*
 * Appends to key what decides a read's answer besides the state: the decoded path, every query
 * parameter but ?index and ?wait (in request order), the Accept header, and with ACLs on the
 * token in use and whether the request carried it. Two calls with equal keys share one
 * rendering of a blocking query's answer (watch.h), so nothing that could make their answers
 * differ may be left out; the token itself stands for its rights (equal rights under two
 * tokens do not share, which costs a rendering, never a wrong answer). Call after the token
 * was resolved.
 */
void reg_api_call_share_key(const struct reg_api_call *c, struct buf *key);
/* The connection went away while parked. */
void reg_api_call_free(struct reg_api_call *c);

/* Serves a call that was held before its route's handler ran (cluster.c: no leader yet). */
void reg_api_call_resume(struct reg_api_call *c);

/* ---- helpers for handlers ---- */

/* Answers with a text/plain error (adds a newline unless present). Frees the call. */
void reg_api_error(struct reg_api_call *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Answers with any status and body (copied). Frees the call. */
void reg_api_answer(struct reg_api_call *c, int status, const char *content_type, const void *body,
                    size_t len);
/* Answers 200 with an empty body. Frees the call. */
void reg_api_ok_empty(struct reg_api_call *c);
/* Answers 200 with JSON v (stolen). Frees the call. */
void reg_api_ok_json(struct reg_api_call *c, json_t *v);

/* Sets res to a JSON value (stolen), honouring ?pretty. */
void reg_api_result_json(struct reg_api_call *c, struct reg_api_result *res, json_t *v);
/* Sets res to an error. */
void reg_api_result_error(struct reg_api_result *res, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * How deeply a request's JSON body may nest. What the API accepts is journaled, snapshotted and
 * forwarded inside a few more levels (a journal record wraps a service two levels deeper, a
 * client agent's sync one more), and jansson refuses to parse past 2048: well under that, a
 * body that was accepted always replays after a restart.
 */
#define REG_API_MAX_JSON_DEPTH 512

/*
 * Decodes the request body as a JSON object. On failure answers 400 "Request decode failed:
 * ..." and returns NULL (the call is then freed): also for a body nested deeper than
 * REG_API_MAX_JSON_DEPTH. An empty body gives an empty object when allow_empty.
 */
json_t *reg_api_body_json(struct reg_api_call *c, bool allow_empty);

/*
 * The request body parsed as any JSON value (NULL, with jerr set, when malformed or nested
 * deeper than REG_API_MAX_JSON_DEPTH). The caller owns the result.
 */
json_t *reg_api_body_load(const struct reg_api_call *c, json_error_t *jerr);

/* True when dc (from ?dc= or a body's Datacenter) is empty or the agent's own: the only
 * datacenter there is a path to. Otherwise a request answers 500 "No path to datacenter". */
bool reg_api_dc_known(const struct reg_api_call *c, const char *dc);

/* Query parameter lookup on the call. */
const char *reg_api_query(const struct reg_api_call *c, const char *name);
bool reg_api_query_has(const struct reg_api_call *c, const char *name);
/* A strconv.ParseBool-style flag: absent false; "" / 1 / t / true true; else -EINVAL. */
int reg_api_query_bool(const struct reg_api_call *c, const char *name, bool *out);

#endif
