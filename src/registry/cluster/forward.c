#include "registry/cluster/forward.h"

#include <string.h>

#include "lib/alloc.h"
#include "lib/consul_client.h"
#include "lib/duration.h"
#include "lib/http_client.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/url.h"
#include "registry/cluster/cluster_ctx.h"
#include "registry/settings/settings.h"
#include "registry/state/state.h"
#include "registry/api/api.h"

/* Headers of the server's answer worth relaying to the client. */
static const char *const relayed[] = {
    "X-Consul-Index",
    "X-Consul-KnownLeader",
    "X-Consul-LastContact",
    "X-Consul-ContentHash",
    "X-Consul-Results-Filtered-By-ACLs",
    "X-Consul-Effective-Consistency",
    "X-Content-Type-Options",
    "Allow",
};

/* Headers of the client's request the server needs. */
static const char *const passed[] = {"X-Consul-Token", "Authorization", "Content-Type",
                                     "X-Consul-Namespace"};

/* Whether a client agent knows a server to send requests to. */
static bool server_known(struct reg_cluster_ctx *cx)
{
    struct http_client_request r = {0};
    uint64_t epoch;

    return cx->ops->server(cx->agent, &r, &epoch) == 0;
}

bool reg_forward_wanted(struct reg_cluster_ctx *cx, const char *path)
{
    if (strncmp(path, "/v1/agent/", 10) == 0)
        return (strcmp(path, "/v1/agent/members") == 0 && server_known(cx)) ||
               strncmp(path, "/v1/agent/force-leave/", 22) == 0;
    return strncmp(path, "/v1/", 4) == 0;
}

struct forward {
    struct reg_api_call *call;
    struct http_call *http;
    struct reg_cluster_ctx *cx;
    uint64_t epoch; /* a client agent's server epoch when sent (ops->server) */
    reg_forward_unreachable_cb unreachable;
    void *unreachable_data;
};

static bool undelivered(int status)
{
    return status == UV_ECONNREFUSED || status == UV_EHOSTUNREACH || status == UV_ENETUNREACH;
}

static void on_abort(struct http_request *req)
{
    struct forward *f = req->data;
    struct reg_api_call *c = f->call;

    /* The client went away: stop waiting for the server (a parked blocking query). The
     * cancelled call's callback runs now and frees f. */
    f->call = NULL;
    http_call_cancel(f->http);
    reg_api_call_free(c);
}

static void on_answer(int status, const struct http_client_response *res, void *data)
{
    struct forward *f = data;
    struct reg_api_call *c = f->call;

    if (!c) { /* aborted */
        free(f);
        return;
    }
    struct forward done = *f;
    c->req->on_abort = NULL;
    c->req->data = NULL;
    free(f);
    if (undelivered(status) && done.unreachable && done.unreachable(c, done.unreachable_data))
        return;
    if (status < 0) {
        if (!done.cx->cfg->server)
            done.cx->ops->server_failed(done.cx->agent, done.epoch, status);
        reg_api_error(c, 500, "rpc error: failed to reach a server: %s", uv_strerror(status));
        return;
    }
    for (size_t i = 0; i < ARRAY_LEN(relayed); i++) {
        size_t len;
        const char *v = http_client_header(res, relayed[i], &len);
        if (v)
            http_response_header(c->req, relayed[i], "%.*s", (int)len, v);
    }
    size_t type_len = 0;
    const char *type = http_client_header(res, "Content-Type", &type_len);
    char type_buf[128] = "";
    if (type && type_len < sizeof(type_buf))
        memcpy(type_buf, type, type_len);
    reg_api_answer(c, res->status, type ? type_buf : NULL, res->body, res->body_len);
}

/*
 * How long a forwarded call may take: a blocking query's wait (default 5 min, at most 10, plus
 * Consul's jitter of wait/16) with a margin; 30 s for anything else.
 */
static uint64_t timeout_for(const struct reg_api_call *c)
{
    const char *index = reg_api_query(c, "index");
    const char *hash = reg_api_query(c, "hash");
    const char *wait = reg_api_query(c, "wait");
    int64_t ns = 5 * 60 * DURATION_SEC;

    if ((!index || !index[0]) && (!hash || !hash[0]))
        return 30000;
    if (wait && wait[0])
        duration_parse(str_from(wait), &ns);
    if (ns > 10 * 60 * DURATION_SEC)
        ns = 10 * 60 * DURATION_SEC;
    uint64_t ms = (uint64_t)(ns / DURATION_MS);
    return ms + ms / 16 + 15000;
}

/*
 * A session created through a client agent belongs to that agent's node (its serfHealth then
 * guards the session's locks), as in Consul where the client fills in its node. Returns the
 * body to send instead (heap), or NULL to send the client's as it is.
 */
static char *session_body(const struct reg_cluster_ctx *cx, const struct reg_api_call *c)
{
    if (strcmp(c->path, "/v1/session/create") != 0)
        return NULL;
    json_t *v =
        c->req->body_len ? json_loadb(c->req->body, c->req->body_len, 0, NULL) : json_object();
    char *out = NULL;
    if (json_is_object(v) && !json_iget(v, "Node")) {
        json_object_set_new(v, "Node", json_string(cx->cfg->node_name));
        out = json_dumps(v, JSON_COMPACT | JSON_MESH_REAL_PRECISION);
    }
    json_decref(v); /* a malformed body goes as it is: the server answers 400 */
    return out;
}

/* Whether the query parameter piece ("name=value", still encoded) is near=_agent. */
static bool is_near_agent(struct str piece)
{
    const char *eq = memchr(piece.p, '=', piece.n);
    struct buf name = BUF_INIT, value = BUF_INIT;
    bool yes = false;

    if (eq && url_decode((struct str){piece.p, (size_t)(eq - piece.p)}, true, &name) == 0 &&
        url_decode((struct str){eq + 1, piece.n - (size_t)(eq - piece.p) - 1}, true, &value) == 0)
        yes = str_eq_cstr(buf_str(&name), "near") && str_eq_cstr(buf_str(&value), "_agent");
    buf_free(&name);
    buf_free(&value);
    return yes;
}

/*
 * The target to send (heap): the client's, with ?near=_agent naming this agent's node, since
 * the server's _agent is the server: Consul's agent turns _agent into its own node name before
 * it asks a server (agent/http.go, parseSource).
 */
static char *target_for_server(const struct reg_cluster_ctx *cx, const struct reg_api_call *c)
{
    const char *near = reg_api_query(c, "near");
    struct str q = c->req->query;
    struct buf out = BUF_INIT;

    if (!near || strcmp(near, "_agent") != 0)
        return xstrndup(c->req->target.p, c->req->target.n);
    buf_append_str(&out, c->req->path);
    for (size_t start = 0, end; start <= q.n; start = end + 1) {
        const char *amp = memchr(q.p + start, '&', q.n - start);
        end = amp ? (size_t)(amp - q.p) : q.n;
        struct str piece = {q.p + start, end - start};
        buf_append(&out, start ? "&" : "?", 1);
        if (is_near_agent(piece)) {
            buf_append_cstr(&out, "near=");
            url_encode(&out, str_from(cx->cfg->node_name), false);
        } else {
            buf_append_str(&out, piece);
        }
    }
    return buf_steal(&out);
}

/* Relays c to the server where names (host, port and TLS settings), sent at epoch. */
static void forward(struct reg_cluster_ctx *cx, struct reg_api_call *c,
                    const struct http_client_request *where, uint64_t epoch,
                    reg_forward_unreachable_cb unreachable, void *data)
{
    struct http_header headers[ARRAY_LEN(passed) + 1];
    size_t n = 0;
    bool has_token = reg_api_query(c, "token") != NULL;
    for (size_t i = 0; i < ARRAY_LEN(passed); i++) {
        const struct http_header *h = http_request_header(c->req, passed[i]);
        if (h)
            headers[n++] = *h;
        has_token |= h && i < 2;
    }
    /* A request without a token acts with the agent's default token, as in Consul. */
    const char *dflt = cx->cfg->acl_default_token;
    if (!has_token)
        n += consul_token_field(dflt, &headers[n]);
    char *target = target_for_server(cx, c);
    char *method = xstrndup(c->req->method.p, c->req->method.n);
    char *body = cx->cfg->server ? NULL : session_body(cx, c);
    struct http_client_request r = *where;
    r.method = method;
    r.target = target;
    r.headers = headers;
    r.num_headers = n;
    r.body = body ? body : c->req->body;
    r.body_len = body ? strlen(body) : c->req->body_len;
    r.timeout_ms = timeout_for(c);
    r.max_body = CONSUL_MAX_BODY;
    struct forward *f = xcalloc(1, sizeof(*f));
    f->call = c;
    f->cx = cx;
    f->epoch = epoch;
    f->unreachable = unreachable;
    f->unreachable_data = data;
    c->req->data = f;
    c->req->on_abort = on_abort;
    f->http = http_client_send(cx->client, &r, on_answer, f);
    free(target);
    free(method);
    free(body);
}

void reg_forward_call(struct reg_cluster_ctx *cx, struct reg_api_call *c)
{
    struct http_client_request where = {0};
    uint64_t epoch;

    if (cx->ops->server(cx->agent, &where, &epoch) < 0) {
        reg_api_error(c, 500, "No known Consul servers");
        return;
    }
    forward(cx, c, &where, epoch, NULL, NULL);
}

void reg_forward_to(struct reg_cluster_ctx *cx, struct reg_api_call *c, const char *host, int port,
                    bool https, reg_forward_unreachable_cb unreachable, void *data)
{
    struct http_client_request where = {.host = host, .port = port};

    if (https) /* to another server of an HTTPS-only cluster, with this server's certificate */
        cx->ops->tls_options(cx->agent, &where);
    forward(cx, c, &where, 0, unreachable, data);
}
