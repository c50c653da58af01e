/*
 * Per-worker pools of keep-alive connections to servers. A connection belongs to its pool for
 * its whole life: it is either idle in its server's list (read for EOF, closed after the idle
 * timeout) or lent to one client request (owner set, the proxy drives its reads and writes).
 * A connected connection is read all the time, idle or lent (lib/pollsock.h: one registration
 * with the loop's epoll while that lasts): the pool reads an idle one itself and tells a lent
 * one's owner, who reads into its own buffer. Reading is switched off only while the owner
 * pauses it (backpressure), so lending and taking back costs no system call.
 * The pool never caps the number of connections: a request that finds no idle connection
 * gets a new one, so the pool grows to the concurrency (an nginx with keepalive 32 falls behind at
 * 200 connections for want of this: docs/benchmarks.md).
 */
#ifndef MESH_LB_UPSTREAM_H
#define MESH_LB_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "lib/deadline.h"
#include "lib/list.h"
#include "lib/pollsock.h"
#include "lb/lb.h"

struct lb_pool;
struct lb_upconn;

/* A lent connection is readable: its owner reads it (pollsock_recv on u->sock). */
typedef void (*lb_upconn_read_cb)(struct lb_upconn *u);
/* A lent connection's timeout (lb_upconn_timeout) passed. */
typedef void (*lb_upconn_timeout_cb)(struct lb_upconn *u);
/* A new connection's connect ended: 0, or a negative uv error (then close it). */
typedef void (*lb_upconn_connect_cb)(struct lb_upconn *u, int status);

/* What the owners of lent connections are told (never about idle ones). */
struct lb_upconn_ops {
    lb_upconn_read_cb read;
    lb_upconn_timeout_cb timeout;
    lb_upconn_connect_cb connected;
};

/*
 * The owner writes with pollsock_write on sock and shuts its write side down with
 * pollsock_shutdown; the pool reads it (on its owner's behalf while lent) and closes it.
 */
struct lb_upconn {
    struct pollsock sock;  /* its data is the upconn */
    struct deadline timer; /* the owner's connect or server timeout, or the idle timeout */
    struct lb_server *srv; /* reference */
    struct lb_pool *pool;
    void *owner;           /* the client using it; NULL while idle */
    struct list_node link; /* in its server's idle list, or the pool's busy list */
    int open_handles;      /* sock and timer: freed when both closed */
    bool connected, reused, closing, idle;
};

/* A server's idle connections; the entry exists only while there is at least one. */
struct lb_pool_server {
    struct lb_server *srv; /* reference */
    struct list_node idle; /* its idle connections, most recently used first */
    size_t nidle;          /* >= 1 */
    struct lb_pool_server *next;
};

struct lb_pool {
    uv_loop_t *loop;
    uint64_t idle_timeout_ms;        /* 0 = none */
    const struct lb_upconn_ops *ops; /* borrowed */
    struct lb_pool_server *servers;
    struct list_node busy; /* lent connections, for forced shutdown */
    size_t nconns;         /* open connections (idle, lent or connecting) */
    char scratch[512];     /* read buffer of idle connections (anything read closes them) */
};

/* ops (borrowed for the pool's life) receives the reads, timeouts and connects of lent
 * connections. */
void lb_pool_init(struct lb_pool *pool, uv_loop_t *loop, uint64_t idle_timeout_ms,
                  const struct lb_upconn_ops *ops);
/* Closes every connection (idle or lent: their owners must be gone) and frees the lists. */
void lb_pool_close(struct lb_pool *pool);
/* Closes the idle connections only (drain). */
void lb_pool_close_idle(struct lb_pool *pool);

/*
 * Lends an idle connection to srv to owner (reused set; still reading, now for owner), or NULL
 * when none is idle. The connection is in the busy list until lb_pool_put or lb_upconn_close.
 */
struct lb_upconn *lb_pool_get(struct lb_pool *pool, struct lb_server *srv, void *owner);

/*
 * A new connection to srv lent to owner; the connect is started and ends in ops->connected
 * (on failure the connection must then be closed with lb_upconn_close). Returns NULL with *rc
 * set when the connect cannot even start.
 */
struct lb_upconn *lb_pool_connect(struct lb_pool *pool, struct lb_server *srv, void *owner,
                                  int *rc);

/* Gives a connection whose response ended cleanly back to the pool (idle, read for EOF). */
void lb_pool_put(struct lb_upconn *u);

/*
 * Starts (on) or pauses reading a connected, lent connection; system calls only when the
 * state changes. A connection reads nothing before its owner first turns reading on.
 */
void lb_upconn_read(struct lb_upconn *u, bool on);

/*
 * Sets a lent connection's timeout ms from now (ops->timeout runs when it passes), or clears
 * it (0). Moving it later is cheap (lib/deadline.h): call it on every read.
 */
void lb_upconn_timeout(struct lb_upconn *u, uint64_t ms);

/* Closes the connection (idempotent); it is freed after its handles are closed. */
void lb_upconn_close(struct lb_upconn *u);

#endif
