"""What a follower and a client agent of a replicated cluster show of it, as a Consul client
sees through any agent (found by running tests/compat through each, `tests/compat/run
-cluster`): the whole member list, and a client agent's own registrations in the catalog by the
time its API call returns."""

from helpers import HOST, wait_until
from raft_helpers import cluster, form, leader_of  # noqa: F401 (fixture)

FAILURE_TIMEOUT_S = 60  # a heartbeat every 20 s: the first one is far beyond FORMED_S
FORMED_S = 10


def members(agent):
    return {m["Name"]: (m["Status"], m["Tags"]["role"]) for m in agent.get_json("/v1/agent/members")}


def client_of(agent_factory, server, node):
    return agent_factory(node=node, server=False,
                         extra_args=["-retry-join", f"{HOST}:{server.port}"])


def test_every_agent_lists_every_member(cluster, agent_factory):
    """Followers and a client agent joined to a follower list the three servers and the client
    agent, all alive, as the leader does (a follower used to list itself alone)."""
    leader = leader_of(cluster)
    follower = next(s for s in cluster if s is not leader)
    web = client_of(agent_factory, follower, "web1")
    want = {s.node: (1, "consul") for s in cluster}
    want["web1"] = (1, "node")
    wait_until(lambda: members(leader) == want, 10, what="the leader to list web1")
    for agent in cluster + [web]:
        assert members(agent) == want, agent.name


def test_every_server_lists_every_server_soon_after_forming(request, tmp_path, agent_factory):
    """A follower announces itself to the leader as soon as it learns of it: it used to wait a
    third of -failure-timeout for its first heartbeat, and until then only the leader was
    listed (here that would be 20 s; the wait is bounded well below it)."""
    servers = form(request, tmp_path, extra=["-failure-timeout", f"{FAILURE_TIMEOUT_S}s"])
    want = {s.node: (1, "consul") for s in servers}

    def all_list_all():
        return all(members(s) == want for s in servers)
    wait_until(all_list_all, FORMED_S, interval=0.1, what="every server to list all three")


def test_client_agent_registration_is_in_the_catalog_when_answered(cluster, agent_factory):
    """A client agent answers a service registration or deregistration once its servers hold
    the change (Consul syncs before answering), so a read right after it sees it."""
    leader = leader_of(cluster)
    follower = next(s for s in cluster if s is not leader)
    web = client_of(agent_factory, follower, "web1")
    wait_until(lambda: "web1" in members(leader), 10, what="web1 joined")

    def catalog(name):
        return [e["ServiceID"] for e in follower.get_json(f"/v1/catalog/service/{name}")]
    for i in range(3):
        web.register_service({"ID": f"web-{i}", "Name": f"svc{i}", "Port": 3000 + i,
                              "Check": {"TTL": "30s"}})
        assert catalog(f"svc{i}") == [f"web-{i}"]
        web.put_ok(f"/v1/agent/check/pass/service:web-{i}")
        health = follower.get_json(f"/v1/health/checks/svc{i}")
        assert [c["Status"] for c in health] == ["passing"]
        web.put_ok(f"/v1/agent/service/deregister/web-{i}")
        assert catalog(f"svc{i}") == []
