/*
 * One worker's proxy: the state machine of each client connection (read a request head,
 * pick a server, forward the head and stream the body over a pooled upstream connection,
 * stream the response back, then the next request on the same connection), and the worker's
 * queue of requests waiting for a server slot (maxconn).
 *
 * Everything here runs on the worker's loop thread. Requests on a client connection are
 * handled one at a time: pipelined bytes wait in the connection's buffer (and reading stops)
 * until the current response has been sent.
 */
#ifndef MESH_LB_PROXY_H
#define MESH_LB_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <uv.h>

#include "lib/http_parse.h"
#include "lib/list.h"
#include "lb/balance.h"
#include "lb/config.h"
#include "lb/lb.h"
#include "lb/upstream.h"

struct lb_client;

struct lb_proxy {
    uv_loop_t *loop;
    const struct lb_config *cfg; /* borrowed */
    struct lb_backend *backend;  /* borrowed */
    struct lb_counters *fe;      /* frontend counters, borrowed */
    unsigned worker;     /* the shard of every counter set this proxy writes (lb.h); 0 by default */
    const char *page503; /* whole response or HTML body (see lb_proxy_init), borrowed */
    size_t page503_len;
    struct lb_picker picker;
    struct lb_pool pool;
    struct list_node clients; /* every open client connection (struct lb_client, proxy.c) */
    size_t nclients;
    struct lb_client *queue_head, *queue_tail; /* waiting for a server slot, FIFO */
    size_t queued;
    uv_timer_t queue_timer; /* retries the queue while it is not empty */
    uv_prepare_t tick;      /* before each poll: the clock below is stale */
    uint64_t now_ns;        /* uv_hrtime read once per loop iteration (proxy.c, loop_now_ns) */
    bool now_stale;
    bool draining;
    bool closing;                                 /* lb_proxy_abort_all: nothing new starts */
    void (*on_idle)(struct lb_proxy *px);         /* drain: called when the last client is gone */
    void (*on_client_close)(struct lb_proxy *px); /* optional: a client connection ended */
    void *data;
    struct http_request_head reqhead; /* parse results, used right away */
    struct http_response_head reshead;
    char scratch[65536]; /* chunked-framing tracker input (the decoder works in place) */
};

/*
 * Initialises px on loop. cfg, backend and fe are borrowed for px's life. page503 (borrowed,
 * may be NULL for lb_default_503) is a complete HTTP response when it starts with "HTTP/",
 * else an HTML body sent with status 503.
 */
void lb_proxy_init(struct lb_proxy *px, uv_loop_t *loop, const struct lb_config *cfg,
                   struct lb_backend *backend, struct lb_counters *fe, const char *page503,
                   size_t page503_len);

/*
 * Serves an accepted TCP connection (a worker accepts it, possibly for another worker's
 * proxy: workers.c). Takes ownership of fd, closing it on failure. peer (borrowed) is the
 * client's address as accept gave it, or NULL (or AF_UNSPEC) to ask the socket. 0 or a
 * negative uv error.
 */
int lb_proxy_open_tcp(struct lb_proxy *px, int fd, const struct sockaddr *peer);

/*
 * Serves an already connected socket (TCP, or a UNIX socket such as one end of a socketpair,
 * which tests and the fuzz target use). Takes ownership of fd. 0 or a negative uv error.
 */
int lb_proxy_open_fd(struct lb_proxy *px, int fd);

/*
 * Graceful stop: idle client and upstream connections close now, busy ones after their
 * current response. px->on_idle runs once no client connection is left.
 */
void lb_proxy_drain(struct lb_proxy *px);

/* Closes every connection now (requests in flight are aborted). */
void lb_proxy_abort_all(struct lb_proxy *px);

/*
 * Releases px's resources: call after lb_proxy_abort_all (or once px->nclients is 0) and let
 * the loop run until its handles are closed (uv_run) before freeing px.
 */
void lb_proxy_close(struct lb_proxy *px);

/*
 * The built-in 503: a whole HTTP response (status line, headers, a self-contained HTML page),
 * configs/errors/503.http embedded at build time.
 */
extern const char lb_default_503[];

#endif
