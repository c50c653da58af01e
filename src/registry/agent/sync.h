/*
 * A client agent's link to the servers (Consul's anti-entropy, over the HTTP API):
 *   - a heartbeat to the current server every second announces the node (see members.h);
 *   - every local change (a service or check registered or removed, a check changing status)
 *     is pushed at once with catalog register/deregister calls, and a full pass every 30 s
 *     re-pushes everything and removes what the server holds for this node that the agent no
 *     longer has;
 *   - the servers of a replicated cluster name each other in their heartbeat answers: the
 *     agent keeps that list (beside -join / -retry-join) and a server that stops answering is
 *     replaced by the next one known.
 * The agent's own state stays authoritative for its node, as in Consul.
 */
#ifndef MESH_REGISTRY_SYNC_H
#define MESH_REGISTRY_SYNC_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"
#include "lib/http_client.h"
#include "lib/http_server.h"
#include "registry/state/state.h"

struct reg_agent;

struct reg_sync_server {
    char host[256];
    int port;
    bool https;   /* given as https://host:port */
    bool learned; /* named by a server's heartbeat answer, not by -join / -retry-join */
};

/* Starts joining (client agents only). Returns 0, or -EINVAL with e set for a bad address. */
int reg_sync_start(struct reg_agent *a, struct err *e);
/* Stops timers and calls in flight; reg_sync_free once the loop has run the close callbacks. */
void reg_sync_stop(struct reg_agent *a);
void reg_sync_free(struct reg_agent *a);

/* The state's change hook on client agents: schedules a push. data is the agent. */
void reg_sync_on_change(enum reg_table table, void *data);

/* How many servers the agent knows once joined (Stats' consul.known_servers); 0 before. */
size_t reg_sync_known_servers(struct reg_agent *a);
/* The server requests are sent to, or NULL before any is known. */
const struct reg_sync_server *reg_sync_current_server(struct reg_agent *a);
/*
 * Which server is current: the value changes each time the agent moves to another. A caller
 * takes it when it sends a request, and hands it to reg_sync_server_failed.
 */
uint64_t reg_sync_server_epoch(struct reg_agent *a);
/*
 * A request sent to the server current at epoch failed at the transport level: move to the next
 * one, unless the agent already moved since (several calls failing at once move it once).
 */
void reg_sync_server_failed(struct reg_agent *a, uint64_t epoch, int status);
/* Adds what every request to a server carries (the agent token, TLS settings). */
void reg_sync_client_options(struct reg_agent *a, struct http_client_request *r);

/*
 * Joins the cluster through addr (a server's HTTP API: host, host:port, http:// or https://):
 * sends it a heartbeat and, when it answers, makes it the agent's current server (added to
 * the -join list) and starts heartbeats and syncs if they were not running. done is called
 * once with 0, or with -errno and why (the server's answer or the transport error): also with
 * -ECANCELED when the agent stops first. Returns 0, or -EINVAL (a bad address) or -EBUSY
 * (another join is under way) with e set, and then done is not called.
 */
typedef void (*reg_sync_join_cb)(int status, const char *why, void *data);
int reg_sync_join(struct reg_agent *a, const char *addr, reg_sync_join_cb done, void *data,
                  struct err *e);
/* Abandons the join under way (done is not called). */
void reg_sync_join_cancel(struct reg_agent *a);

/*
 * Consul's agent pushes a change to its node before it answers the write that made it, so a
 * read right after sees it. reg_sync_must_hold says whether the answer to a local write (a
 * service or check registered, removed or updated) must wait for that; reg_sync_hold then
 * takes req over with a reference to answer, and sends it once a push covering every change
 * made so far has been tried (answered even when the push failed, as Consul's is).
 */
bool reg_sync_must_hold(const struct reg_agent *a, bool write, int status);
void reg_sync_hold(struct reg_agent *a, struct http_request *req,
                   struct http_shared_response *answer);

/* Tells the server this node leaves (its services are deregistered), then calls done. */
void reg_sync_leave(struct reg_agent *a, void (*done)(struct reg_agent *a));

#endif
