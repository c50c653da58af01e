"""A client that does not read cannot make the agent hold answers without bound (issue: the
agent's HTTP side, item 1).

An answer the socket does not take is queued; while it is, the connection takes up no further
pipelined request; once one client address has limits.http_max_unsent_mb of answers queued, its
next requests wait unread; and a connection whose answer makes no progress for
limits.http_write_timeout is closed. Other addresses are served meanwhile (the whole of
127.0.0.0/8 is loopback, so 127.0.0.2 is another client).
"""

import re
import select
import selectors
import socket
import time

from helpers import HOST, get_from, request, wait_until

VALUE_BYTES = 400 << 10  # under Consul's 512 KiB value limit
KEYS = 10  # about 5.3 MB of JSON for GET /v1/kv/?recurse
CONNS = 10
PIPELINED = 4
# Under ASan freed memory waits in a quarantine (256 MB by default) before it is reused or given
# back, so what rendering frees would count as held; without one RSS is what is kept.
NO_QUARANTINE = {"ASAN_OPTIONS": "quarantine_size_mb=0"}


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) << 10
    raise AssertionError("no VmRSS")


def fill_kv(agent, keys=KEYS):
    for i in range(keys):
        agent.put_true(f"/v1/kv/big/{i:02d}", bytes([65 + i]) * VALUE_BYTES)


def never_reading(port, requests, source="127.0.0.1"):
    """A connection with a small receive buffer that sends requests and reads nothing."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
    s.settimeout(10)
    s.bind((source, 0))
    s.connect((HOST, port))
    s.sendall(requests)
    return s


def recurse_requests(n):
    one = b"GET /v1/kv/?recurse HTTP/1.1\r\nHost: a\r\n\r\n"
    last = b"GET /v1/kv/?recurse HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    return one * (n - 1) + last


def count_responses(stream):
    """Complete responses at the front of stream, and their statuses."""
    statuses, pos = [], 0
    while True:
        end = stream.find(b"\r\n\r\n", pos)
        if end < 0:
            break
        head = stream[pos:end].decode("latin-1")
        length = int(re.search(r"(?im)^content-length:\s*([0-9]+)", head).group(1))
        if len(stream) < end + 4 + length:
            break
        statuses.append(int(head.split()[1]))
        pos = end + 4 + length
    return statuses


def read_all(socks, timeout):
    """Reads every socket until its peer closes, all at once (each may wait on the others)."""
    got = {s: bytearray() for s in socks}
    sel = selectors.DefaultSelector()
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    open_left = len(socks)
    while open_left and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1.0):
            try:
                b = key.fileobj.recv(1 << 20)
            except ConnectionResetError:
                b = b""
            if b:
                got[key.fileobj] += b
            else:
                sel.unregister(key.fileobj)
                open_left -= 1
    sel.close()
    return [bytes(got[s]) for s in socks]


def test_never_reading_clients_hold_bounded_memory(agent_factory):
    a = agent_factory(start=False, extra_args=["-http-max-unsent-mb", "4"])
    a.env = NO_QUARANTINE
    a.start()
    fill_kv(a)
    full = a.get("/v1/kv/?recurse")
    assert full.status == 200 and len(full.body) > 5_000_000
    pid = a.proc.pid
    before = rss_bytes(pid)

    # 10 connections from one address, 4 pipelined recurse reads each, none read: 40 answers,
    # 210 MB held before the bound.
    socks = [never_reading(a.port, recurse_requests(PIPELINED)) for _ in range(CONNS)]
    try:
        peak = before
        # Another address is answered meanwhile; each answer takes a turn of the agent's loop,
        # which has read every flooding socket long before the last of these.
        for _ in range(40):
            status, _, body = get_from(a.port, "/v1/status/leader", "127.0.0.2")
            assert status == 200 and body.startswith(b'"')
            peak = max(peak, rss_bytes(pid))
        status, _, body = get_from(a.port, "/v1/kv/big/00?raw", "127.0.0.2")
        assert status == 200 and body == b"A" * VALUE_BYTES
        peak = max(peak, rss_bytes(pid))
        # One answer queued (over the 4 MiB cap, the others wait) and what the sockets hold.
        assert peak - before < 64 << 20, (
            f"RSS grew by {(peak - before) >> 20} MiB with {CONNS} never-reading clients")

        # Clients that do read get every answer, in full, each waiting on the others' reads.
        streams = read_all(socks, timeout=120)
        for got in streams:
            assert count_responses(got) == [200] * PIPELINED
            assert got.endswith(full.body)
    finally:
        for s in socks:
            s.close()


def test_a_connection_that_takes_nothing_is_closed(agent_factory):
    a = agent_factory(extra_args=["-http-write-timeout", "1s"])
    fill_kv(a)
    s = never_reading(a.port, recurse_requests(2))
    try:
        wait_until(lambda: "took none of" in a.log_text(), 30,
                   what="the write timeout to close the connection")
        # What the sockets held arrives, then the close: not the two answers.
        (got,) = read_all([s], timeout=30)
        assert 0 < len(got) < 2 * 5_000_000
        assert count_responses(got) == []
    finally:
        s.close()
    # The agent serves on.
    assert request(a.port, "GET", "/v1/status/leader").status == 200


def test_limits_are_checked(agent_factory, write_config):
    bad = agent_factory(start=False, config_files=[write_config(
        {"limits": {"http_write_timeout": "10ms"}})])
    out = bad.start(wait=False)
    out.proc.wait(timeout=10)
    assert out.proc.returncode == 1
    assert "limits.http_write_timeout must be at least 1s" in bad.log_text()


def test_one_stalled_connection_does_not_hold_back_its_address(agent_factory):
    # Every local client is 127.0.0.1: one that never reads an answer bigger than the whole cap
    # must not make the others wait for the write timeout.
    a = agent_factory(extra_args=["-http-max-unsent-mb", "1"])
    # About 10 MB of JSON: past what the kernel's socket buffers take, several MiB stay queued.
    fill_kv(a, keys=2 * KEYS)
    stuck = never_reading(a.port, recurse_requests(2))
    try:
        # Its first answer is being written (the first bytes are in its socket), so the agent
        # holds the rest: over the 1 MiB cap, on one connection.
        wait_until(lambda: select.select([stuck], [], [], 0)[0], 30,
                   what="the first answer to start arriving")
        status, _, body = get_from(a.port, "/v1/status/leader", HOST, timeout=30)
        assert status == 200 and body.startswith(b'"')
        status, _, body = get_from(a.port, "/v1/kv/big/01?raw", HOST, timeout=30)
        assert status == 200 and body == b"B" * VALUE_BYTES
        # The stalled connection still holds its answers, and gets both in full once it reads.
        (got,) = read_all([stuck], timeout=120)
        assert count_responses(got) == [200, 200]
    finally:
        stuck.close()
