"""Status and operator endpoints."""


def test_leader(agent):
    """Leader -> JSON string "<ip>:8300" (node-consul expects "127.0.0.1:8300")."""
    r = agent.get("/v1/status/leader")
    assert r.status == 200
    assert r.content_type == "application/json"
    assert r.json() == "127.0.0.1:8300"


def test_leader_accepts_dc(agent):
    """Dc accepted."""
    assert agent.get_json("/v1/status/leader?dc=dc1") == "127.0.0.1:8300"


def test_peers(agent):
    """Peers -> ["127.0.0.1:8300"] (the one raft voter)."""
    r = agent.get("/v1/status/peers")
    assert r.status == 200
    assert r.content_type == "application/json"
    assert r.json() == ["127.0.0.1:8300"]


def test_raft_configuration(agent):
    """One server, the leader and a voter, ProtocolVersion "3", with an Index."""
    for q in ("", "?stale"):
        r = agent.get("/v1/operator/raft/configuration" + q)
        assert r.status == 200, r
        assert r.content_type == "application/json"
        body = r.json()
        assert set(body) >= {"Servers", "Index"}
        assert isinstance(body["Index"], int)
        servers = body["Servers"]
        assert len(servers) == 1
        s = servers[0]
        assert s["Node"] == "node1"
        assert s["Address"] == "127.0.0.1:8300"
        assert s["Leader"] is True
        assert s["Voter"] is True
        assert s["ProtocolVersion"] == "3"
        assert isinstance(s["ID"], str) and s["ID"]


def test_raft_configuration_id_matches_node_id(agent):
    """The server ID is the node's ID (as in /v1/catalog/nodes)."""
    node_id = agent.get_json("/v1/catalog/nodes")[0]["ID"]
    assert agent.get_json("/v1/operator/raft/configuration")["Servers"][0]["ID"] == node_id
