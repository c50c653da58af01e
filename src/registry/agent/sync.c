#include "registry/agent/sync.h"

#include <errno.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/buf.h"
#include "lib/consul_client.h"
#include "lib/duration.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/net.h"
#include "lib/url.h"
#include "registry/agent/agent_internal.h"
#include "registry/agent/agent_tls.h"
#include "registry/api/render.h"

#define HEARTBEAT_MAX_MS 1000
#define FULL_SYNC_MS     30000
#define REQUEST_MS       5000
#define DEFAULT_API_PORT 8500

/* An answer to a local write, held until the servers have the change (reg_sync_hold). */
struct sync_held {
    struct sync_held *next;
    struct http_request *req;            /* NULL once the client went away */
    struct http_shared_response *answer; /* a reference */
    uint64_t index;                      /* the local state's index when it was answered */
};

/* One request of a sync pass. */
struct sync_op {
    struct sync_op *next;
    char *method;
    char *target;
    char *body;
};

struct reg_sync {
    struct reg_agent *agent;
    struct reg_sync_server *servers;
    size_t nservers;
    size_t current;
    uint64_t epoch;              /* bumped whenever current changes (reg_sync_server_epoch) */
    uint64_t hb_epoch, op_epoch; /* the epoch the heartbeat and the pass's request went at */
    bool joined;                 /* some server has answered a heartbeat */
    bool dirty;                  /* local changes not pushed yet */
    bool full;                   /* the next pass re-pushes everything */
    bool running;                /* a pass is in flight */
    uint64_t pushed;             /* local index up to which changes are on the server */
    uint64_t pass_index;
    /* Service and check IDs ("s:ID", "c:ID") on the server after the last good pass, and those
     * the current pass pushes: a removal is "in pushed, not local any more". */
    struct smap pushed_ids;
    struct smap pass_ids;
    struct sync_held *held; /* answers waiting for a pass to push what they changed */
    struct sync_op *ops;    /* the current pass's remaining requests */
    struct sync_op **ops_tail;
    int pending_reads; /* the two reads of the removal step */
    json_t *server_services;
    json_t *server_checks;
    struct view_read {
        struct reg_sync *sync;
        int slot;
    } reads[2];
    uv_timer_t heartbeat;
    uv_timer_t full_timer;
    uv_timer_t kick; /* runs a pass on the next loop turn, batching changes */
    struct http_call *hb_call;
    struct http_call *op_call;
    struct http_call *read_calls[2];
    void (*leave_done)(struct reg_agent *a);
    /* A join asked through the API (reg_sync_join): the probe and whom to tell. */
    struct http_call *join_call;
    struct reg_sync_server join_server;
    reg_sync_join_cb join_done;
    void *join_data;
    bool stopping;
    char last_error[512]; /* the last heartbeat failure logged ("" after a success) */
    uint64_t hb_sent_ns;  /* uv_hrtime() when the heartbeat in flight left */
    unsigned coord_sends; /* heartbeats that carried the coordinate */
    uint64_t coord_sent_ms;
};

static void pass_next(struct reg_sync *s);
static void pass_start(struct reg_sync *s);
static void on_kick(uv_timer_t *t);

/* ---- servers ----------------------------------------------------------------------------- */

const struct reg_sync_server *reg_sync_current_server(struct reg_agent *a)
{
    struct reg_sync *s = a->sync;
    return s && s->nservers ? &s->servers[s->current] : NULL;
}

size_t reg_sync_known_servers(struct reg_agent *a)
{
    struct reg_sync *s = a->sync;
    return s && s->joined ? s->nservers : 0;
}

uint64_t reg_sync_server_epoch(struct reg_agent *a)
{
    return a->sync ? a->sync->epoch : 0;
}

void reg_sync_server_failed(struct reg_agent *a, uint64_t epoch, int status)
{
    struct reg_sync *s = a->sync;

    if (!s || s->nservers < 2 || status == UV_ECANCELED || epoch != s->epoch)
        return;
    s->current = (s->current + 1) % s->nservers;
    s->epoch++;
    log_warn("server unreachable (%s); switching to %s:%d", uv_strerror(status),
             s->servers[s->current].host, s->servers[s->current].port);
}

void reg_sync_client_options(struct reg_agent *a, struct http_client_request *r)
{
    const struct reg_sync_server *srv = reg_sync_current_server(a);

    r->tls = srv && srv->https;
    reg_agent_tls_client_options(&a->cfg, r);
}

/* Reads a join address: host, host:port, http://... or https://... 0 or -EINVAL with e set. */
static int parse_server(const char *text, struct reg_sync_server *srv, struct err *e)
{
    const char *addr = text;

    memset(srv, 0, sizeof(*srv));
    if (strncmp(addr, "http://", 7) == 0) {
        addr += 7;
    } else if (strncmp(addr, "https://", 8) == 0) {
        addr += 8;
        srv->https = true;
    }
    if (net_split_host_port(addr, srv->host, sizeof(srv->host), &srv->port, DEFAULT_API_PORT) < 0)
        return err_set(e,
                       "invalid join address \"%s\" (want host or host:port of a server's "
                       "HTTP API)",
                       text);
    return 0;
}

/* The server's position in the list, adding it when new. */
static size_t add_server(struct reg_sync *s, const struct reg_sync_server *srv)
{
    for (size_t i = 0; i < s->nservers; i++)
        if (strcmp(s->servers[i].host, srv->host) == 0 && s->servers[i].port == srv->port)
            return i;
    s->servers = xrealloc(s->servers, (s->nservers + 1) * sizeof(*s->servers));
    s->servers[s->nservers] = *srv;
    return s->nservers++;
}

/*
 * A server's heartbeat answer named the servers of its cluster (servers: ["host:port"], or NULL
 * from a single server): those become the learned part of the list, replacing the last answer's,
 * so a server removed from the cluster is forgotten. Servers given by -join / -retry-join stay.
 * The current server stays current.
 */
static void learn_servers(struct reg_sync *s, const json_t *servers)
{
    struct reg_sync_server current = s->servers[s->current];
    size_t i, kept = 0;
    json_t *each;

    if (!json_is_array(servers) || json_array_size(servers) == 0)
        return;
    for (i = 0; i < s->nservers; i++) {
        const struct reg_sync_server *srv = &s->servers[i];
        bool named = !srv->learned;
        for (size_t k = 0; k < json_array_size(servers) && !named; k++) {
            struct reg_sync_server n;
            struct err e;
            const char *text = json_string_value(json_array_get(servers, k));
            named = text && parse_server(text, &n, &e) == 0 && strcmp(n.host, srv->host) == 0 &&
                    n.port == srv->port;
        }
        if (named || (strcmp(srv->host, current.host) == 0 && srv->port == current.port))
            s->servers[kept++] = *srv;
        else
            log_info("server %s:%d left the cluster; no longer using it", srv->host, srv->port);
    }
    s->nservers = kept;
    json_array_foreach(servers, i, each)
    {
        struct reg_sync_server srv;
        struct err e;
        const char *text = json_string_value(each);
        if (!text || parse_server(text, &srv, &e) < 0)
            continue;
        srv.https = current.https; /* a cluster's servers serve their API alike */
        srv.learned = true;
        size_t before = s->nservers;
        if (add_server(s, &srv) == before)
            log_info("learned of server %s:%d", srv.host, srv.port);
    }
    s->current = add_server(s, &current);
}

static void add_servers(struct reg_sync *s, const struct flag_list *l, struct err *e, int *rc)
{
    for (size_t i = 0; i < l->n && *rc == 0; i++) {
        struct reg_sync_server srv;
        *rc = parse_server(l->items[i], &srv, e);
        if (*rc == 0)
            add_server(s, &srv);
    }
}

/* ---- requests ---------------------------------------------------------------------------- */

static void request_to(struct reg_sync *s, const struct reg_sync_server *srv, const char *method,
                       const char *target, const char *body, http_client_cb cb, void *data,
                       struct http_call **slot)
{
    const char *token = s->agent->cfg.acl_agent_token;
    struct http_header headers[2];
    size_t n = 0;

    /* The agent authenticates to the servers with its agent token (acl.tokens.agent). */
    if (body)
        headers[n++] = (struct http_header){.name = STR_LIT("Content-Type"),
                                            .value = STR_LIT("application/json")};
    n += consul_token_field(token, &headers[n]);
    struct http_client_request r = {
        .method = method,
        .host = srv->host,
        .port = srv->port,
        .target = target,
        .headers = headers,
        .num_headers = n,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .timeout_ms = REQUEST_MS,
        .max_body = CONSUL_MAX_BODY,
    };
    r.tls = srv->https;
    reg_agent_tls_client_options(&s->agent->cfg, &r);
    *slot = http_client_send(s->agent->client, &r, cb, data);
}

static void request(struct reg_sync *s, const char *method, const char *target, const char *body,
                    http_client_cb cb, void *data, struct http_call **slot)
{
    request_to(s, &s->servers[s->current], method, target, body, cb, data, slot);
}

static char *dump(json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_MESH_REAL_PRECISION);
    json_decref(v);
    return s;
}

static void op_add(struct reg_sync *s, const char *method, const char *target, char *body)
{
    struct sync_op *op = xcalloc(1, sizeof(*op));
    op->method = xstrdup(method);
    op->target = xstrdup(target);
    op->body = body;
    *s->ops_tail = op;
    s->ops_tail = &op->next;
}

static void op_free(struct sync_op *op)
{
    free(op->method);
    free(op->target);
    free(op->body);
    free(op);
}

static void ops_clear(struct reg_sync *s)
{
    while (s->ops) {
        struct sync_op *op = s->ops;
        s->ops = op->next;
        op_free(op);
    }
    s->ops_tail = &s->ops;
}

/* ---- what to push ------------------------------------------------------------------------ */

static json_t *catalog_check(const struct reg_check *c)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:O}", "CheckID", c->id, "Name", c->name,
                     "Status", reg_health_name(c->status), "Notes", c->notes, "Output", c->output,
                     "ServiceID", c->service_id, "Type", c->type, "Definition", c->definition);
}

static json_t *registration(const struct reg_agent *a, const struct reg_node *n)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:b}", "Node", n->name, "ID", n->id, "Address",
                     n->address, "Datacenter", a->cfg.datacenter, "SkipNodeUpdate", 1);
}

static json_t *catalog_service(const struct reg_service *svc)
{
    json_t *o =
        json_pack("{s:s, s:s, s:o, s:s, s:i, s:O, s:{s:i, s:i}, s:b}", "ID", svc->id, "Service",
                  svc->name, "Tags", reg_render_tags(svc), "Address", svc->address, "Port",
                  svc->port, "Meta", svc->meta, "Weights", "Passing", svc->weight_passing,
                  "Warning", svc->weight_warning, "EnableTagOverride", svc->enable_tag_override);
    if (svc->tagged_addresses)
        json_object_set(o, "TaggedAddresses", svc->tagged_addresses);
    /* Connect reads on the servers find proxies and native services by these. */
    if (svc->kind[0])
        json_object_set_new(o, "Kind", json_string(svc->kind));
    if (svc->proxy)
        json_object_set(o, "Proxy", svc->proxy);
    if (svc->connect)
        json_object_set(o, "Connect", svc->connect);
    return o;
}

/* ---- what the server holds ---------------------------------------------------------------- */

static void ids_clear(struct smap *m)
{
    smap_free(m);
    *m = SMAP_INIT;
}

static void ids_add(struct smap *m, char kind, const char *id)
{
    struct buf k = BUF_INIT;
    buf_printf(&k, "%c:%s", kind, id);
    smap_put(m, k.data, m);
    buf_free(&k);
}

/* Records the node's services and checks as this pass will leave them on the server. */
static void remember_pass_ids(struct reg_sync *s)
{
    struct reg_node *n = reg_agent_local_node(s->agent);

    ids_clear(&s->pass_ids);
    smap_foreach(&n->services, e) ids_add(&s->pass_ids, 's', e->key);
    smap_foreach(&n->checks, e) ids_add(&s->pass_ids, 'c', e->key);
}

/* True when something pushed earlier is gone locally: only then must the server be asked what
 * it holds. A full pass asks anyway, to catch entries others put under this node's name. */
static bool removed_since_push(struct reg_sync *s)
{
    struct reg_node *n = reg_agent_local_node(s->agent);

    smap_foreach(&s->pushed_ids, e)
    {
        const char *id = e->key + 2;
        if (e->key[0] == 's' ? !reg_service_get(n, id) : !reg_check_get(n, id))
            return true;
    }
    return false;
}

/* Queues a register for each service (with its checks) and node check changed since the last
 * pass, or all of them on a full pass. */
static void queue_pushes(struct reg_sync *s)
{
    struct reg_agent *a = s->agent;
    struct reg_node *n = reg_agent_local_node(a);
    json_t *node_checks = json_array();

    smap_foreach(&n->services, e)
    {
        const struct reg_service *svc = e->val;
        bool changed = s->full || svc->modify_index > s->pushed;
        json_t *checks = json_array();
        smap_foreach(&n->checks, ce)
        {
            const struct reg_check *c = ce->val;
            if (strcmp(c->service_id, svc->id) != 0)
                continue;
            changed |= c->modify_index > s->pushed;
            json_array_append_new(checks, catalog_check(c));
        }
        if (!changed) {
            json_decref(checks);
            continue;
        }
        json_t *reg = registration(a, n);
        json_object_set_new(reg, "Service", catalog_service(svc));
        json_object_set_new(reg, "Checks", checks);
        op_add(s, "PUT", "/v1/catalog/register", dump(reg));
    }
    smap_foreach(&n->checks, ce)
    {
        const struct reg_check *c = ce->val;
        if (!c->service_id[0] && (s->full || c->modify_index > s->pushed))
            json_array_append_new(node_checks, catalog_check(c));
    }
    if (json_array_size(node_checks)) {
        json_t *reg = registration(a, n);
        json_object_set_new(reg, "Checks", node_checks);
        op_add(s, "PUT", "/v1/catalog/register", dump(reg));
    } else {
        json_decref(node_checks);
    }
}

/* Queues deregistrations of what the server holds for this node and the agent does not. */
static void queue_removals(struct reg_sync *s)
{
    struct reg_agent *a = s->agent;
    struct reg_node *n = reg_agent_local_node(a);
    const char *id;
    json_t *v;
    size_t i;

    json_object_foreach(json_object_get(s->server_services, "Services"), id, v)
    {
        if (!reg_service_get(n, id))
            op_add(s, "PUT", "/v1/catalog/deregister",
                   dump(json_pack("{s:s, s:s}", "Node", n->name, "ServiceID", id)));
    }
    json_array_foreach(s->server_checks, i, v)
    {
        const char *cid = json_string_value(json_object_get(v, "CheckID"));
        const char *sid = json_string_value(json_object_get(v, "ServiceID"));
        /* serfHealth belongs to the servers; checks of a removed service go with it. */
        if (!cid || strcmp(cid, "serfHealth") == 0 || reg_check_get(n, cid) ||
            (sid && sid[0] && !reg_service_get(n, sid)))
            continue;
        op_add(s, "PUT", "/v1/catalog/deregister",
               dump(json_pack("{s:s, s:s}", "Node", n->name, "CheckID", cid)));
    }
}

/* ---- held answers ------------------------------------------------------------------------ */

static void on_held_abort(struct http_request *req)
{
    struct sync_held *h = req->data;
    h->req = NULL;
}

/* Sends the held answers to writes made before the last pass started, or all of them. */
static void answer_held(struct reg_sync *s, bool all)
{
    struct sync_held **p = &s->held;

    while (*p) {
        struct sync_held *h = *p;
        if (!all && h->index > s->pass_index) {
            p = &h->next;
            continue;
        }
        *p = h->next;
        if (h->req) {
            h->req->on_abort = NULL;
            http_respond_shared(h->req, h->answer);
        }
        http_shared_response_unref(h->answer);
        free(h);
    }
}

bool reg_sync_must_hold(const struct reg_agent *a, bool write, int status)
{
    const struct reg_sync *s = a->sync;

    return s && write && status < 300 && s->joined && !s->stopping && (s->dirty || s->running);
}

void reg_sync_hold(struct reg_agent *a, struct http_request *req,
                   struct http_shared_response *answer)
{
    struct reg_sync *s = a->sync;
    struct sync_held *h = xcalloc(1, sizeof(*h));

    h->req = req;
    h->answer = http_shared_response_ref(answer);
    h->index = a->state.index;
    h->next = s->held;
    s->held = h;
    req->data = h;
    req->on_abort = on_held_abort;
}

/* ---- a pass ------------------------------------------------------------------------------ */

static void pass_done(struct reg_sync *s, bool ok)
{
    s->running = false;
    json_decref(s->server_services);
    json_decref(s->server_checks);
    s->server_services = s->server_checks = NULL;
    ops_clear(s);
    if (ok) {
        s->pushed = s->pass_index;
        s->full = false;
        struct smap done = s->pushed_ids;
        s->pushed_ids = s->pass_ids;
        s->pass_ids = done;
    } else {
        s->full = true; /* something may be missing: push everything next time */
    }
    /* As Consul's agent, a write is answered after one attempt to sync it, even a failed one. */
    bool again = s->dirty && s->joined && !s->stopping;
    answer_held(s, !ok || !again);
    if (again)
        uv_timer_start(&s->kick, on_kick, ok ? 0 : 1000, 0);
}

static void on_op(int status, const struct http_client_response *res, void *data)
{
    struct reg_sync *s = data;
    struct sync_op *op = s->ops;

    s->op_call = NULL;
    if (status < 0 || res->status != 200) {
        if (status == UV_ECANCELED)
            return;
        log_warn("sync: %s %s failed: %s", op->method, op->target,
                 status < 0 ? uv_strerror(status) : res->body);
        if (status < 0)
            reg_sync_server_failed(s->agent, s->op_epoch, status);
        pass_done(s, false);
        return;
    }
    s->ops = op->next;
    if (!s->ops)
        s->ops_tail = &s->ops;
    op_free(op);
    pass_next(s);
}

static void pass_next(struct reg_sync *s)
{
    if (!s->ops) {
        pass_done(s, true);
        return;
    }
    s->op_epoch = s->epoch;
    request(s, s->ops->method, s->ops->target, s->ops->body, on_op, s, &s->op_call);
}

static void on_server_view(int status, const struct http_client_response *res, void *data);

/* Reads the server's view of this node (services and checks), then queues removals. */
static void read_server_view(struct reg_sync *s)
{
    struct reg_node *n = reg_agent_local_node(s->agent);
    struct buf t1 = BUF_INIT, t2 = BUF_INIT;

    buf_append_cstr(&t1, "/v1/catalog/node/");
    url_encode(&t1, str_from(n->name), false);
    buf_append_cstr(&t2, "/v1/health/node/");
    url_encode(&t2, str_from(n->name), false);
    s->pending_reads = 2;
    s->reads[0] = (struct view_read){s, 0};
    s->reads[1] = (struct view_read){s, 1};
    request(s, "GET", t1.data, NULL, on_server_view, &s->reads[0], &s->read_calls[0]);
    request(s, "GET", t2.data, NULL, on_server_view, &s->reads[1], &s->read_calls[1]);
    buf_free(&t1);
    buf_free(&t2);
}

static void on_server_view(int status, const struct http_client_response *res, void *data)
{
    struct view_read *r = data;
    struct reg_sync *s = r->sync;

    s->read_calls[r->slot] = NULL;
    if (status == UV_ECANCELED)
        return;
    json_t *v =
        status == 0 && res->status == 200 ? json_loadb(res->body, res->body_len, 0, NULL) : NULL;
    if (r->slot == 0)
        s->server_services = v ? v : json_null();
    else
        s->server_checks = v ? v : json_null();
    if (!v)
        s->full = true;
    if (--s->pending_reads > 0)
        return;
    queue_removals(s);
    pass_next(s);
}

static void pass_start(struct reg_sync *s)
{
    if (s->running || !s->joined || s->stopping)
        return;
    s->running = true;
    s->dirty = false;
    s->pass_index = s->agent->state.index;
    bool read_view = s->full || removed_since_push(s);
    remember_pass_ids(s);
    queue_pushes(s);
    if (read_view)
        read_server_view(s);
    else
        pass_next(s);
}

static void on_kick(uv_timer_t *t)
{
    pass_start(t->data);
}

void reg_sync_on_change(enum reg_table table, void *data)
{
    struct reg_agent *a = data;
    struct reg_sync *s = a->sync;

    if (!s || table != REG_TABLE_CATALOG)
        return;
    s->dirty = true;
    if (!s->running && s->joined)
        uv_timer_start(&s->kick, on_kick, 0, 0);
}

static void on_full_sync(uv_timer_t *t)
{
    struct reg_sync *s = t->data;
    s->full = true;
    s->dirty = true;
    pass_start(s);
}

/* ---- heartbeat --------------------------------------------------------------------------- */

/* The heartbeat's round trip, sent_ns ago, against the server's coordinate in the answer. */
static void measure_rtt(struct reg_sync *s, const json_t *answer, uint64_t sent_ns)
{
    const struct reg_sync_server *srv = &s->servers[s->current];
    struct vivaldi_coord server;
    char peer[300];

    if (!sent_ns || reg_coord_from_json(json_object_get(answer, "Coord"), &server, NULL) < 0)
        return;
    snprintf(peer, sizeof(peer), "%s:%d", srv->host, srv->port);
    vivaldi_update(&s->agent->vivaldi, peer, &server, (double)(uv_hrtime() - sent_ns) / 1e9);
}

/* A server answered a heartbeat (sent sent_ns, 0: not timed): the node is in the cluster. */
static void heartbeat_answered(struct reg_sync *s, const struct http_client_response *res,
                               uint64_t sent_ns)
{
    const struct reg_sync_server *srv = &s->servers[s->current];

    s->last_error[0] = '\0';
    json_t *v = json_loadb(res->body, res->body_len, 0, NULL);
    bool known = json_is_true(json_object_get(v, "Known"));
    measure_rtt(s, v, sent_ns);
    if (!s->joined)
        log_info("joined the cluster through %s:%d", srv->host, srv->port);
    learn_servers(s, json_object_get(v, "Servers")); /* srv may move */
    json_decref(v);
    s->joined = true;
    if (!known) { /* a server that lost or never had this node: push everything */
        s->full = true;
        s->dirty = true;
    }
    if (s->dirty && !s->running)
        pass_start(s);
}

static void on_heartbeat(int status, const struct http_client_response *res, void *data)
{
    struct reg_sync *s = data;
    const struct reg_sync_server *srv = &s->servers[s->current];

    s->hb_call = NULL;
    if (status == UV_ECANCELED)
        return;
    if (status < 0 || res->status != 200) {
        /* Say why, once per distinct reason, so a node that cannot join is not silent and
         * one that keeps failing does not flood the log. */
        const char *detail = status < 0 ? http_client_error(s->agent->client) : NULL;
        char why[512];
        snprintf(why, sizeof(why), "%s",
                 status < 0 ? (detail ? detail : uv_strerror(status)) : res->body);
        if (strcmp(why, s->last_error) != 0)
            log_warn("heartbeat to %s:%d failed: %s", srv->host, srv->port, why);
        memcpy(s->last_error, why, sizeof(s->last_error));
        reg_sync_server_failed(s->agent, s->hb_epoch, status < 0 ? status : UV_EPROTO);
        s->joined = false;
        return;
    }
    heartbeat_answered(s, res, s->hb_sent_ns);
}

/* The coordinate rides on the first heartbeats, then every 15 s: enough for servers to sort
 * by RTT without a write to the coordinate table every second (Consul's agents send theirs
 * every 15 s or more). */
#define COORD_EVERY_MS 15000
#define COORD_WARMUP   10

static char *heartbeat_body(struct reg_sync *s)
{
    struct reg_agent *a = s->agent;
    struct reg_node *n = reg_agent_local_node(a);
    uint64_t now = uv_now(a->loop);
    json_t *body = json_pack("{s:s, s:s, s:s, s:s, s:O, s:O}", "Node", n->name, "ID", n->id,
                             "Address", n->address, "Datacenter", a->cfg.datacenter,
                             "TaggedAddresses", n->tagged_addresses, "Meta", n->meta);

    if (s->coord_sends < COORD_WARMUP || now - s->coord_sent_ms >= COORD_EVERY_MS) {
        json_object_set_new(body, "Coord", reg_coord_json(&a->vivaldi.coord));
        s->coord_sends++;
        s->coord_sent_ms = now;
    }
    return dump(body);
}

static void send_heartbeat(uv_timer_t *t)
{
    struct reg_sync *s = t->data;

    if (s->hb_call || s->stopping)
        return;
    char *text = heartbeat_body(s);
    s->hb_sent_ns = uv_hrtime();
    s->hb_epoch = s->epoch;
    request(s, "PUT", "/v1/internal/mesh/heartbeat", text, on_heartbeat, s, &s->hb_call);
    free(text);
}

/* Heartbeats (the first after first_ms) and periodic syncs, once a server is known. */
static void start_timers(struct reg_sync *s, uint64_t first_ms)
{
    struct reg_agent *a = s->agent;
    /* A third of the failure timeout, so one lost heartbeat does not fail the node. */
    uint64_t every = (uint64_t)(a->cfg.failure_timeout_ns / DURATION_MS / 3);

    if (every > HEARTBEAT_MAX_MS)
        every = HEARTBEAT_MAX_MS;
    if (!uv_is_active((uv_handle_t *)&s->heartbeat))
        uv_timer_start(&s->heartbeat, send_heartbeat, first_ms, every);
    if (!uv_is_active((uv_handle_t *)&s->full_timer))
        uv_timer_start(&s->full_timer, on_full_sync, FULL_SYNC_MS, FULL_SYNC_MS);
}

/* ---- join through the API ---------------------------------------------------------------- */

static void on_join_probe(int status, const struct http_client_response *res, void *data)
{
    struct reg_sync *s = data;
    reg_sync_join_cb done = s->join_done;
    void *done_data = s->join_data;
    char why[512];

    s->join_call = NULL;
    s->join_done = NULL;
    if (status < 0 || res->status != 200) {
        const char *detail = status < 0 ? http_client_error(s->agent->client) : NULL;
        snprintf(why, sizeof(why), "%s",
                 status < 0 ? (detail ? detail : uv_strerror(status)) : res->body);
        if (done)
            done(status < 0 ? status : -EPROTO, why, done_data);
        return;
    }
    s->current = add_server(s, &s->join_server);
    s->epoch++;
    start_timers(s, HEARTBEAT_MAX_MS);
    heartbeat_answered(s, res, 0);
    if (done)
        done(0, NULL, done_data);
}

int reg_sync_join(struct reg_agent *a, const char *addr, reg_sync_join_cb done, void *data,
                  struct err *e)
{
    struct reg_sync *s = a->sync;

    if (!s || s->stopping) {
        err_set(e, "the agent is shutting down");
        return -EBUSY;
    }
    if (s->join_call) {
        err_set(e, "another join is under way");
        return -EBUSY;
    }
    if (parse_server(addr, &s->join_server, e) < 0)
        return -EINVAL;
    s->join_done = done;
    s->join_data = data;
    char *text = heartbeat_body(s);
    request_to(s, &s->join_server, "PUT", "/v1/internal/mesh/heartbeat", text, on_join_probe, s,
               &s->join_call);
    free(text);
    return 0;
}

void reg_sync_join_cancel(struct reg_agent *a)
{
    struct reg_sync *s = a->sync;

    if (!s || !s->join_call)
        return;
    s->join_done = NULL;
    http_call_cancel(s->join_call);
}

int reg_sync_start(struct reg_agent *a, struct err *e)
{
    struct reg_sync *s = xcalloc(1, sizeof(*s));
    int rc = 0;

    s->agent = a;
    s->ops_tail = &s->ops;
    s->dirty = s->full = true;
    add_servers(s, &a->cfg.start_join, e, &rc);
    add_servers(s, &a->cfg.retry_join, e, &rc);
    a->sync = s;
    uv_timer_init(a->loop, &s->heartbeat);
    uv_timer_init(a->loop, &s->full_timer);
    uv_timer_init(a->loop, &s->kick);
    s->heartbeat.data = s->full_timer.data = s->kick.data = s;
    if (rc < 0)
        return rc;
    if (!s->nservers) {
        log_warn("client agent without -join or -retry-join: it serves its own node until "
                 "joined (PUT /v1/agent/join/ADDR, mesh join ADDR)");
        return 0;
    }
    start_timers(s, 0);
    return 0;
}

static void on_sync_closed(uv_handle_t *h)
{
    (void)h;
}

void reg_sync_stop(struct reg_agent *a)
{
    struct reg_sync *s = a->sync;

    if (!s || s->stopping)
        return;
    s->stopping = true;
    if (s->hb_call)
        http_call_cancel(s->hb_call);
    if (s->join_call)
        http_call_cancel(s->join_call);
    if (s->op_call)
        http_call_cancel(s->op_call);
    for (int i = 0; i < 2; i++)
        if (s->read_calls[i])
            http_call_cancel(s->read_calls[i]);
    ops_clear(s);
    answer_held(s, true);
    json_decref(s->server_services);
    json_decref(s->server_checks);
    s->server_services = s->server_checks = NULL;
    ids_clear(&s->pushed_ids);
    ids_clear(&s->pass_ids);
    uv_close((uv_handle_t *)&s->heartbeat, on_sync_closed);
    uv_close((uv_handle_t *)&s->full_timer, on_sync_closed);
    uv_close((uv_handle_t *)&s->kick, on_sync_closed);
}

void reg_sync_free(struct reg_agent *a)
{
    struct reg_sync *s = a->sync;
    if (!s)
        return;
    free(s->servers);
    free(s);
    a->sync = NULL;
}

/* ---- leave ------------------------------------------------------------------------------- */

static void on_left(int status, const struct http_client_response *res, void *data)
{
    struct reg_sync *s = data;

    s->hb_call = NULL;
    if (status < 0 || res->status != 200)
        log_warn("leave: the server did not confirm (%s); it will fail this node instead",
                 status < 0 ? uv_strerror(status) : res->body);
    else
        log_info("left the cluster");
    s->leave_done(s->agent);
}

void reg_sync_leave(struct reg_agent *a, void (*done)(struct reg_agent *a))
{
    struct reg_sync *s = a->sync;

    if (!s || !s->nservers || !s->joined) {
        done(a);
        return;
    }
    if (s->hb_call)
        http_call_cancel(s->hb_call);
    uv_timer_stop(&s->heartbeat);
    s->leave_done = done;
    char *body = dump(json_pack("{s:s}", "Node", a->cfg.node_name));
    request(s, "PUT", "/v1/internal/mesh/leave", body, on_left, s, &s->hb_call);
    free(body);
}
