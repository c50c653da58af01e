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

#define REG_CATALOG_MAX_FILTERS 32

/* ?tag=... (repeatable, all must match) and ?node-meta=k:v (repeatable, all must match). */
struct reg_catalog_filter {
    const char *tags[REG_CATALOG_MAX_FILTERS];
    size_t ntags;
    char *meta_keys[REG_CATALOG_MAX_FILTERS];
    const char *meta_values[REG_CATALOG_MAX_FILTERS];
    size_t nmeta;
};

/* Parses the filters of a read; on a bad or unsupported filter sets res to 400 and fails. */
int reg_catalog_filter_parse(struct reg_api_call *c, struct reg_catalog_filter *f,
                             struct reg_api_result *res);
void reg_catalog_filter_free(struct reg_catalog_filter *f);
bool reg_catalog_node_matches(const struct reg_catalog_filter *f, const struct reg_node *n);
/* Name compared case-insensitively (NULL: any), then the tag filter. */
bool reg_catalog_service_matches(const struct reg_catalog_filter *f, const struct reg_service *s,
                                 const char *name);
typedef void (*reg_catalog_service_fn)(const struct reg_service *s, void *ctx);
/*
 * Calls fn for every service instance on a node matching the filter whose service matches
 * (name NULL: any name), in catalog order: by node name, then service ID.
 */
void reg_catalog_foreach_service(const struct reg_state *st, const struct reg_catalog_filter *f,
                                 const char *name, reg_catalog_service_fn fn, void *ctx);
/*
 * Calls fn for every Connect-capable instance of the service name, as Consul's connect reads
 * answer them: a proxy (Kind "connect-proxy") whose Proxy.DestinationServiceName is name, or an
 * instance of name with Connect.Native; those on a node and with tags the filter matches, in
 * catalog order. Returns the index covering the result: name's, and each proxy name's.
 */
uint64_t reg_catalog_foreach_connect(const struct reg_state *st, const struct reg_catalog_filter *f,
                                     const char *name, reg_catalog_service_fn fn, void *ctx);
/*
 * The instances a read answers with, those the call's token may read (one left out marks res
 * filtered), each passed to fn in catalog order:
 *   - name NULL: every instance matching the filter (the lists of services:
 *     /v1/catalog/services, the UI's);
 *   - else the instances of name (/v1/catalog/service/NAME, /v1/health/service/NAME) or, with
 *     connect, its Connect endpoints (their /connect/ twins, as reg_catalog_foreach_connect).
 * The token must read each one's service, and its node too with need_node: Consul filters
 * instance reads and its service dump (the UI's summaries) so, its list of names by service
 * alone. Returns the index covering an instance read (undefined for name NULL).
 */
uint64_t reg_catalog_foreach_visible(struct reg_api_call *c, struct reg_api_result *res,
                                     const struct reg_catalog_filter *f, const char *name,
                                     bool connect, bool need_node, reg_catalog_service_fn fn,
                                     void *ctx);
typedef json_t *(*reg_catalog_node_render_fn)(struct reg_api_call *c, struct reg_api_result *res,
                                              const struct reg_node *n);
/*
 * The nodes a node list shows: those matching the call's ?node-meta filter that its token may
 * read, each rendered by render, in catalog order (a node left out for the token marks the
 * result filtered). NULL after a bad filter, with res set to 400.
 */
json_t *reg_catalog_visible_nodes(struct reg_api_call *c, struct reg_api_result *res,
                                  reg_catalog_node_render_fn render);
/* Sets the X-Consul-Index of a catalog read to what it covers (state.h's covering indexes). */
void reg_catalog_result_index(struct reg_api_result *res, uint64_t index);

/* A decoded catalog registration. Owns everything. */
struct reg_catalog_registration {
    struct reg_node_fields node; /* strings owned via the json body copy */
    json_t *body;                /* keeps the strings above alive */
    bool has_service;
    struct reg_service_reg service;
    struct reg_check_reg *checks;
    size_t nchecks;
    bool skip_node_update;
};

int reg_catalog_registration_decode(const json_t *body, struct reg_catalog_registration *r,
                                    struct err *e);
/* Writes node, service and checks (checks are stored, never run: Consul's catalog checks). */
int reg_catalog_registration_apply(struct reg_state *st, struct reg_catalog_registration *r,
                                   struct err *e);
void reg_catalog_registration_free(struct reg_catalog_registration *r);

#endif
