"""The cluster across hosts (issue 3): three network namespaces made by this test, joined by a
bridge and veth pairs, each with its own address and the standard port 8500, as the original's
VMs. A host cut off with `ip link set down` has its node go critical; it recovers when the link
comes back. Needs root and iproute2; skipped otherwise. Everything is removed afterwards."""
import json
import time
import urllib.request

import pytest

from helpers import SANITIZER_MARKERS, wait_until
from netns_helpers import Hosts, needs_netns

pytestmark = needs_netns

PORT = 8500


@pytest.fixture
def hosts():
    h = Hosts(3)
    yield h
    h.close()


def get(addr, path):
    with urllib.request.urlopen(f"http://{addr}:{PORT}{path}", timeout=5) as r:
        return json.loads(r.read())


def put(addr, path, body):
    req = urllib.request.Request(f"http://{addr}:{PORT}{path}", data=json.dumps(body).encode(),
                                 method="PUT")
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 200


def test_three_hosts_and_a_cut_link(hosts, tmp_path):
    lb = hosts.addr(1)
    hosts.start(1, tmp_path / "lb.log", "-server", "-bootstrap", "-node", "loadbalancer",
                "-bind", lb, "-client", lb, "-failure-timeout", "2s")
    for i, node in ((2, "web1"), (3, "web2")):
        hosts.start(i, tmp_path / f"{node}.log", "-node", node, "-bind", hosts.addr(i),
                    "-client", hosts.addr(i), "-retry-join", lb, "-failure-timeout", "2s")

    def ready(i):
        try:
            return bool(get(hosts.addr(i), "/v1/status/leader"))
        except OSError:
            return False

    for i in (1, 2, 3):
        wait_until(lambda i=i: ready(i), 10, what=f"host {i} answering")
    for i, node in ((2, "web1"), (3, "web2")):
        put(hosts.addr(i), "/v1/agent/service/register",
            {"ID": f"web-{node}", "Name": "web", "Port": 3000,
             "Check": {"TTL": "60s", "Status": "passing"}})

    def passing():
        return sorted((e["Node"]["Node"], e["Node"]["Address"])
                      for e in get(lb, "/v1/health/service/web?passing"))

    wait_until(lambda: passing() == [("web1", hosts.addr(2)), ("web2", hosts.addr(3))], 10,
               what="both web nodes passing with their own addresses")

    hosts.link(2, up=False)
    cut = time.monotonic()
    wait_until(lambda: passing() == [("web2", hosts.addr(3))], 8, what="web1 cut off")
    assert time.monotonic() - cut < 6
    serf = next(c for c in get(lb, "/v1/health/node/web1") if c["CheckID"] == "serfHealth")
    assert serf["Status"] == "critical"

    hosts.link(2, up=True)
    wait_until(lambda: len(passing()) == 2, 10, what="web1 back after the link returned")

    hosts.close()  # stops the agents first, so that their logs are complete
    for log in tmp_path.glob("*.log"):
        text = log.read_text(errors="replace")
        for marker in SANITIZER_MARKERS:
            assert marker not in text, f"{log.name}: sanitizer report"
