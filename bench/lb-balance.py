#!/usr/bin/python3
"""How evenly `mesh lb -workers N` spreads client connections over its workers.

Each trial opens CONNS keep-alive connections to the lb at once (as wrk does), sends REQS
requests on each in turn, and reads how many read() calls each worker thread made meanwhile
(/proc/PID/task/TID/io, syscr): every request costs its worker one read from the client and one
from the server, so a worker's share of the reads is its share of the connections. The figure
per trial is the busiest worker's share times N: 1.00 is an even split, 1.10 means the busiest
worker holds 10 % more than its even share. The script prints the median, the 90th percentile
and the worst over TRIALS trials.

The count does not depend on the machine's load, so it can be taken on a busy machine. The
worker threads are the lb's threads other than the main one (a static configuration with the
health checks off starts no others; the script checks there are N).

Everything listens on free 127.0.0.1 ports: a small keep-alive HTTP/1.1 backend in this process
and the lb, which is stopped by PID. Standard library only.

Usage: bench/lb-balance.py [--workers N] [--conns C] [--reqs R] [--trials T]
Env:   MESH_BIN (default build/mesh)
"""

import argparse
import base64
import csv
import http.client
import http.server
import io
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent


class Backend(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self):
        # one write: a head and a body written apart would wait for a delayed ACK (Nagle)
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")

    def log_message(self, *args):
        pass


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def roundtrip(sock, req):
    """Sends req and reads one answer (the backend's 3-byte body)."""
    sock.sendall(req)
    buf = b""
    for _ in range(1000):
        head, sep, body = buf.partition(b"\r\n\r\n")
        if sep and len(body) >= 3:
            return head.startswith(b"HTTP/1.1 200 ")
        got = sock.recv(4096)
        if not got:
            return False
        buf += got
    return False


def worker_reads(pid):
    """syscr of each thread but the main one, by tid."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        if int(tid) == pid:
            continue
        for line in Path(f"/proc/{pid}/task/{tid}/io").read_text().splitlines():
            if line.startswith("syscr:"):
                out[tid] = int(line.split()[1])
    return out


def frontend_scur(stats_port):
    """The lb's open client connections (FRONTEND scur of /stats;csv)."""
    auth = base64.b64encode(b"admin:admin").decode()
    c = http.client.HTTPConnection(HOST, stats_port, timeout=10)
    try:
        c.request("GET", "/stats;csv", headers={"Authorization": f"Basic {auth}"})
        rows = csv.DictReader(io.StringIO(c.getresponse().read().decode().lstrip("# ")))
        return next(int(r["scur"]) for r in rows if r["svname"] == "FRONTEND")
    finally:
        c.close()


def wait_closed(stats_port, timeout=10.0):
    """Until the lb has closed every client connection, so that the next trial's connections
    are placed on empty workers."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.02) + 2):
        if frontend_scur(stats_port) == 0:
            return
        if time.monotonic() >= deadline:
            sys.exit("the lb still holds connections of the previous trial")
        time.sleep(0.02)


def wait_ready(proc, stats_port, workers, timeout=10.0):
    """Until the stats page answers and the lb runs its worker threads."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.05) + 2):
        if proc.poll() is not None:
            sys.exit(f"mesh lb exited with status {proc.returncode}")
        try:
            frontend_scur(stats_port)
            if len(worker_reads(proc.pid)) == workers:
                return
        except OSError:
            pass
        if time.monotonic() >= deadline:
            sys.exit(f"mesh lb not ready with {workers} worker threads in time")
        time.sleep(0.05)


def trial(port, pid, conns, reqs):
    req = f"GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
    socks = [socket.create_connection((HOST, port), timeout=10) for _ in range(conns)]
    try:
        # one request each first: every connection is accepted and placed before counting
        for s in socks:
            assert roundtrip(s, req), "no answer"
        before = worker_reads(pid)
        for _ in range(reqs):
            for s in socks:
                assert roundtrip(s, req), "no answer"
        after = worker_reads(pid)
    finally:
        for s in socks:
            s.close()
    return [after[t] - before.get(t, 0) for t in after]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--conns", type=int, default=50)
    ap.add_argument("--reqs", type=int, default=4)
    ap.add_argument("--trials", type=int, default=40)
    a = ap.parse_args()
    mesh = os.environ.get("MESH_BIN", str(ROOT / "build" / "mesh"))

    backend = http.server.ThreadingHTTPServer((HOST, 0), Backend)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    port, stats_port = free_port(), free_port()
    argv = [mesh, "lb", "-bind", HOST, "-port", str(port), "-stats-addr", HOST, "-stats-port",
            str(stats_port), "-workers", str(a.workers), "-check=false", "-server",
            f"{HOST}:{backend.server_address[1]}"]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_ready(proc, stats_port, a.workers)
        shares = []
        for _ in range(a.trials):
            reads = trial(port, proc.pid, a.conns, a.reqs)
            wait_closed(stats_port)
            shares.append(max(reads) * a.workers / sum(reads))
        shares.sort()
        p90 = shares[min(len(shares) - 1, (len(shares) * 9) // 10)]
        print(f"{mesh}: -workers {a.workers}, {a.trials} trials of {a.conns} connections x "
              f"{a.reqs} requests: busiest worker's share x {a.workers}: median "
              f"{statistics.median(shares):.3f}, p90 {p90:.3f}, worst {shares[-1]:.3f}")
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        backend.shutdown()


if __name__ == "__main__":
    main()
