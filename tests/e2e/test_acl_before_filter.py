"""?filter with ACLs: as current Consul (hashicorp/consul#21950, a security fix in 1.20.x),
the token's ACLs apply first and the filter runs only over what the token may read, so a filter
cannot probe what the token may not see: X-Consul-Results-Filtered-By-ACLs answers as though
there were no filter. (Older Consul filtered first, and the header then told whether a hidden
entry matched the filter.) Each read is asked with a filter that would drop the hidden entry and
with one that would keep it: the header is the same, and the hidden entry never shows."""

import json
import urllib.parse

import pytest

ROOT = {"X-Consul-Token": "root"}
FLAG = "X-Consul-Results-Filtered-By-ACLs"


def token(a, name, rules):
    assert a.put("/v1/acl/policy", {"Name": name, "Rules": rules}, headers=ROOT).status == 200
    r = a.put("/v1/acl/token", {"Policies": [{"Name": name}]}, headers=ROOT)
    assert r.status == 200, r
    return {"X-Consul-Token": r.json()["SecretID"]}


@pytest.fixture
def setup(agent_factory, tmp_path):
    cfg = tmp_path / "acl.json"
    cfg.write_text(json.dumps({"acl": {"enabled": True, "default_policy": "deny",
                                       "tokens": {"initial_management": "root"}}}))
    a = agent_factory(config_files=[cfg])
    for sid, name, port in (("web1", "web", 3000), ("db1", "db", 5432)):
        r = a.put("/v1/agent/service/register",
                  {"ID": sid, "Name": name, "Port": port,
                   "Check": {"CheckID": sid + "-ttl", "TTL": "300s"}}, headers=ROOT)
        assert r.status == 200, r
    # Another node, which node1_only may not read, with an instance of web and its check.
    r = a.put("/v1/catalog/register", {
        "Node": "n2", "Address": "127.0.0.2",
        "Service": {"ID": "web2", "Service": "web", "Port": 3001},
        "Check": {"CheckID": "web2-chk", "Name": "chk", "Status": "passing",
                  "ServiceID": "web2"}}, headers=ROOT)
    assert r.status == 200, r
    return a, {
        "node1_only": token(a, "node1-only", 'service_prefix "" { policy = "read" }\n'
                                             'node "node1" { policy = "read" }'),
        "web_only": token(a, "web-only", 'service "web" { policy = "read" }\n'
                                         'node_prefix "" { policy = "read" }'),
    }


# (path, token, filter that would drop what the token may not see, filter that would keep some
# of it, a string only that hidden part's rendering holds)
CASES = [
    ("/v1/catalog/service/web", "node1_only", "ServicePort == 3000", "ServicePort == 3001",
     '"n2"'),
    ("/v1/health/service/web", "node1_only", "Service.Port == 3000", "Service.Port == 3001",
     '"n2"'),
    ("/v1/catalog/nodes", "node1_only", 'Node == "node1"', 'Node == "n2"', '"n2"'),
    ("/v1/internal/ui/nodes", "node1_only", 'Node == "node1"', 'Node == "n2"', '"n2"'),
    ("/v1/health/state/any", "node1_only", 'Node == "node1"', 'Node == "n2"', '"n2"'),
    ("/v1/health/checks/web", "node1_only", 'Node == "node1"', 'Node == "n2"', '"n2"'),
    ("/v1/internal/ui/services", "web_only", 'Service.Service == "web"',
     'Service.Service == "db"', '"db"'),
    # an instance on a node the token may not read is left out of the summary (Nodes), as
    # Consul's service dump leaves it out
    ("/v1/internal/ui/services", "node1_only", 'Node.Node == "node1"', 'Node.Node == "n2"',
     '"n2"'),
    ("/v1/catalog/node/node1", "web_only", 'Service == "web"', 'Service == "db"', '"db"'),
    ("/v1/catalog/node-services/node1", "web_only", 'Service == "web"', 'Service == "db"',
     '"db"'),
    ("/v1/health/node/node1", "web_only", 'ServiceName != "db"', 'ServiceName == "db"',
     '"db"'),
    ("/v1/agent/services", "web_only", 'Service == "web"', 'Service == "db"', '"db"'),
    ("/v1/agent/checks", "web_only", 'ServiceName != "db"', 'ServiceName == "db"', '"db"'),
]


@pytest.mark.parametrize("path,tok,drops,keeps,hidden", CASES,
                         ids=[c[0] + " " + c[1] for c in CASES])
def test_header_as_though_there_were_no_filter(setup, path, tok, drops, keeps, hidden):
    a, tokens = setup
    headers = tokens[tok]

    def get(flt):
        r = a.get(f"{path}?filter={urllib.parse.quote(flt)}", headers=headers)
        assert r.status == 200, (path, flt, r)
        assert hidden not in r.text, (path, flt, r.text)
        return r

    # The hidden part exists: with root it shows, with the token it is hidden and said so.
    assert hidden in a.get(path, headers=ROOT).text
    assert a.get(path, headers=headers).header(FLAG) == "true"
    assert get(drops).header(FLAG) == "true", (path, drops)
    assert get(keeps).header(FLAG) == "true", (path, keeps)
