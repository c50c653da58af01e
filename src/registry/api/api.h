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

struct reg_agent;

/* The outcome of a read: what to send, and the index it reflects. */
struct reg_api_result {
    int status;               /* 200 unless an error */
    const char *content_type; /* default application/json */
    struct buf body;
    uint64_t index;           /* X-Consul-Index when index_headers */
    bool index_headers;       /* send X-Consul-Index, KnownLeader, LastContact */
    const char *content_hash; /* X-Consul-ContentHash (agent service), may be NULL */
    bool acl_filtered;        /* X-Consul-Results-Filtered-By-ACLs: true */
};

struct reg_api_call;
typedef void (*reg_api_write_fn)(struct reg_api_call *c);
typedef void (*reg_api_read_fn)(struct reg_api_call *c, struct reg_api_result *res);

struct reg_api_route;

struct bexpr;

struct reg_api_call {
    struct reg_agent *agent;
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
    struct reg_acl_authz authz; /* what the token may do (reg_api_acl_resolve) */
    struct bexpr *filter;       /* ?filter, parsed (api_filter.c); owned, may be NULL */
    int filter_target;          /* what the filter selects from (api_filter.c) */
    uint64_t unwritten;         /* reg_persist_unwritten when a write handler started */
    uint64_t records;           /* reg_cluster_records when a write handler started */
    uint64_t hold_until;        /* cluster.c: loop time a call waiting for a leader gives up at */
};

/* Serves one HTTP request: the agent's http_handler_cb. data is the struct reg_agent. */
void reg_api_handle(struct http_request *req, void *data);

/* Runs the read again and answers if it changed (changed = hash differs) or always. */
void reg_api_call_rerun(struct reg_api_call *c, uint64_t parked_hash, bool always, bool *answered);
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
