"""Helpers for the end-to-end tests of replicated registry servers (issue 14): a server of a
cluster on loopback, a fixture that forms three of them, and a bounded wait for the leader.

Each server is a real `mesh agent -server -bootstrap-expect N` with its own HTTP and replication
ports and data dir, naming the others' HTTP addresses with -retry-join.
"""

import pytest

from helpers import Agent, free_ports, wait_until

EXPECT = 3


class Server(Agent):
    """A server of a replicated cluster (Agent's -bootstrap replaced by -bootstrap-expect)."""

    def __init__(self, tmp_path, i, http_port, raft_port, join_ports, expect=EXPECT, extra=()):
        super().__init__(tmp_path, name=f"s{i}", node=f"server{i}", data_dir=tmp_path / f"s{i}",
                         http_port=http_port, server=False,
                         extra_args=["-server", "-bootstrap-expect", str(expect),
                                     "-server-port", str(raft_port)]
                         + [a for p in join_ports for a in ("-retry-join", f"127.0.0.1:{p}")]
                         + list(extra))
        self.raft_addr = f"127.0.0.1:{raft_port}"

    def leader(self):
        try:
            r = self.get("/v1/status/leader", timeout=2.0)
            return r.json() if r.status == 200 else ""
        except (OSError, ValueError):
            return ""


def form(request, tmp_path, n=EXPECT, extra=(), env=None):
    """n servers started and ready (every one knows a leader); stopped by PID by agent_factory,
    which also fails the test on a sanitizer report in their logs. env: variables added to
    their environment."""
    ports = free_ports(2 * n)
    http, raft = ports[:n], ports[n:]
    servers = [Server(tmp_path, i, http[i], raft[i], [p for p in http if p != http[i]],
                      expect=n, extra=extra)
               for i in range(n)]
    request.node._mesh_agents.extend(servers)
    for s in servers:
        s.env = env
        s.start(wait=False)
    for s in servers:
        s.wait_ready(timeout=30)
    return servers


@pytest.fixture
def cluster(request, tmp_path, agent_factory):
    """Three servers, formed."""
    return form(request, tmp_path)


def leader_of(servers):
    """The live server that every live server names as leader (bounded wait)."""
    def agreed():
        live = [s for s in servers if s.running()]
        names = {s.leader() for s in live}
        if len(names) != 1 or "" in names:
            return None
        addr = names.pop()
        return next((s for s in live if s.raft_addr == addr), None)
    return wait_until(agreed, 30, interval=0.1, what="the servers to agree on a leader")
