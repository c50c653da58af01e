"""End-to-end tests of `mesh lb`'s inactivity timeouts while an answer waits on a slow client.

As HAProxy's: the server is not idle while the proxy cannot pass its bytes on to a client that
does not read, so -timeout-server does not run then; -timeout-client bounds the client's stall.
The backend is a scripted socket server in this process that sends a large answer at once; the
client's receive buffer is small so that the proxy's write to it soon waits.
"""

import socket
import time

import pytest
from lb_helpers import (HOST, ScriptedBackend, backends, lb_factory,  # noqa: F401
                        read_head, wait_until)

# Larger than what the kernel queues between the server and the client can hold (a few MB
# each way on loopback), so that the proxy always has bytes waiting for the client.
BODY = bytes(range(256)) * (24 * 4096)  # 24 MiB
HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BODY)
REQUEST = b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n"


def big_answer(conn, stop):
    read_head(conn)
    conn.settimeout(120)  # sendall waits on the client's pauses
    conn.sendall(HEAD + BODY)
    stop.wait(60)


def slow_client(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)  # the proxy's writes soon wait
    s.settimeout(30)
    s.connect((HOST, port))
    s.sendall(REQUEST)
    return s


def recv_some(s, n, deadline):
    """Up to n bytes (fewer at EOF, a reset or the deadline)."""
    out = bytearray()
    for _ in range(1 << 20):
        if len(out) >= n or time.monotonic() >= deadline:
            break
        try:
            b = s.recv(min(1 << 20, n - len(out)))
        except (ConnectionResetError, socket.timeout):
            break
        if not b:
            break
        out += b
    return bytes(out)


def counter(lb, name):
    return int(lb.row("BACKEND")[name] or 0)


@pytest.fixture
def big_backend():
    be = ScriptedBackend(big_answer)
    yield be
    be.close()


def lb_before(lb_factory, be, timeout_client):
    """An lb with a 1 s server timeout in front of be."""
    return lb_factory(["-server", be.addr, "-check=false", "-retries", "0",
                       "-timeout-server", "1s", "-timeout-client", timeout_client])


def test_a_client_pausing_longer_than_the_server_timeout_gets_the_whole_answer(lb_factory,
                                                                              big_backend):
    """The client pauses 3 s three times, each time with the proxy's write to it waiting, under
    -timeout-server 1s and -timeout-client 10s: the server is fine, so the answer arrives whole
    and nobody's timeout is counted."""
    lb = lb_before(lb_factory, big_backend, "10s")
    with slow_client(lb.port) as s:
        expected = HEAD + BODY
        got = bytearray()
        deadline = time.monotonic() + 120
        for _ in range(3):
            time.sleep(3)  # the pause under test: longer than -timeout-server
            got += recv_some(s, 1 << 20, deadline)
        got += recv_some(s, len(expected) - len(got), deadline)
    assert len(got) == len(expected), f"{len(got)} of {len(expected)} bytes\n{lb.log_tail(40)}"
    assert got == expected
    assert counter(lb, "srv_abrt") == 0 and counter(lb, "cli_abrt") == 0


def test_a_client_stalled_past_the_client_timeout_is_closed(lb_factory, big_backend):
    """A client that stops reading is closed by -timeout-client (counted as its abort), not by
    the shorter -timeout-server: the server did nothing wrong."""
    lb = lb_before(lb_factory, big_backend, "3s")
    with slow_client(lb.port) as s:
        wait_until(lambda: lb.proc.poll() is not None or counter(lb, "cli_abrt") >= 1, 60,
                   what="the client timeout")
        assert lb.proc.poll() is None, f"mesh lb died:\n{lb.log_tail(40)}"
        assert counter(lb, "srv_abrt") == 0
        # what was queued before the close, then the end: never the whole answer
        got = recv_some(s, len(HEAD) + len(BODY), time.monotonic() + 60)
    assert got.startswith(HEAD) and len(got) < len(HEAD) + len(BODY), len(got)
