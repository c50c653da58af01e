"""A server of a three-server cluster whose data directory was damaged while it was down (issue
14): it refuses to start, naming the directory and the file and changing nothing, and once its
operator moves the directory aside as the message says, it catches up from the others. It never
crashes, never drops entries it stored, and never serves an empty registry as the cluster's.

The servers snapshot every 16 entries here, so a follower's directory holds closed segments and
snapshots to damage.
"""

import os
import shutil

import pytest

from helpers import REPO, wait_until
from raft_helpers import form, leader_of

WRITES = 40
# libraft 0.15 leaks what it loaded when a damaged file stops it (see the file).
LSAN_ENV = {"LSAN_OPTIONS": f"suppressions={REPO}/tests/e2e/fixtures/lsan-libraft.supp"}


def files(raft):
    return sorted(f for f in os.listdir(raft) if not f.startswith("."))


def flip(path, at=None):
    data = bytearray(path.read_bytes())
    data[len(data) // 2 if at is None else at] ^= 0xFF
    path.write_bytes(bytes(data))


def last_closed_segment(raft):
    return raft / [f for f in files(raft) if f[0].isdigit()][-1]


def newest_snapshot(raft):
    return raft / [f for f in files(raft) if f.startswith("snapshot-") and "." not in f][-1]


def truncate_segment(raft):
    seg = last_closed_segment(raft)
    os.truncate(seg, seg.stat().st_size // 2)
    return seg.name


def flip_segment(raft):
    seg = last_closed_segment(raft)
    flip(seg)
    return seg.name


def flip_snapshot(raft):
    snap = newest_snapshot(raft)
    flip(snap)
    return snap.name


def truncate_snapshot(raft):
    # libraft 0.15 alone decompresses a frame cut short forever, without a word.
    snap = newest_snapshot(raft)
    os.truncate(snap, snap.stat().st_size // 2)
    return snap.name


def flip_snapshot_meta(raft):
    meta = raft / (newest_snapshot(raft).name + ".meta")
    flip(meta)
    return meta.name


def delete_metadata(raft):
    os.unlink(raft / "metadata1")
    os.unlink(raft / "metadata2")
    return "metadata1"


def cut_metadata(raft):
    # The engine takes a metadata file cut short for one never written: both so is a lost vote.
    os.truncate(raft / "metadata1", 4)
    os.truncate(raft / "metadata2", 4)
    return "metadata1"


def read_only(raft):
    os.chmod(raft, 0o500)
    return str(raft)


DAMAGE = {
    "truncated segment": truncate_segment,
    "flipped byte in a segment": flip_segment,
    "flipped byte in a snapshot": flip_snapshot,
    "truncated snapshot": truncate_snapshot,
    "flipped byte in a snapshot's metadata": flip_snapshot_meta,
    "metadata deleted": delete_metadata,
    "metadata cut short": cut_metadata,
    "read-only directory": read_only,
}


def written(request, tmp_path, extra=()):
    """A formed cluster with WRITES keys written, and a follower that applied them all:
    (leader, follower)."""
    cluster = form(request, tmp_path, extra=extra)
    leader = leader_of(cluster)
    for i in range(WRITES):
        leader.put_true(f"/v1/kv/k/{i:03d}", f"v{i}")
    follower = next(s for s in cluster if s is not leader)
    wait_until(lambda: follower.get(f"/v1/kv/k/{WRITES - 1:03d}?stale").status == 200, 20,
               what="the follower to apply every write")
    return leader, follower


def last_start(server):
    return server.log_text().rsplit("=== start #", 1)[-1]


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_follower_refuses_to_start_then_catches_up_when_moved_aside(
        request, tmp_path, agent_factory, damage):
    leader, follower = written(request, tmp_path, extra=["-raft-snapshot-threshold", "16"])
    # Each server snapshots at its own indexes (docs/replication.md), so the follower's may be
    # the last of the three and still being written.
    wait_until(lambda: any(f.startswith("snapshot-") and "." not in f
                           for f in files(follower.data_dir / "raft")), 20,
               what="the follower to store a snapshot")
    follower.stop()
    raft = follower.data_dir / "raft"
    named = DAMAGE[damage](raft)
    before = {f: (raft / f).read_bytes() for f in files(raft)}
    follower.env = LSAN_ENV
    try:
        follower.start(wait=False)
        # Refused with status 1, not a crash on the way out (a signal's negative status).
        assert follower.proc.wait(timeout=20) == 1, "did not refuse the damaged log"
    finally:
        os.chmod(raft, 0o700)
    log = last_start(follower)
    assert str(raft) in log and named in log, log
    # Nothing set aside, removed or rewritten: the operator decides.
    assert {f: (raft / f).read_bytes() for f in files(raft)} == before

    # The other two go on; the damaged server, moved aside as the message says, catches up.
    leader.put_true("/v1/kv/k/while-down", "x")
    shutil.move(str(follower.data_dir), str(tmp_path / "moved-aside"))
    follower.env = None
    follower.start(wait=False)
    follower.wait_ready(timeout=30)

    def caught_up():
        r = follower.get("/v1/kv/k/?recurse&stale")
        return r.status == 200 and len(r.json()) == WRITES + 1
    wait_until(caught_up, 30, interval=0.2, what="the emptied server to catch up")

def test_single_server_refuses_a_cluster_servers_data_dir(request, tmp_path, agent_factory):
    """docs/replication.md: a cluster server's directory is not a single server's. Started on
    one, a single server would serve an empty registry as if it were the cluster's."""
    cluster = form(request, tmp_path)
    leader = leader_of(cluster)
    leader.put_true("/v1/kv/kept", "1")
    follower = next(s for s in cluster if s is not leader)
    wait_until(lambda: follower.get("/v1/kv/kept?stale").status == 200, 20,
               what="the follower to apply the write")
    follower.stop()
    before = files(follower.data_dir)
    single = agent_factory(start=False, name="single", data_dir=follower.data_dir)
    single.start(wait=False)
    assert single.proc.wait(timeout=20) != 0
    log = single.log_text()
    assert f"{follower.data_dir}/raft" in log and "-bootstrap-expect" in log, log
    assert files(follower.data_dir) == before  # no journal.log beside the log
    follower.start(wait=False)
    follower.wait_ready(timeout=30)
    assert follower.get("/v1/kv/kept?raw").body == b"1"


def newest_open_segment(raft):
    """The open segment with the most entries: the one a kill -9 left being appended to."""
    opens = [raft / f for f in files(raft) if f.startswith("open-")]
    return max(opens, key=lambda p: len(p.read_bytes().rstrip(b"\0")))


def keys(server):
    r = server.get("/v1/kv/k/?keys&stale")
    return r.json() if r.status == 200 else []


def follower_killed_with_an_open_segment(request, tmp_path):
    """written(), then the follower killed -9 with every write in its open segment (no
    snapshot yet): (leader, follower, the segment)."""
    leader, follower = written(request, tmp_path)
    follower.kill9()
    return leader, follower, newest_open_segment(follower.data_dir / "raft")


def test_damage_inside_an_open_segment_refuses_to_start(request, tmp_path, agent_factory):
    """libraft 0.15 cuts an open segment short at its first damaged batch and says nothing,
    whatever follows: the follower would drop entries it stored and may have counted towards a
    commit. Intact batches after the damaged one tell damage from a write cut short: refused."""
    leader, follower, seg = follower_killed_with_an_open_segment(request, tmp_path)
    flip(seg, 8)  # the first batch's header checksum; the other batches stay intact
    raft = follower.data_dir / "raft"
    before = {f: (raft / f).read_bytes() for f in files(raft)}
    follower.env = LSAN_ENV
    follower.start(wait=False)
    assert follower.proc.wait(timeout=20) == 1, "did not refuse the damaged open segment"
    log = last_start(follower)
    assert str(raft) in log and f"{seg.name}: a damaged batch at byte 8" in log, log
    assert {f: (raft / f).read_bytes() for f in files(raft)} == before

    shutil.move(str(follower.data_dir), str(tmp_path / "moved-aside"))
    follower.env = None
    follower.start(wait=False)
    follower.wait_ready(timeout=30)
    wait_until(lambda: len(keys(follower)) == WRITES, 30, interval=0.2,
               what="the emptied server to catch up")


def test_an_open_segment_cut_short_starts_and_says_so(request, tmp_path, agent_factory):
    """The last write cut short (a crash or a power loss during it; zeros follow): the engine
    drops that batch, as it should, and the server says so, then gets it back from the leader."""
    leader, follower, seg = follower_killed_with_an_open_segment(request, tmp_path)
    data = seg.read_bytes()
    end = len(data.rstrip(b"\0"))
    with open(seg, "r+b") as f:
        f.seek(end - 8)
        f.write(b"\0" * 8)
    follower.start(wait=False)
    follower.wait_ready(timeout=30)
    assert f"{seg}: the last write was cut short at byte" in last_start(follower)
    leader.put_true("/v1/kv/k/after", "x")
    wait_until(lambda: len(keys(follower)) == WRITES + 1, 30, interval=0.2,
               what="the follower to catch up")
