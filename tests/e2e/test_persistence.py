"""Persistence with -data-dir: every acknowledged write survives kill -9 (issue 2).

Indexes are part of the state: after a restart every entity keeps its CreateIndex/ModifyIndex
and new writes get higher indexes (X-Consul-Index never goes backwards).
"""

import errno
import json
import os
import signal
import stat
import subprocess

import pytest

from helpers import b64, wait_until

GARBAGE = b"\x00\xff\xfe torn-write {\"Key\": \"half" + bytes(range(200))


def populate(agent):
    """Services, checks and KV of every kind; some created then removed. Returns nothing."""
    agent.register_service({"ID": "w1", "Name": "web", "Tags": ["v1"], "Port": 3000,
                            "Meta": {"env": "t"},
                            "Check": {"CheckID": "w1-ttl", "TTL": "1h", "Status": "passing"}})
    agent.register_service({"ID": "w2", "Name": "web", "Port": 3001,
                            "Check": {"CheckID": "w2-tcp", "TCP": "127.0.0.1:1",
                                      "Interval": "30s"}})
    agent.register_service({"ID": "tmp", "Name": "tmp"})
    agent.put_ok("/v1/agent/service/deregister/tmp")
    agent.put_ok("/v1/agent/check/register", {"Name": "node-ttl", "TTL": "1h"})
    agent.put_true("/v1/catalog/register",
                   {"Node": "ext1", "Address": "10.0.0.7",
                    "Service": {"ID": "db1", "Service": "db", "Port": 5432}})
    for i in range(50):
        agent.put_true(f"/v1/kv/bulk/{i:03d}", f"value-{i}")
    agent.put_true(f"/v1/kv/flags?flags={2**63 + 5}", b"\x00\x01binary\xff")
    agent.put_true("/v1/kv/a%2Fb", "slash")
    agent.put_true("/v1/kv/overwritten", "one")
    agent.put_true("/v1/kv/overwritten", "two")
    agent.put_true("/v1/kv/deleted", "x")
    agent.delete("/v1/kv/deleted")
    agent.put_true("/v1/kv/gone/1", "x")
    agent.delete("/v1/kv/gone/?recurse")


def snapshot(agent):
    """What must survive: KV entries (with indexes), catalog services, agent services/checks."""
    kv = agent.get_json("/v1/kv/?recurse")
    services = agent.get_json("/v1/agent/services")
    checks = agent.agent_checks()
    web = agent.get_json("/v1/catalog/service/web")
    db = agent.get_json("/v1/catalog/service/db")
    high = max(agent.get("/v1/kv/?recurse").index, agent.get("/v1/catalog/services").index)
    nodes = {n["Node"]: n["ID"] for n in agent.get_json("/v1/catalog/nodes")}
    return {"kv": kv, "services": services, "web": web, "db": db, "node_ids": nodes,
            "check_defs": {k: (c["Name"], c["ServiceID"], c["Type"]) for k, c in checks.items()},
            "high": high}


def assert_same_state(before, after):
    assert after["kv"] == before["kv"], "KV entries (values, flags, indexes) changed"
    assert after["services"] == before["services"]
    assert after["check_defs"] == before["check_defs"]
    idx = lambda entries: [(e["ServiceID"], e["CreateIndex"], e["ModifyIndex"]) for e in entries]
    assert idx(after["web"]) == idx(before["web"]), "catalog service indexes changed"
    assert idx(after["db"]) == idx(before["db"])
    assert after["high"] >= before["high"], "X-Consul-Index went backwards over a restart"
    assert after["node_ids"]["node1"] == before["node_ids"]["node1"], "node ID changed"


def check_contents(snap):
    keys = [e["Key"] for e in snap["kv"]]
    assert keys == sorted([f"bulk/{i:03d}" for i in range(50)] + ["flags", "a/b", "overwritten"])
    by_key = {e["Key"]: e for e in snap["kv"]}
    assert by_key["overwritten"]["Value"] == b64("two")
    assert by_key["flags"]["Flags"] == 2**63 + 5
    assert by_key["flags"]["Value"] == b64(b"\x00\x01binary\xff")
    assert set(snap["services"]) - {"consul"} == {"w1", "w2"}
    assert set(snap["check_defs"]) - {"serfHealth"} == {"w1-ttl", "w2-tcp", "node-ttl"}
    assert [e["ServiceID"] for e in snap["db"]] == ["db1"]


def test_kill9_restart_keeps_everything(agent_factory, tmp_path):
    """Issue 2: kill -9 after acknowledged writes; restart; same data and indexes."""
    data = tmp_path / "data"
    data.mkdir()
    a = agent_factory(data_dir=data)
    populate(a)
    before = snapshot(a)
    check_contents(before)
    a.kill9()
    a.start()
    after = snapshot(a)
    assert_same_state(before, after)
    # New writes continue above every index seen before the crash.
    a.put_true("/v1/kv/after", "x")
    assert a.get("/v1/kv/after").index > before["high"]


def test_sigterm_restart_keeps_everything(agent_factory, tmp_path):
    """Issue 2: a clean stop (SIGTERM) and restart also keep everything."""
    data = tmp_path / "data"
    data.mkdir()
    a = agent_factory(data_dir=data)
    populate(a)
    before = snapshot(a)
    assert a.stop() is not None
    a.start()
    assert_same_state(before, snapshot(a))


def test_torn_tail_is_truncated(agent_factory, tmp_path):
    """Issue 2: garbage appended to every data file after kill -9: the agent still starts and
    every acknowledged write is there; a second crash/restart cycle works too."""
    data = tmp_path / "data"
    data.mkdir()
    a = agent_factory(data_dir=data)
    populate(a)
    before = snapshot(a)
    a.kill9()
    files = [os.path.join(d, f) for d, _, fs in os.walk(data) for f in fs]
    assert files, "the agent wrote nothing to its data dir"
    for f in files:
        with open(f, "ab") as fh:
            fh.write(GARBAGE)
    log_before = len(a.log_text())
    a.start()
    after = snapshot(a)
    assert_same_state(before, after)
    assert "trunc" in a.log_text()[log_before:].lower(), "the torn tail must be logged"
    # The recovered store keeps accepting durable writes.
    a.put_true("/v1/kv/post-recovery", "ok")
    a.register_service({"ID": "w3", "Name": "web"})
    a.kill9()
    a.start()
    assert a.get("/v1/kv/post-recovery?raw").body == b"ok"
    assert "w3" in a.get_json("/v1/agent/services")
    snap2 = snapshot(a)
    assert [e for e in snap2["kv"] if e["Key"] != "post-recovery"] == before["kv"]
    assert {k: v for k, v in snap2["services"].items() if k != "w3"} == before["services"]


def test_torn_tail_mid_record(agent_factory, tmp_path):
    """Issue 2: a file cut in the middle of its last record (a torn write) is recovered: the
    agent starts and keeps everything written before the last acknowledged write."""
    data = tmp_path / "data"
    data.mkdir()
    a = agent_factory(data_dir=data)
    populate(a)
    before = snapshot(a)
    a.put_true("/v1/kv/zz-last", "the last write")
    a.kill9()
    sizes = {os.path.join(d, f): os.path.getsize(os.path.join(d, f))
             for d, _, fs in os.walk(data) for f in fs}
    # Cut the most recently written file by a few bytes: the last record becomes torn.
    newest = max(sizes, key=lambda f: os.path.getmtime(f))
    assert sizes[newest] > 8
    with open(newest, "r+b") as fh:
        fh.truncate(sizes[newest] - 5)
    a.start()
    after = snapshot(a)
    # Everything before the torn record is intact; the torn last write may be lost.
    after_kv = [e for e in after["kv"] if e["Key"] != "zz-last"]
    assert after_kv == before["kv"]
    assert after["services"] == before["services"]
    a.put_true("/v1/kv/again", "1")
    assert a.get("/v1/kv/again").index > before["high"]


def test_restart_with_empty_data_dir_ok(agent_factory, tmp_path):
    """A fresh data dir starts an empty store; a restart of an untouched store works."""
    data = tmp_path / "data"
    data.mkdir()
    a = agent_factory(data_dir=data)
    assert a.get("/v1/kv/?keys").json() == []
    a.kill9()
    a.start()
    assert a.get("/v1/kv/?keys").json() == []


def test_every_file_of_the_data_dir_is_private(agent_factory, tmp_path):
    """KV values may hold secrets: every file the agent writes is 0600, the node ID included."""
    data = tmp_path / "data"
    data.mkdir()
    a = agent_factory(data_dir=data)
    a.put_true("/v1/kv/secret", "s3cret")
    a.stop()
    files = [f for f in data.rglob("*") if f.is_file()]
    assert "node-id" in [f.name for f in files]
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f


def children_of(pid):
    """PIDs of a process's children (its forked snapshot writer)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def test_kill9_during_compaction_frees_the_port(agent_factory, tmp_path):
    """Issue 12 item 12: kill -9 while the forked snapshot writer runs; the writer must not keep
    the agent's listening socket, so a restart on the same port works."""
    data = tmp_path / "data"
    data.mkdir()
    a = agent_factory(data_dir=data)
    # The writer opens snapshot.json.tmp for writing: as a FIFO with no reader, that open blocks,
    # so the compaction is still running whenever the test looks.
    os.mkfifo(data / "snapshot.json.tmp")
    for i in range(4):
        a.put_true(f"/v1/kv/big/{i}", "x" * 300000)  # past the 1 MiB compaction threshold
    writers = wait_until(lambda: children_of(a.proc.pid), 30, interval=0.2,
                         what="the background compaction to start")
    try:
        a.kill9()
        a.start()
        assert a.get("/v1/kv/big/3?raw").body == b"x" * 300000
    finally:
        for pid in writers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def small_fs(tmp_path):
    """A 2 MiB tmpfs mounted for the test (root only), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mnt)],
                       capture_output=True, timeout=10)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {r.stderr.decode(errors='replace').strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=10)


def fill(fs):
    """Fills the file system with a filler file (returned) until writes fail with ENOSPC."""
    filler = fs / "filler"
    with open(filler, "wb", buffering=0) as f:
        for size in (65536, 4096, 1):
            for _ in range(10000):
                try:
                    f.write(b"\0" * size)
                except OSError as e:
                    assert e.errno == errno.ENOSPC, e
                    break
    return filler


def write_keys(agent, prefix, n):
    """n KV writes; returns (acknowledged keys, refusals)."""
    acked, refused = [], []
    for i in range(n):
        r = agent.put(f"/v1/kv/{prefix}/{i:03d}", f"value-{i}")
        if r.status == 200:
            assert r.json() is True
            acked.append(f"{prefix}/{i:03d}")
        else:
            refused.append(r)
    return acked, refused


def test_full_disk_refuses_writes_and_recovers(agent_factory, small_fs):
    """Issue 12 item 10: on a full disk a write that cannot be persisted is answered 500 with
    the reason, never true; every write answered true survives kill -9; and once space returns
    the agent persists writes again without a restart."""
    data = small_fs / "data"
    a = agent_factory(data_dir=data)
    a.put_true("/v1/kv/before", "1")
    filler = fill(small_fs)
    acked, refused = write_keys(a, "full", 60)
    assert refused, "writes on a full disk must not all be acknowledged"
    for r in refused:
        assert r.status == 500, r
        assert "persist" in r.text and "No space left" in r.text, r.text
    a.kill9()
    filler.unlink()
    a.start()
    keys = set(a.get_json("/v1/kv/?keys"))
    missing = [k for k in ["before"] + acked if k not in keys]
    assert not missing, f"acknowledged writes lost over kill -9: {missing}"

    # The same agent, without a restart, comes back once space returns.
    filler = fill(small_fs)
    acked, refused = write_keys(a, "again", 20)
    assert refused
    filler.unlink()
    wait_until(lambda: a.put("/v1/kv/recovered", "yes").status == 200, 30, interval=0.5,
               what="writes to be persisted again after space returned")
    acked2, refused2 = write_keys(a, "after", 10)
    assert not refused2 and len(acked2) == 10
    a.kill9()
    a.start()
    keys = set(a.get_json("/v1/kv/?keys"))
    missing = [k for k in acked + acked2 + ["recovered"] if k not in keys]
    assert not missing, f"acknowledged writes lost: {missing}"


@pytest.mark.parametrize("damage", ["empty", "cut", "flipped", "directory"])
def test_damaged_node_id_refuses_to_start(agent_factory, tmp_path, damage):
    """node-id keeps the node's ID across restarts and is written whole or not at all, so one
    that no longer holds a UUID was damaged: the agent stops with `file: message` instead of
    coming back as another node, or under a garbled ID."""
    data = tmp_path / "data"
    a = agent_factory(data_dir=data)
    node_id = a.get_json("/v1/agent/self")["Config"]["NodeID"]
    path = data / "node-id"
    assert path.read_text() == node_id + "\n"
    a.stop()
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "cut":
        path.write_text(node_id[:20])
    elif damage == "flipped":
        b = bytearray(path.read_bytes())
        b[10] ^= 0xFF
        path.write_bytes(bytes(b))
    else:
        path.unlink()
        path.mkdir()
    a.start(wait=False)
    assert a.proc.wait(timeout=30) != 0
    assert f"{path}: " in a.log_text()
    # Removed, as the message offers, the node starts again under a new ID.
    if damage == "directory":
        path.rmdir()
    else:
        path.unlink()
    a.start()
    assert a.get_json("/v1/agent/self")["Config"]["NodeID"] not in ("", node_id)


def test_empty_journal_is_reported(agent_factory, tmp_path):
    """A journal.log cut to zero bytes holds nothing to recover: the agent starts with what is
    left (here nothing) and says so, rather than silently coming back empty."""
    data = tmp_path / "data"
    a = agent_factory(data_dir=data)
    a.put_true("/v1/kv/k", "v")
    a.stop()
    (data / "journal.log").write_bytes(b"")
    log_before = len(a.log_text())
    a.start()
    assert "journal.log: empty, starting from an empty registry" in a.log_text()[log_before:]
    assert a.get("/v1/kv/k").status == 404
    a.put_true("/v1/kv/k2", "v")
    a.stop()
    a.start()
    assert a.get("/v1/kv/k2?raw").body == b"v"
    assert "empty, starting" not in a.log_text()[log_before:].split("=== start #3")[1]


def journal_lines(path):
    """[(start offset, end offset, record)] of journal.log's records, header excluded."""
    data = path.read_bytes()
    out, pos = [], 0
    for line in data.splitlines(keepends=True):
        _, _, text = line.rstrip(b"\n").split(b" ", 2)
        out.append((pos, pos + len(line), json.loads(text)))
        pos += len(line)
    return out[1:]


def cut_points(path, index):
    """Every offset a kill -9 can leave journal.log ending at while the records of the write at
    `index` were being appended: each line boundary among them and the middle of each line."""
    lines = [(s, e) for s, e, r in journal_lines(path) if r.get("index") == index]
    assert lines, f"no record at index {index}"
    points = {lines[0][0]}
    for s, e in lines:
        points |= {(s + e) // 2, e}
    return sorted(points - {lines[-1][1]})


@pytest.mark.parametrize("write", ["txn", "session-destroy"])
def test_a_write_cut_short_by_a_crash_is_all_or_nothing(agent_factory, tmp_path, write):
    """A transaction changes several keys at one index, and destroying a session releases its
    locks and removes it: one acknowledged write each. A kill -9 can stop the agent anywhere
    while it appends that write's records; after a restart the write is there whole or not at
    all, never some of its keys (or a session gone with its locks still held)."""
    data = tmp_path / "data"
    a = agent_factory(data_dir=data)
    a.put_true("/v1/kv/before", "kept")
    if write == "txn":
        ops = [{"KV": {"Verb": "set", "Key": f"t/{i}", "Value": b64(f"v{i}")}}
               for i in range(3)]
        r = a.put("/v1/txn", ops)
        assert r.status == 200, r.text
        index = r.json()["Results"][0]["KV"]["ModifyIndex"]
        whole = {f"t/{i}" for i in range(3)}
    else:
        sid = a.put("/v1/session/create", {"Behavior": "release"}).json()["ID"]
        for i in range(3):
            a.put_true(f"/v1/kv/t/{i}?acquire={sid}", "x")
        a.put_true("/v1/session/destroy/" + sid)
        index = a.get("/v1/session/list").index
        whole = set()  # no key locked by a session that is gone, no session left
    a.stop()
    journal = data / "journal.log"
    full = journal.read_bytes()
    points = cut_points(journal, index)
    assert len(points) > 1, "the write is a single line already"
    for at in points:
        journal.write_bytes(full[:at])
        a.start()
        assert a.get("/v1/kv/before?raw").body == b"kept"
        if write == "txn":
            got = set(a.get_json("/v1/kv/t/?keys")) if a.get("/v1/kv/t/?keys").status == 200 \
                else set()
            assert got in (set(), whole), f"cut at byte {at}: half a transaction: {got}"
        else:
            sessions = a.get_json("/v1/session/list")
            locked = {e["Key"] for e in a.get_json("/v1/kv/t/?recurse") if e.get("Session")}
            want = {f"t/{i}" for i in range(3)} if sessions else whole
            assert locked == want, \
                f"cut at byte {at}: half a session destroy: {len(sessions)} sessions, " \
                f"keys locked {locked}"
        a.stop()
