/*
 * One watch per distinct dependency: a loop of blocking queries on the dependency's target
 * against the registry (any Consul agent), with Consul's index rules, rate limit and backoff
 * (consul_watch in lib/consul_client.h), as consul-template's views do. Each answer is decoded
 * (tmpl_dep_decode); when the value differs from the previous one the callback gets it.
 *
 * A failure (unreachable, a non-200 answer, a body that does not decode) is logged once per
 * outage and retried; nothing is reported to the callback, so the last data (and the files
 * rendered from it) stay. agent/self and catalog/datacenters, which do not block, are fetched
 * once: a node's name does not change, and a registry's datacenters change only when one is
 * federated (consul-template polls them every 15 s).
 */
#ifndef MESH_TEMPLATE_WATCH_H
#define MESH_TEMPLATE_WATCH_H

#include <jansson.h>
#include <stdbool.h>
#include <uv.h>

#include "lib/consul_client.h"
#include "lib/http_client.h"
#include "template/tmpl.h"

struct tmpl_watch;

/* New data for dep (value borrowed for the call). */
typedef void (*tmpl_watch_cb)(void *data, const struct tmpl_dep *dep, json_t *value);

/*
 * Starts watching dep (copied) on loop through client at ep (borrowed). cb and data are
 * borrowed until tmpl_watch_free.
 */
struct tmpl_watch *tmpl_watch_start(uv_loop_t *loop, struct http_client *client,
                                    const struct consul_endpoint *ep, const struct tmpl_dep *dep,
                                    tmpl_watch_cb cb, void *data);

/* Cancels the query in flight and frees w (its timer closes on the loop). */
void tmpl_watch_free(struct tmpl_watch *w);

#endif
