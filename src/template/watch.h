/*
 * One watch per distinct dependency.
 *
 * Registry dependencies: a loop of blocking queries on the dependency's target against the
 * registry (any Consul agent), with Consul's index rules, rate limit and backoff (consul_watch
 * in lib/consul_client.h), as consul-template's views do. Each answer is decoded
 * (tmpl_dep_decode); when the value differs from the previous one the callback gets it. A
 * failure (unreachable, a non-200 answer, a body that does not decode) is logged once per
 * outage and retried; nothing is reported to the callback, so the last data (and the files
 * rendered from it) stay. agent/self and catalog/datacenters do not block: a node's name does
 * not change, so agent/self is fetched once; the datacenter list is asked again
 * TMPL_WATCH_POLL_MS after each answer, as consul-template polls its non-blocking queries.
 *
 * Files: stat every TMPL_WATCH_FILE_POLL_MS (consul-template's file dependency polls at that
 * interval) and read again when the size or the modification time changed, both on the
 * thread pool. A file that cannot be stat'ed or read is fatal, as in consul-template, which
 * gives file dependencies no retry: the callback gets the error, once, and the watch stops.
 */
#ifndef MESH_TEMPLATE_WATCH_H
#define MESH_TEMPLATE_WATCH_H

#include <jansson.h>
#include <stdbool.h>
#include <uv.h>

#include "lib/consul_client.h"
#include "lib/http_client.h"
#include "template/tmpl.h"

#define TMPL_WATCH_POLL_MS      15000 /* consul-template's DefaultNonBlockingQuerySleepTime */
#define TMPL_WATCH_FILE_POLL_MS 2000
#define TMPL_WATCH_FILE_MAX     (16u << 20) /* a larger file is an error, as a template is */

struct tmpl_watch;

/*
 * New data for dep (value borrowed for the call), or, with value NULL, the error that ended
 * the watch ("file(a.txt): stat a.txt: no such file or directory"; borrowed). cb may free the
 * watch.
 */
typedef void (*tmpl_watch_cb)(void *data, const struct tmpl_dep *dep, json_t *value,
                              const char *error);

/*
 * Starts watching dep (copied) on loop, through client at ep (borrowed; both unused, and may
 * be NULL, for a file). cb and data are borrowed until tmpl_watch_free.
 */
struct tmpl_watch *tmpl_watch_start(uv_loop_t *loop, struct http_client *client,
                                    const struct consul_endpoint *ep, const struct tmpl_dep *dep,
                                    tmpl_watch_cb cb, void *data);

/* Cancels what is in flight (no callback runs after this); w is freed once its timer closed
 * and its file read, if any, returned. */
void tmpl_watch_free(struct tmpl_watch *w);

#endif
