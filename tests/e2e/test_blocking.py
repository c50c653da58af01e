"""Blocking queries and query metadata, KV indexes included."""

import re
import socket
import time

from helpers import assert_query_meta, assert_text_error, run_blocking, wait_until

READ_ENDPOINTS = ["/v1/catalog/nodes", "/v1/catalog/services", "/v1/catalog/service/web",
                  "/v1/catalog/node/node1", "/v1/health/service/web", "/v1/health/checks/web",
                  "/v1/health/node/node1", "/v1/health/state/any", "/v1/kv/k", "/v1/kv/?recurse",
                  "/v1/kv/?keys"]


def test_wait_returns_after_wait_with_same_index(agent):
    """Index=current & wait=1s -> returns at the deadline with the same index."""
    agent.put_true("/v1/kv/k", "v")
    idx = agent.get("/v1/kv/k").index
    r = agent.get(f"/v1/kv/k?index={idx}&wait=1s")
    assert r.status == 200
    assert 0.9 <= r.elapsed < 3.0, f"elapsed {r.elapsed:.2f}s for wait=1s"
    assert r.index == idx
    assert_query_meta(r)


def test_wait_in_milliseconds(agent):
    """The Go client sends wait as "<n>ms"."""
    r0 = agent.get("/v1/catalog/services")
    r = agent.get(f"/v1/catalog/services?index={r0.index}&wait=1200ms")
    assert r.status == 200
    assert 1.1 <= r.elapsed < 3.0, f"elapsed {r.elapsed:.2f}s for wait=1200ms"
    assert r.index == r0.index


def test_index_zero_or_lower_returns_at_once(agent):
    """No index, index=0, or an index below the current one -> answer now."""
    agent.put_true("/v1/kv/k", "v")
    idx = agent.get("/v1/kv/k").index
    for q in ("", "?index=0&wait=5s", f"?index={idx - 1}&wait=5s"):
        r = agent.get("/v1/kv/k" + q)
        assert r.status == 200
        assert r.elapsed < 1.0, f"{q}: took {r.elapsed:.2f}s"


def test_put_wakes_blocked_get(agent):
    """A PUT to the watched key wakes the blocked GET within 1 s, higher index."""
    agent.put_true("/v1/kv/k", "old")
    idx = agent.get("/v1/kv/k").index
    result = run_blocking(lambda: agent.get(f"/v1/kv/k?index={idx}&wait=10s", timeout=20))
    time.sleep(0.5)
    t_put = time.monotonic()
    agent.put_true("/v1/kv/k", "new")
    r, _ = result(timeout=15)
    woke_after = time.monotonic() - t_put
    assert r.status == 200
    assert woke_after < 1.0, f"watcher woke {woke_after:.2f}s after the change"
    assert r.index > idx
    assert r.json()[0]["Value"] == "bmV3"  # base64("new")


def test_unrelated_key_does_not_wake(agent):
    """/issue 2: a change to another key does not wake an exact-key query before its wait."""
    agent.put_true("/v1/kv/k1", "v")
    idx = agent.get("/v1/kv/k1").index
    result = run_blocking(lambda: agent.get(f"/v1/kv/k1?index={idx}&wait=2s", timeout=20))
    time.sleep(0.3)
    agent.put_true("/v1/kv/k2", "other")
    agent.put_true("/v1/kv/k1x", "prefix-sibling")
    r, elapsed = result(timeout=15)
    assert r.status == 200
    assert elapsed >= 1.5, f"exact-key watcher returned after {elapsed:.2f}s (woken by k2?)"
    assert r.index == idx


def test_missing_key_watch_wakes_on_create(agent):
    """Consul-template blocks on a 404; creating the key wakes it with 200."""
    r0 = agent.get("/v1/kv/later")
    assert r0.status == 404
    result = run_blocking(lambda: agent.get(f"/v1/kv/later?index={r0.index}&wait=10s",
                                            timeout=20))
    time.sleep(0.3)
    t = time.monotonic()
    agent.put_true("/v1/kv/later", "here")
    r, _ = result(timeout=15)
    assert time.monotonic() - t < 1.0
    assert r.status == 200
    assert r.index > r0.index


def test_delete_wakes_watcher_with_404(agent):
    """A delete wakes the key's watcher; 404 with a higher index."""
    agent.put_true("/v1/kv/gone", "x")
    idx = agent.get("/v1/kv/gone").index
    result = run_blocking(lambda: agent.get(f"/v1/kv/gone?index={idx}&wait=10s", timeout=20))
    time.sleep(0.3)
    t = time.monotonic()
    agent.delete("/v1/kv/gone")
    r, _ = result(timeout=15)
    assert time.monotonic() - t < 1.0
    assert r.status == 404
    assert r.index > idx


def test_recurse_watch_wakes_on_prefix_change(agent):
    """A recurse watcher wakes on a new key under the prefix."""
    agent.put_true("/v1/kv/cfg/a", "1")
    idx = agent.get("/v1/kv/cfg/?recurse").index
    result = run_blocking(lambda: agent.get(f"/v1/kv/cfg/?recurse&index={idx}&wait=10s",
                                            timeout=20))
    time.sleep(0.3)
    t = time.monotonic()
    agent.put_true("/v1/kv/cfg/b", "2")
    r, _ = result(timeout=15)
    assert time.monotonic() - t < 1.0
    assert [e["Key"] for e in r.json()] == ["cfg/a", "cfg/b"]
    assert r.index > idx


def test_catalog_service_watch_wakes_on_register(agent):
    """Catalog/service blocking wakes when an instance registers."""
    r0 = agent.get("/v1/catalog/service/web")
    result = run_blocking(lambda: agent.get(f"/v1/catalog/service/web?index={r0.index}&wait=10s",
                                            timeout=20))
    time.sleep(0.3)
    t = time.monotonic()
    agent.register_service({"ID": "w1", "Name": "web"})
    r, _ = result(timeout=15)
    assert time.monotonic() - t < 1.0
    assert [e["ServiceID"] for e in r.json()] == ["w1"]
    assert r.index > r0.index


def test_health_passing_watch_wakes_on_check_change(agent):
    """/DESIGN: health/service?passing wakes when a check turns passing, then critical."""
    agent.register_service({"ID": "w1", "Name": "web", "Check": {"CheckID": "c1", "TTL": "30s"}})
    r0 = agent.get("/v1/health/service/web?passing")
    assert r0.json() == []
    result = run_blocking(lambda: agent.get(
        f"/v1/health/service/web?passing&index={r0.index}&wait=10s", timeout=20))
    time.sleep(0.3)
    t = time.monotonic()
    agent.put_ok("/v1/agent/check/pass/c1")
    r1, _ = result(timeout=15)
    assert time.monotonic() - t < 1.0
    assert [e["Service"]["ID"] for e in r1.json()] == ["w1"]
    assert r1.index > r0.index
    result = run_blocking(lambda: agent.get(
        f"/v1/health/service/web?passing&index={r1.index}&wait=10s", timeout=20))
    time.sleep(0.3)
    t = time.monotonic()
    agent.put_ok("/v1/agent/check/fail/c1")
    r2, _ = result(timeout=15)
    assert time.monotonic() - t < 1.0
    assert r2.json() == []
    assert r2.index > r1.index


def test_index_headers_on_every_read_of_fresh_agent(agent):
    """Every read endpoint sends X-Consul-Index >= 1, KnownLeader, LastContact 0."""
    for path in READ_ENDPOINTS:
        r = agent.get(path)
        assert r.status in (200, 404), f"{path}: {r!r}"
        assert_query_meta(r)


def test_index_never_decreases(agent):
    """The index seen by each endpoint never goes backwards across writes/deletes."""
    last = {p: 0 for p in READ_ENDPOINTS}
    ops = [
        lambda: agent.put_true("/v1/kv/k", "1"),
        lambda: agent.register_service({"ID": "w1", "Name": "web", "Check": {"TTL": "30s"}}),
        lambda: agent.put_true("/v1/kv/z", "2"),
        lambda: agent.put_ok("/v1/agent/check/pass/service:w1"),
        lambda: agent.delete("/v1/kv/z"),  # the max-index key of the recurse listing
        lambda: agent.put_ok("/v1/agent/service/deregister/w1"),
        lambda: agent.delete("/v1/kv/k"),
        lambda: agent.put_true("/v1/catalog/register", {"Node": "n2", "Address": "10.0.0.2"}),
        lambda: agent.put_true("/v1/catalog/deregister", {"Node": "n2"}),
    ]
    for i, op in enumerate(ops):
        op()
        for p in READ_ENDPOINTS:
            idx = agent.get(p).index
            assert idx >= 1, f"{p}: X-Consul-Index 0"
            assert idx >= last[p], f"{p}: index went back from {last[p]} to {idx} after op {i}"
            last[p] = idx


def test_recurse_index_survives_deleting_max_key(agent):
    """Recurse index includes deleted keys' tombstones: deleting the newest key raises it."""
    agent.put_true("/v1/kv/t/a", "1")
    agent.put_true("/v1/kv/t/b", "2")
    idx = agent.get("/v1/kv/t/?recurse").index
    agent.delete("/v1/kv/t/b")
    r = agent.get("/v1/kv/t/?recurse")
    assert r.status == 200
    assert r.index > idx


def test_known_leader_and_last_contact(agent):
    """X-Consul-KnownLeader: true and X-Consul-LastContact: 0 on the leader."""
    agent.register_service({"ID": "w1", "Name": "web"})
    for path in ("/v1/catalog/service/web", "/v1/health/service/web", "/v1/kv/missing"):
        r = agent.get(path)
        assert r.header("X-Consul-KnownLeader") == "true", path
        assert r.header("X-Consul-LastContact") == "0", path


def test_bad_index_400(agent):
    """A bad index -> 400 "Invalid index"."""
    for path in ("/v1/kv/k?index=abc", "/v1/catalog/services?index=-1",
                 "/v1/health/service/web?index=1x"):
        assert_text_error(agent.get(path), 400, contains="Invalid index")


def test_bad_wait_400(agent):
    """A bad wait -> 400 "Invalid wait time"."""
    for path in ("/v1/kv/k?index=1&wait=abc", "/v1/catalog/services?index=1&wait=10parsecs",
                 "/v1/health/service/web?index=1&wait=5"):
        assert_text_error(agent.get(path), 400, contains="Invalid wait time")


def test_consistency_params(agent):
    """Stale/consistent/leader accepted; stale+consistent -> 400."""
    for q in ("?stale", "?stale=1", "?consistent", "?leader", "?stale="):
        r = agent.get("/v1/catalog/services" + q)
        assert r.status == 200, q
        assert_query_meta(r)
    assert_text_error(agent.get("/v1/catalog/services?stale&consistent"), 400,
                      contains="Cannot specify ?stale with ?consistent")


def test_effective_consistency_and_query_backend_headers(agent):
    """Consul's query meta names the consistency a read was served in, and its backend."""
    for q, want in (("", "leader"), ("?leader", "leader"), ("?stale", "stale"),
                    ("?stale=1", "stale"), ("?consistent", "consistent"), ("?cached", "stale")):
        for path in ("/v1/catalog/services", "/v1/health/service/consul", "/v1/kv/missing"):
            r = agent.get(path + q)
            assert r.header("X-Consul-Effective-Consistency") == want, (path, q, dict(r.headers))
            assert r.header("X-Consul-Query-Backend") == "blocking-query", (path, q)
    # Agent endpoints carry no query meta, as in Consul.
    r = agent.get("/v1/agent/services?stale")
    assert r.header("X-Consul-Effective-Consistency") is None
    # A parked read woken by a change answers with the same meta as an immediate one.
    first = agent.get("/v1/kv/woken?stale")
    result = run_blocking(lambda: agent.get(f"/v1/kv/woken?stale&index={first.index}&wait=10s"))
    time.sleep(0.3)  # let it park
    assert agent.put("/v1/kv/woken", "1").json() is True
    r, _ = result()
    assert r.status == 200 and r.index > first.index
    assert r.header("X-Consul-Effective-Consistency") == "stale"


def test_cached_reads_are_cache_misses(agent):
    """?cached on a read Consul's agent cache serves: X-Cache: MISS (meshkit reads fresh, and
    Consul sends Age with hits only); other reads carry no cache header."""
    for path in ("/v1/catalog/services", "/v1/catalog/service/consul",
                 "/v1/health/service/consul", "/v1/health/ingress/web"):
        r = agent.get(path + "?cached")
        assert r.status == 200, (path, r)
        assert r.header("X-Cache") == "MISS", (path, dict(r.headers))
        assert r.header("Age") is None, path
        assert agent.get(path).header("X-Cache") is None, path
    assert agent.get("/v1/catalog/nodes?cached").header("X-Cache") is None


def test_dc_param(agent):
    """?dc=<local> is normal; an unknown dc -> 500 "No path to datacenter"."""
    assert agent.get_json("/v1/catalog/services?dc=dc1") == {"consul": []}
    assert_text_error(agent.get("/v1/catalog/services?dc=dc9"), 500,
                      contains="No path to datacenter")


def test_many_parked_watchers_all_wake(agent):
    """Dozens of parked queries on one key all wake on one change."""
    agent.put_true("/v1/kv/hot", "0")
    idx = agent.get("/v1/kv/hot").index
    getters = [run_blocking(lambda: agent.get(f"/v1/kv/hot?index={idx}&wait=10s", timeout=20))
               for _ in range(40)]
    time.sleep(0.5)
    t = time.monotonic()
    agent.put_true("/v1/kv/hot", "1")
    for g in getters:
        r, _ = g(timeout=15)
        assert r.status == 200 and r.index > idx
    assert time.monotonic() - t < 2.0


def blocking_queries(agent):
    """The agent's gauge of parked blocking queries."""
    r = agent.get("/v1/agent/metrics?format=prometheus")
    assert r.status == 200, r
    m = re.search(r"^consul_rpc_queries_blocking (\S+)$", r.text, re.M)
    assert m, "no consul_rpc_queries_blocking in the metrics"
    return float(m.group(1))


def test_parked_clients_that_close_are_freed_and_wait_still_answers(agent):
    """Watchers whose clients close their sockets while parked are noticed and freed (the
    gauge of parked queries goes back down, and a later write finds nothing of them); one
    parked beside them still answers when its wait= runs out, with the same index."""
    agent.put_true("/v1/kv/k", "v")
    idx = agent.get("/v1/kv/k").index
    socks = []
    try:
        for _ in range(5):
            s = socket.create_connection(("127.0.0.1", agent.port), timeout=5)
            s.sendall(f"GET /v1/kv/k?index={idx}&wait=60s HTTP/1.1\r\nHost: a\r\n\r\n"
                      .encode())
            socks.append(s)
        waiter = run_blocking(lambda: agent.get(f"/v1/kv/k?index={idx}&wait=2s", timeout=30))
        wait_until(lambda: blocking_queries(agent) == 6, 10, what="6 parked queries")
    finally:
        for s in socks:
            s.close()
    wait_until(lambda: blocking_queries(agent) == 1, 10, what="the closed watchers freed")
    r, _ = waiter(timeout=30)
    assert r.status == 200
    assert r.index == idx
    assert r.json()[0]["Value"] == "dg=="  # base64("v")
    wait_until(lambda: blocking_queries(agent) == 0, 10, what="no parked query left")
    agent.put_true("/v1/kv/k", "w")  # nothing parked to answer, nothing freed to touch
    assert agent.get("/v1/kv/k").json()[0]["Value"] == "dw=="


def test_other_service_does_not_wake_service_watch(agent):
    """Issue 2 ("wakes exactly the watchers whose result changed"): registering db does not
    wake a watcher of catalog/service/web or health/service/web."""
    agent.register_service({"ID": "w1", "Name": "web"})
    i1 = agent.get("/v1/catalog/service/web").index
    i2 = agent.get("/v1/health/service/web").index
    g1 = run_blocking(lambda: agent.get(f"/v1/catalog/service/web?index={i1}&wait=2s",
                                        timeout=20))
    g2 = run_blocking(lambda: agent.get(f"/v1/health/service/web?index={i2}&wait=2s",
                                        timeout=20))
    time.sleep(0.3)
    agent.register_service({"ID": "d1", "Name": "db", "Check": {"TTL": "30s"}})
    agent.put_true("/v1/kv/unrelated", "x")
    for g, idx in ((g1, i1), (g2, i2)):
        r, elapsed = g(timeout=15)
        assert r.status == 200
        assert elapsed >= 1.5, f"web watcher woken after {elapsed:.2f}s by an unrelated change"
        assert r.index == idx  # the index of what the read covers: web did not change
        assert [e["Service"]["ID"] if "Service" in e else e["ServiceID"] for e in r.json()] \
            == ["w1"]


def test_index_covers_the_service_read(agent):
    """Issue 15 item 3: X-Consul-Index is the highest index of what the read covers, so a new
    query with db's index keeps waiting while only web changes (same node included)."""
    agent.register_service({"ID": "d1", "Name": "db", "Check": {"CheckID": "dc", "TTL": "30s"}})
    paths = ["/v1/health/service/db", "/v1/catalog/service/db", "/v1/health/checks/db"]
    before = {p: agent.get(p).index for p in paths}
    agent.register_service({"ID": "w1", "Name": "web", "Check": {"TTL": "30s"}})
    agent.put_ok("/v1/agent/check/pass/service:w1")
    agent.put_true("/v1/catalog/register", {"Node": "n2", "Address": "10.0.0.2",
                                            "Service": {"Service": "web"}})
    for p in paths:
        assert agent.get(p).index == before[p], p
    waits = [run_blocking(lambda p=p: agent.get(f"{p}?index={before[p]}&wait=1500ms",
                                                timeout=20)) for p in paths]
    time.sleep(0.3)
    agent.register_service({"ID": "w2", "Name": "web"})
    for g, p in zip(waits, paths):
        r, elapsed = g(timeout=15)
        assert r.status == 200 and r.index == before[p], p
        assert elapsed >= 1.2, f"{p}: returned after {elapsed:.2f}s though db did not change"
    # A change to db itself (a check) moves all three and wakes a fresh query at once.
    agent.put_ok("/v1/agent/check/pass/dc")
    for p in paths:
        r = agent.get(f"{p}?index={before[p]}&wait=10s")
        assert r.index > before[p], p
        assert r.elapsed < 5, p


def test_index_covers_the_node_read(agent):
    """Issue 15 item 3: node reads carry the node's index: another node's change leaves it."""
    agent.put_true("/v1/catalog/register", {"Node": "n2", "Address": "10.0.0.2"})
    paths = ["/v1/catalog/node/n2", "/v1/health/node/n2", "/v1/catalog/node-services/n2"]
    before = {p: agent.get(p).index for p in paths}
    agent.register_service({"ID": "w1", "Name": "web"})
    agent.put_true("/v1/catalog/register", {"Node": "n3", "Address": "10.0.0.3"})
    assert {p: agent.get(p).index for p in paths} == before
    agent.put_true("/v1/catalog/register", {"Node": "n2", "Address": "10.0.0.2",
                                            "Service": {"Service": "api"}})
    after = {p: agent.get(p).index for p in paths}
    assert all(after[p] > before[p] for p in paths), after


def test_deleting_raises_the_covering_index(agent):
    """Issue 15 item 3: removing an instance (or the last one, or a node) is a change of what
    the read covers: the index rises, and a parked watcher wakes."""
    for i in (1, 2):
        agent.put_true("/v1/catalog/register", {"Node": f"n{i}", "Address": f"10.0.0.{i}",
                                                "Service": {"ID": "db", "Service": "db"}})
    r0 = agent.get("/v1/health/service/db")
    g = run_blocking(lambda: agent.get(f"/v1/health/service/db?index={r0.index}&wait=10s",
                                       timeout=20))
    time.sleep(0.3)
    agent.put_true("/v1/catalog/deregister", {"Node": "n2", "ServiceID": "db"})
    r1, _ = g(timeout=15)
    assert r1.index > r0.index and len(r1.json()) == 1
    agent.put_true("/v1/catalog/deregister", {"Node": "n1"})
    r2 = agent.get("/v1/health/service/db")
    assert r2.json() == [] and r2.index > r1.index
    assert agent.get("/v1/catalog/node/n1").index >= r2.index


def test_catalog_nodes_watch_wakes_on_node_register(agent):
    """Catalog/nodes blocking wakes when a node is added."""
    r0 = agent.get("/v1/catalog/nodes")
    g = run_blocking(lambda: agent.get(f"/v1/catalog/nodes?index={r0.index}&wait=10s",
                                       timeout=20))
    time.sleep(0.3)
    t = time.monotonic()
    agent.put_true("/v1/catalog/register", {"Node": "n2", "Address": "10.0.0.2"})
    r, _ = g(timeout=15)
    assert time.monotonic() - t < 1.0
    assert [n["Node"] for n in r.json()] == ["n2", "node1"]
    assert r.index > r0.index


def test_health_state_watch_wakes_on_status_change(agent):
    """Health/state/critical wakes when a check turns critical."""
    agent.put_ok("/v1/agent/check/register", {"Name": "c", "TTL": "30s", "Status": "passing"})
    r0 = agent.get("/v1/health/state/critical")
    assert r0.json() == []
    g = run_blocking(lambda: agent.get(f"/v1/health/state/critical?index={r0.index}&wait=10s",
                                       timeout=20))
    time.sleep(0.3)
    t = time.monotonic()
    agent.put_ok("/v1/agent/check/fail/c")
    r, _ = g(timeout=15)
    assert time.monotonic() - t < 1.0
    assert [c["CheckID"] for c in r.json()] == ["c"]


def test_ttl_expiry_wakes_health_watch(agent):
    """TTL expiry is a change: it wakes a ?passing watcher with a higher index."""
    agent.register_service({"ID": "w1", "Name": "web",
                            "Check": {"CheckID": "c1", "TTL": "1s", "Status": "passing"}})
    r0 = agent.get("/v1/health/service/web?passing")
    assert len(r0.json()) == 1
    r, elapsed = run_blocking(lambda: agent.get(
        f"/v1/health/service/web?passing&index={r0.index}&wait=8s", timeout=20))(timeout=15)
    assert elapsed < 4, f"TTL expiry woke the watcher only after {elapsed:.2f}s"
    assert r.json() == []
    assert r.index > r0.index


def test_cached_with_consistent_400(agent):
    """Cached + consistent -> 400."""
    r = agent.get("/v1/catalog/services?cached&consistent")
    assert r.status == 400, r
    assert r.content_type == "text/plain"
