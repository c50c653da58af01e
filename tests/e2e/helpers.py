"""Helpers for meshkit's end-to-end tests.

Everything here uses the Python standard library only: free loopback ports, a `mesh agent`
process driven by PID, an HTTP client that returns status, headers and raw body, raw-socket
requests for malformed HTTP, a tiny HTTP server whose status a test can switch (health-check
target), and bounded polling. The contract these tests encode is
docs/api.md and docs/agent.md.
"""

import base64
import http.client
import http.server
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 10.0  # seconds for an agent to answer /v1/status/leader
STOP_TIMEOUT = 5.0  # seconds between SIGTERM and SIGKILL
HOST = "127.0.0.1"
# What ASan, LSan and UBSan print: a process log holding one failed its run.
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "WARNING: ThreadSanitizer")


def mesh_bin():
    """Path of the mesh binary: $MESH_BIN, else <repo>/build/mesh."""
    return os.environ.get("MESH_BIN") or str(REPO / "build" / "mesh")


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def free_ports(n):
    """N distinct TCP ports on 127.0.0.1, free now: each is held until all are picked, so two
    calls for one process (an HTTP and a DNS port) cannot return the same port."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind((HOST, 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def gone(pid):
    """True when pid has exited (a zombie waiting for init to reap it counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] in ("Z", "X")
    except OSError:
        return True


def wait_until(fn, timeout, interval=0.05, what="condition"):
    """Calls fn until it returns a truthy value or timeout seconds pass (bounded loop).

    Returns the truthy value; raises AssertionError with the last value otherwise.
    """
    deadline = time.monotonic() + timeout
    last = None
    for _ in range(int(timeout / interval) + 2):
        last = fn()
        if last:
            return last
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


class Response:
    """An HTTP response read whole."""

    def __init__(self, status, reason, headers, body, elapsed):
        self.status = status
        self.reason = reason
        self.headers = headers  # http.client.HTTPMessage, case-insensitive lookup
        self.body = body
        self.elapsed = elapsed

    def header(self, name):
        return self.headers.get(name)

    @property
    def content_type(self):
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    @property
    def index(self):
        """X-Consul-Index as an int (asserts it is present and a decimal uint64)."""
        v = self.headers.get("X-Consul-Index")
        assert v is not None, f"no X-Consul-Index header; headers: {dict(self.headers)}"
        assert re.fullmatch(r"[0-9]+", v), f"X-Consul-Index not a uint64: {v!r}"
        return int(v)

    def __repr__(self):
        return f"<Response {self.status} {self.content_type} {self.body[:300]!r}>"


def request(port, method, path, body=None, headers=None, timeout=10.0):
    """One HTTP/1.1 request on a fresh connection to 127.0.0.1:port.

    path is sent as given (already percent-encoded). body: bytes, str, or a JSON-able object.
    """
    hdrs = dict(headers or {})
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
        hdrs.setdefault("Content-Type", "application/json")
    if isinstance(body, str):
        body = body.encode()
    if body is None and method in ("PUT", "POST"):
        body = b""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    t0 = time.monotonic()
    try:
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        return Response(resp.status, resp.reason, resp.headers, data, time.monotonic() - t0)
    finally:
        conn.close()


def raw_request(port, data, timeout=5.0, shutdown_write=False):
    """Sends raw bytes on a new connection and returns everything read until close/timeout.

    Returns (status or None, head text, body bytes).
    """
    chunks = []
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(data)
        if shutdown_write:
            s.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + timeout
        for _ in range(10000):
            if time.monotonic() >= deadline:
                break
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            if not b:
                break
            chunks.append(b)
            raw = b"".join(chunks)
            if _complete_response(raw):
                break
    return parse_raw_response(b"".join(chunks))


def get_from(port, path, source, timeout=10.0):
    """GET path on a new connection from the local address source (another client when not
    127.0.0.1), read until the close: (status or None, head text, body bytes)."""
    chunks = []
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.bind((source, 0))
        s.connect((HOST, port))
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".encode())
        for _ in range(100000):
            b = s.recv(1 << 20)
            if not b:
                break
            chunks.append(b)
    return parse_raw_response(b"".join(chunks))


def _complete_response(raw):
    head_end = raw.find(b"\r\n\r\n")
    if head_end < 0:
        return False
    m = re.search(rb"(?im)^content-length:\s*([0-9]+)\s*$", raw[:head_end])
    if not m:
        return False
    return len(raw) - (head_end + 4) >= int(m.group(1))


def parse_raw_response(raw):
    head_end = raw.find(b"\r\n\r\n")
    if head_end < 0:
        return None, raw.decode("latin-1"), b""
    head = raw[:head_end].decode("latin-1")
    body = raw[head_end + 4 :]
    m = re.match(r"HTTP/1\.[01] ([0-9]{3})", head)
    return (int(m.group(1)) if m else None), head, body


def raw_header(head, name):
    """Value of the first header called name in a raw response head, or None."""
    for line in head.split("\r\n")[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == name.lower():
            return v.strip()
    return None


class ManagedProcess:
    """Process bookkeeping shared by the test's processes (agents, load balancers): a child in
    self.proc writing its log to self.log_path, stopped by PID."""

    proc = None
    log_path = None
    starts = 0
    env = None  # variables added to the inherited environment, or None
    preexec_fn = None  # run in the child before the exec (a test's resource limits), or None

    def argv(self):
        raise NotImplementedError

    def wait_ready(self, timeout):
        raise NotImplementedError

    def start(self, wait=True):
        """Runs self.argv() with its output appended to the log (after a "=== start #N" line),
        then, with wait, self.wait_ready()."""
        assert not self.running(), "already running"
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"=== start #{self.starts}: {' '.join(self.argv())}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, cwd=str(self.log_path.parent),
                                         env=dict(os.environ, **self.env) if self.env else None,
                                         preexec_fn=self.preexec_fn)
        if wait:
            self.wait_ready()
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM by PID, wait, then SIGKILL. Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=STOP_TIMEOUT)
        return self.proc.returncode

    def kill9(self):
        """SIGKILL by PID (a crash) and reap."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=STOP_TIMEOUT)

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines=200):
        return "\n".join(self.log_text().splitlines()[-lines:])


class AgentError(Exception):
    pass


class Agent(ManagedProcess):
    """A `mesh agent` process (a server unless server=False) on a free loopback port, stopped
    by PID."""

    def __init__(self, tmp_path, name="a", node="node1", data_dir=None, config_files=(),
                 extra_args=(), http_port=None, pass_http_port=True, log_level="debug",
                 server=True, dns_port=-1):
        self.server = server
        self.dns_port = dns_port  # -1: no DNS, so that agents never race for port 8600
        self.name = name
        self.node = node
        self.data_dir = data_dir
        self.config_files = list(config_files)
        self.extra_args = list(extra_args)
        self.port = http_port or free_port()
        self.pass_http_port = pass_http_port
        self.log_level = log_level
        self.log_path = Path(tmp_path) / f"agent-{name}.log"
        self.proc = None

    def argv(self):
        a = [mesh_bin(), "agent"] + (["-server", "-bootstrap"] if self.server else []) + [
            "-node", self.node, "-datacenter", "dc1", "-bind", HOST, "-client", HOST]
        if self.pass_http_port:
            a += ["-http-port", str(self.port)]
        if self.dns_port is not None:
            a += [f"-dns-port={self.dns_port}"]
        if self.data_dir is not None:
            a += ["-data-dir", str(self.data_dir)]
        for f in self.config_files:
            a += ["-config-file", str(f)]
        if self.log_level:
            a += ["-log-level", self.log_level]
        return a + self.extra_args

    def wait_ready(self, timeout=READY_TIMEOUT):
        deadline = time.monotonic() + timeout
        last = None
        for _ in range(int(timeout / 0.05) + 2):
            rc = self.proc.poll()
            if rc is not None:
                raise AgentError(f"agent exited with status {rc} before it was ready\n"
                                 f"--- log ---\n{self.log_tail()}")
            try:
                r = self.get("/v1/status/leader", timeout=1.0)
                last = r
                if r.status == 200 and isinstance(r.json(), str) and r.json():
                    return
            except (OSError, ValueError, http.client.HTTPException) as e:
                last = e
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        raise AgentError(f"agent not ready within {timeout}s (last: {last!r})\n"
                         f"--- log ---\n{self.log_tail()}")

    # HTTP conveniences
    def req(self, method, path, body=None, headers=None, timeout=10.0):
        return request(self.port, method, path, body=body, headers=headers, timeout=timeout)

    def get(self, path, **kw):
        return self.req("GET", path, **kw)

    def put(self, path, body=None, **kw):
        return self.req("PUT", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.req("DELETE", path, **kw)

    def get_json(self, path, **kw):
        r = self.get(path, **kw)
        assert r.status == 200, f"GET {path}: {r!r}"
        assert r.content_type == "application/json", f"GET {path}: content type {r.content_type}"
        return r.json()

    def put_ok(self, path, body=None):
        """An agent write: 200 with an empty body."""
        r = self.put(path, body)
        assert r.status == 200, f"PUT {path}: {r!r}"
        assert r.body == b"", f"PUT {path}: agent writes answer an empty body, got {r.body!r}"
        return r

    def put_true(self, path, body=None):
        """A write answering the JSON literal true (KV, catalog)."""
        r = self.put(path, body)
        assert r.status == 200, f"PUT {path}: {r!r}"
        assert r.content_type == "application/json", f"PUT {path}: {r.content_type}"
        assert r.json() is True, f"PUT {path}: expected true, got {r.body!r}"
        return r

    def register_service(self, svc, query=""):
        return self.put_ok("/v1/agent/service/register" + query, svc)

    def agent_checks(self):
        return self.get_json("/v1/agent/checks")

    def check_status(self, check_id):
        c = self.agent_checks().get(check_id)
        return c["Status"] if c else None

    def wait_check(self, check_id, status, timeout=6.0, output_contains=None):
        """Waits until check_id has status (and Output containing output_contains); returns
        the check object. New checks start critical: pass output_contains to wait for a run."""
        def probe():
            c = self.agent_checks().get(check_id)
            if not c or c["Status"] != status:
                return None
            if output_contains is not None and output_contains not in c["Output"]:
                return None
            return c
        try:
            return wait_until(probe, timeout, 0.1, f"check {check_id} to be {status}")
        except AssertionError:
            raise AssertionError(f"check {check_id} not {status} within {timeout}s; "
                                 f"now: {self.agent_checks().get(check_id)!r}") from None


def assert_text_error(r, status, startswith=None, contains=None, equals=None):
    """An error answer: exact status, text/plain body with a human message."""
    assert r.status == status, f"expected {status}, got {r!r}"
    assert r.content_type == "text/plain", f"errors are text/plain, got {r.content_type!r}: {r!r}"
    text = r.text
    assert text.strip(), "error body must carry a message"
    if startswith is not None:
        assert text.startswith(startswith), f"{text!r} should start with {startswith!r}"
    if contains is not None:
        assert contains in text, f"{text!r} should contain {contains!r}"
    if equals is not None:
        assert text.rstrip("\n") == equals, f"{text!r} should be {equals!r}"


def assert_query_meta(r):
    """Read endpoints carry X-Consul-Index >= 1, KnownLeader true, LastContact 0."""
    idx = r.index
    assert idx >= 1, f"X-Consul-Index must never be 0, got {idx}"
    assert (r.header("X-Consul-KnownLeader") or "").lower() == "true", dict(r.headers)
    assert r.header("X-Consul-LastContact") == "0", dict(r.headers)
    return idx


def run_blocking(fn):
    """Runs fn() in a thread; returns a getter that joins (bounded) and returns its result."""
    box = {}

    def target():
        t0 = time.monotonic()
        try:
            box["value"] = fn()
        except BaseException as e:  # reported by the getter
            box["error"] = e
        box["elapsed"] = time.monotonic() - t0

    t = threading.Thread(target=target, daemon=True)
    t.start()

    def result(timeout=15.0):
        t.join(timeout)
        assert not t.is_alive(), f"blocking call still running after {timeout}s"
        if "error" in box:
            raise box["error"]
        return box["value"], box["elapsed"]

    return result


class Target:
    """A tiny HTTP server for HTTP health checks: status, body and delay are switchable."""

    def __init__(self):
        self.status = 200
        self.body = b"ok"
        self.delay = 0.0
        self.requests = []  # (method, path, headers dict)
        self.lock = threading.Lock()
        target = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _serve(self):
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                with target.lock:
                    target.requests.append((self.command, self.path, dict(self.headers)))
                    status, body, delay = target.status, target.body, target.delay
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(body)
                except OSError:
                    pass

            do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _serve

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer((HOST, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def url(self, path="/health"):
        return f"http://{HOST}:{self.port}{path}"

    def set(self, status=None, body=None, delay=None):
        with self.lock:
            if status is not None:
                self.status = status
            if body is not None:
                self.body = body
            if delay is not None:
                self.delay = delay

    def count(self):
        with self.lock:
            return len(self.requests)

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
