"""bench-watch-floor (bench/watch_floor.c), the floor server of bench/registry's watcher runs:
each -mode answers every parked GET once, and the write after them; a bad mode is refused.
The bench's figures are only worth something if every mode really answers every watcher."""

import os
import socket
import subprocess

import pytest

from helpers import free_port, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WATCHERS = 40


@pytest.fixture(scope="module")
def floor_bin(tmp_path_factory):
    out = tmp_path_factory.mktemp("floor") / "bench-watch-floor"
    subprocess.run(["cc", "-O2", "-std=c11", "-Wall", "-Werror", "-o", str(out),
                    os.path.join(ROOT, "bench", "watch_floor.c"), "-luring"],
                   check=True, timeout=120)
    return str(out)


def started(floor_bin, mode, port):
    proc = subprocess.Popen([floor_bin, "-mode", mode, str(port)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def listening():
        if proc.poll() is not None:
            return True
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0
    wait_until(listening, 10, what="bench-watch-floor listening")
    if proc.poll() is not None:
        err = proc.stderr.read().decode(errors="replace")
        if mode == "uring" and "io_uring" in err:
            pytest.skip("io_uring refused here: " + err.strip())
        pytest.fail("bench-watch-floor -mode %s exited %d: %s" % (mode, proc.returncode, err))
    return proc


def read_answer(sock):
    """One whole answer: its head and the Content-Length bytes after it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, "closed before an answer: %r" % data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int([ln for ln in head.split(b"\r\n")
                  if ln.lower().startswith(b"content-length:")][0].split(b":")[1])
    while len(body) < length:
        chunk = sock.recv(4096)
        assert chunk, "closed inside the body"
        body += chunk
    return head, body


@pytest.mark.parametrize("mode", ["write", "uring", "threads"])
def test_every_parked_watcher_answered_once(floor_bin, mode):
    port = free_port()
    proc = started(floor_bin, mode, port)
    socks = []
    try:
        for _ in range(WATCHERS):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(b"GET /v1/kv/watched?index=1&wait=60s HTTP/1.1\r\nHost: x\r\n\r\n")
            socks.append(s)
        # Parked: nothing comes back before the write.
        socks[0].settimeout(0.3)
        with pytest.raises(socket.timeout):
            socks[0].recv(1)
        socks[0].settimeout(10)
        # A GET the server reads after the PUT parks for the next write: wait until it has
        # read them all, as bench-watchers' settle delay does.
        wait_until(lambda: all(recv_q_empty(port, s) for s in socks), 10,
                   what="every GET read by the server")
        writer = socket.create_connection(("127.0.0.1", port), timeout=10)
        socks.append(writer)
        writer.sendall(b"PUT /v1/kv/watched HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nv")
        for s in socks:
            head, body = read_answer(s)
            assert head.startswith(b"HTTP/1.1 200 OK\r\n")
            assert b'"Key":"watched"' in body
        # Exactly one answer each: nothing more arrives.
        for s in socks[:3] + socks[-3:]:
            s.settimeout(0.2)
            with pytest.raises(socket.timeout):
                s.recv(1)
    finally:
        for s in socks:
            s.close()
        proc.terminate()
        proc.wait(timeout=10)


def recv_q_empty(port, client):
    """Whether the server side of client's connection has no unread bytes (ss's Recv-Q)."""
    local = client.getsockname()[1]
    out = subprocess.run(["ss", "-Htn", "state", "established",
                          "( sport = :%d and dport = :%d )" % (port, local)],
                         capture_output=True, text=True, timeout=10).stdout.split()
    return bool(out) and out[0] == "0"


def test_bad_mode_refused(floor_bin):
    r = subprocess.run([floor_bin, "-mode", "fast", str(free_port())], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 2
    assert "usage:" in r.stderr and "write|uring|threads" in r.stderr
