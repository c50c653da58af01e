/*
 * The agent's side of the API's context (api/api.h): the ops through which the HTTP API asks
 * the agent for what only it can do. Each is a thin door onto the part that does the work:
 * forwarding (cluster/forward.h), replication (cluster/cluster.h), the journal (persist.h),
 * the client agent's ACL cache (acl_client.h), coordinates and check runners.
 */
#include <errno.h>
#include <string.h>

#include "registry/agent/acl_client.h"
#include "registry/agent/agent_internal.h"
#include "registry/agent/sync.h"
#include "registry/cluster/cluster.h"
#include "registry/cluster/coord.h"
#include "registry/cluster/forward.h"

/* A client agent's cached answer passes through as the API's "usable but stale". */
_Static_assert(REG_ACL_CACHE_STALE == REG_API_ACL_STALE, "one value for a stale ACL answer");

static void count_request(struct reg_agent *a, struct str method)
{
    reg_metrics_request(&a->metrics, method);
}

/* An answer this large was built from a JSON tree several times its size, now freed. */
#define LARGE_ANSWER_BYTES (64u << 10)

static void answered(struct reg_agent *a, size_t len)
{
    if (len >= LARGE_ANSWER_BYTES)
        heap_trim_soon(&a->heap_trim);
}

static bool forward_to_server(struct reg_agent *a, struct reg_api_call *c)
{
    if (a->cfg.server || !reg_forward_wanted(&a->cluster, c->path))
        return false;
    reg_forward_call(&a->cluster, c);
    return true;
}

static bool forward_to_leader(struct reg_agent *a, struct reg_api_call *c, bool write)
{
    return reg_cluster_forward(&a->cluster, c, write);
}

static void acl_ensure(struct reg_agent *a)
{
    if (!a->cfg.acl_enabled || !a->cfg.server || a->state.acl_ready ||
        !reg_cluster_may_write(&a->cluster))
        return;
    struct reg_acl_settings set;
    reg_settings_acl(&a->cfg, &set);
    reg_acl_state_ensure(&a->state, &set); /* built-in policy and tokens, once */
    a->state.acl_ready = true;
}

static int acl_resolve(struct reg_agent *a, struct reg_api_call *c)
{
    /* A client agent holds no tokens: the servers say what one may do (acl_client.h). */
    if (!a->cfg.server && a->cfg.acl_enabled)
        return reg_acl_cache_lookup(a->acl_cache, c->token, &c->authz);
    struct reg_acl_settings set;
    reg_settings_acl(&a->cfg, &set);
    return reg_acl_resolve(&a->state, &set, c->token, &c->authz);
}

static void acl_fetch(struct reg_agent *a, struct reg_api_call *c, reg_api_write_fn resume)
{
    reg_acl_cache_fetch(a->acl_cache, c, c->token, resume);
}

static void write_mark(const struct reg_agent *a, struct reg_api_write_mark *m)
{
    int err;

    m->unwritten = a->persist ? reg_persist_unwritten(a->persist, &err) : 0;
}

static int write_failed(const struct reg_agent *a, const struct reg_api_write_mark *m)
{
    int err = 0;

    if (!a->persist || reg_persist_unwritten(a->persist, &err) <= m->unwritten)
        return 0;
    return err < 0 ? err : -EIO;
}

static bool must_hold(const struct reg_agent *a, const char *path, bool write, int status)
{
    return reg_cluster_must_hold(&a->cluster, path, write, status) ||
           reg_sync_must_hold(a, write, status);
}

static void hold(struct reg_agent *a, struct http_request *req, bool write,
                 struct http_shared_response *answer)
{
    if (a->sync)
        reg_sync_hold(a, req, answer); /* a client agent: no replicated log of its own */
    else
        reg_cluster_hold(&a->cluster, req, write, answer);
}

static void read_headers(const struct reg_agent *a, bool *known_leader, uint64_t *last_contact)
{
    reg_cluster_read_headers(&a->cluster, known_leader, last_contact);
}

static struct reg_node *local_node(struct reg_agent *a)
{
    return reg_agent_local_node(a);
}

static void stop_checks(struct reg_agent *a, const char *service_id, const char *check_id)
{
    if (check_id) {
        reg_checks_stop(a->checks, check_id);
        return;
    }
    struct reg_node *n = reg_agent_local_node(a);
    smap_foreach(&n->checks, e)
    {
        const struct reg_check *chk = e->val;
        if (strcmp(chk->service_id, service_id) == 0)
            reg_checks_stop(a->checks, chk->id);
    }
}

static void sort_near(const struct reg_agent *a, const char *near, json_t *list,
                      const char *(*node_of)(const json_t *entry))
{
    reg_coords_sort_near(&a->cluster, near, list, node_of);
}

static const struct reg_api_ops agent_api_ops = {
    .count_request = count_request,
    .answered = answered,
    .forward_to_server = forward_to_server,
    .forward_to_leader = forward_to_leader,
    .acl_ensure = acl_ensure,
    .acl_resolve = acl_resolve,
    .acl_fetch = acl_fetch,
    .write_mark = write_mark,
    .write_failed = write_failed,
    .must_hold = must_hold,
    .hold = hold,
    .read_headers = read_headers,
    .local_node = local_node,
    .stop_checks = stop_checks,
    .sort_near = sort_near,
};

void reg_agent_api_init(struct reg_agent *a)
{
    a->api = (struct reg_api){
        .state = &a->state,
        .watches = &a->watches,
        .cfg = &a->cfg,
        .sessions = a->sessions,
        .ops = &agent_api_ops,
        .agent = a,
        .cluster = &a->cluster,
    };
}
