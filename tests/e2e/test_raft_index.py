"""X-Consul-Index on replicated servers (issue 14) when the leader moves it without a log entry:
user events (/v1/event/fire) and network coordinates live on the leader only, and bump its
index. A follower's indexes must not drift from the leader's for what is replicated (every
entity at the same ModifyIndex, the same X-Consul-Index for the same read), and its blocking
queries must still wake on the next replicated change. Events, read through a follower (which
asks the leader), are all there, and a blocking event list there wakes on a fire."""
import threading

from helpers import wait_until
from raft_helpers import cluster, leader_of  # noqa: F401 (fixture)


def stale_kv(server, key):
    r = server.get(f"/v1/kv/{key}?stale")
    return (r.json()[0]["ModifyIndex"], r.index) if r.status == 200 else None


def test_leader_only_indexes_do_not_make_followers_drift(cluster):
    leader = leader_of(cluster)
    followers = [s for s in cluster if s is not leader]
    leader.put_true("/v1/kv/first", "v")
    for k in range(3):  # through a follower: it asks the leader, which stores them
        r = followers[k % 2].put(f"/v1/event/fire/deploy-{k}", body=f"payload {k}")
        assert r.status == 200, r
    coord = {"Node": leader.node, "Segment": "",
             "Coord": {"Vec": [0.1] * 8, "Error": 0.5, "Adjustment": 0.0, "Height": 1e-5}}
    assert followers[0].put("/v1/coordinate/update", body=coord).status == 200
    leader.put_true("/v1/kv/after", "v")

    def same_everywhere():
        seen = {stale_kv(s, "after") for s in cluster}
        return seen.pop() if len(seen) == 1 and None not in seen else None

    modify, index = wait_until(same_everywhere, 20,
                               what="the same ModifyIndex and X-Consul-Index on every server")
    assert modify == index

    # A blocking query on a follower wakes on the next replicated change, not on the leader's
    # own bumps.
    follower = followers[0]
    woke = {}

    def block():
        woke["r"] = follower.get(f"/v1/kv/after?stale&index={index}&wait=60s", timeout=70)

    t = threading.Thread(target=block)
    t.start()
    assert leader.put("/v1/event/fire/noise", body="x").status == 200
    leader.put_true("/v1/kv/after", "v2")
    t.join(timeout=70)
    assert not t.is_alive()
    r = woke["r"]
    assert r.status == 200 and r.index > index and r.elapsed < 45, (r, r.elapsed)
    assert r.json()[0]["Value"] == "djI="  # "v2"

    # Events read through a follower are the leader's, and a blocking list there wakes.
    names = {e["Name"] for e in follower.get_json("/v1/event/list")}
    assert {"deploy-0", "deploy-1", "deploy-2", "noise"} <= names
    last = follower.get("/v1/event/list").index
    got = {}
    t = threading.Thread(target=lambda: got.update(
        r=follower.get(f"/v1/event/list?index={last}&wait=60s", timeout=70)))
    t.start()
    assert followers[1].put("/v1/event/fire/later", body="y").status == 200
    t.join(timeout=70)
    assert not t.is_alive()
    assert got["r"].status == 200 and "later" in {e["Name"] for e in got["r"].json()}
    assert got["r"].elapsed < 45  # woke on the fire, well before its wait
