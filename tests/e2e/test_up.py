"""`make up` / `make down` are `mesh up` / `mesh down`: configured by environment variables alone
(MESH_RUN_DIR and the MESH_* ports), the cluster of the README comes up, serves through both web
nodes and goes away with nothing left running. With root, `mesh up -netns` does the same with one
network namespace per node on a bridge, and `down` removes them. The operator commands are in
test_cluster_up.py."""
import json
import os
import shutil
import socket
import subprocess
import urllib.request

import pytest

from helpers import mesh_bin
from cluster_helpers import free_layout
from helpers import SANITIZER_MARKERS, gone


def mesh(*args, env=None, timeout=120):
    return subprocess.run([mesh_bin(), *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def served_nodes(url, n=10):
    nodes = set()
    for _ in range(n):
        with urllib.request.urlopen(url, timeout=5) as r:
            assert r.status == 200
            nodes.add(json.loads(r.read())["node"])
    return nodes


def cluster_pids(run):
    pids = set()
    for pidfile in run.glob("*/*.pid"):
        pids.add(int(pidfile.read_text().split()[0]))
    return pids


def assert_clean_logs(run):
    for log in run.glob("**/*.log"):
        text = log.read_text(errors="replace")
        assert not any(m in text for m in SANITIZER_MARKERS), log


def test_up_from_environment_and_down_stops_everything(tmp_path):
    run = tmp_path / "run"
    p = free_layout()
    env = dict(os.environ, MESH_RUN_DIR=str(run), MESH_HTTP_PORT=str(p["http"]),
               MESH_LB_PORT=str(p["lb"]), MESH_STATS_PORT=str(p["stats"]),
               MESH_WEB_AGENT_PORT=str(p["agents"]), MESH_WEBAPP_PORT=str(p["web"]),
               MESH_DNS_PORT=str(p["dns"]))
    try:
        up = mesh("up", "-check-interval", "1s", env=env)
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"http://127.0.0.1:{p['lb']}/" in up.stdout
        assert served_nodes(f"http://127.0.0.1:{p['lb']}/") == {"web1", "web2"}
        state = json.loads((run / "cluster.json").read_text())
        assert state["mode"] == "loopback"
        assert [n["name"] for n in state["nodes"]] == ["loadbalancer", "web1", "web2"]
        apps = json.loads(mesh("status", "-json", env=env).stdout)["apps"]
        pids = cluster_pids(run) | {a["pid"] for a in apps}
        assert len(pids) == 6, pids  # 3 agents, the lb, 2 webapps
        # the lb answers with configs/errors/503.http, the page the HAProxy template uses too
        lb_pid = (run / "loadbalancer" / "lb.pid").read_text().split()[0]
        argv = open(f"/proc/{lb_pid}/cmdline", "rb").read().split(b"\0")
        assert b"-errorfile-503" in argv, argv
        assert argv[argv.index(b"-errorfile-503") + 1].endswith(b"/configs/errors/503.http")
    finally:
        down = mesh("down", env=env)
    assert down.returncode == 0, down.stderr
    assert "process(es) stopped" in down.stdout
    for pid in pids:
        assert gone(pid), f"process {pid} still running"
    assert str(run) not in subprocess.run(["ps", "-eo", "args"], capture_output=True,
                                          text=True).stdout
    assert_clean_logs(run)


def test_up_rejects_bad_settings(tmp_path):
    env = dict(os.environ, MESH_RUN_DIR=str(tmp_path / "run"), MESH_LB_PORT="http")
    p = mesh("up", env=env)
    assert p.returncode == 1 and "MESH_LB_PORT=http" in p.stderr
    p = mesh("up", "-nodes", "Web_1", "-run-dir", str(tmp_path / "run"))
    assert p.returncode == 1 and "bad node name" in p.stderr
    p = mesh("up", "-lb-port", "x", "-run-dir", str(tmp_path / "run"))
    assert p.returncode == 1 and "invalid value" in p.stderr
    assert not (tmp_path / "run" / "web1").exists()  # nothing started
    p = mesh("down", "-run-dir", str(tmp_path / "run"))
    assert p.returncode == 0 and "not up" in p.stdout


def test_up_checks_every_port_first_and_names_its_owner(tmp_path):
    run = tmp_path / "run"
    ports = free_layout()
    args = ("up", "-run-dir", str(run), "-port-offset", str(ports["offset"]))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ports["lb"]))
        taken.listen()
        p = mesh(*args)
    assert p.returncode == 1
    assert f"port {ports['lb']} (loadbalancer's load balancer) is in use by pid {os.getpid()} " \
        "(python" in p.stderr, p.stderr
    assert not (run / "cluster.json").exists()  # nothing started, nothing recorded
    # DNS moves with the offset, and its UDP side is checked too.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", ports["dns"] + 1))
        p = mesh(*args)
    assert p.returncode == 1
    assert f"port {ports['dns'] + 1} (web1's agent DNS) is in use (UDP) by pid {os.getpid()}" \
        in p.stderr, p.stderr
    p = mesh(*args, "-dns-port", str(ports["lb"]))
    assert p.returncode == 1 and f"port {ports['lb']} is given to both" in p.stderr, p.stderr
    assert str(run) not in subprocess.run(["ps", "-eo", "args"], capture_output=True,
                                          text=True).stdout


def test_up_names_a_file_where_a_directory_goes(tmp_path):
    """A file where the run directory or a node's directory goes fails `up` before anything
    starts, naming that very path (a single mkdir's EEXIST would let the file through)."""
    ports = free_layout()
    cases = [(tmp_path / "a" / "run", tmp_path / "a" / "run"),
             (tmp_path / "b" / "run", tmp_path / "b" / "run" / "web1")]
    for run, in_the_way in cases:
        in_the_way.parent.mkdir(parents=True, exist_ok=True)
        in_the_way.write_text("a file\n")
        try:
            p = mesh("up", "-run-dir", str(run), "-port-offset", str(ports["offset"]),
                     timeout=60)
            assert p.returncode == 1, p.stdout + p.stderr
            assert f"{in_the_way}: exists and is not a directory" in p.stderr, p.stderr
            assert not (run / "cluster.json").exists()  # nothing started, nothing recorded
        finally:
            mesh("down", "-run-dir", str(run))
        assert in_the_way.read_text() == "a file\n"


def layout_ports(p, servers=8):
    """Every port a layout of free_layout may give a cluster (up to 8 servers)."""
    o = p["offset"]
    return {8080 + o, 8404 + o} | {3000 + o + i for i in range(4)} | \
        {3100 + o + i for i in range(4)} | {8300 + o + i for i in range(servers)} | \
        {8500 + o + i for i in range(2 + servers)} | {8600 + o + i for i in range(2 + servers)}


def test_layouts_keep_clear_of_kernel_ports_and_of_other_workers(monkeypatch):
    """A port found free must stay free until `mesh up` binds it: no layout port lies in the
    kernel's ephemeral range (where any process's outgoing connection, or any test's free_port,
    may take it meanwhile), and the clusters of two pytest-xdist workers never share a port.
    (A test's HAProxy once exited on a port taken in between.)"""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        ephemeral = int(f.read().split()[0])
    workers = 3
    ports = []
    for w in range(workers):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", f"gw{w}")
        monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", str(workers))
        mine = set()
        for _ in range(40):
            mine |= layout_ports(free_layout())
        assert max(mine) < ephemeral, f"gw{w}: port {max(mine)} is in the ephemeral range"
        assert min(mine) > 1024, f"gw{w}: port {min(mine)} is privileged"
        ports.append(mine)
    for a in range(workers):
        for b in range(a + 1, workers):
            shared = sorted(ports[a] & ports[b])
            assert not shared, f"gw{a} and gw{b} share {shared[:5]}"


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None,
                    reason="network namespaces need root and iproute2 (ip)")
def test_up_netns_gives_each_node_a_namespace(tmp_path, up_netns_lock):
    run = tmp_path / "run"
    try:
        up = mesh("up", "-netns", "-run-dir", str(run), "-check-interval", "1s")
        assert up.returncode == 0, up.stdout + up.stderr
        assert "http://10.77.0.10:8080/" in up.stdout
        namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True,
                                    text=True).stdout
        for ns in ("mesh-loadbalancer", "mesh-web1", "mesh-web2"):
            assert ns in namespaces
        # Standard ports on each node's own address, reached from the host over the bridge.
        assert served_nodes("http://10.77.0.10:8080/") == {"web1", "web2"}
        with urllib.request.urlopen("http://10.77.0.11:3000/", timeout=5) as r:
            assert json.loads(r.read())["node"] == "web1"
        nodes = json.loads(mesh("nodes", "-json", "-run-dir", str(run)).stdout)
        assert {n["node"]: n["address"] for n in nodes} == {
            "loadbalancer": "10.77.0.10", "web1": "10.77.0.11", "web2": "10.77.0.12"}
        # mesh exec runs inside the node's namespace: its address, its agent on :8500.
        ex = mesh("exec", "-run-dir", str(run), "web2", "--", "ip", "-o", "-4", "addr", "show")
        assert ex.returncode == 0 and "10.77.0.12/" in ex.stdout and "10.77.0.11/" not in ex.stdout
        ex = mesh("exec", "-run-dir", str(run), "web2", "--", "sh", "-c",
                  "echo $CONSUL_HTTP_ADDR; exit 3")
        assert ex.returncode == 3 and ex.stdout == "10.77.0.12:8500\n", ex
    finally:
        down = mesh("down", "-run-dir", str(run))
    assert down.returncode == 0, down.stderr
    assert "3 network namespace(s) removed" in down.stdout
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "mesh-" not in namespaces
    links = subprocess.run(["ip", "link", "show"], capture_output=True, text=True).stdout
    assert "meshbr0" not in links and "mv-" not in links
    assert str(run) not in subprocess.run(["ps", "-eo", "args"], capture_output=True,
                                          text=True).stdout
    assert_clean_logs(run)
