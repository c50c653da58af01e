#include "registry/cluster/members.h"

#include <errno.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/duration.h"
#include "lib/json.h"
#include "lib/log.h"
#include "registry/cluster/cluster_ctx.h"
#include "registry/settings/settings.h"
#include "registry/state/state.h"
#include "registry/cluster/cluster.h"

#define DETECTOR_INTERVAL_MS 250

#define SERF_CHECK_ID     "serfHealth"
#define SERF_OUTPUT_ALIVE "Agent alive and reachable"
#define SERF_OUTPUT_DEAD  "Agent not live or unreachable"

#define SERF_LAN_PORT 8301
#define SERF_WAN_PORT 8302

static json_t *member_json(const char *name, const char *addr, const char *id, const char *dc,
                           bool server, bool bootstrap, enum reg_member_status status, int port)
{
    json_t *tags = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "role",
                             server ? "consul" : "node", "dc", dc, "port", "8300", "id", id,
                             "build", MESH_VERSION ":meshkit", "vsn", "2", "vsn_min", "2",
                             "vsn_max", "3", "raft_vsn", "3", "segment", "");

    if (bootstrap)
        json_object_set_new(tags, "bootstrap", json_string("1"));
    return json_pack("{s:s, s:s, s:i, s:o, s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "Name", name,
                     "Addr", addr, "Port", port, "Tags", tags, "Status", status, "ProtocolMin", 1,
                     "ProtocolMax", 5, "ProtocolCur", 2, "DelegateMin", 2, "DelegateMax", 5,
                     "DelegateCur", 4);
}

json_t *reg_members_local(const struct reg_cluster_ctx *cx)
{
    const struct reg_node *node = reg_node_get(cx->state, cx->cfg->node_name);

    return member_json(cx->cfg->node_name, node ? node->address : "127.0.0.1", cx->node_id,
                       cx->cfg->datacenter, cx->cfg->server, cx->cfg->bootstrap,
                       cx->ops->leaving(cx->agent) ? REG_MEMBER_LEAVING : REG_MEMBER_ALIVE,
                       SERF_LAN_PORT);
}

/*
 * A server of a replicated cluster that does not lead hears no heartbeat (they go to the
 * leader), so its own view, for ?stale and for when no leader answers, is the catalog's last
 * word on each node (serfHealth passing: alive, critical: failed), except for the other
 * servers, which it judges by what it heard from them itself: the catalog cannot say that the
 * leader, which alone writes it, died.
 */
static json_t *follower_view(const struct reg_cluster_ctx *cx)
{
    json_t *list = json_array();

    json_array_append_new(list, reg_members_local(cx));
    smap_foreach(&cx->state->nodes, e)
    {
        const struct reg_node *n = e->val;
        const struct reg_check *serf = reg_check_get(n, SERF_CHECK_ID);
        if (!serf || strcasecmp(n->name, cx->cfg->node_name) == 0)
            continue;
        bool server = reg_service_get(n, "consul") != NULL;
        int heard = server ? reg_cluster_server_heard(cx, n->name) : -ENOENT;
        bool alive = heard >= 0 ? heard == 1 : serf->status != REG_CRITICAL;
        json_array_append_new(
            list, member_json(n->name, n->address ? n->address : "", n->id ? n->id : "",
                              n->datacenter ? n->datacenter : cx->cfg->datacenter, server, false,
                              alive ? REG_MEMBER_ALIVE : REG_MEMBER_FAILED, SERF_LAN_PORT));
    }
    return list;
}

json_t *reg_members_list(const struct reg_members *m)
{
    const struct reg_cluster_ctx *cx = m->cx;

    if (cx->replicated && !reg_cluster_may_write(cx))
        return follower_view(cx);
    json_t *list = json_array();

    json_array_append_new(list, reg_members_local(cx));
    smap_foreach(&m->by_name, e)
    {
        const struct reg_member *mb = e->val;
        json_array_append_new(list, member_json(mb->name, mb->addr, mb->id, mb->datacenter,
                                                mb->server, false, mb->status, SERF_LAN_PORT));
    }
    return list;
}

json_t *reg_members_wan_list(const struct reg_members *m, const struct reg_cluster_ctx *cx)
{
    json_t *list = json_array();

    if (!cx->cfg->server)
        return list;
    const struct reg_node *node = reg_node_get(cx->state, cx->cfg->node_name);
    char *name = xasprintf("%s.%s", cx->cfg->node_name, cx->cfg->datacenter);
    json_array_append_new(
        list, member_json(name, node ? node->address : "127.0.0.1", cx->node_id,
                          cx->cfg->datacenter, true, cx->cfg->bootstrap,
                          cx->ops->leaving(cx->agent) ? REG_MEMBER_LEAVING : REG_MEMBER_ALIVE,
                          SERF_WAN_PORT));
    free(name);
    smap_foreach(&m->by_name, e)
    {
        const struct reg_member *mb = e->val;
        if (!mb->server)
            continue;
        name = xasprintf("%s.%s", mb->name, mb->datacenter);
        json_array_append_new(list, member_json(name, mb->addr, mb->id, mb->datacenter, true, false,
                                                mb->status, SERF_WAN_PORT));
        free(name);
    }
    return list;
}

static void member_free(struct reg_member *mb)
{
    free(mb->name);
    free(mb->id);
    free(mb->addr);
    free(mb->datacenter);
    free(mb);
}

/* Sets the node's serfHealth check, creating it when missing. */
static void set_serf_health(struct reg_cluster_ctx *cx, const char *node_name, bool alive)
{
    struct reg_node *node = reg_node_get(cx->state, node_name);
    if (!node)
        return;
    struct reg_check *chk = reg_check_get(node, SERF_CHECK_ID);
    enum reg_health status = alive ? REG_PASSING : REG_CRITICAL;
    const char *output = alive ? SERF_OUTPUT_ALIVE : SERF_OUTPUT_DEAD;

    if (chk) {
        reg_check_set_status(cx->state, chk, status, output);
        return;
    }
    struct reg_check t = {
        .id = SERF_CHECK_ID,
        .name = "Serf Health Status",
        .status = status,
        .output = (char *)output,
        .service_id = "",
        .type = "",
    };
    reg_check_upsert(cx->state, node, &t);
}

static struct reg_member *member_get(const struct reg_members *m, const char *name)
{
    char *key = reg_fold(name);
    struct reg_member *mb = smap_get(&m->by_name, key);
    free(key);
    return mb;
}

static struct reg_member *member_add(struct reg_members *m, const char *name)
{
    struct reg_member *mb = xcalloc(1, sizeof(*mb));
    char *key = reg_fold(name);

    mb->name = xstrdup(name);
    mb->id = xstrdup("");
    mb->addr = xstrdup("");
    mb->datacenter = xstrdup(m->cx->cfg->datacenter);
    smap_put(&m->by_name, key, mb);
    free(key);
    return mb;
}

static void replace(char **dst, const char *src)
{
    free(*dst);
    *dst = xstrdup(src ? src : "");
}

int reg_members_heartbeat(struct reg_members *m, const json_t *body, bool *known, struct err *e)
{
    struct reg_cluster_ctx *cx = m->cx;
    const char *node = NULL, *id = NULL, *addr = NULL, *dc = NULL;
    json_t *tagged = NULL, *meta = NULL;
    int64_t server_port = 0; /* a follower's beat (cluster_internal.h): its replication port */

    if (json_read_string(body, "Node", "Heartbeat.Node", &node, e) < 0 ||
        json_read_string(body, "ID", "Heartbeat.ID", &id, e) < 0 ||
        json_read_string(body, "Address", "Heartbeat.Address", &addr, e) < 0 ||
        json_read_string(body, "Datacenter", "Heartbeat.Datacenter", &dc, e) < 0 ||
        json_read_object(body, "TaggedAddresses", "Heartbeat.TaggedAddresses", &tagged, e) < 0 ||
        json_read_object(body, "Meta", "Heartbeat.Meta", &meta, e) < 0 ||
        json_read_int(body, "ServerPort", "Heartbeat.ServerPort", &server_port, e) < 0)
        return -EINVAL;
    if (server_port < 0 || server_port > 65535)
        return err_set(e, "Heartbeat.ServerPort %lld: expected a port", (long long)server_port);
    if (!node || !node[0] || !addr || !addr[0])
        return err_set(e, "Heartbeat needs Node and Address");
    if (dc && dc[0] && strcasecmp(dc, cx->cfg->datacenter) != 0)
        return err_set(e, "Node %s is in datacenter %s, this server serves %s", node, dc,
                       cx->cfg->datacenter);
    if (strcasecmp(node, cx->cfg->node_name) == 0)
        return err_set(e, "Node name %s is this server's own", node);

    struct reg_member *mb = member_get(m, node);
    *known = mb && mb->status != REG_MEMBER_LEFT && reg_node_get(cx->state, node);
    if (!mb)
        mb = member_add(m, node);
    if (mb->status != REG_MEMBER_ALIVE)
        log_info("member %s (%s) is alive", node, addr);
    replace(&mb->id, id);
    replace(&mb->addr, addr);
    mb->status = REG_MEMBER_ALIVE;
    mb->server = server_port > 0;
    mb->last_seen_ms = uv_now(cx->loop);

    struct reg_node_fields f = {
        .name = node,
        .id = id,
        .address = addr,
        .datacenter = cx->cfg->datacenter,
        .tagged_addresses = tagged,
        .meta = meta,
    };
    reg_node_upsert(cx->state, &f);
    set_serf_health(cx, node, true);
    if (server_port > 0)
        reg_members_consul_service(cx->state, reg_node_get(cx->state, node), (int)server_port);
    const json_t *coord = json_iget(body, "Coord");
    struct vivaldi_coord vc;
    if (coord && !json_is_null(coord) && reg_coord_from_json(coord, &vc, NULL) == 0)
        reg_coords_set(cx, node, &vc); /* a bad one is dropped: the heartbeat itself counts */
    return 0;
}

void reg_members_consul_service(struct reg_state *st, struct reg_node *node, int server_port)
{
    struct reg_service consul = {
        .id = "consul", .name = "consul", .port = server_port, .address = ""};

    reg_service_upsert(st, node, &consul);
}

void reg_members_leave(struct reg_members *m, const char *node)
{
    struct reg_member *mb = member_get(m, node);

    if (!mb)
        mb = member_add(m, node);
    mb->status = REG_MEMBER_LEFT;
    reg_node_delete(m->cx->state, node);
    log_info("member %s left", node);
}

int reg_members_force_leave(struct reg_members *m, const char *node, bool prune)
{
    struct reg_member *mb = member_get(m, node);

    if (!mb && !reg_node_get(m->cx->state, node))
        return -ENOENT;
    /* Serf's leave intent about a live member: it is only "leaving", and Consul's leader acts on
     * left and failed members alone, so the node keeps its catalog entry. */
    if (mb && mb->status == REG_MEMBER_ALIVE && !prune) {
        mb->status = REG_MEMBER_LEAVING;
        log_info("member %s is leaving (force-leave)", node);
        return 0;
    }
    reg_members_leave(m, node);
    if (prune) {
        char *key = reg_fold(node);
        member_free(smap_del(&m->by_name, key));
        free(key);
    }
    return 0;
}

/*
 * Turns members silent for longer than the failure timeout to failed, and leaving ones (forced
 * out while alive) to left: in Serf a leave intent followed by silence is a departure.
 */
static void on_detector(uv_timer_t *t)
{
    struct reg_members *m = t->data;
    struct reg_cluster_ctx *cx = m->cx;
    uint64_t now = uv_now(cx->loop);
    uint64_t timeout_ms = (uint64_t)(cx->cfg->failure_timeout_ns / DURATION_MS);

    if (!reg_cluster_may_write(cx))
        return; /* a replicated cluster's leader detects failures */
    smap_foreach(&m->by_name, e)
    {
        struct reg_member *mb = e->val;
        if (now - mb->last_seen_ms < timeout_ms)
            continue;
        if (mb->status == REG_MEMBER_LEAVING) {
            reg_members_leave(m, mb->name);
            continue;
        }
        if (mb->status != REG_MEMBER_ALIVE)
            continue;
        mb->status = REG_MEMBER_FAILED;
        log_warn("member %s failed: no heartbeat for %llu ms", mb->name,
                 (unsigned long long)(now - mb->last_seen_ms));
        set_serf_health(cx, mb->name, false);
    }
}

void reg_members_grace(struct reg_members *m)
{
    struct reg_cluster_ctx *cx = m->cx;

    smap_foreach(&cx->state->nodes, e)
    {
        const struct reg_node *n = e->val;
        if (strcasecmp(n->name, cx->cfg->node_name) == 0 || !reg_check_get(n, SERF_CHECK_ID))
            continue;
        char *key = reg_fold(n->name);
        struct reg_member *mb = smap_get(&m->by_name, key);
        free(key);
        if (!mb)
            mb = member_add(m, n->name);
        replace(&mb->id, n->id);
        replace(&mb->addr, n->address);
        mb->status = REG_MEMBER_ALIVE;
        mb->last_seen_ms = uv_now(cx->loop);
    }
}

void reg_members_init(struct reg_members *m, struct reg_cluster_ctx *cx)
{
    memset(m, 0, sizeof(*m));
    m->cx = cx;
    /* Members known before a restart: their nodes carry serfHealth. Give them one failure
     * timeout to be heard from again before they are failed. */
    reg_members_grace(m);
    uv_timer_init(cx->loop, &m->detector);
    m->detector.data = m;
    uv_timer_start(&m->detector, on_detector, DETECTOR_INTERVAL_MS, DETECTOR_INTERVAL_MS);
}

void reg_members_close(struct reg_members *m)
{
    smap_foreach(&m->by_name, e) member_free(e->val);
    smap_free(&m->by_name);
    uv_close((uv_handle_t *)&m->detector, NULL);
}
