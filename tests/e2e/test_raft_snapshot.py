"""A replicated server restarted from an empty data directory (a lost disk) catches up from
the leader's snapshot (issue 14): the servers snapshot every 16 entries here, so after a few
hundred writes the leader's log no longer starts at the beginning and only a snapshot can
bring the empty server up to date.
"""

import os
import shutil

from helpers import wait_until
from raft_helpers import form, leader_of

WRITES = 300
TRAILING = 128  # entries the engine keeps in its log behind a snapshot
SPREAD_THRESHOLD = 64


def newest_snapshot(server):
    """The index of the newest snapshot in server's log directory (0 when none)."""
    names = os.listdir(server.data_dir / "raft")
    return max((int(n.split("-")[2]) for n in names
                if n.startswith("snapshot-") and not n.endswith(".meta")), default=0)


def last_log_index(server):
    return int(server.get_json("/v1/agent/self")["Stats"]["raft"]["last_log_index"])


def write_until_log_starts_past(leader, index, start):
    """Writes on leader until its newest snapshot has moved its log's start past index."""
    def moved():
        if newest_snapshot(leader) > index + TRAILING:
            return True
        for i in range(16):
            leader.put_true(f"/v1/kv/more/{start[0] + i:05d}", "v")
        start[0] += 16
        return False
    wait_until(moved, 120, interval=0.05, what=f"the leader's log to start past {index}")


def test_follower_with_an_empty_data_dir_catches_up_from_a_snapshot(request, tmp_path,
                                                                    agent_factory):
    cluster = form(request, tmp_path, extra=["-raft-snapshot-threshold", "16"])
    leader = leader_of(cluster)
    lost = next(s for s in cluster if s is not leader)
    lost.stop()
    shutil.rmtree(lost.data_dir)
    for i in range(WRITES):
        leader.put_true(f"/v1/kv/k/{i:04d}", f"v{i}")
    # While the lost server is down, the leader queues what it sends it (the engine tries to
    # connect once a second and delivers the queue then), and every message sent while the
    # leader's log still held its first entries carries the whole log: the lost server could
    # catch up from those alone. Once the log starts past them the leader sends no entries to
    # it, so everything up to the last index then is all such a message can carry; once the
    # log starts past that too, only a snapshot brings the lost server up to date.
    more = [0]
    write_until_log_starts_past(leader, 1, more)
    write_until_log_starts_past(leader, last_log_index(leader), more)
    lost.start(wait=False)
    lost.wait_ready(timeout=30)

    def same_as_leader():
        mine = lost.get("/v1/kv/?recurse&stale")
        return mine.status == 200 and mine.json() == leader.get_json("/v1/kv/?recurse")
    wait_until(same_as_leader, 60, interval=0.2, what="the emptied server to catch up")
    assert "restored from a snapshot" in lost.log_text()
    # It is a full member again: it serves a write made through it.
    lost.put_true("/v1/kv/after", "1")
    assert leader.get("/v1/kv/after?raw").body == b"1"


def snapshot_indexes(server):
    return {int(n.split("-")[2]) for n in os.listdir(server.data_dir / "raft")
            if n.startswith("snapshot-") and not n.endswith(".meta")}


def test_no_two_servers_snapshot_at_the_same_index(request, tmp_path, agent_factory):
    """Every server applies the same entries, so with one threshold all three used to snapshot
    at the same index and at the same moment, and a commit, which needs one follower, waited
    for the quicker of two stalled ones. The servers now share the period out: no index is
    snapshotted by two of them (the threshold here leaves each server two thresholds' worth of
    writes for a snapshot before it misses its turn, even on a busy machine)."""
    cluster = form(request, tmp_path, extra=["-raft-snapshot-threshold", str(SPREAD_THRESHOLD)])
    leader = leader_of(cluster)
    for i in range(5 * SPREAD_THRESHOLD):
        leader.put_true(f"/v1/kv/k/{i:04d}", f"v{i}")
    wait_until(lambda: all(len(snapshot_indexes(s)) >= 2 for s in cluster), 30,
               what="every server to take two snapshots")
    seen = {s.name: snapshot_indexes(s) for s in cluster}
    for a in cluster:
        for b in cluster:
            if a is not b:
                assert not seen[a.name] & seen[b.name], seen
