"""A replicated server restarted from an empty data directory (a lost disk) catches up from
the leader's snapshot (issue 14): the servers snapshot every 16 entries here, so after a few
hundred writes the leader's log no longer starts at the beginning and only a snapshot can
bring the empty server up to date.
"""

import shutil

from helpers import wait_until
from raft_helpers import form, leader_of

WRITES = 300


def test_follower_with_an_empty_data_dir_catches_up_from_a_snapshot(request, tmp_path,
                                                                    agent_factory):
    cluster = form(request, tmp_path, extra=["-raft-snapshot-threshold", "16"])
    leader = leader_of(cluster)
    lost = next(s for s in cluster if s is not leader)
    lost.stop()
    shutil.rmtree(lost.data_dir)
    for i in range(WRITES):
        leader.put_true(f"/v1/kv/k/{i:04d}", f"v{i}")
    lost.start(wait=False)
    lost.wait_ready(timeout=30)

    def same_as_leader():
        mine = lost.get("/v1/kv/k/?recurse&stale")
        return mine.status == 200 and mine.json() == leader.get_json("/v1/kv/k/?recurse")
    wait_until(same_as_leader, 60, interval=0.2, what="the emptied server to catch up")
    assert "restored from a snapshot" in lost.log_text()
    # It is a full member again: it serves a write made through it.
    lost.put_true("/v1/kv/after", "1")
    assert leader.get("/v1/kv/after?raw").body == b"1"
