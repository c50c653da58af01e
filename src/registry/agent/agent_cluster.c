/*
 * The agent's side of cluster/'s context (cluster/cluster_ctx.h): the state, settings and
 * identity it works with, and the doors it needs onto the agent: the leader's duties, whether
 * the agent is leaving, a client agent's link to its servers (sync.h), and the agent's TLS
 * settings for requests to other servers (agent_tls.h), and its API servers' waiting calls when
 * the server restarts itself.
 */
#include <errno.h>

#include "registry/agent/agent_internal.h"
#include "registry/agent/agent_tls.h"
#include "registry/agent/sync.h"

static void leadership(struct reg_agent *a, bool leader)
{
    if (leader)
        reg_agent_ensure_local_node(a);
    if (a->sessions)
        reg_sessions_set_active(a->sessions, leader); /* TTLs run where the state is written */
}

static bool leaving(const struct reg_agent *a)
{
    return a->leaving;
}

static int server(struct reg_agent *a, struct http_client_request *r, uint64_t *epoch)
{
    const struct reg_sync_server *srv = reg_sync_current_server(a);

    if (!srv)
        return -ENOTCONN;
    r->host = srv->host;
    r->port = srv->port;
    reg_sync_client_options(a, r);
    *epoch = reg_sync_server_epoch(a);
    return 0;
}

static void server_failed(struct reg_agent *a, uint64_t epoch, int status)
{
    reg_sync_server_failed(a, epoch, status);
}

static void tls_options(struct reg_agent *a, struct http_client_request *r)
{
    r->tls = true;
    reg_agent_tls_client_options(&a->cfg, r);
}

static void restarting(struct reg_agent *a)
{
    static const char text[] = "No cluster leader\n";

    http_server_answer_held(&a->http, 500, text);
    if (a->https_on)
        http_server_answer_held(&a->https, 500, text);
}

static const struct reg_cluster_ops agent_cluster_ops = {
    .leadership = leadership,
    .leaving = leaving,
    .server = server,
    .server_failed = server_failed,
    .tls_options = tls_options,
    .restarting = restarting,
};

void reg_agent_cluster_init(struct reg_agent *a)
{
    a->cluster = (struct reg_cluster_ctx){
        .loop = a->loop,
        .state = &a->state,
        .cfg = &a->cfg,
        .node_id = a->node_id,
        .vivaldi = &a->vivaldi,
        .ops = &agent_cluster_ops,
        .agent = a,
    };
}
