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
#include "lib/http_client.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/net.h"
#include "registry/agent/agent_internal.h"
#include "registry/api/api.h"
#include "registry/api/api_routes.h"
#include "registry/cluster/cluster.h"
#include "registry/cluster/cluster_internal.h"

#define DISCOVER_FORMED_MS 5000 /* between probes once formed (learning peers' HTTP addresses) */
#define PROBE_TIMEOUT_MS   2000

/* ---- formation --------------------------------------------------------------------------- */

void peer_from_json(struct peer *p, const json_t *v)
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

json_t *peer_json(const struct peer *p)
{
    char id[24], http[300];

    snprintf(id, sizeof(id), "%" PRIu64, p->id);
    snprintf(http, sizeof(http), "%s:%d", p->http_host, p->http_port);
    return json_pack("{s:s, s:s, s:s, s:s}", "ID", id, "Node", p->node, "Address", p->raft_addr,
                     "HTTPAddr", p->http_host[0] ? http : "");
}

/* Learns a server (or more about one): a new one is added, a known one's addresses refreshed. */
void peer_learn(struct reg_cluster *cl, const struct peer *p)
{
    if (p->id == 0 || !reg_repl_address_valid(p->raft_addr))
        return;
    struct peer *known = peer_by_id(cl, p->id);
    if (!known) {
        if (cl->npeers == REG_REPL_MAX_SERVERS)
            return;
        known = &cl->peers[cl->npeers++];
        log_info("cluster: learned of server %s (%s)", p->node, p->raft_addr);
    }
    if (known != &cl->peers[0])
        *known = *p;
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
    json_t *body = peer_json(&cl->peers[0]);
    char *json = json_dumps(body, JSON_COMPACT | JSON_MESH_REAL_PRECISION);
    json_decref(body);
    struct http_client_request r = {
        .method = "PUT",
        .host = via->http_host,
        .port = via->http_port,
        .target = "/v1/internal/mesh/raft/join",
        .body = json,
        .body_len = strlen(json),
        .timeout_ms = 30000,
    };
    cl->join_sent = true;
    http_client_send(cl->agent->client, &r, on_join_answer, cl);
    free(json);
}

/* Bootstraps once exactly bootstrap_expect servers see each other. */
static void maybe_bootstrap(struct reg_cluster *cl)
{
    struct reg_agent *a = cl->agent;
    struct reg_repl_server servers[REG_REPL_MAX_SERVERS];
    struct peer sorted[REG_REPL_MAX_SERVERS];
    struct err e;

    if (reg_repl_started(cl->repl) || cl->cluster_seen)
        return;
    if (cl->npeers != (size_t)a->cfg.bootstrap_expect) {
        if (cl->npeers > (size_t)a->cfg.bootstrap_expect)
            log_error("cluster: %zu servers found but -bootstrap-expect is %d; not bootstrapping",
                      cl->npeers, a->cfg.bootstrap_expect);
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
        peer_from_json(&p, each);
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
    peer_from_json(&p, v);
    /* Reached through the address the operator gave: that is its HTTP address from here. */
    snprintf(p.http_host, sizeof(p.http_host), "%s", pr->via.http_host);
    p.http_port = pr->via.http_port;
    peer_learn(cl, &p);
    size_t i;
    json_t *each;
    json_array_foreach(json_object_get(v, "Peers"), i, each)
    {
        struct peer q;
        peer_from_json(&q, each);
        if (!peer_by_id(cl, q.id))
            peer_learn(cl, &q);
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

void cluster_discover(uv_timer_t *t)
{
    struct reg_cluster *cl = t->data;
    struct reg_agent *a = cl->agent;
    const struct flag_list *joins[] = {&a->cfg.retry_join, &a->cfg.start_join};

    for (size_t k = 0; k < ARRAY_LEN(joins); k++) {
        for (size_t i = 0; i < joins[k]->n; i++) {
            struct probe *pr = xcalloc(1, sizeof(*pr));
            const char *addr = joins[k]->items[i];
            if (strncmp(addr, "http://", 7) == 0)
                addr += 7;
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
            http_client_send(a->client, &r, on_probe, pr);
        }
    }
    if (reg_repl_started(cl->repl))
        uv_timer_set_repeat(t, DISCOVER_FORMED_MS);
}

/* ---- API: formation and operator endpoints ----------------------------------------------- */

void reg_api_cluster_info(struct reg_api_call *c, struct reg_api_result *res)
{
    struct reg_cluster *cl = c->api->agent->cluster;
    struct reg_repl_status st;

    if (!cl) {
        reg_api_result_error(res, 404, "not a replicated server");
        return;
    }
    reg_repl_status(cl->repl, &st);
    json_t *v = peer_json(&cl->peers[0]);
    json_t *peers = json_array();
    for (size_t i = 1; i < cl->npeers; i++)
        json_array_append_new(peers, peer_json(&cl->peers[i]));
    json_object_set_new(v, "Peers", peers);
    json_object_set_new(v, "Cluster", json_boolean(st.config_index > 0));
    /* The first configuration, which founders that were late to see it bootstrap with. */
    json_t *conf = json_array();
    for (size_t i = 0; i < st.nservers && st.config_index == 1; i++) {
        struct peer p = {.id = st.servers[i].id};
        snprintf(p.raft_addr, sizeof(p.raft_addr), "%s", st.servers[i].address);
        json_array_append_new(conf, peer_json(&p));
    }
    json_object_set_new(v, "Configuration", conf);
    reg_api_result_json(c, res, v);
}

struct join_call {
    struct reg_api_call *call;
};

static void on_join_abort(struct http_request *req)
{
    struct join_call *j = req->data;
    struct reg_api_call *c = j->call;

    j->call = NULL;
    reg_api_call_free(c);
}

static void on_joined(int status, void *arg)
{
    struct join_call *j = arg;
    struct reg_api_call *c = j->call;

    free(j);
    if (!c)
        return;
    c->req->on_abort = NULL;
    if (status < 0)
        reg_api_error(c, 500, "adding the server failed: %s", strerror(-status));
    else
        reg_api_ok_json(c, json_true());
}

void reg_api_cluster_join(struct reg_api_call *c)
{
    struct reg_cluster *cl = c->api->agent->cluster;
    struct reg_repl_status st;
    struct peer p;

    if (!cl) {
        reg_api_error(c, 404, "not a replicated server");
        return;
    }
    json_t *body = reg_api_body_json(c, false);
    if (!body)
        return;
    peer_from_json(&p, body);
    json_decref(body);
    if (p.id == 0 || !reg_repl_address_valid(p.raft_addr)) {
        reg_api_error(c, 400, "a join needs ID and a numeric IPv4 Address (a.b.c.d:port)");
        return;
    }
    peer_learn(cl, &p);
    reg_repl_status(cl->repl, &st);
    for (size_t i = 0; i < st.nservers; i++) {
        if (st.servers[i].id == p.id && st.servers[i].voter) {
            reg_api_ok_json(c, json_true()); /* already a voter: it catches up by itself */
            return;
        }
    }
    struct join_call *j = xcalloc(1, sizeof(*j));
    j->call = c;
    int rc = reg_repl_add_voter(cl->repl, p.id, p.raft_addr, on_joined, j);
    if (rc < 0) {
        free(j);
        reg_api_error(c, 500, "adding the server failed: %s", strerror(-rc));
        return;
    }
    c->req->data = j;
    c->req->on_abort = on_join_abort;
}
