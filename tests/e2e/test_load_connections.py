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
