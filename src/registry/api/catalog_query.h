/*
 * Shared pieces of catalog and health reads (tag and node-meta filters, the result index) and
 * of catalog registration (PUT /v1/catalog/register).
 */
#ifndef MESH_REGISTRY_CATALOG_QUERY_H
#define MESH_REGISTRY_CATALOG_QUERY_H

#include <stdbool.h>

#include "registry/api/api.h"
#include "registry/api/decode.h"
#include "registry/state/state.h"

#define CATALOG_MAX_FILTERS 32

/* ?tag=... (repeatable, all must match) and ?node-meta=k:v (repeatable, all must match). */
struct catalog_filter {
    const char *tags[CATALOG_MAX_FILTERS];
    size_t ntags;
    char *meta_keys[CATALOG_MAX_FILTERS];
    const char *meta_values[CATALOG_MAX_FILTERS];
    size_t nmeta;
};

/* Parses the filters of a read; on a bad or unsupported filter sets res to 400 and fails. */
int catalog_filter_parse(struct api_call *c, struct catalog_filter *f, struct api_result *res);
void catalog_filter_free(struct catalog_filter *f);
bool catalog_node_matches(const struct catalog_filter *f, const struct reg_node *n);
/* Name compared case-insensitively (NULL: any), then the tag filter. */
bool catalog_service_matches(const struct catalog_filter *f, const struct reg_service *s,
                             const char *name);
typedef void (*catalog_service_fn)(const struct reg_service *s, void *ctx);
/*
 * Calls fn for every service instance on a node matching the filter whose service matches
 * (name NULL: any name), in catalog order: by node name, then service ID.
 */
void catalog_foreach_service(const struct reg_state *st, const struct catalog_filter *f,
                             const char *name, catalog_service_fn fn, void *ctx);
/* Sets the X-Consul-Index of a catalog read to what it covers (state.h's covering indexes). */
void catalog_result_index(struct api_result *res, uint64_t index);

/* A decoded catalog registration. Owns everything. */
struct catalog_registration {
    struct reg_node_fields node; /* strings owned via the json body copy */
    json_t *body;                /* keeps the strings above alive */
    bool has_service;
    struct service_reg service;
    struct check_reg *checks;
    size_t nchecks;
    bool skip_node_update;
};

int catalog_registration_decode(const json_t *body, struct catalog_registration *r, struct err *e);
/* Writes node, service and checks (checks are stored, never run: Consul's catalog checks). */
int catalog_registration_apply(struct reg_state *st, struct catalog_registration *r, struct err *e);
void catalog_registration_free(struct catalog_registration *r);

struct reg_agent;
/* Stops the runners of a service's checks when the node is the agent's own. */
void reg_checks_stop_service(struct reg_agent *a, struct reg_node *n, const char *service_id);

#endif
