/* A dependency's blocking-query loop: decode each answer, report a change, log an outage once. */
#include "template/watch.h"

#include <errno.h>
#include <stdlib.h>

#include "lib/alloc.h"
#include "lib/buf.h"
#include "lib/log.h"

struct tmpl_watch {
    const struct consul_endpoint *ep;
    struct tmpl_dep dep;
    tmpl_watch_cb cb;
    void *data;
    struct consul_watch *query;
    json_t *last; /* the last value reported */
};

static void on_outage(void *data, const char *why)
{
    struct tmpl_watch *w = data;

    if (why)
        log_warn("registry %s: %s: %s; keeping the last data and retrying", w->ep->addr, w->dep.id,
                 why);
    else
        log_info("registry %s: %s: reachable again", w->ep->addr, w->dep.id);
}

static int on_answer(void *data, const struct http_client_response *res, struct err *e)
{
    struct tmpl_watch *w = data;
    json_t *value = tmpl_dep_decode(&w->dep, res->status, res->body, res->body_len, e);

    if (!value)
        return -EINVAL;
    if (!w->last || !json_equal(w->last, value)) {
        json_decref(w->last);
        w->last = json_incref(value);
        w->cb(w->data, &w->dep, value);
    }
    json_decref(value);
    return 0;
}

static const struct consul_watch_ops watch_ops = {.answer = on_answer, .outage = on_outage};

struct tmpl_watch *tmpl_watch_start(uv_loop_t *loop, struct http_client *client,
                                    const struct consul_endpoint *ep, const struct tmpl_dep *dep,
                                    tmpl_watch_cb cb, void *data)
{
    struct tmpl_watch *w = xcalloc(1, sizeof(*w));
    struct buf target = BUF_INIT;

    w->ep = ep;
    w->dep = (struct tmpl_dep){
        .kind = dep->kind,
        .id = xstrdup(dep->id),
        .name = xstrdup(dep->name),
        .tag = dep->tag ? xstrdup(dep->tag) : NULL,
        .dc = dep->dc ? xstrdup(dep->dc) : NULL,
        .health = dep->health,
    };
    w->cb = cb;
    w->data = data;
    log_debug("watching %s", w->dep.id);
    tmpl_dep_target(&w->dep, &target);
    /* agent/self and the datacenter list do not block: asked once (see watch.h) */
    w->query = consul_watch_start(
        client, loop, ep, target.data,
        w->dep.kind == TMPL_DEP_SELF || w->dep.kind == TMPL_DEP_DATACENTERS, &watch_ops, w);
    buf_free(&target);
    return w;
}

void tmpl_watch_free(struct tmpl_watch *w)
{
    if (!w)
        return;
    consul_watch_free(w->query);
    tmpl_dep_clear(&w->dep);
    json_decref(w->last);
    free(w);
}
