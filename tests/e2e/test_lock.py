"""`mesh lock PREFIX CMD`: one holder at a time, exit status, lock loss (consul lock's rules)."""

import os
import subprocess
import time

from helpers import mesh_bin, wait_until

LOCK_FLAGS = 3304740253564472344


def lock_cmd(agent, *args):
    return [mesh_bin(), "lock", "-http-addr", f"127.0.0.1:{agent.port}", *args]


def test_contenders_never_overlap(agent, tmp_path):
    marks = tmp_path / "marks"
    script = (f'echo "start $(date +%s.%N)" >> {marks}; sleep 0.7; '
              f'echo "end $(date +%s.%N)" >> {marks}')
    t0 = time.monotonic()
    procs = [subprocess.Popen(lock_cmd(agent, "svc/leader", script)) for _ in range(3)]
    try:
        for p in procs:
            assert p.wait(timeout=30) == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    elapsed = time.monotonic() - t0
    lines = marks.read_text().split()
    events = [(lines[i], float(lines[i + 1])) for i in range(0, len(lines), 2)]
    assert [e[0] for e in events] == ["start", "end"] * 3, events  # strictly alternating
    for i in range(0, 6, 2):
        assert events[i + 1][1] >= events[i][1] + 0.6
        if i + 2 < 6:
            assert events[i + 2][1] >= events[i + 1][1], "next holder started before release"
    assert elapsed < 15, f"three 0.7 s holds took {elapsed:.1f} s"
    # released and session destroyed afterwards
    e = agent.get_json("/v1/kv/svc/leader/.lock")[0]
    assert "Session" not in e and e["Flags"] == LOCK_FLAGS and e["LockIndex"] == 3
    assert agent.get_json("/v1/session/list") == []


def test_holds_key_with_session_and_exit_status(agent, tmp_path):
    flag = tmp_path / "go"
    p = subprocess.Popen(lock_cmd(agent, "job", "sh", "-c", f"while [ ! -e {flag} ]; do "
                                  "sleep 0.05; done; exit 3"))
    try:
        held = wait_until(lambda: (lambda r: r.status == 200 and r.json()[0].get("Session"))(
            agent.get("/v1/kv/job/.lock")), 10, what="lock held")
        s = agent.get_json("/v1/session/info/" + held)[0]
        assert s["Name"] == "Consul API Lock" and s["TTL"] == "15s"
        flag.write_text("")
        assert p.wait(timeout=10) == 3
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert "Session" not in agent.get_json("/v1/kv/job/.lock")[0]


def test_lost_lock_kills_child(agent, tmp_path):
    pidfile = tmp_path / "child.pid"
    p = subprocess.Popen(lock_cmd(agent, "lost", f"echo $$ > {pidfile}; exec sleep 30"))
    try:
        held = wait_until(lambda: (lambda r: r.status == 200 and r.json()[0].get("Session"))(
            agent.get("/v1/kv/lost/.lock")), 10, what="lock held")
        wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), 5, what="child")
        child = int(pidfile.read_text())
        agent.put_true("/v1/session/destroy/" + held)  # invalidation: the lock is gone
        assert p.wait(timeout=10) == 1
        wait_until(lambda: not os.path.exists(f"/proc/{child}") or
                   open(f"/proc/{child}/stat").read().split()[2] == "Z", 5,
                   what="child terminated")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_timeout_while_held(agent):
    holder = subprocess.Popen(lock_cmd(agent, "busy", "sleep 5"))
    try:
        wait_until(lambda: (lambda r: r.status == 200 and r.json()[0].get("Session"))(
            agent.get("/v1/kv/busy/.lock")), 10, what="lock held")
        t0 = time.monotonic()
        r = subprocess.run(lock_cmd(agent, "-timeout", "1s", "busy", "true"),
                           capture_output=True, text=True, timeout=15)
        assert r.returncode == 1, r
        assert time.monotonic() - t0 < 4
    finally:
        holder.kill()
        holder.wait()
