"""Health endpoints (/v1/health/*) and serfHealth."""

from helpers import assert_query_meta, assert_text_error

HEALTH_CHECK_FIELDS = {"Node", "CheckID", "Name", "Status", "Notes", "Output", "ServiceID",
                       "ServiceName", "ServiceTags", "Type", "Interval", "Timeout", "ExposedPort",
                       "Definition", "CreateIndex", "ModifyIndex"}


def ids(checks):
    return [c["CheckID"] for c in checks]


def test_health_service_entry_shape(agent):
    """{Node, Service, Checks}; Checks = node checks (serfHealth) + this instance's."""
    agent.register_service({"ID": "w1", "Name": "web", "Port": 80, "Check": {"TTL": "30s"}})
    agent.register_service({"ID": "w2", "Name": "web", "Port": 81, "Check": {"TTL": "30s"}})
    r = agent.get("/v1/health/service/web")
    assert r.status == 200 and r.content_type == "application/json"
    assert_query_meta(r)
    entries = r.json()
    assert [e["Service"]["ID"] for e in entries] == ["w1", "w2"]
    for e in entries:
        assert set(e) == {"Node", "Service", "Checks"}
        assert e["Node"]["Node"] == "node1"
        assert e["Node"]["Address"] == "127.0.0.1"
        sid = e["Service"]["ID"]
        assert e["Service"]["Service"] == "web"
        assert sorted(ids(e["Checks"])) == sorted(["serfHealth", f"service:{sid}"])
        for c in e["Checks"]:
            assert HEALTH_CHECK_FIELDS <= set(c), f"missing {HEALTH_CHECK_FIELDS - set(c)}"


def test_health_service_passing_filter(agent):
    """?passing drops entries with any non-passing check (warning too); any bool form."""
    agent.register_service({"ID": "w1", "Name": "web", "Check": {"CheckID": "c1", "TTL": "30s"}})
    agent.register_service({"ID": "w2", "Name": "web",
                            "Check": {"CheckID": "c2", "TTL": "30s", "Status": "passing"}})

    def passing(q="?passing"):
        return [e["Service"]["ID"] for e in agent.get_json("/v1/health/service/web" + q)]

    assert passing() == ["w2"]
    for q in ("?passing=1", "?passing=true", "?passing="):
        assert passing(q) == ["w2"], q
    assert passing("?passing=false") == ["w1", "w2"]
    assert passing("") == ["w1", "w2"]
    agent.put_ok("/v1/agent/check/pass/c1")
    assert passing() == ["w1", "w2"]
    agent.put_ok("/v1/agent/check/warn/c2")
    assert passing() == ["w1"]


def test_health_service_bad_passing_is_400(agent):
    """A bad ?passing value -> 400 "Invalid value for ?passing"."""
    r = agent.get("/v1/health/service/web?passing=maybe")
    assert_text_error(r, 400, contains="Invalid value for ?passing")


def test_health_service_tag_filter(agent):
    """?tag repeatable, AND, case-insensitive."""
    agent.register_service({"ID": "w1", "Name": "web", "Tags": ["Blue", "v2"]})
    agent.register_service({"ID": "w2", "Name": "web", "Tags": ["green", "v2"]})

    def sel(q):
        return [e["Service"]["ID"] for e in agent.get_json("/v1/health/service/web" + q)]

    assert sel("?tag=blue") == ["w1"]
    assert sel("?tag=BLUE&passing") == ["w1"]
    assert sel("?tag=v2") == ["w1", "w2"]
    assert sel("?tag=v2&tag=GREEN") == ["w2"]
    assert sel("?tag=red") == []


def test_health_service_unknown_is_empty(agent):
    """Unknown service -> [] with index headers."""
    r = agent.get("/v1/health/service/nope")
    assert r.status == 200 and r.json() == []
    assert_query_meta(r)


def test_health_checks_service_level_only(agent):
    """All checks of the service's instances, no node checks."""
    agent.register_service({"ID": "w1", "Name": "web", "Check": {"CheckID": "c1", "TTL": "30s"}})
    agent.register_service({"ID": "w2", "Name": "web", "Check": {"CheckID": "c2", "TTL": "30s"}})
    agent.register_service({"ID": "d1", "Name": "db", "Check": {"CheckID": "c3", "TTL": "30s"}})
    agent.put_ok("/v1/agent/check/register", {"Name": "nodechk", "TTL": "30s"})
    r = agent.get("/v1/health/checks/web")
    assert r.status == 200
    assert_query_meta(r)
    checks = r.json()
    assert sorted(ids(checks)) == ["c1", "c2"]
    assert {c["ServiceName"] for c in checks} == {"web"}
    assert agent.get_json("/v1/health/checks/nope") == []


def test_health_checks_in_check_id_order(agent):
    """A service's checks come in Consul's order, as a node's do: by CheckID, case-insensitively
    ("alpha" before "Zed")."""
    agent.register_service({"ID": "w1", "Name": "web",
                            "Checks": [{"CheckID": "Zed", "TTL": "30s"},
                                       {"CheckID": "alpha", "TTL": "30s"}]})
    assert ids(agent.get_json("/v1/health/checks/web")) == ["alpha", "Zed"]
    assert ids(agent.get_json("/v1/health/state/critical")) == ["alpha", "Zed"]


def test_health_node_serf_health_first(agent):
    """Ordered by CheckID, so serfHealth comes before service:<id> checks (what
    node-consul expects); passing, with Consul's texts."""
    agent.register_service({"ID": "w1", "Name": "web", "Check": {"TTL": "30s"}})
    agent.put_ok("/v1/agent/check/register", {"Name": "zzz", "TTL": "30s"})
    r = agent.get("/v1/health/node/node1")
    assert r.status == 200
    assert_query_meta(r)
    checks = r.json()
    assert checks[0]["CheckID"] == "serfHealth"
    s = checks[0]
    assert s["Name"] == "Serf Health Status"
    assert s["Status"] == "passing"
    assert s["Output"] == "Agent alive and reachable"
    assert s["ServiceID"] == ""
    assert s["Type"] == ""
    assert s["Node"] == "node1"
    assert ids(checks) == ["serfHealth", "service:w1", "zzz"]


def test_health_node_ordered_by_check_id(agent):
    """Lists are ordered by node then CheckID."""
    for cid in ("b-chk", "zed", "aaa", "t1"):
        agent.put_ok("/v1/agent/check/register", {"Name": cid, "TTL": "30s"})
    got = ids(agent.get_json("/v1/health/node/node1"))
    assert got == ["aaa", "b-chk", "serfHealth", "t1", "zed"], got


def test_health_node_unknown_is_empty(agent):
    """Unknown node -> []."""
    r = agent.get("/v1/health/node/nope")
    assert r.status == 200 and r.json() == []
    assert_query_meta(r)


def test_health_state_node_consul_expectation(agent):
    """Fresh server + one service with a TTL check: critical has 1, any has 2."""
    agent.register_service({"ID": "w1", "Name": "web", "Check": {"TTL": "30s"}})
    crit = agent.get("/v1/health/state/critical")
    assert crit.status == 200
    assert_query_meta(crit)
    assert ids(crit.json()) == ["service:w1"]
    anyst = agent.get_json("/v1/health/state/any")
    assert len(anyst) == 2
    assert sorted(ids(anyst)) == ["serfHealth", "service:w1"]
    assert ids(agent.get_json("/v1/health/state/passing")) == ["serfHealth"]
    assert agent.get_json("/v1/health/state/warning") == []
    agent.put_ok("/v1/agent/check/warn/service:w1")
    assert ids(agent.get_json("/v1/health/state/warning")) == ["service:w1"]
    assert agent.get_json("/v1/health/state/critical") == []


def test_health_state_bad_state_is_400(agent):
    """State outside any|passing|warning|critical -> 400."""
    r = agent.get("/v1/health/state/sleepy")
    assert_text_error(r, 400)


def test_health_check_definition_fields(agent):
    """HealthCheck carries Type, Interval, Timeout and a Definition object."""
    agent.put_ok("/v1/agent/check/register",
                 {"Name": "tcp", "TCP": "127.0.0.1:1", "Interval": "30s", "Timeout": "2s"})
    c = [x for x in agent.get_json("/v1/health/node/node1") if x["CheckID"] == "tcp"][0]
    assert HEALTH_CHECK_FIELDS <= set(c)
    assert c["Type"] == "tcp"
    assert c["Interval"] == "30s"
    assert c["Timeout"] == "2s"
    assert isinstance(c["Definition"], dict)
    assert c["ServiceTags"] == []
