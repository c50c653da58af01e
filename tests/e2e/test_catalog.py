"""Catalog endpoints (/v1/catalog/*)."""

from helpers import assert_query_meta, assert_text_error

NODE_FIELDS = {"ID", "Node", "Address", "Datacenter", "TaggedAddresses", "Meta", "CreateIndex",
               "ModifyIndex"}
# ServiceNode fields that are always present (Consul's full field list); the others are
# omitted when empty (ServiceTaggedAddresses, ServiceSocketPath) or Enterprise-only.
SERVICE_NODE_FIELDS = {"ID", "Node", "Address", "Datacenter", "TaggedAddresses", "NodeMeta",
                       "ServiceKind", "ServiceID", "ServiceName", "ServiceTags", "ServiceAddress",
                       "ServiceWeights", "ServiceMeta", "ServicePort", "ServiceEnableTagOverride",
                       "ServiceProxy", "ServiceConnect", "CreateIndex", "ModifyIndex"}
SERVICE_NODE_OPTIONAL = {"ServiceTaggedAddresses", "ServiceSocketPath", "Namespace", "Partition",
                         "PeerName"}
NODE_SERVICE_FIELDS = {"ID", "Service", "Tags", "Address", "Meta", "Port", "Weights",
                       "EnableTagOverride", "CreateIndex", "ModifyIndex"}


def test_datacenters(agent):
    """["dc1"], JSON."""
    r = agent.get("/v1/catalog/datacenters")
    assert r.status == 200
    assert r.content_type == "application/json"
    assert r.json() == ["dc1"]


def test_nodes(agent):
    """The server's own node with the Node object shape, plus query metadata."""
    r = agent.get("/v1/catalog/nodes")
    assert r.status == 200 and r.content_type == "application/json"
    assert_query_meta(r)
    nodes = r.json()
    assert [n["Node"] for n in nodes] == ["node1"]
    n = nodes[0]
    assert NODE_FIELDS <= set(n), f"missing {NODE_FIELDS - set(n)}"
    assert n["Address"] == "127.0.0.1"
    assert n["Datacenter"] == "dc1"
    assert isinstance(n["ID"], str)
    assert isinstance(n["TaggedAddresses"], dict)
    assert all(isinstance(v, str) for v in n["TaggedAddresses"].values()), \
        "node TaggedAddresses is a map of strings"
    assert isinstance(n["Meta"], dict)
    assert isinstance(n["CreateIndex"], int) and isinstance(n["ModifyIndex"], int)


def test_nodes_sorted_by_name(agent):
    """Ordered by node name."""
    for node in ("zeta", "alpha"):
        agent.put_true("/v1/catalog/register", {"Node": node, "Address": "10.0.0.9"})
    assert [n["Node"] for n in agent.get_json("/v1/catalog/nodes")] == ["alpha", "node1", "zeta"]


def test_services_fresh_server_has_consul(agent):
    """A server contributes "consul": []."""
    r = agent.get("/v1/catalog/services")
    assert r.status == 200 and r.content_type == "application/json"
    assert_query_meta(r)
    assert r.json() == {"consul": []}


def test_services_union_of_tags(agent):
    """Service name -> all distinct tags across instances; [] when none."""
    agent.register_service({"ID": "w1", "Name": "web", "Tags": ["v1", "primary"]})
    agent.register_service({"ID": "w2", "Name": "web", "Tags": ["v1", "canary"]})
    agent.register_service({"ID": "d1", "Name": "db"})
    svcs = agent.get_json("/v1/catalog/services")
    assert set(svcs) == {"consul", "web", "db"}
    assert sorted(svcs["web"]) == ["canary", "primary", "v1"]
    assert svcs["db"] == []
    assert svcs["consul"] == []


def test_service_nodes_shape(agent):
    """ServiceNode field names and values."""
    agent.register_service({"ID": "w1", "Name": "web", "Tags": ["v1"], "Port": 3000,
                            "Meta": {"env": "test"}})
    r = agent.get("/v1/catalog/service/web")
    assert r.status == 200 and r.content_type == "application/json"
    assert_query_meta(r)
    entries = r.json()
    assert len(entries) == 1
    e = entries[0]
    assert SERVICE_NODE_FIELDS <= set(e), f"missing {SERVICE_NODE_FIELDS - set(e)}"
    extra = set(e) - SERVICE_NODE_FIELDS - SERVICE_NODE_OPTIONAL
    assert not extra, f"unexpected ServiceNode fields {extra}"
    assert e["Node"] == "node1"
    assert e["Address"] == "127.0.0.1"
    assert e["Datacenter"] == "dc1"
    assert e["ServiceKind"] == ""
    assert e["ServiceID"] == "w1"
    assert e["ServiceName"] == "web"
    assert e["ServiceTags"] == ["v1"]
    assert e["ServiceAddress"] == ""
    assert e["ServiceWeights"] == {"Passing": 1, "Warning": 1}
    assert e["ServiceMeta"] == {"env": "test"}
    assert e["ServicePort"] == 3000
    assert e["ServiceEnableTagOverride"] is False
    assert isinstance(e["ServiceProxy"], dict)
    assert isinstance(e["ServiceConnect"], dict)
    assert isinstance(e["CreateIndex"], int) and e["CreateIndex"] >= 1
    assert e["ModifyIndex"] >= e["CreateIndex"]


def test_service_nodes_ordered_by_node_then_id(agent):
    """Ordered by node name then service ID."""
    agent.register_service({"ID": "web-b", "Name": "web"})
    agent.register_service({"ID": "web-a", "Name": "web"})
    agent.put_true("/v1/catalog/register",
                   {"Node": "aaa", "Address": "10.0.0.2",
                    "Service": {"ID": "web-z", "Service": "web"}})
    got = [(e["Node"], e["ServiceID"]) for e in agent.get_json("/v1/catalog/service/web")]
    assert got == [("aaa", "web-z"), ("node1", "web-a"), ("node1", "web-b")]


def test_service_tag_filter_case_insensitive(agent):
    """?tag (repeatable, AND) matches case-insensitively."""
    agent.register_service({"ID": "w1", "Name": "web", "Tags": ["Primary", "v1"]})
    agent.register_service({"ID": "w2", "Name": "web", "Tags": ["secondary", "v1"]})
    ids = lambda q: sorted(e["ServiceID"] for e in agent.get_json("/v1/catalog/service/web" + q))
    assert ids("?tag=primary") == ["w1"]
    assert ids("?tag=PRIMARY") == ["w1"]
    assert ids("?tag=v1") == ["w1", "w2"]
    assert ids("?tag=v1&tag=secondary") == ["w2"]
    assert ids("?tag=primary&tag=secondary") == []
    assert ids("?tag=nope") == []


def test_service_name_case_insensitive(agent):
    """Service names are matched case-insensitively by the catalog."""
    agent.register_service({"ID": "w1", "Name": "web"})
    assert [e["ServiceID"] for e in agent.get_json("/v1/catalog/service/WEB")] == ["w1"]


def test_unknown_service_is_empty_list_with_index(agent):
    """Unknown service -> 200 [] with index headers."""
    r = agent.get("/v1/catalog/service/nope")
    assert r.status == 200
    assert r.json() == []
    assert_query_meta(r)


def test_node_services(agent):
    """{"Node": Node, "Services": {id: NodeService}}."""
    agent.register_service({"ID": "w1", "Name": "web", "Port": 80, "Tags": ["a"]})
    r = agent.get("/v1/catalog/node/node1")
    assert r.status == 200 and r.content_type == "application/json"
    assert_query_meta(r)
    body = r.json()
    assert set(body) == {"Node", "Services"}
    assert body["Node"]["Node"] == "node1"
    assert NODE_FIELDS <= set(body["Node"])
    svcs = dict(body["Services"])
    svcs.pop("consul", None)
    assert set(svcs) == {"w1"}
    s = svcs["w1"]
    assert NODE_SERVICE_FIELDS <= set(s), f"missing {NODE_SERVICE_FIELDS - set(s)}"
    assert (s["ID"], s["Service"], s["Port"], s["Tags"]) == ("w1", "web", 80, ["a"])
    assert s["Meta"] == {}
    assert s["Weights"] == {"Passing": 1, "Warning": 1}


def test_unknown_node_is_null(agent):
    """Unknown node -> 200 with body null."""
    r = agent.get("/v1/catalog/node/nope")
    assert r.status == 200
    assert r.content_type == "application/json"
    assert r.body.strip() == b"null"
    assert_query_meta(r)


def test_catalog_register_external_service(agent):
    """Register returns true; node, service and (unexecuted) check appear."""
    agent.put_true("/v1/catalog/register", {
        "Node": "ext1", "Address": "10.1.2.3", "NodeMeta": {"rack": "r1"},
        "Service": {"ID": "db1", "Service": "db", "Port": 5432, "Tags": ["pg"]},
        "Check": {"CheckID": "db-alive", "Name": "db alive", "Status": "passing",
                  "ServiceID": "db1"},
    })
    nodes = {n["Node"]: n for n in agent.get_json("/v1/catalog/nodes")}
    assert nodes["ext1"]["Address"] == "10.1.2.3"
    assert nodes["ext1"]["Meta"] == {"rack": "r1"}
    e = agent.get_json("/v1/catalog/service/db")
    assert [(x["Node"], x["ServiceID"], x["ServicePort"], x["Address"]) for x in e] == \
        [("ext1", "db1", 5432, "10.1.2.3")]
    health = agent.get_json("/v1/health/service/db?passing")
    assert len(health) == 1
    assert [c["CheckID"] for c in health[0]["Checks"]] == ["db-alive"], \
        "catalog-registered nodes get no serfHealth"
    node_checks = agent.get_json("/v1/health/node/ext1")
    assert [c["CheckID"] for c in node_checks] == ["db-alive"]


def test_catalog_register_check_default_status_critical(agent):
    """Catalog checks default to critical and CheckID defaults to Name."""
    agent.put_true("/v1/catalog/register", {"Node": "ext1", "Address": "10.1.2.3",
                                            "Check": {"Name": "ping"}})
    checks = agent.get_json("/v1/health/node/ext1")
    assert [(c["CheckID"], c["Status"], c["ServiceID"]) for c in checks] == \
        [("ping", "critical", "")]


def test_catalog_register_missing_node_or_address(agent):
    """Missing Node / Address -> error "Must provide node" / "Must provide address"."""
    r = agent.put("/v1/catalog/register", {"Address": "10.0.0.1"})
    assert r.status in (400, 500), r  # contract: an error; Consul answers it from the RPC layer
    assert r.content_type == "text/plain"
    assert "Must provide node" in r.text
    r = agent.put("/v1/catalog/register", {"Node": "x"})
    assert r.status in (400, 500), r
    assert "Must provide address" in r.text
    assert [n["Node"] for n in agent.get_json("/v1/catalog/nodes")] == ["node1"]


def test_catalog_deregister_service_check_node(agent):
    """Deregister ServiceID, CheckID, then the node; each returns true."""
    agent.put_true("/v1/catalog/register", {
        "Node": "ext1", "Address": "10.1.2.3",
        "Service": {"ID": "db1", "Service": "db"},
        "Checks": [{"CheckID": "n1", "Name": "node chk", "Status": "passing"},
                   {"CheckID": "s1", "Name": "svc chk", "Status": "passing", "ServiceID": "db1"}],
    })
    agent.put_true("/v1/catalog/register", {
        "Node": "ext1", "Address": "10.1.2.3", "Service": {"ID": "cache1", "Service": "cache"}})
    agent.put_true("/v1/catalog/deregister", {"Node": "ext1", "ServiceID": "db1"})
    assert agent.get_json("/v1/catalog/service/db") == []
    assert [c["CheckID"] for c in agent.get_json("/v1/health/node/ext1")] == ["n1"]
    agent.put_true("/v1/catalog/deregister", {"Node": "ext1", "CheckID": "n1"})
    assert agent.get_json("/v1/health/node/ext1") == []
    assert len(agent.get_json("/v1/catalog/service/cache")) == 1
    agent.put_true("/v1/catalog/deregister", {"Node": "ext1"})
    assert [n["Node"] for n in agent.get_json("/v1/catalog/nodes")] == ["node1"]
    assert agent.get_json("/v1/catalog/service/cache") == []
    assert agent.get("/v1/catalog/node/ext1").body.strip() == b"null"


def test_agent_services_appear_in_catalog(agent):
    """An agent registration shows in the catalog view of the same node."""
    agent.register_service({"ID": "w1", "Name": "web", "Address": "10.9.9.9", "Port": 8080})
    e = agent.get_json("/v1/catalog/service/web")
    assert [(x["Node"], x["ServiceAddress"], x["ServicePort"]) for x in e] == \
        [("node1", "10.9.9.9", 8080)]


def test_catalog_register_wrong_type_is_400(agent):
    """A wrong-typed field is a decode failure -> 400; nothing written."""
    r = agent.put("/v1/catalog/register", {"Node": "ext1", "Address": "10.1.2.3",
                                           "Service": {"Service": "db", "Port": "x"}})
    assert_text_error(r, 400, startswith="Request decode failed")
    assert [n["Node"] for n in agent.get_json("/v1/catalog/nodes")] == ["node1"]


def test_nodes_node_meta_filter(agent):
    """Node-meta=key:value (repeatable, AND)."""
    agent.put_true("/v1/catalog/register", {"Node": "r1", "Address": "10.0.0.1",
                                            "NodeMeta": {"rack": "a", "os": "linux"}})
    agent.put_true("/v1/catalog/register", {"Node": "r2", "Address": "10.0.0.2",
                                            "NodeMeta": {"rack": "b", "os": "linux"}})
    names = lambda q: [n["Node"] for n in agent.get_json("/v1/catalog/nodes" + q)]
    assert names("?node-meta=rack:a") == ["r1"]
    assert names("?node-meta=os:linux") == ["r1", "r2"]
    assert names("?node-meta=os:linux&node-meta=rack:b") == ["r2"]
    assert names("?node-meta=rack:c") == []


def test_unknown_datacenter(agent):
    """Issue 15 item 5: ?dc= and a body's Datacenter naming another datacenter: 500 "No path to datacenter",
    and nothing is written."""
    body = {"Datacenter": "dc2", "Node": "n2", "Address": "10.0.0.2"}
    assert_text_error(agent.put("/v1/catalog/register", body), 500,
                      equals="No path to datacenter")
    assert agent.get_json("/v1/catalog/node/n2") is None
    agent.put_true("/v1/catalog/register", dict(body, Datacenter="DC1"))
    assert_text_error(agent.put("/v1/catalog/deregister", {"Datacenter": "dc2", "Node": "n2"}),
                      500, equals="No path to datacenter")
    assert agent.get_json("/v1/catalog/node/n2") is not None
    for path in ("/v1/health/service/web?dc=dc2", "/v1/kv/k?dc=dc9", "/v1/agent/self?dc=x"):
        assert_text_error(agent.get(path), 500, equals="No path to datacenter")
