"""Consul's Connect reads: /v1/health/connect/NAME and /v1/catalog/connect/NAME (consul-template's
`connect`, the Python and Node clients' health.connect) answer the Connect-capable instances of
a service: sidecar proxies registered with Kind "connect-proxy" whose Proxy names it as
DestinationServiceName, and its own instances registered with Connect.Native."""

from helpers import run_blocking, wait_until

PROXY = {"ID": "web-sidecar-proxy", "Name": "web-sidecar-proxy", "Kind": "connect-proxy",
         "Port": 21000, "Tags": ["mesh"],
         "Proxy": {"DestinationServiceName": "web", "DestinationServiceID": "web1",
                   "LocalServiceAddress": "127.0.0.1", "LocalServicePort": 8080,
                   "Upstreams": [{"DestinationName": "db", "LocalBindPort": 9191}]},
         "Check": {"CheckID": "proxy-ttl", "TTL": "1h"}}


def register_mesh(agent):
    agent.register_service({"ID": "web1", "Name": "web", "Port": 8080})
    agent.register_service(PROXY)
    agent.register_service({"ID": "api1", "Name": "api", "Port": 7000,
                            "Connect": {"Native": True}})
    agent.register_service({"ID": "db-proxy", "Name": "db-proxy", "Kind": "connect-proxy",
                            "Port": 21001, "Proxy": {"DestinationServiceName": "db"}})
    agent.register_service({"ID": "db1", "Name": "db", "Port": 5432})


def test_health_connect_answers_proxies_and_native_instances(agent):
    register_mesh(agent)
    r = agent.get("/v1/health/connect/web")
    assert r.status == 200 and r.index > 0
    entries = r.json()
    assert [e["Service"]["ID"] for e in entries] == ["web-sidecar-proxy"]
    svc = entries[0]["Service"]
    assert svc["Kind"] == "connect-proxy" and svc["Port"] == 21000
    assert svc["Proxy"]["DestinationServiceName"] == "web"
    assert sorted(c["CheckID"] for c in entries[0]["Checks"]) == ["proxy-ttl", "serfHealth"]
    # A native service is its own Connect endpoint; a name without either has none.
    native = agent.get_json("/v1/health/connect/api")
    assert [(e["Service"]["ID"], e["Service"]["Connect"]) for e in native] == [
        ("api1", {"Native": True})]
    assert agent.get_json("/v1/health/connect/nothing") == []
    # The same parameters as /v1/health/service: passing, tag, filter; names case-insensitive.
    assert agent.get_json("/v1/health/connect/web?passing") == []
    agent.put_ok("/v1/agent/check/pass/proxy-ttl")
    assert len(agent.get_json("/v1/health/connect/WEB?passing")) == 1
    assert len(agent.get_json("/v1/health/connect/web?tag=mesh")) == 1
    assert agent.get_json("/v1/health/connect/web?tag=other") == []
    assert len(agent.get_json("/v1/health/connect/web?filter=Service.Port%20%3D%3D%2021000")) == 1
    assert agent.get_json("/v1/health/connect/web?filter=Service.Port%20%3D%3D%201") == []


def test_catalog_connect_answers_service_nodes(agent):
    register_mesh(agent)
    entries = agent.get_json("/v1/catalog/connect/web")
    assert [(e["ServiceID"], e["ServiceKind"], e["ServicePort"]) for e in entries] == [
        ("web-sidecar-proxy", "connect-proxy", 21000)]
    assert entries[0]["ServiceProxy"]["LocalServicePort"] == 8080
    assert [e["ServiceID"] for e in agent.get_json("/v1/catalog/connect/db")] == ["db-proxy"]
    assert [e["ServiceID"] for e in agent.get_json("/v1/catalog/connect/api")] == ["api1"]
    assert agent.get_json("/v1/catalog/connect/web?filter=ServiceKind%20%3D%3D%20%22%22") == []


def test_registration_keeps_kind_proxy_and_connect(agent):
    register_mesh(agent)
    services = agent.get_json("/v1/agent/services")
    proxy = services["web-sidecar-proxy"]
    assert proxy["Kind"] == "connect-proxy"
    for k, v in PROXY["Proxy"].items():
        assert proxy["Proxy"][k] == v
    assert services["api1"]["Connect"] == {"Native": True}
    node_view = agent.get_json("/v1/catalog/service/web-sidecar-proxy")[0]
    assert node_view["ServiceProxy"]["Upstreams"] == PROXY["Proxy"]["Upstreams"]


def test_connect_reads_block_until_a_proxy_appears(agent):
    register_mesh(agent)
    for path in ("/v1/health/connect/web", "/v1/catalog/connect/web"):
        first = agent.get(path)
        waiter = run_blocking(lambda: agent.get(f"{path}?index={first.index}&wait=30s",
                                                timeout=40))
        second = dict(PROXY, ID=f"web-proxy-{path.split('/')[2]}", Port=21002)
        del second["Check"]
        agent.register_service(second)
        r, _ = waiter()
        assert r.status == 200 and r.index > first.index
        assert len(r.json()) == len(first.json()) + 1


def test_a_client_agents_proxy_reaches_the_servers_connect_reads(agent_factory):
    """A client agent pushes Kind, Proxy and Connect to the server's catalog, where the connect
    reads find them (the reads through the client agent are forwarded there)."""
    server = agent_factory(node="server")
    client = agent_factory(node="web1", server=False,
                           extra_args=["-retry-join", f"127.0.0.1:{server.port}"])
    register_mesh(client)

    def connect_ids(agent, name):
        return [e["Service"]["ID"] for e in agent.get_json(f"/v1/health/connect/{name}")]

    wait_until(lambda: connect_ids(server, "web") == ["web-sidecar-proxy"], 10,
               what="the proxy in the server's catalog")
    assert connect_ids(server, "api") == ["api1"]
    assert connect_ids(client, "web") == ["web-sidecar-proxy"]
    entry = server.get_json("/v1/catalog/connect/web")[0]
    assert entry["ServiceProxy"]["DestinationServiceID"] == "web1"
