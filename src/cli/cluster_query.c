/*
 * What the operator commands ask the running cluster: the registry server (Consul's API) and
 * the load balancer's stats (HAProxy's rows as JSON). Each GET runs on a private loop that
 * lives for the one request: these are short, sequential commands.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "cli/cluster.h"
#include "lib/alloc.h"
#include "lib/base64.h"
#include "lib/consul_client.h"
#include "lib/file.h"
#include "lib/http_client.h"

#define QUERY_TIMEOUT_MS 5000
#define QUERY_MAX_BODY   (8u << 20)

struct get_wait {
    bool done;
    int status;
    struct cluster_reply *r;
};

static void on_reply(int status, const struct http_client_response *res, void *data)
{
    struct get_wait *w = data;
    size_t len = 0;
    const char *by;

    w->done = true;
    w->status = status;
    if (status < 0)
        return;
    w->r->status = res->status;
    buf_append(&w->r->body, res->body, res->body_len);
    by = http_client_header(res, "X-Served-By", &len);
    if (by)
        snprintf(w->r->served_by, sizeof(w->r->served_by), "%.*s", (int)len, by);
}

/* Runs req on a private loop until it answers; 0 with r filled, or a negative UV error. */
static int get(struct http_client_request *req, struct cluster_reply *r, struct err *e)
{
    uv_loop_t loop;
    struct http_client *c;
    struct get_wait w = {.r = r};
    int rc = uv_loop_init(&loop);

    r->status = 0;
    r->served_by[0] = '\0';
    buf_reset(&r->body);
    if (rc < 0) {
        err_set(e, "event loop: %s", uv_strerror(rc));
        return rc;
    }
    c = http_client_new(&loop);
    req->method = "GET";
    req->max_body = QUERY_MAX_BODY;
    req->no_keep_alive = true;
    http_client_send(c, req, on_reply, &w);
    while (!w.done)
        uv_run(&loop, UV_RUN_ONCE);
    if (w.status < 0)
        err_set(e, "GET %s://%s:%d%s: %s", req->tls ? "https" : "http", req->host, req->port,
                req->target, uv_strerror(w.status));
    http_client_free(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return w.status;
}

int cluster_get(const char *host, int port, const char *target, const char *authorization,
                int timeout_ms, struct cluster_reply *r, struct err *e)
{
    struct http_header auth = {.name = STR_LIT("Authorization"), .value = str_from(authorization)};
    struct http_client_request req = {
        .host = host,
        .port = port,
        .target = target,
        .headers = &auth,
        .num_headers = authorization ? 1 : 0,
        .timeout_ms = (uint64_t)timeout_ms,
    };

    return get(&req, r, e);
}

int cluster_get_agent(const struct cluster_state *s, const struct cluster_node *n,
                      const char *target, int timeout_ms, struct cluster_reply *r, struct err *e)
{
    char ca[PATH_MAX + 64], cert[PATH_MAX + 64], key[PATH_MAX + 64], path[PATH_MAX + 64];
    struct buf token = BUF_INIT;
    struct http_header field;
    int rc, fd;

    if (!s->secure)
        return cluster_get(n->addr, n->agent_port, target, NULL, timeout_ms, r, e);
    cluster_secure_path(s, CLUSTER_TLS_TOKEN, path, sizeof(path));
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || (rc = file_read_all(fd, &token)) < 0) {
        rc = fd < 0 ? -errno : rc;
        if (fd >= 0)
            close(fd);
        err_set(e, "token %s: %s", path, strerror(-rc));
        goto out;
    }
    close(fd);
    buf_append(&token, "", 1);
    token.data[strcspn(token.data, "\r\n")] = '\0';
    cluster_secure_path(s, CLUSTER_TLS_CA, ca, sizeof(ca));
    cluster_secure_path(s, CLUSTER_TLS_CLIENT_CERT, cert, sizeof(cert));
    cluster_secure_path(s, CLUSTER_TLS_CLIENT_KEY, key, sizeof(key));
    struct http_client_request req = {
        .host = n->addr,
        .port = n->agent_port,
        .target = target,
        .headers = &field,
        .num_headers = consul_token_field(token.data, &field),
        .timeout_ms = (uint64_t)timeout_ms,
        .tls = true,
        .tls_ca_file = ca,
        .tls_cert_file = cert,
        .tls_key_file = key,
    };
    rc = get(&req, r, e);
out:
    buf_free(&token);
    return rc;
}

/* The JSON of a 200 answer to the GET that returned rc into r; NULL with e set otherwise. */
static json_t *reply_json(int rc, const char *what, struct cluster_reply *r, struct err *e)
{
    json_error_t je;
    json_t *v = NULL;

    if (rc < 0)
        return NULL;
    if (r->status != 200)
        err_set(e, "GET %s: status %d", what, r->status);
    else if (!(v = json_loadb(r->body.data ? r->body.data : "", r->body.len, JSON_DECODE_ANY, &je)))
        err_set(e, "GET %s: %s", what, je.text);
    return v;
}

json_t *cluster_server_json(const struct cluster_state *s, const struct cluster_node *n,
                            const char *target, struct err *e)
{
    struct cluster_reply r = {0};
    int rc = cluster_get_agent(s, n, target, QUERY_TIMEOUT_MS, &r, e);
    json_t *v = reply_json(rc, target, &r, e);

    buf_free(&r.body);
    return v;
}

json_t *cluster_registry_json(const struct cluster_state *s, const char *target, struct err *e)
{
    json_t *v = NULL;

    /* The first server that runs: with several, any one answers for the registry (a follower
     * asks the leader), so a killed server does not blind the operator commands. */
    for (size_t i = 0; !v && i < s->n_nodes; i++) {
        const struct cluster_node *n = &s->nodes[i];
        if (n->server && (i == 0 || cluster_pidfile_live(s, n, "agent.pid", NULL)))
            v = cluster_server_json(s, n, target, e);
    }
    return v;
}

/*
 * The server node whose replication address is addr ("10.77.0.10:8300"): with one server, the
 * only one (its port is not on its command line).
 */
static const struct cluster_node *server_by_raft_addr(const struct cluster_state *s,
                                                      const char *addr)
{
    char want[96];

    if (cluster_n_servers(s) == 1)
        return &s->nodes[0];
    for (size_t i = 0; i < s->n_nodes; i++) {
        const struct cluster_node *n = &s->nodes[i];
        snprintf(want, sizeof(want), "%s:%d", n->addr, n->server_port);
        if (n->server && strcmp(want, addr) == 0)
            return n;
    }
    return NULL;
}

/*
 * The leader every running server names, itself running, or NULL (right after a leader is
 * killed the others still name it). What was seen goes into seen (for the message of a wait
 * that runs out).
 */
static const struct cluster_node *agreed_leader(const struct cluster_state *s, char *seen,
                                                size_t len)
{
    const struct cluster_node *leader = NULL;
    size_t asked = 0, off = 0;
    bool agree = true;

    seen[0] = '\0';
    for (size_t i = 0; i < s->n_nodes; i++) {
        const struct cluster_node *n = &s->nodes[i], *l;
        struct err e;
        if (!n->server || !cluster_pidfile_live(s, n, "agent.pid", NULL))
            continue;
        json_t *v = cluster_server_json(s, n, "/v1/status/leader", &e);
        const char *addr = json_is_string(v) ? json_string_value(v) : "";
        l = addr[0] ? server_by_raft_addr(s, addr) : NULL;
        if (off < len)
            off += (size_t)snprintf(seen + off, len - off, "%s%s: %s", asked ? ", " : "", n->name,
                                    !v  ? "no answer"
                                    : l ? l->name
                                        : "no leader");
        agree = agree && l && (!leader || leader == l);
        leader = l;
        asked++;
        json_decref(v);
    }
    if (!agree || !asked || !cluster_pidfile_live(s, leader, "agent.pid", NULL))
        return NULL;
    return leader;
}

json_t *cluster_leader_json(const struct cluster_state *s, const char *target, struct err *e)
{
    const struct cluster_node *leader = NULL;
    json_t *addr = cluster_registry_json(s, "/v1/status/leader", e), *v = NULL;

    if (json_is_string(addr) && json_string_length(addr) > 0)
        leader = server_by_raft_addr(s, json_string_value(addr));
    json_decref(addr);
    if (leader && cluster_pidfile_live(s, leader, "agent.pid", NULL))
        v = cluster_server_json(s, leader, target, e);
    return v ? v : cluster_registry_json(s, target, e);
}

int cluster_wait_leader(const struct cluster_state *s, const struct cluster_node **leader,
                        int timeout_ms, struct err *e)
{
    int64_t deadline = cluster_now_ms() + timeout_ms;
    const struct cluster_node *l;
    char seen[256];

    while (!(l = agreed_leader(s, seen, sizeof(seen)))) {
        if (cluster_now_ms() >= deadline) {
            err_set(e, "the registry servers did not agree on a leader in %d s (%s)",
                    timeout_ms / 1000, seen[0] ? seen : "none runs");
            return -ETIMEDOUT;
        }
        cluster_sleep_ms(100);
    }
    if (leader)
        *leader = l;
    return 0;
}

const char *cluster_lb_host(const struct cluster_state *s)
{
    return s->nodes[0].addr;
}

json_t *cluster_lb_stats(const struct cluster_state *s, struct err *e)
{
    char cred[160];
    char *b64, *auth;
    json_t *v;

    if (s->lb_haproxy)
        return cluster_haproxy_stats(s, e);
    snprintf(cred, sizeof(cred), "%s:%s", s->stats_user, s->stats_password);
    b64 = base64_encode(cred, strlen(cred));
    auth = s->stats_user[0] ? xasprintf("Basic %s", b64) : NULL;
    struct cluster_reply r = {0};
    int rc = cluster_get(cluster_lb_host(s), s->stats_port, "/stats;json", auth, QUERY_TIMEOUT_MS,
                         &r, e);
    v = reply_json(rc, "/stats;json", &r, e);
    buf_free(&r.body);
    if (v && !json_is_array(v)) {
        err_set(e, "lb stats: expected a JSON array");
        json_decref(v);
        v = NULL;
    }
    free(auth);
    free(b64);
    return v;
}

int cluster_passing(const struct cluster_state *s, const char *node, struct err *e)
{
    json_t *v = cluster_registry_json(s, "/v1/health/service/" CLUSTER_SERVICE "?passing", e);
    int n = 0;

    if (!v)
        return -EIO;
    for (size_t i = 0; json_is_array(v) && i < json_array_size(v); i++) {
        json_t *nd = json_object_get(json_object_get(json_array_get(v, i), "Node"), "Node");
        if (!node || (json_is_string(nd) && strcmp(json_string_value(nd), node) == 0))
            n++;
    }
    json_decref(v);
    return n;
}

int cluster_wait_passing(const struct cluster_state *s, const char *node, int want, int timeout_ms,
                         struct err *e)
{
    int64_t deadline = cluster_now_ms() + timeout_ms;
    int last = -1;

    for (;;) {
        int n = cluster_passing(s, node, e);
        if (n == want)
            return 0;
        last = n;
        if (cluster_now_ms() >= deadline)
            break;
        cluster_sleep_ms(100);
    }
    if (last >= 0)
        err_set(e, "%s%s has %d passing instance(s) of %s after %d s, expected %d",
                node ? "node " : "the cluster", node ? node : "", last, CLUSTER_SERVICE,
                timeout_ms / 1000, want);
    return -ETIMEDOUT;
}
