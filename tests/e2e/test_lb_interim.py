"""End-to-end tests of `mesh lb` with answers that are not one plain response: interim (1xx)
heads, and the switch to another protocol (101 Switching Protocols, WebSocket).

The backends here are small socket servers in this process (threads), written for one
behaviour each; the lb is the real process (lb_helpers.Lb) on free 127.0.0.1 ports.
"""

import base64
import hashlib
import os
import re
import socket
import struct
import threading
import time

from lb_helpers import (HOST, Backend, ScriptedBackend, backends, lb_factory,  # noqa: F401
                        read_head, wait_until)

IO_TIMEOUT = 10.0


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
    client timeout must close the client connection: an error page at that point would be a
    second write over the buffer still being written, and a lie after a 1xx. The shorter
    server timeout does not run while the lb waits on the client (as HAProxy's)."""
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
                         "-timeout-client", "3s", "-retries", "0"])
        cli = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        cli.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills fast
        cli.connect((HOST, lb.port))
        cli.sendall(b"GET /interim HTTP/1.1\r\nHost: x\r\n\r\n")
        assert stalled.wait(30), "the lb kept reading interim heads it could not deliver"
        # the client timeout fires while the interim write is pending: the lb counts the abort
        wait_until(lambda: lb.proc.poll() is not None or
                   int(lb.row("BACKEND")["cli_abrt"] or 0) >= 1, 30,
                   what="the client timeout")
        assert lb.proc.poll() is None, f"mesh lb died:\n{lb.log_tail(40)}"
        assert int(lb.row("BACKEND")["srv_abrt"] or 0) == 0
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


# ---------------------------------------------------------------- WebSocket (101, then a tunnel)

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
WS_TEXT, WS_BINARY, WS_CLOSE = 0x1, 0x2, 0x8


def ws_accept(key):
    return base64.b64encode(hashlib.sha1(key + WS_GUID).digest())


def ws_mask(payload, key):
    n = len(payload)
    if not n:
        return b""
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def ws_frame(opcode, payload, mask):
    """One final frame (RFC 6455 section 5.2): a client masks, a server does not."""
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        head = bytes([0x80 | opcode, bit | n])
    elif n < 65536:
        head = bytes([0x80 | opcode, bit | 126]) + struct.pack("!H", n)
    else:
        head = bytes([0x80 | opcode, bit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + ws_mask(payload, key)


class WsReader:
    """Frames from a socket: frame() -> (opcode, payload, masked)."""

    def __init__(self, sock, buf=b""):
        self.sock = sock
        self.buf = buf

    def _take(self, n):
        for _ in range(100000):
            if len(self.buf) >= n:
                break
            b = self.sock.recv(1 << 20)
            if not b:
                raise ConnectionError("closed in the middle of a frame")
            self.buf += b
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def frame(self):
        b0, b1 = self._take(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._take(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._take(8))[0]
        key = self._take(4) if b1 & 0x80 else None
        payload = self._take(n)
        return b0 & 0x0F, ws_mask(payload, key) if key else payload, key is not None


def ws_echo_script(seen):
    """The backend: a minimal WebSocket echo server. Records the handshake's request head in
    seen["head"] and protocol errors in seen["errors"]."""
    def script(conn, stop):
        head = read_head(conn)
        end = head.index(b"\r\n\r\n") + 4
        head, rest = head[:end], head[end:]
        seen["head"] = head.decode("latin-1")
        fields = {}
        for line in seen["head"].split("\r\n")[1:]:
            k, _, v = line.partition(":")
            fields.setdefault(k.strip().lower(), v.strip())
        key = fields.get("sec-websocket-key", "").encode()
        if fields.get("upgrade", "").lower() != "websocket" or not key:
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            return
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + ws_accept(key) +
                     b"\r\n\r\n")
        conn.settimeout(None if stop is None else 60)
        reader = WsReader(conn, rest)
        for _ in range(1000):
            try:
                opcode, payload, masked = reader.frame()
            except ConnectionError:
                # the client's half-close, passed on: answer once more, then end
                seen["eof"] = True
                conn.sendall(ws_frame(WS_TEXT, b"bye", mask=False))
                return
            if not masked:
                seen.setdefault("errors", []).append("unmasked frame from the client")
            if opcode == WS_CLOSE:
                conn.sendall(ws_frame(WS_CLOSE, payload, mask=False))
                return  # the server closes the TCP connection first (RFC 6455 7.1.1)
            conn.sendall(ws_frame(opcode, payload, mask=False))
    return script


def ws_handshake(port, path="/chat"):
    """Opens a WebSocket through the lb: (socket, reader, response head)."""
    key = base64.b64encode(os.urandom(16))
    sock = socket.create_connection((HOST, port), timeout=IO_TIMEOUT)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n".encode() +
                 b"Sec-WebSocket-Key: " + key + b"\r\n\r\n")
    data = b""
    for _ in range(1000):
        if b"\r\n\r\n" in data:
            break
        b = sock.recv(65536)
        assert b, f"closed during the handshake: {data!r}"
        data += b
    head, _, rest = data.partition(b"\r\n\r\n")
    text = head.decode("latin-1")
    assert text.startswith("HTTP/1.1 101 "), text
    lower = text.lower()
    assert "\r\nupgrade: websocket" in lower and "\r\nconnection: upgrade" in lower, text
    assert ("sec-websocket-accept: " + ws_accept(key).decode().lower()) in lower, text
    return sock, WsReader(sock, rest), text


def test_websocket_echo_through_the_lb(lb_factory):
    """Issue 13 item 3: handshake, masked frames both ways (7-bit, 16-bit and 64-bit lengths,
    the last one larger than the lb's buffers), close handshake, then both connections end;
    the 101 and the tunnel are counted in the stats."""
    seen = {}
    be = ScriptedBackend(ws_echo_script(seen))
    try:
        lb = lb_factory(["-server", be.addr, "-check=false"])
        sock, reader, _ = ws_handshake(lb.port)
        try:
            assert "upgrade: websocket" in seen["head"].lower(), seen["head"]
            assert "connection: upgrade" in seen["head"].lower(), seen["head"]
            messages = [(WS_TEXT, b"hello"), (WS_BINARY, bytes(range(256)) * 2),
                        (WS_BINARY, os.urandom(300000)), (WS_TEXT, "h\u00e9llo".encode())]
            for opcode, payload in messages:
                sock.sendall(ws_frame(opcode, payload, mask=True))
                got = reader.frame()
                assert got == (opcode, payload, False), (got[0], len(got[1]), got[2])
            row = lb.row("BACKEND")
            assert int(row["hrsp_1xx"]) == 1, row
            sock.sendall(ws_frame(WS_CLOSE, struct.pack("!H", 1000), mask=True))
            assert reader.frame() == (WS_CLOSE, struct.pack("!H", 1000), False)
            rest = recv_until_eof(sock, 15)
            assert rest == b"" and reader.buf == b"", "bytes after the close frame"
        finally:
            sock.close()
        assert not seen.get("errors"), seen["errors"]
        m = metrics_text(lb)
        assert re.search(r'^haproxy_backend_tunnels_total\{proxy="[^"]+"\} 1$', m, re.M), m
        wait_until(lambda: re.search(r'^haproxy_backend_current_tunnels\{proxy="[^"]+"\} 0$',
                                     metrics_text(lb), re.M), 10, what="the tunnel closed")
        row = lb.row("BACKEND")
        assert int(row["bin"]) > 300000 and int(row["bout"]) > 300000, row
    finally:
        be.close()


def metrics_text(lb):
    st, _, body = lb.stats_get(path="/metrics")
    assert st == 200
    return body.decode()


def test_idle_tunnel_ends_after_timeout_tunnel_only(lb_factory):
    """Client and server timeouts stop applying once the tunnel is up: an idle WebSocket
    outlives them; -timeout-tunnel then closes it."""
    seen = {}
    be = ScriptedBackend(ws_echo_script(seen))
    try:
        lb = lb_factory(["-server", be.addr, "-check=false", "-timeout-client", "300ms",
                         "-timeout-server", "300ms", "-timeout-tunnel", "2s"])
        sock, reader, _ = ws_handshake(lb.port)
        try:
            time.sleep(1.0)  # idle for more than three client and server timeouts
            sock.sendall(ws_frame(WS_TEXT, b"still there", mask=True))
            assert reader.frame() == (WS_TEXT, b"still there", False)
            # then nothing: the tunnel timeout closes both sides
            assert recv_until_eof(sock, 20) == b"", "the idle tunnel was not closed"
        finally:
            sock.close()
    finally:
        be.close()


def test_client_half_close_reaches_the_server_and_its_answer_the_client(lb_factory):
    """A tunnel is two byte streams: the client's shutdown(SHUT_WR) reaches the server as EOF,
    and what the server sends after it still reaches the client before the end."""
    seen = {}
    be = ScriptedBackend(ws_echo_script(seen))
    try:
        lb = lb_factory(["-server", be.addr, "-check=false"])
        sock, reader, _ = ws_handshake(lb.port)
        try:
            sock.sendall(ws_frame(WS_TEXT, b"last words", mask=True))
            sock.shutdown(socket.SHUT_WR)
            assert reader.frame() == (WS_TEXT, b"last words", False)
            assert reader.frame() == (WS_TEXT, b"bye", False)
            assert recv_until_eof(sock, 15) == b""
        finally:
            sock.close()
        assert seen.get("eof"), "the server never saw the client's end"
    finally:
        be.close()


def test_upgrade_refused_by_the_server_is_a_plain_response(lb_factory):
    """A server that answers an Upgrade request with a normal response: the connection stays
    an HTTP one, kept alive."""
    def script(conn, stop):
        for _ in range(2):
            read_head(conn)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nno")

    be = ScriptedBackend(script)
    try:
        lb = lb_factory(["-server", be.addr, "-check=false"])
        with socket.create_connection((HOST, lb.port), timeout=IO_TIMEOUT) as sock:
            for _ in range(2):
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                             b"Connection: Upgrade\r\n\r\n")
                data = b""
                for _ in range(100):
                    if data.endswith(b"\r\n\r\nno"):
                        break
                    data += sock.recv(4096)
                assert data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(b"no"), data
    finally:
        be.close()


def test_101_without_an_upgrade_request_is_a_bad_gateway(lb_factory):
    """A 101 the client did not ask for cannot be passed on: 502."""
    def script(conn, stop):
        read_head(conn)
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\n\r\n")
        stop.wait(5)

    be = ScriptedBackend(script)
    try:
        lb = lb_factory(["-server", be.addr, "-check=false", "-retries", "0"])
        st, _, _ = lb.get("/")
        assert st == 502
    finally:
        be.close()
