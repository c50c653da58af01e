/*
 * The agent's side of DNS's context (dns/dns.h): the settings and state it answers from, and
 * the one door it needs onto the agent: a client agent's read from its current server, through
 * the link sync.h keeps (which server, its TLS, moving on when it fails).
 */
#include <errno.h>
#include <stdlib.h>

#include "lib/alloc.h"
#include "lib/consul_client.h"
#include "registry/agent/agent_internal.h"
#include "registry/agent/sync.h"

/* One read in flight: what to tell sync when it fails, and whom to answer. */
struct server_get {
    struct reg_agent *agent;
    uint64_t epoch; /* the server epoch it was sent at (reg_sync_server_epoch) */
    http_client_cb done;
    void *data;
};

static void on_server_answer(int status, const struct http_client_response *res, void *data)
{
    struct server_get *g = data;

    if (status < 0)
        reg_sync_server_failed(g->agent, g->epoch, status); /* ignores UV_ECANCELED */
    g->done(status, res, g->data);
    free(g);
}

static int server_get(struct reg_agent *a, const char *target, uint64_t timeout_ms,
                      http_client_cb done, void *data)
{
    const struct reg_sync_server *server = reg_sync_current_server(a);

    if (!server || !a->client)
        return -ENOTCONN;
    struct server_get *g = xmalloc(sizeof(*g));
    *g = (struct server_get){
        .agent = a, .epoch = reg_sync_server_epoch(a), .done = done, .data = data};
    struct http_header token;
    size_t ntoken = consul_token_field(a->cfg.acl_default_token, &token);
    struct http_client_request req = {
        .host = server->host,
        .port = server->port,
        .target = target,
        .headers = &token,
        .num_headers = ntoken,
        .timeout_ms = timeout_ms,
        .max_body = CONSUL_MAX_BODY,
    };
    reg_sync_client_options(a, &req);
    http_client_send(a->client, &req, on_server_answer, g);
    return 0;
}

static const struct reg_dns_ops agent_dns_ops = {
    .server_get = server_get,
};

void reg_agent_dns_init(struct reg_agent *a)
{
    a->dns = (struct reg_dns){
        .loop = a->loop,
        .state = &a->state,
        .cfg = &a->cfg,
        .ops = &agent_dns_ops,
        .agent = a,
    };
}
