"""Every route of the registry against limited tokens (issue 12 items 1 and 2; docs/acl.md).

The routes come from docs/acl.md's endpoint table, which tests/unit/test_api_routes.c holds
equal to the route table in src/registry/api/api.c: a route added to the code without a row fails
the unit test, and a row makes this test call it. Each row is called as an anonymous caller and
with a token that may only write `app/` keys, on an agent with `default_policy: deny` whose
every object (node, service, check, key, session, event, token, policy) is named "canary...":

- route and handler rows must answer 403 (and change nothing: the data is checked after);
- filtered rows must answer 200 (404 for KV) without a trace of "canary", and public rows
  must not show one either.
"""

import base64
import json
import re
from pathlib import Path

import pytest

from helpers import assert_text_error
from test_acl import ROOT, acl_agent, create_policy, create_token

DOC = Path(__file__).resolve().parents[2] / "docs" / "acl.md"
NODE = "canary-node"
HEADER_SECRET = "Bearer canary-header-secret"

# Request bodies (and queries) that get a write past decoding to its permission check: without
# one a handler answers 400 before it can refuse, and the test fails for that row.
BODIES = {
    "PUT /v1/agent/service/register": {"ID": "canary-2", "Name": "canary-svc"},
    "PUT /v1/agent/check/register": {"CheckID": "canary-new", "Name": "n", "TTL": "10s",
                                     "ServiceID": "canary-1"},
    "PUT /v1/agent/check/update/<check-id>": {"Status": "passing"},
    "PUT /v1/agent/token/<kind>": {"Token": "x"},
    "PUT /v1/catalog/register": {"Node": NODE, "Address": "127.0.0.1",
                                 "Service": {"Service": "canary-svc"}},
    "PUT /v1/catalog/deregister": {"Node": NODE, "ServiceID": "canary-1"},
    "PUT /v1/session/create": {"Name": "s"},
    "PUT /v1/txn": [{"KV": {"Verb": "get", "Key": "canary/key"}}],
    "PUT /v1/coordinate/update": {"Node": NODE, "Coord": {"Vec": [0.0] * 8, "Error": 1.5,
                                                          "Adjustment": 0.0, "Height": 1e-05}},
    "PUT /v1/acl/token": {"Description": "t"},
    "PUT /v1/acl/token/<accessor>": {"Description": "t"},
    "PUT /v1/acl/policy": {"Name": "p"},
    "PUT /v1/acl/policy/<policy-id>": {"Name": "canary-policy"},
    "PUT /v1/internal/mesh/heartbeat": {"Node": NODE, "Address": "127.0.0.1"},
    "PUT /v1/internal/mesh/leave": {"Node": NODE},
    "PUT /v1/kv/<key>": "overwritten",
    "PUT /v1/event/fire/<event>": "payload",
}
QUERIES = {
    "PUT /v1/agent/service/maintenance/<service-id>": "?enable=true",
    "PUT /v1/agent/maintenance": "?enable=true",
}


def doc_rows():
    """(method, path pattern, how) for each row of docs/acl.md's endpoint table."""
    rows = []
    for line in DOC.read_text().splitlines():
        m = re.match(r"^\| (\w+) \| `(/v1/[^`]*)` \| .* \| (\w+) \|$", line)
        if m:
            rows.append(m.groups())
    assert len(rows) > 50, f"docs/acl.md's endpoint table not found ({len(rows)} rows)"
    return rows


@pytest.fixture
def world(agent_factory, tmp_path):
    """An ACL agent holding one canary of everything, and the tokens the tests use."""
    cfg = tmp_path / "acl.json"
    cfg.write_text(json.dumps({"acl": {"enabled": True, "default_policy": "deny",
                                       "tokens": {"initial_management": "root"}}}))
    a = agent_factory(node=NODE, config_files=[cfg])
    svc = {"ID": "canary-1", "Name": "canary-svc", "Meta": {"owner": "canary-meta"},
           "Check": {"CheckID": "canary-check", "Name": "canary http",
                     "HTTP": "http://127.0.0.1:1/health", "Interval": "30s",
                     "Header": {"Authorization": [HEADER_SECRET]}}}
    assert a.put("/v1/agent/service/register", svc, headers=ROOT).status == 200
    assert a.put("/v1/agent/check/register", {"CheckID": "canary-node-check", "TTL": "60s",
                                              "Name": "canary node"}, headers=ROOT).status == 200
    assert a.put("/v1/kv/canary/key", "canary-value", headers=ROOT).json() is True
    sid = a.put("/v1/session/create", {"Name": "canary-session", "NodeChecks": []},
                headers=ROOT).json()["ID"]
    assert a.put("/v1/event/fire/canary-event", "x", headers=ROOT).status == 200
    pol = create_policy(a, "canary-policy", 'key_prefix "canary/" { policy = "read" }')
    tok = a.put("/v1/acl/token", {"Description": "canary-token",
                                  "Policies": [{"ID": pol["ID"]}]}, headers=ROOT).json()
    create_policy(a, "app-write", 'key_prefix "app/" { policy = "write" }')
    create_policy(a, "read-all", 'service_prefix "" { policy = "read" }\n'
                                 'node_prefix "" { policy = "read" }\n'
                                 'key_prefix "" { policy = "read" }\n'
                                 'session_prefix "" { policy = "read" }\n'
                                 'event_prefix "" { policy = "read" }\n'
                                 'agent_prefix "" { policy = "read" }\n'
                                 'operator = "read"\nacl = "read"')
    create_policy(a, "canary-owner", 'service "canary-svc" { policy = "write" }\n'
                                     'node_prefix "" { policy = "read" }')
    places = {"<service-id>": "canary-1", "<service>": "canary-svc", "<check-id>": "canary-check",
              "<node>": NODE, "<key>": "canary/key", "<session>": sid, "<event>": "canary-event",
              "<accessor>": tok["AccessorID"], "<policy-id>": pol["ID"],
              "<policy-name>": "canary-policy", "<state>": "any", "<address>": "127.0.0.1:1",
              "<kind>": "default", "<id>": "no-such-query", "<role-id>": "canary-role",
              "<role-name>": "canary-role", "<rule-id>": "canary-rule", "<method>": "canary-method",
              "<template>": "builtin/service"}
    tokens = {n: {"X-Consul-Token": create_token(a, n)["SecretID"]}
              for n in ("app-write", "read-all", "canary-owner")}
    return a, places, tokens


def call(agent, method, pattern, places, headers):
    path = pattern
    for k, v in places.items():
        path = path.replace(k, v)
    assert "<" not in path, f"no sample value for a placeholder of {pattern}: add it to places"
    key = f"{method} {pattern}"
    body = BODIES.get(key)
    if isinstance(body, str):
        body = body.encode()
    return agent.req(method, path + QUERIES.get(key, ""), body=body, headers=headers)


def assert_untouched(a):
    """What the refused writes would have changed is as the test set it up."""
    services = set(a.get_json("/v1/agent/services", headers=ROOT)) - {"consul"}
    assert services == {"canary-1"}, services
    assert a.get("/v1/agent/health/service/id/canary-1?format=text", headers=ROOT).text != \
        "maintenance"
    checks = a.get_json("/v1/agent/checks", headers=ROOT)
    assert set(checks) == {"canary-check", "canary-node-check"}, checks
    assert a.get("/v1/kv/canary/key?raw", headers=ROOT).body == b"canary-value"
    assert a.get_json("/v1/kv/?keys", headers=ROOT) == ["canary/key"]
    assert len(a.get_json("/v1/session/list", headers=ROOT)) == 1
    assert [e["Name"] for e in a.get_json("/v1/event/list", headers=ROOT)] == ["canary-event"]
    assert "canary-token" in {t["Description"] for t in a.get_json("/v1/acl/tokens",
                                                                    headers=ROOT)}


@pytest.mark.parametrize("who", ["anonymous", "app-write"])
def test_every_route_refuses_or_filters(world, who):
    a, places, tokens = world
    headers = tokens.get(who, {})
    failures = []
    for method, pattern, how in doc_rows():
        r = call(a, method, pattern, places, headers)
        where = f"{method} {pattern} ({how}) as {who}: {r.status} {r.body[:200]!r}"
        if how in ("route", "handler"):
            if r.status != 403 or b"Permission denied" not in r.body:
                failures.append(f"expected 403 Permission denied: {where}")
        elif how == "filtered":
            if r.status not in (200, 404) or b"canary" in r.body:
                failures.append(f"expected a filtered answer without 'canary': {where}")
        elif how == "public":  # may refuse on its own terms (bootstrap done), never leak
            if r.status >= 500 or b"canary" in r.body:
                failures.append(f"expected an answer without 'canary': {where}")
        else:
            failures.append(f"unknown kind in docs/acl.md: {where}")
    assert not failures, "\n".join(failures)
    assert_untouched(a)


def test_single_objects_403_lists_filtered(world):
    """Issue 12 item 2's endpoints, one by one, without a token."""
    a, _, tokens = world
    for path in ("/v1/agent/service/canary-1", "/v1/agent/health/service/id/canary-1",
                 "/v1/agent/health/service/name/canary-svc"):
        assert_text_error(a.get(path), 403, contains="lacks permission 'service:read'")
    for path in ("/v1/agent/checks", "/v1/agent/services"):
        assert a.get_json(path) == {}, path
    for path in ("/v1/health/checks/canary-svc", f"/v1/health/node/{NODE}",
                 "/v1/health/state/any", "/v1/health/state/critical", "/v1/agent/members",
                 "/v1/health/service/canary-svc", "/v1/event/list"):
        r = a.get(path)
        assert r.status == 200 and r.json() == [], (path, r)
    # A caller who sent a token is told the answer was filtered.
    r = a.get("/v1/agent/members", headers=tokens["app-write"])
    assert r.json() == [] and r.header("X-Consul-Results-Filtered-By-ACLs") == "true"
    # With read permission the same endpoints answer.
    ro = tokens["read-all"]
    assert a.get_json("/v1/agent/service/canary-1", headers=ro)["Meta"] == {"owner": "canary-meta"}
    assert [m["Name"] for m in a.get_json("/v1/agent/members", headers=ro)] == [NODE]
    assert {c["CheckID"] for c in a.get_json("/v1/health/state/any", headers=ro)} >= {
        "canary-check", "canary-node-check"}


def test_service_maintenance_needs_service_write(world):
    """Issue 12 item 1: anyone could take a service out of rotation."""
    a, _, tokens = world
    for headers in ({}, tokens["app-write"], tokens["read-all"]):
        r = a.put("/v1/agent/service/maintenance/canary-1?enable=true", headers=headers)
        assert_text_error(r, 403, contains="lacks permission 'service:write' on \"canary-svc\"")
    assert a.get("/v1/agent/health/service/id/canary-1?format=text", headers=ROOT).text != \
        "maintenance"
    r = a.put("/v1/agent/service/maintenance/canary-1?enable=true", headers=tokens["canary-owner"])
    assert r.status == 200, r
    assert a.get("/v1/agent/health/service/id/canary-1?format=text", headers=ROOT).text == \
        "maintenance"
    assert_text_error(a.put("/v1/agent/maintenance?enable=true", headers=tokens["canary-owner"]),
                      403, contains="lacks permission 'node:write'")


def test_check_secrets_only_for_service_write(world):
    """An HTTP check's Header is shown only to tokens with service:write on its service: not to
    a token that may read everything, on any read endpoint."""
    a, places, tokens = world
    ro = tokens["read-all"]
    leaks = []
    for method, pattern, how in doc_rows():
        if method != "GET":
            continue
        r = call(a, method, pattern, places, ro)
        if HEADER_SECRET.encode() in r.body:
            leaks.append(f"{pattern}: {r.body[:300]!r}")
    assert not leaks, "\n".join(leaks)
    seen = a.get_json("/v1/agent/checks", headers=ro)["canary-check"]["Definition"]
    assert seen["Header"] is None and seen["HTTP"] == "http://127.0.0.1:1/health"
    for headers in (ROOT, tokens["canary-owner"]):
        d = a.get_json("/v1/agent/checks", headers=headers)["canary-check"]["Definition"]
        assert d["Header"] == {"Authorization": [HEADER_SECRET]}
        h = a.get_json("/v1/health/checks/canary-svc", headers=headers)
        assert h[0]["Definition"]["Header"] == {"Authorization": [HEADER_SECRET]}


def test_recursive_delete_needs_write_on_every_key_under_the_prefix(agent_factory, tmp_path):
    """DELETE ?recurse with key:write on the prefix but a deny rule below it deletes nothing."""
    a = acl_agent(agent_factory, tmp_path)
    create_policy(a, "app-but-secret", 'key_prefix "app/" { policy = "write" }\n'
                                       'key_prefix "app/secret/" { policy = "deny" }')
    t = {"X-Consul-Token": create_token(a, "app-but-secret")["SecretID"]}
    for k in ("app/a", "app/secret/b"):
        assert a.put(f"/v1/kv/{k}", "v", headers=ROOT).json() is True
    assert_text_error(a.delete("/v1/kv/app/?recurse", headers=t), 403,
                      contains="lacks permission 'key:write' on \"app/\"")
    assert a.get_json("/v1/kv/?keys", headers=ROOT) == ["app/a", "app/secret/b"]
    assert a.delete("/v1/kv/app/a?recurse", headers=t).json() is True
    assert a.get_json("/v1/kv/?keys", headers=ROOT) == ["app/secret/b"]


def test_event_list_filtered_by_event_read(world):
    a, _, tokens = world
    create_policy(a, "deploy-events", 'event_prefix "deploy" { policy = "write" }')
    t = {"X-Consul-Token": create_token(a, "deploy-events")["SecretID"]}
    assert a.put("/v1/event/fire/deploy-1", "x", headers=t).status == 200
    r = a.get("/v1/event/list", headers=t)
    assert [e["Name"] for e in r.json()] == ["deploy-1"]
    assert r.header("X-Consul-Results-Filtered-By-ACLs") == "true"
    payload = a.get_json("/v1/event/list?name=deploy-1", headers=t)[0]["Payload"]
    assert base64.b64decode(payload) == b"x"
    assert json.dumps(a.get_json("/v1/event/list", headers=ROOT)).count("canary-event") == 1
