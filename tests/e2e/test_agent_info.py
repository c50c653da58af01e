"""The agent describing itself as Consul does (issue 15 items 4 and 10): /v1/agent/self's
Stats, Config and DebugConfig with real values, /v1/agent/version, /v1/agent/host,
/v1/agent/metrics (JSON and Prometheus) and /v1/health/ingress."""
import re

from helpers import wait_until


def test_self_stats_are_real(agent_factory, tmp_path):
    """Stats count what the agent holds and name the leader; DebugConfig has SessionTTLMin."""
    agent = agent_factory(data_dir=tmp_path / "data")
    agent.register_service({"ID": "w1", "Name": "web", "Check": {"TTL": "30s"}})
    agent.put_true("/v1/kv/k", "v")
    self = agent.get_json("/v1/agent/self")
    stats = self["Stats"]
    assert stats["agent"]["services"] == "1" and stats["agent"]["check_ttls"] == "1"
    assert stats["consul"]["server"] == "true" and stats["consul"]["leader"] == "true"
    assert stats["consul"]["leader_addr"] == agent.get_json("/v1/status/leader")
    raft = stats["raft"]
    assert raft["state"] == "Leader"
    index = agent.get("/v1/kv/k").index
    assert int(raft["applied_index"]) >= index and int(raft["last_log_index"]) >= index
    assert stats["runtime"]["os"] == "linux" and int(stats["runtime"]["cpu_count"]) >= 1
    assert stats["build"]["version"] == self["Config"]["Version"]
    assert all(isinstance(v, str) for section in stats.values() for v in section.values())
    cfg = self["Config"]
    for k in ("Datacenter", "NodeName", "NodeID", "Server", "Version", "Revision",
              "PrimaryDatacenter"):
        assert k in cfg, k
    assert re.fullmatch(r"[0-9a-f-]{36}", cfg["NodeID"])
    debug = self["DebugConfig"]
    assert debug["SessionTTLMin"] == "10s"
    assert debug["NodeName"] == "node1" and debug["ServerMode"] is True
    assert debug["HTTPPort"] == agent.port
    assert debug["DataDir"] == str(tmp_path / "data")


def test_client_stats_know_their_servers(agent_factory):
    """A client agent reports consul.known_servers once it has joined, and no raft section."""
    server = agent_factory(node="srv")
    client = agent_factory(node="web1", server=False,
                           extra_args=["-retry-join", f"127.0.0.1:{server.port}"])
    wait_until(lambda: client.get_json("/v1/agent/self")["Stats"]["consul"].get("known_servers")
               == "1", 10, what="known_servers 1")
    stats = client.get_json("/v1/agent/self")["Stats"]
    assert stats["consul"]["server"] == "false" and "raft" not in stats


def test_version_and_host(agent):
    v = agent.get_json("/v1/agent/version")
    assert v["HumanVersion"] == agent.get_json("/v1/agent/self")["Config"]["Version"]
    host = agent.get_json("/v1/agent/host")
    assert host["Memory"]["total"] > 0 and host["Host"]["os"] == "linux"
    assert host["Host"]["hostname"] and len(host["CPU"]) >= 1
    assert host["Disk"]["total"] > 0
    assert isinstance(host["CollectionTime"], int)


def metric(listing, name, **labels):
    for m in listing:
        if m["Name"] == name and all(m["Labels"].get(k) == v for k, v in labels.items()):
            return m
    raise AssertionError(f"no {name} {labels} in {[m['Name'] for m in listing]}")


def test_metrics_json(agent_factory, tmp_path):
    """Consul's JSON shape; requests counted, checks by status, journal writes timed."""
    agent = agent_factory(data_dir=tmp_path / "data")
    agent.put_ok("/v1/agent/check/register", {"Name": "c1", "TTL": "30s", "Status": "passing"})
    agent.put_ok("/v1/agent/check/register", {"Name": "c2", "TTL": "30s"})
    before = metric(agent.get_json("/v1/agent/metrics")["Counters"], "consul.api.http.requests",
                    method="GET")["Count"]
    for _ in range(3):
        agent.get("/v1/catalog/services")
    m = agent.get_json("/v1/agent/metrics")
    assert set(m) == {"Timestamp", "Gauges", "Points", "Counters", "Samples"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000 UTC", m["Timestamp"])
    assert metric(m["Counters"], "consul.api.http.requests", method="GET")["Count"] == before + 4
    assert metric(m["Gauges"], "consul.state.checks", status="passing")["Value"] == 2  # serfHealth
    assert metric(m["Gauges"], "consul.state.checks", status="critical")["Value"] == 1
    journal = metric(m["Samples"], "consul.journal.append")
    assert journal["Count"] >= 2 and journal["Max"] >= journal["Min"] >= 0


def test_metrics_prometheus_counts_parked_queries(agent):
    """?format=prometheus: text exposition; a parked blocking query shows in the gauge."""
    from helpers import run_blocking
    idx = agent.get("/v1/kv/k").index
    g = run_blocking(lambda: agent.get(f"/v1/kv/k?index={idx}&wait=10s", timeout=20))

    def parked():
        r = agent.get("/v1/agent/metrics?format=prometheus")
        assert r.status == 200 and r.header("Content-Type").startswith("text/plain; version=0.0.4")
        return "consul_rpc_queries_blocking 1\n" in r.text
    wait_until(parked, 5, what="one parked query in the metrics")
    text = agent.get("/v1/agent/metrics?format=prometheus").text
    assert "# TYPE consul_api_http_requests counter\n" in text
    assert re.search(r'^consul_api_http_requests\{method="GET"\} \d+$', text, re.M)
    assert re.search(r'^consul_state_checks\{status="passing"\} 1$', text, re.M)
    agent.put_true("/v1/kv/k", "v")
    assert g(timeout=15)[0].status == 200


def test_health_ingress_is_empty_and_blocks(agent):
    agent.register_service({"ID": "w1", "Name": "web"})
    r = agent.get("/v1/health/ingress/web")
    assert r.status == 200 and r.json() == []
    assert r.index == agent.get("/v1/health/service/web").index
