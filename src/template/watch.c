/* A dependency's blocking-query loop: fetch, decode, report a change, back off on failure. */
#include "template/watch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/buf.h"
#include "lib/log.h"

#define WATCH_MIN_GAP_MS  100
#define WATCH_BACKOFF_MIN 250
#define WATCH_BACKOFF_MAX 60000
#define WATCH_WAIT        "60s"
/* The server may hold the query for wait plus wait/16 of jitter. */
#define WATCH_TIMEOUT_MS (60 * 1000 + 15 * 1000)
#define WATCH_MAX_BODY   (64u << 20)

struct tmpl_watch {
    uv_loop_t *loop;
    struct http_client *client;
    const struct tmpl_conn *conn;
    struct tmpl_dep dep;
    bool stopping, outage, done;
    tmpl_watch_cb cb;
    void *data;
    struct http_call *call;
    uv_timer_t timer;
    uint64_t index, last_fetch_ms, backoff_ms;
    json_t *last; /* the last value reported */
};

static void watch_fetch(struct tmpl_watch *w);

static void on_timer(uv_timer_t *t)
{
    watch_fetch(t->data);
}

static void watch_failed(struct tmpl_watch *w, const char *why)
{
    if (!w->outage)
        log_warn("registry %s: %s: %s; keeping the last data and retrying", w->conn->addr,
                 w->dep.id, why);
    w->outage = true;
    w->index = 0; /* a restarted registry may have a lower index: ask for one that answers */
    w->backoff_ms = w->backoff_ms ? w->backoff_ms * 2 : WATCH_BACKOFF_MIN;
    if (w->backoff_ms > WATCH_BACKOFF_MAX)
        w->backoff_ms = WATCH_BACKOFF_MAX;
    uv_timer_start(&w->timer, on_timer, w->backoff_ms, 0);
}

static void on_answer(int status, const struct http_client_response *res, void *data)
{
    struct tmpl_watch *w = data;
    struct err e;

    w->call = NULL;
    if (status == UV_ECANCELED || w->stopping)
        return;
    if (status < 0) {
        const char *detail = http_client_error(w->client);
        watch_failed(w, detail ? detail : uv_strerror(status));
        return;
    }
    json_t *value = tmpl_dep_decode(&w->dep, res->status, res->body, res->body_len, &e);
    if (!value) {
        watch_failed(w, e.msg);
        return;
    }
    uint64_t idx = http_client_index(res);
    w->index = idx < w->index ? 0 : idx;
    if (w->outage)
        log_info("registry %s: %s: reachable again", w->conn->addr, w->dep.id);
    w->outage = false;
    w->backoff_ms = 0;
    if (!w->last || !json_equal(w->last, value)) {
        json_decref(w->last);
        w->last = json_incref(value);
        w->cb(w->data, &w->dep, value);
    }
    json_decref(value);
    if (w->dep.kind == TMPL_DEP_SELF || w->stopping) {
        w->done = true;
        return;
    }
    uint64_t since = uv_now(w->loop) - w->last_fetch_ms;
    uv_timer_start(&w->timer, on_timer, since >= WATCH_MIN_GAP_MS ? 0 : WATCH_MIN_GAP_MS - since,
                   0);
}

static void watch_fetch(struct tmpl_watch *w)
{
    struct buf target = BUF_INIT;
    struct http_header token = {STR_LIT("X-Consul-Token"), str_from(w->conn->token)};

    if (w->stopping || w->done)
        return;
    tmpl_dep_target(&w->dep, &target);
    if (w->dep.kind != TMPL_DEP_SELF)
        buf_printf(&target, "%cindex=%llu&wait=" WATCH_WAIT, strchr(target.data, '?') ? '&' : '?',
                   (unsigned long long)w->index);
    struct http_client_request req = {
        .method = "GET",
        .host = w->conn->host,
        .port = w->conn->port,
        .target = target.data,
        .headers = &token,
        .num_headers = w->conn->token ? 1 : 0,
        .timeout_ms = WATCH_TIMEOUT_MS,
        .max_body = WATCH_MAX_BODY,
        .tls = w->conn->tls,
        .tls_ca_file = w->conn->ca_file,
        .tls_cert_file = w->conn->cert_file,
        .tls_key_file = w->conn->key_file,
        .tls_server_name = w->conn->server_name,
        .tls_skip_verify = w->conn->skip_verify,
    };
    w->last_fetch_ms = uv_now(w->loop);
    w->call = http_client_send(w->client, &req, on_answer, w);
    buf_free(&target);
}

struct tmpl_watch *tmpl_watch_start(uv_loop_t *loop, struct http_client *client,
                                    const struct tmpl_conn *conn, const struct tmpl_dep *dep,
                                    tmpl_watch_cb cb, void *data)
{
    struct tmpl_watch *w = xcalloc(1, sizeof(*w));

    w->loop = loop;
    w->client = client;
    w->conn = conn;
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
    uv_timer_init(loop, &w->timer);
    w->timer.data = w;
    log_debug("watching %s", w->dep.id);
    uv_timer_start(&w->timer, on_timer, 0, 0);
    return w;
}

static void on_closed(uv_handle_t *h)
{
    struct tmpl_watch *w = h->data;

    tmpl_dep_clear(&w->dep);
    json_decref(w->last);
    free(w);
}

void tmpl_watch_free(struct tmpl_watch *w)
{
    if (!w)
        return;
    w->stopping = true;
    if (w->call)
        http_call_cancel(w->call);
    w->call = NULL;
    uv_close((uv_handle_t *)&w->timer, on_closed);
}
