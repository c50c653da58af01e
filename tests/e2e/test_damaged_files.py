"""Damaged files in a stopped agent's data directory, and damaged TLS files: the agent either
starts with what is intact and says what it dropped, or refuses to start with `file: message`
and status 1, changing nothing. It never crashes and never serves part of its data silently.

Each case copies one data directory, written once per module by a real server (a snapshot from
a compaction, then records in the journal after it), damages one file and starts an agent on
the copy. docs/registry-storage.md says what each file holds and what the agent does with it;
test_raft_damage.py does the same for a cluster server's replicated log.
"""

import os
import shutil
import subprocess

import pytest

from helpers import Agent, free_port, wait_until
from test_tls import certs  # noqa: F401 (fixture)

BIG = 4  # 300 kB values: past the 1 MiB compaction threshold
AFTER = 5  # keys written after the snapshot, in the journal only


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A data directory with snapshot.json (BIG keys) and AFTER journal records after it."""
    tmp = tmp_path_factory.mktemp("written")
    data = tmp / "data"
    a = Agent(tmp, name="writer", data_dir=data)
    try:
        a.start()
        for i in range(BIG):
            a.put_true(f"/v1/kv/big/{i}", "x" * 300000)
        a.stop()
        a.start()  # a journal past the threshold is compacted at start
        wait_until(lambda: "snapshot written" in a.log_text(), 30, interval=0.1,
                   what="the compaction at start")
        wait_until(lambda: os.path.getsize(data / "journal.log") < 4096, 30, interval=0.1,
                   what="the journal to be replaced")
        for i in range(AFTER):
            a.put_true(f"/v1/kv/after/{i}", f"v{i}")
    finally:
        a.stop()
    assert a.proc.returncode == 0, a.log_tail()
    return data


def lines(path):
    """[(start, end)] byte ranges of the file's lines."""
    out, pos = [], 0
    for line in path.read_bytes().splitlines(keepends=True):
        out.append((pos, pos + len(line)))
        pos += len(line)
    return out


def patch(path, at, data):
    with open(path, "r+b") as f:
        f.seek(at)
        f.write(data)


def flip(path, at):
    b = path.read_bytes()[at]
    patch(path, at, bytes([b ^ 0xFF]))


def zero_fill(path):
    path.write_bytes(b"\0" * path.stat().st_size)


def cut_half(path):
    os.truncate(path, path.stat().st_size // 2)


def swap(a, b):
    tmp = a.with_name("swap.tmp")
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)


def replace_by_directory(path):
    path.unlink()
    path.mkdir()


# Damage that the agent must refuse: (what it does to the data directory d, the file named).
REFUSED = {
    "snapshot cut in half": (lambda d: cut_half(d / "snapshot.json"), "snapshot.json"),
    "snapshot emptied": (lambda d: os.truncate(d / "snapshot.json", 0), "snapshot.json"),
    "snapshot zero-filled": (lambda d: zero_fill(d / "snapshot.json"), "snapshot.json"),
    "snapshot byte flipped": (lambda d: flip(d / "snapshot.json", 500000), "snapshot.json"),
    "snapshot deleted": (lambda d: (d / "snapshot.json").unlink(), "journal.log"),
    "snapshot a directory": (lambda d: replace_by_directory(d / "snapshot.json"),
                             "snapshot.json"),
    "snapshot and journal swapped": (lambda d: swap(d / "snapshot.json", d / "journal.log"),
                                     "snapshot.json"),
    "journal deleted": (lambda d: (d / "journal.log").unlink(), "journal.log"),
    "journal header flipped": (lambda d: flip(d / "journal.log", 20), "journal.log"),
    "journal zero-filled": (lambda d: zero_fill(d / "journal.log"), "journal.log"),
    "journal record in the middle flipped": (
        lambda d: flip(d / "journal.log", sum(lines(d / "journal.log")[2]) // 2), "journal.log"),
    "journal a directory": (lambda d: replace_by_directory(d / "journal.log"), "journal.log"),
    "node-id zero-filled": (lambda d: zero_fill(d / "node-id"), "node-id"),
}


def files(d):
    """Every entry of the directory: name -> bytes (a directory: None)."""
    return {f.name: None if f.is_dir() else f.read_bytes() for f in sorted(d.iterdir())}


def copy_of(written, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(written, data)
    return data


@pytest.mark.parametrize("damage", list(REFUSED))
def test_damage_is_refused_naming_the_file(agent_factory, tmp_path, written, damage):
    data = copy_of(written, tmp_path)
    do, named = REFUSED[damage]
    do(data)
    before = files(data)
    a = agent_factory(start=False, data_dir=data)
    a.start(wait=False)
    # Status 1 with a message, not a crash (a signal's negative status) or a hang.
    assert a.proc.wait(timeout=30) == 1, a.log_tail()
    assert f"{data / named}: " in a.log_text() or f"{data / named} " in a.log_text(), \
        a.log_tail()
    assert files(data) == before, "a refused start changed the data directory"


def test_journal_deleted_starts_from_the_snapshot_once_emptied(agent_factory, tmp_path,
                                                              written):
    """The way out the refusal names: an empty journal.log starts from the snapshot alone, and
    says so."""
    data = copy_of(written, tmp_path)
    (data / "journal.log").unlink()
    a = agent_factory(start=False, data_dir=data)
    a.start(wait=False)
    assert a.proc.wait(timeout=30) == 1
    assert "create it empty" in a.log_text()
    (data / "journal.log").write_bytes(b"")
    a.start()
    assert "journal.log: empty, starting from" in a.log_text()
    assert len(a.get_json("/v1/kv/big/?keys")) == BIG
    assert a.get("/v1/kv/after/0").status == 404


def test_torn_last_record_is_dropped_and_reported(agent_factory, tmp_path, written):
    """A journal cut inside its last record (a crash during the write): the agent drops that
    record, says how many bytes, and keeps every other one."""
    data = copy_of(written, tmp_path)
    journal = data / "journal.log"
    start, end = lines(journal)[-1]
    os.truncate(journal, (start + end) // 2)
    a = agent_factory(data_dir=data)
    assert f"{journal}: torn tail at offset {start} ({(end - start) // 2} bytes dropped)" \
        in a.log_text()
    assert len(a.get_json("/v1/kv/big/?keys")) == BIG
    assert a.get_json("/v1/kv/after/?keys") == [f"after/{i}" for i in range(AFTER - 1)]


def test_leftover_snapshot_tmp_is_ignored(agent_factory, tmp_path, written):
    """snapshot.json.tmp is never complete: a compaction killed before its rename leaves it."""
    data = copy_of(written, tmp_path)
    (data / "snapshot.json.tmp").write_bytes((data / "snapshot.json").read_bytes()[:5000])
    a = agent_factory(data_dir=data)
    assert len(a.get_json("/v1/kv/big/?keys")) == BIG
    assert len(a.get_json("/v1/kv/after/?keys")) == AFTER
    assert not (data / "snapshot.json.tmp").exists()


def test_a_data_dir_that_is_a_file_is_refused(agent_factory, tmp_path):
    path = tmp_path / "data"
    path.write_text("not a directory\n")
    a = agent_factory(start=False, data_dir=path)
    a.start(wait=False)
    assert a.proc.wait(timeout=30) == 1
    assert f"{path}: not a directory" in a.log_text()
    assert path.read_text() == "not a directory\n"


# ---- TLS files: read at start, never written; damage stops the agent naming the file.

CERT, KEY, CA = "dc1-server-consul-0.pem", "dc1-server-consul-0-key.pem", "consul-agent-ca.pem"

TLS_DAMAGE = {
    "certificate cut in half": (lambda d: cut_half(d / CERT), CERT),
    "certificate emptied": (lambda d: os.truncate(d / CERT, 0), CERT),
    "key zero-filled": (lambda d: zero_fill(d / KEY), KEY),
    "key byte flipped": (lambda d: flip(d / KEY, (d / KEY).stat().st_size // 2), KEY),
    "certificate and key swapped": (lambda d: swap(d / CERT, d / KEY), CERT),
    "key of another certificate": (
        lambda d: shutil.copy(d / "dc1-client-consul-0-key.pem", d / KEY), KEY),
    "CA cut in half": (lambda d: cut_half(d / CA), CA),
    "CA a directory": (lambda d: replace_by_directory(d / CA), CA),
}


@pytest.mark.parametrize("damage", list(TLS_DAMAGE))
def test_damaged_tls_file_stops_the_agent(agent_factory, write_config, certs, damage):  # noqa: F811
    do, named = TLS_DAMAGE[damage]
    do(certs)
    cfg = write_config({"tls": {"defaults": {
        "ca_file": str(certs / CA), "cert_file": str(certs / CERT), "key_file": str(certs / KEY),
        "verify_incoming": True,
    }}}, name="tls.json")
    a = agent_factory(start=False, config_files=[cfg],
                      extra_args=["-https-port", str(free_port())])
    a.start(wait=False)
    assert a.proc.wait(timeout=30) == 1, a.log_tail()
    assert str(certs / named) in a.log_text(), a.log_tail()
