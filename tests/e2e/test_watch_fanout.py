"""Blocking-query fan-out (issue 18 item 3): watchers parked on the same read share one
rendering of the answer after a write, and each still gets exactly the answer it would get
alone.

One agent with ACLs (default deny) holds two nodes; watchers with different tokens, filters,
query strings and indexes park on overlapping catalog and health reads; one catalog write then
changes what most of them see. Every answer is compared with the same request made without
?index once all have answered (nothing writes in between, so the two must be identical).
"""

import json
import re

from helpers import run_blocking, wait_until

ROOT = "root"
WAIT = "60s"  # longer than the test: a watcher answers because of the write, not its wait


def acl_agent(agent_factory, tmp_path):
    cfg = tmp_path / "acl.json"
    cfg.write_text(json.dumps({"acl": {"enabled": True, "default_policy": "deny",
                                       "tokens": {"initial_management": ROOT}}}))
    return agent_factory(config_files=[cfg])


def make_token(agent, name, rules):
    hdr = {"X-Consul-Token": ROOT}
    r = agent.put("/v1/acl/policy", {"Name": name, "Rules": rules}, headers=hdr)
    assert r.status == 200, r
    r = agent.put("/v1/acl/token", {"Policies": [{"Name": name}]}, headers=hdr)
    assert r.status == 200, r
    return r.json()["SecretID"]


def register(agent, node, address, services):
    body = {"Node": node, "Address": address, "Service": None}
    for svc in services:
        body["Service"] = svc
        r = agent.put("/v1/catalog/register", body, headers={"X-Consul-Token": ROOT})
        assert r.status == 200 and r.json() is True, r


def metric(agent, name):
    """A counter or gauge from the Prometheus exposition (0 when absent)."""
    r = agent.get("/v1/agent/metrics?format=prometheus", headers={"X-Consul-Token": ROOT})
    assert r.status == 200, r
    m = re.search(rf"^{re.escape(name)} (\S+)$", r.text, re.M)
    return float(m.group(1)) if m else 0.0


def parked(agent):
    return metric(agent, "consul_rpc_queries_blocking")


def renders(agent):
    return metric(agent, "mesh_watch_renders")


def get(agent, path, token, index=None):
    sep = "&" if "?" in path else "?"
    url = path if index is None else f"{path}{sep}index={index}&wait={WAIT}"
    headers = {"X-Consul-Token": token} if token else {}
    return agent.get(url, headers=headers, timeout=90)


def answer_of(r):
    """What a client can tell apart in an answer."""
    return (r.status, r.content_type, r.header("X-Consul-Index"),
            r.header("X-Consul-Results-Filtered-By-ACLs"), r.header("X-Consul-ContentHash"),
            r.body)


def test_shared_wake_up_answers_each_watcher_as_alone(agent_factory, tmp_path):
    a = acl_agent(agent_factory, tmp_path)
    everything = make_token(a, "all-read", 'service_prefix "" { policy = "read" }\n'
                                           'node_prefix "" { policy = "read" }')
    web_only = make_token(a, "web-read", 'service "web" { policy = "read" }\n'
                                         'node_prefix "" { policy = "read" }')
    no_nodes = make_token(a, "svc-read", 'service_prefix "" { policy = "read" }')
    register(a, "n1", "10.0.0.1", [{"ID": "web1", "Service": "web", "Tags": ["a"], "Port": 80},
                                   {"ID": "db1", "Service": "db", "Port": 5432}])
    register(a, "n1", "10.0.0.1", [{"ID": "web2", "Service": "web", "Tags": ["b"], "Port": 81}])
    now = a.get("/v1/catalog/services", headers={"X-Consul-Token": ROOT}).index

    reads = [
        # the same read under four different rights: never one rendering for two of them
        ("/v1/catalog/services", ROOT),
        ("/v1/catalog/services", everything),
        ("/v1/catalog/services", web_only),  # db is filtered out for it
        ("/v1/catalog/services", None),      # anonymous: nothing visible, never wakes
        ("/v1/catalog/services?pretty", everything),
        ("/v1/catalog/service/web", web_only),
        ("/v1/catalog/service/db", web_only),  # filtered to [] before and after
        ("/v1/catalog/service/web?tag=a", everything),
        ("/v1/catalog/service/web?filter=ServicePort%20%3D%3D%2082", everything),
        ("/v1/catalog/service/web?filter=ServicePort%20%3D%3D%2080", everything),
        ("/v1/health/service/web", web_only),
        ("/v1/health/service/web", no_nodes),  # node rights lacking: no entries at all
        ("/v1/health/service/web?passing", ROOT),
        ("/v1/catalog/nodes", web_only),
        ("/v1/catalog/nodes?filter=Node%20%3D%3D%20%22n2%22", ROOT),
    ]
    alone_before = {(p, t): answer_of(get(a, p, t)) for p, t in reads}
    cs = "/v1/catalog/services"
    assert len({alone_before[(cs, t)][5] for t in (ROOT, web_only, None)}) == 3, \
        "the rights differ over the same read: otherwise the test shows nothing"

    watchers = [(p, t) for p, t in reads for _ in range(3)]  # something to share
    before = renders(a)
    getters = [run_blocking(lambda p=p, t=t: get(a, p, t, now)) for p, t in watchers]
    wait_until(lambda: parked(a) == len(watchers), 20, what=f"{len(watchers)} parked watchers")

    # A watcher whose index is already stale answers at once, with the current answer.
    for path, token in reads:
        r = get(a, path, token, 1)
        assert answer_of(r)[3:] == alone_before[(path, token)][3:], path
        assert answer_of(r)[:2] == alone_before[(path, token)][:2], path

    # One write: a second node with another web instance (port 82, tag c).
    register(a, "n2", "10.0.0.2", [{"ID": "web3", "Service": "web", "Tags": ["c"], "Port": 82}])
    alone_after = {(p, t): answer_of(get(a, p, t)) for p, t in reads}
    changed = {k for k in reads if alone_after[k][5] != alone_before[k][5]}
    assert (cs, web_only) in changed and (cs, None) not in changed
    for (path, token), g in zip(watchers, getters):
        if (path, token) not in changed:
            continue
        r, _ = g(timeout=30)
        assert r.status == 200, (path, r.status, r.body)
        # The index may have moved on since (the agent writes too); the answer may not.
        assert answer_of(r)[3:] == alone_after[(path, token)][3:], (path, token)
        assert answer_of(r)[:2] == alone_after[(path, token)][:2], (path, token)
        assert now < r.index <= int(alone_after[(path, token)][2]), path
    # Those whose answer did not change stay parked until their wait runs out.
    left = sum(1 for k in watchers if k not in changed)
    assert left > 0
    wait_until(lambda: parked(a) == left, 20, what=f"{left} watchers still parked")
    # Every distinct read was rendered once for all its watchers, changed or not.
    assert renders(a) - before == len(reads)
