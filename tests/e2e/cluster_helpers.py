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


def free_layout(servers=1):
    """A -port-offset under which every port of the cluster is free now: the defaults (registry
    8500, DNS 8600 for the server and 8601, 8602 for the web nodes' agents, lb 8080, stats 8404,
    web agents 8501, 8502, webapps 3000.. and 3100..) plus the offset. With servers > 1 (`up
    -servers N`) also the further servers' agents (8503, ...), their DNS (8603, ...) and every
    server's replication port (8300, ...)."""
    for _ in range(200):
        o = random.randrange(10000, 50000, 10)
        ports = {"offset": o, "http": 8500 + o, "lb": 8080 + o, "stats": 8404 + o,
                 "agents": 8501 + o, "web": 3000 + o, "dns": 8600 + o, "raft": 8300 + o}
        extra = servers - 1
        needed = [8080 + o, 8404 + o, 8500 + o] + [8501 + o + i for i in range(2 + extra)] + \
            [3000 + o + i for i in range(4)] + [3100 + o + i for i in range(4)] + \
            ([8300 + o + i for i in range(servers)] if servers > 1 else [])
        dns = [8600 + o + i for i in range(3 + extra)]
        if all(_port_free(p) for p in needed + dns) and all(_port_free(p, True) for p in dns):
            return ports
    raise AssertionError("no free port layout found")


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
