/*
 * Who the servers of a replicated cluster are: formation (probing -retry-join addresses,
 * bootstrapping once -bootstrap-expect servers see each other, asking a formed cluster to be
 * added) and the endpoints it uses between servers.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/consul_client.h"
#include "lib/http_client.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/net.h"
#include "registry/cluster/cluster_ctx.h"
#include "registry/settings/settings.h"
#include "registry/state/state.h"
#include "registry/api/api.h"
#include "registry/api/api_routes.h"
#include "registry/cluster/cluster.h"
#include "registry/cluster/cluster_internal.h"

/* ---- formation --------------------------------------------------------------------------- */

void reg_peer_from_json(struct peer *p, const json_t *v)
{
    const char *id = json_string_value(json_object_get(v, "ID"));
    const char *node = json_string_value(json_object_get(v, "Node"));
    const char *addr = json_string_value(json_object_get(v, "Address"));
    const char *http = json_string_value(json_object_get(v, "HTTPAddr"));

    memset(p, 0, sizeof(*p));
    p->id = id ? strtoull(id, NULL, 10) : 0;
    snprintf(p->node, sizeof(p->node), "%s", node ? node : "");
    snprintf(p->raft_addr, sizeof(p->raft_addr), "%s", addr ? addr : "");
    if (!http || net_split_host_port(http, p->http_host, sizeof(p->http_host), &p->http_port,
                                     DEFAULT_API_PORT) < 0)
        p->http_host[0] = '\0';
}

json_t *reg_peer_json(const struct peer *p)
{
    char id[24], http[300];

    snprintf(id, sizeof(id), "%" PRIu64, p->id);
    snprintf(http, sizeof(http), "%s:%d", p->http_host, p->http_port);
    return json_pack("{s:s, s:s, s:s, s:s}", "ID", id, "Node", p->node, "Address", p->raft_addr,
                     "HTTPAddr", p->http_host[0] ? http : "");
}

/* Learns a server (or more about one): a new one is added, a known one's addresses refreshed. */
void reg_peer_learn(struct reg_cluster *cl, const struct peer *p)
{
    if (p->id == 0 || !reg_repl_address_valid(p->raft_addr))
        return;
    struct peer *known = reg_peer_by_id(cl, p->id);
    if (!known) {
        if (cl->npeers == REG_REPL_MAX_SERVERS)
            return;
        known = &cl->peers[cl->npeers++];
        log_info("cluster: learned of server %s (%s)", p->node, p->raft_addr);
    }
    if (known != &cl->peers[0]) {
        uint64_t heard = known->heard_ms > p->heard_ms ? known->heard_ms : p->heard_ms;
        *known = *p;
        known->heard_ms = heard;
    }
}

static int peer_order(const void *x, const void *y)
{
    const struct peer *a = x, *b = y;
    return a->id < b->id ? -1 : a->id > b->id;
}

static void on_join_answer(int status, const struct http_client_response *res, void *data)
{
    struct reg_cluster *cl = data;

    if (status < 0 || res->status != 200) {
        log_warn("cluster: asking to join failed (%s); retrying",
                 status < 0 ? uv_strerror(status) : res->body);
        cl->join_sent = false;
        return;
    }
    log_info("cluster: the leader added this server");
}

void reg_cluster_peer_tls(const struct reg_cluster *cl, struct http_client_request *r)
{
    if (cl->https)
        cl->cx->ops->tls_options(cl->cx->agent, r);
}

/* PUTs body (a JSON value, consumed) to another server's API with this agent's token. */
static void put_to_server(struct reg_cluster *cl, const struct peer *to, const char *target,
                          json_t *body, uint64_t timeout_ms, http_client_cb cb, void *data)
{
    char *json = json_dumps(body, JSON_COMPACT | JSON_MESH_REAL_PRECISION);
    struct http_header token;
    struct http_client_request r = {
        .method = "PUT",
        .host = to->http_host,
        .port = to->http_port,
        .target = target,
        .headers = &token,
        .num_headers = consul_token_field(cl->cx->cfg->acl_agent_token, &token),
        .body = json,
        .body_len = strlen(json),
        .timeout_ms = timeout_ms,
    };

    reg_cluster_peer_tls(cl, &r);
    json_decref(body);
    http_client_send(cl->cx->client, &r, cb, data);
    free(json);
}

/* A formed cluster answered: start without bootstrapping and ask to be added. */
static void join_formed(struct reg_cluster *cl, const struct peer *via)
{
    struct err e;

    if (!reg_repl_started(cl->repl) && reg_repl_start(cl->repl, NULL, 0, &e) < 0) {
        log_error("cluster: %s", e.msg);
        return;
    }
    if (cl->join_sent)
        return;
    cl->join_sent = true;
    put_to_server(cl, via, "/v1/internal/mesh/raft/join", reg_peer_json(&cl->peers[0]), 30000,
                  on_join_answer, cl);
}

/* Bootstraps once exactly bootstrap_expect servers see each other. */
static void maybe_bootstrap(struct reg_cluster *cl)
{
    struct reg_cluster_ctx *cx = cl->cx;
    struct reg_repl_server servers[REG_REPL_MAX_SERVERS];
    struct peer sorted[REG_REPL_MAX_SERVERS];
    struct err e;

    if (reg_repl_started(cl->repl) || cl->cluster_seen)
        return;
    if (cl->npeers != (size_t)cx->cfg->bootstrap_expect) {
        if (cl->npeers > (size_t)cx->cfg->bootstrap_expect)
            log_error("cluster: %zu servers found but -bootstrap-expect is %d; not bootstrapping",
                      cl->npeers, cx->cfg->bootstrap_expect);
        return;
    }
    memcpy(sorted, cl->peers, cl->npeers * sizeof(*sorted));
    qsort(sorted, cl->npeers, sizeof(*sorted), peer_order);
    for (size_t i = 0; i < cl->npeers; i++) {
        servers[i].id = sorted[i].id;
        snprintf(servers[i].address, sizeof(servers[i].address), "%s", sorted[i].raft_addr);
        servers[i].voter = true;
    }
    if (reg_repl_start(cl->repl, servers, cl->npeers, &e) < 0) {
        log_error("cluster: %s", e.msg);
        return;
    }
    log_info("cluster: bootstrapped with %zu servers", cl->npeers);
}

/*
 * A cluster formed while this server was still looking. If its first configuration names this
 * server, this server bootstraps with that same configuration (every member must write the
 * same one): it is one of the founders, and without it the others may lack a quorum. Returns 0
 * when it did, -ENOENT when the configuration does not name it (it must ask to be added).
 */
static int bootstrap_as_member(struct reg_cluster *cl, const json_t *conf)
{
    struct reg_repl_server servers[REG_REPL_MAX_SERVERS];
    size_t n = 0, i;
    bool named = false;
    json_t *each;
    struct err e;

    json_array_foreach(conf, i, each)
    {
        struct peer p;
        reg_peer_from_json(&p, each);
        if (n == REG_REPL_MAX_SERVERS || !p.id || !reg_repl_address_valid(p.raft_addr))
            return -ENOENT;
        servers[n].id = p.id;
        snprintf(servers[n].address, sizeof(servers[n].address), "%s", p.raft_addr);
        servers[n++].voter = true;
        named |= p.id == cl->peers[0].id;
    }
    if (!named)
        return -ENOENT;
    if (reg_repl_start(cl->repl, servers, n, &e) < 0) {
        log_error("cluster: %s", e.msg);
        return -EIO;
    }
    log_info("cluster: joined the cluster its other founders formed (%zu servers)", n);
    return 0;
}

/* One probe of a -retry-join address. */
struct probe {
    struct reg_cluster *cl;
    struct peer via;
};

static void on_probe(int status, const struct http_client_response *res, void *data)
{
    struct probe *pr = data;
    struct reg_cluster *cl = pr->cl;
    json_t *v = NULL;

    if (status < 0 || res->status != 200)
        goto out;
    v = json_loadb(res->body, res->body_len, 0, NULL);
    struct peer p;
    reg_peer_from_json(&p, v);
    /* Reached through the address the operator gave: that is its HTTP address from here. */
    snprintf(p.http_host, sizeof(p.http_host), "%s", pr->via.http_host);
    p.http_port = pr->via.http_port;
    p.heard_ms = uv_now(cl->cx->loop);
    reg_peer_learn(cl, &p);
    size_t i;
    json_t *each;
    json_array_foreach(json_object_get(v, "Peers"), i, each)
    {
        struct peer q;
        reg_peer_from_json(&q, each);
        if (!reg_peer_by_id(cl, q.id))
            reg_peer_learn(cl, &q);
    }
    if (json_is_true(json_object_get(v, "Cluster")) && !reg_repl_started(cl->repl)) {
        cl->cluster_seen = true;
        if (bootstrap_as_member(cl, json_object_get(v, "Configuration")) == 0)
            goto out;
        join_formed(cl, &p);
    }
    maybe_bootstrap(cl);
out:
    json_decref(v);
    free(pr);
}

void reg_cluster_discover(uv_timer_t *t)
{
    struct reg_cluster *cl = t->data;
    struct reg_cluster_ctx *cx = cl->cx;
    const struct flag_list *joins[] = {&cx->cfg->retry_join, &cx->cfg->start_join};

    for (size_t k = 0; k < ARRAY_LEN(joins); k++) {
        for (size_t i = 0; i < joins[k]->n; i++) {
            struct probe *pr = xcalloc(1, sizeof(*pr));
            const char *addr = joins[k]->items[i];
            if (strncmp(addr, "http://", 7) == 0)
                addr += 7;
            else if (strncmp(addr, "https://", 8) == 0)
                addr += 8; /* the scheme of every server is this one's (cl->https) */
            pr->cl = cl;
            if (net_split_host_port(addr, pr->via.http_host, sizeof(pr->via.http_host),
                                    &pr->via.http_port, DEFAULT_API_PORT) < 0) {
                free(pr);
                continue;
            }
            struct http_client_request r = {
                .host = pr->via.http_host,
                .port = pr->via.http_port,
                .target = "/v1/internal/mesh/raft/info",
                .timeout_ms = PROBE_TIMEOUT_MS,
            };
            reg_cluster_peer_tls(cl, &r);
            http_client_send(cx->client, &r, on_probe, pr);
        }
    }
    if (reg_repl_started(cl->repl))
        uv_timer_set_repeat(t, DISCOVER_FORMED_MS);
}

/* ---- a follower's heartbeat -------------------------------------------------------------- */

/* Nothing to do with the answer: a lost beat is made up by the next. */
static void on_beat_answer(int status, const struct http_client_response *res, void *data)
{
    (void)status;
    (void)res;
    (void)data;
}

void reg_cluster_beat(uv_timer_t *t)
{
    struct reg_cluster *cl = t->data;
    struct reg_cluster_ctx *cx = cl->cx;
    const struct peer *self = &cl->peers[0], *leader;
    struct reg_repl_status st;
    char host[REG_REPL_ADDR_MAX];
    int port;

    reg_repl_status(cl->repl, &st);
    if (st.role != REG_REPL_FOLLOWER || !st.leader_id ||
        !(leader = reg_peer_by_id(cl, st.leader_id)) || !leader->http_host[0] ||
        net_split_host_port(self->raft_addr, host, sizeof(host), &port, 0) < 0)
        return;
    /* The body of a client agent's heartbeat (members.h), and the server's replication port. */
    json_t *body =
        json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s, s:s}, s:{s:s}, s:i}", "Node",
                  cx->cfg->node_name, "ID", cx->node_id, "Address", host, "Datacenter",
                  cx->cfg->datacenter, "TaggedAddresses", "lan", host, "lan_ipv4", host, "wan",
                  host, "wan_ipv4", host, "Meta", "consul-network-segment", "", "ServerPort", port);
    /* At most one beat in flight: each times out before the next leaves. */
    put_to_server(cl, leader, "/v1/internal/mesh/heartbeat", body, uv_timer_get_repeat(t),
                  on_beat_answer, NULL);
}

/* ---- API: formation and operator endpoints ----------------------------------------------- */

void reg_api_cluster_info(struct reg_api_call *c, struct reg_api_result *res)
{
    struct reg_cluster *cl = c->api->cluster->replicated;
    struct reg_repl_status st;

    if (!cl) {
        reg_api_result_error(res, 404, "not a replicated server");
        return;
    }
    reg_repl_status(cl->repl, &st);
    json_t *v = reg_peer_json(&cl->peers[0]);
    json_t *peers = json_array();
    for (size_t i = 1; i < cl->npeers; i++)
        json_array_append_new(peers, reg_peer_json(&cl->peers[i]));
    json_object_set_new(v, "Peers", peers);
    json_object_set_new(v, "Cluster", json_boolean(st.config_index > 0));
    /* The first configuration, which founders that were late to see it bootstrap with. */
    json_t *conf = json_array();
    for (size_t i = 0; i < st.nservers && st.config_index == 1; i++) {
        struct peer p = {.id = st.servers[i].id};
        snprintf(p.raft_addr, sizeof(p.raft_addr), "%s", st.servers[i].address);
        json_array_append_new(conf, reg_peer_json(&p));
    }
    json_object_set_new(v, "Configuration", conf);
    reg_api_result_json(c, res, v);
}

static void on_joined(int status, void *arg)
{
    struct reg_api_call *c = reg_engine_wait_end(arg);

    if (!c)
        return;
    if (status < 0)
        reg_api_error(c, 500, "adding the server failed: %s", strerror(-status));
    else
        reg_api_ok_json(c, json_true());
}

void reg_api_cluster_join(struct reg_api_call *c)
{
    struct reg_cluster *cl = c->api->cluster->replicated;
    struct reg_repl_status st;
    struct peer p;

    if (!cl) {
        reg_api_error(c, 404, "not a replicated server");
        return;
    }
    json_t *body = reg_api_body_json(c, false);
    if (!body)
        return;
    reg_peer_from_json(&p, body);
    json_decref(body);
    if (p.id == 0 || !reg_repl_address_valid(p.raft_addr)) {
        reg_api_error(c, 400, "a join needs ID and a numeric IPv4 Address (a.b.c.d:port)");
        return;
    }
    reg_peer_learn(cl, &p);
    reg_repl_status(cl->repl, &st);
    for (size_t i = 0; i < st.nservers; i++) {
        if (st.servers[i].id == p.id && st.servers[i].voter) {
            reg_api_ok_json(c, json_true()); /* already a voter: it catches up by itself */
            return;
        }
    }
    struct engine_wait *w = reg_engine_wait_new(cl, c);
    int rc = reg_repl_add_voter(cl->repl, p.id, p.raft_addr, on_joined, w);
    if (rc < 0)
        reg_api_error(reg_engine_wait_end(w), 500, "adding the server failed: %s", strerror(-rc));
}

/* ---- removal and leave ------------------------------------------------------------------- */

static void on_removed(int status, void *arg)
{
    struct reg_api_call *c = reg_engine_wait_end(arg);

    if (!c)
        return;
    if (status < 0)
        reg_api_error(c, 500, "removing the server failed: %s", strerror(-status));
    else
        reg_api_ok_empty(c);
}

/* The configuration's server named by ?id (as the configuration shows it) or ?address. */
static const struct reg_repl_server *find_server(const struct reg_repl_status *st, const char *id,
                                                 const char *address)
{
    char text[24];

    for (size_t i = 0; i < st->nservers; i++) {
        snprintf(text, sizeof(text), "%016" PRIx64, st->servers[i].id);
        if (id ? strcmp(id, text) == 0 : strcmp(address, st->servers[i].address) == 0)
            return &st->servers[i];
    }
    return NULL;
}

void reg_api_operator_raft_remove_peer(struct reg_api_call *c)
{
    struct reg_cluster *cl = c->api->cluster->replicated;
    const char *id = reg_api_query(c, "id");
    const char *address = reg_api_query(c, "address");
    struct reg_repl_status st;

    if (id && !id[0])
        id = NULL;
    if (address && !address[0])
        address = NULL;
    if (!id == !address) {
        reg_api_error(c, 400,
                      id ? "Must specify only one of ?id or ?address"
                         : "Must specify either ?id with the server's ID or ?address with IP:port "
                           "of peer to remove");
        return;
    }
    reg_cluster_status(c->api->cluster, &st);
    const struct reg_repl_server *s = cl ? find_server(&st, id, address) : NULL;
    if (!s) {
        reg_api_error(c, 500, "%s \"%s\" was not found in the Raft configuration",
                      id ? "id" : "address", id ? id : address);
        return;
    }
    if (s->id == st.id) {
        /* The engine cannot commit a configuration without its own leader in it. */
        reg_api_error(c, 500,
                      "%s is the leader: it cannot remove itself; stop it with mesh leave (it "
                      "hands leadership over first) or remove it through the next leader",
                      s->address);
        return;
    }
    struct engine_wait *w = reg_engine_wait_new(cl, c);
    int rc = reg_repl_remove(cl->repl, s->id, on_removed, w);
    if (rc < 0)
        reg_api_error(reg_engine_wait_end(w), 500, "removing the server failed: %s", strerror(-rc));
}

/*
 * A graceful leave: a leader hands leadership over, then the server asks the leader to remove
 * it from the configuration, retrying until LEAVE_MS pass. The agent then stops.
 */
#define LEAVE_MS      10000
#define LEAVE_POLL_MS 100

struct leave {
    struct reg_cluster *cl;
    void (*done)(struct reg_agent *a);
    uint64_t deadline;
    bool transferring;
    struct http_call *asking;
    uv_timer_t timer;
};

static void on_leave_closed(uv_handle_t *h)
{
    struct leave *l = h->data;
    struct reg_agent *agent = l->cl->cx->agent;
    void (*done)(struct reg_agent * a) = l->done;

    free(l);
    done(agent);
}

static void leave_finish(struct leave *l, const char *how)
{
    log_info("cluster: %s", how);
    uv_timer_stop(&l->timer);
    uv_close((uv_handle_t *)&l->timer, on_leave_closed);
}

static void on_transferred(int status, void *arg)
{
    struct leave *l = arg;

    l->transferring = false;
    if (status < 0)
        log_warn("cluster: handing leadership over failed (%s); retrying", strerror(-status));
}

static void on_leave_answer(int status, const struct http_client_response *res, void *data)
{
    struct leave *l = data;

    l->asking = NULL;
    if (status == 0 && res->status == 200) {
        leave_finish(l, "left the cluster: removed from its configuration");
        return;
    }
    log_warn("cluster: asking to be removed failed (%s); retrying",
             status < 0 ? uv_strerror(status) : res->body);
}

/* Asks the leader (through any other server, which forwards) to remove this server. */
static void ask_removal(struct leave *l, const struct reg_repl_status *st)
{
    struct reg_cluster *cl = l->cl;
    const struct peer *to = st->leader_id ? reg_peer_by_id(cl, st->leader_id) : NULL;
    char target[96];

    for (size_t i = 1; (!to || !to->http_host[0]) && i < cl->npeers; i++)
        to = &cl->peers[i];
    if (!to || !to->http_host[0])
        return;
    snprintf(target, sizeof(target), "/v1/operator/raft/peer?id=%016" PRIx64, st->id);
    struct http_header token;
    struct http_client_request r = {
        .method = "DELETE",
        .host = to->http_host,
        .port = to->http_port,
        .target = target,
        .headers = &token,
        .num_headers = consul_token_field(cl->cx->cfg->acl_agent_token, &token),
        .timeout_ms = 5000,
    };
    reg_cluster_peer_tls(cl, &r);
    l->asking = http_client_send(cl->cx->client, &r, on_leave_answer, l);
}

static void on_leave_timer(uv_timer_t *t)
{
    struct leave *l = t->data;
    struct reg_cluster *cl = l->cl;
    struct reg_repl_status st;

    if (l->asking || l->transferring)
        return;
    reg_repl_status(cl->repl, &st);
    bool member = false;
    size_t voters = 0;
    for (size_t i = 0; i < st.nservers; i++) {
        member |= st.servers[i].id == st.id;
        voters += st.servers[i].voter;
    }
    if (!member || voters < 2) {
        leave_finish(l, member ? "the last server leaves: nothing to hand over"
                               : "left the cluster: not in its configuration");
        return;
    }
    if (uv_now(t->loop) >= l->deadline) {
        leave_finish(l, "could not leave the cluster in time; stopping as a failed server");
        return;
    }
    if (st.role == REG_REPL_LEADER) {
        l->transferring = reg_repl_transfer(cl->repl, on_transferred, l) == 0;
        return;
    }
    ask_removal(l, &st);
}

void reg_cluster_leave(struct reg_cluster_ctx *cx, void (*done)(struct reg_agent *a))
{
    struct reg_cluster *cl = cx->replicated;

    if (!cl || !reg_repl_started(cl->repl)) {
        done(cx->agent);
        return;
    }
    struct leave *l = xcalloc(1, sizeof(*l));
    l->cl = cl;
    l->done = done;
    l->deadline = uv_now(cx->loop) + LEAVE_MS;
    uv_timer_init(cx->loop, &l->timer);
    l->timer.data = l;
    log_info("cluster: leaving: asking to be removed from the configuration");
    uv_timer_start(&l->timer, on_leave_timer, 0, LEAVE_POLL_MS);
}
