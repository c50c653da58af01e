"""The local cluster `mesh up` starts, for the tests that drive it: a free port layout, a
Cluster that runs `mesh` commands against its run directory, traffic under an operator's action,
and a module-scoped `cluster` fixture (import it: `from cluster_helpers import cluster`) that
brings one cluster up for a module and down after it, failing on any sanitizer report in its
logs."""
import json
import os
import random
import socket
import subprocess

import pytest

from helpers import HOST, SANITIZER_MARKERS, mesh_bin, request, wait_until
from lb_helpers import Load


def _port_free(port, udp=False):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


# The layout's ports are these bases plus the offset: webapps from 3000, up to the DNS ports of
# at most 8 servers' agents below 8610.
LAYOUT_LOW, LAYOUT_HIGH = 3000, 8610
# Offsets start here, so that no layout takes the default ports (8500, 8080...) of a cluster a
# developer runs with `make up`.
OFFSET_MIN = 1000


def offset_band(worker=None, workers=None):
    """The offsets (a range, step 10) this test process draws cluster layouts from.

    Every port stays below the kernel's ephemeral range (ip_local_port_range): every outgoing
    connection on the machine takes a local port from there, and so does every free_port(), so
    a port found free there can be taken by anyone's connection before `mesh up` binds it. And
    each pytest-xdist worker (PYTEST_XDIST_WORKER gwN of PYTEST_XDIST_WORKER_COUNT) has a band
    of its own, whose ports no other worker's layout can reach: two workers' clusters never
    race for a port."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        ephemeral = int(f.read().split()[0])
    if worker is None:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
        workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    span = LAYOUT_HIGH - LAYOUT_LOW  # the ports one offset covers
    usable = ephemeral - LAYOUT_HIGH - OFFSET_MIN
    band = usable // max(workers, 1)
    assert band > span + 100, f"{workers} workers leave no port band below {ephemeral}"
    start = OFFSET_MIN + (index % workers) * band
    return range(start, start + band - span, 10)


def free_layout(servers=1):
    """A -port-offset under which every port of the cluster is free now, drawn from this
    process's offset_band: the defaults (registry 8500, DNS 8600 for the server and 8601, 8602
    for the web nodes' agents, lb 8080, stats 8404, web agents 8501, 8502, webapps 3000.. and
    3100..) plus the offset. With servers > 1 (`up -servers N`) also the further servers'
    agents (8503, ...), their DNS (8603, ...) and every server's replication port (8300, ...)."""
    assert servers <= 8, "the layout's ports are counted for 8 servers at most (LAYOUT_HIGH)"
    band = offset_band()
    for _ in range(200):
        o = random.choice(band)
        ports = {"offset": o, "http": 8500 + o, "lb": 8080 + o, "stats": 8404 + o,
                 "agents": 8501 + o, "web": 3000 + o, "dns": 8600 + o, "raft": 8300 + o}
        extra = servers - 1
        needed = [8080 + o, 8404 + o, 8500 + o] + [8501 + o + i for i in range(2 + extra)] + \
            [3000 + o + i for i in range(4)] + [3100 + o + i for i in range(4)] + \
            ([8300 + o + i for i in range(servers)] if servers > 1 else [])
        dns = [8600 + o + i for i in range(3 + extra)]
        if all(_port_free(p) for p in needed + dns) and all(_port_free(p, True) for p in dns):
            return ports
    raise AssertionError(f"no free port layout found in offsets {band}")


def gone(pid):
    """True when pid has exited (a zombie waiting for init to reap it counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] in ("Z", "X")
    except OSError:
        return True


class Cluster:
    def __init__(self, run_dir, servers=1):
        self.run_dir = str(run_dir)
        self.ports = free_layout(servers)

    def mesh(self, *args, timeout=120, check=True):
        p = subprocess.run([mesh_bin(), *args, "-run-dir", self.run_dir], capture_output=True,
                           text=True, timeout=timeout)
        if check:
            assert p.returncode == 0, f"mesh {' '.join(args)}: {p.returncode}\n{p.stdout}{p.stderr}"
        return p

    def json(self, *args):
        return json.loads(self.mesh(*args, "-json").stdout)

    def up(self, *extra):
        return self.mesh("up", "-port-offset", str(self.ports["offset"]), "-failure-timeout", "2s",
                         "-check-interval", "1s", *extra)

    def get(self, path="/"):
        return request(self.ports["lb"], "GET", path, timeout=10)

    def passing(self, node):
        return [i for i in self.json("services") if i["service"] == "web" and
                i["node"] == node and i["status"] == "passing"]

    def apps(self, node):
        return [a for a in self.json("status")["apps"] if a["node"] == node and
                a.get("name") == "web"]

    def pids(self):
        """Every process of the cluster: pidfiles, supervisors' apps, supervisor daemons."""
        pids = set()
        for root, _, files in os.walk(self.run_dir):
            for f in files:
                if f.endswith(".pid") and root.count(os.sep) == self.run_dir.count(os.sep) + 1:
                    try:
                        pids.add(int(open(os.path.join(root, f)).read().split()[0]))
                    except (ValueError, IndexError, OSError):
                        pass
        for a in self.json("status")["apps"]:
            if a.get("pid"):
                pids.add(int(a["pid"]))
        return pids


def under_load(cluster, action, seconds=30.0):
    """Runs action() while a thread sends requests through the lb; returns (results, errors)
    after a short tail of traffic."""
    load = Load(cluster.ports["lb"], threads=2, seconds=seconds).start()
    try:
        wait_until(lambda: len(load.snapshot()) >= 20, 10, what="load to start")
        action()
        n = len(load.snapshot())
        wait_until(lambda: len(load.snapshot()) >= n + 50, 10, what="traffic after the action")
    finally:
        load.stop()
    return load.snapshot(), load.errors


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("cluster") / "run")
    try:
        c.up_result = c.up()
        yield c
    finally:
        subprocess.run([mesh_bin(), "down", "-run-dir", c.run_dir], capture_output=True,
                       timeout=120)
        for root, _, files in os.walk(c.run_dir):
            for f in files:
                if f.endswith(".log"):
                    text = open(os.path.join(root, f), errors="replace").read()
                    assert not any(m in text for m in SANITIZER_MARKERS), (f, text[-3000:])
