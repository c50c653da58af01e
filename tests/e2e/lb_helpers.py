"""Helpers and fixtures for the end-to-end tests of `mesh lb` (test_lb.py, test_lb_stats.py).

- Backend: a multi-threaded HTTP/1.1 server (http.server) run as a separate process (this file
  run as a script), on a free 127.0.0.1 port it picks and reports, so a test can kill -9 it.
  It answers:
    GET /                "ok from PORT\\n" with X-Served-By: PORT
    GET /health          200 "healthy" or the status set by PUT /ctl?health=N
    GET /slow?ms=N       sleeps N ms, then 200 "slow from PORT\\n"
    GET /status/N        status N, body "status N from PORT\\n"
    POST /echo           the request body (Content-Length or chunked); ?chunked=1 answers chunked
    GET /headers         the request headers as a JSON list of [name, value] pairs
    GET /hop             200 with hop-by-hop response headers (Keep-Alive, X-Backend-Hop named
                         by Connection) that a proxy must remove
    GET /bad             a malformed response ("this is not http"), then close
    GET /ctl/stats       JSON counters: served (requests other than /health and /ctl),
                         health_ok, health_fail, slow_started, slow_done
    PUT /ctl?health=N    switches /health's status
  Every response but /bad carries Content-Length (or chunked) and keeps the connection alive.
- Lb: a `mesh lb` process on free ports (frontend and stats on 127.0.0.1), stopped by PID.
  MESH_LB_IO=epoll|uring in the environment runs every one with that socket backend (-io), so
  the suite can be run once each way; by default the lb picks (auto).
- Fixtures: backends (factory of Backend processes), lb_factory (factory of Lb processes,
  logs attached to failure reports and checked for sanitizer reports like the agents').
- ScriptedBackend: a TCP server in this process running a script per connection, for the
  behaviours the Backend does not have.
- A keep-alive client (KeepAlive) and a time-bounded load thread (Load).

Standard library only. Every loop is bounded in count and every wait in time.
"""

import csv
import http.client
import http.server
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from helpers import SANITIZER_MARKERS, ManagedProcess, free_ports

HOST = "127.0.0.1"
STATS_USER = "admin"
STATS_PASSWORD = "admin"
STOP_TIMEOUT = 5.0
READY_TIMEOUT = 10.0
# -io for every lb of the run (see the module docstring)
IO_ARGS = ["-io", os.environ["MESH_LB_IO"]] if os.environ.get("MESH_LB_IO") else []

# ---------------------------------------------------------------- the backend server (child side)


class _BackendState:
    def __init__(self, port):
        self.port = port
        self.lock = threading.Lock()
        self.health = 200
        self.counts = {"served": 0, "health_ok": 0, "health_fail": 0, "slow_started": 0,
                       "slow_done": 0}

    def bump(self, key):
        with self.lock:
            self.counts[key] += 1


class _BackendHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # streamed answers write in pieces: no 40 ms stalls
    server_version = "lbtest-backend"
    sys_version = ""

    def log_message(self, *args):
        pass

    def _send(self, status, body, ctype="text/plain", extra=()):
        st = self.server.state
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Served-By", str(st.port))
        for k, v in extra:
            self.send_header(k, v)
        # Head and body in one write, as a real server's small answer: a backend killed with -9
        # has then either answered whole or not at all, and the lb can retry the latter. (Two
        # writes let a kill land between them: a started response no proxy may retry.)
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD":
            self._headers_buffer.append(body)
        self.flush_headers()

    def _read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            out = bytearray()
            for _ in range(1 << 20):
                line = self.rfile.readline(1024)
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    for _ in range(100):  # trailers up to the empty line
                        if self.rfile.readline(8192) in (b"\r\n", b"\n", b""):
                            break
                    break
                out += self.rfile.read(size)
                self.rfile.readline(16)
            return bytes(out)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _dispatch(self):
        st = self.server.state
        u = urlsplit(self.path)
        q = parse_qs(u.query)
        body = self._read_body()
        path = u.path
        if path == "/health":
            with st.lock:
                status = st.health
                st.counts["health_ok" if status == 200 else "health_fail"] += 1
            return self._send(status, b"healthy\n" if status == 200 else b"unhealthy\n")
        if path == "/ctl":
            if "health" in q:
                with st.lock:
                    st.health = int(q["health"][0])
            return self._send(200, b"ok\n")
        if path == "/ctl/stats":
            with st.lock:
                data = json.dumps(st.counts).encode()
            return self._send(200, data, "application/json")
        st.bump("served")
        if path == "/":
            return self._send(200, f"ok from {st.port}\n".encode())
        if path == "/slow":
            st.bump("slow_started")
            time.sleep(int(q.get("ms", ["100"])[0]) / 1000.0)
            st.bump("slow_done")
            return self._send(200, f"slow from {st.port}\n".encode())
        if path.startswith("/status/"):
            code = int(path[len("/status/"):])
            return self._send(code, f"status {code} from {st.port}\n".encode())
        if path == "/echo":
            if q.get("chunked") == ["1"]:
                return self._send_chunked(body)
            return self._send(200, body, "application/octet-stream")
        if path == "/headers":
            data = json.dumps([[k, v] for k, v in self.headers.items()]).encode()
            return self._send(200, data, "application/json")
        if path == "/hop":
            return self._send(200, b"hop\n", extra=(("Connection", "X-Backend-Hop"),
                                                    ("X-Backend-Hop", "secret"),
                                                    ("Keep-Alive", "timeout=99"),
                                                    ("X-End-To-End", "kept")))
        if path == "/bad":
            self.wfile.write(b"this is not http\r\n\r\n")
            self.wfile.flush()
            self.close_connection = True
            return None
        return self._send(404, b"no such path\n")

    def _send_chunked(self, body):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("X-Served-By", str(self.server.state.port))
        self.end_headers()
        step = 65536
        for i in range(0, len(body), step):
            piece = body[i:i + step]
            self.wfile.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _dispatch


def serve_backend():
    """Child side: binds a free port, prints it, serves until killed."""
    server = http.server.ThreadingHTTPServer((HOST, 0), _BackendHandler, bind_and_activate=False)
    server.request_queue_size = 512
    server.daemon_threads = True
    server.allow_reuse_address = True
    server.server_bind()
    server.server_activate()
    port = server.server_address[1]
    server.state = _BackendState(port)
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
    print(port, flush=True)
    server.serve_forever(poll_interval=0.1)


# ---------------------------------------------------------------- the backend (parent side)


class Backend:
    """A backend server process (this file run as a script), stopped or killed by PID."""

    def __init__(self, log_dir, index):
        self.log_path = Path(log_dir) / f"backend-{index}.log"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, __file__, "backend"],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=log)
        line = self.proc.stdout.readline()  # the child prints its port once bound
        assert line.strip().isdigit(), f"backend did not start: {line!r}"
        self.port = int(line)
        self.addr = f"{HOST}:{self.port}"

    def get(self, path, method="GET"):
        c = http.client.HTTPConnection(HOST, self.port, timeout=5)
        try:
            c.request(method, path)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def set_health(self, status):
        st, _ = self.get(f"/ctl?health={status}", "PUT")
        assert st == 200

    def stats(self):
        st, body = self.get("/ctl/stats")
        assert st == 200
        return json.loads(body)

    def kill9(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=STOP_TIMEOUT)

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill9()
        self.proc.stdout.close()


# ---------------------------------------------------------------- mesh lb


class Lb(ManagedProcess):
    """A `mesh lb` process on free 127.0.0.1 ports, stopped by PID.

    args are appended after the defaults (-bind, -port, -stats-addr, -stats-port, -workers 2,
    -balance roundrobin, -check-inter 1s): later flags win, so a test can override any."""

    def __init__(self, mesh, tmp_path, name, args=(), workers=2):
        self.mesh = mesh
        self.name = name
        self.port, self.stats_port = free_ports(2)
        self.args = list(args)
        self.workers = workers
        self.log_path = Path(tmp_path) / f"lb-{name}.log"
        self.proc = None

    def argv(self):
        return [self.mesh, "lb", "-bind", HOST, "-port", str(self.port), "-stats-addr", HOST,
                "-stats-port", str(self.stats_port), "-workers", str(self.workers),
                "-balance", "roundrobin", "-check-inter", "1s",
                "-log-level", "info"] + IO_ARGS + self.args

    def wait_ready(self, timeout=READY_TIMEOUT):
        """Ready when the frontend accepts connections and the stats port answers."""
        deadline = time.monotonic() + timeout
        last = None
        for _ in range(int(timeout / 0.05) + 2):
            rc = self.proc.poll()
            if rc is not None:
                raise AssertionError(f"mesh lb exited with status {rc} before it was ready\n"
                                     f"--- log ---\n{self.log_tail()}")
            try:
                with socket.create_connection((HOST, self.port), timeout=1):
                    pass
                st, _, _ = self.stats_get(";csv")
                if st in (200, 401):  # 401: the test set other stats credentials
                    return
                last = st
            except (OSError, http.client.HTTPException) as e:
                last = e
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        raise AssertionError(f"mesh lb not ready within {timeout}s (last: {last!r})\n"
                             f"--- log ---\n{self.log_tail()}")

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    # ---- frontend

    def get(self, path="/", method="GET", body=None, headers=None, timeout=10):
        """One request on a fresh connection: (status, headers, body)."""
        c = http.client.HTTPConnection(HOST, self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, r.headers, r.read()
        finally:
            c.close()

    # ---- stats port

    def stats_get(self, suffix="", method="GET", auth=(STATS_USER, STATS_PASSWORD), path=None):
        """A request to the stats port: (status, headers, body). path defaults to /stats+suffix."""
        import base64
        hdrs = {}
        if auth is not None:
            hdrs["Authorization"] = "Basic " + base64.b64encode(
                f"{auth[0]}:{auth[1]}".encode()).decode()
        c = http.client.HTTPConnection(HOST, self.stats_port, timeout=5)
        try:
            c.request(method, path or ("/stats" + suffix), body=b"" if method != "GET" else None,
                      headers=hdrs)
            r = c.getresponse()
            return r.status, r.headers, r.read()
        finally:
            c.close()

    def csv_text(self):
        st, _, body = self.stats_get(";csv")
        assert st == 200, f"/stats;csv: {st} {body[:300]!r}"
        return body.decode()

    def csv_rows(self):
        """The CSV as a list of dicts (header's "# " removed), parsed with the csv module."""
        text = self.csv_text()
        assert text.startswith("# "), f"CSV must start with '# ': {text[:80]!r}"
        return list(csv.DictReader(io.StringIO(text[2:])))

    def row(self, svname, pxname=None):
        for r in self.csv_rows():
            if r["svname"] == svname and (pxname is None or r["pxname"] == pxname):
                return r
        return None

    def server_rows(self):
        return [r for r in self.csv_rows()
                if r["svname"] not in ("FRONTEND", "BACKEND") and r["pxname"] != "http-in"]

    def admin(self, svname, action, **params):
        q = "&".join([f"action={action}"] + [f"{k}={v}" for k, v in params.items()])
        return self.stats_get(path=f"/stats/admin/server/{svname}?{q}", method="POST")


# ---------------------------------------------------------------- clients


class KeepAlive:
    """One persistent HTTP/1.1 connection to the frontend that must stay open: a reconnect
    (the proxy closing the connection) raises instead of silently reconnecting."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def _fill(self):
        b = self.sock.recv(65536)
        if not b:
            raise ConnectionError("proxy closed the keep-alive connection")
        self.buf += b

    def request(self, method="GET", path="/", headers=(), body=b"", shut_write=False):
        """Sends one request and reads exactly one response: (status, headers dict, body).
        shut_write: shut the connection's sending side down after the request, as `nc -N`."""
        lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}"]
        lines += [f"{k}: {v}" for k, v in headers]
        if body:
            lines.append(f"Content-Length: {len(body)}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        if shut_write:
            self.sock.shutdown(socket.SHUT_WR)
        for _ in range(10000):
            if b"\r\n\r\n" in self.buf:
                break
            self._fill()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        hl = head.decode("latin-1").split("\r\n")
        status = int(hl[0].split()[1])
        hdrs = {}
        for ln in hl[1:]:
            k, _, v = ln.partition(":")
            hdrs.setdefault(k.strip().lower(), v.strip())
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return status, hdrs, b""
        if "chunked" in hdrs.get("transfer-encoding", "").lower():
            return status, hdrs, self._read_chunked()
        n = int(hdrs.get("content-length", "0"))
        for _ in range(100000):
            if len(self.buf) >= n:
                break
            self._fill()
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, hdrs, body

    def _read_chunked(self):
        out = b""
        for _ in range(100000):
            while b"\r\n" not in self.buf:
                self._fill()
            line, _, self.buf = self.buf.partition(b"\r\n")
            size = int(line.split(b";")[0], 16)
            if size == 0:
                while not self.buf.startswith(b"\r\n"):
                    if b"\r\n" in self.buf:  # skip a trailer line
                        self.buf = self.buf.partition(b"\r\n")[2]
                        continue
                    self._fill()
                self.buf = self.buf[2:]
                return out
            while len(self.buf) < size + 2:
                self._fill()
            out += self.buf[:size]
            self.buf = self.buf[size + 2:]
        raise AssertionError("too many chunks")


class Load:
    """Threads sending GET path in a loop on keep-alive connections for at most `seconds`
    (or until stop()); records (t_done, status, served_by) per request and errors."""

    def __init__(self, port, path="/", threads=1, seconds=10.0):
        self.port = port
        self.path = path
        self.seconds = seconds
        self.results = []  # (monotonic time the response was complete, status, X-Served-By)
        self.errors = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def _run(self):
        deadline = time.monotonic() + self.seconds
        conn = None
        for _ in range(1000000):
            if self.stopping.is_set() or time.monotonic() >= deadline:
                break
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(HOST, self.port, timeout=10)
                conn.request("GET", self.path)
                r = conn.getresponse()
                r.read()
                with self.lock:
                    self.results.append((time.monotonic(), r.status, r.getheader("X-Served-By")))
            except (OSError, http.client.HTTPException) as e:
                with self.lock:
                    self.errors.append((time.monotonic(), repr(e)))
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(15)
        assert not any(t.is_alive() for t in self.threads), "load thread did not stop"

    def snapshot(self):
        with self.lock:
            return list(self.results)

    def served_by(self, port, after=0.0):
        """Responses from backend port completed after monotonic time `after`."""
        return [r for r in self.snapshot() if r[2] == str(port) and r[0] > after]


def spread(port, n, path="/"):
    """Sends n GETs on one keep-alive connection: {served_by: count}; asserts each is 200."""
    counts = {}
    c = KeepAlive(port)
    try:
        for _ in range(n):
            st, h, body = c.request("GET", path)
            assert st == 200, f"GET {path}: {st} {body[:200]!r}"
            by = h.get("x-served-by")
            assert body == f"ok from {by}\n".encode(), (by, body)
            counts[by] = counts.get(by, 0) + 1
    finally:
        c.close()
    return counts


# ---------------------------------------------------------------- scripted backends

SCRIPT_IO_TIMEOUT = 10.0  # a ScriptedBackend connection's socket timeout


class ScriptedBackend:
    """A one-port TCP server: each accepted connection is handed to script(conn, stop) on its
    own thread. stop is an Event set by close(); scripts wait on it instead of sleeping."""

    def __init__(self, script):
        self.script = script
        self.stop = threading.Event()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.addr = f"{HOST}:{self.port}"
        self.threads = []
        self.errors = []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def _accept(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._run, args=(conn,), daemon=True)
            self.threads.append(t)
            t.start()

    def _run(self, conn):
        try:
            conn.settimeout(SCRIPT_IO_TIMEOUT)
            self.script(conn, self.stop)
        except OSError as e:
            self.errors.append(e)
        finally:
            conn.close()

    def close(self):
        self.stop.set()
        self.sock.close()
        self.acceptor.join(timeout=5)
        for t in self.threads:
            t.join(timeout=5)


def read_head(conn):
    """Reads up to the end of a request head; returns the bytes read."""
    data = b""
    for _ in range(1000):
        if b"\r\n\r\n" in data:
            return data
        b = conn.recv(65536)
        if not b:
            return data
        data += b
    raise AssertionError("request head never ended")


def wait_until(fn, timeout, interval=0.05, what="condition"):
    """Calls fn until truthy or timeout seconds pass; returns the value or raises."""
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


# ---------------------------------------------------------------- fixtures

try:
    import pytest
except ImportError:  # run as the backend script
    pytest = None

if pytest is not None:
    @pytest.fixture
    def backends(tmp_path):
        """make(n=1) -> [Backend]; every backend is stopped by PID at the end."""
        made = []

        def make(n=1):
            out = [Backend(tmp_path, len(made) + i) for i in range(n)]
            made.extend(out)
            return out

        yield make
        for b in made:
            b.stop()

    @pytest.fixture
    def lb_factory(request, tmp_path, agent_factory, mesh):
        """make(args, start=True, workers=2) -> Lb. Stopped by PID; its log is attached to a
        failure report (it joins the agents' list of conftest) and checked for sanitizer
        reports."""
        shown = request.node.__dict__.setdefault("_mesh_agents", [])
        made = []

        def make(args=(), start=True, workers=2, name=None):
            lb = Lb(mesh, tmp_path, name or f"lb{len(made)}", args, workers)
            made.append(lb)
            shown.append(lb)
            if start:
                lb.start()
            return lb

        yield make
        for lb in made:
            lb.stop()
        for lb in made:
            text = lb.log_text()
            for marker in SANITIZER_MARKERS:
                if marker in text:
                    pytest.fail(f"lb '{lb.name}' log has a sanitizer report ({marker!r}):\n"
                                f"{lb.log_tail(80)}", pytrace=False)


if __name__ == "__main__":
    if sys.argv[1:] == ["backend"]:
        serve_backend()
    else:
        sys.exit("usage: lb_helpers.py backend")
