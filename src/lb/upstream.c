/* Per-worker pools of keep-alive upstream connections. */
#include <string.h>

#include "lib/alloc.h"
#include "lib/bug.h"
#include "lb/upstream.h"

void lb_pool_init(struct lb_pool *pool, uv_loop_t *loop, uint64_t idle_timeout_ms,
                  const struct lb_upconn_ops *ops)
{
    memset(pool, 0, sizeof(*pool));
    pool->loop = loop;
    pool->idle_timeout_ms = idle_timeout_ms;
    pool->ops = ops;
    list_init(&pool->busy);
}

static struct lb_pool_server *pool_server(struct lb_pool *pool, struct lb_server *srv, bool add)
{
    struct lb_pool_server **pp = &pool->servers;

    for (; *pp; pp = &(*pp)->next) {
        struct lb_pool_server *ps = *pp;
        if (ps->srv != srv)
            continue;
        /* move to front: the servers in use stay at the head of the list */
        *pp = ps->next;
        ps->next = pool->servers;
        pool->servers = ps;
        return ps;
    }
    if (!add)
        return NULL;
    struct lb_pool_server *ps = xcalloc(1, sizeof(*ps));
    ps->srv = lb_server_ref(srv);
    list_init(&ps->idle);
    ps->next = pool->servers;
    pool->servers = ps;
    return ps;
}

/* Forgets a server whose last idle connection went: the pool holds entries (and references)
 * only for servers with idle connections, so servers that left the registry do not pile up
 * in a long-running worker. */
static void pool_server_drop(struct lb_pool *pool, struct lb_pool_server *ps)
{
    struct lb_pool_server **pp = &pool->servers;

    while (*pp != ps)
        pp = &(*pp)->next;
    *pp = ps->next;
    lb_server_unref(ps->srv);
    free(ps);
}

/* Takes u out of whichever list holds it. */
static void upconn_detach(struct lb_upconn *u)
{
    struct lb_pool *pool = u->pool;

    list_remove(&u->link);
    if (u->idle) {
        struct lb_pool_server *ps = pool_server(pool, u->srv, false);
        if (ps && --ps->nidle == 0)
            pool_server_drop(pool, ps);
        u->idle = false;
    }
}

static void upconn_handle_closed(uv_handle_t *h)
{
    struct lb_upconn *u = h->data;

    if (--u->open_handles > 0)
        return;
    lb_server_unref(u->srv);
    u->srv = NULL;
    free(u);
}

void lb_upconn_close(struct lb_upconn *u)
{
    if (u->closing)
        return;
    u->closing = true;
    upconn_detach(u);
    u->pool->nconns--;
    u->owner = NULL;
    deadline_close(&u->timer, upconn_handle_closed);
    pollsock_close(&u->sock, upconn_handle_closed);
}

/* The owner's timeout, or the end of an idle connection. */
static void upconn_expired(struct deadline *d)
{
    struct lb_upconn *u = d->data;

    if (u->owner)
        u->pool->ops->timeout(u);
    else
        lb_upconn_close(u);
}

struct lb_upconn *lb_pool_get(struct lb_pool *pool, struct lb_server *srv, void *owner)
{
    struct lb_pool_server *ps = pool_server(pool, srv, false);

    struct lb_upconn *u = ps ? LIST_ENTRY(list_first(&ps->idle), struct lb_upconn, link) : NULL;

    if (!u)
        return NULL;
    list_remove(&u->link);
    if (--ps->nidle == 0)
        pool_server_drop(pool, ps);
    u->idle = false;
    list_insert_head(&pool->busy, &u->link);
    deadline_clear(&u->timer);
    u->owner = owner;
    u->reused = true;
    return u;
}

/* Readable: a lent connection's bytes are its owner's to read. */
static void upconn_readable(struct pollsock *ps)
{
    struct lb_upconn *u = ps->data;

    if (u->owner) {
        u->pool->ops->read(u);
        return;
    }
    /* an idle connection that says anything (EOF, error, stray bytes) is done */
    ssize_t n = pollsock_recv(ps, u->pool->scratch, sizeof(u->pool->scratch));
    if (n != UV_EAGAIN)
        lb_upconn_close(u);
}

static void upconn_connected(struct pollsock *ps, int status)
{
    struct lb_upconn *u = ps->data;

    if (MESH_BUG_ON(!u->owner)) { /* an owner that gives a connection up closes it */
        lb_upconn_close(u);
        return;
    }
    u->connected = status == 0;
    u->pool->ops->connected(u, status);
}

struct lb_upconn *lb_pool_connect(struct lb_pool *pool, struct lb_server *srv, void *owner, int *rc)
{
    struct lb_upconn *u = xcalloc(1, sizeof(*u));

    *rc = pollsock_connect(&u->sock, pool->loop, (const struct sockaddr *)&srv->sa, upconn_readable,
                           upconn_connected);
    if (*rc < 0) {
        free(u);
        return NULL;
    }
    u->sock.data = u;
    u->pool = pool;
    u->srv = lb_server_ref(srv);
    u->owner = owner;
    deadline_init(&u->timer, pool->loop, upconn_expired, u);
    u->open_handles = 2;
    list_insert_head(&pool->busy, &u->link);
    pool->nconns++;
    return u;
}

void lb_upconn_read(struct lb_upconn *u, bool on)
{
    if (on != u->sock.reading && !u->closing)
        pollsock_read(&u->sock, on);
}

void lb_upconn_timeout(struct lb_upconn *u, uint64_t ms)
{
    if (ms)
        deadline_set(&u->timer, ms);
    else
        deadline_clear(&u->timer);
}

void lb_pool_put(struct lb_upconn *u)
{
    struct lb_pool *pool = u->pool;
    struct lb_pool_server *ps = pool_server(pool, u->srv, true);

    list_remove(&u->link);
    u->owner = NULL;
    u->idle = true;
    list_insert_head(&ps->idle, &u->link);
    ps->nidle++;
    lb_upconn_read(u, true); /* for the server's close; a lent connection may be paused */
    if (pool->idle_timeout_ms)
        deadline_set(&u->timer, pool->idle_timeout_ms);
    else
        deadline_clear(&u->timer);
}

void lb_pool_close_idle(struct lb_pool *pool)
{
    struct lb_upconn *u;

    /* Each entry has an idle connection; closing a server's last one drops its entry. */
    while (pool->servers &&
           (u = LIST_ENTRY(list_first(&pool->servers->idle), struct lb_upconn, link)))
        lb_upconn_close(u);
}

void lb_pool_close(struct lb_pool *pool)
{
    struct lb_upconn *u;

    lb_pool_close_idle(pool);
    while ((u = LIST_ENTRY(list_first(&pool->busy), struct lb_upconn, link)))
        lb_upconn_close(u);
}
