"""End-to-end tests of PM2's restart settings in `mesh pm`: `restart_delay` (the same wait after
every exit), `exp_backoff_restart_delay` (a wait growing x1.5 per exit, which wins when both are
set; neither means at once) and `stop_exit_codes` (an exit with one of them is not restarted).

No timing is asserted: each test reads the delay the daemon chose (`restart_delay_ms` in `ls`)
while it waits, with bounded polling, for the restarts to happen.
"""

import json

from helpers import wait_until
from test_pm import pm  # noqa: F401 (pm is a fixture)


def start_eco(pm, tmp_path, apps):
    path = tmp_path / "eco.json"
    path.write_text(json.dumps({"apps": apps}, indent=1))
    pm.run("start", str(path))
    return str(path)


def crasher(name, **keys):
    """An app that exits 1 at once (every run unstable), restarted up to max_restarts times."""
    return dict({"name": name, "script": "sh", "args": ["-c", "exit 1"], "max_restarts": 1000},
                **keys)


def delays(pm, tmp_path, app, restarts):
    """Starts app alone and returns the distinct restart_delay_ms values seen until it has
    `restarts` restarts; then deletes it."""
    seen = []

    def enough():
        row = pm.app(app["name"])[0]
        if not seen or seen[-1] != row["restart_delay_ms"]:
            seen.append(row["restart_delay_ms"])
        return row if row["restarts"] >= restarts else None

    start_eco(pm, tmp_path, [app])
    wait_until(enough, 30, interval=0.01, what=f"{app['name']}: {restarts} restarts")
    pm.run("delete", app["name"])
    return seen


def pm2_backoff(first, n):
    """PM2's first n delays: first, then x1.5 rounded down, capped at 15 s."""
    out = [first]
    while len(out) < n:
        out.append(min(15000, out[-1] * 3 // 2))
    return out


def test_restart_delay_is_fixed_and_the_backoff_wins_over_it(pm, tmp_path):
    # `ls` may show the delay after the one that led to the restart counted: any prefix will do.
    fixed = delays(pm, tmp_path, crasher("fixed", restart_delay=300), 4)
    assert set(fixed) <= {0, 300} and fixed[-1] == 300, fixed
    backoff = delays(pm, tmp_path, crasher("backoff", exp_backoff_restart_delay=200), 4)
    assert backoff == sorted(backoff) and set(backoff) <= {0, *pm2_backoff(200, 8)}, backoff
    assert backoff[-1] >= 675, backoff  # 200, 300, 450, 675 at least
    both = delays(pm, tmp_path, crasher("both", restart_delay=5000,
                                        exp_backoff_restart_delay=200), 3)
    assert set(both) <= {0, *pm2_backoff(200, 8)} and both[-1] >= 450, both


def test_neither_delay_restarts_at_once(pm, tmp_path):
    start_eco(pm, tmp_path, [crasher("now", max_restarts=3)])
    seen = []

    def errored():
        row = pm.app("now")[0]
        seen.append(row["restart_delay_ms"])
        return row if row["status"] == "errored" else None

    row = wait_until(errored, 30, interval=0.02, what="errored")
    assert row["restarts"] == 2 and set(seen) == {0}, seen


def test_an_exit_code_of_stop_exit_codes_is_not_restarted(pm, tmp_path):
    start_eco(pm, tmp_path, [
        {"name": "done", "script": "sh", "args": ["-c", "sleep 0.2; exit 3"],
         "stop_exit_codes": [0, 3]},
        {"name": "zero", "script": "sh", "args": ["-c", "sleep 0.2; exit 0"],
         "stop_exit_codes": 0},
    ])
    pm.run("start", "other", "-stop-exit-codes", "3", "-stop-exit-codes", "5,6", "--", "sh", "-c",
           "sleep 0.2; exit 4")
    for name, code in (("done", 3), ("zero", 0)):
        row = pm.wait_status(name, "stopped", timeout=20)[0]
        assert row["exit_code"] == code and row["restarts"] == 0 and row["pid"] is None, row
        assert f"{name}-0: exit code {code} is in stop_exit_codes: not restarted" in pm.log()
    # 4 is not in the list: restarted as any exit.
    wait_until(lambda: pm.app("other")[0]["restarts"] >= 1, 20, interval=0.05,
               what="other restarted")
    spec = json.loads(pm.run("describe", "other", "-json").stdout)[0]["spec"]
    assert spec["stop_exit_codes"] == [3, 5, 6]
    # `restart` still starts a stopped app; its next exit 3 stops it again.
    pm.run("restart", "done")
    row = wait_until(lambda: (lambda r: r if r["status"] == "stopped" and r["restarts"] == 1
                              else None)(pm.app("done")[0]), 20, interval=0.05, what="done again")
    assert row["exit_code"] == 3


def test_max_restarts_counts_unstable_exits_in_a_row_as_pm2(pm, tmp_path):
    # The max_restarts-th unstable exit in a row is final: 3 allows 2 restarts, 16 (the
    # default) 15, as PM2 counts them.
    start_eco(pm, tmp_path, [crasher("three", max_restarts=3),
                             {"name": "default", "script": "sh", "args": ["-c", "exit 1"]}])
    for name, restarts in (("three", 2), ("default", 15)):
        row = pm.wait_status(name, "errored", timeout=60)[0]
        assert row["restarts"] == restarts and row["unstable_restarts"] == restarts + 1, row
    assert "three-0: too many unstable restarts (3), errored" in pm.log()
    # A run that lasts min_uptime starts the count over: runs 1 and 2 are quick, 3 lasts, then
    # 4, 5 and 6 are quick and 6 is final (5 restarts).
    script = ('n=$(cat runs 2>/dev/null || echo 0); n=$((n+1)); echo $n > runs; '
              '[ $n -eq 3 ] && sleep 3; exit 1')
    start_eco(pm, tmp_path, [{"name": "steady", "script": "sh", "args": ["-c", script],
                              "cwd": str(tmp_path), "max_restarts": 3}])
    row = pm.wait_status("steady", "errored", timeout=60)[0]
    assert row["restarts"] == 5 and (tmp_path / "runs").read_text().strip() == "6", row
    # `restart` brings an errored app back with a fresh count.
    pm.run("restart", "three")
    wait_until(lambda: (lambda r: r if r["status"] == "errored" and r["restarts"] == 5
                        else None)(pm.app("three")[0]), 30, interval=0.05, what="three again")


def test_autorestart_false_leaves_every_exit_stopped(pm, tmp_path):
    start_eco(pm, tmp_path, [{"name": "once", "script": "sh", "args": ["-c", "sleep 0.2; exit 1"],
                              "autorestart": False}])
    pm.run("start", "flag", "--no-autorestart", "--", "sh", "-c", "sleep 0.2; kill -9 $$")
    once = pm.wait_status("once", "stopped", timeout=20)[0]
    flag = pm.wait_status("flag", "stopped", timeout=20)[0]
    assert once["exit_code"] == 1 and flag["signal"] == "SIGKILL", (once, flag)
    assert once["restarts"] == 0 and flag["restarts"] == 0 and flag["pid"] is None, (once, flag)
    assert "once-0: autorestart is off: not restarted" in pm.log()
    spec = json.loads(pm.run("describe", "once", "-json").stdout)[0]["spec"]
    assert spec["autorestart"] is False
    # `restart` starts it again (PM2's status for it is stopped, not errored); its exit stops it.
    pm.run("restart", "once")
    row = wait_until(lambda: (lambda r: r if r["status"] == "stopped" and r["restarts"] == 1
                              else None)(pm.app("once")[0]), 20, interval=0.05, what="once again")
    assert row["exit_code"] == 1
    assert json.loads(pm.run("describe", "flag", "-json").stdout)[0]["spec"]["autorestart"] is False
    # The default stays PM2's: an app without the key is restarted.
    pm.run("start", "again", "--", "sh", "-c", "sleep 0.2; exit 1")
    wait_until(lambda: pm.app("again")[0]["restarts"] >= 1, 20, interval=0.05,
               what="again restarted")


def test_bad_restart_settings_are_refused(pm, tmp_path):
    eco = tmp_path / "eco.json"
    eco.write_text('{"apps": [\n {"name": "a", "script": "sleep", "args": "60",\n'
                   '  "stop_exit_codes": [0, 300]}\n]}\n')
    r = pm.run("start", str(eco), check=False)
    assert r.returncode == 1
    assert (f"{eco}:3: apps[0].stop_exit_codes: element 1 is not an exit code (0..255)"
            in r.stderr), r.stderr
    eco.write_text('{"apps": [\n {"name": "a", "script": "sleep", "args": "60",\n'
                   '  "autorestart": "no"}\n]}\n')
    r = pm.run("start", str(eco), check=False)
    assert r.returncode == 1
    assert f"{eco}:3: apps[0].autorestart: expected true or false" in r.stderr, r.stderr
    r = pm.run("start", "a", "-stop-exit-codes", "0,x", "--", "sleep", "60", check=False)
    assert r.returncode == 1 and "-stop-exit-codes 0,x: expected exit codes" in r.stderr, r.stderr
    r = pm.run("start", "a", "-exp-backoff-restart-delay", "soon", "--", "sleep", "60",
               check=False)
    assert r.returncode == 1 and "-exp-backoff-restart-delay" in r.stderr, r.stderr
    assert pm.ls() == []
