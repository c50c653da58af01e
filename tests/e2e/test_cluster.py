"""Client agents and node failure detection (issue 3): one server and two client agents on
loopback, each agent on its own port, as the original's load-balancer and web nodes."""
import time

import pytest

from helpers import wait_until

FAILURE_TIMEOUT = "2s"


@pytest.fixture
def cluster(agent_factory, tmp_path):
    server = agent_factory(node="loadbalancer", extra_args=["-failure-timeout", FAILURE_TIMEOUT])

    def client(node, data_dir=None, start=True):
        return agent_factory(node=node, server=False, data_dir=data_dir, start=start,
                             extra_args=["-retry-join", f"127.0.0.1:{server.port}",
                                         "-failure-timeout", FAILURE_TIMEOUT])

    return server, client


def register_web(agent, sid, port):
    agent.register_service({"ID": sid, "Name": "web", "Port": port, "Tags": ["v1"],
                            "Check": {"CheckID": f"{sid}-ttl", "TTL": "60s",
                                      "Status": "passing"}})


def passing_nodes(agent, service="web"):
    return sorted(e["Node"]["Node"] for e in agent.get_json(f"/v1/health/service/{service}?passing"))


def members(agent):
    return {m["Name"]: m["Status"] for m in agent.get_json("/v1/agent/members")}


def test_client_services_reach_the_catalog(cluster):
    """Services registered with each client agent appear in the server's catalog, passing."""
    server, client = cluster
    web1, web2 = client("web1"), client("web2")
    register_web(web1, "web-1", 3000)
    register_web(web2, "web-2", 3000)
    wait_until(lambda: passing_nodes(server) == ["web1", "web2"], 5, what="both instances")
    entry = next(e for e in server.get_json("/v1/health/service/web") if e["Node"]["Node"] == "web1")
    assert entry["Service"]["ID"] == "web-1"
    assert entry["Node"]["Address"] == "127.0.0.1"
    assert [c["CheckID"] for c in entry["Checks"]] == ["serfHealth", "web-1-ttl"]
    # The client agent's own view is its node only; the catalog is read through the server.
    assert list(web1.get_json("/v1/agent/services")) == ["web-1"]
    assert passing_nodes(web1) == ["web1", "web2"]
    assert sorted(web2.get_json("/v1/catalog/services")) == ["consul", "web"]


def test_members_lists_every_agent(cluster, mesh):
    """/v1/agent/members on the server and through a client: all alive, roles right."""
    import subprocess
    server, client = cluster
    web1 = client("web1")
    client("web2")
    wait_until(lambda: members(server) == {"loadbalancer": 1, "web1": 1, "web2": 1}, 5,
               what="three alive members")
    roles = {m["Name"]: m["Tags"]["role"] for m in web1.get_json("/v1/agent/members")}
    assert roles == {"loadbalancer": "consul", "web1": "node", "web2": "node"}
    out = subprocess.run([mesh, "members", "-http-addr", f"127.0.0.1:{web1.port}"],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:4] == ["Node", "Address", "Status", "Type"]
    assert sorted(l.split()[0] for l in lines[1:]) == ["loadbalancer", "web1", "web2"]
    assert all(l.split()[2] == "alive" for l in lines[1:])


def test_killed_client_fails_and_recovers(cluster, tmp_path):
    """kill -9 a client agent: within the failure timeout its serfHealth goes critical and its
    instances leave ?passing; restarted with its data dir, it comes back with its services."""
    server, client = cluster
    data = tmp_path / "web1-data"
    web1 = client("web1", data_dir=data)
    register_web(web1, "web-1", 3000)
    wait_until(lambda: "web1" in passing_nodes(server), 5, what="web1 passing")
    index = server.get("/v1/health/service/web?passing").index

    web1.kill9()
    killed = time.monotonic()
    # A blocking query on ?passing is woken by the failure.
    r = server.get(f"/v1/health/service/web?passing&index={index}&wait=10s", timeout=15)
    took = time.monotonic() - killed
    assert [e["Node"]["Node"] for e in r.json()] == []
    assert took < 6, f"failure noticed after {took:.1f}s"
    serf = next(c for c in server.get_json("/v1/health/node/web1") if c["CheckID"] == "serfHealth")
    assert serf["Status"] == "critical"
    assert serf["Output"] == "Agent not live or unreachable"
    assert members(server)["web1"] == 4  # failed
    # The instance is still registered, only unhealthy.
    assert [e["Service"]["ID"] for e in server.get_json("/v1/health/service/web")] == ["web-1"]

    web1.start()
    wait_until(lambda: "web1" in passing_nodes(server), 6, what="web1 passing again")
    assert members(server)["web1"] == 1
    assert list(web1.get_json("/v1/agent/services")) == ["web-1"]


def test_graceful_leave_deregisters_the_node(cluster):
    """SIGTERM on a client agent leaves the cluster: its node and services go at once."""
    server, client = cluster
    web1 = client("web1")
    register_web(web1, "web-1", 3000)
    wait_until(lambda: passing_nodes(server) == ["web1"], 5, what="web1 passing")
    assert web1.stop() == 0
    assert server.get_json("/v1/catalog/node/web1") is None
    assert server.get_json("/v1/health/service/web") == []
    assert members(server)["web1"] == 3  # left


def test_local_changes_are_pushed_and_removed(cluster):
    """Deregistering on the client removes the instance from the catalog; a check's status
    change reaches the server."""
    server, client = cluster
    web1 = client("web1")
    register_web(web1, "web-1", 3000)
    register_web(web1, "web-2", 3001)
    wait_until(lambda: len(server.get_json("/v1/catalog/service/web")) == 2, 5, what="two")
    web1.put_ok("/v1/agent/check/fail/web-2-ttl?note=broken")
    wait_until(lambda: [e["Service"]["ID"] for e in
                        server.get_json("/v1/health/service/web?passing")] == ["web-1"], 5,
               what="web-2 failing on the server")
    chk = next(c for c in server.get_json("/v1/health/checks/web") if c["CheckID"] == "web-2-ttl")
    assert chk["Output"] == "broken"
    web1.put_ok("/v1/agent/service/deregister/web-2")
    wait_until(lambda: [e["ServiceID"] for e in server.get_json("/v1/catalog/service/web")]
               == ["web-1"], 5, what="web-2 removed")
    assert all(c["ServiceID"] != "web-2" for c in server.get_json("/v1/health/node/web1"))


def test_blocking_query_through_a_client(cluster):
    """A blocking query sent to a client agent is answered by the server when data changes."""
    from helpers import run_blocking
    server, client = cluster
    web1, web2 = client("web1"), client("web2")
    register_web(web1, "web-1", 3000)
    wait_until(lambda: passing_nodes(server) == ["web1"], 5, what="web1 passing")
    index = web1.get("/v1/health/service/web?passing").index
    result = run_blocking(lambda: web1.get(
        f"/v1/health/service/web?passing&index={index}&wait=20s", timeout=30))
    time.sleep(0.3)
    register_web(web2, "web-2", 3000)
    r, _ = result(timeout=10)
    assert r.status == 200
    assert r.index > index
    assert sorted(e["Node"]["Node"] for e in r.json()) == ["web1", "web2"]


def test_force_leave_a_failed_node(cluster):
    """force-leave removes a failed node: it stays left (alive nodes: test_membership.py)."""
    server, client = cluster
    web1 = client("web1")
    register_web(web1, "web-1", 3000)
    wait_until(lambda: members(server).get("web1") == 1, 5, what="web1 alive")
    web1.kill9()
    wait_until(lambda: members(server)["web1"] == 4, 6, what="web1 failed")
    server.put_ok("/v1/agent/force-leave/web1")
    assert server.get_json("/v1/catalog/node/web1") is None
    assert members(server)["web1"] == 3


def test_cli_leave_and_force_leave(cluster, mesh):
    """`mesh leave` makes a client agent leave and exit; `mesh force-leave` removes a failed
    node."""
    import subprocess
    server, client = cluster
    web1, web2 = client("web1"), client("web2")
    register_web(web1, "web-1", 3000)
    register_web(web2, "web-2", 3000)
    wait_until(lambda: passing_nodes(server) == ["web1", "web2"], 5, what="both passing")

    out = subprocess.run([mesh, "leave", "-http-addr", f"127.0.0.1:{web1.port}"],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "Graceful leave complete"
    assert web1.proc.wait(timeout=10) == 0
    assert members(server)["web1"] == 3
    assert passing_nodes(server) == ["web2"]

    web2.kill9()
    wait_until(lambda: members(server)["web2"] == 4, 6, what="web2 failed")
    out = subprocess.run([mesh, "force-leave", "-http-addr", f"127.0.0.1:{server.port}", "web2"],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "Force leave complete"
    assert server.get_json("/v1/catalog/node/web2") is None
    out = subprocess.run([mesh, "force-leave", "-http-addr", f"127.0.0.1:{server.port}", "nope"],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 1
    assert "No node found with name 'nope'" in out.stderr


def test_lock_released_when_the_holders_node_dies(cluster):
    """A session made through a client agent belongs to its node; when that node fails, the
    session is invalidated, its lock released, and the key can be taken again after the
    lock-delay."""
    server, client = cluster
    web1, web2 = client("web1"), client("web2")
    wait_until(lambda: members(server) == {"loadbalancer": 1, "web1": 1, "web2": 1}, 5,
               what="both clients alive")
    r = web1.put("/v1/session/create", {"Name": "holder", "LockDelay": "1s"})
    assert r.status == 200, r
    holder = r.json()["ID"]
    info = server.get_json(f"/v1/session/info/{holder}")
    assert info[0]["Node"] == "web1"
    assert web1.put(f"/v1/kv/service/web/leader?acquire={holder}", "web1").json() is True
    other = web2.put("/v1/session/create", {"Name": "contender", "LockDelay": "1s"}).json()["ID"]
    assert web2.put(f"/v1/kv/service/web/leader?acquire={other}", "web2").json() is False

    web1.kill9()
    wait_until(lambda: server.get_json(f"/v1/session/info/{holder}") == [], 6,
               what="the holder's session invalidated")
    entry = server.get_json("/v1/kv/service/web/leader")[0]
    assert "Session" not in entry
    # Within the lock-delay nobody may take it; after it, the contender does.
    assert web2.put(f"/v1/kv/service/web/leader?acquire={other}", "web2").json() is False
    wait_until(lambda: web2.put(f"/v1/kv/service/web/leader?acquire={other}", "web2").json(),
               5, what="the contender acquires after the lock-delay")
    assert server.get_json("/v1/kv/service/web/leader")[0]["Session"] == other
