"""End-to-end tests of `mesh lb` with answers that are not one plain response: interim (1xx)
heads, and the switch to another protocol (101 Switching Protocols, WebSocket).

The backends here are small socket servers in this process (threads), written for one
behaviour each; the lb is the real process (lb_helpers.Lb) on free 127.0.0.1 ports.
"""

import socket
import threading
import time

from lb_helpers import HOST, Backend, backends, lb_factory, wait_until  # noqa: F401

IO_TIMEOUT = 10.0


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
            conn.settimeout(IO_TIMEOUT)
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


def recv_until_eof(sock, timeout):
    """Everything the peer sends until it closes (or timeout: then None)."""
    sock.settimeout(0.5)
    data = b""
    deadline = time.monotonic() + timeout
    for _ in range(100000):
        if time.monotonic() >= deadline:
            return None
        try:
            b = sock.recv(1 << 20)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return data
        if not b:
            return data
        data += b
    return None


# ---------------------------------------------------------------- interim responses

EARLY_HINTS = (b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style; x="
               + b"a" * 3000 + b"\r\n\r\n")


def test_error_after_an_interim_head_closes_instead_of_a_second_write(backends, lb_factory):
    """Issue 13 item 2. The backend sends 1xx heads until the lb stops reading them (the client
    does not read, so the lb's write of an interim head stays in flight), then stalls. The
    server timeout must close the client connection: an error page at that point would be a
    second write over the buffer still being written, and a lie after a 1xx."""
    stalled = threading.Event()

    def script(conn, stop):
        read_head(conn)
        conn.settimeout(0.5)
        try:
            for _ in range(20000):
                conn.sendall(EARLY_HINTS)
        except socket.timeout:
            pass  # the lb stopped reading: its write to the client is pending
        stalled.set()
        stop.wait(30)

    be = ScriptedBackend(script)
    try:
        lb = lb_factory(["-server", be.addr, "-check=false", "-timeout-server", "1s",
                         "-timeout-client", "30s", "-retries", "0"])
        cli = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        cli.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills fast
        cli.connect((HOST, lb.port))
        cli.sendall(b"GET /interim HTTP/1.1\r\nHost: x\r\n\r\n")
        assert stalled.wait(30), "the lb kept reading interim heads it could not deliver"
        # the server timeout fires while the interim write is pending: the lb counts the abort
        wait_until(lambda: lb.proc.poll() is not None or
                   int(lb.row("BACKEND")["srv_abrt"] or 0) >= 1, 15,
                   what="the server timeout")
        assert lb.proc.poll() is None, f"mesh lb died:\n{lb.log_tail(40)}"
        data = recv_until_eof(cli, 30)
        cli.close()
        assert data is not None, "the lb kept the connection open after the error"
        assert data.startswith(b"HTTP/1.1 103 "), data[:100]
        assert b"HTTP/1.1 504" not in data and b"HTTP/1.1 502" not in data, \
            "an error page after an interim head"
        # every byte the client got is whole 103 heads, possibly cut in the last one
        assert EARLY_HINTS * (data.count(b"HTTP/1.1 103 ") - 1) == \
            data[:len(EARLY_HINTS) * (data.count(b"HTTP/1.1 103 ") - 1)]
        assert lb.proc.poll() is None, f"mesh lb died:\n{lb.log_tail(40)}"
        assert lb.stats_get(";csv")[0] == 200
    finally:
        be.close()


def test_interim_head_then_final_response(backends, lb_factory):
    """A 100 Continue then the final answer: both reach an HTTP/1.1 client, in order."""
    def script(conn, stop):
        read_head(conn)
        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
        stop.wait(5)

    be = ScriptedBackend(script)
    try:
        lb = lb_factory(["-server", be.addr, "-check=false"])
        with socket.create_connection((HOST, lb.port), timeout=IO_TIMEOUT) as cli:
            cli.sendall(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                        b"Connection: close\r\n\r\n")
            data = recv_until_eof(cli, 15)
        assert data is not None
        assert data.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"), data
        assert data.endswith(b"\r\n\r\nhello"), data
    finally:
        be.close()
