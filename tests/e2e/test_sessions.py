"""Sessions, KV locks, transactions and events."""

import os
import threading
import time

import pytest

from helpers import assert_query_meta, b64, wait_until

SESSION_KEYS = {"ID", "Name", "Node", "LockDelay", "Behavior", "TTL", "NodeChecks",
                "ServiceChecks", "CreateIndex", "ModifyIndex"}


def create(agent, body=None):
    r = agent.put("/v1/session/create", body)
    assert r.status == 200, r
    sid = r.json()["ID"]
    assert len(sid) == 36 and sid.count("-") == 4, sid
    return sid


def kv_entry(agent, key):
    r = agent.get("/v1/kv/" + key)
    assert r.status == 200, r
    return r.json()[0]


def test_create_defaults_info_list_destroy(agent):
    sid = create(agent)  # no body at all
    info = agent.get_json("/v1/session/info/" + sid)
    assert len(info) == 1
    s = info[0]
    assert set(s) == SESSION_KEYS, s
    assert s["ID"] == sid and s["Node"] == "node1" and s["Name"] == ""
    assert s["LockDelay"] == 15_000_000_000
    assert s["Behavior"] == "release" and s["TTL"] == ""
    assert s["NodeChecks"] == ["serfHealth"] and s["ServiceChecks"] is None
    assert s["CreateIndex"] == s["ModifyIndex"] > 0

    sid2 = create(agent, {"Name": "two", "LockDelay": 5, "Behavior": "delete", "TTL": "30s"})
    s2 = agent.get_json("/v1/session/info/" + sid2)[0]
    assert s2["LockDelay"] == 5_000_000_000 and s2["Behavior"] == "delete"
    assert s2["TTL"] == "30s" and s2["Name"] == "two"
    r = agent.get("/v1/session/list")
    assert sorted(x["ID"] for x in r.json()) == sorted([sid, sid2])
    assert assert_query_meta(r) >= s2["CreateIndex"]
    assert len(agent.get_json("/v1/session/node/node1")) == 2
    assert agent.get_json("/v1/session/node/nope") == []

    renewed = agent.put("/v1/session/renew/" + sid2)
    assert renewed.status == 200 and renewed.json()[0]["ID"] == sid2

    agent.put_true("/v1/session/destroy/" + sid)
    assert agent.get_json("/v1/session/info/" + sid) == []
    agent.put_true("/v1/session/destroy/" + sid)  # unknown: still true
    r = agent.put("/v1/session/renew/" + sid)
    assert r.status == 404 and r.text == f"Session id '{sid}' not found\n", r


def test_create_rejects_bad_input(agent):
    r = agent.put("/v1/session/create", {"Node": "ghost"})
    assert r.status == 500, r
    r = agent.put("/v1/session/create", {"TTL": "5s"})
    assert r.status == 500 and "Invalid Session TTL" in r.text, r
    r = agent.put("/v1/session/create", {"Behavior": "explode"})
    assert r.status == 500 and "Behavior" in r.text, r
    r = agent.put("/v1/session/create", {"NodeChecks": ["nope"]})
    assert r.status == 500 and "nope" in r.text, r
    r = agent.put("/v1/session/create", {"LockDelay": "2m"})
    assert r.status == 500, r


def test_session_list_blocks_until_create(agent):
    idx = assert_query_meta(agent.get("/v1/session/list"))
    out = {}

    def waiter():
        out["r"] = agent.get(f"/v1/session/list?index={idx}&wait=5s")

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.3)
    assert t.is_alive(), "blocking query answered before any change"
    sid = create(agent)
    t.join(5)
    assert [s["ID"] for s in out["r"].json()] == [sid]
    assert out["r"].elapsed < 4


def test_acquire_release_and_lock_delay(agent):
    a = create(agent, {"LockDelay": "1s"})
    b = create(agent, {"LockDelay": "1s"})
    r = agent.put("/v1/kv/lk?acquire=00000000-0000-0000-0000-000000000000", "x")
    assert r.status == 500 and "invalid session" in r.text, r

    agent.put_true(f"/v1/kv/lk?acquire={a}&flags=7", "one")
    e = kv_entry(agent, "lk")
    assert e["Session"] == a and e["LockIndex"] == 1 and e["Flags"] == 7
    assert e["Value"] == b64("one")
    assert agent.put(f"/v1/kv/lk?acquire={b}", "two").json() is False
    agent.put_true(f"/v1/kv/lk?acquire={a}", "again")  # holder re-acquires: value updated
    e = kv_entry(agent, "lk")
    assert e["LockIndex"] == 1 and e["Value"] == b64("again")
    agent.put_true("/v1/kv/lk", "plain")  # a plain PUT keeps the lock
    assert kv_entry(agent, "lk")["Session"] == a
    assert agent.put(f"/v1/kv/lk?release={b}").json() is False
    agent.put_true(f"/v1/kv/lk?release={a}", "free")
    e = kv_entry(agent, "lk")
    assert "Session" not in e and e["LockIndex"] == 1 and e["Value"] == b64("free")
    # A plain release leaves no lock-delay.
    agent.put_true(f"/v1/kv/lk?acquire={b}")
    assert kv_entry(agent, "lk")["LockIndex"] == 2

    # Invalidation (destroy) releases the key and starts its lock-delay.
    before = kv_entry(agent, "lk")["ModifyIndex"]
    agent.put_true("/v1/session/destroy/" + b)
    e = kv_entry(agent, "lk")
    assert "Session" not in e and e["ModifyIndex"] > before
    t0 = time.monotonic()
    assert agent.put(f"/v1/kv/lk?acquire={a}").json() is False, "inside lock-delay"
    wait_until(lambda: agent.put(f"/v1/kv/lk?acquire={a}").json() is True, 3,
               what="acquire after lock-delay")
    assert time.monotonic() - t0 < 2.5
    assert kv_entry(agent, "lk")["LockIndex"] == 3


def test_behavior_delete_removes_keys(agent):
    s = create(agent, {"Behavior": "delete", "LockDelay": 0})
    agent.put_true(f"/v1/kv/eph?acquire={s}", "v")
    agent.put_true("/v1/session/destroy/" + s)
    assert agent.get("/v1/kv/eph").status == 404


def test_critical_check_invalidates_session(agent):
    agent.register_service({"Name": "web", "Port": 1, "Check": {"CheckID": "webttl",
                                                                "TTL": "60s"}})
    agent.put_ok("/v1/agent/check/pass/webttl")
    s = create(agent, {"ServiceChecks": [{"ID": "webttl"}], "LockDelay": 0})
    assert agent.get_json("/v1/session/info/" + s)[0]["ServiceChecks"][0]["ID"] == "webttl"
    agent.put_true(f"/v1/kv/leader?acquire={s}", "me")
    agent.put_ok("/v1/agent/check/fail/webttl")
    assert agent.get_json("/v1/session/info/" + s) == []
    assert "Session" not in kv_entry(agent, "leader")
    r = agent.put("/v1/session/create", {"ServiceChecks": [{"ID": "webttl"}]})
    assert r.status == 500 and r.text == "Check 'webttl' is in critical state\n", r


def test_node_deregistration_invalidates_session(agent):
    agent.put_true("/v1/catalog/register", {"Node": "ext", "Address": "10.0.0.9"})
    s = create(agent, {"Node": "ext", "NodeChecks": []})
    agent.put_true(f"/v1/kv/extlock?acquire={s}")
    agent.put_true("/v1/catalog/deregister", {"Node": "ext"})
    assert agent.get_json("/v1/session/info/" + s) == []
    assert "Session" not in kv_entry(agent, "extlock")


def test_sessions_survive_restart(agent_factory, tmp_path):
    a = agent_factory(data_dir=tmp_path / "data")
    s = create(a, {"Name": "keep", "TTL": "60s"})
    a.put_true(f"/v1/kv/held?acquire={s}", "x")
    a.stop()
    a.start()
    info = a.get_json("/v1/session/info/" + s)
    assert info and info[0]["Name"] == "keep" and info[0]["TTL"] == "60s"
    assert kv_entry(a, "held")["Session"] == s
    assert a.put("/v1/session/renew/" + s).status == 200


def test_txn_success_and_rollback(agent):
    agent.put_true("/v1/kv/t/a", "1")
    idx = kv_entry(agent, "t/a")["ModifyIndex"]
    ops = [
        {"KV": {"Verb": "check-index", "Key": "t/a", "Index": idx}},
        {"KV": {"Verb": "set", "Key": "t/b", "Value": b64("2"), "Flags": 3}},
        {"KV": {"Verb": "cas", "Key": "t/a", "Value": b64("1b"), "Index": idx}},
        {"KV": {"Verb": "get", "Key": "t/b"}},
        {"KV": {"Verb": "check-not-exists", "Key": "t/zz"}},
    ]
    r = agent.put("/v1/txn", ops)
    assert r.status == 200, r
    body = r.json()
    assert body["Errors"] is None
    res = [x["KV"] for x in body["Results"]]
    assert [x["Key"] for x in res] == ["t/a", "t/b", "t/a", "t/b"]
    assert res[1]["Value"] is None and res[3]["Value"] == b64("2") and res[3]["Flags"] == 3
    # every write of one transaction commits at one index
    assert res[1]["ModifyIndex"] == res[2]["ModifyIndex"] == res[3]["ModifyIndex"]
    assert kv_entry(agent, "t/a")["Value"] == b64("1b")

    before = agent.get_json("/v1/kv/t/?recurse")
    bad = [
        {"KV": {"Verb": "set", "Key": "t/c", "Value": b64("3")}},
        {"KV": {"Verb": "delete-tree", "Key": "t/"}},
        {"KV": {"Verb": "cas", "Key": "t/a", "Value": b64("x"), "Index": 1}},
        {"KV": {"Verb": "get", "Key": "t/missing"}},
    ]
    r = agent.put("/v1/txn", bad)
    assert r.status == 409, r
    errs = r.json()["Errors"]
    assert [e["OpIndex"] for e in errs] == [2, 3], errs
    assert agent.get_json("/v1/kv/t/?recurse") == before, "a failed txn changes nothing"
    assert agent.get("/v1/kv/t/c").status == 404

    r = agent.put("/v1/txn", [{"KV": {"Verb": "get", "Key": "t/a"}}] * 65)
    assert r.status == 413, r
    assert agent.put("/v1/txn", "{not json").status == 400


def test_txn_lock_unlock(agent):
    s = create(agent, {"LockDelay": 0})
    r = agent.put("/v1/txn", [{"KV": {"Verb": "lock", "Key": "tl", "Session": s}},
                              {"KV": {"Verb": "check-session", "Key": "tl", "Session": s}}])
    assert r.status == 200, r
    assert kv_entry(agent, "tl")["Session"] == s
    r = agent.put("/v1/txn", [{"KV": {"Verb": "unlock", "Key": "tl", "Session": "other"}}])
    assert r.status == 409
    r = agent.put("/v1/txn", [{"KV": {"Verb": "unlock", "Key": "tl", "Session": s}}])
    assert r.status == 200 and "Session" not in kv_entry(agent, "tl")


def test_events_fire_and_list(agent):
    r = agent.put("/v1/event/fire/deploy?service=&node=", "v1.2")
    assert r.status == 200, r
    ev = r.json()
    assert ev["Name"] == "deploy" and ev["Payload"] == b64("v1.2") and ev["Version"] == 1
    assert set(ev) >= {"ID", "NodeFilter", "ServiceFilter", "TagFilter", "LTime"}
    r = agent.get("/v1/event/list")
    idx = assert_query_meta(r)
    assert [e["ID"] for e in r.json()] == [ev["ID"]]
    agent.put("/v1/event/fire/other")
    assert [e["Name"] for e in agent.get_json("/v1/event/list?name=deploy")] == ["deploy"]
    names = [e["Name"] for e in agent.get_json("/v1/event/list")]
    assert names == ["deploy", "other"]
    assert agent.get_json("/v1/event/list?name=other")[0]["Payload"] is None

    out = {}
    t = threading.Thread(target=lambda: out.update(
        r=agent.get(f"/v1/event/list?name=late&index={idx + 1}&wait=5s")))
    t.start()
    time.sleep(0.3)
    agent.put("/v1/event/fire/late", "x")
    t.join(5)
    assert [e["Name"] for e in out["r"].json()] == ["late"]
    # an event for another node is not kept by this agent
    agent.put("/v1/event/fire/elsewhere?node=^someone-else$")
    assert agent.get_json("/v1/event/list?name=elsewhere") == []


@pytest.mark.skipif(not os.environ.get("MESH_SLOW_TESTS"),
                    reason="takes ~20 s (2 x the 10 s minimum TTL); set MESH_SLOW_TESTS=1")
def test_ttl_expiry(agent):
    """A TTL session is reaped after 2 x TTL without a renew (Consul's rule): ~20 s."""
    s = create(agent, {"TTL": "10s", "LockDelay": 0})
    agent.put_true(f"/v1/kv/ttl?acquire={s}")
    time.sleep(12)
    assert agent.get_json("/v1/session/info/" + s), "still alive before 2 x TTL"
    wait_until(lambda: agent.get_json("/v1/session/info/" + s) == [], 10,
               what="session reaped")
    assert "Session" not in kv_entry(agent, "ttl")
