"""End-to-end tests of `mesh lb`'s data path: balancing over static servers and over the
registry's live instances, forwarding, bodies, health checks, retries and bad input.

Backends are real processes (lb_helpers.Backend), the registry is a real `mesh agent`; every
process listens on a free 127.0.0.1 port and is stopped by PID. The behaviour is docs/lb.md;
HAProxy's semantics where it leaves a detail open.
"""

import http.client
import io
import json
import os
import resource
import select
import signal
import socket
import time
from pathlib import Path

import pytest

from lb_helpers import (HOST, KeepAlive, Load, backends, lb_factory, spread,  # noqa: F401
                        wait_until)


def static_args(bs, weights=None):
    args = []
    for i, b in enumerate(bs):
        args += ["-server", b.addr + (f",{weights[i]}" if weights else "")]
    return args


def assert_even(counts, bs, n):
    """Every backend got n/len(bs) requests within +-2 (and nothing else answered)."""
    assert set(counts) == {str(b.port) for b in bs}, counts
    for b in bs:
        got = counts[str(b.port)]
        assert abs(got - n / len(bs)) <= 2, f"uneven spread over {len(bs)}: {counts}"


# ---------------------------------------------------------------- static servers


@pytest.mark.parametrize("n_backends", [2, 3])
def test_roundrobin_spreads_evenly(backends, lb_factory, n_backends):
    bs = backends(n_backends)
    lb = lb_factory(static_args(bs))
    assert_even(spread(lb.port, 300), bs, 300)


def test_roundrobin_honours_weights(backends, lb_factory):
    bs = backends(2)
    lb = lb_factory(static_args(bs, weights=[2, 1]))
    counts = spread(lb.port, 300)
    assert abs(counts[str(bs[0].port)] - 200) <= 2, counts
    assert abs(counts[str(bs[1].port)] - 100) <= 2, counts


def served_by_new_connections(lb, n):
    """n GETs, each on a new connection (so the kernel spreads them over the workers): the
    X-Served-By of each, in order."""
    seq = []
    for _ in range(n):
        st, h, body = lb.get("/")
        assert st == 200, (st, body[:200])
        seq.append(h["X-Served-By"])
    return seq


@pytest.mark.parametrize("workers", [2, 3])
def test_roundrobin_alternates_strictly_across_workers(backends, lb_factory, workers):
    """HAProxy's balance roundrobin with several threads: one rotation for the backend,
    whichever worker accepted the connection (issue 13 item 1)."""
    bs = backends(2)
    lb = lb_factory(static_args(bs), workers=workers)
    seq = served_by_new_connections(lb, 40)
    repeats = [i for i in range(1, len(seq)) if seq[i] == seq[i - 1]]
    assert not repeats, f"same server twice in a row at {repeats}: {seq}"
    assert set(seq) == {str(b.port) for b in bs}


def test_roundrobin_weights_hold_across_workers(backends, lb_factory):
    """Weights 2:1 over new connections and 2 workers: every 3 consecutive requests are one
    whole turn of the cycle, 2 for the first server and 1 for the second."""
    bs = backends(2)
    lb = lb_factory(static_args(bs, weights=[2, 1]))
    seq = served_by_new_connections(lb, 45)
    heavy = str(bs[0].port)
    for i in range(len(seq) - 2):
        window = seq[i:i + 3]
        assert window.count(heavy) == 2, f"requests {i}..{i + 2}: {window} in {seq}"


def lb_with_io(lb_factory, args, backend):
    """A started lb on socket backend (-io epoll|uring). Where io_uring is refused (a seccomp
    filter), -io uring fails at start with the reason and the calling test is skipped."""
    lb = lb_factory(args + ["-io", backend], start=False)
    try:
        lb.start()
    except AssertionError:
        if backend == "uring" and "-io uring:" in lb.log_text():
            pytest.skip("io_uring is not available here")
        raise
    return lb


@pytest.mark.parametrize("backend", ["epoll", "uring"])
def test_each_socket_backend_proxies_and_says_which(backends, lb_factory, backend):
    """-io picks the sockets' backend and the log says which; both proxy the same requests,
    pipelined ones and bodies too. Where io_uring is refused (a seccomp filter), -io uring
    fails at start with the reason and the test is skipped."""
    bs = backends(2)
    lb = lb_with_io(lb_factory, static_args(bs), backend)
    name = "io_uring" if backend == "uring" else "epoll"
    assert f"socket I/O: {name}" in lb.log_text()
    assert_even(spread(lb.port, 100), bs, 100)
    body = b"x" * 70000  # past the io_uring send queue's bound, both ways
    _, got, closed = raw_exchange(
        lb.port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n" +
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(body) + body +
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert closed
    assert got.count(b"HTTP/1.1 200") == 3, got[:300]
    assert body in got


def own_threads(pid):
    """The process's threads less the kernel's io_uring workers: work the ring punts to its
    pool runs on "iou-wrk-PID" threads (and SQPOLL on "iou-sqp-PID") that /proc lists as the
    process's tasks, though the process started none of them. A thread that exits between the
    listing and the read of its name is gone, not one of ours."""
    own = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                comm = f.read()
        except FileNotFoundError:
            continue
        if not comm.startswith("iou-"):
            own.append(tid)
    return own


@pytest.mark.parametrize("backend", ["epoll", "uring"])
def test_one_worker_runs_on_the_main_thread(backends, lb_factory, backend):
    """-workers 1 proxies on the main thread, beside the stats server, rather than on a thread
    of its own beside an idle main one: the process has one thread. (No health checks and
    static servers: nothing else starts one; a sanitizer's own thread comes with the first
    pthread_create, so there is none here either.)"""
    bs = backends(1)
    lb = lb_with_io(lb_factory, static_args(bs) + ["-check=false", "-workers", "1"], backend)
    assert_even(spread(lb.port, 20), bs, 20)
    assert lb.stats_get(";csv")[0] == 200
    threads = own_threads(lb.proc.pid)
    assert threads == [str(lb.proc.pid)], f"threads: {threads}"
    lb.signal(signal.SIGTERM)
    assert lb.proc.wait(timeout=10) == 0, lb.log_tail()


@pytest.mark.parametrize("backend", ["epoll", "uring"])
def test_a_client_that_shuts_its_side_gets_the_whole_response(backends, lb_factory, backend):
    """A client sends its request and shuts down its write side (as `nc -N` and HTTP/1.0
    tools do), so the proxy closes once the response is written: every byte of a response
    larger than one send still arrives. With io_uring the close once dropped what was queued
    behind the first send: 16 kB of 300 kB arrived while the send queue was 64 KiB. With the
    16 KiB queue of today that loss needs a send in flight at the close, which this test
    cannot force; test_pollsock's close-after-writes does, on both backends."""
    bs = backends(1)
    lb = lb_with_io(lb_factory, static_args(bs), backend)
    body = bytes(range(256)) * 1200  # 300 kB, echoed back
    for path in ("/echo", "/echo?chunked=1"):
        c = KeepAlive(lb.port)
        try:
            st, _, got = c.request("POST", path, body=body, shut_write=True)
            assert st == 200 and len(got) == len(body) and got == body, (path, st, len(got))
            assert c.buf == b"" and c.sock.recv(1) == b"", path  # then the proxy's close
        finally:
            c.close()


def test_keepalive_client_gets_every_response(backends, lb_factory):
    """One client connection, 200 requests in sequence (GET, HEAD, POST): the proxy keeps it
    open and never mixes up responses."""
    bs = backends(2)
    lb = lb_factory(static_args(bs))
    c = KeepAlive(lb.port)
    try:
        for i in range(200):
            if i % 3 == 0:
                body = f"request {i}".encode()
                st, h, got = c.request("POST", "/echo", body=body)
                assert (st, got) == (200, body), (i, st, got)
            elif i % 3 == 1:
                st, h, got = c.request("HEAD", "/")
                assert (st, got) == (200, b""), (i, st, got)
                by = h["x-served-by"]
                assert h["content-length"] == str(len(f"ok from {by}\n")), h
            else:
                st, h, got = c.request("GET", "/")
                assert st == 200 and got == f"ok from {h['x-served-by']}\n".encode(), (i, got)
    finally:
        c.close()


def backend_headers(lb, headers):
    st, _, body = lb.get("/headers", headers=headers)
    assert st == 200, body
    return json.loads(body)


def values(pairs, name):
    return [v for k, v in pairs if k.lower() == name.lower()]


def test_forwarded_headers_reach_the_backend(backends, lb_factory):
    bs = backends(1)
    lb = lb_factory(static_args(bs))
    seen = backend_headers(lb, {})
    assert values(seen, "X-Forwarded-For") == ["127.0.0.1"], seen
    via = values(seen, "Via")
    assert len(via) == 1 and via[0].startswith("1.1 "), seen
    assert values(seen, "Host"), "Host must be forwarded"
    # A client-supplied X-Forwarded-For is kept and the client's address added last.
    seen = backend_headers(lb, {"X-Forwarded-For": "10.1.2.3"})
    xff = ", ".join(values(seen, "X-Forwarded-For"))
    parts = [p.strip() for p in xff.split(",")]
    assert parts == ["10.1.2.3", "127.0.0.1"], seen


def test_an_ipv6_client_address_is_forwarded(backends, lb_factory):
    """The client's address comes from the accept itself: an IPv6 client is named as such."""
    bs = backends(1)
    lb = lb_factory(static_args(bs) + ["-bind", "::"])  # both families on one socket
    c = http.client.HTTPConnection("::1", lb.port, timeout=5)
    try:
        c.request("GET", "/headers")
        r = c.getresponse()
        body = r.read()
        assert r.status == 200, body
    finally:
        c.close()
    seen = json.loads(body)
    assert values(seen, "X-Forwarded-For") == ["::1"], seen


def test_hop_by_hop_headers_are_removed(backends, lb_factory):
    bs = backends(1)
    lb = lb_factory(static_args(bs))
    seen = backend_headers(lb, {"Connection": "keep-alive, X-Client-Hop",
                                "X-Client-Hop": "secret", "Keep-Alive": "timeout=5",
                                "X-End-To-End": "kept"})
    names = {k.lower() for k, _ in seen}
    assert "x-client-hop" not in names, f"header named by Connection forwarded: {seen}"
    assert "keep-alive" not in names, f"Keep-Alive forwarded: {seen}"
    assert "x-client-hop" not in " ".join(values(seen, "Connection")).lower(), seen
    assert values(seen, "X-End-To-End") == ["kept"], seen
    # and in the other direction
    c = KeepAlive(lb.port)
    try:
        st, h, body = c.request("GET", "/hop")
    finally:
        c.close()
    assert st == 200 and body == b"hop\n"
    assert "x-backend-hop" not in h, f"response header named by Connection forwarded: {h}"
    assert "timeout=99" not in h.get("keep-alive", ""), f"backend's Keep-Alive forwarded: {h}"
    assert h.get("x-end-to-end") == "kept", h


def test_post_bodies_are_echoed_intact(backends, lb_factory):
    bs = backends(2)
    lb = lb_factory(static_args(bs))
    body = os.urandom(1 << 20)
    st, _, got = lb.get("/echo", method="POST", body=body,
                        headers={"Content-Type": "application/octet-stream"})
    assert st == 200 and got == body, (st, len(got))

    def chunks():
        for i in range(0, len(body), 100_000):
            yield body[i:i + 100_000]

    c = http.client.HTTPConnection(HOST, lb.port, timeout=10)
    try:
        c.request("POST", "/echo", body=chunks(), encode_chunked=True,
                  headers={"Transfer-Encoding": "chunked"})
        r = c.getresponse()
        got = r.read()
        assert r.status == 200 and got == body, (r.status, len(got))
        # a chunked response streamed back on the same connection
        c.request("POST", "/echo?chunked=1", body=body)
        r = c.getresponse()
        got = r.read()
        assert r.status == 200 and got == body, (r.status, len(got))
    finally:
        c.close()


def test_head_and_backend_errors_pass_through(backends, lb_factory):
    bs = backends(1)
    lb = lb_factory(static_args(bs))
    c = KeepAlive(lb.port)
    try:
        st, h, body = c.request("HEAD", "/")
        assert (st, body) == (200, b"")
        assert h["content-length"] == str(len(f"ok from {bs[0].port}\n")), h
        for code in (404, 500, 503):
            st, h, body = c.request("GET", f"/status/{code}")
            assert st == code and body == f"status {code} from {bs[0].port}\n".encode(), body
        st, _, body = c.request("GET", "/")  # the connection still works after HEAD and errors
        assert (st, body) == (200, f"ok from {bs[0].port}\n".encode())
    finally:
        c.close()


def _readable(sock):
    """sock has bytes to read or its peer closed it (never blocks)."""
    return bool(select.select([sock], [], [], 0)[0])


def _read_answer(sock):
    """Reads one answer to GET / (the backend's "ok from PORT\\n"); b"" if the lb closed."""
    buf = b""
    for _ in range(1000):
        if b"\r\n\r\n" in buf and buf.endswith(b"\n"):
            break
        got = sock.recv(65536)
        if not got:
            break
        buf += got
    return buf


def _lowest_free_fd(pid):
    """The descriptor number the process's next open gets: the lowest one not in use."""
    used = {int(n) for n in os.listdir(f"/proc/{pid}/fd")}
    return next(n for n in range(len(used) + 1) if n not in used)


def test_out_of_descriptors_new_connections_wait_for_one(backends, lb_factory):
    """With every file descriptor in use, a new connection is not accepted and closed: accepting
    pauses, the connection waits in the listen backlog, and it is served as soon as another
    client leaves. The warning says so only when a connection does wait: accept4 takes a
    descriptor before it looks at the backlog, so the call after the one that took the last
    descriptor fails with EMFILE although nobody waits, which once logged it too early."""
    bs = backends(1)
    # a keep-alive client and the pooled server connection stay open for the whole test: no
    # descriptor frees unless the test closes a client
    lb = lb_factory(static_args(bs) + ["-check=false", "-timeout-keepalive", "10m",
                                       "-timeout-client", "10m"], workers=1)
    req = f"GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
    socks = []

    def warned():
        return "new connections wait" in lb.log_text()

    def client():
        socks.append(socket.create_connection((HOST, lb.port), timeout=10))
        socks[-1].sendall(req)
        return socks[-1]

    try:
        first = client()  # its answer leaves an idle server connection in the pool
        assert _read_answer(first).startswith(b"HTTP/1.1 200 "), lb.log_tail()
        # One descriptor left: RLIMIT_NOFILE bounds descriptor numbers, and the next open takes
        # the lowest free one. (Counting the open descriptors instead leaves any holes below
        # the count free, and as many clients as there are holes got in.)
        # (The readiness probes' connections close a moment after their peers: wait until
        # the number stands still.)
        seen = [_lowest_free_fd(lb.proc.pid)]
        for _ in range(100):
            time.sleep(0.1)
            seen.append(_lowest_free_fd(lb.proc.pid))
            if seen[-3:] == [seen[-1]] * 3:
                break
        limit = seen[-1] + 1
        resource.prlimit(lb.proc.pid, resource.RLIMIT_NOFILE, (limit, limit))
        # This client takes the last descriptor, and the accept4 after it in the same wake-up
        # fails with an empty backlog: no warning. The request goes over the pooled connection.
        last = client()
        assert _read_answer(last).startswith(b"HTTP/1.1 200 "), lb.log_tail()
        assert not warned(), f"warned with nobody waiting:\n{lb.log_tail()}"
        # The next one waits: the warning is logged only while a connection is in the backlog,
        # and this is the only one that can be there.
        late = client()
        wait_until(warned, 10, what="the lb's warning that a connection waits")
        assert not _readable(late), f"served with no descriptor free:\n{lb.log_tail()}"
        last.close()  # frees the one descriptor below the limit
        assert _read_answer(late).startswith(b"HTTP/1.1 200 "), lb.log_tail()
    finally:
        for sock in socks:
            sock.close()


# ---------------------------------------------------------------- active health checks


def test_health_checks_take_a_server_down_and_up(backends, lb_factory):
    b1, b2 = backends(2)
    lb = lb_factory(static_args([b1, b2]) + ["-check-inter", "500ms", "-check-fall", "3",
                                             "-check-rise", "2"])
    wait_until(lambda: (lb.row("srv2") or {}).get("status") == "UP", 5, what="srv2 UP")
    # counted before the switch: a check answered between the switch and the count would
    # otherwise go missing from it
    before = b2.stats()["health_fail"]
    b2.set_health(500)
    row = wait_until(lambda: (r := lb.row("srv2")) and r["status"] == "DOWN" and r, 6,
                     what="srv2 DOWN")
    fails = b2.stats()["health_fail"] - before
    assert fails >= 3, f"DOWN after {fails} failed checks, fall is 3"
    assert row["check_status"] == "L7STS" and row["check_code"] == "500", row
    counts = spread(lb.port, 40)
    assert counts == {str(b1.port): 40}, f"a DOWN server got traffic: {counts}"
    before = b2.stats()["health_ok"]
    b2.set_health(200)
    wait_until(lambda: (lb.row("srv2") or {}).get("status") == "UP", 5, what="srv2 UP again")
    oks = b2.stats()["health_ok"] - before
    assert oks >= 2, f"UP after {oks} passed checks, rise is 2"
    assert_even(spread(lb.port, 40), [b1, b2], 40)


# ---------------------------------------------------------------- the registry


def register(agent, sid, backend, passing=True):
    agent.register_service({"ID": sid, "Name": "web", "Address": HOST, "Port": backend.port,
                            "Check": {"TTL": "60s"}})
    if passing:
        agent.put_ok(f"/v1/agent/check/pass/service:{sid}")


def registry_args(agent):
    return ["-service", "web", "-registry-addr", f"{HOST}:{agent.port}"]


def wait_registry_set(lb):
    """The lb listens before the registry's first answer, and answers 503 until then: wait for
    a request served (the set is published whole, so every registered instance is in)."""
    wait_until(lambda: lb.get("/")[0] == 200, 5, what="the registry's instances in the lb")


def test_registry_instances_join_and_leave_under_load(agent, backends, lb_factory):
    b1, b2, b3 = backends(3)
    register(agent, "web-1", b1)
    register(agent, "web-2", b2)
    lb = lb_factory(registry_args(agent))
    wait_registry_set(lb)
    wait_until(lambda: len(spread(lb.port, 4)) == 2, 5, what="both instances served")
    assert_even(spread(lb.port, 300), [b1, b2], 300)
    names = {r["svname"] for r in lb.server_rows()}
    assert names == {f"node1_{b1.port}", f"node1_{b2.port}"}, names

    # A third instance, registered critical, passes its check under a steady load.
    register(agent, "web-3", b3, passing=False)
    load = Load(lb.port, seconds=20).start()
    try:
        time.sleep(0.5)
        assert not load.served_by(b3.port), "an instance with a critical check got traffic"
        t_pass = time.monotonic()
        agent.put_ok("/v1/agent/check/pass/service:web-3")
        wait_until(lambda: load.served_by(b3.port), 3, 0.01, what="web-3 to take traffic")
        joined = load.served_by(b3.port)[0][0] - t_pass
        print(f"\nweb-3 took traffic {joined * 1000:.1f} ms after its check passed")
        assert joined < 1.0, f"web-3 took traffic only {joined:.3f}s after its check passed"
    finally:
        load.stop()
    assert not load.errors and {r[1] for r in load.results} == {200}, load.errors[:5]
    assert_even(spread(lb.port, 300), [b1, b2, b3], 300)

    # Deregistered under load: nothing reaches it afterwards.
    load = Load(lb.port, seconds=20).start()
    try:
        time.sleep(0.3)
        agent.put_ok("/v1/agent/service/deregister/web-3")
        t_dereg = time.monotonic()
        time.sleep(0.5)
        served = b3.stats()["served"]
        time.sleep(1.0)
        assert b3.stats()["served"] == served, "a deregistered instance still gets requests"
    finally:
        load.stop()
    late = load.served_by(b3.port, after=t_dereg)
    print(f"web-3 answered {len(late)} requests in flight after its deregistration")
    assert not load.served_by(b3.port, after=t_dereg + 0.5), "traffic 0.5 s after deregister"
    assert not load.errors and {r[1] for r in load.results} == {200}, load.errors[:5]
    assert {r[2] for r in load.results if r[0] > t_dereg + 0.5} == {str(b1.port), str(b2.port)}

    # The registry goes away: the last known set keeps serving.
    agent.kill9()
    time.sleep(0.3)
    assert_even(spread(lb.port, 30), [b1, b2], 30)


def test_registry_all_instances_gone_gives_503(agent, backends, lb_factory, tmp_path):
    (b1,) = backends(1)
    register(agent, "web-1", b1)
    page = tmp_path / "503.http"
    page.write_bytes(b"HTTP/1.0 503 Service Unavailable\r\nCache-Control: no-cache\r\n"
                     b"Connection: close\r\nContent-Type: text/html\r\n\r\n"
                     b"<html><body><h1>lbtest custom 503 page 7f3a</h1></body></html>\n")
    builtin = lb_factory(registry_args(agent))
    custom = lb_factory(registry_args(agent) + ["-errorfile-503", str(page)])
    for lb in (builtin, custom):
        wait_until(lambda: lb.get("/")[0] == 200, 5, what="served")
    agent.put_ok("/v1/agent/service/deregister/web-1")
    for lb in (builtin, custom):
        wait_until(lambda: lb.get("/")[0] == 503, 5, what="503 once no instance is left")
    st, h, body = builtin.get("/")
    assert st == 503 and (h.get("Content-Type") or "").startswith("text/html"), (st, dict(h))
    assert b"503" in body and b"ok from" not in body, body
    # the built-in page is configs/errors/503.http, HAProxy's errorfile in the template too
    page = (Path(__file__).resolve().parents[2] / "configs/errors/503.http").read_bytes()
    assert body == page.partition(b"\r\n\r\n")[2] and h.get("Retry-After") == "5"
    st, h, body = custom.get("/")
    assert st == 503 and b"lbtest custom 503 page 7f3a" in body, (st, body)
    # an instance comes back: traffic again
    register(agent, "web-1", b1)
    wait_until(lambda: builtin.get("/")[0] == 200, 5, what="served again")


def test_kill9_of_a_backend_under_load_loses_no_request(agent, backends, lb_factory):
    bs = backends(3)
    for i, b in enumerate(bs):
        register(agent, f"web-{i}", b)
    lb = lb_factory(registry_args(agent) + ["-check-inter", "500ms", "-check-fall", "2"])
    wait_registry_set(lb)
    wait_until(lambda: len(spread(lb.port, 6)) == 3, 5, what="three instances served")
    load = Load(lb.port, threads=2, seconds=20).start()
    try:
        time.sleep(1.0)
        bs[1].kill9()
        t_kill = time.monotonic()
        time.sleep(2.0)
    finally:
        load.stop()
    statuses = {}
    for r in load.results:
        statuses[r[1]] = statuses.get(r[1], 0) + 1
    print(f"\n{len(load.results)} requests, statuses {statuses}, errors {len(load.errors)}")
    assert not load.errors, f"requests lost: {load.errors[:5]}"
    assert statuses.keys() == {200}, statuses
    after = [r for r in load.results if r[0] > t_kill + 0.1]
    assert len(after) > 50 and {r[2] for r in after} <= {str(bs[0].port), str(bs[2].port)}


# ---------------------------------------------------------------- bad input


def raw_exchange(port, data, timeout=3.0):
    """Sends data; reads until the peer closes. Returns (status, raw bytes, closed)."""
    buf = b""
    closed = False
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(data)
        deadline = time.monotonic() + timeout
        for _ in range(1000):
            if time.monotonic() >= deadline:
                break
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not b:
                closed = True
                break
            buf += b
    status = int(buf.split(b" ", 2)[1]) if buf.startswith(b"HTTP/1.") else None
    return status, buf, closed


SMUGGLING = {
    "cl_and_te": b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nG",
    "duplicate_cl": b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                    b"Content-Length: 4\r\n\r\nabcd",
    "space_before_colon": b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length : 4\r\n\r\nabcd",
    "obs_fold": b"GET / HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n  b\r\n\r\n",
    "bad_chunk_size": b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"zz\r\nabc\r\n0\r\n\r\n",
    "bad_header_name": b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n",
    "bad_method": b"G@T / HTTP/1.1\r\nHost: x\r\n\r\n",
    "two_hosts": b"GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n",
    # HAProxy 2.6: an absolute-form target whose authority is not the Host names two servers
    "authority_not_host": b"GET http://a.example/ HTTP/1.1\r\nHost: b.example\r\n\r\n",
    # ... and its authority ends only at '/': "a.example?x" is not "a.example"
    "authority_to_slash": b"GET http://a.example?x HTTP/1.1\r\nHost: a.example\r\n\r\n",
    # ... and a scheme without "//" is an authority of its own, "http:"
    "scheme_without_slashes": b"GET http:/x HTTP/1.1\r\nHost: a.example\r\n\r\n",
}


@pytest.fixture
def one_lb(backends, lb_factory):
    bs = backends(1)
    return lb_factory(static_args(bs)), bs[0]


def test_smuggling_attempts_get_400_and_close(one_lb):
    lb, b = one_lb
    for name, data in SMUGGLING.items():
        st, raw, closed = raw_exchange(lb.port, data)
        assert st == 400, f"{name}: expected 400, got {raw[:200]!r}"
        assert closed, f"{name}: the connection must close after the 400"
        assert b"ok from" not in raw and raw.count(b"HTTP/1.") == 1, f"{name}: {raw!r}"
    assert lb.running()
    assert lb.get("/")[0] == 200


def test_oversized_head_gets_431(one_lb):
    lb, _ = one_lb
    head = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"a" * 70_000 + b"\r\n\r\n"
    buf = b""
    with socket.create_connection((HOST, lb.port), timeout=3) as s:
        s.setblocking(False)
        sent = 0
        deadline = time.monotonic() + 5
        for _ in range(100000):  # send in pieces, stop as soon as the proxy answers
            if time.monotonic() >= deadline:
                break
            try:
                b = s.recv(65536)
                if not b:
                    break
                buf += b
                continue
            except BlockingIOError:
                pass
            except ConnectionResetError:
                break
            if sent < len(head):
                try:
                    sent += s.send(head[sent:sent + 4096])
                except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                    pass
            else:
                time.sleep(0.01)
    assert buf.startswith(b"HTTP/1.1 431") or buf.startswith(b"HTTP/1.0 431"), buf[:200]
    assert lb.get("/")[0] == 200


def test_forwarded_heads_stay_within_the_limits(one_lb):
    """The proxy adds X-Forwarded-For, X-Forwarded-Proto and Via: it takes a head only if the
    result is within the limits a server like itself (or Python's: 100 fields) accepts."""
    lb, b = one_lb

    def head(fields):
        extra = b"".join(b"X-F%d: v\r\n" % i for i in range(fields - 2))
        return b"GET / HTTP/1.1\r\nHost: x\r\n" + extra + b"Connection: close\r\n\r\n"

    st, raw, _ = raw_exchange(lb.port, head(96))
    assert st == 200 and b"ok from" in raw, raw[:200]
    served = b.stats()["served"]
    st, raw, closed = raw_exchange(lb.port, head(97))
    assert st == 431 and closed, raw[:200]
    assert b.stats()["served"] == served  # answered by the proxy: nothing reached the server
    assert lb.get("/")[0] == 200


def test_malformed_backend_response_gives_502(one_lb):
    lb, _ = one_lb
    st, _, body = lb.get("/bad")
    assert st == 502, (st, body)
    assert lb.running()
    assert lb.get("/")[0] == 200


class _Replay:
    """What http.client.HTTPResponse reads from: bytes already received, in one file that
    each answer, once read, leaves open for the next."""

    class _File(io.BytesIO):
        def close(self):
            pass

    def __init__(self, data):
        self.fp = self._File(data)

    def makefile(self, mode):
        return self.fp


def recv_until_close(s, rounds=10000):
    """What s receives until its peer closes (or rounds reads)."""
    data = b""
    for _ in range(rounds):
        b = s.recv(65536)
        if not b:
            break
        data += b
    return data


def recv_head(s):
    """What s receives up to the end of a head at least (the proxy must not close first)."""
    got = b""
    for _ in range(1000):
        if b"\r\n\r\n" in got:
            break
        b = s.recv(65536)
        assert b, "the proxy closed the connection"
        got += b
    return got


def split_exchange(port, pieces):
    """Sends pieces with a pause between them (each reaches the proxy in reads of its own),
    reads until the proxy closes, and parses the answers: [(status, body)]."""
    with socket.create_connection((HOST, port), timeout=5) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for p in pieces:
            s.sendall(p)
            time.sleep(0.002)
        data = recv_until_close(s, 1000)
    replay, answers = _Replay(data), []
    for _ in range(100):
        if replay.fp.tell() == len(data):
            break
        r = http.client.HTTPResponse(replay)
        r.begin()
        answers.append((r.status, r.read()))
    return answers


PIPELINE = (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
            b"POST /echo?chunked=1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n"
            b"GET /status/404 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")


def test_pipelined_requests_split_at_every_byte(one_lb):
    """Four pipelined requests (no body, a Content-Length body, a chunked body with a chunk
    extension, then Connection: close) cut in two at every byte, then sent a byte at a time:
    each is forwarded whole, once, and answered in order."""
    lb, b = one_lb
    want = [(200, f"ok from {b.port}\n".encode()), (200, b"hello"), (200, b"abcde"),
            (404, f"status 404 from {b.port}\n".encode())]
    for cut in range(1, len(PIPELINE)):
        assert split_exchange(lb.port, [PIPELINE[:cut], PIPELINE[cut:]]) == want, cut
    assert split_exchange(lb.port, [PIPELINE[i:i + 1] for i in range(len(PIPELINE))]) == want
    assert b.stats()["served"] == 4 * len(PIPELINE)


def tcp_queues():
    """{(local port, remote port): (send queue, receive queue)} of the established loopback
    TCP connections (/proc/net/tcp): the bytes the kernel holds on each side."""
    out = {}
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, remote, state = fields[1], fields[2], fields[3]
            if state != "01" or not local.startswith("0100007F") or \
                    not remote.startswith("0100007F"):
                continue
            tx, rx = (int(x, 16) for x in fields[4].split(":"))
            out[(int(local.split(":")[1], 16), int(remote.split(":")[1], 16))] = (tx, rx)
    return out


STALL_CAP = 8 << 20  # bytes each end offers: far more than the proxy may hold
STALL_CHUNK = b"x" * 65536
HEAD_END = b"\r\n\r\n"


class StalledExchange:
    """A client and a test-owned server talking through the proxy, each writing as much as it
    can and neither reading: the request is followed by bytes the proxy must not take in whole
    (pipelined bytes, or a body the server never reads), the answer by a body the client
    never reads. Every byte each end hands its kernel is counted, so that what the proxy holds
    is what was sent less what the kernel queues of the four sockets hold (tcp_queues)."""

    def __init__(self, lb_port, listener, head):
        self.head = head
        self.cli = socket.socket()
        self.cli.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.cli.settimeout(10)
        self.cli.connect((HOST, lb_port))
        self.cli.sendall(head)
        self.cli_sent = len(head)
        self.srv, (_, self.up_port) = listener.accept()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        self.srv.settimeout(10)
        got = recv_head(self.srv)  # the proxy's head for the server, and any body after it
        assert got.startswith(head.split(b"\r\n")[0]), f"not the request sent: {got[:200]!r}"
        self.srv_recv, self.up_head = len(got), got.index(HEAD_END) + len(HEAD_END)
        self.rsp_head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (1 << 40)
        self.srv.sendall(self.rsp_head)
        self.srv_sent = len(self.rsp_head)
        self.cli.setblocking(False)
        self.srv.setblocking(False)

    @staticmethod
    def _offer(s, sent):
        """Sends what the socket takes now, up to STALL_CAP in all: the bytes taken."""
        n = 0
        for _ in range(STALL_CAP // len(STALL_CHUNK) + 1):
            if sent + n >= STALL_CAP:
                break
            try:
                k = s.send(STALL_CHUNK[:STALL_CAP - sent - n])
            except BlockingIOError:
                break
            n += k
        return n

    def offer(self):
        a = self._offer(self.cli, self.cli_sent)
        b = self._offer(self.srv, self.srv_sent)
        self.cli_sent += a
        self.srv_sent += b
        return a + b

    def held(self, lb_port, queues):
        """(request bytes, answer bytes) the proxy holds, from what each end sent and what the
        kernel queues: the proxy turns the client's head into up_head bytes for the server
        and the server's head into one it writes the client (read with MSG_PEEK)."""
        cli_port = self.cli.getsockname()[1]
        srv_port = self.srv.getsockname()[1]
        cli_tx, cli_rx = queues[(cli_port, lb_port)]
        front_tx, front_rx = queues[(lb_port, cli_port)]
        up_tx, up_rx = queues[(self.up_port, srv_port)]
        srv_tx, srv_rx = queues[(srv_port, self.up_port)]
        seen = self.cli.recv(65536, socket.MSG_PEEK)
        assert HEAD_END in seen, f"the client has no answer head: {seen[:200]!r}"
        lb_head = seen.index(HEAD_END) + len(HEAD_END)
        req = (self.cli_sent - len(self.head) - cli_tx - front_rx
               - (self.srv_recv - self.up_head) - up_tx - srv_rx)
        rsp = (self.srv_sent - len(self.rsp_head) - srv_tx - up_rx
               - (front_tx + cli_rx - lb_head))
        return req, rsp

    def close(self):
        self.cli.close()
        self.srv.close()


# io_uring (docs/lb.md, "Socket I/O"): a socket also queues up to 16 KiB of sends, and what
# its receive pulled in ahead of the proxy waits in the worker's buffer pool, 1 MiB in all.
URING_SEND_QUEUE = 16 << 10
URING_POOL = 1 << 20


@pytest.mark.parametrize("backend", ["epoll", "uring"])
def test_clients_that_never_read_hold_the_proxy_to_its_buffers(lb_factory, backend):
    """Clients that never read their answers, from a server that never reads the rest of the
    requests: the proxy holds a bounded number of bytes of each, whatever the kernel buffers
    take. Each direction has two bounds (docs/lb.md): a write the receiver has not taken stops
    the proxy reading its source, so it holds at most one read of it (16 KiB); and what the
    client sends after its request (pipelined) waits in the request buffer (64 KiB) until the
    answer is out. The bytes are counted, not estimated from the process's size: what each end
    sent, less what the four sockets' kernel queues hold, is what the proxy holds. With
    io_uring add the send queue per socket and, over all sockets, the worker's pool."""
    listener = socket.create_server((HOST, 0))
    listener.settimeout(10)
    exchanges = []
    try:
        # no health checks: the listener's connections are the proxied requests alone
        lb = lb_with_io(lb_factory, ["-server", f"{HOST}:{listener.getsockname()[1]}",
                                     "-check=false", "-workers", "1"], backend)
        pipelined = b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"
        unread_body = b"POST /stream HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (1 << 40)
        for head in (pipelined, unread_body) * 2:
            exchanges.append(StalledExchange(lb.port, listener, head))
        # Both ends write until neither can: 10 quiet rounds in a row, 30 s at most.
        quiet, deadline = 0, time.monotonic() + 30
        for _ in range(3000):
            moved = sum(x.offer() for x in exchanges)
            quiet = 0 if moved else quiet + 1
            if quiet >= 10 or time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        assert quiet >= 10, "the exchanges never stalled"
        queues = tcp_queues()
        held = [(x.head.split()[0].decode(), *x.held(lb.port, queues)) for x in exchanges]
        print("held (method, request bytes, answer bytes):", held)
        uring = backend == "uring"
        ahead = 0  # what io_uring's receives took ahead, past the epoll bounds, in the pool
        for method, req, rsp in held:
            rsp_limit = (32 << 10) + (URING_SEND_QUEUE if uring else 0)
            req_limit = (64 << 10) if method == "GET" else (32 << 10)
            if uring:
                ahead += max(0, rsp - rsp_limit) + max(0, req - req_limit)
                continue
            assert rsp <= rsp_limit, f"the proxy holds {rsp} bytes of an unread answer: {held}"
            assert req <= req_limit, f"the proxy holds {req} bytes of a {method}'s rest: {held}"
        assert ahead <= URING_POOL, f"the proxy holds {ahead} bytes past its buffers: {held}"
        assert lb.running()
    finally:
        for x in exchanges:
            x.close()
        listener.close()
    assert lb.stats_get(";csv")[0] == 200


@pytest.mark.parametrize("backend", ["epoll", "uring"])
def test_a_connection_that_takes_the_read_ahead_leaves_the_worker_serving(lb_factory, backend):
    """One client pipelines megabytes behind a request its server never answers: with io_uring
    its receive can take what arrives ahead of the proxy into the worker's buffer pool, up to
    most of the 1 MiB (measured: 0.9 MiB in one run of two), as nothing bounds it per
    connection: the kernel fills the pool from the socket before a cancel could land. Another
    client of the same worker is still served: a socket that finds the pool three-quarters used
    reads with recv() (docs/lb.md), so the pool bounds the memory and costs the others system
    calls, never their answers."""
    listener = socket.create_server((HOST, 0))
    listener.settimeout(10)
    hog = other = srv = None
    try:
        lb = lb_with_io(lb_factory, ["-server", f"{HOST}:{listener.getsockname()[1]}",
                                     "-check=false", "-workers", "1"], backend)
        hog = StalledExchange(lb.port, listener, b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        quiet, deadline = 0, time.monotonic() + 30  # until neither end can write: 30 s at most
        for _ in range(3000):
            quiet = 0 if hog.offer() else quiet + 1
            if quiet >= 10 or time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        print("held by the hog (request bytes, answer bytes):", hog.held(lb.port, tcp_queues()))
        for i in range(3):
            other = socket.create_connection((HOST, lb.port), timeout=10)
            other.sendall(b"GET /other HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            srv, _ = listener.accept()
            srv.settimeout(10)
            assert recv_head(srv).startswith(b"GET /other "), i
            srv.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc")
            assert recv_until_close(other).endswith(b"\r\n\r\nabc"), i
            other.close()
            srv.close()
            other = srv = None
        assert lb.running()
    finally:
        for s in (hog, other, srv, listener):
            if s is not None:
                s.close()


def test_requests_without_host_are_passed_on_as_haproxy_does(one_lb):
    """HAProxy 2.6 passes an HTTP/1.1 request without Host on as it is; one from HTTP/1.0 goes
    on as HTTP/1.1, so it gets the empty Host HTTP/1.1 asks for. An absolute-form target
    whose authority is the Host (in any case) is passed on, and a Host line repeating the
    first goes no further."""
    lb, b = one_lb
    for version, want in ((b"1.1", []), (b"1.0", [""])):
        st, raw, _ = raw_exchange(lb.port, b"GET /headers HTTP/" + version +
                                  b"\r\nConnection: close\r\n\r\n")
        assert st == 200, raw[:300]
        pairs = json.loads(raw.split(b"\r\n\r\n", 1)[1])
        assert values(pairs, "Host") == want, (version, pairs)
    served = b.stats()["served"]
    st, raw, _ = raw_exchange(lb.port, b"GET http://A.example/ HTTP/1.1\r\nHost: a.EXAMPLE\r\n"
                                       b"Connection: close\r\n\r\n")
    assert st != 400 and b.stats()["served"] == served + 1, raw[:300]
    # a Host line repeating the first (in any case) is dropped, as HAProxy drops it
    st, raw, _ = raw_exchange(lb.port, b"GET /headers HTTP/1.1\r\nHost: a.example\r\n"
                                       b"HOST: A.example\r\nConnection: close\r\n\r\n")
    assert st == 200, raw[:300]
    assert values(json.loads(raw.split(b"\r\n\r\n", 1)[1]), "Host") == ["a.example"]
    # and the stats page, HAProxy's too, is served without Host
    st, raw, _ = raw_exchange(lb.stats_port, b"GET /stats;csv HTTP/1.1\r\n"
                                             b"Authorization: Basic YWRtaW46YWRtaW4=\r\n"
                                             b"Connection: close\r\n\r\n")
    assert st == 200, raw[:300]


@pytest.mark.parametrize("backend", ["epoll", "uring"])
def test_sigterm_is_not_held_by_a_client_that_never_reads(lb_factory, backend):
    """SIGTERM while a client never reads a large answer: the drain waits for that request until
    its deadline (-timeout-server), closes it and exits. With io_uring its close then sent what
    the socket's queue held for up to 5 s more, to a peer that never reads; at shutdown that is
    cut (as HAProxy's hard stop drops what the peers have not taken). Another client, whose
    answer comes during the drain and who shut its sending side down (so the proxy closes as
    soon as the answer is written, its tail still in the queue), gets every byte. Whether a
    stalled socket's queue holds bytes at the close depends on how the proxy's reads fell (a
    write past the queue's bound waits uncopied), so four clients stall: one is enough."""
    listener = socket.create_server((HOST, 0))
    listener.settimeout(10)
    stalled, other, srv = [], None, None
    try:
        lb = lb_with_io(lb_factory, ["-server", f"{HOST}:{listener.getsockname()[1]}",
                                     "-check=false", "-workers", "1", "-timeout-server", "3s"],
                        backend)
        for _ in range(4):
            stalled.append(StalledExchange(lb.port, listener,
                                           b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n"))
        other = socket.create_connection((HOST, lb.port), timeout=10)
        other.sendall(b"GET /other HTTP/1.1\r\nHost: x\r\n\r\n")
        other.shutdown(socket.SHUT_WR)
        srv, _ = listener.accept()
        srv.settimeout(10)
        head = recv_head(srv)
        assert head.startswith(b"GET /other "), head[:200]
        lb.signal(signal.SIGTERM)
        t_term = time.monotonic()
        body = bytes(range(256)) * 800  # 200 kB: many sends, the last ones queued at the close
        srv.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        answer = recv_until_close(other)
        assert answer.endswith(HEAD_END + body), f"{len(answer)} bytes: {answer[:200]!r}"
        # the server keeps sending until the lb closes its side: only the clients stall it
        sending = list(stalled)
        for _ in range(1000):
            for x in list(sending):
                try:
                    x.srv_sent += x._offer(x.srv, x.srv_sent)
                except OSError:
                    sending.remove(x)
            if lb.proc.poll() is not None or time.monotonic() - t_term > 30:
                break
            time.sleep(0.05)
        rc = lb.proc.wait(timeout=10)
        took = time.monotonic() - t_term
        print(f"\nexit {rc} {took:.2f}s after SIGTERM")
        assert rc == 0, f"exit status {rc}\n{lb.log_tail()}"
        # the deadline is 3 s; a flush to the client that never reads would add 5 s
        assert took < 6.5, f"mesh lb took {took:.1f}s to stop\n{lb.log_tail()}"
    finally:
        for x in stalled:
            x.close()
        for s in (other, srv, listener):
            if s is not None:
                s.close()
