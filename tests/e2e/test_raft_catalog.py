"""Every server of a replicated cluster is in the catalog (issue 14), as Consul's leader keeps
each server's node with its "consul" service: a follower announces itself to the leader as a
client agent does, with its replication port, and the leader fails it (serfHealth critical)
when it falls silent. A follower whose node the log has not brought yet still describes itself
(/v1/agent/self)."""

from helpers import wait_until
from raft_helpers import form, leader_of


def catalog(server):
    """(nodes, {node: consul service port}) as server's own state has them."""
    nodes = {n["Node"] for n in server.get_json("/v1/catalog/nodes?stale")}
    ports = {e["Node"]: e["ServicePort"]
             for e in server.get_json("/v1/catalog/service/consul?stale")}
    return nodes, ports


def serf_status(server, node):
    checks = server.get_json(f"/v1/health/node/{node}?stale")
    return next((c["Status"] for c in checks if c["CheckID"] == "serfHealth"), None)


def test_every_server_is_in_the_catalog_and_a_dead_one_fails(request, tmp_path, agent_factory):
    servers = form(request, tmp_path, extra=("-failure-timeout", "2s"))
    for s in servers:  # at once, before any follower's node can have arrived through the log
        r = s.get("/v1/agent/self")
        assert r.status == 200, (s.node, r)
        assert r.json()["Stats"]["raft"]["state"] in ("Leader", "Follower", "Candidate")
    want_nodes = {s.node for s in servers}
    want_ports = {s.node: int(s.raft_addr.rsplit(":", 1)[1]) for s in servers}
    for s in servers:
        wait_until(lambda s=s: catalog(s) == (want_nodes, want_ports), 20,
                   what=f"every server's node and consul service on {s.node}")
    leader = leader_of(servers)
    follower = next(s for s in servers if s is not leader)
    members = {m["Name"]: m for m in leader.get_json("/v1/agent/members")}
    assert members[follower.node]["Tags"]["role"] == "consul"
    assert members[follower.node]["Status"] == 1  # alive

    follower.kill9()
    wait_until(lambda: serf_status(leader, follower.node) == "critical", 15,
               what="the leader to fail the silent follower")
    other = next(s for s in servers if s is not leader and s is not follower)
    wait_until(lambda: serf_status(other, follower.node) == "critical", 15,
               what="the failure replicated to the other follower")
    assert serf_status(leader, other.node) == "passing"
    members = {m["Name"]: m for m in leader.get_json("/v1/agent/members")}
    assert members[follower.node]["Status"] == 4  # failed
