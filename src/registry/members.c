#include "registry/members.h"

#include "registry/agent_internal.h"

/* Serf status codes. */
enum member_status {
    MEMBER_NONE = 0,
    MEMBER_ALIVE,
    MEMBER_LEAVING,
    MEMBER_LEFT,
    MEMBER_FAILED,
};

json_t *members_local(const struct reg_agent *a)
{
    const struct reg_node *node = reg_node_get(&a->state, a->cfg.node_name);
    const char *addr = node ? node->address : "127.0.0.1";
    json_t *tags = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "role",
                             a->cfg.server ? "consul" : "node", "dc", a->cfg.datacenter, "port",
                             "8300", "id", a->node_id, "build", MESH_VERSION ":meshkit", "vsn", "2",
                             "vsn_min", "2", "vsn_max", "3", "raft_vsn", "3", "segment", "");

    if (a->cfg.bootstrap)
        json_object_set_new(tags, "bootstrap", json_string("1"));
    return json_pack("{s:s, s:s, s:i, s:o, s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "Name",
                     a->cfg.node_name, "Addr", addr, "Port", 8301, "Tags", tags, "Status",
                     a->leaving ? MEMBER_LEAVING : MEMBER_ALIVE, "ProtocolMin", 1, "ProtocolMax", 5,
                     "ProtocolCur", 2, "DelegateMin", 2, "DelegateMax", 5, "DelegateCur", 4);
}
