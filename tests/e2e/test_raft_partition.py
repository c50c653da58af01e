"""A partition of replicated registry servers (issue 14), in network namespaces this test makes:
three servers, each in its own namespace with its own address, and the leader cut off from the
other two (blackhole routes both ways; the test still reaches every side over the bridge).

- The cut-off leader acknowledges no write (each times out or fails, none succeeds) and steps
  down; a stale read there answers, with no known leader and an X-Consul-LastContact that grows.
- The majority elects a leader of its own and goes on taking writes.
- Once the cut is mended, the old leader follows the majority's history: every key written on
  the majority is on every server at the same ModifyIndex, and the writes the cut-off leader
  took are nowhere.

Needs root and iproute2; skipped otherwise. Every wait is bounded; everything is removed."""
import http.client
import json
import threading

import pytest

from helpers import SANITIZER_MARKERS, wait_until
from netns_helpers import Hosts, needs_netns

pytestmark = needs_netns

API, RAFT = 8500, 8300
N = 3


def call(addr, method, path, body=None, timeout=5.0):
    """(status, headers, body) of one request to a server's API at addr:8500."""
    c = http.client.HTTPConnection(addr, API, timeout=timeout)
    try:
        c.request(method, path, body=body)
        r = c.getresponse()
        return r.status, r.headers, r.read()
    finally:
        c.close()


def try_call(addr, method, path, body=None, timeout=5.0):
    """As call, None when the server does not answer (cut off, or restarting)."""
    try:
        return call(addr, method, path, body, timeout)
    except OSError:
        return None


@pytest.fixture
def servers(tmp_path):
    hosts = Hosts(N)
    try:
        for i in range(1, N + 1):
            joins = [a for j in range(1, N + 1) if j != i
                     for a in ("-retry-join", f"{hosts.addr(j)}:{API}")]
            hosts.start(i, tmp_path / f"s{i}.log", "-server", "-bootstrap-expect", str(N),
                        "-node", f"s{i}", "-bind", hosts.addr(i), "-client", "0.0.0.0",
                        "-data-dir", str(tmp_path / f"s{i}"), "-failure-timeout", "2s",
                        "-log-level", "debug", *joins)
        yield hosts
    finally:
        hosts.close()  # stops the agents first, so that their logs are complete
    for log in tmp_path.glob("s*.log"):
        text = log.read_text(errors="replace")
        assert not any(m in text for m in SANITIZER_MARKERS), (log.name, text[-3000:])


def leader_seen_by(hosts, i):
    """The host number server i names as leader, 0 for none (or no answer)."""
    r = try_call(hosts.addr(i), "GET", "/v1/status/leader", timeout=2)
    if not r or r[0] != 200:
        return 0
    addr = json.loads(r[2])
    return next((j for j in range(1, N + 1) if addr == f"{hosts.addr(j)}:{RAFT}"), 0)


def agreed_leader(hosts, among):
    seen = {leader_seen_by(hosts, i) for i in among}
    leader = seen.pop() if len(seen) == 1 else 0
    return leader if leader in among else 0


def raft_state(hosts, i):
    r = try_call(hosts.addr(i), "GET", "/v1/agent/self", timeout=2)
    return json.loads(r[2])["Stats"]["raft"]["state"] if r and r[0] == 200 else None


def put(hosts, i, key, timeout=10.0):
    """True only for an acknowledged write; the status and body, or the error, otherwise."""
    try:
        st, _, body = call(hosts.addr(i), "PUT", f"/v1/kv/{key}", b"v", timeout)
    except OSError as e:
        return repr(e)
    return True if st == 200 and body.strip() == b"true" else (st, body[:200])


def modify_indexes(hosts, i):
    """{key: ModifyIndex} of every key in server i's own state, or None."""
    r = try_call(hosts.addr(i), "GET", "/v1/kv/?recurse&stale", timeout=2)
    if not r or r[0] not in (200, 404):
        return None
    return {e["Key"]: e["ModifyIndex"] for e in json.loads(r[2] or b"[]")}


def last_contact(hosts, i):
    """(KnownLeader, LastContact) of a stale read on server i, or None. (A leader that lost
    its leadership with writes in flight restarts and, until a leader tells it what is
    committed, holds only what its last snapshot has: the read answers, maybe empty.)"""
    r = try_call(hosts.addr(i), "GET", "/v1/catalog/services?stale", timeout=2)
    if not r or r[0] != 200:
        return None
    return r[1]["X-Consul-KnownLeader"], int(r[1]["X-Consul-LastContact"])


def test_the_cut_off_leader_steps_down_and_converges_to_the_majority(servers):
    hosts = servers
    everyone = list(range(1, N + 1))
    old = wait_until(lambda: agreed_leader(hosts, everyone), 30, interval=0.1,
                     what="the three servers to agree on a leader")
    majority = [i for i in everyone if i != old]
    assert put(hosts, old, "before") is True
    wait_until(lambda: all("before" in (modify_indexes(hosts, i) or {}) for i in everyone), 15,
               what="the first write on every server")

    for i in majority:
        hosts.separate(old, i)
    # A write the cut-off leader takes can never be committed: it must not be acknowledged.
    minority = {}
    writer = threading.Thread(target=lambda: minority.update(first=put(hosts, old, "minority-1",
                                                                      timeout=30)))
    writer.start()

    new = wait_until(lambda: agreed_leader(hosts, majority), 30, interval=0.1,
                     what="the majority to elect a leader of its own")
    wait_until(lambda: raft_state(hosts, old) in ("Follower", "Candidate"), 30, interval=0.1,
               what="the cut-off leader to step down")
    writer.join(timeout=40)
    assert not writer.is_alive()
    assert minority["first"] is not True, minority
    # Once it no longer leads, a write there waits for a leader it cannot reach, and fails.
    assert put(hosts, old, "minority-2", timeout=30) is not True

    written = [f"majority-{k}" for k in range(10)]
    for k, key in enumerate(written):
        target = majority[k % 2]  # on the new leader, and forwarded to it by the other
        assert put(hosts, target, key) is True, (target, key)

    # The cut-off side still answers stale reads, saying it knows no leader and since when.
    first = wait_until(lambda: last_contact(hosts, old), 15, what="a stale read on the old leader")
    assert first[0] == "false", first
    wait_until(lambda: (last_contact(hosts, old) or ("", 0))[1] > first[1], 10,
               what="X-Consul-LastContact to grow")

    for i in majority:
        hosts.separate(old, i, cut=False)
    wait_until(lambda: agreed_leader(hosts, everyone), 60, interval=0.1,
               what="all three to follow one leader after the cut is mended")

    def converged():
        views = [modify_indexes(hosts, i) for i in everyone]
        if any(v is None for v in views) or any(v != views[0] for v in views):
            return None
        return views[0]

    keys = wait_until(converged, 60, interval=0.2,
                      what="every server to hold the same keys at the same ModifyIndex")
    assert set(written) | {"before"} <= set(keys), keys
    assert not {"minority-1", "minority-2"} & set(keys), keys
    assert new in majority
