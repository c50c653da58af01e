/*
 * Decoding and validating Consul service and check definitions (agent/service/register,
 * agent/check/register, config files' "services"), with Consul's 400 texts.
 */
#ifndef MESH_REGISTRY_DECODE_H
#define MESH_REGISTRY_DECODE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "registry/state/state.h"

enum reg_check_kind {
    REG_CHECK_TTL = 0,
    REG_CHECK_HTTP,
    REG_CHECK_TCP,
    REG_CHECK_SCRIPT,
    REG_CHECK_NONE, /* no probing: status only changes through the API (e.g. maintenance) */
};

/* What a check does, decoded from a Consul check definition: what agent/checks.h runs. */
struct reg_check_def {
    char *id;
    char *name;
    char *service_id; /* "" for node checks */
    enum reg_check_kind kind;
    /* HTTP */
    char *http;     /* URL */
    char *method;   /* default GET */
    json_t *header; /* {"Name": ["v1", ...]}, may be NULL */
    char *body;     /* may be NULL */
    bool tls_skip_verify;
    char *tls_server_name;
    bool disable_redirects;
    /* TCP */
    char *tcp; /* host:port */
    /* script */
    char **args; /* NULL-terminated argv */
    /* timing, nanoseconds */
    int64_t interval;
    int64_t timeout; /* default 10 s (script: 30 s) */
    int64_t ttl;
    int64_t deregister_critical_after; /* 0 = never */
    int success_before_passing;
    int failures_before_warning;
    int failures_before_critical;
    size_t output_max_size; /* default 4096 */
};

void reg_check_def_free(struct reg_check_def *d); /* d may be NULL */

/* A check to register: its catalog entry and how to run it. Owns everything. */
struct reg_check_reg {
    struct reg_check chk;      /* template for reg_check_upsert (strings owned here) */
    struct reg_check_def *run; /* runner definition (kind REG_CHECK_NONE runs nothing) */
    bool status_given;         /* the definition set an initial Status */
};

/* A service with its checks. Owns everything. */
struct reg_service_reg {
    struct reg_service svc; /* template for reg_service_upsert (strings owned here) */
    struct reg_check_reg *checks;
    size_t nchecks;
};

struct reg_decode_opts {
    bool allow_scripts; /* enable_script_checks */
};

/*
 * Decodes a service definition. Returns 0, or -EINVAL with e holding the message to send with
 * a 400 ("Missing service name", "Request decode failed: json: cannot unmarshal ...").
 */
int reg_decode_service(const json_t *obj, const struct reg_decode_opts *opts,
                       struct reg_service_reg *out, struct err *e);
void reg_service_reg_free(struct reg_service_reg *r);

/*
 * Decodes a check definition. service_id/service_name bind it to a service (NULL for a node
 * check unless the body names a ServiceID). default_id is used when the body has no ID
 * (NULL: the Name). Returns 0 or -EINVAL with e set.
 */
int reg_decode_check(const json_t *obj, const struct reg_decode_opts *opts, const char *service_id,
                     const char *default_id, const char *default_name, struct reg_check_reg *out,
                     struct err *e);
void reg_check_reg_free(struct reg_check_reg *r);

#endif
