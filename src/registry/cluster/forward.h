/*
 * Client agents answer what they own (their node's services and checks: the agent endpoints) and
 * forward everything else (catalog, health, KV, sessions, ...) to a server, relaying the
 * answer: status, body and the X-Consul-* headers. Blocking queries keep working through a
 * client agent because the server parks them; the forwarded call simply waits as long.
 */
#ifndef MESH_REGISTRY_FORWARD_H
#define MESH_REGISTRY_FORWARD_H

#include <stdbool.h>

struct reg_api_call;
struct reg_cluster_ctx;

/* True when a client agent must forward a request for this decoded path to a server. Before
 * it knows one, /v1/agent/members is its own (it lists itself). */
bool reg_forward_wanted(struct reg_cluster_ctx *cx, const char *path);

/* Forwards the call to the agent's current server and answers it (the call is taken over). */
void reg_forward_call(struct reg_cluster_ctx *cx, struct reg_api_call *c);

/*
 * Called instead of answering when the server could not be reached at all (the connection was
 * refused or had no route: the request was not delivered, so sending it elsewhere is safe).
 * Returns true when it took the call over.
 */
typedef bool (*reg_forward_unreachable_cb)(struct reg_api_call *c, void *data);

/*
 * Forwards the call to the server at host:port (a replicated cluster's leader) and answers it.
 * unreachable may be NULL (the call is answered 500).
 */
void reg_forward_to(struct reg_cluster_ctx *cx, struct reg_api_call *c, const char *host, int port,
                    bool https, reg_forward_unreachable_cb unreachable, void *data);

#endif
