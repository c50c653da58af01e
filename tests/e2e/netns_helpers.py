"""Hosts in network namespaces that a test makes itself (root and iproute2): one bridge, and per
host a namespace with its own address on a veth link, each running real `mesh agent`s on the
standard ports. The root namespace reaches every host over the bridge. Names carry the test's
PID, so parallel runs do not meet; close() removes everything, and is idempotent."""
import os
import shutil
import signal
import subprocess

import pytest

from helpers import mesh_bin

needs_netns = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None,
    reason="network namespaces need root and iproute2 (ip)")


def sh(*args):
    subprocess.run(args, check=True, capture_output=True, timeout=10)


class Hosts:
    """hosts 1..n in namespaces on one bridge; the root namespace reaches them on .254."""

    def __init__(self, n):
        tag = os.getpid() % 100000
        self.bridge = f"mkbr{tag}"
        self.subnet = f"10.{200 + tag % 50}.{tag % 250}"
        self.names = [f"mk{tag}h{i}" for i in range(1, n + 1)]
        self.vethes = [f"mk{tag}v{i}" for i in range(1, n + 1)]
        self.procs = []
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        sh("ip", "addr", "add", f"{self.subnet}.254/24", "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")
        for i, (ns, veth) in enumerate(zip(self.names, self.vethes), start=1):
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "link", "set", veth, "master", self.bridge, "up")
            sh("ip", "-n", ns, "addr", "add", f"{self.subnet}.{i}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")

    def addr(self, i):
        return f"{self.subnet}.{i}"

    def start(self, i, log, *args):
        with open(log, "ab") as f:
            p = subprocess.Popen(["ip", "netns", "exec", self.names[i - 1], mesh_bin(), "agent",
                                  *args], stdout=f, stderr=f, stdin=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    def link(self, i, up):
        sh("ip", "link", "set", self.vethes[i - 1], "up" if up else "down")

    def separate(self, i, j, cut=True):
        """Cuts (or mends) the path between hosts i and j both ways, with a blackhole route
        on each side: they no longer reach each other, while the root namespace still reaches
        both, so a test can watch each side of a partition."""
        for a, b in ((i, j), (j, i)):
            sh("ip", "-n", self.names[a - 1], "route", "add" if cut else "del", "blackhole",
               f"{self.addr(b)}/32")

    def close(self):
        """Idempotent: stops the agents by PID, then removes namespaces, links and bridge."""
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait(timeout=10)
        for ns in self.names:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)
        for veth in self.vethes:
            subprocess.run(["ip", "link", "del", veth], capture_output=True, timeout=10)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, timeout=10)
