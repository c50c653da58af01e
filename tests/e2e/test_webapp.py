"""End-to-end tests of webapp (apps/webapp), the example service: its endpoints, /work off the
loop thread, registration with a `mesh agent` and deregistration plus drain on SIGTERM."""

import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from helpers import (HOST, SANITIZER_MARKERS, free_port, mesh_bin, raw_request, request,
                     wait_until)


def webapp_bin():
    return os.path.join(os.path.dirname(mesh_bin()), "webapp")


class Webapp:
    """A webapp process on a free port, stopped by PID."""

    def __init__(self, tmp_path, args=(), env=None, port=None):
        self.port = port or free_port()
        self.log_path = tmp_path / f"webapp-{self.port}.log"
        argv = [webapp_bin(), "-port", str(self.port)] + list(args)
        full_env = {k: v for k, v in os.environ.items()
                    if k not in ("PORT", "NODE_NAME", "INSTANCE_ID", "SERVICE_NAME", "TAGS",
                                 "MESH_HTTP_ADDR", "CONSUL_HTTP_ADDR")}
        full_env.update(env or {})
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         env=full_env)
        wait_until(self._ready, 10, what="webapp to answer /health")

    def _ready(self):
        assert self.proc.poll() is None, f"webapp exited early:\n{self.log()}"
        try:
            return request(self.port, "GET", "/health", timeout=1.0).status == 200
        except OSError:
            return False

    def get(self, path, **kw):
        return request(self.port, "GET", path, **kw)

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def signal(self, sig=signal.SIGTERM):
        os.kill(self.proc.pid, sig)

    def wait(self, timeout=5.0):
        return self.proc.wait(timeout=timeout)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


@pytest.fixture
def webapp_factory(tmp_path):
    if not os.access(webapp_bin(), os.X_OK):
        pytest.fail(f"webapp binary not found: {webapp_bin()}", pytrace=False)
    apps = []

    def make(*args, **kw):
        w = Webapp(tmp_path, args=args, **kw)
        apps.append(w)
        return w

    yield make
    for w in apps:
        w.stop()
    for w in apps:
        text = w.log()
        for marker in SANITIZER_MARKERS:
            assert marker not in text, f"sanitizer report in webapp log:\n{text[-4000:]}"


def served_by(r):
    return r.header("X-Served-By")


def test_root_health_info_and_served_by(webapp_factory):
    w = webapp_factory("-no-register", "-node", "web7", "-instance", "3")
    r = w.get("/")
    assert r.status == 200 and r.content_type == "application/json"
    assert served_by(r) == "web7/3"
    j = r.json()
    assert j["node"] == "web7" and j["instance"] == "3"
    assert j["address"] == "127.0.0.1" and j["port"] == w.port
    assert j["pid"] == w.proc.pid
    assert isinstance(j["uptime_s"], (int, float)) and 0 <= j["uptime_s"] < 60
    first = j["requests"]
    assert first >= 1
    assert w.get("/").json()["requests"] == first + 1

    r = w.get("/health")
    assert r.status == 200 and served_by(r) == "web7/3"
    assert r.json()["status"] == "ok"

    r = w.get("/info")
    assert r.status == 200 and served_by(r) == "web7/3"
    j = r.json()
    for k in ("cpu", "memory", "loadavg", "uptime_s", "requests", "hostname", "version"):
        assert k in j, k
    assert j["memory"]["rss_bytes"] > 1024 * 1024
    assert j["cpu"]["user_s"] >= 0 and j["cpu"]["system_s"] >= 0 and j["cpu"]["percent"] >= 0
    assert len(j["loadavg"]) == 3
    assert j["hostname"] == os.uname().nodename
    assert j["requests"] >= first + 3

    r = w.get("/nope")
    assert r.status == 404 and served_by(r) == "web7/3"
    r = request(w.port, "POST", "/")
    assert r.status == 405 and served_by(r) == "web7/3"


def test_status_and_work_values(webapp_factory):
    w = webapp_factory("-no-register", "-node", "n", "-instance", "1")
    for n in (200, 418, 500, 503, 599):
        r = w.get(f"/status/{n}")
        assert r.status == n and served_by(r) == "n/1"
    r = w.get("/status/204")
    assert r.status == 204 and r.body == b""
    for bad in ("99", "600", "101", "abc", "", "-200", "2000000000000000000000"):
        r = w.get(f"/status/{bad}")
        assert r.status == 400, bad
        assert r.content_type == "text/plain" and r.text, bad
        assert served_by(r) == "n/1"
    r = w.get("/work?duration=20")
    assert r.status == 200 and served_by(r) == "n/1"
    j = r.json()
    assert j["duration_ms"] == 20 and j["elapsed_ms"] >= 20
    for bad in ("0", "10001", "abc", "-5", "1.5", ""):
        r = w.get(f"/work?duration={bad}")
        assert r.status == 400, bad
        assert "duration" in r.text
    assert w.get("/work").status == 400


def test_work_does_not_stall_other_requests(webapp_factory):
    w = webapp_factory("-no-register")
    result = {}

    def work():
        t0 = time.monotonic()
        result["r"] = w.get("/work?duration=300")
        result["elapsed"] = time.monotonic() - t0
        result["done_at"] = time.monotonic()

    t = threading.Thread(target=work)
    t.start()
    time.sleep(0.03)  # let /work reach the threadpool
    t0 = time.monotonic()
    for _ in range(20):
        r = w.get("/")
        assert r.status == 200
        assert r.elapsed < 0.2, f"a quick request took {r.elapsed:.3f}s behind /work"
    quick_total = time.monotonic() - t0
    quick_done = time.monotonic()
    t.join(5)
    assert result["r"].status == 200
    assert result["elapsed"] >= 0.29
    assert quick_total < 0.25, f"20 quick requests took {quick_total:.3f}s"
    assert quick_done < result["done_at"], "quick requests waited for /work"


def test_register_check_passing_and_sigterm_deregisters(agent_factory, webapp_factory):
    agent = agent_factory()
    w = webapp_factory("-agent", f"{HOST}:{agent.port}", "-node", "web1", "-instance", "0",
                       "-tag", "v1", "-tag", "blue", "-meta", "zone=a", "-check-interval", "1s")
    sid = f"web-web1-{w.port}"

    def passing():
        r = agent.get("/v1/health/service/web?passing")
        return r.status == 200 and [e for e in r.json() if e["Service"]["ID"] == sid]

    entry = wait_until(passing, 10, interval=0.1, what="webapp passing in the registry")[0]
    svc = entry["Service"]
    assert svc["Service"] == "web" and svc["Port"] == w.port and svc["Address"] == HOST
    assert svc["Tags"] == ["v1", "blue"] and svc["Meta"] == {"zone": "a"}
    check = [c for c in entry["Checks"] if c["ServiceID"] == sid][0]
    assert check["Status"] == "passing"
    assert check["Interval"] == "1s"

    w.signal(signal.SIGTERM)
    assert w.wait(5) == 0
    assert sid not in agent.get_json("/v1/agent/services")
    assert "deregistered" in w.log()


def test_registration_retries_until_agent_answers(agent_factory, webapp_factory):
    agent = agent_factory(start=False)
    w = webapp_factory(env={"MESH_HTTP_ADDR": f"http://{HOST}:{agent.port}", "NODE_NAME": "late",
                            "SERVICE_NAME": "api", "INSTANCE_ID": "5", "TAGS": "x,y"})
    time.sleep(1.2)  # at least one failed attempt
    agent.start()
    sid = f"api-late-{w.port}"
    svcs = wait_until(lambda: sid in agent.get_json("/v1/agent/services") and
                      agent.get_json("/v1/agent/services"), 5, interval=0.1,
                      what="registration after the agent came up")
    assert svcs[sid]["Tags"] == ["x", "y"] and svcs[sid]["Service"] == "api"
    assert served_by(w.get("/")) == "late/5"
    log = w.log()
    assert log.count("retrying every second") == 1, log


def test_sigterm_drains_in_flight_work(webapp_factory):
    w = webapp_factory("-no-register")
    result = {}

    def work():
        result["r"] = w.get("/work?duration=800")

    t = threading.Thread(target=work)
    t.start()
    time.sleep(0.1)
    w.signal(signal.SIGTERM)
    r = wait_until(lambda: (lambda x: x.status == 503 and x)(w.get("/health")), 1,
                   what="/health 503 while draining")
    assert r.json()["status"] == "draining"
    t.join(5)
    assert result["r"].status == 200 and result["r"].json()["duration_ms"] == 800
    assert w.wait(5) == 0


def test_help_and_bad_flags(tmp_path):
    r = subprocess.run([webapp_bin(), "-help"], capture_output=True, text=True, timeout=5)
    assert r.returncode == 0 and "-check-interval" in r.stdout and "-no-register" in r.stdout
    for args, msg in ((["-bogus"], "flag provided but not defined: -bogus"),
                      (["-port", "x"], "invalid value"),
                      (["-port", "70000"], "invalid port"),
                      (["-meta", "novalue"], "key=value"),
                      (["-agent", "ftp://x"], "invalid agent address")):
        r = subprocess.run([webapp_bin()] + args, capture_output=True, text=True, timeout=5)
        assert r.returncode == 1, args
        assert msg in r.stderr, (args, r.stderr)


def test_a_port_in_use_exits_non_zero(tmp_path):
    """A webapp that cannot bind says so and exits 1, so a supervisor sees a failure (and backs
    off) rather than a clean exit it would restart forever."""
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run([webapp_bin(), "-port", str(port), "-no-register"],
                           capture_output=True, text=True, timeout=10)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"{port}" in r.stderr and "address already in use" in r.stderr, r.stderr


def decimals(text, key):
    """Digits after the point of every number written as "key": N in raw JSON text."""
    found = re.findall(r'"%s":\s*(-?\d+(?:\.(\d+))?(?:[eE][-+]?\d+)?)' % re.escape(key), text)
    assert found, (key, text)
    return [len(frac) for _, frac in found]


def test_json_numbers_are_rounded_to_what_they_mean(webapp_factory):
    """Seconds to the millisecond, percentages to a tenth: no 17-digit floats
    ("uptime_s": 7.0412578039999998)."""
    w = webapp_factory("-no-register")
    time.sleep(0.01)  # not a timing assertion: only makes uptime non-integral
    assert max(decimals(w.get("/").text, "uptime_s")) <= 3
    info = w.get("/info").text
    for key, most in (("uptime_s", 3), ("user_s", 3), ("system_s", 3), ("percent", 1)):
        assert max(decimals(info, key)) <= most, (key, info)
    loads = re.search(r'"loadavg":\s*\[([^\]]*)\]', info).group(1)
    assert all(len(x.strip().partition(".")[2]) <= 2 for x in loads.split(",")), info
    assert max(decimals(w.get("/work?duration=3").text, "elapsed_ms")) <= 2


def test_info_lines_on_stdout_errors_on_stderr(tmp_path):
    """Under a supervisor the output log gets the notices and the error log only failures."""
    port = free_port()
    out, err = tmp_path / "out.log", tmp_path / "err.log"
    with open(out, "wb") as o, open(err, "wb") as e:
        proc = subprocess.Popen([webapp_bin(), "-port", str(port), "-no-register"],
                                stdin=subprocess.DEVNULL, stdout=o, stderr=e)
    try:
        wait_until(lambda: "listening on" in out.read_text(), 10, what="webapp's INFO line")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    assert " INFO " in out.read_text() and "ERROR" not in out.read_text()
    assert " INFO " not in err.read_text(), err.read_text()

    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        r = subprocess.run([webapp_bin(), "-port", str(taken.getsockname()[1]), "-no-register"],
                           capture_output=True, text=True, timeout=10)
    assert r.returncode == 1 and "ERROR" in r.stderr and "ERROR" not in r.stdout, r


def test_http11_without_host_is_400_http10_is_served(webapp_factory):
    """The webapp reads requests as Go's net/http does: HTTP/1.1 needs Host."""
    w = webapp_factory("-no-register")
    status, _, body = raw_request(w.port, b"GET /health HTTP/1.1\r\n\r\n")
    assert (status, body) == (400, b"400 Bad Request: missing required Host header")
    status, _, body = raw_request(w.port, b"GET /health HTTP/1.0\r\n\r\n")
    assert status == 200 and b'"ok"' in body, body
    status, _, body = raw_request(w.port, b"GET http://web/health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 200 and b'"ok"' in body, body
