"""No caller input reaches the wire as a header line (issue 12 item 3).

A client agent copies tokens (a percent-decoded ?token=, say) into X-Consul-Token on its
connections to the server. The client agent here joins the server through a relay that records
every byte sent to the server, so the test sees what a server would have received.
"""

import json
import socket
import threading

from helpers import assert_text_error, wait_until

ROOT = {"X-Consul-Token": "root"}
INJECTED = "abc%0D%0AX-Injected:%20yes"


class RecordingRelay:
    """TCP relay 127.0.0.1:port -> 127.0.0.1:upstream that keeps what clients sent."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.sent = bytearray()
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.conns = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            u = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
            self.conns += [c, u]
            threading.Thread(target=self._pipe, args=(c, u, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(u, c, False), daemon=True).start()

    def _pipe(self, src, dst, record):
        src.settimeout(0.2)
        while not self.stopping:
            try:
                b = src.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            if not b:
                break
            if record:
                with self.lock:
                    self.sent += b
            try:
                dst.sendall(b)
            except OSError:
                break
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def received(self):
        with self.lock:
            return bytes(self.sent)

    def close(self):
        self.stopping = True
        self.sock.close()
        self.thread.join(5)
        for c in self.conns:
            c.close()


def test_client_agent_never_forwards_a_line_break_in_a_token(agent_factory, tmp_path):
    acl = {"enabled": True, "default_policy": "deny", "tokens": {"initial_management": "root"}}
    (tmp_path / "server.json").write_text(json.dumps({"acl": acl}))
    server = agent_factory(config_files=[tmp_path / "server.json"])
    relay = RecordingRelay(server.port)
    try:
        (tmp_path / "client.json").write_text(json.dumps({
            "acl": {"enabled": True, "default_policy": "deny", "tokens": {"agent": "root"}},
            "retry_join": [f"127.0.0.1:{relay.port}"]}))
        client = agent_factory(node="web1", server=False,
                               config_files=[tmp_path / "client.json"])
        # The path works at all: a real token resolves through the relay.
        assert client.put("/v1/kv/app/x?token=root", "v").status == 200
        wait_until(lambda: b"X-Consul-Token: root\r\n" in relay.received(), 5,
                   what="the token resolved through the relay")

        # Resolved by the client agent itself (its own endpoints), and forwarded reads.
        for method, path in [("PUT", "/v1/agent/service/register"),
                             ("GET", "/v1/agent/services"),
                             ("GET", "/v1/kv/app/x")]:
            body = {"Name": "web"} if method == "PUT" else None
            r = client.req(method, f"{path}?token={INJECTED}", body)
            assert r.status in (400, 403), r
            assert_text_error(client.req(method, path, body,
                                         headers={"X-Consul-Token": "abc\tdef"}), 403)
        # A forwarded target keeps its percent-encoding; no line of its own may appear.
        sent = relay.received()
        assert b"?token=abc%0D%0AX-Injected:%20yes HTTP/1.1\r\n" in sent
        i = sent.find(b"\nX-Injected")
        assert i < 0, sent[max(0, i - 300):i + 50]
        assert b"abc\r\n" not in sent
        # The agent is fine afterwards.
        assert client.get("/v1/kv/app/x?token=root").status == 200
    finally:
        relay.close()


def test_check_header_with_a_line_break_fails_the_check(agent, target):
    """A check's Header value is the operator's input: a line break is the check's error (as
    Go's client reports it), never a second header on the probe."""
    chk = {"Name": "inj", "CheckID": "inj", "HTTP": target.url(), "Interval": "1s",
           "Header": {"X-A": ["ok\r\nX-Injected: yes"]}}
    assert agent.put("/v1/agent/check/register", chk).status == 200
    st = agent.wait_check("inj", "critical",
                          output_contains='invalid header field value for "X-A"')
    assert st
    assert target.count() == 0
