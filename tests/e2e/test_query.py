"""Prepared queries (issue 15 item 8): /v1/query create, list, read, update, delete, execute and
explain as Consul answers them, their persistence, and their DNS form NAME.query.consul."""
import re

from helpers import assert_text_error, free_ports, wait_until
from test_dns import A, SOA, build_query, udp, udp_raw

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def register(agent, node, addr, sid, tags=(), status=None):
    body = {"Node": node, "Address": addr,
            "Service": {"ID": sid, "Service": "db", "Tags": list(tags), "Port": 5432}}
    if status:
        body["Check"] = {"CheckID": f"{sid}-c", "Name": "c", "ServiceID": sid, "Status": status}
    agent.put_true("/v1/catalog/register", body)


def test_empty_list_has_an_index(agent):
    """A fresh agent lists [] with X-Consul-Index (clients block on it)."""
    r = agent.get("/v1/query")
    assert r.status == 200 and r.json() == [] and r.index >= 1


def test_create_read_update_delete(agent):
    r = agent.req("POST", "/v1/query", {"Name": "db-q", "Service": {"Service": "db",
                                                                     "Tags": ["primary"]}})
    assert r.status == 200, r
    qid = r.json()["ID"]
    assert UUID.fullmatch(qid)
    (q,) = agent.get_json(f"/v1/query/{qid}")
    assert q["ID"] == qid and q["Name"] == "db-q"
    assert q["Service"]["Service"] == "db" and q["Service"]["Tags"] == ["primary"]
    assert q["Service"]["OnlyPassing"] is False and q["Service"]["Failover"] == \
        {"NearestN": 0, "Datacenters": []}
    assert q["DNS"] == {"TTL": ""} and q["CreateIndex"] == q["ModifyIndex"] >= 1
    listed = agent.get("/v1/query")
    assert [x["ID"] for x in listed.json()] == [qid] and listed.index == q["ModifyIndex"]

    agent.put_ok(f"/v1/query/{qid}", {"Name": "db-q", "Service": {"Service": "db",
                                                                   "OnlyPassing": True}})
    (q2,) = agent.get_json(f"/v1/query/{qid}")
    assert q2["Service"]["OnlyPassing"] is True and q2["Service"]["Tags"] is None
    assert q2["CreateIndex"] == q["CreateIndex"] and q2["ModifyIndex"] > q["ModifyIndex"]

    agent.delete(f"/v1/query/{qid}")
    assert agent.get_json("/v1/query") == []
    assert_text_error(agent.get(f"/v1/query/{qid}"), 404, equals="Query not found")
    assert_text_error(agent.put(f"/v1/query/{qid}", {"Service": {"Service": "db"}}), 404,
                      equals="Query not found")


def test_create_errors(agent):
    assert_text_error(agent.req("POST", "/v1/query", {"Name": "x"}), 500,
                      equals="Must provide a Service name to query")
    assert_text_error(agent.req("POST", "/v1/query", {"Service": {"Service": 5}}), 400,
                      startswith="Request decode failed: json: cannot unmarshal")
    agent.req("POST", "/v1/query", {"Name": "dup", "Service": {"Service": "db"}})
    assert_text_error(agent.req("POST", "/v1/query", {"Name": "dup", "Service": {"Service": "x"}}),
                      500, equals="Name 'dup' aliases an existing query name")
    assert_text_error(agent.req("POST", "/v1/query", {
        "Name": "0b8c3c2e-6d3b-4a56-9a0e-2f3a1c9d7e11", "Service": {"Service": "db"}}), 500,
        equals="Query name cannot be a UUID")
    assert_text_error(agent.req("POST", "/v1/query", {"Service": {"Service": "db"},
                                                      "Session": "nope"}), 500,
                      startswith="invalid session")


def test_execute_and_explain(agent):
    """Execute by name or ID: tags ("!tag" excludes), critical instances dropped, warning ones
    only with OnlyPassing; ?limit; explain returns the definition."""
    register(agent, "n1", "10.0.0.1", "db1", tags=["primary"], status="passing")
    register(agent, "n2", "10.0.0.2", "db2", tags=["replica"], status="warning")
    register(agent, "n3", "10.0.0.3", "db3", tags=["replica"], status="critical")
    qid = agent.req("POST", "/v1/query", {"Name": "dbs", "Service": {"Service": "db",
                                                                     "DNS": {}}}).json()["ID"]
    r = agent.get_json("/v1/query/dbs/execute")
    assert r["Service"] == "db" and r["Datacenter"] == "dc1" and r["Failovers"] == 0
    assert sorted(e["Service"]["ID"] for e in r["Nodes"]) == ["db1", "db2"]
    assert sorted(e["Service"]["ID"] for e in agent.get_json(f"/v1/query/{qid}/execute")["Nodes"]) \
        == ["db1", "db2"]
    assert len(agent.get_json("/v1/query/dbs/execute?limit=1")["Nodes"]) == 1
    agent.put_ok(f"/v1/query/{qid}", {"Name": "dbs", "Service": {"Service": "db",
                                                                 "Tags": ["!primary"]}})
    assert [e["Service"]["ID"] for e in agent.get_json("/v1/query/dbs/execute")["Nodes"]] == ["db2"]
    agent.put_ok(f"/v1/query/{qid}", {"Name": "dbs", "Service": {"Service": "db",
                                                                 "OnlyPassing": True}})
    assert [e["Service"]["ID"] for e in agent.get_json("/v1/query/dbs/execute")["Nodes"]] == ["db1"]
    entry = agent.get_json("/v1/query/dbs/execute")["Nodes"][0]
    assert set(entry) == {"Node", "Service", "Checks"}
    explained = agent.get_json("/v1/query/dbs/explain")["Query"]
    assert explained["ID"] == qid and explained["Service"]["OnlyPassing"] is True
    assert_text_error(agent.get("/v1/query/nope/execute"), 404, equals="Query not found")


def test_queries_survive_a_restart(agent_factory, tmp_path):
    a = agent_factory(data_dir=tmp_path / "data")
    qid = a.req("POST", "/v1/query", {"Name": "keep", "Service": {"Service": "db"}}).json()["ID"]
    gone = a.req("POST", "/v1/query", {"Name": "gone", "Service": {"Service": "db"}}).json()["ID"]
    a.delete(f"/v1/query/{gone}")
    before = a.get("/v1/query")
    a.stop()
    a.start()
    after = a.get("/v1/query")
    assert after.json() == before.json() and [q["ID"] for q in after.json()] == [qid]
    assert after.index >= before.index


def test_dns_query_name(agent_factory):
    """NAME.query.consul answers the query's instances, with its DNS TTL; unknown: NXDOMAIN."""
    http, port = free_ports(2)
    a = agent_factory(http_port=http, dns_port=port)
    wait_until(lambda: udp_raw(port, build_query("consul", SOA), timeout=0.3, attempts=1), 5.0,
               what="the DNS listener")
    register(a, "n1", "127.0.0.21", "db1", tags=["primary"], status="passing")
    register(a, "n2", "127.0.0.22", "db2", tags=["replica"], status="passing")
    a.req("POST", "/v1/query", {"Name": "prim", "Service": {"Service": "db", "Tags": ["primary"]},
                                "DNS": {"TTL": "42s"}})
    ans = udp(port, "prim.query.consul", A)
    assert ans.data(A) == ["127.0.0.21"]
    assert all(rr[2] == 42 for rr in ans.answer if rr[1] == A)
    assert udp(port, "nope.query.consul", A).rcode == 3
