"""End-to-end tests of PM2's `cron_restart` in `mesh pm`: every instance is restarted on a cron
schedule (`-cron-restart`, `-c`, or the ecosystem key), a stopped app included, as PM2 does; a
bad expression is refused with the file and line.

The schedules have a seconds field (`*/2 * * * * *`), so restarts come every two seconds; no
timing is asserted, only that they come, with bounded polling.
"""

import json
import os

from helpers import wait_until
from test_pm import alive, pm  # noqa: F401 (pm is a fixture)


def children(pid):
    """The pids whose parent is pid (the daemon's apps are its children, in their own session)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[1]) == pid:
            found.add(int(entry))
    return found


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline") as f:
            return " ".join(f.read().rstrip("\0").split("\0"))
    except OSError:
        return None


def test_cron_restart_restarts_every_instance_on_schedule(pm, tmp_path):
    pm.run("start", "tick", "-i", 2, "--cron-restart", "*/2 * * * * *", "--", "sleep", "600")
    first = {r["instance"]: r["pid"] for r in pm.wait_status("tick", "online")}
    rows = pm.wait_restarts("tick", 2)
    assert all(r["pid"] != first[r["instance"]] for r in rows), (first, rows)
    assert 'tick: cron_restart "*/2 * * * * *": restarting' in pm.log()
    spec = json.loads(pm.run("describe", "tick", "-json").stdout)[0]["spec"]
    assert spec["cron_restart"] == "*/2 * * * * *"
    # As in PM2, a stop leaves the schedule running: the next time starts the app again.
    pm.run("stop", "tick")
    pm.wait_restarts("tick", rows[0]["restarts"] + 1)
    # delete ends it: its processes are gone and nothing starts again, past two more times of
    # the same schedule, which a witness app with that schedule marks in the log.
    pm.run("start", "clock", "-c", "*/2 * * * * *", "--", "sleep", "601")
    last = {r["pid"] for r in pm.wait_status("tick", "online")}
    pm.run("delete", "tick")
    since = len(pm.log())
    assert not any(alive(p) for p in last)
    ticked = 'clock: cron_restart "*/2 * * * * *": restarting'
    wait_until(lambda: pm.log()[since:].count(ticked) >= 2, 40, interval=0.1,
               what="two cron times after the delete")
    after = pm.log()[since:]
    assert "tick: cron_restart" not in after and "tick-" not in after, after
    assert [r["name"] for r in pm.ls()] == ["clock"]
    assert not [f for f in os.listdir(os.path.join(pm.home, "pids")) if f.startswith("tick-")]
    # The daemon's children are the witness's process (sleep 601; one more for a moment while a
    # restart forks): no process of tick's (sleep 600) anywhere.
    daemon = pm.daemon_pid()
    wait_until(lambda: {cmdline(p) for p in children(daemon)} == {"sleep 601"}, 20, interval=0.1,
               what="the witness as the daemon's only child")


def test_cron_restart_from_an_ecosystem_file_and_the_short_flag(pm, tmp_path):
    eco = tmp_path / "eco.json"
    eco.write_text(json.dumps({"apps": [
        {"name": "eco", "script": "sleep", "args": ["600"], "cron_restart": "*/2 * * * * *"},
        {"name": "off", "script": "sleep", "args": ["600"], "cron_restart": "0"},
    ]}))
    pm.run("start", str(eco))
    pm.run("start", "short", "-c", "*/2 * * * * *", "--", "sleep", "600")
    pm.wait_restarts("eco", 1)
    pm.wait_restarts("short", 1)
    spec = json.loads(pm.run("describe", "off", "-json").stdout)[0]["spec"]
    assert "cron_restart" not in spec  # "0" is PM2's "no schedule"
    assert pm.app("off")[0]["restarts"] == 0


def test_a_bad_cron_expression_is_refused_with_file_and_line(pm, tmp_path):
    eco = tmp_path / "eco.json"
    eco.write_text('{"apps": [\n {"name": "a", "script": "sleep", "args": "60",\n'
                   '  "cron_restart": "61 * * * *"}\n]}\n')
    r = pm.run("start", str(eco), check=False)
    assert r.returncode == 1
    assert (f"{eco}:3: apps[0].cron_restart: minutes: 61 out of range 0..59" in r.stderr), r.stderr
    eco.write_text('{"apps": [\n {"name": "a", "script": "sleep", "args": "60",\n'
                   '  "cron_restart": 5}\n]}\n')
    r = pm.run("start", str(eco), check=False)
    assert r.returncode == 1 and f"{eco}:3: apps[0].cron_restart: expected a cron" in r.stderr
    r = pm.run("start", "a", "-c", "* * *", "--", "sleep", "60", check=False)
    assert r.returncode == 1
    assert "cron_restart: expected 5 fields" in r.stderr and "got 3" in r.stderr, r.stderr
    r = pm.run("start", "a", "-cron-restart", "0 0 30 2 *", "--", "sleep", "60", check=False)
    assert r.returncode == 1 and "never matches" in r.stderr, r.stderr
    assert pm.ls() == []
