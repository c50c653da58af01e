"""Read consistency on replicated servers (issue 14): `?consistent` is answered only by a
leader a quorum still follows, and `?stale` reads say how stale they may be
(X-Consul-KnownLeader, X-Consul-LastContact), with `?max_stale` sending an old one to the leader.
"""

import base64
import re
import time
from concurrent.futures import ThreadPoolExecutor

from helpers import run_blocking, wait_until
from raft_helpers import cluster, leader_of  # noqa: F401 (fixture)


def answer(server, path):
    """The answer to path (200 or 404), or None while the server restarts."""
    try:
        r = server.get(path)
    except OSError:  # refused, or reset by the old process's exec
        return None
    return r if r.status in (200, 404) else None


def contact(r):
    return int(r.header("X-Consul-LastContact"))


def test_consistent_read_needs_a_quorum(cluster):
    leader = leader_of(cluster)
    follower = next(s for s in cluster if s is not leader)
    leader.put_true("/v1/kv/k", "v")
    for s in cluster:  # on the leader, and forwarded to it by a follower
        r = s.get("/v1/kv/k?consistent&raw")
        assert r.status == 200 and r.body == b"v"
    for s in cluster:
        if s is not leader:
            s.kill9()
    # The leader has not noticed yet; it must not vouch for data it can no longer confirm.
    r = leader.get("/v1/kv/k?consistent", timeout=30)
    assert r.status == 500 and r.text.startswith("No cluster leader"), r
    # A stale read still answers, saying there is no leader.
    r = leader.get("/v1/kv/k?stale")
    assert r.status == 200 and r.header("X-Consul-KnownLeader") == "false"
    assert follower.running() is False


def test_stale_read_on_a_cut_off_server_says_how_stale(cluster):
    leader = leader_of(cluster)
    lone = next(s for s in cluster if s is not leader)
    leader.put_true("/v1/kv/k", "v")
    wait_until(lambda: lone.get("/v1/kv/k?stale").status == 200, 20,
               what="the follower to apply the write")
    r = lone.get("/v1/kv/k?stale")
    assert r.header("X-Consul-KnownLeader") == "true"
    assert contact(r) < 5000
    assert leader.get("/v1/kv/k?stale").header("X-Consul-LastContact") == "0"
    for s in cluster:
        if s is not lone:
            s.kill9()
    # Alone, it keeps answering from what it has, and the age of its news keeps growing.
    def stale_for_long():
        r = lone.get("/v1/kv/k?stale")
        return r if r.status == 200 and contact(r) >= 3000 else None
    r = wait_until(stale_for_long, 30, interval=0.2, what="LastContact to pass 3 s")
    assert r.header("X-Consul-KnownLeader") == "false"
    assert r.body and r.json()[0]["Key"] == "k"
    later = lone.get("/v1/kv/k?stale")
    assert contact(later) >= contact(r)
    # max_stale: a server that has not heard from a leader for longer sends the read to the
    # leader (there is none); a bound it still meets answers from its own state.
    assert lone.get("/v1/kv/k?stale&max_stale=1h").status == 200
    r = lone.get("/v1/kv/k?stale&max_stale=1s", timeout=30)
    assert r.status == 500 and r.text.startswith("No cluster leader"), r


def leader_without_quorum(cluster):
    """The leader, after a committed write of k, with its followers killed."""
    leader = leader_of(cluster)
    leader.put_true("/v1/kv/k", "v")
    for s in cluster:
        if s is not leader:
            s.kill9()
    return leader


def test_answers_held_for_a_lost_quorum_end_in_500_not_a_closed_connection(cluster):
    # A write waits on the leader for an entry that can no longer commit. When the leader
    # steps down and restarts to rebuild its state, the client gets a 500 saying what
    # happened, not a connection closed without an answer.
    leader = leader_without_quorum(cluster)
    r = leader.put("/v1/kv/k", "w", timeout=30)
    assert r.status == 500 and b"not committed" in r.body, r
    # Restarted, it serves what its snapshot holds (as Consul does until it hears a leader).
    r = wait_until(lambda: answer(leader, "/v1/kv/k?stale"), 30,
                   what="the old leader to answer again after its restart")
    assert r.header("X-Consul-KnownLeader") == "false"


def test_consistent_read_behind_an_uncommitted_write_says_no_cluster_leader(cluster):
    # A ?consistent read arriving while a write waits for a quorum that is gone: the read
    # fails on its own ("No cluster leader") and says so, whatever the write then becomes.
    leader = leader_without_quorum(cluster)
    with ThreadPoolExecutor(1) as pool:
        write = pool.submit(leader.put, "/v1/kv/k", "w", timeout=30)
        time.sleep(0.2)  # the write is in flight
        r = leader.get("/v1/kv/k?consistent", timeout=30)
        assert r.status == 500 and r.text.startswith("No cluster leader"), r
        w = write.result()
    assert w.status == 500 and b"not committed" in w.body, w


def blocking_parked(server):
    r = server.get("/v1/agent/metrics?format=prometheus")
    m = re.search(r"^consul_rpc_queries_blocking (\S+)$", r.text, re.M)
    return float(m.group(1)) if m else 0.0


def park_watchers(server, n, index):
    """n watchers of /v1/kv/w parked on server (bounded wait), each a getter of its answer."""
    before = blocking_parked(server)
    got = [run_blocking(lambda: server.get(f"/v1/kv/w?index={index}&wait=60s", timeout=60))
           for _ in range(n)]
    wait_until(lambda: blocking_parked(server) >= before + n, 15, what=f"{n} parked watchers")
    return got


def test_watchers_held_on_the_leader_share_one_answer_until_it_commits_or_fails(cluster):
    # Watchers woken on the leader share one rendering, held until the write commits: each
    # gets the committed value and index. With the followers gone the next write cannot
    # commit: the held answers then all end in the 500 of a lost leadership, none in the value.
    leader = leader_of(cluster)
    leader.put_true("/v1/kv/w", "v1")
    index = leader.get("/v1/kv/w").index
    got = park_watchers(leader, 8, index)
    leader.put_true("/v1/kv/w", "v2")
    answers = [g(30)[0] for g in got]
    committed = leader.get("/v1/kv/w")
    for r in answers:
        assert r.status == 200, r
        assert r.json()[0]["Value"] == base64.b64encode(b"v2").decode()
        assert r.index == committed.index and r.body == committed.body
    got = park_watchers(leader, 8, committed.index)
    for s in cluster:
        if s is not leader:
            s.kill9()
    w = leader.put("/v1/kv/w", "v3", timeout=30)
    assert w.status == 500, w
    for r in (g(30)[0] for g in got):
        assert r.status == 500 and b"rpc error" in r.body, r
