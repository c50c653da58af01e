"""End-to-end tests of `mesh load run` keeping Artillery 2's semantics and report: the expect
plugin (checks only with plugins.expect, counted per check and type, printed, exit code 21),
metric names, console output, step markers. Against the test server of test_load.py."""

import json
import os
import re
import signal
import subprocess

from helpers import wait_until
from test_load import RUN_TIMEOUT, one_flow, run_load, run_report, server, tls_server  # noqa: F401

EXPECTS = ('get: {url: "/", expect: [{statusCode: 200}, {hasHeader: x-served-by}, '
           '{contentType: "text/plain"}]}')
FAILING = 'get: {url: "/json", expect: [{statusCode: [201, 202]}, {hasHeader: x-nope}]}'


def run_json(mesh, tmp_path, script, *args):
    out_json = tmp_path / "report.json"
    code, out, err = run_load(mesh, tmp_path, script, "--output", str(out_json), *args)
    return code, out, err, json.loads(out_json.read_text())


def test_expect_needs_the_plugin(mesh, tmp_path, server):
    """As in Artillery, checks run only with config.plugins.expect: without it they do nothing
    (and mesh load says so once)."""
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 2}]", [FAILING, FAILING])
    code, out, err, rep = run_json(mesh, tmp_path, script)
    c = rep["aggregate"]["counters"]
    assert code == 0, out + err
    assert err.count("expect does nothing without config.plugins.expect") == 1, err
    assert "test.yml:6: warning" in err
    assert not [k for k in c if k.startswith("plugins.expect")], c
    assert c["vusers.completed"] == 2


def test_expect_counts_checks_prints_them_and_exits_21(mesh, tmp_path, server):
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 2}]", [EXPECTS, FAILING],
                      "  plugins:\n    expect: {}\n")
    code, out, err, rep = run_json(mesh, tmp_path, script)
    c = rep["aggregate"]["counters"]
    assert code == 21, out + err
    # checks, not requests; by type too; a failed check does not fail the user
    assert c["plugins.expect.ok"] == 6 and c["plugins.expect.failed"] == 4
    assert c["plugins.expect.ok.statusCode"] == 2 and c["plugins.expect.ok.hasHeader"] == 2
    assert c["plugins.expect.ok.contentType"] == 2
    assert c["plugins.expect.failed.statusCode"] == 2 and c["plugins.expect.failed.hasHeader"] == 2
    assert c["vusers.completed"] == 2 and "vusers.failed" in c and c["vusers.failed"] == 0
    # the pretty format: every checked request
    assert out.count("* GET / \n\n  ok statusCode 200 \n  ok hasHeader x-served-by \n"
                     "  ok contentType text/plain \n") == 2, out
    assert out.count("* GET /json \n\n  not ok statusCode 200 \n  expected: 201,202\n"
                     "       got: 200\n  not ok hasHeader response has no x-nope header \n") == 2


def test_expect_output_formats(mesh, tmp_path, server):
    for fmt, shows_ok, shows_failed in (("prettyError", False, True), ("silent", False, False)):
        script = one_flow(server.url, "[{duration: 1, arrivalCount: 1}]", [EXPECTS, FAILING],
                          f"  plugins:\n    expect: {{outputFormat: {fmt}}}\n")
        code, out, err, _ = run_json(mesh, tmp_path, script)
        assert code == 21
        assert ("* GET / \n" in out) == shows_ok, (fmt, out)
        assert ("* GET /json \n" in out) == shows_failed, (fmt, out)
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 1}]",
                      ['get: {url: "/", name: home, expect: {statusCode: 200}}'],
                      "  plugins:\n    expect: {outputFormat: json}\n")
    code, out, err, rep = run_json(mesh, tmp_path, script)
    assert code == 0 and "plugins.expect.failed" not in rep["aggregate"]["counters"]
    lines = [json.loads(line) for line in out.splitlines() if line.startswith('{"name"')]
    assert lines == [{"name": "home", "url": "/", "results": [
        {"ok": True, "expected": 200, "type": "statusCode", "got": 200}]}], out


def test_expect_default_200_and_failures_as_errors(mesh, tmp_path, server):
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 2}]",
                      ['get: {url: "/"}', 'get: {url: "/empty"}', 'get: {url: "/"}'],
                      "  plugins:\n    expect: {expectDefault200: true, "
                      "reportFailuresAsErrors: true, outputFormat: silent}\n")
    code, out, err, rep = run_json(mesh, tmp_path, script)
    c = rep["aggregate"]["counters"]
    assert code == 21, out + err
    # /empty answers 204: the default check fails it, and the error ends the user
    assert c["plugins.expect.ok.statusCode"] == 2 and c["plugins.expect.failed.statusCode"] == 2
    assert c[f"errors.Failed expectations for request {server.url}/empty"] == 2
    assert c["vusers.failed"] == 2 and c["http.requests"] == 4


def test_unknown_keys_name_the_nearest_known_one(mesh, tmp_path, server):
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 1}]",
                      ['get: {ur: "/", heders: {a: b}}', 'get: {url: "/", zzzzzz: 1}'])
    code, out, err = run_load(mesh, tmp_path, script)
    assert code == 2
    assert "test.yml:6: get.ur: unknown key `ur`, did you mean `url`?" in err, err
    assert "get.heders: unknown key `heders`, did you mean `headers`?" in err, err
    assert "test.yml:7: get.zzzzzz: unknown key\n" in err, err


def test_console_reads_like_artillerys_when_not_a_terminal(mesh, tmp_path, server):
    """stdout is a pipe here: Artillery still prints a "Metrics for period" block per period,
    and timestamps every phase line."""
    script = one_flow(server.url, "[{duration: 2, arrivalRate: 2, name: warm}]",
                      ['get: {url: "/"}'])
    code, out, err, rep = run_json(mesh, tmp_path, script)
    assert code == 0, out + err
    stamp = r"\d\d:\d\d:\d\d\(\+0000\)"
    assert re.search(r"Phase started: warm \(index: 0, duration: 2s\) " + stamp, out), out
    assert re.search(r"Phase completed: warm \(index: 0, duration: 2s\) " + stamp, out), out
    block = re.search(r"Metrics for period to: " + stamp + r" \(width: [\d.]+s\)\n-+\n\n"
                      r"(.*?)\n\n", out, re.S)
    assert block and "http.requests: " in block.group(1), out
    assert out.index("Metrics for period") < out.index("Summary report")


def test_artillerys_metric_names(mesh, tmp_path, server):
    """Unnamed scenarios by index, response time by status class, and metrics-by-endpoint (on
    by default, off the console) named by the url as written, query left out."""
    script = f"""
config:
  target: "{server.url}"
  phases: [{{duration: 1, arrivalCount: 2}}]
  variables: {{id: [7]}}
scenarios:
  - flow:
      - get: {{url: "/echo/{{{{ id }}}}?q=1"}}
      - get: {{url: "/empty", name: nothing}}
"""
    code, out, err, rep = run_json(mesh, tmp_path, script)
    a = rep["aggregate"]
    c = a["counters"]
    assert code == 0, out + err
    assert c["vusers.created_by_name.0"] == 2
    assert a["summaries"]["http.response_time.2xx"]["count"] == 4
    assert c["plugins.metrics-by-endpoint./echo/{{ id }}.codes.200"] == 2
    assert c["plugins.metrics-by-endpoint./empty (nothing).codes.204"] == 2
    assert a["summaries"]["plugins.metrics-by-endpoint.response_time./echo/{{ id }}"]["count"] == 2
    assert "metrics-by-endpoint" not in out
    # configured without suppressOutput, the plugin's metrics are printed
    script = script.replace("  variables:", "  plugins: {metrics-by-endpoint: {}}\n  variables:")
    code, out, err, rep = run_json(mesh, tmp_path, script)
    c = rep["aggregate"]["counters"]
    assert "plugins.metrics-by-endpoint./echo/{{ id }}?q=1.codes.200" in c, c
    assert "plugins.metrics-by-endpoint./echo/{{ id }}?q=1.codes.200" in out


def test_socket_floor_without_http_timeout(mesh, tmp_path, server):
    """Without http.timeout, Artillery's agent drops a socket silent for 8 s: ERR_SOCKET_TIMEOUT,
    not the 10 s ETIMEDOUT (which a set http.timeout gives)."""
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 1}]",
                      ['get: {url: "/sleep?ms=9000"}'])
    code, out, err, rep = run_json(mesh, tmp_path, script)
    c = rep["aggregate"]["counters"]
    assert c.get("errors.ERR_SOCKET_TIMEOUT") == 1, c
    assert c["plugins.metrics-by-endpoint./sleep.errors.ERR_SOCKET_TIMEOUT"] == 1


def test_marks_drop_step_markers(mesh, tmp_path, server):
    """`mesh load mark TEXT` (and SIGUSR1) put step markers into a running test's timeline:
    meshkit.events, and the HTML report's charts."""
    path = tmp_path / "test.yml"
    path.write_text(one_flow(server.url, "[{duration: 4, arrivalRate: 2}]", ['get: {url: "/"}']))
    out_json, page = tmp_path / "r.json", tmp_path / "r.html"
    env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path)}
    r = subprocess.run([mesh, "load", "mark", "nothing runs"], env=env, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 1 and "no `mesh load run` is going on" in r.stderr, r.stderr
    proc = subprocess.Popen([mesh, "load", "run", "--output", str(out_json), "--report",
                             str(page), str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        marks = tmp_path / f"mesh-load-{proc.pid}.marks"
        wait_until(marks.exists, 30, what="the run's marks file")
        r = subprocess.run([mesh, "load", "mark", "stop-service web1"], env=env,
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        for line in proc.stdout:  # ends at the latest when the run does
            if "mark: stop-service web1" in line:
                os.kill(proc.pid, signal.SIGUSR1)
                break
        out, err = proc.communicate(timeout=RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    events = json.loads(out_json.read_text())["meshkit"]["events"]
    assert [e["name"] for e in events] == ["stop-service web1", "mark 2"], events
    assert 0 <= events[0]["t_ms"] <= events[1]["t_ms"]
    assert "stop-service web1" in page.read_text()
    assert not marks.exists()


def test_errors_card_agrees_with_the_drills_failures(mesh, tmp_path, server):
    """The report's errors card counts what a drill counts as failures: transport errors and
    statuses of 400 or more that the script's checks do not accept; and the timeline has the
    p95 the latency chart draws."""
    flow = ['get: {url: "/", expect: {statusCode: [200, 503]}}',
            'get: {url: "/unavailable", expect: {statusCode: [200, 503]}}']
    page = tmp_path / "r.html"
    for plugin, accepted, errors in (("  plugins: {expect: {outputFormat: silent}}\n",
                                      [200, 503], 0), ("", None, 2)):
        script = one_flow(server.url, "[{duration: 1, arrivalCount: 2}]", flow, plugin)
        code, out, err, rep = run_json(mesh, tmp_path, script, "--report", str(page))
        assert code == 0, out + err
        assert rep["meshkit"].get("accepted_codes") == accepted
        assert f"<span>errors</span><b>{errors}</b>" in page.read_text()
    assert all("p95" in row for row in rep["meshkit"]["timeline"])


def test_default_headers(mesh, tmp_path, server):
    """config.http.defaults.headers (over config.defaults.headers) go with every request that
    does not set them itself, templates rendered; a User-Agent there replaces mesh load's."""
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 1}]", [
        'get: {url: "/a"}', 'get: {url: "/b", headers: {x-team: "own"}}'],
        "  variables: {team: [blue]}\n"
        "  defaults: {headers: {x-old: \"1\"}}\n"
        "  http:\n    defaults:\n      headers: {X-Team: \"{{ team }}\", User-Agent: tester}\n")
    code, out, err, rep = run_json(mesh, tmp_path, script)
    assert code == 0, out + err
    heads = {path: h for _, _, path, h, _ in server.requests}
    assert heads["/a"]["X-Team"] == "blue" and heads["/a"]["User-Agent"] == "tester"
    assert heads["/b"]["x-team"] == "own" and "X-Team" not in heads["/b"]
    assert "x-old" not in {k.lower() for k in heads["/a"]}


def test_aggregate_rate_is_the_mean_of_the_periods(mesh, tmp_path, server):
    script = one_flow(server.url, "[{duration: 12, arrivalRate: 1}, {duration: 1, "
                      "arrivalRate: 20}]", ['get: {url: "/"}'])
    code, out, err, rep = run_json(mesh, tmp_path, script)
    assert code == 0, out + err
    rates = [p["rates"]["http.request_rate"] for p in rep["intermediate"]]
    assert len(rates) >= 2, rates
    # rounded half away from zero, as Artillery's round
    assert rep["aggregate"]["rates"]["http.request_rate"] == int(sum(rates) / len(rates) + 0.5)


def test_extended_metrics(mesh, tmp_path, server, tls_server):
    """http.extendedMetrics: http.dns, http.tcp (a new connection's connect, 0 when reused),
    http.tls over https and http.total per response, as Artillery records them."""
    steps = ['get: {url: "/"}', 'get: {url: "/sleep?ms=30"}']
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 2}]", steps,
                      "  http: {extendedMetrics: true}\n")
    rep, _ = run_report(mesh, tmp_path, script)
    s = rep["aggregate"]["summaries"]
    assert s["http.dns"]["count"] == 4 and s["http.dns"]["max"] == 0
    assert s["http.tcp"]["count"] == 4 and s["http.tcp"]["min"] == 0  # the reused connection
    assert s["http.total"]["count"] == 4 and s["http.total"]["max"] >= 30
    assert "http.tls" not in s
    script = one_flow(tls_server.url, "[{duration: 1, arrivalCount: 1}]", steps,
                      "  http: {extendedMetrics: true}\n")
    rep, _ = run_report(mesh, tmp_path, script, "-k")
    s = rep["aggregate"]["summaries"]
    assert s["http.tls"]["count"] == 2 and s["http.tls"]["max"] > 0 and s["http.tls"]["min"] == 0
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 1}]", steps)
    rep, _ = run_report(mesh, tmp_path, script)
    assert not {"http.dns", "http.tcp", "http.total"} & set(rep["aggregate"]["summaries"])
