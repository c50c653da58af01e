"""End-to-end tests of `mesh drill` against a cluster `mesh up` started on free ports: the
failover drill loses nothing while one service is stopped gracefully, answers 503 (and only
503) while both are, recovers once they start again, and marks its events in the report."""
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from helpers import free_port, mesh_bin
# The module-scoped cluster fixture: `mesh up` on free ports, `mesh down` and a sanitizer
# check of every log at the end.
from cluster_helpers import cluster  # noqa: F401


def test_failover_drill(cluster, tmp_path):  # noqa: F811
    out, page = tmp_path / "drill.json", tmp_path / "drill.html"
    # The four events come a fifth of the run apart. A started service serves again only after
    # the supervisor starts it, it registers, its first check passes and the lb's blocking query
    # sees it: 1-2.5 s here, so a 15 s drill (3 s phases) left little margin on a loaded machine
    # and once saw none of it (recover_s None, at e47a84f and as likely before). 25 s: 5 s each.
    p = cluster.mesh("drill", "failover", "-duration", "25", "-rate", "20", "-output", str(out),
                     "-report", str(page), timeout=120)
    steps = ["stop-service web1", "stop-service web2", "start-service web1",
             "start-service web2"]
    for s in steps:
        assert f"] mesh {s}\n" in p.stdout, p.stdout
    assert "Drill failover, 25 s:" in p.stdout
    assert f"Report written to {page}" in p.stdout

    report = json.loads(out.read_text())
    events = report["meshkit"]["events"]
    assert [e["name"] for e in events] == steps
    times = [e["t_ms"] for e in events]
    # in order, after the load began (when exactly depends on how fast mesh load starts)
    assert times == sorted(times) and times[0] > 0, times
    phases = report["meshkit"]["drill"]["phases"]
    assert [ph["name"] for ph in phases] == ["before the first event"] + steps
    before, web1_down, both_down, web1_up, web2_up = phases
    # A graceful stop loses nothing; traffic left web1 for web2.
    assert before["failures"] == 0 and before["requests"] > 0, before
    assert web1_down["failures"] == 0 and web1_down["requests"] > 0, web1_down
    assert web1_down["detect_s"] is not None, web1_down
    # With both stopped the load balancer answers its 503 page: nothing else goes wrong.
    assert both_down["failures"] > 0, both_down
    assert set(both_down["by_kind"]) == {"503"}, both_down
    # web1 serves again once started, and nothing fails once both are back.
    assert web1_up["recover_s"] is not None, web1_up
    assert web2_up["failures"] == 0, web2_up
    total = report["aggregate"]["counters"]["http.requests"]
    assert sum(ph["requests"] for ph in phases) == total

    assert report["meshkit"]["scenario_file"] == "mesh drill failover"

    text = page.read_text()
    assert "<h2>Drill: failover</h2>" in text
    assert '"events":[{"t":' in text and "stop-service web2" in text


def test_scale_drill_loses_nothing(cluster, tmp_path):  # noqa: F811
    out = tmp_path / "scale.json"
    p = cluster.mesh("drill", "scale", "-duration", "10", "-output", str(out), timeout=120)
    report = json.loads(out.read_text())
    phases = report["meshkit"]["drill"]["phases"]
    assert [ph["name"] for ph in phases] == ["before the first event", "scale-up web1",
                                             "scale-up web2", "scale-down web1",
                                             "scale-down web2"], p.stdout
    assert all(ph["failures"] == 0 for ph in phases), phases
    # the instances the drill added took traffic before it removed them
    served = report["meshkit"]["served_by"]
    assert served.get("web1/1", 0) > 0 and served.get("web2/1", 0) > 0, served


def test_bad_input(cluster, tmp_path):  # noqa: F811
    p = cluster.mesh("drill", "earthquake", check=False)
    assert p.returncode == 2 and 'unknown drill "earthquake"' in p.stderr
    p = cluster.mesh("drill", "failover", "-duration", "5", check=False)
    assert p.returncode == 2 and "-duration wants 10..86400 seconds" in p.stderr
    p = cluster.mesh("drill", "failover", "extra", check=False)
    assert p.returncode == 2 and 'unexpected argument "extra"' in p.stderr
    p = subprocess.run([mesh_bin(), "drill", "failover", "-run-dir", str(tmp_path / "none")],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "no cluster in" in p.stderr and "mesh up" in p.stderr
    p = subprocess.run([mesh_bin(), "drill", "-help"], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0 and "mesh drill failover|scale|node-loss" in p.stdout


def test_drill_runs_the_users_script(cluster, tmp_path):  # noqa: F811
    """-script: the user's Artillery script (processor, afterResponse, expect accepting 200 and
    503) is the load; the 503s of the both-stopped phase are accepted answers, not failures,
    and the report has both them and the processor's counters."""
    repo = Path(__file__).resolve().parents[2]
    shutil.copy(repo / "scenarios" / "functions.js", tmp_path / "functions.js")
    script = tmp_path / "failover-test.yml"
    # an environment of 12 s: its two phases laid over the file's two (Artillery's merge)
    script.write_text((repo / "scenarios" / "failover-test.yml").read_text().replace(
        "  environments:\n", "  environments:\n    drill:\n      phases:\n"
        "        - {duration: 6, arrivalRate: 20, rampTo: 20}\n"
        "        - {duration: 6, arrivalRate: 20}\n"))
    out = tmp_path / "drill.json"
    p = cluster.mesh("drill", "failover", "-script", str(script), "-e", "drill", "-output",
                     str(out), timeout=180)
    assert "Drill failover: " in p.stdout and "accepted" in p.stdout, p.stdout
    report = json.loads(out.read_text())
    assert report["meshkit"]["accepted_codes"] == [200, 503]
    phases = report["meshkit"]["drill"]["phases"]
    both_down = phases[2]
    assert both_down["name"] == "stop-service web2", phases
    assert both_down["failures"] == 0 and both_down["accepted"].get("503", 0) > 0, both_down
    c = report["aggregate"]["counters"]
    assert c.get("failover.unavailable", 0) > 0, c
    assert any(k.startswith("served_by.web1/") for k in c), c


def _load_children(pid):
    """The children of pid that are `mesh load run` (the drill also runs `mesh status`)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = [int(x) for x in f.read().split()]
    except OSError:
        return []
    out = []
    for kid in kids:
        try:
            with open(f"/proc/{kid}/cmdline", "rb") as f:
                if b"\0load\0run\0" in f.read():
                    out.append(kid)
        except OSError:
            pass
    return out


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][0] != "Z"
    except OSError:
        return False


def test_sigterm_stops_the_load_too(cluster, tmp_path):  # noqa: F811
    """SIGTERM (a supervisor, `timeout`) ends the drill as Ctrl-C does: its `mesh load run`
    must not be left behind, orphaned, loading the cluster. (Last in the module: a drill cut
    short may leave the cluster's services as its steps left them; its first step comes a
    fifth of the 60 s in, long after the SIGTERM.)"""
    p = subprocess.Popen([mesh_bin(), "drill", "failover", "-duration", "60", "-rate", "5",
                          "-target", f"http://127.0.0.1:{free_port()}/", "-run-dir",
                          cluster.run_dir], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    load = []
    try:
        deadline = time.monotonic() + 60
        while not load and p.poll() is None and time.monotonic() < deadline:
            load = _load_children(p.pid)
            time.sleep(0.05)
        if not load and p.poll() is not None:
            raise AssertionError(f"the drill exited {p.returncode}: {p.stderr.read()!r}")
        assert load, "the drill started no load"
        time.sleep(0.5)  # let the load install its signal handlers
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
        for _ in range(100):
            if not _alive(load[0]):
                break
            time.sleep(0.05)
        assert not _alive(load[0]), "mesh load run outlived the drill"
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        for pid in load:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
