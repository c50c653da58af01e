"""Replicated registry servers (issue 14): three servers on Raft form a cluster, replicate every
write, and lose no acknowledged write when the leader is killed.

Each server is a real `mesh agent -server -bootstrap-expect 3` on loopback with its own HTTP and
replication ports and data dir. Writers record every write a server acknowledged; afterwards
every server must hold exactly the history the acknowledgements promise.
"""

import base64
import json
import random
import threading
import time

from helpers import free_ports, wait_until
from raft_helpers import EXPECT, Server, cluster, leader_of  # noqa: F401 (fixture)


def test_three_servers_form_and_report_the_configuration(cluster):
    leader = leader_of(cluster)
    want = sorted(x.raft_addr for x in cluster)
    for s in cluster:
        # A server that joined a formed cluster learns the configuration from the leader.
        wait_until(lambda: sorted(s.get_json("/v1/status/peers")) == want, 20,
                   what=f"{s.name} to know every peer")
        peers = s.get_json("/v1/status/peers")
        conf = s.get_json("/v1/operator/raft/configuration?stale")
        assert conf["Index"] >= 1
        assert sorted(x["Address"] for x in conf["Servers"]) == sorted(peers)
        assert [x["Address"] for x in conf["Servers"] if x["Leader"]] == [leader.raft_addr]
        assert all(x["Voter"] for x in conf["Servers"])


def test_write_on_any_server_is_read_on_every_server(cluster):
    leader_of(cluster)
    for i, s in enumerate(cluster):
        s.put_true(f"/v1/kv/from/{i}", f"written on {s.name}")
    for s in cluster:
        def has_all():
            r = s.get("/v1/kv/from/?recurse&stale")
            return r.status == 200 and len(r.json()) == EXPECT
        wait_until(has_all, 20, what=f"{s.name} to apply every write")
        # A default read (forwarded to the leader on a follower) sees them too.
        assert len(s.get_json("/v1/kv/from/?recurse")) == EXPECT


def test_blocking_query_wakes_on_a_follower(cluster):
    leader = leader_of(cluster)
    follower = next(s for s in cluster if s is not leader)
    leader.put_true("/v1/kv/watched", "1")
    def applied():
        r = follower.get("/v1/kv/watched?stale")
        return r.index if r.status == 200 else None
    idx = wait_until(applied, 20, what="the follower to apply the first write")
    result = {}

    def block():
        result["r"] = follower.get(f"/v1/kv/watched?stale&index={idx}&wait=30s", timeout=40)
    t = threading.Thread(target=block)
    t.start()
    time.sleep(0.5)
    leader.put_true("/v1/kv/watched", "2")
    t.join(40)
    r = result["r"]
    assert r.status == 200 and r.index > idx
    assert r.json()[0]["Value"] == "Mg=="  # base64 "2"
    assert r.header("X-Consul-KnownLeader") == "true"


# ---- leader kill under load -----------------------------------------------------------------

class Recorder:
    """What the writers were told: acknowledged writes and every write attempted."""

    def __init__(self):
        self.lock = threading.Lock()
        self.kv = {}  # key -> value acknowledged last (each key written once)
        self.kv_attempted = set()
        self.cas_acked = {}  # counter -> [increment ids acknowledged]
        self.cas_attempted = set()
        self.services = set()
        self.services_attempted = set()
        self.errors = 0


def pick(servers):
    live = [s for s in servers if s.running()]
    return random.choice(live)


def try_req(servers, method, path, body=None):
    try:
        return pick(servers).req(method, path, body=body, timeout=5.0)
    except (OSError, ValueError):
        return None


def kv_writer(servers, rec, wid, stop):
    n = 0
    while not stop.is_set() and n < 2000:
        key = f"load/w{wid}/{n:05d}"
        value = f"v-{wid}-{n}"
        with rec.lock:
            rec.kv_attempted.add(key)
        r = try_req(servers, "PUT", f"/v1/kv/{key}", value)
        if r is not None and r.status == 200 and r.json() is True:
            with rec.lock:
                rec.kv[key] = value
            n += 1
        else:
            with rec.lock:
                rec.errors += 1
            time.sleep(0.05)


def cas_incrementer(servers, rec, wid, counter, stop):
    n = attempt = 0
    while not stop.is_set() and n < 400:
        attempt += 1
        inc = f"i{wid}.{attempt}"  # a retry is a new increment: the last one may have applied
        r = try_req(servers, "GET", f"/v1/kv/counter/{counter}")
        if r is None or r.status not in (200, 404):
            time.sleep(0.05)
            continue
        if r.status == 404:
            cur, idx = [], 0
        else:
            e = r.json()[0]
            cur = json.loads(request_b64(e["Value"]))
            idx = e["ModifyIndex"]
        with rec.lock:
            rec.cas_attempted.add(inc)
        w = try_req(servers, "PUT", f"/v1/kv/counter/{counter}?cas={idx}",
                    json.dumps(cur + [inc]))
        if w is not None and w.status == 200 and w.json() is True:
            with rec.lock:
                rec.cas_acked.setdefault(counter, []).append(inc)
            n += 1
        elif w is None or w.status != 200:
            time.sleep(0.05)


def request_b64(v):
    return base64.b64decode(v or "").decode() or "[]"


def service_registrar(servers, rec, stop):
    n = 0
    while not stop.is_set() and n < 500:
        sid = f"svc-{n:04d}"
        with rec.lock:
            rec.services_attempted.add(sid)
        r = try_req(servers, "PUT", "/v1/catalog/register",
                    {"Node": "ext-node", "Address": "10.1.0.1",
                     "Service": {"ID": sid, "Service": "load", "Port": 1000 + n}})
        if r is not None and r.status == 200 and r.json() is True:
            with rec.lock:
                rec.services.add(sid)
            n += 1
        else:
            time.sleep(0.05)


def view(s):
    """One server's own (stale) view: KV with indexes and the load service's instances."""
    kv = s.get("/v1/kv/?recurse&stale", timeout=10)
    svc = s.get("/v1/catalog/service/load?stale", timeout=10)
    assert kv.status in (200, 404) and svc.status == 200, (kv, svc)
    return ({e["Key"]: (request_b64(e["Value"]) if e["Key"].startswith("counter/")
                        else base64.b64decode(e["Value"] or "").decode(),
                        e["CreateIndex"], e["ModifyIndex"]) for e in (kv.json() if kv.status == 200 else [])},
            {e["ServiceID"]: e["ModifyIndex"] for e in svc.json()})


def test_leader_kill_loses_no_acknowledged_write(cluster):
    old = leader_of(cluster)
    rec = Recorder()
    stop = threading.Event()
    threads = [threading.Thread(target=kv_writer, args=(cluster, rec, w, stop)) for w in range(3)]
    threads += [threading.Thread(target=cas_incrementer, args=(cluster, rec, w, f"c{w % 2}", stop))
                for w in range(4)]
    threads += [threading.Thread(target=service_registrar, args=(cluster, rec, stop))]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: len(rec.kv) >= 60 and sum(map(len, rec.cas_acked.values())) >= 20,
                   60, interval=0.1, what="writes to be acknowledged before the kill")
        old.kill9()
        new = leader_of(cluster)
        assert new is not old
        before = len(rec.kv)
        wait_until(lambda: len(rec.kv) >= before + 30, 60, interval=0.1,
                   what="writes to be acknowledged by the new leader")
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    old.start(wait=False)
    old.wait_ready(timeout=30)

    def converged():
        views = [view(s) for s in cluster]
        return views if all(v == views[0] for v in views) else None
    views = wait_until(converged, 60, interval=0.5, what="every server to hold the same state")
    kv, services = views[0]
    # Every acknowledged write is there, on every server at the same index.
    for key, value in rec.kv.items():
        assert key in kv and kv[key][0] == value, f"acknowledged write {key} lost"
    # Nothing is there that was not written.
    unknown = [k for k in kv if k.startswith("load/") and k not in rec.kv_attempted]
    assert not unknown
    # Each acknowledged CAS increment appears exactly once; nothing unattempted appears.
    for counter, acked in rec.cas_acked.items():
        final = json.loads(kv[f"counter/{counter}"][0])
        assert len(final) == len(set(final)), f"duplicated increments in {counter}"
        assert set(acked) <= set(final), f"lost increments in {counter}"
        assert set(final) <= rec.cas_attempted
    assert rec.services <= set(services), "acknowledged registrations lost"
    assert set(services) <= rec.services_attempted


def test_single_server_configuration_index_is_its_entry(agent):
    """Issue 15 item 7: a single server's configuration entry is the log's first: Index 1,
    however many writes followed."""
    for i in range(5):
        agent.put_true(f"/v1/kv/k{i}", "v")
    conf = agent.get_json("/v1/operator/raft/configuration")
    assert conf["Index"] == 1
    assert [(s["Node"], s["Leader"], s["Voter"]) for s in conf["Servers"]] == [
        ("node1", True, True)]


def test_single_server_data_dir_is_refused_with_the_reason(agent_factory, tmp_path):
    """A data dir a single server wrote is not taken over by a replicated server: it refuses to
    start, saying why and what to do, and leaves the files alone."""
    data = tmp_path / "data"
    single = agent_factory(data_dir=data)
    single.put_true("/v1/kv/keep", "me")
    single.stop()
    journal = (data / "journal.log").read_bytes()
    s = Server(tmp_path, 9, single.port, free_ports(1)[0], [])
    s.data_dir = data
    s.start(wait=False)
    try:
        assert s.proc.wait(timeout=20) != 0
    finally:
        s.stop()
    log = s.log_text()
    assert "single server" in log and "-bootstrap" in log, log
    assert (data / "journal.log").read_bytes() == journal
    assert not (data / "raft").exists()
    single.start()
    assert single.get("/v1/kv/keep?raw").body == b"me"
