"""How the registry keeps its memory small (issue 18 item 4): freed heap goes back to the
kernel after a large answer, and stored values keep every byte across a restart."""
from helpers import wait_until


def counter(agent, name, field="Count"):
    for m in agent.get_json("/v1/agent/metrics")["Counters"]:
        if m["Name"] == name:
            return m[field]
    raise AssertionError("no %s counter" % name)


def heap_trims(agent):
    return counter(agent, "mesh.runtime.heap_trims")


def test_large_answer_gives_heap_back(agent):
    """A large answer leaves its JSON tree freed in the heap: the agent trims once after it;
    small answers never ask for a trim."""
    for i in range(20):
        agent.put_true(f"/v1/kv/small/{i}", "v")
    agent.get_json("/v1/kv/small?recurse")
    assert heap_trims(agent) == 0
    agent.put_true("/v1/kv/big", "x" * (80 << 10))
    r = agent.get("/v1/kv/big")
    assert r.status == 200 and len(r.body) > (100 << 10)
    wait_until(lambda: heap_trims(agent) == 1, 10, what="one heap trim after the large answer")
    # What the trims cost is counted too (its figures: docs/benchmarks.md).
    assert counter(agent, "mesh.runtime.heap_trim_seconds", "Sum") > 0


def raw_members(agent, path):
    """The answer's body as sent, so member order counts."""
    r = agent.get(path)
    assert r.status == 200
    return r.body


def test_shared_values_render_as_each_was_given(agent_factory, tmp_path):
    """Services and checks carrying equal JSON share one stored copy, yet each renders its own
    member order, before and after a restart from the data dir (journal replay)."""
    data = tmp_path / "data"
    data.mkdir()
    a = agent_factory(data_dir=data)
    for sid, meta in (("w1", {"a": "1", "b": "2"}), ("w2", {"b": "2", "a": "1"}),
                      ("w3", {"a": "1", "b": "2"}), ("w4", {"a": "1", "b": "3"})):
        a.register_service({"ID": sid, "Name": "web", "Meta": meta,
                            "Check": {"CheckID": sid + "-ttl", "TTL": "1h"}})
    a.put_true("/v1/catalog/register",
               {"Node": "ext1", "Address": "10.0.0.7",
                "Service": {"ID": "db1", "Service": "db", "Port": 5432,
                            "Meta": {"b": "2", "a": "1"}},
                "Check": {"CheckID": "db1-http", "ServiceID": "db1", "Name": "db",
                          "Definition": {"HTTP": "http://10.0.0.7/h", "Interval": "10s"}}})
    paths = ["/v1/agent/services", "/v1/catalog/service/web", "/v1/health/service/web",
             "/v1/catalog/service/db", "/v1/health/service/db", "/v1/agent/checks"]
    meta = {s["ServiceID"]: list(s["ServiceMeta"].items())
            for s in a.get_json("/v1/catalog/service/web")}
    assert meta == {"w1": [("a", "1"), ("b", "2")], "w2": [("b", "2"), ("a", "1")],
                    "w3": [("a", "1"), ("b", "2")], "w4": [("a", "1"), ("b", "3")]}
    db_check = [c for c in a.get_json("/v1/health/service/db")[0]["Checks"]
                if c["CheckID"] == "db1-http"]
    assert db_check[0]["Definition"] == {"HTTP": "http://10.0.0.7/h", "Interval": "10s"}

    a.put_ok("/v1/agent/service/deregister/w1")  # w3 still holds the value w1 shared
    assert list(a.get_json("/v1/agent/service/w3")["Meta"].items()) == [("a", "1"), ("b", "2")]
    a.register_service({"ID": "w1", "Name": "web", "Meta": {"a": "1", "b": "2"},
                        "Check": {"CheckID": "w1-ttl", "TTL": "1h"}})
    before = {p: raw_members(a, p) for p in paths}

    assert a.stop() is not None
    a.start()
    for p, body in before.items():
        assert raw_members(a, p) == body, p
    assert list(a.get_json("/v1/agent/service/w2")["Meta"].items()) == [("b", "2"), ("a", "1")]
