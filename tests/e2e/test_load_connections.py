"""End-to-end tests of the connections `mesh load run` opens, counted by the test server of
test_load.py (one client port per connection): each virtual user's own, as Artillery gives
each user an agent of one socket, or config.http.pool's, shared by the users."""

from test_load import one_flow, run_load, run_report, server  # noqa: F401

USERS = 20
# every user sleeps on the server, so the users overlap and each would want a connection
FLOW = ['get: {url: "/sleep?ms=50"}', 'get: {url: "/a"}']


def test_each_user_has_a_connection_of_its_own(mesh, tmp_path, server):
    script = one_flow(server.url, f"[{{duration: 1, arrivalCount: {USERS}}}]", FLOW)
    rep, out = run_report(mesh, tmp_path, script)
    c = rep["aggregate"]["counters"]
    assert c["vusers.completed"] == USERS and c["http.requests"] == 2 * USERS, c
    with server.lock:
        assert len(server.peers) == USERS, server.peers


def test_http_pool_caps_the_connections_users_share(mesh, tmp_path, server):
    """`config.http.pool: 2`: the 20 users' 40 requests share two keep-alive connections, as
    Artillery's pooled agent has them; requests wait for a free one rather than fail."""
    script = one_flow(server.url, f"[{{duration: 1, arrivalCount: {USERS}}}]", FLOW,
                      "  http: {pool: 2}\n")
    rep, out = run_report(mesh, tmp_path, script)
    c = rep["aggregate"]["counters"]
    assert c["vusers.completed"] == USERS and c["http.requests"] == 2 * USERS, c
    assert c["http.codes.200"] == 2 * USERS, c
    with server.lock:
        assert 1 <= len(server.peers) <= 2, server.peers
    # a connection the server closes leaves the pool, and a new one takes its place
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 6}]",
                      ['get: {url: "/close"}', 'get: {url: "/drop"}', 'get: {url: "/a"}'],
                      '  http: {pool: "1"}\n')
    with server.lock:
        server.peers.clear()
    rep, out = run_report(mesh, tmp_path, script)
    c = rep["aggregate"]["counters"]
    assert c["vusers.completed"] == 6 and c["http.codes.200"] == 18, c
    with server.lock:
        assert len(server.peers) == 13, server.peers  # one per close, and the last one kept


def test_http_pool_and_max_sockets_are_read_as_artillery_reads_them(mesh, tmp_path, server):
    """Each worker thread has a pool of its own, as each Artillery worker has its agent;
    `maxSockets`, which Artillery's engine never reads, changes nothing and says so."""
    script = one_flow(server.url, f"[{{duration: 1, arrivalCount: {USERS}}}]", FLOW,
                      "  http: {pool: 2}\n")
    rep, out = run_report(mesh, tmp_path, script, "--workers", "2")
    assert rep["aggregate"]["counters"]["vusers.completed"] == USERS
    with server.lock:
        assert 2 <= len(server.peers) <= 4, server.peers
        server.peers.clear()
    script = one_flow(server.url, f"[{{duration: 1, arrivalCount: {USERS}}}]", FLOW,
                      "  http: {maxSockets: 2}\n")
    code, out, err = run_load(mesh, tmp_path, script)
    assert code == 0, err
    assert ("test.yml:4: warning: config.http.maxSockets does nothing (as in Artillery): "
            "config.http.pool caps the connections") in err, err
    with server.lock:
        assert len(server.peers) == USERS, server.peers
    for bad, why in (("-1", "a number from 0 to 1e9"), ("two", "a number from 0 to 1e9"),
                     ("2.5", "want a whole number of connections")):
        script = one_flow(server.url, "[{duration: 1, arrivalCount: 1}]", FLOW,
                          f"  http: {{pool: {bad}}}\n")
        code, out, err = run_load(mesh, tmp_path, script)
        assert code == 2 and "test.yml:4: config.http.pool" in err and why in err, err


PARALLEL = ['get: {url: "/a"}',
            'parallel: [{get: {url: "/sleep?ms=100&n=1"}}, {get: {url: "/sleep?ms=100&n=2"}}, '
            '{get: {url: "/json", capture: {json: "$.items[0].id", as: id}}}, '
            '{loop: [{think: 0.05}], count: 2}]',
            'get: {url: "/b?id={{ id }}"}']


def test_parallel_steps_take_turns_on_the_users_connection(mesh, tmp_path, server):
    """A parallel step's steps run at once, sharing the user's variables (a capture in one is
    seen after the step); the step ends when all have. Without http.pool their requests take
    turns on the user's one connection, as Artillery's agent of one socket has them."""
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 2}]", PARALLEL)
    rep, out = run_report(mesh, tmp_path, script)
    c = rep["aggregate"]["counters"]
    assert c["vusers.created"] == 2 and c["vusers.completed"] == 2, c
    assert c["http.requests"] == 10 and c["http.codes.200"] == 10, c
    with server.lock:
        order = {}
        for _, _, path, _, _ in server.requests:
            order.setdefault(path.split("?")[0], []).append(path)
        assert len(server.peers) == 2, server.peers
    assert order["/b"] == ["/b?id=42", "/b?id=42"], order
    assert len(order["/sleep"]) == 4 and len(order["/json"]) == 2, order


def test_parallel_steps_spread_over_the_pool(mesh, tmp_path, server):
    """With http.pool the branches' requests go over as many connections as are free: three
    requests in flight at once open three."""
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 1}]", PARALLEL,
                      "  http: {pool: 10}\n")
    rep, out = run_report(mesh, tmp_path, script)
    c = rep["aggregate"]["counters"]
    assert c["vusers.completed"] == 1 and c["http.requests"] == 5, c
    with server.lock:
        assert len(server.peers) == 3, server.peers


def test_a_failed_parallel_step_fails_the_user(mesh, tmp_path, server):
    """The first branch that fails fails the step and the user, as async's parallel does: the
    step after it never runs. A `limit`, which Artillery's schema refuses, is refused."""
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 1}]",
                      ['parallel: [{get: {url: "/a", capture: {json: "$.nope", as: x}}}, '
                       '{get: {url: "/sleep?ms=50"}}]', 'get: {url: "/after"}'])
    rep, out = run_report(mesh, tmp_path, script)
    c = rep["aggregate"]["counters"]
    assert c["vusers.failed"] == 1 and c["errors.Failed capture or match"] == 1, c
    with server.lock:
        assert not [r for r in server.requests if r[2] == "/after"]
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 1}]",
                      ['parallel: [{get: {url: "/a"}}]\n        limit: 2'])
    code, out, err = run_load(mesh, tmp_path, script)
    assert code == 2 and "test.yml:7: parallel.limit: unknown key" in err, err
