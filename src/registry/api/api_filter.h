/* ?filter= (Consul's bexpr filtering) for the API's read endpoints. */
#ifndef MESH_REGISTRY_API_FILTER_H
#define MESH_REGISTRY_API_FILTER_H

#include <jansson.h>

#include "lib/bexpr.h"
#include "lib/err.h"
#include "registry/api/api.h"

/* The filterable fields of the answer of the route at route_path (static), or NULL when the
 * route takes no filter. */
const struct bexpr_field *reg_api_filter_fields(const char *route_path);

/*
 * Parses the call's ?filter for the route at route_path into c->filter. Returns 0 (also when
 * there is none), or -1 after answering 400: a malformed expression ("...: 1:17: expected a
 * value"), a selector or operator the answer's type does not have (checked before any data is
 * read, as Consul does), or a filter on an endpoint that takes none.
 */
int reg_api_filter_prepare(struct reg_api_call *c, const char *route_path);

/*
 * Drops from v (a rendered answer, modified in place) what the call's filter rejects. Returns 0,
 * or -EINVAL with e set when the filter cannot be evaluated against the data. A route whose
 * answer is built from what the filter selects (/v1/internal/ui/services) is left alone: its
 * handler asks reg_api_filter_match of each element before it builds the answer.
 */
int reg_api_filter_apply(const struct reg_api_call *c, json_t *v, struct err *e);

/* Whether item (borrowed) passes the call's filter: 1 (also without a filter), 0, or -EINVAL
 * with e set when the filter cannot be evaluated against it. */
int reg_api_filter_match(const struct reg_api_call *c, const json_t *item, struct err *e);

#endif
