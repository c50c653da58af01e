/*
 * Registration with the local agent through Consul's HTTP API: PUT
 * /v1/agent/service/register with an HTTP check on /health, retried every second in the
 * background until the agent answers; PUT /v1/agent/service/deregister/ID on shutdown.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/buf.h"
#include "lib/duration.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/net.h"
#include "lib/url.h"
#include "webapp.h"

#define REGISTER_RETRY_MS   1000
#define REGISTER_TIMEOUT_MS 5000
#define DEREGISTER_WAIT_MS  2000
/*
 * After handing over, the listener stays open this long. A connection the kernel queued on it
 * before the hand-over would be reset if it closed at once; none arrive after it, and one poll
 * of the loop accepts all that wait. Unless the process stalls for longer than this, the loop
 * polls before the timer runs.
 */
#define HANDOVER_GRACE_MS 100

static void register_send(struct webapp *app);

/* The address the agent's check dials: a wildcard listen address is reached on loopback. */
static const char *check_host(const struct webapp *app)
{
    if (strcmp(app->address, "0.0.0.0") == 0 || app->address[0] == '\0')
        return "127.0.0.1";
    if (strcmp(app->address, "::") == 0)
        return "::1";
    return app->address;
}

static json_t *register_body(const struct webapp *app)
{
    json_t *o = json_object();
    json_t *tags = json_array();
    json_t *meta = json_object();
    json_t *check = json_object();
    char interval[32];
    const char *h = check_host(app);
    bool v6 = strchr(h, ':') != NULL;

    for (size_t i = 0; i < app->tags.n; i++)
        json_array_append_new(tags, json_str_or_empty(app->tags.items[i]));
    for (size_t i = 0; i < app->meta.n; i++) {
        const char *kv = app->meta.items[i];
        const char *eq = strchr(kv, '='); /* validated at startup */
        char *k = xmemdup(kv, (size_t)(eq - kv) + 1);
        k[eq - kv] = '\0';
        json_object_set_new(meta, k, json_str_or_empty(eq + 1));
        free(k);
    }
    duration_format(app->check_interval_ns, interval, sizeof(interval));
    char *url = xasprintf("http://%s%s%s:%d/health", v6 ? "[" : "", h, v6 ? "]" : "", app->port);
    json_object_set_new(check, "HTTP", json_string(url));
    json_object_set_new(check, "Interval", json_string(interval));
    free(url);
    json_object_set_new(o, "ID", json_str_or_empty(app->service_id));
    json_object_set_new(o, "Name", json_str_or_empty(app->service));
    json_object_set_new(o, "Address", json_str_or_empty(app->address));
    json_object_set_new(o, "Port", json_integer(app->port));
    json_object_set_new(o, "Tags", tags);
    json_object_set_new(o, "Meta", meta);
    json_object_set_new(o, "Check", check);
    return o;
}

static void retry_cb(uv_timer_t *t)
{
    register_send(t->data);
}

static void on_registered(int status, const struct http_client_response *res, void *data)
{
    struct webapp *app = data;

    app->reg_call = NULL;
    if (status == UV_ECANCELED || app->draining)
        return;
    if (status == 0 && res->status == 200) {
        app->registered = true;
        log_info("registered service %s (%s) with the agent at %s", app->service_id, app->service,
                 app->agent_ep.addr);
        return;
    }
    if (!app->reg_failure_logged) {
        app->reg_failure_logged = true;
        if (status != 0)
            log_warn("register with the agent at %s: %s; retrying every second", app->agent_ep.addr,
                     uv_strerror(status));
        else
            log_warn("register with the agent at %s: HTTP %d: %.*s; retrying every second",
                     app->agent_ep.addr, res->status,
                     (int)(res->body_len > 200 ? 200 : res->body_len), res->body);
    }
    uv_timer_start(&app->reg_timer, retry_cb, REGISTER_RETRY_MS, 0);
}

static void register_send(struct webapp *app)
{
    struct buf body = BUF_INIT;
    json_t *o = register_body(app);

    json_append(&body, o, false);
    json_decref(o);
    struct http_header fields[2] = {
        {.name = STR_LIT("Content-Type"), .value = STR_LIT("application/json")}};
    struct http_client_request r = {
        .method = "PUT",
        .target = "/v1/agent/service/register",
        .body = body.data,
        .body_len = body.len,
        .timeout_ms = REGISTER_TIMEOUT_MS,
    };
    consul_request_init(&r, &app->agent_ep, fields, 1);
    app->reg_attempted = true;
    app->reg_call = http_client_send(app->client, &r, on_registered, app);
    buf_free(&body);
}

void webapp_register_start(struct webapp *app)
{
    app->reg_timer.data = app;
    register_send(app);
}

static void on_deregistered(int status, const struct http_client_response *res, void *data)
{
    struct webapp *app = data;

    app->deregistering = false;
    if (status == 0 && res->status == 200)
        log_info("deregistered service %s", app->service_id);
    else if (status != 0)
        log_warn("deregister %s: %s", app->service_id, uv_strerror(status));
    else
        log_warn("deregister %s: HTTP %d", app->service_id, res->status);
    webapp_drain_check(app);
}

static void deferred_check(uv_timer_t *t)
{
    webapp_drain_check(t->data);
}

static void grace_over(uv_timer_t *t)
{
    struct webapp *app = t->data;

    app->handover_grace = false;
    webapp_drain_check(app);
}

/* Ends registration retries; a registration in flight is cancelled (it may land all the same). */
static void register_stop(struct webapp *app)
{
    uv_timer_stop(&app->reg_timer);
    if (app->reg_call) {
        struct http_call *call = app->reg_call;
        app->reg_call = NULL;
        http_call_cancel(call);
    }
}

void webapp_hand_over(struct webapp *app)
{
    int rc = net_listen_hand_over(app->listen_fd);

    if (rc < 0)
        log_warn("hand over port %d: %s; the kernel shares new connections until exit", app->port,
                 uv_strerror(rc));
    register_stop(app);
    app->handing_over = true;
    app->handover_grace = true;
    app->reg_timer.data = app;
    uv_timer_start(&app->reg_timer, grace_over, HANDOVER_GRACE_MS, 0);
}

void webapp_deregister(struct webapp *app)
{
    register_stop(app);
    if (!app->reg_attempted) {
        app->reg_timer.data = app;
        uv_timer_start(&app->reg_timer, deferred_check, 0, 0);
        return;
    }
    /* A registration in flight may have landed even though we cancelled it: always deregister. */
    struct buf target = BUF_INIT;
    buf_append_cstr(&target, "/v1/agent/service/deregister/");
    url_encode(&target, str_from(app->service_id), false);
    struct http_header fields[1];
    struct http_client_request r = {
        .method = "PUT",
        .target = target.data,
        .timeout_ms = DEREGISTER_WAIT_MS,
    };
    consul_request_init(&r, &app->agent_ep, fields, 0);
    app->deregistering = true;
    http_client_send(app->client, &r, on_deregistered, app);
    buf_free(&target);
}
