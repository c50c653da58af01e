"""kill -9 at awkward moments on a three-server cluster (issue 14): what a client was told, and
what it saw, must be what the cluster holds afterwards.

The followers are frozen (SIGSTOP) rather than cut off: the leader's entries then wait in their
sockets, so killing them loses exactly what the leader could not commit.
"""

import base64
import os
import shutil
import signal
import threading
import time

import pytest

from helpers import wait_until
from raft_helpers import cluster, form, leader_of  # noqa: F401 (fixture)


def b64(text):
    return base64.b64encode(text.encode()).decode()


def test_blocking_query_on_the_leader_never_returns_an_uncommitted_write(cluster):
    leader = leader_of(cluster)
    followers = [s for s in cluster if s is not leader]
    leader.put_true("/v1/kv/x", "committed")
    index = leader.get("/v1/kv/x").index
    seen = {}

    def watch():
        seen["r"] = leader.get(f"/v1/kv/x?index={index}&wait=3s", timeout=15)

    def write():  # never acknowledged: nothing can commit while the followers are frozen
        try:
            seen["put"] = leader.put("/v1/kv/x", "uncommitted", timeout=15).status
        except OSError:
            seen["put"] = None
    for f in followers:
        os.kill(f.proc.pid, signal.SIGSTOP)
    try:
        watcher = threading.Thread(target=watch)
        watcher.start()
        writer = threading.Thread(target=write)
        writer.start()
        watcher.join(15)
    finally:
        for f in followers:
            f.kill9()  # SIGKILL ends a stopped process; what waits in its socket is lost
    leader.kill9()
    writer.join(15)
    assert seen["put"] != 200
    for f in followers:
        f.start(wait=False)
    new = leader_of(followers)
    after = new.get("/v1/kv/x")
    assert after.json()[0]["Value"] == b64("committed")
    # What the blocking query returned is the cluster's, and a client that follows its index
    # never sees the index go backwards. The leader holds the answer until the write commits;
    # it never does, so the query gets an error (the leader stepped down) or times out with
    # the value it had.
    woke = seen["r"]
    if woke.status == 200:
        assert woke.json()[0]["Value"] == b64("committed"), "a write that never committed was read"
        assert after.index >= woke.index
    else:
        assert woke.status == 500, woke.status
        assert b"rpc error" in woke.body, woke.body


def test_follower_killed_while_catching_up_from_a_snapshot_starts_and_catches_up(
        request, tmp_path, agent_factory):
    """The servers snapshot every 16 entries, so an emptied follower can only catch up by
    installing the leader's snapshot; it is killed at a few moments of that and must start
    again each time (a half-written snapshot is not a damaged log) and end up with every
    acknowledged write."""
    cluster = form(request, tmp_path, extra=["-raft-snapshot-threshold", "16"])
    leader = leader_of(cluster)
    lost = next(s for s in cluster if s is not leader)
    lost.stop()
    shutil.rmtree(lost.data_dir)
    for i in range(200):
        leader.put_true(f"/v1/kv/k/{i:04d}", "x" * 512)
    for delay in (0.1, 0.3, 0.6, 1.0):
        lost.start(wait=False)
        time.sleep(delay)
        lost.kill9()
    lost.start(wait=False)
    lost.wait_ready(timeout=30)

    def caught_up():
        r = lost.get("/v1/kv/k/?keys&stale")
        return r.status == 200 and len(r.json()) == 200
    wait_until(caught_up, 30, interval=0.2, what="the killed server to catch up")
