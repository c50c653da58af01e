"""Bad input and transport rules (issue 2, "Bad input").

Every rejection is a 4xx with a text/plain reason, and nothing is written.
"""

import socket
import time

import pytest

from helpers import HOST, assert_text_error, parse_raw_response, raw_header, raw_request


def assert_nothing_written(agent):
    svcs = agent.get_json("/v1/agent/services")
    svcs.pop("consul", None)
    assert svcs == {}, svcs
    checks = agent.agent_checks()
    checks.pop("serfHealth", None)
    assert checks == {}, checks
    assert agent.get_json("/v1/kv/?keys") == []
    assert [n["Node"] for n in agent.get_json("/v1/catalog/nodes")] == ["node1"]


def allow_set(r):
    allow = r.header("Allow")
    assert allow, f"405 without an Allow header: {dict(r.headers)}"
    return {m.strip().upper() for m in allow.split(",") if m.strip()}


# ---------------------------------------------------------------- JSON bodies


@pytest.mark.parametrize("path", ["/v1/agent/service/register", "/v1/agent/check/register",
                                  "/v1/catalog/register", "/v1/catalog/deregister"])
def test_malformed_json_400(agent, path):
    """Malformed JSON -> 400 "Request decode failed: ..."."""
    for body in (b'{"Name": "web",', b"{not json}", b'["Name"]x', b"\xff\xfe"):
        r = agent.put(path, body)
        assert_text_error(r, 400, startswith="Request decode failed")
    assert_nothing_written(agent)


def test_check_update_malformed_json_400(agent):
    """Update with a malformed body -> 400; the check is unchanged."""
    agent.put_ok("/v1/agent/check/register", {"Name": "c", "TTL": "30s", "Status": "passing"})
    assert_text_error(agent.put("/v1/agent/check/update/c", b'{"Status":'), 400,
                      startswith="Request decode failed")
    assert agent.check_status("c") == "passing"


@pytest.mark.parametrize("body", [
    {"Name": "web", "Port": "eighty"},
    {"Name": "web", "Tags": "primary"},
    {"Name": 42},
    {"Name": "web", "Meta": ["k", "v"]},
    {"Name": "web", "EnableTagOverride": "yes"},
    {"Name": "web", "Check": "ttl"},
    {"Name": "web", "Checks": {"TTL": "10s"}},
    {"Name": "web", "Weights": {"Passing": "ten"}},
], ids=["port-string", "tags-string", "name-number", "meta-list", "bool-string", "check-string",
        "checks-object", "weights-string"])
def test_wrong_typed_field_400(agent, body):
    """A field of the wrong type is a decode failure -> 400; nothing written."""
    assert_text_error(agent.put("/v1/agent/service/register", body), 400,
                      startswith="Request decode failed")
    assert_nothing_written(agent)


def test_body_not_an_object_400(agent):
    """A JSON value that is not an object cannot decode into a definition."""
    for body in (b"[]", b'"web"', b"42", b"null"):
        r = agent.put("/v1/agent/service/register", body)
        assert r.status == 400, (body, r)
        assert r.content_type == "text/plain"
    assert_nothing_written(agent)


@pytest.mark.parametrize("check", [
    {"TTL": "10 parsecs"}, {"TTL": "abc"}, {"TTL": "10"}, {"TCP": "127.0.0.1:1", "Interval": "1x"},
    {"TCP": "127.0.0.1:1", "Interval": "10s", "Timeout": "soon"},
    {"TTL": "30s", "DeregisterCriticalServiceAfter": "1 minute"},
], ids=["ttl-unit", "ttl-word", "ttl-unitless", "interval-unit", "timeout-word", "dcsa-words"])
def test_bad_duration_400(agent, check):
    """Durations are Go duration strings; anything else -> 400; nothing written."""
    r = agent.put("/v1/agent/service/register", {"Name": "web", "Check": check})
    assert r.status == 400, r
    assert r.content_type == "text/plain"
    r = agent.put("/v1/agent/check/register", {"Name": "c", **check})
    assert r.status == 400, r
    assert r.content_type == "text/plain"
    assert_nothing_written(agent)


def test_duration_forms_accepted(agent):
    """"1m30s", "500ms", "1h" and integer nanoseconds are valid durations."""
    for i, ttl in enumerate(("1m30s", "500ms", "1h", 30_000_000_000)):
        agent.put_ok("/v1/agent/check/register", {"Name": f"c{i}", "TTL": ttl})
    assert {f"c{i}" for i in range(4)} <= set(agent.agent_checks())


def test_oversized_json_body_413(agent):
    """Issue 2/a body over the server's limit -> 413 text/plain; nothing written.

    The head announces 8 MiB; the server must answer from the head (or after reading the body).
    """
    n = 8 * 1024 * 1024
    head = (f"PUT /v1/agent/service/register HTTP/1.1\r\nHost: {HOST}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {n}\r\n\r\n").encode()
    chunks = []
    with socket.create_connection((HOST, agent.port), timeout=10) as s:
        s.sendall(head)
        s.settimeout(2.0)
        try:
            chunks.append(s.recv(65536))
        except socket.timeout:
            # The server reads the body before judging it: send it all, then read.
            s.settimeout(10.0)
            prefix, suffix = b'{"Name": "web", "Meta": {"k": "', b'"}}'
            body = prefix + b"x" * (n - len(prefix) - len(suffix)) + suffix
            try:
                s.sendall(body)
            except OSError:
                pass
            chunks.append(s.recv(65536))
        s.settimeout(2.0)
        for _ in range(100):
            try:
                b = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not b:
                break
            chunks.append(b)
    raw = b"".join(chunks)
    assert raw.startswith(b"HTTP/1.1 413"), raw[:200]
    head_text = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    assert (raw_header(head_text, "Content-Type") or "").startswith("text/plain")
    assert_nothing_written(agent)


# ---------------------------------------------------------------- percent-encoding


def test_bad_percent_encoding_400(agent):
    """A malformed escape in the path or query -> 400; nothing written."""
    for method, path in (("PUT", "/v1/kv/a%zz"), ("PUT", "/v1/kv/a%4"), ("PUT", "/v1/kv/a%"),
                         ("GET", "/v1/kv/a%zz"), ("PUT", "/v1/kv/ok?flags=%zz"),
                         ("PUT", "/v1/agent/service/deregister/%zz"),
                         ("GET", "/v1/catalog/service/web?tag=%g1")):
        r = agent.req(method, path, body=b"v" if method == "PUT" else None)
        assert_text_error(r, 400)
    assert_nothing_written(agent)


def test_nul_in_kv_key_refused_and_nothing_lost(agent):
    """Issue 12 item 14: a decoded NUL used to cut the key short, so `victim%00x` overwrote
    `victim` and `%00junk?recurse` deleted every key. Now 400, and every key is intact."""
    agent.put_true("/v1/kv/victim", "precious")
    agent.put_true("/v1/kv/other/key", "kept")
    assert_text_error(agent.put("/v1/kv/victim%00x", "overwritten"), 400, contains="NUL")
    assert_text_error(agent.delete("/v1/kv/%00junk?recurse"), 400, contains="NUL")
    assert_text_error(agent.delete("/v1/kv/victim%00"), 400)
    assert_text_error(agent.get("/v1/kv/victim%00x"), 400)
    assert agent.get("/v1/kv/victim?raw").body == b"precious"
    assert agent.get_json("/v1/kv/?keys") == ["other/key", "victim"]


@pytest.mark.parametrize("method,path", [
    ("PUT", "/v1/kv/caf%E9"),                          # Latin-1, not UTF-8
    ("PUT", "/v1/kv/a%C0%AF"),                         # overlong '/'
    ("PUT", "/v1/kv/a%ED%A0%80"),                      # a UTF-16 surrogate
    ("PUT", "/v1/kv/ok?flags=1%00"),                   # in a query value
    ("PUT", "/v1/kv/ok?acquire=%00"),
    ("PUT", "/v1/agent/service/deregister/web%00x"),
    ("PUT", "/v1/agent/service/maintenance/web%00?enable=true"),
    ("PUT", "/v1/agent/check/pass/c%00x"),
    ("PUT", "/v1/agent/check/deregister/c%FF"),
    ("PUT", "/v1/event/fire/deploy%00x"),
    ("PUT", "/v1/session/destroy/%00"),
    ("GET", "/v1/catalog/service/web%00x"),
    ("GET", "/v1/health/service/web?tag=%00"),
    ("GET", "/v1/agent/services?filter=Service%20%3D%3D%20%22w%00%22"),
    ("GET", "/v1/kv/%FF?keys"),
])
def test_non_text_path_or_query_400(agent, method, path):
    """Item 14: a NUL or invalid UTF-8 anywhere in a decoded path or query value is a 400 for
    every endpoint (the router refuses it before any handler runs), and nothing changes."""
    agent.register_service({"ID": "web", "Name": "web", "Check": {"CheckID": "c", "TTL": "60s"}})
    agent.put_true("/v1/kv/ok", "v")
    r = agent.req(method, path, body=b"x" if method == "PUT" else None)
    assert_text_error(r, 400, contains="not UTF-8 text")
    assert "web" in agent.get_json("/v1/agent/services")
    assert agent.check_status("c") == "critical"
    assert agent.get("/v1/agent/health/service/id/web").status == 503  # not in maintenance
    assert agent.get_json("/v1/kv/?keys") == ["ok"]
    assert agent.get("/v1/kv/ok?raw").body == b"v"


# ---------------------------------------------------------------- methods and routes


@pytest.mark.parametrize("method,path,allowed", [
    ("DELETE", "/v1/agent/service/register", {"PUT"}),
    ("GET", "/v1/agent/check/register", {"PUT"}),
    ("DELETE", "/v1/agent/services", {"GET"}),
    ("PUT", "/v1/agent/self", {"GET"}),
    ("PUT", "/v1/catalog/services", {"GET"}),
    ("DELETE", "/v1/catalog/register", {"PUT"}),
    ("POST", "/v1/health/service/web", {"GET"}),
    ("PATCH", "/v1/kv/x", {"GET", "PUT", "DELETE"}),
    ("PUT", "/v1/status/leader", {"GET"}),
])
def test_wrong_method_405_with_allow(agent, method, path, allowed):
    """A wrong method -> 405 with Allow: OPTIONS,<methods>; text/plain; nothing written."""
    r = agent.req(method, path, body=b"{}" if method in ("PUT", "POST", "PATCH") else None)
    assert r.status == 405, r
    assert r.content_type == "text/plain"
    assert allow_set(r) == allowed | {"OPTIONS"}
    assert_nothing_written(agent)


def test_options_200_with_allow(agent):
    """OPTIONS -> 200 with Allow."""
    r = agent.req("OPTIONS", "/v1/kv/x")
    assert r.status == 200
    assert allow_set(r) == {"OPTIONS", "GET", "PUT", "DELETE"}
    r = agent.req("OPTIONS", "/v1/agent/service/register")
    assert r.status == 200
    assert allow_set(r) == {"OPTIONS", "PUT"}


def test_unknown_v1_path_404(agent):
    """An unknown /v1/ path -> 404 text/plain."""
    for path in ("/v1/nope", "/v1/catalog/nope", "/v1/agent/nope/x"):
        assert_text_error(agent.get(path), 404)


def test_root_200_text(agent):
    """GET / -> 200 plain text (or a UI redirect when the UI is on; it is off here)."""
    r = agent.get("/")
    assert r.status == 200
    assert r.content_type == "text/plain"


def test_pretty_json(agent):
    """?pretty -> indented JSON with a trailing newline; compact by default."""
    agent.register_service({"ID": "w1", "Name": "web"})
    compact = agent.get("/v1/catalog/service/web")
    assert b"\n" not in compact.body.rstrip(b"\n")
    pretty = agent.get("/v1/catalog/service/web?pretty")
    assert pretty.status == 200
    assert pretty.body.endswith(b"\n")
    assert b"\n    " in pretty.body or b"\n  " in pretty.body
    assert pretty.json() == compact.json()


def test_default_acl_policy_header(agent):
    """X-Consul-Default-ACL-Policy on wrapped responses (allow without ACLs)."""
    for path in ("/v1/catalog/services", "/v1/kv/missing", "/v1/agent/self"):
        assert agent.get(path).header("X-Consul-Default-ACL-Policy") == "allow", path


# ---------------------------------------------------------------- malformed HTTP (raw sockets)


def test_bad_request_line_400(agent):
    """Issue 2: a malformed request line -> 400 text/plain."""
    for data in (b"GARBAGE\r\n\r\n", b"GET /v1/status/leader\r\n\r\n",
                 b"GET /v1/status/leader HTTX/1.1\r\nHost: x\r\n\r\n",
                 b"G(T /v1/status/leader HTTP/1.1\r\nHost: x\r\n\r\n"):
        status, head, _ = raw_request(agent.port, data)
        assert status == 400, (data, head)
        assert (raw_header(head, "Content-Type") or "").startswith("text/plain"), head


def test_conflicting_content_length_400(agent):
    """Issue 2: two different Content-Length headers -> 400; nothing written."""
    data = (b"PUT /v1/kv/smuggle HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
            b"Content-Length: 4\r\n\r\nabcd")
    status, head, _ = raw_request(agent.port, data)
    assert status == 400, head
    assert (raw_header(head, "Content-Type") or "").startswith("text/plain")
    assert agent.get("/v1/kv/smuggle").status == 404


def test_content_length_with_transfer_encoding_400(agent):
    """Issue 2: Content-Length together with Transfer-Encoding -> 400; nothing written."""
    data = (b"PUT /v1/kv/smuggle HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n")
    status, head, _ = raw_request(agent.port, data)
    assert status == 400, head
    assert (raw_header(head, "Content-Type") or "").startswith("text/plain")
    assert agent.get("/v1/kv/smuggle").status == 404


def test_bare_lf_and_bad_chunk_400(agent):
    """Issue 2: a bare LF in the head, or a bad chunk size -> 400; nothing written."""
    status, head, _ = raw_request(
        agent.port, b"PUT /v1/kv/lf HTTP/1.1\r\nHost: x\nContent-Length: 1\r\n\r\nv")
    assert status == 400, head
    status, head, _ = raw_request(
        agent.port, b"PUT /v1/kv/chunk HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"zz\r\nabc\r\n0\r\n\r\n")
    assert status == 400, head
    assert agent.get("/v1/kv/?keys").json() == []


def test_chunked_body_accepted(agent):
    """Issue 2: a well-formed chunked body is a valid request body."""
    status, head, body = raw_request(
        agent.port, b"PUT /v1/kv/chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                    b"Connection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
    assert status == 200, head
    assert agent.get("/v1/kv/chunked?raw").body == b"abcde"


def test_chunk_past_the_body_limit_413_at_once(agent):
    """A chunk announced past the body limit (1 MiB), up to 2^64-1 bytes, or one that would take
    the body past it, is refused with its size line, as a Content-Length past the limit is,
    instead of holding the connection until the request times out; nothing is written."""
    for chunks in (b"100001\r\nabc", b"FFFFFFFFFFFFFFFF\r\nabc",
                   b"80000\r\n" + b"a" * 0x80000 + b"\r\n80001\r\nabc"):
        status, head, _ = raw_request(
            agent.port, b"PUT /v1/kv/huge HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                        b"\r\n" + chunks)
        assert status == 413, head
    assert agent.get("/v1/kv/huge").status == 404


def test_head_sent_a_byte_at_a_time_is_cut_off(agent):
    """Slowloris: a head trickling in a byte at a time does not keep its connection. The head
    has a deadline from its first byte that each byte does not renew, then 408 and a close;
    other clients are served all along."""
    head = b"GET /v1/status/leader HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000
    got = b""
    with socket.create_connection((HOST, agent.port), timeout=0.5) as s:
        deadline = time.monotonic() + 60
        for i in range(len(head)):
            assert time.monotonic() < deadline, "the trickled head still open after 60 s"
            try:
                s.sendall(head[i:i + 1])
                got = s.recv(4096)
                break
            except socket.timeout:
                assert agent.get("/v1/status/leader").status == 200
            except OSError:
                break  # the close met a byte in flight
        for _ in range(100):
            b = s.recv(4096) if got else b""
            if not b:
                break
            got += b
    assert got.startswith(b"HTTP/1.1 408 "), got
    assert agent.get("/v1/status/leader").status == 200


def test_header_block_over_64k_431(agent):
    """Issue 2: a head over 64 KiB -> 431 text/plain."""
    data = (b"GET /v1/status/leader HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (70 * 1024)
            + b"\r\n\r\n")
    try:
        status, head, _ = raw_request(agent.port, data)
    except ConnectionResetError:
        pytest.fail("connection reset before a 431 was read (close without draining the input)")
    assert status == 431, head
    assert (raw_header(head, "Content-Type") or "").startswith("text/plain")


def test_too_many_headers_431(agent):
    """Issue 2: more header fields than the limit (100) -> 431."""
    lines = b"".join(b"X-H%d: v\r\n" % i for i in range(150))
    data = b"GET /v1/status/leader HTTP/1.1\r\nHost: x\r\n" + lines + b"\r\n"
    status, head, _ = raw_request(agent.port, data)
    assert status == 431, head


def test_server_survives_bad_input(agent):
    """After all of the above on one agent, it still answers normally."""
    for data in (b"\x00\x01\x02\r\n\r\n", b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
                 b"PUT /v1/kv/x HTTP/1.1\r\nContent-Length: -1\r\n\r\n"):
        status, head, _ = raw_request(agent.port, data)
        assert status == 400, (data, head)
    # half a request, then the client goes away
    s = socket.create_connection((HOST, agent.port))
    s.sendall(b"PUT /v1/kv/half HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc")
    s.close()
    time.sleep(0.2)
    assert agent.get_json("/v1/status/leader")
    assert agent.get("/v1/kv/half").status == 404


def test_pipelined_requests_answered_in_order(agent):
    """Issue 2: pipelined requests on one connection are answered in order."""
    data = (b"PUT /v1/kv/p1 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\na"
            b"GET /v1/kv/p1?raw HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /v1/kv/nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    chunks = []
    with socket.create_connection((HOST, agent.port), timeout=5) as s:
        s.sendall(data)
        for _ in range(1000):
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            if not b:
                break
            chunks.append(b)
    raw = b"".join(chunks)
    answers = []
    for _ in range(10):  # split the stream by each head's Content-Length
        if not raw:
            break
        status, head, rest = parse_raw_response(raw)
        assert status is not None, raw[:300]
        n = int(raw_header(head, "Content-Length") or 0)
        answers.append((status, rest[:n]))
        raw = rest[n:]
    assert answers == [(200, b"true"), (200, b"a"), (404, b"")], answers


def test_http11_without_host_is_400_as_go_answers(agent):
    """Go's net/http (Consul's server): an HTTP/1.1 request without Host is 400 "missing
    required Host header", an absolute-form one too; HTTP/1.0 needs no Host."""
    missing = b"400 Bad Request: missing required Host header"
    for data in (b"GET /v1/status/leader HTTP/1.1\r\n\r\n",
                 b"GET http://127.0.0.1/v1/status/leader HTTP/1.1\r\nX: 1\r\n\r\n"):
        status, head, body = raw_request(agent.port, data)
        assert (status, body) == (400, missing), (data, head, body)
        assert "Connection: close" in head
    status, _, body = raw_request(agent.port, b"GET /v1/status/leader HTTP/1.0\r\n\r\n")
    assert status == 200 and body.startswith(b'"'), body


def test_absolute_form_target_is_routed_by_its_path(agent):
    """Go routes GET http://authority/path by its path (the authority stands for Host); a
    target that is neither a path nor an absolute URI is a 400."""
    assert agent.put("/v1/kv/abs", "v1").json() is True
    for target in (b"http://example/v1/kv/abs?raw", b"HTTP://u@example:8500/v1/kv/abs?raw"):
        status, head, body = raw_request(
            agent.port, b"GET " + target + b" HTTP/1.1\r\nHost: other\r\n\r\n")
        assert (status, body) == (200, b"v1"), (target, head, body)
    status, _, body = raw_request(agent.port, b"GET example/v1/kv/abs HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 400 and b"invalid URI for request" in body, body


def test_malformed_host_is_400_as_go_answers(agent):
    """Go's httpguts.ValidHostHeader: a Host byte that no host, port, IP literal or
    pct-encoding has (space, '/', '@', '<'...) is 400 "malformed Host header", any version."""
    for host in (b"a b", b"a/b", b"user@a", b"<a>"):
        status, _, body = raw_request(agent.port,
                                      b"GET /v1/status/leader HTTP/1.0\r\nHost: " + host + b"\r\n\r\n")
        assert (status, body) == (400, b"400 Bad Request: malformed Host header"), host
    status, _, _ = raw_request(agent.port, b"GET /v1/status/leader HTTP/1.1\r\n"
                                           b"Host: [fe80::1%25lo]:8500\r\n\r\n")
    assert status == 200


def test_asterisk_target_as_go_answers_it(agent):
    """Go's server answers OPTIONS * itself, 200 with no body; its ServeMux any other method on
    "*" 400. (A path under "/" is routed as usual.)"""
    status, head, body = raw_request(agent.port, b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (status, body) == (200, b""), head
    assert "Content-Length: 0" in head
    status, head, body = raw_request(agent.port, b"GET * HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (status, body) == (400, b""), head
