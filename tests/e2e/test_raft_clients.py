"""Client agents of a replicated cluster (issue 14): they learn every server from the one they
joined, and when theirs dies they move to another, so that writes, blocking queries, `mesh lb`
and the CLI going through the client agent keep working across the loss of the leader.
"""

import subprocess
import threading

from helpers import HOST, wait_until
from lb_helpers import backends, lb_factory, spread  # noqa: F401 (fixtures)
from raft_helpers import cluster, leader_of  # noqa: F401 (fixture)


def known_servers(agent):
    return int(agent.get_json("/v1/agent/self")["Stats"]["consul"]["known_servers"])


def register(agent, sid, backend):
    agent.register_service({"ID": sid, "Name": "web", "Address": HOST, "Port": backend.port,
                            "Check": {"TTL": "60s"}})
    agent.put_ok(f"/v1/agent/check/pass/service:{sid}")


def try_put(agent, path, body):
    try:
        r = agent.put(path, body, timeout=10)
        return r.status == 200 and r.json() is True
    except (OSError, ValueError):
        return False


def spread_once_up(port, n):
    """spread, or None while the lb still answers 503 (it has not yet heard of a backend)."""
    try:
        return spread(port, n)
    except AssertionError:
        return None


def test_client_agent_moves_to_another_server_when_its_server_dies(
        cluster, agent_factory, backends, lb_factory, mesh):
    leader = leader_of(cluster)
    # Joined through the leader alone: the others it can only have learned from it.
    client = agent_factory(node="web1", server=False,
                           extra_args=["-retry-join", f"127.0.0.1:{leader.port}"])
    wait_until(lambda: known_servers(client) == 3, 20, what="the client to know three servers")
    b1, b2 = backends(2)
    register(client, "web-1", b1)
    lb = lb_factory(["-service", "web", "-registry-addr", f"{HOST}:{client.port}"])
    wait_until(lambda: spread_once_up(lb.port, 4) == {str(b1.port): 4}, 20,
               what="lb routing to web-1")
    client.put_true("/v1/kv/before", "1")

    leader.kill9()

    # Writes through the client agent work again once it moved and a leader is elected.
    wait_until(lambda: try_put(client, "/v1/kv/after", "2"), 30, interval=0.2,
               what="a write through the client agent after its server died")
    new = leader_of(cluster)
    assert new is not leader
    assert new.get("/v1/kv/after?raw").body == b"2"
    # A blocking query through it waits, and wakes on a write made elsewhere.
    index = client.get("/v1/kv/watched").index
    result = {}

    def block():
        result["r"] = client.get(f"/v1/kv/watched?index={index}&wait=30s", timeout=40)
    t = threading.Thread(target=block)
    t.start()
    new.put_true("/v1/kv/watched", "woke")
    t.join(40)
    assert result["r"].status == 200 and result["r"].index > index
    # The CLI through the client agent.
    out = subprocess.run([mesh, "kv", "put", "-http-addr", f"127.0.0.1:{client.port}", "cli",
                          "3"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert new.get("/v1/kv/cli?raw").body == b"3"
    # The client's services are the cluster's, and lb follows a change made after the loss.
    register(client, "web-2", b2)
    wait_until(lambda: set(spread(lb.port, 8)) == {str(b1.port), str(b2.port)}, 30,
               what="lb routing to web-1 and web-2")
    assert lb.running()

