"""End-to-end tests of PM2's watch mode in `mesh pm`: a change under the app's directory (or the
paths of its `watch` list) restarts every instance, a change to an ignored path does not,
directories made later are watched too, and watch_delay folds changes into one restart.

Whether a change was ignored is read from the daemon's log, which names the path of the change
that starts each restart: an ignored change made first would be the one named.
"""

import json
import os
import time

from helpers import wait_until
from test_pm import pm  # noqa: F401 (pm is a fixture)

DETECTED = "Change detected on path "


def detected(pm, name):
    """The paths named by the daemon's log for app `name`'s watch restarts, in order."""
    tail = f" for app {name} - restarting"
    return [line.split(DETECTED, 1)[1][:-len(tail)] for line in pm.log().splitlines()
            if DETECTED in line and line.endswith(tail)]


def settled(pm, name):
    """True once the restart of the last change detected for single-instance app `name` has
    started its new process (what changes until then folds into that restart)."""
    log = pm.log()
    at = log.rfind(DETECTED)
    return at >= 0 and f"{name}-0 started: pid" in log[at:]


def touch(path):
    """One change, in one system call (one inotify event): a slow test cannot split it in two."""
    if os.path.exists(path):
        os.utime(path)
    else:
        os.mknod(path)


def test_a_change_restarts_an_ignored_one_does_not(pm, tmp_path):
    app = tmp_path / "app"
    for d in ("lib", "node_modules/dep", ".git"):
        (app / d).mkdir(parents=True)
    # A min_uptime no run reaches: a watch restart is not an unstable exit.
    pm.run("start", "w", "-cwd", app, "-watch", "-min-uptime", "1h", "--", "sleep", "600")
    first = pm.wait_status("w", "online")[0]["pid"]
    wait_until(lambda: "w: watching 2 directories" in pm.log(), 10, interval=0.1,
               what="the watch set up (app and lib; not .git or node_modules)")

    touch(app / "node_modules" / "dep" / "index.js")
    touch(app / ".git" / "HEAD")
    touch(app / ".env")  # in a watched directory: its event comes, and is ignored
    touch(app / "lib" / "a.js")
    row = pm.wait_restarts("w", 1)[0]
    assert row["pid"] != first and row["unstable_restarts"] == 0, row
    assert detected(pm, "w")[0] == "lib/a.js", pm.log()

    # A directory made after the start is watched too (making it is a change of its own).
    (app / "lib" / "sub").mkdir()
    wait_until(lambda: "lib/sub" in detected(pm, "w"), 20, interval=0.1, what="lib/sub named")
    wait_until(lambda: settled(pm, "w"), 20, interval=0.1, what="its restart")
    before = len(detected(pm, "w"))
    touch(app / "lib" / "sub" / "b.js")
    wait_until(lambda: "lib/sub/b.js" in detected(pm, "w")[before:], 20, interval=0.1,
               what="lib/sub/b.js named")
    row = pm.wait_restarts("w", row["restarts"] + 2)[0]
    assert row["unstable_restarts"] == 0, row
    assert not any(p.startswith(("node_modules", ".git", ".env")) for p in detected(pm, "w"))

    # As in PM2, a stop leaves the watch on: a change starts the app again; delete ends it.
    wait_until(lambda: settled(pm, "w"), 20, interval=0.1, what="the last restart")
    pm.run("stop", "w")
    before = len(detected(pm, "w"))
    touch(app / "lib" / "a.js")
    pm.wait_restarts("w", row["restarts"] + 1)[0]
    assert detected(pm, "w")[before:] == ["lib/a.js"], pm.log()
    pm.run("delete", "w")
    assert pm.ls() == []


def test_watch_paths_ignore_watch_and_delay_from_an_ecosystem_file(pm, tmp_path):
    app = tmp_path / "app"
    for d in ("src/gen", "other", "node_modules"):
        (app / d).mkdir(parents=True)
    eco = tmp_path / "eco.json"
    eco.write_text(json.dumps({"apps": [
        {"name": "e", "script": "sleep", "args": ["600"], "cwd": str(app), "watch": ["src"],
         "ignore_watch": ["src/gen", "*.tmp"], "watch_delay": 1500, "min_uptime": "1h"},
    ]}))
    pm.run("start", str(eco))
    first = pm.wait_status("e", "online")[0]["pid"]
    spec = json.loads(pm.run("describe", "e", "-json").stdout)[0]["spec"]
    assert spec["watch"] == ["src"] and spec["ignore_watch"] == ["src/gen", "*.tmp"]
    assert spec["watch_delay"] == 1500
    wait_until(lambda: "e: watching 1 directory" in pm.log(), 10, interval=0.1,
               what="the watch set up (src; not src/gen)")

    touch(app / "src" / "gen" / "out.js")  # ignored by a path pattern
    touch(app / "src" / "x.tmp")  # ignored by a name pattern
    touch(app / "other" / "y.js")  # not watched
    # ignore_watch replaces PM2's default: node_modules is not ignored, but not watched either.
    # Three changes in a row, well within watch_delay: one restart.
    t0 = time.monotonic()
    for name in ("a.js", "b.js", "c.js"):
        touch(app / "src" / name)
    quick = time.monotonic() - t0 < 0.5
    row = pm.wait_restarts("e", 1)[0]
    assert row["pid"] != first and row["unstable_restarts"] == 0, row
    assert detected(pm, "e")[0] == "src/a.js", pm.log()
    if quick:  # the changes came well inside the 1.5 s (this machine may stall the test)
        assert row["restarts"] == 1 and detected(pm, "e") == ["src/a.js"], pm.log()


def test_watch_paths_with_dot_components_watch_with_the_default_ignore_list(pm, tmp_path):
    # "./src", "../shared" and "." are PM2's too: the default ignore list (a component starting
    # with a dot) must see the paths they name, not their "." and ".." components.
    app, dot = tmp_path / "app", tmp_path / "dot"
    for d in (app / "src", tmp_path / "shared", dot):
        d.mkdir(parents=True)
    eco = tmp_path / "eco.json"
    eco.write_text(json.dumps({"apps": [
        {"name": "r", "script": "sleep", "args": ["600"], "cwd": str(app),
         "watch": ["./src", "../shared"], "min_uptime": "1h"},
        {"name": "d", "script": "sleep", "args": ["600"], "cwd": str(dot), "watch": ["."],
         "min_uptime": "1h"},
    ]}))
    pm.run("start", str(eco))
    pm.wait_status("r", "online")
    pm.wait_status("d", "online")
    wait_until(lambda: "r: watching 2 directories" in pm.log() and
               "d: watching 1 directory" in pm.log(), 10, interval=0.1, what="the watches set up")

    touch(dot / "x.js")
    pm.wait_restarts("d", 1)[0]
    assert detected(pm, "d") == ["x.js"], pm.log()

    touch(app / "src" / "a.js")
    row = pm.wait_restarts("r", 1)[0]
    assert detected(pm, "r") == ["src/a.js"], pm.log()
    wait_until(lambda: settled(pm, "r"), 20, interval=0.1, what="its restart")
    touch(tmp_path / "shared" / "b.js")  # outside the app's directory: named from its root
    row = pm.wait_restarts("r", row["restarts"] + 1)[0]
    assert detected(pm, "r") == ["src/a.js", "b.js"], pm.log()


def test_a_change_during_a_watch_restart_starts_another(pm, tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    # SIGTERM ignored (and so by sleep too): each stop lasts the kill timeout, a window in which
    # the instance is being restarted.
    pm.run("start", "k", "-cwd", app, "-watch", "-min-uptime", "1h", "-kill-timeout", "6s",
           "--", "sh", "-c", "trap '' TERM; while :; do sleep 1; done")
    pm.wait_status("k", "online")
    wait_until(lambda: "k: watching 1 directory" in pm.log(), 10, interval=0.1,
               what="the watch set up")
    touch(app / "a.js")
    wait_until(lambda: pm.app("k")[0]["status"] == "stopping", 20, interval=0.05,
               what="k being restarted")
    touch(app / "b.js")
    wait_until(lambda: "b.js" in detected(pm, "k"), 20, interval=0.1, what="b.js named")
    row = pm.wait_restarts("k", 2)[0]
    assert row["unstable_restarts"] == 0, row
    assert detected(pm, "k") == ["a.js", "b.js"], pm.log()


def test_bad_watch_keys_are_refused_with_file_and_line(pm, tmp_path):
    eco = tmp_path / "eco.json"
    eco.write_text('{"apps": [\n {"name": "a", "script": "sleep",\n  "watch": 5}\n]}\n')
    r = pm.run("start", str(eco), check=False)
    assert r.returncode == 1
    assert f"{eco}:3: apps[0].watch: expected a string or an array" in r.stderr, r.stderr
    r = pm.run("start", "a", "-watch", "-watch-delay", "x", "--", "sleep", "60", check=False)
    assert r.returncode != 0 and "watch-delay" in r.stderr, r.stderr
    assert pm.ls() == []
