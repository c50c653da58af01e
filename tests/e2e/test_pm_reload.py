"""End-to-end tests of `mesh pm reload` (PM2's zero-downtime restart): one instance at a time, the
new process started and listening on its PORT before the old one is stopped.

The app is a small HTTP server that binds its PORT with SO_REUSEPORT (so old and new can hold the
port together, as Node's cluster lets PM2's workers do), waits a while before it listens (so a
reload that did not wait for it would leave the port closed), and on SIGTERM answers what is
queued before it closes its listener.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys

from helpers import HOST, request, wait_until
from test_pm import alive, mesh_bin, pm, port_pair  # noqa: F401 (pm is a fixture)

APP = r'''
import os, select, signal, socket, sys, time

port = int(os.environ["PORT"])
time.sleep(float(os.environ.get("LISTEN_AFTER", "0")))
ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
ls.bind(("127.0.0.1", port))
ls.listen(128)
ls.setblocking(False)
stopping = []
signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))


def serve(conn):
    conn.setblocking(True)
    conn.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return
        data += chunk
    body = str(os.getpid()).encode()
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                 % (len(body), body))


while True:
    ready, _, _ = select.select([ls], [], [], 0.05)
    if not ready and stopping:
        break
    while ready:
        try:
            conn, _ = ls.accept()
        except BlockingIOError:
            break
        with conn:
            try:
                serve(conn)
            except OSError:
                pass
ls.close()
'''


@contextlib.contextmanager
def running(pm, *args):
    """`mesh pm ARGS` in the background; killed if still running when the block ends."""
    p = subprocess.Popen([mesh_bin(), "pm", "-home", pm.home, *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        yield p
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def pids_of(pm, name):
    return {r["instance"]: r["pid"] for r in pm.app(name)}


def answering_pid(port):
    try:
        r = request(port, "GET", "/", timeout=5)
    except OSError as e:
        return e
    return int(r.body) if r.status == 200 else None


def test_reload_keeps_every_port_answering_and_replaces_every_process(pm):
    app = pm.tmp / "app.py"
    app.write_text(APP)
    base = port_pair()
    pm.run("start", "web", "-i", 2, "-port-base", base, "-listen-timeout", "60s",
           "-env", "LISTEN_AFTER=0.5", "--", sys.executable, str(app))
    before = pids_of(pm, "web")
    for i in range(2):
        wait_until(lambda: answering_pid(base + i) == before[i], 20, interval=0.1,
                   what=f"instance {i} answering")

    failures = []
    resets = []
    answered = 0
    with running(pm, "reload", "web") as reload:
        # Requests to both ports, one after the other, for as long as the reload runs.
        for n in range(20000):
            got = answering_pid(base + n % 2)
            if isinstance(got, int):
                answered += 1
            elif isinstance(got, ConnectionResetError):
                resets.append(n % 2)
            else:
                failures.append((n % 2, n, got))
            if reload.poll() is not None:
                break
        out, err = reload.communicate(timeout=60)
    assert reload.returncode == 0, out + err
    # Never a moment without a listener: nothing refused, nothing timed out.
    assert not failures, f"{len(failures)} failed requests of {answered + len(failures)}: " \
                         f"{failures[:5]}"
    # A connection still in the old listener's queue when it closes is reset by the kernel
    # (unless net.ipv4.tcp_migrate_req is set); one at a time, that is at most one per port.
    assert resets.count(0) <= 1 and resets.count(1) <= 1, resets
    assert answered > 0

    rows = pm.app("web")
    after = {r["instance"]: r["pid"] for r in rows}
    assert all(r["status"] == "online" and r["restarts"] == 1 for r in rows), rows
    for i in range(2):
        assert after[i] != before[i]
        assert answering_pid(base + i) == after[i]
    wait_until(lambda: not any(alive(p) for p in before.values()), 20, interval=0.1,
               what="old processes gone")
    # One at a time: instance 1's new process started after instance 0's old one had stopped.
    log = pm.log()
    assert log.index(f"pid {before[0]} (replaced by a reload) exited") < \
        log.index(f"web-1 started: pid {after[1]}"), log


def test_reload_without_a_port_waits_the_listen_timeout_and_restarts_what_is_stopped(pm):
    pm.run("start", "plain", "-i", 2, "-listen-timeout", "200ms", "--", "sleep", "600")
    pm.run("start", "idle", "--", "sleep", "600")
    pm.run("stop", "idle")
    before = pids_of(pm, "plain")
    pm.run("reload", "all")
    rows = pm.ls()
    assert all(r["status"] == "online" for r in rows), rows
    after = pids_of(pm, "plain")
    assert all(after[i] != before[i] and alive(after[i]) for i in range(2))
    assert not any(alive(p) for p in before.values())
    assert pm.app("idle")[0]["pid"]
    r = pm.run("reload", "nope", check=False)
    assert r.returncode == 1 and 'app "nope" not found' in r.stderr


def test_reload_of_an_app_that_does_not_come_up_still_replaces_it(pm):
    # The new process cannot bind (no SO_REUSEPORT): it crashes, the old one is stopped anyway,
    # and the restart policy takes over as after any crash.
    app = pm.tmp / "app.py"
    app.write_text(APP.replace('ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)',
                               'pass'))
    base = port_pair()
    pm.run("start", "web", "-port-base", base, "-listen-timeout", "60s", "--", sys.executable,
           str(app))
    old = pm.app("web")[0]["pid"]
    wait_until(lambda: answering_pid(base) == old, 20, interval=0.1, what="answering")
    pm.run("reload", "web")
    wait_until(lambda: not alive(old), 20, interval=0.1, what="old process gone")
    row = pm.wait_status("web", "online", timeout=20)[0]
    assert row["pid"] != old
    wait_until(lambda: answering_pid(base) == row["pid"], 20, interval=0.1, what="new answers")
    assert "still running after the kill timeout" not in pm.log()


def test_stop_during_a_reload_wins(pm):
    pm.run("start", "slow", "-i", 2, "-listen-timeout", "60s", "--", "sleep", "600")
    before = pids_of(pm, "slow")
    with running(pm, "reload", "all") as reload:
        wait_until(lambda: any(r["status"] == "launching" for r in pm.app("slow")), 20,
                   interval=0.1, what="instance 0 launching")
        pm.run("stop", "slow")
        out, err = reload.communicate(timeout=60)
    assert reload.returncode == 0, out + err
    rows = pm.app("slow")
    assert all(r["status"] == "stopped" and r["pid"] is None for r in rows), rows
    apps = (pm.pids | set(before.values())) - {pm.daemon_pid()}
    assert len(apps) == 3  # the two first processes, and instance 0's new one
    wait_until(lambda: not any(alive(p) for p in apps), 20, interval=0.1,
               what="every process gone")


def test_a_daemon_killed_during_a_reload_leaves_no_process_unsupervised(pm):
    pm.run("start", "slow", "-listen-timeout", "60s", "--", "sleep", "600")
    old = pm.wait_status("slow", "online")[0]["pid"]
    with running(pm, "reload", "slow") as reload:
        new = wait_until(lambda: (lambda r: r["pid"] if r["status"] == "launching" and r["pid"]
                                  and r["pid"] != old else None)(pm.app("slow")[0]), 20,
                         interval=0.1, what="the new process launching")
        daemon = pm.daemon_pid()
        assert alive(old)
        os.kill(daemon, signal.SIGKILL)
        reload.communicate(timeout=60)
    wait_until(lambda: not alive(daemon), 10, interval=0.05, what="the daemon gone")
    # The next command starts a daemon, which keeps the new process and stops the old one.
    row = pm.wait_status("slow", "online", timeout=20)[0]
    assert row["pid"] == new
    wait_until(lambda: not alive(old), 20, interval=0.1, what="the replaced process stopped")
    assert alive(new)
    assert f"pid {old} was being replaced by a reload when the last daemon died" in pm.log()
    pids_dir = os.path.join(pm.home, "pids")
    wait_until(lambda: os.listdir(pids_dir) == ["slow-0.pid"], 10, interval=0.1,
               what="only the new process's pidfile")


@contextlib.contextmanager
def killed_at(pm, pid, syscalls, nth):
    """SIGKILL for process pid on entry to its nth call of one of syscalls (strace on its main
    thread, the daemon's loop): a kill -9 that lands between two steps of one callback, which no
    signal sent from outside could aim at. Yields once strace is attached."""
    out = pm.tmp / "strace.out"
    err = pm.tmp / "strace.err"
    with open(err, "w") as errf:
        p = subprocess.Popen(["strace", "-p", str(pid), "-o", str(out), "-e", f"trace={syscalls}",
                              "-e", f"inject={syscalls}:signal=KILL:when={nth}"],
                             stdout=subprocess.DEVNULL, stderr=errf)
    try:
        wait_until(lambda: "attached" in err.read_text() or p.poll() is not None, 20,
                   interval=0.05, what="strace attached")
        assert p.poll() is None, err.read_text()
        yield
        wait_until(lambda: not alive(pid), 20, interval=0.05, what="the daemon killed by strace")
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()
    print(out.read_text())


def pidfile_pid(pm, name):
    with open(os.path.join(pm.home, "pids", name)) as f:
        return int(f.read().split()[0])


def saved_pid(pm, name):
    with open(os.path.join(pm.home, "state.json")) as f:
        apps = json.load(f)["apps"]
    return next(a for a in apps if a["spec"]["name"] == name)["instances"][0]["pid"]


def killed_in_a_reload(pm, syscalls, nth):
    """Starts `slow` and kills the daemon at the nth call of syscalls in its reload; the pid of
    the process it replaced."""
    pm.run("start", "slow", "-listen-timeout", "60s", "--", "sleep", "600")
    old = pm.wait_status("slow", "online")[0]["pid"]
    daemon = pm.daemon_pid()
    # The libuv threadpool (log rotation, within the first second) is started by a clone too.
    wait_until(lambda: len(os.listdir(f"/proc/{daemon}/task")) > 1, 20, interval=0.05,
               what="the daemon's threadpool started")
    with killed_at(pm, daemon, syscalls, nth):
        r = pm.run("reload", "slow", check=False)
    assert r.returncode == 1 and "closed the connection" in r.stderr, r.stdout + r.stderr
    return old


def test_a_daemon_killed_before_it_saved_a_reload_adopts_the_new_process(pm):
    # A reload's renames: the old pidfile to .retired.pid, the new process's pidfile into place,
    # state.json. Killed before the third, the table still names the old process.
    old = killed_in_a_reload(pm, "rename", 3)
    new = pidfile_pid(pm, "slow-0.pid")
    pm.pids.add(new)
    assert new != old and alive(new) and saved_pid(pm, "slow") == old
    assert pidfile_pid(pm, f"slow-0.{old}.retired.pid") == old
    # The next daemon adopts the new process, newer than its table, and stops the old one.
    row = pm.wait_status("slow", "online", timeout=20)[0]
    assert row["pid"] == new, pm.log()
    wait_until(lambda: not alive(old), 20, interval=0.1, what="the replaced process stopped")
    assert alive(new)
    pids_dir = os.path.join(pm.home, "pids")
    wait_until(lambda: os.listdir(pids_dir) == ["slow-0.pid"], 10, interval=0.1,
               what="only the new process's pidfile")
    assert pidfile_pid(pm, "slow-0.pid") == new
    assert pm.app("slow")[0]["pid"] == new


def test_a_daemon_killed_before_a_reload_started_the_new_process_keeps_the_old(pm):
    # Killed after the old pidfile became .retired.pid, before the new process was forked: the
    # old process is the table's and the retired file's. It stays the instance's, not stopped.
    old = killed_in_a_reload(pm, "clone,clone3,fork,vfork", 1)
    pids_dir = os.path.join(pm.home, "pids")
    assert os.listdir(pids_dir) == [f"slow-0.{old}.retired.pid"] and saved_pid(pm, "slow") == old
    row = pm.wait_status("slow", "online", timeout=20)[0]
    assert row["pid"] == old and row["restarts"] == 0, (row, pm.log())
    wait_until(lambda: os.listdir(pids_dir) == ["slow-0.pid"], 10, interval=0.1,
               what="the retired pidfile dropped")
    assert pidfile_pid(pm, "slow-0.pid") == old
    assert alive(old), pm.log()
    assert "was being replaced by a reload" not in pm.log()
    assert pm.app("slow")[0]["pid"] == old
