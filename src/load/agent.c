/*
 * Agents: which keep-alive connection a request goes over, as Node's http.Agent decides under
 * Artillery (agentkeepalive). The bookkeeping only: what a connection does with the bytes is
 * exchange.c's, which resumes a waiting request (load_agent_next_waiter) whenever a connection is
 * given back or closed.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/bug.h"
#include "load/engine_internal.h"

void load_agent_init(struct load_agent *a, int max)
{
    MESH_BUG_ON(max < 0);
    *a = (struct load_agent){.max = max};
    list_init(&a->idle);
    list_init(&a->queue);
}

static void conn_close_cb(uv_handle_t *h)
{
    struct load_conn *c = CONTAINER_OF((uv_tcp_t *)h, struct load_conn, tcp);

    buf_free(&c->in);
    buf_free(&c->out);
    buf_free(&c->body);
    buf_free(&c->raw);
    load_expect_run_clear(&c->expect);
    if (c->tls) /* tls_conn_free takes no NULL */
        tls_conn_free(c->tls);
    free(c);
}

void load_conn_close(struct load_conn *c)
{
    struct load_agent *a = c->agent;

    if (MESH_BUG_ON(!a))
        return;
    if (list_linked(&c->link))
        list_remove(&c->link);
    a->open--;
    c->agent = NULL;
    c->vu = NULL;
    uv_close((uv_handle_t *)&c->tcp, conn_close_cb);
}

static bool same_dest(const struct load_conn *c, const struct load_dest *d)
{
    const struct sockaddr_storage *a = &c->addr, *b = &d->addr;

    return c->https == d->https && strcmp(c->server_name, d->host) == 0 &&
           memcmp(a, b,
                  a->ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                          : sizeof(struct sockaddr_in6)) == 0;
}

static struct load_conn *conn_new(struct load_agent *a, const struct load_dest *d, uv_loop_t *loop)
{
    struct load_conn *c = xcalloc(1, sizeof(*c));

    c->agent = a;
    c->addr = d->addr;
    c->https = d->https;
    snprintf(c->server_name, sizeof(c->server_name), "%s", d->host);
    snprintf(c->host_header, sizeof(c->host_header), "%s", d->host_header);
    uv_tcp_init(loop, &c->tcp);
    a->open++;
    return c;
}

struct load_conn *load_agent_take(struct load_agent *a, struct load_vu *vu,
                                  const struct load_dest *d, uv_loop_t *loop)
{
    struct load_conn *c;

    /* the most recently idle first, as Node's agent schedules (lifo) */
    LIST_FOR_EACH(c, &a->idle, link) {
        if (!same_dest(c, d))
            continue;
        list_remove(&c->link);
        uv_ref((uv_handle_t *)&c->tcp);
        c->vu = vu;
        return c;
    }
    /* the cap counts every destination together; an idle connection elsewhere makes room */
    if (a->open >= a->max && !list_empty(&a->idle))
        load_conn_close(LIST_ENTRY(a->idle.prev, struct load_conn, link));
    if (a->open >= a->max) {
        list_insert_tail(&a->queue, &vu->queue_link);
        return NULL;
    }
    c = conn_new(a, d, loop);
    c->vu = vu;
    return c;
}

void load_agent_give(struct load_conn *c)
{
    struct load_agent *a = c->agent;

    if (MESH_BUG_ON(!a))
        return;
    c->vu = NULL;
    list_insert_head(&a->idle, &c->link);
    /* an idle connection keeps no loop alive: the run ends when its users have */
    uv_unref((uv_handle_t *)&c->tcp);
}

void load_agent_close_idle(struct load_agent *a)
{
    while (!list_empty(&a->idle))
        load_conn_close(LIST_ENTRY(list_first(&a->idle), struct load_conn, link));
}

void load_agent_unqueue(struct load_vu *vu)
{
    if (list_linked(&vu->queue_link))
        list_remove(&vu->queue_link);
}

struct load_vu *load_agent_next_waiter(struct load_agent *a)
{
    struct load_vu *vu;

    if (list_empty(&a->queue) || (a->open >= a->max && list_empty(&a->idle)))
        return NULL;
    vu = LIST_ENTRY(list_first(&a->queue), struct load_vu, queue_link);
    list_remove(&vu->queue_link);
    return vu;
}
