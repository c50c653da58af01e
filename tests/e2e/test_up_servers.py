"""`mesh up -servers 3` (issue 14): the registry replicated over three servers, on the
loadbalancer node and on nodes server2 and server3, the rest of the cluster as with one. `mesh
status` shows each server's Raft state (leader or follower, term, commit and applied index);
`mesh kill-node` on the leader's node leaves the others to elect a new one, which `status` shows,
while the load balancer keeps serving and writes keep being acknowledged; `revive-node` brings
the server back and it catches up. Every server's own node is in the catalog with its "consul"
service on its replication port. With root, the same with a network namespace per node."""
import json
import os
import shutil
import subprocess
import urllib.request

import pytest

from cluster_helpers import Cluster, gone
from helpers import SANITIZER_MARKERS, mesh_bin, request, wait_until

SERVERS = ["loadbalancer", "server2", "server3"]


def assert_clean_logs(run_dir):
    for root, _, files in os.walk(run_dir):
        for f in files:
            if f.endswith(".log"):
                text = open(os.path.join(root, f), errors="replace").read()
                assert not any(m in text for m in SANITIZER_MARKERS), (f, text[-3000:])


def servers(c):
    """`mesh status -json`'s servers, by node."""
    return {s["node"]: s for s in c.json("status")["servers"]}


def settled(c, running):
    """The servers' rows once the running ones agree: one leader, the same term, and every
    one's applied index at the leader's commit index; None before."""
    rows = servers(c)
    live = [rows[n] for n in running]
    leaders = [r for r in live if r["state"] == "leader"]
    if len(leaders) != 1 or any(r["state"] not in ("leader", "follower") for r in live):
        return None
    if len({r["term"] for r in live}) != 1:
        return None
    if any(r["applied_index"] != leaders[0]["commit_index"] for r in live):
        return None
    return rows


def leader_node(rows):
    return next(n for n, r in rows.items() if r["state"] == "leader")


def http_get(addr, path):
    with urllib.request.urlopen(f"http://{addr}{path}", timeout=5) as r:
        return json.loads(r.read())


def http_put(addr, path, body):
    req = urllib.request.Request(f"http://{addr}{path}", data=body.encode(), method="PUT")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def check_servers_in_catalog(c, rows):
    """Every server answers (?stale: from its own state) with all three servers' nodes, each
    with a passing serfHealth and its "consul" service on its replication port."""
    state = json.load(open(os.path.join(c.run_dir, "cluster.json")))
    raft_port = {n["name"]: n["server_port"] for n in state["nodes"] if n["server"]}
    assert sorted(raft_port) == SERVERS

    def complete(addr):
        nodes = {n["Node"] for n in http_get(addr, "/v1/catalog/nodes?stale")}
        consul = {e["Node"]: e["ServicePort"]
                  for e in http_get(addr, "/v1/catalog/service/consul?stale")}
        return set(SERVERS) <= nodes and consul == raft_port

    for name, row in rows.items():
        wait_until(lambda addr=row["address"]: complete(addr), 20,
                   what=f"every server's node in {name}'s catalog")
    serf = http_get(rows["server3"]["address"], "/v1/health/node/server2")
    assert [(h["CheckID"], h["Status"]) for h in serf] == [("serfHealth", "passing")]


def run_servers_scenario(c, lb_url):
    """The scenario shared by loopback and -netns, on a cluster that is up."""
    rows = wait_until(lambda: settled(c, SERVERS), 30, what="three settled servers")
    assert sorted(rows) == SERVERS
    assert all(r["commit_index"] > 0 for r in rows.values()), rows
    text = c.mesh("status").stdout
    assert "Registry servers" in text and "leader" in text and "follower" in text, text
    check_servers_in_catalog(c, rows)

    # Kill the leader's node: the others elect one of themselves; status shows it.
    old = leader_node(rows)
    killed = json.loads(c.mesh("kill-node", old, "-json").stdout)
    assert killed["node"] == old and killed["leader"] in set(SERVERS) - {old}, killed
    rows = wait_until(lambda: settled(c, set(SERVERS) - {old}), 30, what="a new leader")
    assert rows[old]["state"] == "down"
    assert leader_node(rows) == killed["leader"]
    text = c.mesh("status").stdout
    assert f"{old} " in text and "down" in text, text

    # The registry still takes writes (through a web node's client agent) and the lb serves.
    web1 = next(n for n in json.load(open(os.path.join(c.run_dir, "cluster.json")))["nodes"]
                if n["name"] == "web1")
    assert http_put(f"{web1['addr']}:{web1['agent_port']}", "/v1/kv/after-kill", "v") is True
    with urllib.request.urlopen(lb_url, timeout=10) as r:
        assert r.status == 200

    # Revived, the server rejoins as a follower and catches up (the write above included).
    c.mesh("revive-node", old)
    rows = wait_until(lambda: settled(c, SERVERS), 30, what="the revived server caught up")
    assert rows[old]["state"] == "follower"
    entry = http_get(rows[old]["address"], "/v1/kv/after-kill?stale")
    assert entry[0]["Key"] == "after-kill"


def pids_of(c):
    pids = set()
    for root, _, files in os.walk(c.run_dir):
        for f in files:
            if f.endswith(".pid") and root.count(os.sep) == c.run_dir.count(os.sep) + 1:
                pids.add(int(open(os.path.join(root, f)).read().split()[0]))
    return pids


def test_up_with_three_servers_on_loopback(tmp_path):
    c = Cluster(tmp_path / "run", servers=3)
    try:
        up = c.up("-servers", "3")
        assert "replicated over 3 servers" in up.stdout, up.stdout
        state = json.load(open(os.path.join(c.run_dir, "cluster.json")))
        assert [n["name"] for n in state["nodes"]] == ["loadbalancer", "web1", "web2",
                                                       "server2", "server3"]
        assert [n["server_port"] for n in state["nodes"] if n["server"]] == \
            [c.ports["raft"], c.ports["raft"] + 1, c.ports["raft"] + 2]
        run_servers_scenario(c, f"http://127.0.0.1:{c.ports['lb']}/")
        assert request(c.ports["lb"], "GET", "/").status == 200
        pids = pids_of(c)
    finally:
        down = c.mesh("down", check=False)
    assert down.returncode == 0, down.stderr
    for pid in pids:
        assert gone(pid), f"process {pid} still running"
    assert_clean_logs(c.run_dir)


def test_up_servers_rejects_an_even_count(tmp_path):
    run = tmp_path / "run"
    p = subprocess.run([mesh_bin(), "up", "-servers", "2", "-run-dir", str(run)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "-servers 2: expected 1, 3 or 5" in p.stderr, p.stderr
    p = subprocess.run([mesh_bin(), "up", "-servers", "3", "-nodes", "web1,server2",
                        "-run-dir", str(run)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and '"server2" is the name of a server node' in p.stderr, p.stderr
    assert not (run / "cluster.json").exists()  # nothing started


def test_kill_node_refuses_the_only_server(tmp_path):
    """With one server, killing it would stop the registry: kill-node says so and does not."""
    c = Cluster(tmp_path / "run")
    try:
        c.up()
        p = c.mesh("kill-node", "loadbalancer", check=False)
        assert p.returncode == 1 and "the only registry server" in p.stderr, p.stderr
        rows = servers(c)
        assert list(rows) == ["loadbalancer"] and rows["loadbalancer"]["state"] == "leader"
    finally:
        c.mesh("down", check=False)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None,
                    reason="network namespaces need root and iproute2 (ip)")
def test_up_with_three_servers_in_namespaces(tmp_path, up_netns_lock):
    c = Cluster(tmp_path / "run", servers=3)
    try:
        c.mesh("up", "-netns", "-servers", "3", "-failure-timeout", "2s", "-check-interval", "1s")
        namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True,
                                    text=True).stdout
        for ns in ("mesh-loadbalancer", "mesh-server2", "mesh-server3", "mesh-web1"):
            assert ns in namespaces
        rows = wait_until(lambda: settled(c, SERVERS), 30, what="three settled servers")
        # Each server on its own address, with the standard ports.
        assert {n: r["address"] for n, r in rows.items()} == {
            "loadbalancer": "10.77.0.10:8500", "server2": "10.77.0.13:8500",
            "server3": "10.77.0.14:8500"}
        run_servers_scenario(c, "http://10.77.0.10:8080/")
    finally:
        down = c.mesh("down", check=False)
    assert down.returncode == 0, down.stderr
    assert "5 network namespace(s) removed" in down.stdout, down.stdout
    assert_clean_logs(c.run_dir)


def test_up_secure_with_three_servers(tmp_path):
    """-secure: the API is HTTPS only with client certificates, so the servers speak HTTPS to
    each other too (formation, forwarding, heartbeats), with their own certificate and the
    agent token under default-deny ACLs."""
    c = Cluster(tmp_path / "run", servers=3)
    try:
        c.up("-secure", "-servers", "3")
        rows = wait_until(lambda: settled(c, SERVERS), 30, what="three settled servers")
        assert all(r["commit_index"] > 0 for r in rows.values()), rows
        nodes = {n["node"]: n["status"] for n in c.json("status")["nodes"]}
        assert all(nodes.get(s) == "alive" for s in SERVERS), nodes
        old = leader_node(rows)
        killed = json.loads(c.mesh("kill-node", old, "-json").stdout)
        assert killed["leader"] in set(SERVERS) - {old}, killed
        c.mesh("revive-node", old)
        rows = wait_until(lambda: settled(c, SERVERS), 30, what="the revived server caught up")
        assert rows[old]["state"] == "follower"
    finally:
        down = c.mesh("down", check=False)
    assert down.returncode == 0, down.stderr
    assert_clean_logs(c.run_dir)
