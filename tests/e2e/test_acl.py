"""ACLs enforced by a server (issue 3 "Security: ACL tokens").

One agent with acl.enabled, default_policy deny and initial_management "root"; state kept in a
data dir so a restart shows the tokens and policies survive.
"""

import json

import pytest

from helpers import assert_text_error

ROOT = {"X-Consul-Token": "root"}
ANON = "00000000-0000-0000-0000-000000000002"


def acl_agent(agent_factory, tmp_path, policy="deny"):
    cfg = tmp_path / "acl.json"
    cfg.write_text(json.dumps({"acl": {"enabled": True, "default_policy": policy,
                                       "tokens": {"initial_management": "root"}}}))
    return agent_factory(config_files=[cfg], data_dir=tmp_path / "data")


def create_policy(agent, name, rules):
    r = agent.put("/v1/acl/policy", {"Name": name, "Rules": rules}, headers=ROOT)
    assert r.status == 200, r
    return r.json()


def create_token(agent, policy_name):
    r = agent.put("/v1/acl/token", {"Description": policy_name,
                                    "Policies": [{"Name": policy_name}]}, headers=ROOT)
    assert r.status == 200, r
    tok = r.json()
    assert tok["SecretID"] and tok["AccessorID"] and tok["Policies"][0]["Name"] == policy_name
    return tok


@pytest.fixture
def setup(agent_factory, tmp_path):
    a = acl_agent(agent_factory, tmp_path)
    create_policy(a, "app-write", 'key_prefix "app/" { policy = "write" }  # app keys only')
    create_policy(a, "read-only", 'service_prefix "" { policy = "read" }\n'
                                  'node_prefix "" {\n  policy = "read"\n}\n')
    create_policy(a, "svc-read-only", 'service_prefix "" { policy = "read" }')
    toks = {n: create_token(a, n) for n in ("app-write", "read-only", "svc-read-only")}
    return a, toks


def test_default_policy_header(setup):
    a, _ = setup
    assert a.get("/v1/status/leader").header("X-Consul-Default-ACL-Policy") == "deny"


def test_writes_without_token_refused(setup):
    a, _ = setup
    r = a.put("/v1/kv/foo", "x")
    assert_text_error(r, 403, equals=f"Permission denied: token with AccessorID '{ANON}' "
                                     "lacks permission 'key:write' on \"foo\"")
    assert_text_error(a.put("/v1/agent/service/register", {"Name": "web"}), 403,
                      contains="lacks permission 'service:write' on \"web\"")
    r = a.put("/v1/kv/foo", "x", headers=ROOT)
    assert r.status == 200 and r.json() is True


def test_prefix_token(setup):
    a, toks = setup
    t = {"X-Consul-Token": toks["app-write"]["SecretID"]}
    assert a.put("/v1/kv/app/x", "1", headers=t).json() is True
    r = a.put("/v1/kv/other/x", "1", headers=t)
    acc = toks["app-write"]["AccessorID"]
    assert_text_error(r, 403, equals=f"Permission denied: token with AccessorID '{acc}' lacks "
                                     "permission 'key:write' on \"other/x\"")
    assert a.put("/v1/kv/other/y", "2", headers=ROOT).status == 200
    r = a.get("/v1/kv/?recurse", headers=t)
    assert r.status == 200
    assert [e["Key"] for e in r.json()] == ["app/x"]
    assert r.header("X-Consul-Results-Filtered-By-ACLs") == "true"
    all_keys = a.get_json("/v1/kv/?keys", headers=ROOT)
    assert "other/y" in all_keys and "app/x" in all_keys
    assert a.get("/v1/kv/?keys", headers=t).json() == ["app/x"]
    assert_text_error(a.get("/v1/kv/other/y", headers=t), 403, contains="'key:read'")


def test_read_only_token(setup):
    a, toks = setup
    a.put("/v1/agent/service/register", {"Name": "web", "Port": 80}, headers=ROOT)
    ro = {"X-Consul-Token": toks["read-only"]["SecretID"]}
    entries = a.get_json("/v1/health/service/web", headers=ro)
    assert [e["Service"]["Service"] for e in entries] == ["web"]
    assert "web" in a.get_json("/v1/catalog/services", headers=ro)
    assert_text_error(a.put("/v1/agent/service/register", {"Name": "web2"}, headers=ro), 403,
                      contains="lacks permission 'service:write' on \"web2\"")
    # Without node:read, health entries are filtered (Consul needs both).
    svc_only = {"X-Consul-Token": toks["svc-read-only"]["SecretID"]}
    r = a.get("/v1/health/service/web", headers=svc_only)
    assert r.status == 200 and r.json() == []
    assert r.header("X-Consul-Results-Filtered-By-ACLs") == "true"
    # Anonymous sees nothing, and is not told about filtering.
    r = a.get("/v1/catalog/services")
    assert r.status == 200 and r.json() == {}
    assert r.header("X-Consul-Results-Filtered-By-ACLs") is None


def test_token_sources_and_unknown(setup):
    a, toks = setup
    secret = toks["app-write"]["SecretID"]
    assert a.put(f"/v1/kv/app/q?token={secret}", "1").status == 200
    assert a.put("/v1/kv/app/h", "1", headers={"X-Consul-Token": secret}).status == 200
    assert a.put("/v1/kv/app/b", "1", headers={"Authorization": f"bearer {secret}"}).status == 200
    assert a.put("/v1/kv/app/b", "1", headers={"Authorization": f"Bearer {secret}"}).status == 200
    # ?token= wins over the header.
    assert a.put(f"/v1/kv/app/q?token={secret}", "1", headers=ROOT).status == 200
    assert_text_error(a.put("/v1/kv/app/q", "1", headers={"X-Consul-Token": "nope"}), 403,
                      equals="ACL not found")
    assert_text_error(a.get("/v1/kv/app/q?token=nope"), 403, equals="ACL not found")
    me = a.get_json("/v1/acl/token/self", headers={"X-Consul-Token": secret})
    assert me["AccessorID"] == toks["app-write"]["AccessorID"]


def test_acl_api_needs_acl_permission(setup):
    a, toks = setup
    t = {"X-Consul-Token": toks["app-write"]["SecretID"]}
    assert_text_error(a.get("/v1/acl/tokens", headers=t), 403, contains="'acl:read'")
    assert_text_error(a.put("/v1/acl/policy", {"Name": "x", "Rules": ""}, headers=t), 403,
                      contains="'acl:write'")
    names = {p["Name"] for p in a.get_json("/v1/acl/policies", headers=ROOT)}
    assert {"global-management", "app-write", "read-only"} <= names
    r = a.put("/v1/acl/policy", {"Name": "bad", "Rules": 'key_prefix "" { policy = "nope" }'},
              headers=ROOT)
    assert_text_error(r, 400, contains="invalid policy")
    assert_text_error(a.put("/v1/acl/bootstrap"), 403, contains="ACL bootstrap no longer allowed")


def test_state_survives_restart(setup):
    a, toks = setup
    secret = toks["app-write"]["SecretID"]
    a.stop()
    a.start()
    assert a.put("/v1/kv/app/after", "1", headers={"X-Consul-Token": secret}).json() is True
    assert a.put("/v1/kv/other/after", "1", headers={"X-Consul-Token": secret}).status == 403
    tokens = a.get_json("/v1/acl/tokens", headers=ROOT)
    assert toks["app-write"]["AccessorID"] in {t["AccessorID"] for t in tokens}
    # The initial management token was not duplicated.
    assert sum(1 for t in tokens if t["SecretID"] == "root") == 1


def test_acls_disabled(agent_factory):
    a = agent_factory()
    r = a.put("/v1/kv/x", "1")
    assert r.status == 200
    assert r.header("X-Consul-Default-ACL-Policy") == "allow"
    assert_text_error(a.put("/v1/agent/token/default", {"Token": "x"}), 401,
                      equals="ACL support disabled")


# Every endpoint under /v1/acl/ that Consul registers (agent/http_register.go), and its
# internal/acl/authorize: each handler starts with checkACLDisabled (agent/acl_endpoint.go).
CONSUL_ACL_ENDPOINTS = [
    ("PUT", "/v1/acl/bootstrap"), ("POST", "/v1/acl/login"), ("POST", "/v1/acl/logout"),
    ("GET", "/v1/acl/replication"),
    ("GET", "/v1/acl/policies"), ("PUT", "/v1/acl/policy"), ("GET", "/v1/acl/policy/p1"),
    ("PUT", "/v1/acl/policy/p1"), ("DELETE", "/v1/acl/policy/p1"),
    ("GET", "/v1/acl/policy/name/p1"),
    ("GET", "/v1/acl/roles"), ("PUT", "/v1/acl/role"), ("GET", "/v1/acl/role/r1"),
    ("PUT", "/v1/acl/role/r1"), ("DELETE", "/v1/acl/role/r1"), ("GET", "/v1/acl/role/name/r1"),
    ("GET", "/v1/acl/binding-rules"), ("PUT", "/v1/acl/binding-rule"),
    ("GET", "/v1/acl/binding-rule/b1"), ("PUT", "/v1/acl/binding-rule/b1"),
    ("DELETE", "/v1/acl/binding-rule/b1"),
    ("GET", "/v1/acl/auth-methods"), ("PUT", "/v1/acl/auth-method"),
    ("GET", "/v1/acl/auth-method/m1"), ("PUT", "/v1/acl/auth-method/m1"),
    ("DELETE", "/v1/acl/auth-method/m1"),
    ("GET", "/v1/acl/tokens"), ("PUT", "/v1/acl/token"), ("GET", "/v1/acl/token/self"),
    ("GET", "/v1/acl/token/t1"), ("PUT", "/v1/acl/token/t1"), ("DELETE", "/v1/acl/token/t1"),
    ("PUT", "/v1/acl/token/t1/clone"),
    ("GET", "/v1/acl/templated-policies"), ("GET", "/v1/acl/templated-policy/name/builtin/dns"),
    ("POST", "/v1/acl/templated-policy/preview/builtin/dns"),
    ("POST", "/v1/internal/acl/authorize"),
]


def test_every_acl_endpoint_says_acls_are_disabled(agent):
    """With ACLs off Consul answers each ACL endpoint 401 "ACL support disabled", not 404,
    whatever the body; the ones meshkit does not implement included."""
    wrong = []
    for method, path in CONSUL_ACL_ENDPOINTS:
        r = agent.req(method, path, body=b"{}")
        if (r.status, r.content_type, r.text.rstrip("\n")) != (401, "text/plain",
                                                               "ACL support disabled"):
            wrong.append(f"{method} {path}: {r.status} {r.body[:80]!r}")
    assert not wrong, "\n".join(wrong)


def test_bootstrap_once(agent_factory, tmp_path):
    cfg = tmp_path / "acl.json"
    cfg.write_text(json.dumps({"acl": {"enabled": True, "default_policy": "deny"}}))
    a = agent_factory(config_files=[cfg])
    r = a.put("/v1/acl/bootstrap")
    assert r.status == 200, r
    secret = r.json()["SecretID"]
    assert a.put("/v1/kv/k", "1", headers={"X-Consul-Token": secret}).json() is True
    assert_text_error(a.put("/v1/acl/bootstrap"), 403, contains="ACL bootstrap no longer allowed")
    # The agent's default token applies to requests without one.
    assert a.put("/v1/agent/token/default", {"Token": secret},
                 headers={"X-Consul-Token": secret}).status == 200
    assert a.put("/v1/kv/k2", "1").json() is True


def test_bootstrap_reset_index_is_the_bootstraps(agent_factory, tmp_path):
    """Consul's reset index is the index of the bootstrap itself: ACL writes after it (and a
    restart) leave it as it was, and the reset file naming it allows one more bootstrap."""
    cfg = tmp_path / "acl.json"
    cfg.write_text(json.dumps({"acl": {"enabled": True, "default_policy": "deny"}}))
    data = tmp_path / "data"
    a = agent_factory(config_files=[cfg], data_dir=data)
    boot = a.put("/v1/acl/bootstrap").json()
    root = {"X-Consul-Token": boot["SecretID"]}
    assert a.put("/v1/acl/policy", {"Name": "p", "Rules": 'key "x" { policy = "read" }'},
                 headers=root).status == 200
    assert a.put("/v1/acl/token", {"Policies": [{"Name": "p"}]}, headers=root).status == 200
    refused = f"Permission denied: ACL bootstrap no longer allowed (reset index: {boot['CreateIndex']})"
    assert_text_error(a.put("/v1/acl/bootstrap"), 403, equals=refused)
    a.stop()
    a.start()
    assert_text_error(a.put("/v1/acl/bootstrap"), 403, equals=refused)
    (data / "acl-bootstrap-reset").write_text(f"{boot['CreateIndex']}\n")
    again = a.put("/v1/acl/bootstrap")
    assert again.status == 200, again
    assert again.json()["CreateIndex"] > boot["CreateIndex"]
    assert not (data / "acl-bootstrap-reset").exists()
    assert_text_error(a.put("/v1/acl/bootstrap"), 403, equals=(
        f"Permission denied: ACL bootstrap no longer allowed (reset index: {again.json()['CreateIndex']})"))


def test_check_operations_need_service_or_node_write(setup):
    """Check operations need service:write on the check's service, or node:write for a
    node-level check (Consul's rule): a service token may pass its own TTL check only."""
    a, toks = setup
    create_policy(a, "web-write", 'service "web" { policy = "write" }')
    web = {"X-Consul-Token": create_token(a, "web-write")["SecretID"]}
    r = a.put("/v1/agent/service/register",
              {"ID": "web1", "Name": "web", "Check": {"CheckID": "web-ttl", "TTL": "60s"}},
              headers=web)
    assert r.status == 200, r
    assert a.put("/v1/agent/check/pass/web-ttl", headers=web).status == 200
    assert a.get_json("/v1/agent/checks", headers=ROOT)["web-ttl"]["Status"] == "passing"
    r = a.put("/v1/agent/check/register", {"Name": "node-ttl", "TTL": "60s"}, headers=web)
    assert_text_error(r, 403, contains="lacks permission 'node:write'")
    assert a.put("/v1/agent/check/register", {"Name": "node-ttl", "TTL": "60s"},
                 headers=ROOT).status == 200
    assert_text_error(a.put("/v1/agent/check/pass/node-ttl", headers=web), 403,
                      contains="lacks permission 'node:write'")
    assert_text_error(a.put("/v1/agent/check/fail/web-ttl"), 403,
                      contains="lacks permission 'service:write' on \"web\"")
    assert_text_error(a.put("/v1/agent/check/deregister/web-ttl", headers=web | {
        "X-Consul-Token": toks["read-only"]["SecretID"]}), 403, contains="service:write")


def test_sessions_txn_and_events_need_permissions(setup):
    """Session:write on the node for sessions, key permissions per txn operation, event:write
    on the event's name; session lists are filtered by session:read."""
    import base64
    a, toks = setup
    app = {"X-Consul-Token": toks["app-write"]["SecretID"]}
    assert_text_error(a.put("/v1/session/create", {"Name": "s"}, headers=app), 403,
                      contains="lacks permission 'session:write' on \"node1\"")
    sid = a.put("/v1/session/create", {"Name": "s"}, headers=ROOT).json()["ID"]
    assert a.get_json("/v1/session/list", headers=app) == []
    assert [s["ID"] for s in a.get_json("/v1/session/list", headers=ROOT)] == [sid]
    assert_text_error(a.put(f"/v1/session/destroy/{sid}", headers=app), 403,
                      contains="session:write")

    ok = [{"KV": {"Verb": "set", "Key": "app/t", "Value": base64.b64encode(b"v").decode()}}]
    assert a.put("/v1/txn", ok, headers=app).status == 200
    bad = ok + [{"KV": {"Verb": "set", "Key": "other/t",
                        "Value": base64.b64encode(b"v").decode()}}]
    assert_text_error(a.put("/v1/txn", bad, headers=app), 403,
                      contains="lacks permission 'key:write' on \"other/t\"")
    assert a.get("/v1/kv/other/t", headers=ROOT).status == 404

    assert_text_error(a.put("/v1/event/fire/deploy", "x", headers=app), 403,
                      contains="event:write")
    assert a.put("/v1/event/fire/deploy", "x", headers=ROOT).status == 200


def test_client_agent_enforces_tokens_resolved_by_the_server(agent_factory, tmp_path):
    """A client agent holds no tokens: it asks the server what one may do, then enforces it on
    its own endpoints; its sync to the server uses its agent token."""
    from helpers import wait_until
    server = acl_agent(agent_factory, tmp_path)
    create_policy(server, "web-write", 'service "web" { policy = "write" }\n'
                                       'node_prefix "" { policy = "read" }')
    web = {"X-Consul-Token": create_token(server, "web-write")["SecretID"]}
    cfg = tmp_path / "client.json"
    cfg.write_text(json.dumps({"acl": {"enabled": True, "default_policy": "deny",
                                       "tokens": {"agent": "root"}},
                               "retry_join": [f"127.0.0.1:{server.port}"]}))
    client = agent_factory(node="web1", server=False, config_files=[cfg])

    svc = {"ID": "web-1", "Name": "web", "Port": 3000}
    assert_text_error(client.put("/v1/agent/service/register", svc), 403,
                      contains="lacks permission 'service:write' on \"web\"")
    assert_text_error(client.put("/v1/agent/service/register", svc,
                                 headers={"X-Consul-Token": "nope"}), 403, equals="ACL not found")
    assert client.put("/v1/agent/service/register", svc, headers=web).status == 200
    wait_until(lambda: [e["ServiceID"] for e in
                        server.get_json("/v1/catalog/service/web", headers=ROOT)] == ["web-1"],
               5, what="web-1 synced with the agent token")
    assert client.get_json("/v1/agent/services") == {}
    assert list(client.get_json("/v1/agent/services", headers=web)) == ["web-1"]
    # Reads forwarded to the server are judged there, with the caller's token.
    assert client.get_json("/v1/catalog/service/web") == []
    assert len(client.get_json("/v1/catalog/service/web", headers=web)) == 1


def test_heartbeats_need_node_write(setup):
    """Only a token with node:write on a node may announce it (agents use their agent token)."""
    a, toks = setup
    hb = {"Node": "web9", "Address": "127.0.0.1"}
    assert_text_error(a.put("/v1/internal/mesh/heartbeat", hb), 403,
                      contains="lacks permission 'node:write' on \"web9\"")
    assert a.get_json("/v1/catalog/node/web9", headers=ROOT) is None
    assert a.put("/v1/internal/mesh/heartbeat", hb, headers=ROOT).json()["Known"] is False
    assert a.get_json("/v1/catalog/node/web9", headers=ROOT)["Node"]["Node"] == "web9"
    assert_text_error(a.put("/v1/internal/mesh/leave", {"Node": "web9"}), 403,
                      contains="node:write")


def test_unimplemented_acl_endpoints_with_acls_on(agent_factory, tmp_path):
    """With ACLs on, roles and the rest are checked as Consul checks them, then not there."""
    a = acl_agent(agent_factory, tmp_path)
    assert_text_error(a.get("/v1/acl/roles"), 403, contains="Permission denied")
    assert_text_error(a.get("/v1/acl/roles", headers=ROOT), 404, contains="Invalid URL path")
    assert_text_error(a.req("POST", "/v1/acl/login", body=b"{}", headers=ROOT), 404,
                      contains="Invalid URL path")
