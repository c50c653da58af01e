"""A leader's log stays bounded under writes that never pause. The engine keeps the log since
the last snapshot in memory, and a leader snapshots only a state with nothing of its own in
flight, which clients that always have a write outstanding never leave it: its log used to
grow for as long as they wrote. Once the log holds twice the snapshot threshold past its
newest snapshot, the leader makes writes wait until the entries in flight commit and the
snapshot is taken. None is lost: every acknowledged write is there after the leader's kill -9
and restart.
"""

import http.client
import threading

from helpers import HOST, wait_until
from raft_helpers import form, leader_of

THRESHOLD = 16
WRITERS = 8
WRITES = 150  # per writer
# Twice the threshold past the snapshot being taken, which is itself at most twice the
# threshold (and the entries proposed in the turn the log filled) past the one before it.
BOUND = 4 * THRESHOLD + 4 * WRITERS


def raft_stats(server):
    return server.get_json("/v1/agent/self")["Stats"]["raft"]


def snapshot_files(server):
    return [n for n in (server.data_dir / "raft").iterdir()
            if n.name.startswith("snapshot-") and not n.name.endswith(".meta")]


def writer(port, k, acked, errors, stop=None):
    """Writes WRITES keys one after the other (until stop is set); the acknowledged ones go to
    acked, the others, or the connection's failure, to errors."""
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        for i in range(WRITES):
            if stop is not None and stop.is_set():
                break
            key = f"bound/w{k}-{i:04d}"
            conn.request("PUT", f"/v1/kv/{key}", body=b"v")
            r = conn.getresponse()
            if r.read().strip() == b"true" and r.status == 200:
                acked.append(key)
            else:
                errors.append((key, r.status))
    except (OSError, http.client.HTTPException) as e:
        errors.append((k, repr(e)))
    finally:
        conn.close()


def test_leader_log_is_bounded_under_writes_that_never_pause(request, tmp_path, agent_factory):
    servers = form(request, tmp_path, extra=["-raft-snapshot-threshold", str(THRESHOLD)])
    leader = leader_of(servers)
    acked, errors = [], []
    threads = [threading.Thread(target=writer, args=(leader.port, k, acked, errors))
               for k in range(WRITERS)]
    for t in threads:
        t.start()
    longest = 0
    for _ in range(100000):  # bounded: the writers end
        if not any(t.is_alive() for t in threads):
            break
        st = raft_stats(leader)
        longest = max(longest, int(st["last_log_index"]) - int(st["last_snapshot_index"]))
    for t in threads:
        t.join(120)
    assert not errors
    assert len(acked) == WRITERS * WRITES
    assert longest <= BOUND, f"the leader's log ran {longest} entries past its snapshot"
    assert snapshot_files(leader), "the leader took no snapshot"

    leader.kill9()
    leader.start(wait=False)
    leader.wait_ready(timeout=30)
    leader_of(servers)
    want = sorted(acked)

    def restarted_has_all():
        r = leader.get("/v1/kv/bound/?keys&stale")
        return r.status == 200 and sorted(r.json()) == want
    wait_until(restarted_has_all, 60, interval=0.2, what="every acknowledged write")


def test_leader_killed_while_its_log_is_full_loses_no_acknowledged_write(request, tmp_path,
                                                                         agent_factory):
    """kill -9 of the leader in the middle of writes that keep filling its log (each fill
    pauses the writes until a snapshot is taken): the writes in flight fail, none acknowledged
    is lost, and the restarted server comes back with exactly the survivors' registry."""
    servers = form(request, tmp_path, extra=["-raft-snapshot-threshold", str(THRESHOLD)])
    leader = leader_of(servers)
    acked, errors, stop = [], [], threading.Event()
    threads = [threading.Thread(target=writer, args=(leader.port, k, acked, errors, stop))
               for k in range(WRITERS)]
    for t in threads:
        t.start()
    try:
        # Several fills of the log (twice the threshold each) before the kill.
        wait_until(lambda: len(acked) >= 10 * THRESHOLD, 60, what="writes acknowledged")
        leader.kill9()
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    rest = [s for s in servers if s is not leader]
    leader_of(rest).put_true("/v1/kv/bound/after-the-kill", "x")
    leader.start(wait=False)
    leader.wait_ready(timeout=30)

    def keys(server):
        r = server.get("/v1/kv/bound/?keys&stale")
        return sorted(r.json()) if r.status == 200 else []

    def agreed():
        got = [keys(s) for s in servers]
        return got[0] if "bound/after-the-kill" in got[0] and got.count(got[0]) == 3 else None
    final = wait_until(agreed, 60, interval=0.2, what="the three servers to hold one registry")
    assert set(acked) <= set(final), "an acknowledged write was lost"
