"""End-to-end tests of `mesh pm`, the supervisor (PM2's job), with the real webapp and small shell
commands: instances and their PORT, crash restarts with backoff, errored after max_restarts,
graceful stop and SIGKILL after the kill timeout, scale, log rotation, ecosystem files, and the
daemon dying (kill -9) with and without its apps.

Every test has its own -home under tmp_path and ends with `mesh pm kill`, then a SIGKILL sweep
of every pid it saw (the daemon's and the apps'), so nothing outlives it.
"""

import json
import os
import re
import resource
import select
import signal
import socket
import subprocess
import time

import pytest

from helpers import HOST, SANITIZER_MARKERS, mesh_bin, request, wait_until
from test_nofile import hard_limit, low_soft_limit

CMD_TIMEOUT = 30  # seconds for one `mesh pm` command


def webapp_bin():
    return os.path.join(os.path.dirname(mesh_bin()), "webapp")


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def port_pair():
    """P such that P and P+1 are free on 127.0.0.1 right now (bounded tries)."""
    for _ in range(50):
        with socket.socket() as a:
            a.bind((HOST, 0))
            p = a.getsockname()[1]
            if p >= 65535:
                continue
            with socket.socket() as b:
                try:
                    b.bind((HOST, p + 1))
                except OSError:
                    continue
                return p
    raise AssertionError("no two consecutive free ports")


class PM:
    """Runs `mesh pm -home HOME ...` and remembers every pid it saw."""

    def __init__(self, tmp_path):
        self.home = str(tmp_path / "pm")
        self.tmp = tmp_path
        self.pids = set()

    def run(self, *args, check=True, timeout=CMD_TIMEOUT):
        r = subprocess.run([mesh_bin(), "pm", "-home", self.home, *map(str, args)],
                           capture_output=True, text=True, timeout=timeout)
        self._note_daemon()
        if check:
            assert r.returncode == 0, f"mesh pm {args} exited {r.returncode}:\n{r.stdout}{r.stderr}"
        return r

    def _note_daemon(self):
        try:
            with open(os.path.join(self.home, "pm.pid")) as f:
                self.pids.add(int(f.read().split()[0]))  # "PID START"
        except (OSError, ValueError):
            pass

    def daemon_pid(self):
        with open(os.path.join(self.home, "pm.pid")) as f:
            return int(f.read().split()[0])

    def ls(self):
        rows = json.loads(self.run("ls", "-json").stdout)
        self.pids.update(r["pid"] for r in rows if r["pid"])
        return rows

    def app(self, name):
        return [r for r in self.ls() if r["name"] == name]

    def wait_status(self, name, status, timeout=10):
        return wait_until(lambda: (lambda rows: rows if rows and all(
            r["status"] == status for r in rows) else None)(self.app(name)),
            timeout, interval=0.1, what=f"{name} {status}")

    def wait_restarts(self, name, restarts, timeout=40):
        """The rows of app `name` once each instance is online with at least `restarts`
        restarts."""
        return wait_until(lambda: (lambda rows: rows if rows and all(
            r["status"] == "online" and r["restarts"] >= restarts for r in rows) else None)(
            self.app(name)), timeout, interval=0.1, what=f"{name}: {restarts} restarts")

    def log(self):
        try:
            with open(os.path.join(self.home, "pm.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def teardown(self):
        try:
            self.run("kill", check=False)
        finally:
            for pid in self.pids:
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)


@pytest.fixture
def pm(tmp_path):
    p = PM(tmp_path)
    yield p
    p.teardown()
    text = p.log()
    for marker in SANITIZER_MARKERS:
        if marker in text:
            pytest.fail(f"pm.log has a sanitizer report ({marker!r}):\n{text[-6000:]}",
                        pytrace=False)


def webapp_answers(port, pid=None):
    try:
        r = request(port, "GET", "/", timeout=2)
    except OSError:
        return None
    if r.status != 200:
        return None
    body = r.json()
    return body if pid is None or body["pid"] == pid else None


def test_start_instances_ports_env_and_ls_json(pm):
    base = port_pair()
    r = pm.run("start", "web", "-i", 2, "-port-base", base, "--", webapp_bin(), "-no-register")
    assert "web" in r.stdout and "online" in r.stdout
    for i in range(2):
        body = wait_until(lambda: webapp_answers(base + i), 10, what=f"instance {i}")
        assert body["instance"] == str(i) and body["port"] == base + i
    rows = wait_until(lambda: (lambda rs: rs if all(x["memory"] > 0 for x in rs) else None)(
        pm.app("web")), 5, interval=0.2, what="memory sampled")
    assert [x["instance"] for x in rows] == [0, 1]
    assert len({x["pm_id"] for x in rows}) == 2
    for i, x in enumerate(rows):
        assert x["status"] == "online" and x["restarts"] == 0 and alive(x["pid"])
        assert x["port"] == base + i
        assert x["uptime_ms"] >= 0 and x["cpu"] >= 0
        assert x["exit_code"] is None and x["signal"] is None
        assert x["command"].endswith("webapp -no-register")
    table = pm.run("ls").stdout.splitlines()
    assert table[0].split() == ["name", "id", "instance", "pid", "status", "restarts", "uptime",
                                "cpu", "memory"]
    assert len(table) == 3 and all(" online " in line for line in table[1:])
    # Memory as every meshkit table prints it ("3.8 MB", as in mesh status).
    assert all(re.search(r"  \d+\.\d (kB|MB|GB)$", line) for line in table[1:]), table
    assert pm.run("ping").returncode == 0
    # Same name again, and a command that cannot run: clear errors, exit 1.
    r = pm.run("start", "web", "--", "/bin/true", check=False)
    assert r.returncode == 1 and 'app "web" already exists' in r.stderr
    r = pm.run("start", "nope", "--", str(pm.tmp / "missing-binary"), check=False)
    assert r.returncode == 1 and "no such file or directory" in r.stderr
    assert not pm.app("nope")
    r = pm.run("start", "x", "-i", "many", "--", "/bin/true", check=False)
    assert r.returncode == 1 and "invalid value" in r.stderr


def test_crash_is_restarted_with_a_new_pid(pm):
    base = port_pair()
    pm.run("start", "web", "-port-base", base, "--", webapp_bin(), "-no-register")
    first = pm.wait_status("web", "online")[0]
    wait_until(lambda: webapp_answers(base), 10, what="webapp")
    os.kill(first["pid"], signal.SIGKILL)
    row = wait_until(lambda: (lambda rs: rs[0] if rs and rs[0]["pid"] and rs[0]["pid"] != first[
        "pid"] and rs[0]["status"] == "online" else None)(pm.app("web")), 10, interval=0.1,
        what="restart with a new pid")
    assert row["restarts"] == 1 and row["signal"] == "SIGKILL"
    body = wait_until(lambda: webapp_answers(base, row["pid"]), 10, what="restarted webapp")
    assert body["port"] == base


def test_exiting_command_ends_errored_with_growing_delays(pm):
    pm.run("start", "crash", "-max-restarts", 4, "-exp-backoff-restart-delay", "50ms", "--", "sh",
           "-c", "echo out-$INSTANCE_ID-$PM_ID; exit 3")
    delays = []

    def errored():
        row = pm.app("crash")[0]
        if row["restart_delay_ms"] and (not delays or delays[-1] != row["restart_delay_ms"]):
            delays.append(row["restart_delay_ms"])
        return row if row["status"] == "errored" else None

    row = wait_until(errored, 15, interval=0.02, what="errored")
    # PM2's count: the 4th unstable exit in a row is final, after 3 restarts.
    assert row["restarts"] == 3 and row["exit_code"] == 3 and row["pid"] is None
    # 50, 75, 112 ms: each delay seen is 1.5 times the one before.
    assert delays == sorted(delays) and delays[-1] == 112, delays
    assert set(delays) <= {50, 75, 112}
    time.sleep(0.5)
    assert pm.app("crash")[0]["restarts"] == 3  # errored: no more restarts
    out = pm.run("logs", "crash", "-out", "-lines", 2).stdout.splitlines()
    assert out == ["crash-0 | out-0-0", "crash-0 | out-0-0"]


def test_stop_is_graceful_and_sigkills_after_the_kill_timeout(pm):
    base = port_pair()
    pm.run("start", "web", "-port-base", base, "--", webapp_bin(), "-no-register")
    pm.run("start", "stubborn", "-kill-timeout", "300ms", "--", "sh", "-c",
           "trap '' TERM; while :; do sleep 0.05; done")
    wait_until(lambda: webapp_answers(base), 10, what="webapp")
    web = pm.wait_status("web", "online")[0]
    stub = pm.wait_status("stubborn", "online")[0]
    pm.run("stop", "web")
    row = pm.app("web")[0]  # stop returns once the process has exited
    assert row["status"] == "stopped" and row["exit_code"] == 0 and row["signal"] is None
    assert not alive(web["pid"])
    pm.run("stop", "stubborn")
    row = pm.app("stubborn")[0]
    assert row["status"] == "stopped" and row["signal"] == "SIGKILL"
    assert not alive(stub["pid"])
    # restart brings a stopped app back with a new pid and one more restart.
    pm.run("restart", "web")
    row = pm.wait_status("web", "online")[0]
    assert row["restarts"] == 1 and row["pid"] != web["pid"]
    wait_until(lambda: webapp_answers(base, row["pid"]), 10, what="restarted webapp")
    pm.run("delete", "all")
    assert pm.ls() == []
    assert not alive(row["pid"])


def test_scale_up_and_down(pm):
    base = port_pair()
    pm.run("start", "web", "-port-base", base, "--", webapp_bin(), "-no-register")
    wait_until(lambda: webapp_answers(base), 10, what="instance 0")
    pm.run("scale", "web", "+1")
    rows = pm.wait_status("web", "online")
    assert [r["instance"] for r in rows] == [0, 1] and rows[1]["port"] == base + 1
    body = wait_until(lambda: webapp_answers(base + 1), 10, what="instance 1")
    assert body["instance"] == "1"
    gone = rows[1]["pid"]
    pm.run("scale", "web", "-1")
    rows = pm.app("web")
    assert [r["instance"] for r in rows] == [0] and not alive(gone)
    pm.run("scale", "web", "3")
    assert [r["instance"] for r in pm.wait_status("web", "online")] == [0, 1, 2]
    r = pm.run("scale", "web", "-3", check=False)
    assert r.returncode == 1 and "out of range" in r.stderr
    r = pm.run("scale", "ghost", "+1", check=False)
    assert r.returncode == 1 and 'app "ghost" not found' in r.stderr


def _log_copy(path, prefix):
    """(inode, size, numbers of its "PREFIX-N" lines) of a log file, or None while it is missing
    (a rotation renames .1 to .2 before the fresh copy becomes .1): one open, so all three are
    of the same file."""
    try:
        with open(path) as f:
            text = f.read()
            return os.fstat(f.fileno()).st_ino, len(text), \
                [int(w[len(prefix) + 1:]) for w in text.split()]
    except FileNotFoundError:
        return None


def test_logs_rotate_and_are_followed(pm):
    """Under load (a slow machine, other tests at once) every wait is for a condition, with
    deadlines far above what it takes, and what a rotation in progress may hide for a moment (a
    .1 between its renames) is looked at again rather than taken as missing."""
    pm.run("start", "chatty", "-max-log-size", 4000, "--", "sh", "-c",
           "i=0; while :; do echo line-$i; echo err-$i >&2; i=$((i+1)); sleep 0.002; done")
    logs = os.path.join(pm.home, "logs")
    out = os.path.join(logs, "chatty-0-out.log")
    err = os.path.join(logs, "chatty-0-err.log")
    # .2 and .1 read together, again if a rotation is between its renames: .1 is the newer copy,
    # each a whole copy of a file past the limit.
    rot = wait_until(lambda: (lambda o2, o1: (o2, o1) if o2 and o1 else None)(
        _log_copy(out + ".2", "line"), _log_copy(out + ".1", "line")), 60,
        interval=0.1, what="two rotations")
    assert rot[1][2][0] > rot[0][2][-1] and rot[1][1] > 4000, rot
    # err grows as fast: rotated too (in the same pass as out, maybe just after it).
    wait_until(lambda: _log_copy(err + ".1", "err"), 60, interval=0.1, what="err rotated")
    # The last lines, reaching into .1 when the current file was just truncated: whole lines of
    # the right stream every time, and all of them once no rotation is between its renames.
    for flag, label, want in (("-out", "chatty-0 | line-", 5), ("-err", "chatty-0 err | err-", 3)):
        def tail():
            lines = pm.run("logs", "chatty", "-lines", want, flag).stdout.splitlines()
            assert all(x.startswith(label) for x in lines), lines
            return len(lines) == want
        wait_until(tail, 30, interval=0.1, what=f"the last {want} lines of {flag}")
    # -f keeps printing across a rotation: once it prints, a rotation while it runs (a new .1)
    # copies the file up to some line; -f then prints lines past that one, which only the file
    # truncated by that rotation holds.
    f = subprocess.Popen([mesh_bin(), "pm", "-home", pm.home, "logs", "chatty", "-f", "-out",
                          "-lines", "0"], stdout=subprocess.PIPE)
    try:
        seen = []
        partial = b""
        rotated = cut = None
        deadline = time.monotonic() + 90
        for _ in range(1000000):
            if time.monotonic() > deadline:
                break
            if seen and rotated is None:
                rotated = wait_until(lambda: _log_copy(out + ".1", "line"), 10, interval=0.01)[0]
            elif rotated is not None and cut is None:
                copy = _log_copy(out + ".1", "line")
                if copy and copy[0] != rotated:
                    cut = copy[2][-1]
            if cut is not None and seen[-1] > cut and len(seen) > 50:
                break
            if not select.select([f.stdout], [], [], 0.2)[0]:
                continue
            chunk = os.read(f.stdout.fileno(), 65536)
            if not chunk:
                break
            *lines, partial = (partial + chunk).split(b"\n")
            seen.extend(int(line.split(b"line-")[1]) for line in lines)
        assert cut is not None, "no rotation while following"
        assert seen[-1] > cut and len(seen) > 50, (cut, seen[-5:], len(seen))
        assert seen == sorted(seen)
    finally:
        f.kill()
        f.wait(5)


def test_logs_follow_shows_output_that_has_no_newline(pm):
    """A line that does not end (a dump without newlines) is shown in pieces of 64 KiB, not held
    back, and buffered without limit, for a newline that may never come."""
    pm.run("start", "quiet", "--", "sleep", "60")
    out = os.path.join(pm.home, "logs", "quiet-0-out.log")
    f = subprocess.Popen([mesh_bin(), "pm", "-home", pm.home, "logs", "quiet", "-f", "-out",
                          "-lines", "0"], stdout=subprocess.PIPE)
    got = bytearray()

    def read_until(done, timeout):
        deadline = time.monotonic() + timeout
        for _ in range(10000):
            if done() or time.monotonic() > deadline:
                break
            if select.select([f.stdout], [], [], 0.1)[0]:
                chunk = os.read(f.stdout.fileno(), 65536)
                if not chunk:
                    break
                got.extend(chunk)
        return done()

    try:
        # Once "ready" shows, -f is past the initial tail and following the file.
        for _ in range(50):
            with open(out, "a") as o:
                o.write("ready\n")
            if read_until(lambda: b"ready" in got, 0.5):
                break
        with open(out, "a") as o:
            o.write("x" * 300000)
        assert read_until(lambda: got.count(b"x") >= 4 * 65536, 10), \
            f"{got.count(b'x')} of 300000 bytes shown"
        assert b"quiet-0 | " + b"x" * 65536 + b"\n" in got
    finally:
        f.kill()
        f.wait(5)


def test_logs_refuses_what_it_would_ignore(pm):
    r = pm.run("logs", "web", "extra", "-lines", 2, check=False)
    assert r.returncode == 1 and 'unexpected argument "extra"' in r.stderr, r.stderr
    r = pm.run("logs", "web", "-lines", -1, check=False)
    assert r.returncode == 1 and "-lines" in r.stderr.splitlines()[0], r.stderr
    r = pm.run("logs", "web", "-help")
    assert r.stdout.startswith("Usage: mesh pm logs NAME")
    assert pm.run("ping", check=False).returncode == 1  # no daemon was needed for any of it


def test_ecosystem_file_and_its_errors(pm):
    base = port_pair()
    eco = pm.tmp / "eco.json"
    eco.write_text(json.dumps({"apps": [
        {"name": "web", "script": webapp_bin(), "args": ["-no-register"], "instances": 2,
         "port_base": base, "kill_timeout": "2s"},
        {"name": "hello", "script": "sh", "args": ["-c", "echo $GREETING from $PWD; sleep 60"],
         "env": {"GREETING": "bonjour"}, "cwd": "sub"},
    ]}, indent=1))
    (pm.tmp / "sub").mkdir()
    pm.run("start", eco)
    for i in range(2):
        wait_until(lambda: webapp_answers(base + i), 10, what=f"web instance {i}")
    wait_until(lambda: pm.run("logs", "hello", "-out").stdout.strip(), 10, what="hello's log")
    assert pm.run("logs", "hello", "-out").stdout.strip() == \
        f"hello-0 | bonjour from {pm.tmp / 'sub'}"
    desc = json.loads(pm.run("describe", "web", "-json").stdout)
    assert len(desc) == 2 and desc[0]["spec"]["kill_timeout"] == 2000
    assert desc[0]["out_log"].endswith("/logs/web-0-out.log")
    text = pm.run("describe", "web").stdout
    assert "kill_timeout" in text and "exp_backoff_restart_delay" in text
    # One column of values per instance, however long a key ("exp_backoff_restart_delay").
    for block in text.split("\n\n"):
        starts = {re.match(r"\S+\s+", line).end() for line in block.splitlines()}
        assert len(starts) == 1, block
    bad = pm.tmp / "bad.json"
    bad.write_text('{"apps": [\n  {"name": "x",\n   "instances": "two",\n   "script": "sh"}]}\n')
    r = pm.run("start", bad, check=False)
    assert r.returncode == 1
    assert r.stderr.strip() == f"mesh pm: {bad}:3: apps[0].instances: expected an integer, " \
                               "got another type"
    bad.write_text('{"apps": [\n  {"name": "x", "script": "sh",\n "watch_options": {}}]}\n')
    r = pm.run("start", bad, check=False)
    assert r.returncode == 1 and f"{bad}:3: apps[0].watch_options: unknown key" in r.stderr
    # A cwd that is not there is named as such (the exec error would blame the script).
    bad.write_text('{"apps": [\n  {"name": "x", "script": "sh",\n   "cwd": "nope"}]}\n')
    r = pm.run("start", bad, check=False)
    assert r.returncode == 1
    assert r.stderr.strip() == f"mesh pm: {bad}:3: apps[0].cwd: {pm.tmp / 'nope'}: " \
                               "No such file or directory"
    assert {r["name"] for r in pm.ls()} == {"web", "hello"}
    # A command that cannot be executed starts none of the file's apps, as a taken name does;
    # the error comes once those started before it are gone, so the fixed file starts at once.
    pids = pm.tmp / "pids"
    two = {"apps": [{"name": "first", "script": "sh",
                     "args": ["-c", f"echo $$ >> {pids}; exec sleep 60"]},
                    {"name": "second", "script": str(pm.tmp / "missing")}]}
    bad.write_text(json.dumps(two))
    r = pm.run("start", bad, check=False)
    pm.pids.update(int(p) for p in pids.read_text().split())
    assert r.returncode == 1 and f"exec {pm.tmp / 'missing'}" in r.stderr, r.stderr
    assert {r["name"] for r in pm.ls()} == {"web", "hello"}
    assert not any(alive(int(p)) for p in pids.read_text().split())
    two["apps"][1]["script"] = "sleep"
    two["apps"][1]["args"] = ["60"]
    bad.write_text(json.dumps(two))
    pm.run("start", bad)
    assert {r["name"] for r in pm.ls()} == {"web", "hello", "first", "second"}


def test_daemon_kill9_readopts_running_apps(pm):
    base = port_pair()
    pm.run("start", "web", "-i", 2, "-port-base", base, "--", webapp_bin(), "-no-register")
    before = pm.wait_status("web", "online")
    old_daemon = pm.daemon_pid()
    os.kill(old_daemon, signal.SIGKILL)
    wait_until(lambda: not alive(old_daemon), 5, what="daemon gone")
    assert pm.run("ping", check=False).returncode == 1
    after = pm.app("web")  # starts a new daemon, which adopts
    assert pm.daemon_pid() != old_daemon
    assert [r["pid"] for r in after] == [r["pid"] for r in before]
    assert all(r["status"] == "online" and r["restarts"] == 0 for r in after)
    # The adopted process is watched: its crash is noticed and restarted.
    os.kill(after[0]["pid"], signal.SIGKILL)
    row = wait_until(lambda: (lambda rs: rs[0] if rs[0]["pid"] not in (None, after[0]["pid"])
                              else None)(pm.app("web")), 10, interval=0.1, what="restart")
    assert row["restarts"] == 1 and row["status"] == "online"
    wait_until(lambda: webapp_answers(base, row["pid"]), 10, what="restarted webapp")
    # SIGTERM to the daemon also leaves the apps running.
    daemon = pm.daemon_pid()
    os.kill(daemon, signal.SIGTERM)
    wait_until(lambda: not alive(daemon), 10, what="daemon exit on SIGTERM")
    assert alive(row["pid"]) and alive(after[1]["pid"])
    assert [r["pid"] for r in pm.app("web")] == [row["pid"], after[1]["pid"]]


def test_daemon_and_apps_kill9_resurrects(pm):
    base = port_pair()
    pm.run("start", "web", "-port-base", base, "--", webapp_bin(), "-no-register")
    pm.run("start", "idle", "--", "sleep", "60")
    pm.run("stop", "idle")
    web = pm.wait_status("web", "online")[0]
    os.kill(pm.daemon_pid(), signal.SIGKILL)
    os.kill(web["pid"], signal.SIGKILL)
    wait_until(lambda: not alive(web["pid"]), 5, what="app gone")
    rows = {r["name"]: r for r in pm.ls()}
    assert rows["web"]["status"] == "online" and rows["web"]["pid"] != web["pid"]
    assert rows["idle"]["status"] == "stopped" and rows["idle"]["pid"] is None
    wait_until(lambda: webapp_answers(base, rows["web"]["pid"]), 10, what="resurrected webapp")


def test_a_broken_state_file_is_kept_aside(pm):
    """A state.json the daemon cannot read (edited by hand, a full disk) names processes it may
    not supervise any more: it is kept as state.json.bad, not overwritten by the empty table."""
    os.makedirs(pm.home)
    state = os.path.join(pm.home, "state.json")
    broken = '{"version": 1, "apps": [{"spec": {"name": "web", "script": "x", "args": ['
    with open(state, "w") as f:
        f.write(broken)
    assert pm.ls() == []
    with open(state + ".bad") as f:
        assert f.read() == broken
    assert "state.json.bad" in pm.log()
    # An app it cannot read is kept aside the same way.
    pm.run("kill")
    with open(state, "w") as f:
        json.dump({"version": 1, "apps": [{"spec": {"name": "a b", "script": "x"}}]}, f)
    assert pm.ls() == []
    with open(state + ".bad.1") as f:  # the first bad copy is kept too
        assert '"a b"' in f.read()
    with open(state + ".bad") as f:
        assert f.read() == broken


def test_a_damaged_state_file_takes_the_apps_back_from_their_pidfiles(pm):
    """With state.json damaged while apps run, the next daemon says so on every ls, keeps the
    bad copy, and takes the running apps back through their pidfiles, so kill still stops them."""
    pm.run("start", "idle", "-i", 2, "--", "sleep", "60")
    pids = sorted(r["pid"] for r in pm.ls())
    os.kill(pm.daemon_pid(), signal.SIGKILL)
    state = os.path.join(pm.home, "state.json")
    with open(state, "w") as f:
        f.write('{"version": 1, "apps": [')
    r = pm.run("ls", "-json")
    assert "warning" in r.stderr and "state.json.bad" in r.stderr, r.stderr
    rows = json.loads(r.stdout)
    assert sorted(x["pid"] for x in rows) == pids, rows
    assert all(x["name"] == "idle" and x["status"] == "online" for x in rows), rows
    assert rows[0]["command"] == "sleep 60"
    assert os.path.exists(state + ".bad")
    pm.run("kill")
    assert not any(alive(p) for p in pids)


def test_a_state_that_cannot_be_saved_is_not_acknowledged(pm):
    pm.run("start", "idle", "--", "sleep", "60")
    state = os.path.join(pm.home, "state.json")
    os.remove(state)
    os.mkdir(state)  # the rename over it fails, as a full disk would fail the write
    try:
        r = pm.run("scale", "idle", 2, check=False)
        assert r.returncode == 1 and "could not be saved" in r.stderr, r.stdout + r.stderr
    finally:
        os.rmdir(state)
        pm.ls()


def test_an_ecosystem_file_over_the_socket_limit_names_the_limit(pm):
    eco = pm.tmp / "big.json"
    eco.write_text(json.dumps({"apps": [{"name": "big", "script": "sleep",
                                         "args": ["60"], "env": {"X": "x" * (1100 * 1024)}}]}))
    r = pm.run("start", str(eco), check=False)
    assert r.returncode == 1 and "limit of 1 MiB" in r.stderr, r.stderr


def test_a_daemon_log_that_cannot_be_opened_is_reported(pm):
    """The daemon cannot start without its log (a read-only or broken home): say so at once,
    rather than wait for it to answer and point at a log that does not exist."""
    os.makedirs(os.path.join(pm.home, "pm.log"))
    r = pm.run("ls", check=False)
    assert r.returncode == 1 and "pm.log: Is a directory" in r.stderr, r.stderr


def test_kill_stops_everything_and_ping(pm):
    assert pm.run("ping", check=False).returncode == 1
    assert pm.run("kill").returncode == 0  # nothing to kill is fine
    pm.run("start", "idle", "-i", 2, "--", "sleep", "60")
    pids = [r["pid"] for r in pm.ls()]
    daemon = pm.daemon_pid()
    pm.run("kill")
    assert not alive(daemon) and not any(alive(p) for p in pids)
    assert pm.run("ping", check=False).returncode == 1
    assert pm.ls() == []  # a new daemon starts with nothing to bring back


def test_help_of_kill_and_ping_only_prints_help(pm):
    """`kill -help` once stopped every app: -help prints usage and touches nothing."""
    pm.run("start", "idle", "--", "sleep", "60")
    pids = [r["pid"] for r in pm.ls()]
    daemon = pm.daemon_pid()
    for cmd in ("kill", "ping"):
        r = pm.run(cmd, "-help")
        assert r.stdout.startswith(f"Usage: mesh pm {cmd}"), r.stdout
    assert alive(daemon) and all(alive(p) for p in pids)
    r = pm.run("kill", "now", check=False)
    assert r.returncode == 1 and 'unexpected argument "now"' in r.stderr
    assert alive(daemon)


def start_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])


def test_pidfiles_name_each_process_for_good_and_ping_json(pm):
    """pm.pid and one pidfile per running instance hold "PID START" (start time in clock ticks),
    so `mesh down` finds the processes without a /proc scan; ping -json names the daemon."""
    pm.run("start", "idle", "-i", 2, "--", "sleep", "60")
    rows = pm.ls()
    daemon = pm.daemon_pid()
    assert json.loads(pm.run("ping", "-json").stdout) == {"pid": daemon, "home": pm.home}
    with open(os.path.join(pm.home, "pm.pid")) as f:
        assert f.read() == f"{daemon} {start_ticks(daemon)}\n"
    pids = os.path.join(pm.home, "pids")
    for r in rows:
        with open(os.path.join(pids, f"idle-{r['instance']}.pid")) as f:
            assert f.read() == f"{r['pid']} {start_ticks(r['pid'])}\n"
    pm.run("scale", "idle", 1)
    assert sorted(os.listdir(pids)) == ["idle-0.pid"]
    # A crash: the pidfile follows the new process.
    old = pm.app("idle")[0]["pid"]
    os.kill(old, signal.SIGKILL)
    new = wait_until(lambda: (lambda a: a[0]["pid"] if a and a[0]["pid"] not in (None, old) and
                              a[0]["status"] == "online" else None)(pm.app("idle")), 15,
                     what="a restarted instance")
    wait_until(lambda: open(os.path.join(pids, "idle-0.pid")).read().split()[0] == str(new), 10,
               what="the pidfile to follow the restart")
    pm.run("stop", "idle")
    assert os.listdir(pids) == []


def test_control_socket_refuses_bad_requests(pm):
    pm.run("daemon")
    assert pm.run("ping").returncode == 0

    def ask(data):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(os.path.join(pm.home, "pm.sock"))
            try:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
            except BrokenPipeError:
                pass  # the daemon answered before reading it all (too large)
            chunks = []
            for _ in range(1000):
                b = s.recv(65536)
                if not b:
                    break
                chunks.append(b)
            return json.loads(b"".join(chunks))

    assert ask(b"nonsense\n") == {"error": "malformed request"}
    assert ask(b'{"cmd": "frob"}\n') == {"error": "unknown command"}
    assert ask(b'{"cmd": "stop", "name": "ghost"}\n') == {"error": 'app "ghost" not found'}
    # The name is cut at 64 bytes in the message, here inside a two-byte character.
    long_name = "a" * 63 + "\u00e9"
    assert "not found" in ask(json.dumps({"cmd": "stop", "name": long_name}).encode() +
                              b"\n")["error"]
    assert ask(b'{"cmd": "start", "apps": [{"name": "a"}]}\n') == \
        {"error": "app.script: missing (the command to run)"}
    # Past 1 MiB the daemon answers and closes without reading the rest; the kernel may turn
    # that unread rest into a reset before the answer is read.
    try:
        assert ask(b"[" * (2 * 1024 * 1024)) == {"error": "request too large"}
    except ConnectionResetError:
        pass
    assert ask(b'{"cmd": "ping"}\n')["ok"] is True
    # A relative scale far out of range is refused, not summed past the range of an integer.
    pm.run("start", "idle", "--", "sleep", "60")
    huge = b'{"cmd": "scale", "name": "idle", "n": 9223372036854775807, "relative": true}\n'
    assert "out of range" in ask(huge)["error"]
    assert [r["instance"] for r in pm.app("idle")] == [0]
    # An idle connection holds nothing up.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as idle:
        idle.connect(os.path.join(pm.home, "pm.sock"))
        assert ask(b'{"cmd": "ping"}\n')["ok"] is True


def test_kill_wins_over_a_restart_in_flight(pm):
    """A restart still waiting for its process to exit must not start a new one once kill has
    come, nor may a start or scale that comes during the kill: the daemon exits and forgets its
    table, so those processes would run unsupervised."""
    pids = pm.tmp / "pids"
    pm.run("start", "stubborn", "-kill-timeout", "3s", "--", "sh", "-c",
           f"echo $$ >> {pids}; trap '' TERM; while :; do sleep 0.05; done")
    pm.run("start", "idle", "--", "sh", "-c", f"echo $$ >> {pids}; exec sleep 60")
    pm.wait_status("stubborn", "online")
    pm.wait_status("idle", "online")
    bg = [subprocess.Popen([mesh_bin(), "pm", "-home", pm.home, "restart", "stubborn"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        pm.wait_status("stubborn", "stopping")
        bg.append(subprocess.Popen([mesh_bin(), "pm", "-home", pm.home, "kill"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        pm.wait_status("idle", "stopped")  # the kill is under way
        r = pm.run("start", "late", "--", "sh", "-c", f"echo $$ >> {pids}; exec sleep 60",
                   check=False)
        assert r.returncode == 1 and "shutting down" in r.stderr, r.stdout + r.stderr
        r = pm.run("scale", "idle", "+1", check=False)
        assert r.returncode == 1 and "shutting down" in r.stderr, r.stdout + r.stderr
    finally:
        for p in bg:
            p.wait(timeout=CMD_TIMEOUT)
        pm._note_daemon()
        pm.pids.update(int(p) for p in pids.read_text().split())
    assert bg[1].returncode == 0
    started = [int(p) for p in pids.read_text().split()]
    assert len(started) == 2, f"a process was started after kill: {started}"
    assert not any(alive(p) for p in started)


def test_sigterm_during_kill_leaves_nothing_running(pm):
    """SIGTERM (or Ctrl-C) while kill waits for a slow process: the table is already forgotten,
    so the daemon must not exit leaving that process (and its SIGKILL) behind."""
    pids = pm.tmp / "pids"
    pm.run("start", "stubborn", "-kill-timeout", "60s", "--", "sh", "-c",
           f"echo $$ >> {pids}; trap '' TERM; while :; do sleep 0.05; done")
    pm.run("start", "idle", "--", "sleep", "60")
    pm.wait_status("stubborn", "online")
    daemon = pm.daemon_pid()
    pm.pids.update(int(p) for p in pids.read_text().split())
    kill = subprocess.Popen([mesh_bin(), "pm", "-home", pm.home, "kill"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        pm.wait_status("idle", "stopped")  # the kill is under way
        os.kill(daemon, signal.SIGTERM)
    finally:
        kill.wait(timeout=CMD_TIMEOUT)
    wait_until(lambda: not alive(daemon), 10, what="the daemon's exit")
    stubborn = int(pids.read_text().split()[0])
    wait_until(lambda: not alive(stubborn), 10, what="the slow process's end")


def test_daemon_raises_its_open_files_limit_and_apps_inherit_it(pm):
    """Each instance holds descriptors in the daemon (a pidfd or a process handle, its log
    files while it starts): the daemon raises its soft limit to the hard one, as PM2's node
    does, and the apps inherit it, as PM2's do."""
    hard = hard_limit()
    subprocess.run([mesh_bin(), "pm", "-home", pm.home, "daemon"], check=True,
                   timeout=CMD_TIMEOUT, preexec_fn=low_soft_limit)
    pm._note_daemon()
    wait_until(lambda: pm.run("ping", check=False).returncode == 0, 10, what="daemon")
    assert resource.prlimit(pm.daemon_pid(), resource.RLIMIT_NOFILE) == (hard, hard)
    pm.run("start", "idle", "--", "sleep", "60")
    app = pm.app("idle")[0]["pid"]
    assert resource.prlimit(app, resource.RLIMIT_NOFILE) == (hard, hard)


def test_a_file_where_the_daemon_keeps_its_logs_is_named(pm):
    """A file at HOME/logs (or pids) stops the daemon at start, naming it: a single mkdir's
    EEXIST let it run, and each app then failed to open its log files."""
    os.makedirs(pm.home)
    with open(os.path.join(pm.home, "logs"), "w") as f:
        f.write("a file\n")
    r = subprocess.run([mesh_bin(), "pm", "-home", pm.home, "daemon", "-foreground"],
                       capture_output=True, text=True, timeout=CMD_TIMEOUT)
    pm._note_daemon()
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"{pm.home}/logs: exists and is not a directory" in r.stderr, r.stderr


def test_a_started_daemon_that_exits_at_start_is_reported_at_once(pm):
    """The daemon a command starts fails at start (a file at HOME/logs): the command says why,
    from the daemon's own words, as soon as the daemon has exited, rather than wait 10 s for an
    answer and point at pm.log."""
    os.makedirs(pm.home)
    with open(os.path.join(pm.home, "logs"), "w") as f:
        f.write("a file\n")
    for args in (("start", "idle", "--", "sleep", "60"), ("daemon",)):
        began = time.monotonic()
        r = pm.run(*args, check=False)
        took = time.monotonic() - began
        assert r.returncode == 1, r.stdout + r.stderr
        assert f"{pm.home}/logs: exists and is not a directory" in r.stderr, r.stderr
        assert "did not answer" not in r.stderr, r.stderr
        # The daemon fails within a moment; waiting for an answer took 10 s and more.
        assert took < 8, f"mesh pm {args[0]} took {took:.1f} s"


def test_a_failing_rotation_truncates_and_keeps_the_older_rotations(pm):
    """A full disk makes the copy to .1 fail. The rotated files must not move (which would push
    the older ones out and keep only partial copies), and the log that filled the disk is
    truncated, or the disk would never recover."""
    logs = os.path.join(pm.home, "logs")
    out = os.path.join(logs, "big-0-out.log")
    os.makedirs(logs)
    with open(out + ".1", "w") as f:
        f.write("precious\n")

    def small_disk():
        # The daemon may write files of at most 8 KiB (EFBIG, as a full disk gives ENOSPC); the
        # app raises its own soft limit back, so its log outgrows what the daemon can copy.
        resource.setrlimit(resource.RLIMIT_FSIZE, (8192, resource.RLIM_INFINITY))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    with open(pm.tmp / "daemon.log", "w") as err:
        daemon = subprocess.Popen([mesh_bin(), "pm", "-home", pm.home, "daemon", "-foreground"],
                                  stdout=subprocess.DEVNULL, stderr=err, preexec_fn=small_disk,
                                  restore_signals=False)
    pm.pids.add(daemon.pid)
    try:
        wait_until(lambda: pm.run("ping", check=False).returncode == 0, 10, what="daemon")
        pm.run("start", "big", "-max-log-size", 1000, "--", "sh", "-c",
               "ulimit -f unlimited; printf '%20000s\\n' x; exec sleep 60")

        def failures():
            with open(pm.tmp / "daemon.log", errors="replace") as f:
                return f.read().count("rotate " + out)
        # The log that filled the disk cannot be copied: it is truncated, so the disk recovers.
        wait_until(lambda: failures() >= 1 and os.path.getsize(out) == 0, 20, interval=0.2,
                   what="the log truncated after a failed copy")
        with open(pm.tmp / "daemon.log", errors="replace") as f:
            assert "truncated it to free the disk" in f.read()
        kept = [open(out + f".{k}").read() for k in range(1, 6) if os.path.exists(out + f".{k}")]
        assert kept == ["precious\n"], f"the older rotation was pushed out: {kept!r}"
    finally:
        pm.run("kill", check=False)
        daemon.wait(timeout=CMD_TIMEOUT)
