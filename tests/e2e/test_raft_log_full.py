"""A write paused for a full log is answered even when the snapshot that would empty the log
never comes. A leader whose log holds twice the snapshot threshold past its newest snapshot
makes writes wait for the next one; a snapshot that never ends (its writer stalled, as on a
hung disk) or keeps failing used to keep them waiting for ever. Now a paused write waits as
long as a call waits for a leader (7 s, Consul's rpc_hold_timeout), then gets Consul's answer
to a write its leader could not enqueue in time, 500 "timed out enqueuing operation", and the
log says why. The write was never run: it is in no server's state. Once the snapshot can be
taken again, the log empties and writes go through.

The fault comes from outside: a thread stops (or kills) every process the leader forks, that
is, its snapshot writers (lib/fork_worker.h); the followers snapshot as usual.
"""

import http.client
import os
import signal
import threading
import time
from pathlib import Path

from helpers import HOST, wait_until
from raft_helpers import form, leader_of

THRESHOLD = 16


class Saboteur:
    """Sends sig to every child of pid as soon as it appears, until stop(); the children it
    stopped are continued then."""

    def __init__(self, pid, sig):
        self.pid, self.sig = pid, sig
        self.hit = set()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run)
        self.thread.start()

    def children(self):
        kids = set()
        try:
            for task in Path(f"/proc/{self.pid}/task").iterdir():
                kids.update(int(k) for k in (task / "children").read_text().split())
        except OSError:
            pass  # a thread that ended meanwhile
        return kids

    def run(self):
        for _ in range(10_000_000):  # bounded; stop() ends it long before
            if self.done.is_set():
                return
            for kid in self.children() - self.hit:
                try:
                    os.kill(kid, self.sig)
                    self.hit.add(kid)
                except ProcessLookupError:
                    pass
            time.sleep(0.0002)

    def stop(self):
        self.done.set()
        self.thread.join(10)
        if self.sig == signal.SIGSTOP:
            for kid in self.hit:
                try:
                    os.kill(kid, signal.SIGCONT)
                except ProcessLookupError:
                    pass


def put(port, key):
    """(status, body) of a KV PUT; a client that would wait for ever gives up after 30 s,
    which fails the test."""
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request("PUT", f"/v1/kv/{key}", body=b"v")
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def paused_write_times_out(request, tmp_path, sig, why):
    servers = form(request, tmp_path, extra=["-raft-snapshot-threshold", str(THRESHOLD)])
    leader = leader_of(servers)
    acked = []
    for i in range(THRESHOLD):
        assert put(leader.port, f"full/a{i:03d}") == (200, b"true")
        acked.append(f"full/a{i:03d}")

    saboteur = Saboteur(leader.proc.pid, sig)
    request.addfinalizer(saboteur.stop)
    timed_out = None
    for i in range(50 * THRESHOLD):  # bounded: the log is full after twice the threshold
        key = f"full/b{i:03d}"
        status, body = put(leader.port, key)
        if (status, body) == (200, b"true"):
            acked.append(key)
            continue
        assert status == 500 and b"timed out enqueuing operation" in body, (key, status, body)
        timed_out = key
        break
    assert timed_out, "no write paused for the full log"
    assert saboteur.hit, "no snapshot writer was stopped"
    line = "waited 7000 ms for the snapshot a full log needs"
    wait_until(lambda: line in leader.log_text(), 10, interval=0.1, what="the log to say why")
    assert why in leader.log_text()

    saboteur.stop()

    def writes_again():
        return put(leader.port, "full/c") == (200, b"true")
    wait_until(writes_again, 60, interval=0.5, what="writes once snapshots can be taken")
    acked.append("full/c")

    # Every acknowledged write on every server; the one that timed out never ran.
    want = sorted(acked)

    def everyone_has_them():
        for s in servers:
            r = s.get("/v1/kv/full/?keys&stale")
            if r.status != 200 or sorted(r.json()) != want:
                return False
        return True
    wait_until(everyone_has_them, 30, interval=0.2, what="every acknowledged write everywhere")


def test_a_paused_write_times_out_while_the_snapshot_stalls(request, tmp_path, agent_factory):
    paused_write_times_out(request, tmp_path, signal.SIGSTOP, "a snapshot is still being written")


def test_a_paused_write_times_out_while_snapshots_fail(request, tmp_path, agent_factory):
    """A writer that dies used to let writes through for the second before the retry, so that
    the log grew with every failure; now they wait for a snapshot that is stored."""
    paused_write_times_out(request, tmp_path, signal.SIGKILL, "the last snapshot failed")
