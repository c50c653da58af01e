"""What the last server of three answers once the other two were killed (no quorum, no leader),
as a Consul server does: a client that polls the cluster's state during an outage gets the
server's own view at once from the agent and status endpoints and from ?stale reads, and only
the calls that need a leader wait for one (up to 7 s) and fail with 500 "No cluster leader".

A follower used to forward /v1/agent/members to the leader even with none elected, so it too
waited 7 s and failed; Consul answers it from the agent's own member list.
"""

from helpers import wait_until
from raft_helpers import form, leader_of

READ_TIMEOUT = 30  # generous: a call that waits for a leader fails with 500, not a timeout


def survivor_of(request, tmp_path):
    """Three servers formed, two of them (the leader among them) killed with kill -9; the
    third once it knows no leader."""
    servers = form(request, tmp_path)
    leader = leader_of(servers)
    follower = next(s for s in servers if s is not leader)
    other = next(s for s in servers if s is not leader and s is not follower)
    assert follower.put("/v1/kv/before", b"v").status == 200
    names = {s.node for s in servers}

    def survivor_holds_all():
        nodes = follower.get("/v1/catalog/nodes?stale")
        return (nodes.status == 200 and {n["Node"] for n in nodes.json()} == names
                and follower.get("/v1/kv/before?stale").status == 200)
    wait_until(survivor_holds_all, 30, interval=0.05,
               what="the survivor to hold the write and every server's node")
    leader.kill9()
    other.kill9()
    wait_until(lambda: follower.leader() == "", 30, interval=0.1,
               what="the survivor to know no leader")
    return follower, [leader, other], servers


def test_agent_and_status_endpoints_answer_without_a_leader(request, tmp_path, agent_factory):
    s, dead, servers = survivor_of(request, tmp_path)

    r = s.get("/v1/status/leader", timeout=READ_TIMEOUT)
    assert (r.status, r.json()) == (200, "")
    r = s.get("/v1/status/peers", timeout=READ_TIMEOUT)
    assert r.status == 200 and sorted(r.json()) == sorted(x.raft_addr for x in servers)

    r = s.get("/v1/agent/self", timeout=READ_TIMEOUT)
    assert r.status == 200 and r.json()["Config"]["NodeName"] == s.node
    for path in ("/v1/agent/services", "/v1/agent/checks"):
        r = s.get(path, timeout=READ_TIMEOUT)
        assert (r.status, r.json()) == (200, {}), path

    r = s.get("/v1/agent/members", timeout=READ_TIMEOUT)
    assert r.status == 200, f"/v1/agent/members: {r!r}"
    names = {m["Name"]: m["Status"] for m in r.json()}
    assert names[s.node] == 1 and {x.node for x in servers} <= set(names)

    # Its own view of the others: the killed servers are failed once it stops hearing of them.
    def killed_failed():
        r = s.get("/v1/agent/members", timeout=READ_TIMEOUT)
        st = {m["Name"]: m["Status"] for m in r.json()} if r.status == 200 else {}
        return all(st.get(x.node) == 4 for x in dead) and st.get(s.node) == 1
    wait_until(killed_failed, 60, interval=0.5, what="the killed servers listed as failed")


def test_stale_reads_answer_and_say_no_leader(request, tmp_path, agent_factory):
    s, _, servers = survivor_of(request, tmp_path)

    for path in ("/v1/catalog/services?stale", "/v1/catalog/nodes?stale",
                 "/v1/health/service/consul?stale", "/v1/kv/before?stale",
                 "/v1/operator/raft/configuration?stale"):
        r = s.get(path, timeout=READ_TIMEOUT)
        assert r.status == 200, f"{path}: {r!r}"
        if not path.startswith("/v1/operator"):
            assert r.headers.get("X-Consul-KnownLeader") == "false", path
            assert int(r.headers.get("X-Consul-LastContact")) > 0, path
    assert {n["Node"] for n in s.get_json("/v1/catalog/nodes?stale")} == \
        {x.node for x in servers}

    # What needs a leader still fails, as Consul's does, after waiting for one.
    for method, path in (("GET", "/v1/catalog/services"), ("PUT", "/v1/kv/after")):
        r = s.req(method, path, body=b"v" if method == "PUT" else None, timeout=READ_TIMEOUT)
        assert r.status == 500 and b"No cluster leader" in r.body, f"{method} {path}: {r!r}"
