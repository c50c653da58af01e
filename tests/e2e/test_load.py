"""End-to-end tests of `mesh load run` against a small HTTP server living in the test.

The server (threads, HTTP/1.1 keep-alive) records every request it gets; paths:
  /            200 "ok", X-Served-By alternating s1/s2
  /sleep?ms=N  200 after sleeping N ms (a known latency)
  /json        200 {"items": [{"id": 42}]}
  /items       200 {"items": [{"id": 1}, {"id": 2}, {"id": 3}]}
  /echo        200, records method, path, headers and body
  /chunked     200 {"id": 7} in two chunks
  /close       200 "bye" with Connection: close (and the server closes)
  /empty       204, no body
  /unavailable 503, no body
  /drop        200 "ok", then the server closes the connection without saying so
  /eof         200 with neither Content-Length nor chunked: the body runs to the close
  /redirect?to=URL&code=N  N (default 302) with Location: URL (without to: itself, forever)
  /setcookie?c=A&c=B       200 with a Set-Cookie header per c
  /form        200 an HTML login form whose hidden _csrf input holds a token new each time
               (t<N>&x, N counting the requests), which `tokens` records
Each run is a few seconds at most; mesh load runs as a child process stopped by PID on timeout.
"""

import http.server
import json
import os
import re
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from helpers import HOST, SANITIZER_MARKERS, free_port, wait_until

RUN_TIMEOUT = 60  # seconds for one `mesh load run` (runs take 1-4 s; sanitizer builds are slower)
HIST_ERR = 0.01  # the stated bound of the percentiles (meshkit.histogram_error)


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []  # (monotonic time, method, path, headers dict, body bytes)
        self.peers = set()  # client (address, port): one per connection
        self.flip = 0
        self.tokens = []  # the CSRF tokens /form served


FORM_PAGE = """<!DOCTYPE html>
<html><head><title>Sign in</title><meta name=csrf-param content=_csrf></head>
<body><div class="login box">
<form method="POST" action="/echo/login">
  <input type="hidden" name="_csrf" value="TOKEN">
  <input type="text" name="user" class="field" autofocus>
  <input type="checkbox" name="remember" checked>
  <select name=lang><option value=en>English<option selected>Deutsch</select>
  <button type=submit>Sign in</button>
</form></div>
<script>var fake = '<input name="_csrf" value="not this">';</script>
</body></html>
"""


def make_handler(rec):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _answer(self, body, ctype="text/plain", extra=None):
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _handle(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            url = urlsplit(self.path)
            with rec.lock:
                rec.requests.append((time.monotonic(), self.command, self.path,
                                     dict(self.headers.items()), body))
                rec.peers.add(self.client_address)
                rec.flip += 1
                flip = rec.flip
            if url.path == "/sleep":
                time.sleep(int(parse_qs(url.query)["ms"][0]) / 1000)
                self._answer(b"slept")
            elif url.path == "/json":
                self._answer(b'{"items": [{"id": 42}]}', "application/json")
            elif url.path == "/items":
                self._answer(b'{"items": [{"id": 1}, {"id": 2}, {"id": 3}]}', "application/json")
            elif url.path == "/form":
                token = f"t{flip}&x"
                with rec.lock:
                    rec.tokens.append(token)
                self._answer(FORM_PAGE.replace("TOKEN", token.replace("&", "&amp;")).encode(),
                             "text/html; charset=utf-8")
            elif url.path == "/tmpl":
                self._answer(b'{"v": "{{$env.MESH_TEST_SECRET}}"}', "application/json")
            elif url.path == "/crlf":
                self._answer(b'{"v": "a\\r\\nX-Injected: 1", "p": "/x HTTP/1.1\\r\\nX-Injected: 2"}',
                             "application/json")
            elif url.path == "/chunked":
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self.wfile.write(b'5\r\n{"id"\r\n4;x=y\r\n: 7}\r\n0\r\nT: 1\r\n\r\n')
            elif url.path == "/close":
                self.close_connection = True
                self._answer(b"bye", extra={"Connection": "close"})
            elif url.path == "/drop":
                self.close_connection = True
                self._answer(b"ok")
            elif url.path == "/unavailable":
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif url.path == "/redirect":
                q = parse_qs(url.query)
                self.send_response(int(q.get("code", ["302"])[0]))
                self.send_header("Location", q.get("to", ["/redirect"])[0])
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif url.path == "/setcookie":
                self.send_response(200)
                for c in parse_qs(url.query).get("c", []):
                    self.send_header("Set-Cookie", c)
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif url.path == "/empty":
                self.send_response(204)
                self.end_headers()
            elif url.path == "/eof":
                self.close_connection = True
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"until the end")
            else:
                self._answer(b"ok", extra={"X-Served-By": f"s{flip % 2 + 1}"})

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

    return Handler


class QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # failed TLS handshakes and resets are what some tests cause on purpose


@pytest.fixture
def server():
    rec = Recorder()
    srv = QuietServer((HOST, 0), make_handler(rec))
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    rec.url = f"http://{HOST}:{srv.server_address[1]}"
    yield rec
    srv.shutdown()
    srv.server_close()


def one_flow(url, phases, steps, config=""):
    """A script with one scenario. phases: YAML for config.phases; steps: the flow's steps, one
    YAML line each; config: more lines for the config section (indented two spaces)."""
    flow = "".join(f"      - {step}\n" for step in steps)
    return (f'config:\n  target: "{url}"\n  phases: {phases}\n{config}'
            f"scenarios:\n  - flow:\n{flow}")


@pytest.fixture
def tls_server(tmp_path):
    """The same server over https, with a self-signed certificate for 127.0.0.1."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1", "-days", "1"], check=True,
                   capture_output=True, timeout=60)
    rec = Recorder()
    srv = QuietServer((HOST, 0), make_handler(rec))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    rec.url = f"https://{HOST}:{srv.server_address[1]}"
    rec.cert = cert
    yield rec
    srv.shutdown()
    srv.server_close()


def run_load(mesh, tmp_path, script, *args, env=None):
    """Writes script to a file and runs `mesh load run`; returns (exit code, stdout, stderr)."""
    path = tmp_path / "test.yml"
    path.write_text(script)
    proc = subprocess.Popen([mesh, "load", "run", *args, str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env=None if env is None else {**os.environ, **env})
    try:
        out, err = proc.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"mesh load run did not finish in {RUN_TIMEOUT}s\n{out}\n{err}")
    for marker in SANITIZER_MARKERS:
        assert marker not in err, err
    return proc.returncode, out, err


def run_report(mesh, tmp_path, script, *args, env=None):
    out_json = tmp_path / "report.json"
    code, out, err = run_load(mesh, tmp_path, script, "--output", str(out_json), *args, env=env)
    assert code == 0, out + err
    return json.loads(out_json.read_text()), out


def test_phases_make_the_scheduled_arrivals(mesh, tmp_path, server):
    script = f"""
config:
  target: "{server.url}"
  phases:
    - {{duration: 2, arrivalRate: 10, name: steady}}
    - {{duration: 1, arrivalCount: 6}}
    - {{pause: 1}}
    - {{duration: 2, arrivalRate: 0, rampTo: 10}}
scenarios:
  - name: home
    flow:
      - get: {{url: "/"}}
"""
    # two workers deal the arrivals between them: the schedule is the same
    rep, out = run_report(mesh, tmp_path, script, "--workers", "2", "--progress")
    c = rep["aggregate"]["counters"]
    assert isinstance(rep["aggregate"]["rates"]["http.request_rate"], int)
    # 2 s x 10/s, 6, none, (0 + 10) / 2 x 2 s
    assert c["vusers.created"] == 20 + 6 + 10
    assert c["vusers.created_by_name.home"] == 36
    assert c["vusers.completed"] == 36 and c["vusers.failed"] == 0
    assert c["http.requests"] == 36 and c["http.codes.200"] == 36
    assert len(server.requests) == 36
    # open loop: the arrivals follow the schedule, so each phase's share lands in its own
    # window (a 0.5 s margin either side for a loaded machine)
    start = server.requests[0][0]
    offsets = [t - start for t, *_ in server.requests]
    assert sum(1 for o in offsets if o < 2.5) >= 20 + 1
    assert sum(1 for o in offsets if 3.5 <= o) == 10
    tl = rep["meshkit"]["timeline"]
    assert sum(row["requests"] for row in tl) == 36
    assert sum(row["vusers_created"] for row in tl) == 36
    assert [p.get("name") for p in rep["meshkit"]["phases"]] == ["steady", None, None, None]
    assert rep["meshkit"]["phases"][3]["start_ms"] == 4000
    # the X-Served-By spread
    sb = rep["meshkit"]["served_by"]
    assert sorted(sb) == ["s1", "s2"] and sum(sb.values()) == 36
    assert "Served by (X-Served-By):" in out and "Summary report @" in out
    assert "http.codes.200: ....." in out
    assert "Phase started: steady (index: 0, duration: 2s)" in out
    assert "Phase completed: unnamed (index: 3, duration: 2s)" in out
    # the live line, every 5 s (the run lasts 6)
    assert re.search(r"^\[ +5s\] rate \d+/s  p50 [\d.]+ ms  p99 [\d.]+ ms .* codes 200:\d+$", out,
                     re.M), out


def test_interrupt_stops_and_still_reports(mesh, tmp_path, server):
    script = tmp_path / "long.yml"
    script.write_text(one_flow(server.url, "[{duration: 60, arrivalRate: 5}]",
                               ['get: {url: "/"}', "think: 30"]))
    out_json = tmp_path / "report.json"
    proc = subprocess.Popen([mesh, "load", "run", "-o", str(out_json), str(script)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: len(server.requests) >= 3, 10, what="the first requests")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "stopping (interrupted)" in err and "Run interrupted." in out
    rep = json.loads(out_json.read_text())
    c = rep["aggregate"]["counters"]
    # the VUs in their think time were abandoned: created, neither completed nor failed
    assert c["vusers.created"] >= 3 and "vusers.completed" not in c  # zero: left out
    assert c["http.codes.200"] >= 3


def test_percentiles_match_a_known_latency(mesh, tmp_path, server):
    sleep_ms = 100
    script = one_flow(server.url, "[{duration: 2, arrivalRate: 10}]",
                      [f'get: {{url: "/sleep?ms={sleep_ms}"}}'])
    rep, _ = run_report(mesh, tmp_path, script)
    assert rep["meshkit"]["histogram_error"] == HIST_ERR
    rt = rep["aggregate"]["summaries"]["http.response_time"]
    assert rt["count"] == 20
    # every request takes at least the sleep, so no percentile may read below it by more than
    # the histogram's bound; above it only the server's and the loopback's overhead may add,
    # which a loaded machine stretches (p90 190 ms and max 214 ms seen at a load average of 11):
    # the upper bound only tells milliseconds from another unit or from a wrong start
    for key in ("min", "p50", "median", "p75", "p90", "p95", "p99", "p999", "max"):
        assert rt[key] >= sleep_ms * (1 - HIST_ERR), (key, rt)
        assert rt[key] <= sleep_ms * 5, (key, rt)
    assert rt["min"] <= rt["p50"] <= rt["p95"] <= rt["p99"] <= rt["max"]


def test_think_time_is_not_response_time(mesh, tmp_path, server):
    sleep_ms = 100
    script = one_flow(server.url, "[{duration: 1, arrivalRate: 5}]",
                      [f'get: {{url: "/sleep?ms={sleep_ms}"}}', "think: 1",
                       f'get: {{url: "/sleep?ms={sleep_ms}"}}'])
    rep, _ = run_report(mesh, tmp_path, script)
    rt = rep["aggregate"]["summaries"]["http.response_time"]
    assert rt["count"] == 10
    # the second request of each user follows a 1 s think: its response time is still the
    # server's 100 ms plus what a loaded machine adds (356 ms seen at a load average of 11),
    # never the think's 1,000 ms on top
    assert rt["max"] < sleep_ms + 800, rt


def test_ensure_breaks_the_run(mesh, tmp_path, server):
    base = one_flow(server.url, "[{duration: 1, arrivalRate: 5}]", ['get: {url: "/sleep?ms=20"}'],
                    "  plugins: {ensure: {}}\n"
                    "  ensure:\n"
                    "    thresholds:\n"
                    '      - "http.response_time.p99": THRESHOLD\n'
                    "    conditions:\n"
                    '      - expression: "http.codes.200 == 5 and vusers.failed == 0"\n'
                    "    maxErrorRate: 0\n")
    code, out, _ = run_load(mesh, tmp_path, base.replace("THRESHOLD", "5000"))
    assert code == 0, out
    assert "ok: http.response_time.p99 < 5000" in out
    assert "ok: http.codes.200 == 5 and vusers.failed == 0" in out
    code, out, _ = run_load(mesh, tmp_path, base.replace("THRESHOLD", "1"))
    assert code == 1, out
    assert "fail: http.response_time.p99 < 1" in out
    # as in Artillery, config.ensure without the plugin is ignored (and mesh load says so)
    code, out, err = run_load(mesh, tmp_path, base.replace("THRESHOLD", "1").replace(
        "  plugins: {ensure: {}}\n", ""))
    assert code == 0, out + err
    assert "fail:" not in out and "test.yml:4: warning: config.ensure does nothing" in err, err


def test_ensure_fails_on_metrics_the_run_never_produced(mesh, tmp_path):
    """As Artillery's plugin reads them, a metric never produced is undefined: a run whose
    target refuses every connection fails a latency threshold, and maxErrorRate: 100 too (no
    user completed), rather than passing them on zeros."""
    script = one_flow(f"http://{HOST}:{free_port()}", "[{duration: 1, arrivalCount: 2}]",
                      ['get: {url: "/"}'],
                      "  plugins: {ensure: {}}\n"
                      "  ensure:\n"
                      "    thresholds:\n"
                      '      - "http.response_time.p95": 100\n'
                      "    conditions:\n"
                      '      - expression: "http.codes.500 < 1"\n'
                      "        strict: false\n"
                      "    maxErrorRate: 100\n"
                      "    p99: 10.9\n")
    code, out, err = run_load(mesh, tmp_path, script)
    assert code == 1, out + err
    assert "fail: http.response_time.p95 < 100\n" in out
    assert "fail: http.codes.500 < 1 (optional)\n" in out
    assert "fail: maxErrorRate < 100\n" in out
    assert "fail: p99 < 10\n" in out  # Artillery 1's form, its bound read as parseInt reads it

def test_captures_and_templating(mesh, tmp_path, server):
    script = f"""
config:
  target: "{server.url}"
  phases: [{{duration: 1, arrivalCount: 2}}]
  variables:
    color: ["red"]
    n: 3
  plugins: {{expect: {{outputFormat: silent}}}}
scenarios:
  - flow:
      - get:
          url: "/json"
          capture:
            - json: "$.items[0].id"
              as: itemId
      - get:
          url: "/"
          capture: {{header: "x-served-by", as: who}}
      - loop:
          - post:
              url: "/echo/{{{{ itemId }}}}"
              qs: {{c: "{{{{ color }}}}", i: "{{{{ $loopCount }}}}"}}
              headers: {{X-Token: "t-{{{{ itemId }}}}-{{{{ who }}}}"}}
              json: {{id: "{{{{ itemId }}}}", color: "{{{{ color }}}}", n: "{{{{ n }}}}"}}
              expect: [{{statusCode: 200}}]
        count: 2
      - log: "done {{{{ itemId }}}}"
"""
    rep, out = run_report(mesh, tmp_path, script)
    posts = [r for r in server.requests if r[1] == "POST"]
    assert len(posts) == 4
    for _, _, path, headers, body in posts:
        url = urlsplit(path)
        assert url.path == "/echo/42"
        assert parse_qs(url.query)["c"] == ["red"]
        assert headers["X-Token"] in ("t-42-s1", "t-42-s2")
        assert headers["Content-Type"] == "application/json"
        assert json.loads(body) == {"id": 42, "color": "red", "n": 3}
    assert sorted(parse_qs(urlsplit(p[2]).query)["i"][0] for p in posts) == ["0", "0", "1", "1"]
    assert out.count("done 42") == 2
    # each VU keeps its one connection for its whole flow
    assert len(server.peers) == 2
    c = rep["aggregate"]["counters"]
    assert c["plugins.expect.ok"] == 4 and c["vusers.completed"] == 2


def test_response_framings(mesh, tmp_path, server):
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 3}]", [
        'get: {url: "/chunked", capture: {json: "$.id", as: id}}',
        'get: {url: "/close"}',
        'get: {url: "/drop"}',
        'get: {url: "/empty"}',
        'head: {url: "/"}',
        'get: {url: "/eof"}',
        'get: {url: "/echo/{{ id }}"}',
    ])
    rep, _ = run_report(mesh, tmp_path, script)
    c = rep["aggregate"]["counters"]
    assert c["vusers.completed"] == 3, c
    assert c["http.codes.200"] == 18 and c["http.codes.204"] == 3
    assert not [k for k in c if k.startswith("errors.")]
    assert sorted(p[2] for p in server.requests if p[2].startswith("/echo")) == ["/echo/7"] * 3
    # "{"id": 7}" (9) + "bye" (3) + "ok" (2) + "until the end" (13) + "ok" (2), per VU
    assert c["http.downloaded_bytes"] == 3 * (9 + 3 + 2 + 13 + 2)


def test_failed_capture_and_expect_fail_the_vu(mesh, tmp_path, server):
    """A capture that finds nothing fails the user; so does a failed check when the expect
    plugin reports failures as errors."""
    script = f"""
config:
  target: "{server.url}"
  phases: [{{duration: 1, arrivalCount: 2}}]
  plugins: {{expect: {{reportFailuresAsErrors: true, outputFormat: silent}}}}
scenarios:
  - flow:
      - get: {{url: "/json", capture: {{json: "$.missing", as: x}}}}
  - flow:
      - get: {{url: "/", expect: {{statusCode: 201}}}}
"""
    out_json = tmp_path / "report.json"
    code, out, err = run_load(mesh, tmp_path, script, "--output", str(out_json))
    c = json.loads(out_json.read_text())["aggregate"]["counters"]
    assert c["vusers.failed"] == 2 and c.get("vusers.completed", 0) == 0
    failed_expect = c.get(f"errors.Failed expectations for request {server.url}/", 0)
    assert c.get("errors.Failed capture or match", 0) + failed_expect == 2
    assert code == (21 if failed_expect else 0), out + err


def test_captured_line_breaks_are_not_sent(mesh, tmp_path, server):
    """A value the server controls, captured and put in a header or the path, must not inject
    headers (or a second request): the request fails, as Node's http refuses it."""
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 2}]", [
        'get: {url: "/crlf", capture: [{json: "$.v", as: v}, {json: "$.p", as: p}]}',
        'get: {url: "/h", headers: {X-V: "{{ v }}"}}',
        'get: {url: "{{ p }}"}'])
    rep, _ = run_report(mesh, tmp_path, script)
    c = rep["aggregate"]["counters"]
    assert not any("X-Injected" in h for _, _, _, h, _ in server.requests), server.requests
    assert c["errors.ERR_INVALID_CHAR"] == 2 and c["vusers.failed"] == 2
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 1}]", [
        'get: {url: "/crlf", capture: [{json: "$.p", as: p}]}', 'get: {url: "{{ p }}"}'])
    rep, _ = run_report(mesh, tmp_path, script)
    assert rep["aggregate"]["counters"]["errors.ERR_UNESCAPED_CHARACTERS"] == 1
    assert not any("X-Injected" in h for _, _, _, h, _ in server.requests), server.requests


def test_captured_values_are_not_rendered_again(mesh, tmp_path, server):
    """A captured value is data: a server answering "{{ $env.NAME }}" must not get the load
    generator's environment sent back in the next request's path."""
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 1}]", [
        'get: {url: "/tmpl", capture: {json: "$.v", as: v}}', 'get: {url: "/echo/{{ v }}"}'])
    rep, _ = run_report(mesh, tmp_path, script, env={"MESH_TEST_SECRET": "topsecret"})
    assert rep["aggregate"]["counters"]["http.responses"] == 2
    paths = [path for _, _, path, _, _ in server.requests]
    assert not any("topsecret" in p for p in paths), paths


def test_report_json_has_artillerys_keys(mesh, tmp_path, server):
    script = f"""
config:
  target: "{server.url}"
  phases: [{{duration: 2, arrivalRate: 3}}]
  environments:
    quick:
      phases: [{{duration: 1, arrivalRate: 4}}]
scenarios:
  - flow:
      - get: {{url: "/"}}
"""
    rep, _ = run_report(mesh, tmp_path, script, "-e", "quick")
    assert set(rep) == {"aggregate", "intermediate", "meshkit"}
    summary_keys = {"min", "max", "count", "mean", "p50", "median", "p75", "p90", "p95", "p99",
                    "p999"}
    for m in [rep["aggregate"], *rep["intermediate"]]:
        assert {"counters", "rates", "summaries", "histograms", "firstCounterAt", "lastCounterAt",
                "firstMetricAt", "lastMetricAt"} <= set(m)
        for name in ("http.requests", "http.responses", "http.downloaded_bytes", "vusers.created",
                     "vusers.completed", "vusers.failed"):
            assert isinstance(m["counters"][name], int)
        assert "http.request_rate" in m["rates"]
        for name in ("http.response_time", "vusers.session_length"):
            assert set(m["summaries"][name]) == summary_keys
            assert set(m["histograms"][name]) == summary_keys
    # as Artillery 2.0.34 writes them: intermediate periods start on a multiple of 10 s of the
    # epoch, as strings; the aggregate's is the last one's, as a number; first and last metric
    # times are those of real events, inside their period
    periods = [int(m["period"]) for m in rep["intermediate"]]
    assert all(isinstance(m["period"], str) and int(m["period"]) % 10000 == 0
               for m in rep["intermediate"])
    assert rep["aggregate"]["period"] == periods[-1]
    for m in rep["intermediate"]:
        p = int(m["period"])
        assert p <= m["firstMetricAt"] <= m["lastMetricAt"] < p + 10000, m
    assert rep["aggregate"]["counters"]["vusers.created"] == 4
    mk = rep["meshkit"]
    assert {"version", "target", "scenario_file", "environment", "phases", "served_by",
            "timeline", "events", "histogram_error"} <= set(mk)
    assert mk["environment"] == "quick" and mk["target"] == server.url
    assert mk["phases"] == [{"name": None, "start_ms": 0, "duration_ms": 1000, "arrivalRate": 4.0}]
    assert mk["events"] == []
    row = mk["timeline"][0]
    assert {"t", "requests", "codes", "errors", "p50", "p99", "vusers_created",
            "served_by"} <= set(row)
    assert row["t"] == 0


def test_closed_port_counts_econnrefused(mesh, tmp_path):
    script = one_flow("http://127.0.0.1:9", "[{duration: 1, arrivalRate: 5}]", ['get: {url: "/"}'])
    port = free_port()
    rep, _ = run_report(mesh, tmp_path, script, "-t", f"http://{HOST}:{port}")
    c = rep["aggregate"]["counters"]
    assert c["errors.ECONNREFUSED"] == 5
    assert c["vusers.failed"] == 5 and "http.responses" not in c  # zero: left out, as Artillery
    assert rep["meshkit"]["timeline"][0]["errors"]["ECONNREFUSED"] >= 1


def test_server_resetting_connections(mesh, tmp_path):
    """A server that resets every connection while a large body is being sent: each VU fails
    with a counted error and the run ends normally."""
    lsock = socket.socket()
    lsock.bind((HOST, 0))
    lsock.listen(64)
    lsock.settimeout(0.2)
    stop = threading.Event()

    def reset_all():
        while not stop.is_set():
            try:
                conn, _ = lsock.accept()
            except OSError:
                continue
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    t = threading.Thread(target=reset_all, daemon=True)
    t.start()
    try:
        url = f"http://{HOST}:{lsock.getsockname()[1]}"
        script = one_flow(url, "[{duration: 1, arrivalCount: 4}]",
                          ['post: {url: "/", body: "' + "x" * 200000 + '"}'])
        rep, _ = run_report(mesh, tmp_path, script)
    finally:
        stop.set()
        t.join(timeout=5)
        lsock.close()
    c = rep["aggregate"]["counters"]
    assert c["vusers.failed"] == 4
    errors = {k: v for k, v in c.items() if k.startswith("errors.")}
    assert sum(errors.values()) == 4, errors
    assert set(errors) <= {"errors.ECONNRESET", "errors.EPIPE"}, errors


def test_https_targets(mesh, tmp_path, tls_server):
    flow = ['get: {url: "/json", capture: {json: "$.items[0].id", as: id}}',
            'get: {url: "/echo/{{ id }}"}']
    script = one_flow(tls_server.url, "[{duration: 1, arrivalCount: 2}]", flow)
    # a self-signed certificate does not verify against the system's CAs
    rep, _ = run_report(mesh, tmp_path, script)
    c = rep["aggregate"]["counters"]
    assert c["errors.EPROTO"] == 2 and c["vusers.failed"] == 2
    # -k, config.tls.rejectUnauthorized: false, or a trusted CA (OpenSSL's SSL_CERT_FILE)
    for args, config, env in ((["-k"], "", None),
                              ([], "  tls: {rejectUnauthorized: false}\n", None),
                              ([], "", {"SSL_CERT_FILE": str(tls_server.cert)})):
        script = one_flow(tls_server.url, "[{duration: 1, arrivalCount: 2}]", flow, config)
        rep, _ = run_report(mesh, tmp_path, script, *args, env=env)
        c = rep["aggregate"]["counters"]
        assert c["vusers.completed"] == 2 and c["http.codes.200"] == 4, (args, config, c)
    # each VU kept its one TLS connection for both requests
    assert [p[2] for p in tls_server.requests].count("/echo/42") == 6
    assert len(tls_server.peers) == 6


def test_timeout_counts_etimedout(mesh, tmp_path, server):
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 2}]",
                      ['get: {url: "/sleep?ms=1000"}'], "  http: {timeout: 0.2}\n")
    rep, _ = run_report(mesh, tmp_path, script)
    c = rep["aggregate"]["counters"]
    assert c["errors.ETIMEDOUT"] == 2 and c["vusers.failed"] == 2
    # config.timeout, which Artillery reads first
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 2}]",
                      ['get: {url: "/sleep?ms=1000"}'], "  timeout: 0.2\n  http: {timeout: 5}\n")
    rep, _ = run_report(mesh, tmp_path, script)
    c = rep["aggregate"]["counters"]
    assert c["errors.ETIMEDOUT"] == 2 and c["vusers.failed"] == 2


def test_max_vusers_skips_arrivals(mesh, tmp_path, server):
    # 10 arrivals within 0.9 s, each VU busy for a second: only 2 may run, 8 are skipped
    script = one_flow(server.url, "[{duration: 1, arrivalRate: 10, maxVusers: 2}]",
                      ['get: {url: "/sleep?ms=1000"}'])
    rep, out = run_report(mesh, tmp_path, script)
    c = rep["aggregate"]["counters"]
    assert c["vusers.created"] == 2 and c["vusers.skipped"] == 8
    assert c["vusers.completed"] == 2
    assert rep["meshkit"]["phases"][0]["maxVusers"] == 2


def test_pool_mode_keeps_connections_busy(mesh, tmp_path, server):
    script = one_flow(server.url, "[{duration: 1, arrivalRate: 1}]", ['get: {url: "/"}'])
    rep, out = run_report(mesh, tmp_path, script, "--pool", "3", "--workers", "2")
    c = rep["aggregate"]["counters"]
    assert c["vusers.created"] == 3 and c["vusers.completed"] == 3
    # back to back on 3 connections for a second: far more than the one arrival a second
    assert c["http.codes.200"] > 30
    assert c["http.requests"] == c["http.responses"]
    assert "(pool mode)" in out
    # keep-alive: one connection per pool member, not one per request
    assert len(server.peers) == 3
    assert rep["meshkit"]["pool"] == 3


def test_pool_connections_outlive_failed_requests(mesh, tmp_path, server):
    """As wrk reconnects after an error, a pool connection whose request or expect fails goes on
    with a fresh flow until the end: failures must not shrink the pool and end the run early."""
    script = one_flow(server.url, "[{duration: 1, arrivalRate: 1}]",
                      ['get: {url: "/", expect: {statusCode: 201}}'],
                      "  plugins: {expect: {reportFailuresAsErrors: true, outputFormat: silent}}\n")
    out_json = tmp_path / "report.json"
    code, out, err = run_load(mesh, tmp_path, script, "--pool", "2", "--output", str(out_json))
    assert code == 21, out + err
    c = json.loads(out_json.read_text())["aggregate"]["counters"]
    # each connection's last flow failed too: it ends failed, once
    assert c["vusers.created"] == 2 and c["vusers.failed"] == 2
    assert c["http.requests"] > 2 and c["plugins.expect.failed"] == c["http.responses"]
    port = free_port()
    script = one_flow(f"http://{HOST}:{port}", "[{duration: 1, arrivalRate: 1}]",
                      ['get: {url: "/"}'])
    rep, _ = run_report(mesh, tmp_path, script, "--pool", "2")
    c = rep["aggregate"]["counters"]
    assert c["errors.ECONNREFUSED"] > 2 and c["vusers.created"] == 2


@pytest.mark.parametrize("body,message", [
    ("config:\n  target: http://127.0.0.1:1\n  http: {pool: 1.5}\n"
     "  phases: [{duration: 1, arrivalRate: 1}]\nscenarios: [{flow: [{get: {url: /}}]}]\n",
     "test.yml:3: config.http.pool: want a whole number of connections"),
    ("config:\n  target: http://127.0.0.1:1\n  phases: [{duration: 1, arrivalRate: 1}]\n"
     "scenarios:\n  - flow:\n      - emit: []\n",
     "test.yml:6: flow.emit: not supported"),
    ("config:\n  target: http://127.0.0.1:1\n  phases: [{duration: 1, arrivalRate: 1}\n",
     "test.yml:"),
])
def test_bad_scripts_exit_2(mesh, tmp_path, body, message):
    code, out, err = run_load(mesh, tmp_path, body)
    assert code == 2
    assert message in err


def test_help_and_bad_flags(mesh, tmp_path):
    r = subprocess.run([mesh, "load", "run", "--help"], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 0 and "-pool" in r.stdout and "-workers" in r.stdout
    r = subprocess.run([mesh, "load", "run", "--nope", "x.yml"], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 2 and "flag provided but not defined: -nope" in r.stderr
    r = subprocess.run([mesh, "load", "run", str(tmp_path / "missing.yml")],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and "missing.yml: No such file or directory" in r.stderr
