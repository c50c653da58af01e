/*
 * Where `mesh lb`'s servers come from: the static list (-server) and, with -service, the
 * registry, followed with blocking queries on
 *   GET /v1/health/service/<service>?passing[&tag=<tag>]&index=<N>&wait=5m
 * against the registry agent cfg's registry_* settings and the environment name (any Consul agent;
 * lib/consul_client.h: token, HTTPS with client certificates).
 *
 * Each answer rebuilds the backend's set: static servers first ("srv1", "srv2", ...; id
 * "host:port"), then one server per instance (name "<node>_<port>", id the service ID, address
 * Service.Address or else Node.Address, weight Weights.Passing). A server whose id, name and
 * address are unchanged is the same struct lb_server as before, so its counters, health and
 * admin state survive; a changed weight is written into it. The set is published only when
 * its membership changed.
 *
 * The queries follow Consul's index rules (consul_watch in lib/consul_client.h). While the
 * registry is unreachable (or refuses the query) the last set stays in use,
 * backend->registry_ok is 0, and the outage is logged once.
 */
#ifndef MESH_LB_WATCH_H
#define MESH_LB_WATCH_H

#include <uv.h>

#include "lib/err.h"
#include "lb/config.h"
#include "lb/lb.h"

struct lb_watch;

/* Runs on the loop after each publish of a new set (e.g. lb_health_sync). */
typedef void (*lb_watch_cb)(void *data);

/*
 * Publishes the static servers of cfg at once and, when cfg->service is set, starts the
 * registry watch on loop. The settings of cfg are copied; loop, b and data are borrowed until
 * lb_watch_free. Returns 0, or -EINVAL with e set (a static server or a registry address that
 * does not parse, a token file that cannot be read).
 */
int lb_watch_start(struct lb_watch **out, uv_loop_t *loop, const struct lb_config *cfg,
                   struct lb_backend *b, lb_watch_cb on_publish, void *data, struct err *e);

/*
 * Applies new settings (SIGHUP): a changed static list is published at once; a changed
 * service, tag or registry setting restarts the watch from index 0. 0 or -EINVAL with e set,
 * in which case nothing changed.
 */
int lb_watch_configure(struct lb_watch *w, const struct lb_config *cfg, struct err *e);

/* Stops the watch (a query in flight is cancelled) and frees w; the loop finishes closing it. */
void lb_watch_free(struct lb_watch *w);

#endif
