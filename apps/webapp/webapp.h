/*
 * webapp: the example service (the original's app.js). One loop thread serves HTTP; /work burns
 * CPU on libuv's threadpool. The process registers itself with the local agent and, on SIGTERM
 * or SIGINT, deregisters, drains (in-flight requests finish, /health answers 503) and exits 0.
 *
 * Reload. The port is bound with SO_REUSEPORT, so a new process can listen beside the old one
 * (`mesh pm reload` starts it and signals the old one once it listens). A process signalled
 * while another listens on its port hands over instead: see webapp_hand_over().
 */
#ifndef MESH_WEBAPP_H
#define MESH_WEBAPP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lib/flags.h"
#include "lib/consul_client.h"
#include "lib/http_client.h"
#include "lib/http_server.h"

#define WEBAPP_WORK_MAX_MS 10000

struct webapp {
    uv_loop_t *loop;
    struct http_server srv;
    int listen_fd; /* the server's listener (owned by srv) */
    struct http_client *client;
    uv_signal_t sig_term, sig_int;
    uv_timer_t reg_timer; /* registration retries, then the deferred shutdown */

    /* configuration (heap strings, freed at exit) */
    char *address;
    int port;
    char *node;
    char *instance;
    char *service;
    char *service_id; /* "<service>-<node>-<port>" */
    struct flag_list tags;
    struct flag_list meta;           /* "k=v" */
    char *agent;                     /* -agent as given, or NULL: the environment decides */
    struct consul_endpoint agent_ep; /* resolved (lib/consul_client.h) */
    bool no_register;
    int64_t check_interval_ns;

    /* state */
    uint64_t start_ns; /* uv_hrtime() at start */
    uint64_t requests; /* requests handled, the current one included */
    size_t in_flight;  /* /work jobs queued or running */
    bool draining;
    bool registered;    /* the agent accepted the registration */
    bool reg_attempted; /* a registration was sent at least once */
    bool reg_failure_logged;
    struct http_call *reg_call; /* registration in flight; NULL otherwise */
    bool deregistering;         /* deregistration in flight */
    bool handing_over;          /* a successor took the port and the registration */
    bool handover_grace;        /* the listener stays open a moment after handing over */
    bool shutting_down;
};

/* The HTTP handler (routes.c); data is the struct webapp. */
void webapp_handle(struct http_request *req, void *data);

/* Starts registering in the background, retrying every second until the agent answers. */
void webapp_register_start(struct webapp *app);

/*
 * Stops registration retries and, when a registration was sent, deregisters (bounded by 2 s).
 * Calls webapp_drain_check() when done (later, never from inside this call).
 */
void webapp_deregister(struct webapp *app);

/*
 * For a process signalled while another listens on its port (its successor in a reload): new
 * connections go to the successor (net_listen_hand_over), the registration is left to it, and
 * the listener stays open a moment to answer what the kernel had queued on it before. Calls
 * webapp_drain_check() when that moment is over.
 *
 * Who owns the registration: the service ID names the port ("<service>-<node>-<port>"), so the
 * process that goes on listening on the port is the one the registration describes. A
 * supervisor signals the old process only once the new one listens, so the old one sees its
 * successor, and the successor has registered or is about to (an identical ID, address and
 * port; its own tags and meta win as it registers last). Read from the kernel, this has no
 * window. The alternatives have one: an instance token in the registration (Meta or check ID)
 * compared before deregistering is a read then a delete, and the agent API has no
 * check-and-set for its services, so the successor's registration can land in between and be
 * deleted; a successor that re-registers once the old one is gone leaves the service missing
 * meanwhile, and the load balancer drops the instance.
 */
void webapp_hand_over(struct webapp *app);

/* Exits the process cleanly once deregistration is over and no /work job is in flight. */
void webapp_drain_check(struct webapp *app);

/* Uptime in seconds (fractional). */
double webapp_uptime_s(const struct webapp *app);

#endif
