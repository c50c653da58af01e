"""The web UI's server side: /ui/ assets compiled into `mesh agent`, their content types,
ETag / 304 revalidation, the / redirect (only with -ui), 404 for unknown assets, and the two
summary reads the UI's views use (/v1/internal/ui/services and /nodes, blocking like the
catalog). What the pages do in a browser is tests/browser/run's job."""

import json
import threading
import re

import pytest

from helpers import wait_until

ASSETS = {
    "/ui/": "text/html",
    "/ui/index.html": "text/html",
    "/ui/app.js": "text/javascript",
    "/ui/app.css": "text/css",
}


@pytest.fixture
def ui_agent(agent_factory):
    return agent_factory(extra_args=["-ui"])


def test_assets_served_with_types_and_etags(ui_agent):
    etags = {}
    for path, ctype in ASSETS.items():
        r = ui_agent.get(path)
        assert r.status == 200, (path, r)
        assert r.content_type == ctype, (path, r.header("Content-Type"))
        assert len(r.body) > 100, path
        etag = r.header("ETag")
        assert etag and re.fullmatch(r'"[0-9a-f]{24}"', etag), (path, etag)
        assert r.header("Cache-Control") == "no-cache"
        assert r.header("X-Content-Type-Options") == "nosniff"
        etags[path] = etag
    assert etags["/ui/"] == etags["/ui/index.html"]
    assert len({etags["/ui/index.html"], etags["/ui/app.js"], etags["/ui/app.css"]}) == 3
    page = ui_agent.get("/ui/")
    # The page loads its script and style from the agent, and forbids anything inline or remote.
    assert b'src="app.js"' in page.body and b'href="app.css"' in page.body
    csp = page.header("Content-Security-Policy")
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    assert b"http://" not in page.body and b"https://" not in page.body


def test_conditional_get_answers_304(ui_agent):
    r = ui_agent.get("/ui/app.js")
    etag = r.header("ETag")
    again = ui_agent.get("/ui/app.js", headers={"If-None-Match": etag})
    assert again.status == 304
    assert again.body == b""
    assert again.header("ETag") == etag
    assert again.header("Content-Length") is None
    # A list with the tag, the weak form and "*" match; another tag does not.
    for inm in (f'"x", {etag}', f"W/{etag}", "*"):
        assert ui_agent.get("/ui/app.js", headers={"If-None-Match": inm}).status == 304, inm
    other = ui_agent.get("/ui/app.js", headers={"If-None-Match": '"0000"'})
    assert other.status == 200 and other.body == r.body
    head = ui_agent.req("HEAD", "/ui/app.css")
    assert head.status == 200 and head.body == b""


def test_root_redirects_only_with_ui(agent_factory, ui_agent):
    r = ui_agent.get("/")
    assert r.status == 302
    assert r.header("Location") == "/ui/"
    bare = ui_agent.get("/ui")
    assert bare.status == 301 and bare.header("Location") == "/ui/"

    plain = agent_factory(name="plain")
    r = plain.get("/")
    assert r.status == 200 and r.content_type == "text/plain"
    assert plain.get("/ui/").status == 404
    assert plain.get("/ui/app.js").status == 404


def test_ui_from_config_file(agent_factory, tmp_path):
    for i, conf in enumerate(({"ui": True}, {"ui_config": {"enabled": True}})):
        f = tmp_path / f"ui{i}.json"
        f.write_text(json.dumps(conf))
        a = agent_factory(name=f"conf{i}", config_files=[f])
        assert a.get("/").status == 302, conf
        assert a.get("/ui/").status == 200, conf


def test_unknown_asset_and_methods(ui_agent):
    for path in ("/ui/nope.js", "/ui/app.js/x", "/ui/../v1/kv/x", "/ui/index.htm"):
        r = ui_agent.get(path)
        assert r.status == 404, (path, r)
        assert r.content_type == "text/plain"
    r = ui_agent.put("/ui/app.js", body="x")
    assert r.status == 405
    assert r.header("Allow") == "GET, HEAD"


def test_ui_needs_no_token_under_deny(agent_factory, tmp_path):
    f = tmp_path / "acl.json"
    f.write_text(json.dumps({"ui_config": {"enabled": True},
                             "acl": {"enabled": True, "default_policy": "deny",
                                     "tokens": {"initial_management": "root"}}}))
    a = agent_factory(config_files=[f])
    assert a.get("/ui/").status == 200
    assert a.get("/ui/app.js").status == 200
    # The API calls the UI makes are filtered by the token they carry.
    a.put("/v1/agent/service/register", {"Name": "web", "ID": "web1", "Port": 3000},
          headers={"X-Consul-Token": "root"})
    assert a.get_json("/v1/internal/ui/services") == []
    names = [s["Name"] for s in a.get_json("/v1/internal/ui/services",
                                            headers={"X-Consul-Token": "root"})]
    assert "web" in names


def register(agent, sid, name, port, tags=(), check=None):
    body = {"Name": name, "ID": sid, "Port": port, "Tags": list(tags)}
    if check:
        body["Check"] = check
    r = agent.put("/v1/agent/service/register", body)
    assert r.status == 200, r


def test_services_summary(agent):
    register(agent, "web1", "web", 3000, ["v1"], {"CheckID": "web1-ttl", "TTL": "30s"})
    register(agent, "web2", "web", 3001, ["v2"], {"CheckID": "web2-ttl", "TTL": "30s"})
    register(agent, "db1", "db", 5432)
    assert agent.put("/v1/agent/check/pass/web1-ttl").status == 200
    assert agent.put("/v1/agent/check/warn/web2-ttl").status == 200
    r = agent.get("/v1/internal/ui/services")
    assert r.status == 200 and r.index > 0
    by_name = {s["Name"]: s for s in r.json()}
    web = by_name["web"]
    assert web["InstanceCount"] == 2
    assert web["Tags"] == ["v1", "v2"]
    assert web["Nodes"] == ["node1"]
    # Consul counts a check once per service (keyed by node and CheckID): the node's
    # serfHealth once, however many instances the node holds, and each instance's own.
    assert (web["ChecksPassing"], web["ChecksWarning"], web["ChecksCritical"]) == (2, 1, 0)
    db = by_name["db"]
    assert (db["InstanceCount"], db["ChecksPassing"], db["ChecksCritical"]) == (1, 1, 0)
    assert db["Tags"] == [] and db["Kind"] == ""


def test_services_summary_order_and_counts_across_nodes(agent):
    # Catalog order (by node, then ID) puts "zeta" first and meets web's tags as v2, b, v1, a.
    register(agent, "a-zeta", "zeta", 3000)
    register(agent, "b-web", "web", 3001, ["v2", "b"])
    register(agent, "c-web", "web", 3002, ["v1", "a", "b"])
    register(agent, "d-alpha", "alpha", 3003)
    # Two more instances of web on another node with a failing node check of its own.
    assert agent.put_true("/v1/catalog/register", {
        "Node": "node0", "Address": "127.0.0.2",
        "Check": {"CheckID": "disk", "Name": "disk", "Status": "critical"}})
    for sid in ("web-x", "web-y"):
        assert agent.put_true("/v1/catalog/register", {
            "Node": "node0", "Address": "127.0.0.2",
            "Service": {"ID": sid, "Service": "web", "Port": 4000, "Tags": ["c"]},
            "Check": {"CheckID": sid + "-chk", "Name": "chk", "Status": "warning",
                      "ServiceID": sid}})
    sums = agent.get_json("/v1/internal/ui/services")
    # As Consul's prepSummaryOutput: by name, and Tags and Nodes by sort.Strings.
    names = [s["Name"] for s in sums]
    assert names == sorted(names) and {"alpha", "web", "zeta"} <= set(names)
    web = next(s for s in sums if s["Name"] == "web")
    assert web["Tags"] == ["a", "b", "c", "v1", "v2"]
    assert web["Nodes"] == ["node0", "node1"]
    assert web["InstanceCount"] == 4
    # node1's serfHealth once, node0's disk once, each instance's own check.
    assert (web["ChecksPassing"], web["ChecksWarning"], web["ChecksCritical"]) == (1, 2, 1)


def test_nodes_summary(agent):
    register(agent, "web1", "web", 3000, ["v1"], {"CheckID": "web1-ttl", "TTL": "30s"})
    nodes = agent.get_json("/v1/internal/ui/nodes")
    assert [n["Node"] for n in nodes] == ["node1"]
    n = nodes[0]
    assert n["Address"] == "127.0.0.1"
    assert {s["ID"] for s in n["Services"]} >= {"web1"}
    checks = {c["CheckID"]: c for c in n["Checks"]}
    assert checks["serfHealth"]["Status"] == "passing"
    assert checks["web1-ttl"]["Status"] == "critical"  # a TTL check starts critical
    assert checks["web1-ttl"]["ServiceName"] == "web"


def test_summaries_block_until_a_change(agent):
    register(agent, "web1", "web", 3000, [], {"CheckID": "web1-ttl", "TTL": "30s"})
    for path in ("/v1/internal/ui/services", "/v1/internal/ui/nodes"):
        idx = agent.get(path).index
        # Nothing changes: the query waits its whole (short) wait and returns the same index.
        r = agent.get(f"{path}?index={idx}&wait=200ms")
        assert r.status == 200 and r.index == idx
    idx = agent.get("/v1/internal/ui/services").index
    result = {}

    def blocked():
        result["r"] = agent.get(f"/v1/internal/ui/services?index={idx}&wait=30s", timeout=40)

    t = threading.Thread(target=blocked)
    t.start()
    try:
        assert agent.put("/v1/agent/check/fail/web1-ttl?note=down").status == 200
        assert agent.put("/v1/agent/check/pass/web1-ttl").status == 200
    finally:
        t.join(45)
    assert not t.is_alive()
    r = result["r"]
    assert r.index > idx
    web = next(s for s in r.json() if s["Name"] == "web")
    assert web["ChecksCritical"] + web["ChecksPassing"] == 2
    wait_until(lambda: next(s for s in agent.get_json("/v1/internal/ui/services")
                            if s["Name"] == "web")["ChecksPassing"] == 2, 5, what="passing")


def test_client_agent_serves_the_ui_with_the_servers_data(agent_factory):
    """A client agent with -ui serves the files itself; the summaries come from the servers."""
    server = agent_factory(node="loadbalancer")
    client = agent_factory(node="web1", server=False,
                           extra_args=["-ui", "-retry-join", f"127.0.0.1:{server.port}"])
    assert client.get("/ui/app.js").status == 200
    assert client.get("/").status == 302
    assert server.get("/").status == 200  # the server runs without -ui
    register(client, "web1", "web", 3000, ["v1"],
             {"CheckID": "web1-ttl", "TTL": "60s", "Status": "passing"})

    def web_summary():
        for s in client.get_json("/v1/internal/ui/services"):
            if s["Name"] == "web":
                return s
        return None

    web = wait_until(web_summary, 10, what="web in the client's summary")
    assert web["Nodes"] == ["web1"] and web["InstanceCount"] == 1
    nodes = wait_until(lambda: {n["Node"]: n for n in client.get_json("/v1/internal/ui/nodes")
                                if n["Node"] in ("web1", "loadbalancer")}, 10, what="nodes")
    assert "web1" in nodes
    assert [s["ID"] for s in nodes["web1"]["Services"]] == ["web1"]
