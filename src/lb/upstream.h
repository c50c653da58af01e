/*
 * Per-worker pools of keep-alive connections to servers. A connection belongs to its pool for
 * its whole life: it is either idle in its server's list (read for EOF, closed after the idle
 * timeout) or lent to one client request (owner set, the proxy drives its reads and writes).
 * The pool never caps the number of connections: a request that finds no idle connection
 * gets a new one, so the pool grows to the concurrency (an nginx with keepalive 32 falls behind at
 * 200 connections for want of this: docs/benchmarks.md).
 */
#ifndef MESH_LB_UPSTREAM_H
#define MESH_LB_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "lb/lb.h"

struct lb_pool;

struct lb_upconn {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    uv_shutdown_t sreq;    /* a tunnel passes the client's half-close on */
    uv_timer_t timer;      /* connect / server / idle timeout, whichever phase applies */
    struct lb_server *srv; /* reference */
    struct lb_pool *pool;
    void *owner;                   /* the client using it; NULL while idle */
    struct lb_upconn *prev, *next; /* idle list of its server, or the busy list */
    int open_handles;              /* tcp and timer: freed when both closed */
    bool connected, reused, closing, idle;
};

/* A server's idle connections; the entry exists only while there is at least one. */
struct lb_pool_server {
    struct lb_server *srv;  /* reference */
    struct lb_upconn *idle; /* most recently used first */
    size_t nidle;           /* >= 1 */
    struct lb_pool_server *next;
};

struct lb_pool {
    uv_loop_t *loop;
    uint64_t idle_timeout_ms; /* 0 = none */
    struct lb_pool_server *servers;
    struct lb_upconn *busy; /* lent connections, for forced shutdown */
    size_t nconns;          /* open connections (idle, lent or connecting) */
    char scratch[512];      /* read buffer of idle connections (anything read closes them) */
};

void lb_pool_init(struct lb_pool *pool, uv_loop_t *loop, uint64_t idle_timeout_ms);
/* Closes every connection (idle or lent: their owners must be gone) and frees the lists. */
void lb_pool_close(struct lb_pool *pool);
/* Closes the idle connections only (drain). */
void lb_pool_close_idle(struct lb_pool *pool);

/*
 * Lends an idle connection to srv to owner (reused set; reading stopped), or NULL when none
 * is idle. The connection is in the busy list until lb_pool_put or lb_upconn_close.
 */
struct lb_upconn *lb_pool_get(struct lb_pool *pool, struct lb_server *srv, void *owner);

/*
 * A new connection to srv lent to owner; the connect is started with cb (its status < 0 on
 * failure; the connection must then be closed with lb_upconn_close). Returns NULL with *rc
 * set when the connect cannot even start.
 */
struct lb_upconn *lb_pool_connect(struct lb_pool *pool, struct lb_server *srv, void *owner,
                                  uv_connect_cb cb, int *rc);

/* Gives a connection whose response ended cleanly back to the pool (idle, read for EOF). */
void lb_pool_put(struct lb_upconn *u);

/* Closes the connection (idempotent); it is freed after its handles are closed. */
void lb_upconn_close(struct lb_upconn *u);

#endif
