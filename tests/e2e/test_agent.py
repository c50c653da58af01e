"""Agent endpoints (/v1/agent/*), with the transport rules every endpoint follows."""

import re
import time

from helpers import assert_text_error

# Keys /v1/agent/services may carry besides the required ones (omitted when empty).
SERVICE_REQUIRED = {"ID", "Service", "Tags", "Meta", "Port", "Address", "Weights",
                    "EnableTagOverride", "Datacenter"}
SERVICE_OPTIONAL = {"Kind", "TaggedAddresses", "SocketPath", "Proxy", "Connect", "CreateIndex",
                    "ModifyIndex", "Namespace", "Partition"}
CHECK_FIELDS = {"Node", "CheckID", "Name", "Status", "Notes", "Output", "ServiceID", "ServiceName",
                "ServiceTags", "Type", "Interval", "Timeout", "ExposedPort", "Definition",
                "CreateIndex", "ModifyIndex"}


def local_services(agent):
    """/v1/agent/services without the built-in `consul` service a server may list."""
    svcs = agent.get_json("/v1/agent/services")
    assert isinstance(svcs, dict)
    svcs.pop("consul", None)
    return svcs


def local_checks(agent):
    """/v1/agent/checks without a synthesized serfHealth (a catalog-side check)."""
    checks = agent.agent_checks()
    assert isinstance(checks, dict)
    checks.pop("serfHealth", None)
    return checks


# ---------------------------------------------------------------- service register / list / get


def test_register_minimal_service_defaults(agent):
    """ID defaults to Name; Tags [] and Meta {} when unset; Weights {1,1}."""
    agent.register_service({"Name": "web"})
    svcs = local_services(agent)
    assert set(svcs) == {"web"}
    s = svcs["web"]
    assert SERVICE_REQUIRED <= set(s), f"missing {SERVICE_REQUIRED - set(s)}"
    extra = set(s) - SERVICE_REQUIRED - SERVICE_OPTIONAL
    assert not extra, f"unexpected fields {extra}"
    assert s["ID"] == "web"
    assert s["Service"] == "web"
    assert s["Tags"] == []
    assert s["Meta"] == {}
    assert s["Port"] == 0
    assert s["Address"] == ""
    assert s["Weights"] == {"Passing": 1, "Warning": 1}
    assert s["EnableTagOverride"] is False
    assert s["Datacenter"] == "dc1"


def test_register_full_service_round_trips(agent):
    """Every field is kept; TaggedAddresses: lower-case keys in, capitalised out."""
    agent.register_service({
        "ID": "redis1", "Name": "redis", "Tags": ["primary", "v1"], "Address": "10.0.0.5",
        "Port": 8000, "Meta": {"k": "v"},
        "TaggedAddresses": {"lan": {"address": "10.0.0.5", "port": 8000},
                            "wan": {"Address": "198.51.100.5", "Port": 80}},
        "EnableTagOverride": True, "Weights": {"Passing": 10, "Warning": 2},
    })
    s = local_services(agent)["redis1"]
    assert s["ID"] == "redis1"
    assert s["Service"] == "redis"
    assert s["Tags"] == ["primary", "v1"]
    assert s["Address"] == "10.0.0.5"
    assert s["Port"] == 8000
    assert s["Meta"] == {"k": "v"}
    assert s["EnableTagOverride"] is True
    assert s["Weights"] == {"Passing": 10, "Warning": 2}
    assert s["TaggedAddresses"] == {"lan": {"Address": "10.0.0.5", "Port": 8000},
                                    "wan": {"Address": "198.51.100.5", "Port": 80}}


def test_register_field_names_case_insensitive(agent):
    """JSON input field names match case-insensitively (name, NAME, Name)."""
    agent.register_service({"name": "web", "id": "web-1", "PORT": 81, "tags": ["a"]})
    s = local_services(agent)["web-1"]
    assert (s["Service"], s["Port"], s["Tags"]) == ("web", 81, ["a"])


def test_reregister_updates_in_place(agent):
    """Re-registering an ID updates it (no duplicate)."""
    agent.register_service({"ID": "w1", "Name": "web", "Port": 80})
    agent.register_service({"ID": "w1", "Name": "web", "Port": 81, "Tags": ["new"]})
    svcs = local_services(agent)
    assert list(svcs) == ["w1"]
    assert svcs["w1"]["Port"] == 81
    assert svcs["w1"]["Tags"] == ["new"]


def test_register_missing_name_is_400(agent):
    """Name is required -> 400 "Missing service name"; nothing written."""
    r = agent.put("/v1/agent/service/register", {"ID": "x", "Port": 80})
    assert_text_error(r, 400, contains="Missing service name")
    assert local_services(agent) == {}


def test_register_unspecified_address_is_400(agent):
    """Address "0.0.0.0" / "::" -> 400 "Invalid service address"."""
    for addr in ("0.0.0.0", "::"):
        r = agent.put("/v1/agent/service/register", {"Name": "web", "Address": addr})
        assert_text_error(r, 400, contains="Invalid service address")
    assert local_services(agent) == {}


def test_register_meta_reserved_prefix_is_400(agent):
    """A Meta key may not start with "consul-" -> 400."""
    r = agent.put("/v1/agent/service/register", {"Name": "web", "Meta": {"consul-x": "1"}})
    assert_text_error(r, 400)
    assert local_services(agent) == {}


def test_register_bad_weights_is_400(agent):
    """Weights.Passing must be >= 1 -> 400 "Invalid Weights"."""
    r = agent.put("/v1/agent/service/register",
                  {"Name": "web", "Weights": {"Passing": 0, "Warning": 1}})
    assert_text_error(r, 400, startswith="Invalid Weights")
    assert local_services(agent) == {}


def test_get_service_has_content_hash(agent):
    """GET /v1/agent/service/:id = the list object plus ContentHash (and its header)."""
    agent.register_service({"ID": "w1", "Name": "web", "Port": 80, "Tags": ["t"]})
    r = agent.get("/v1/agent/service/w1")
    assert r.status == 200 and r.content_type == "application/json"
    s = r.json()
    listed = local_services(agent)["w1"]
    for k, v in listed.items():
        assert s[k] == v, k
    assert isinstance(s["ContentHash"], str) and re.fullmatch(r"[0-9a-f]+", s["ContentHash"])
    assert r.header("X-Consul-ContentHash") == s["ContentHash"]
    agent.register_service({"ID": "w1", "Name": "web", "Port": 81, "Tags": ["t"]})
    assert agent.get_json("/v1/agent/service/w1")["ContentHash"] != s["ContentHash"]


def test_get_service_hash_blocking_waits(agent):
    """?hash=<current>&wait=1s blocks until the wait passes when nothing changes."""
    agent.register_service({"ID": "w1", "Name": "web"})
    h = agent.get_json("/v1/agent/service/w1")["ContentHash"]
    r = agent.get(f"/v1/agent/service/w1?hash={h}&wait=1s")
    assert r.status == 200
    assert r.elapsed >= 0.9, f"returned after {r.elapsed:.2f}s, expected to block ~1s"
    assert r.elapsed < 5
    assert r.json()["ContentHash"] == h


def test_get_unknown_service_is_404(agent):
    """Unknown ID -> 404 "unknown service ID: <id>"."""
    r = agent.get("/v1/agent/service/nope")
    assert_text_error(r, 404, equals="unknown service ID: nope")


def test_service_id_with_slash_percent_encoded(agent):
    """Paths are percent-decoded before routing; IDs may contain '/'."""
    agent.register_service({"ID": "web/1", "Name": "web"})
    assert agent.get_json("/v1/agent/service/web%2F1")["ID"] == "web/1"
    agent.put_ok("/v1/agent/service/deregister/web%2F1")
    assert local_services(agent) == {}


# ---------------------------------------------------------------- service deregister


def test_deregister_removes_service_and_checks(agent):
    """Deregister removes the service and all its checks; 200 empty."""
    agent.register_service({"ID": "w1", "Name": "web", "Check": {"TTL": "30s"}})
    agent.register_service({"ID": "w2", "Name": "web"})
    assert "service:w1" in local_checks(agent)
    agent.put_ok("/v1/agent/service/deregister/w1")
    assert set(local_services(agent)) == {"w2"}
    assert local_checks(agent) == {}
    assert [e["ServiceID"] for e in agent.get_json("/v1/catalog/service/web")] == ["w2"]


def test_deregister_unknown_service_is_404(agent):
    """Unknown ID -> 404 with Consul's exact text."""
    r = agent.put("/v1/agent/service/deregister/nope")
    assert_text_error(r, 404, equals='Unknown service ID "nope". Ensure that the service ID is '
                                     'passed, not the service name.')


# ---------------------------------------------------------------- checks inside service definitions


def test_service_single_check_generated_id_and_name(agent):
    """One check -> CheckID service:<ID>, Name "Service '<Name>' check", starts critical."""
    agent.register_service({"ID": "w1", "Name": "web", "Tags": ["t1"], "Check": {"TTL": "30s"}})
    c = local_checks(agent)["service:w1"]
    assert CHECK_FIELDS <= set(c), f"missing {CHECK_FIELDS - set(c)}"
    assert c["Name"] == "Service 'web' check"
    assert c["Status"] == "critical"
    assert c["ServiceID"] == "w1"
    assert c["ServiceName"] == "web"
    assert c["ServiceTags"] == ["t1"]
    assert c["Node"] == "node1"
    assert c["Type"] == "ttl"


def test_service_multiple_checks_numbered(agent):
    """Several checks -> CheckIDs service:<ID>:1, :2 (1-based)."""
    agent.register_service({"ID": "w1", "Name": "web",
                            "Checks": [{"TTL": "30s"}, {"TTL": "30s", "Status": "passing"}]})
    checks = local_checks(agent)
    assert set(checks) == {"service:w1:1", "service:w1:2"}
    assert checks["service:w1:1"]["Status"] == "critical"
    assert checks["service:w1:2"]["Status"] == "passing"


def test_service_check_initial_status(agent):
    """Status sets the initial status."""
    agent.register_service({"ID": "w1", "Name": "web",
                            "Check": {"CheckID": "c1", "Name": "mine", "TTL": "30s",
                                      "Status": "warning", "Notes": "n"}})
    c = local_checks(agent)["c1"]
    assert (c["Name"], c["Status"], c["Notes"]) == ("mine", "warning", "n")


def test_service_check_bad_status_is_400(agent):
    """Status not passing|warning|critical -> 400; nothing written."""
    r = agent.put("/v1/agent/service/register",
                  {"Name": "web", "Check": {"TTL": "30s", "Status": "bogus"}})
    assert_text_error(r, 400, contains="Status for checks must 'passing', 'warning', 'critical'")
    assert local_services(agent) == {}
    assert local_checks(agent) == {}


def test_service_check_interval_and_ttl_is_400(agent):
    """Interval and TTL together -> 400 "Invalid check: ..."."""
    r = agent.put("/v1/agent/service/register",
                  {"Name": "web", "Check": {"TTL": "30s", "Interval": "10s",
                                            "TCP": "127.0.0.1:1"}})
    assert_text_error(r, 400, contains="Invalid check")
    assert local_services(agent) == {}


def test_service_http_check_without_interval_is_400(agent):
    """An HTTP check needs Interval > 0."""
    r = agent.put("/v1/agent/service/register",
                  {"Name": "web", "Check": {"HTTP": "http://127.0.0.1:1/"}})
    assert_text_error(r, 400, contains="Invalid check")
    assert local_services(agent) == {}


def test_replace_existing_checks(agent):
    """?replace-existing-checks drops the service's checks missing from the body."""
    agent.register_service({"ID": "w1", "Name": "web",
                            "Checks": [{"CheckID": "a", "TTL": "30s"},
                                       {"CheckID": "b", "TTL": "30s"}]})
    agent.register_service({"ID": "w1", "Name": "web", "Checks": [{"CheckID": "a", "TTL": "30s"}]},
                           query="?replace-existing-checks")
    assert set(local_checks(agent)) == {"a"}


def test_reregister_without_replace_keeps_checks(agent):
    """Without replace-existing-checks, checks not in the body stay."""
    agent.register_service({"ID": "w1", "Name": "web",
                            "Checks": [{"CheckID": "a", "TTL": "30s"},
                                       {"CheckID": "b", "TTL": "30s"}]})
    agent.register_service({"ID": "w1", "Name": "web", "Checks": [{"CheckID": "a", "TTL": "30s"}]})
    assert set(local_checks(agent)) == {"a", "b"}


# ---------------------------------------------------------------- check register/deregister/list


def test_check_register_node_level(agent):
    """A node-level TTL check; ID defaults to Name; starts critical; ServiceTags []."""
    agent.put_ok("/v1/agent/check/register", {"Name": "mem", "TTL": "30s", "Notes": "memory"})
    checks = local_checks(agent)
    assert set(checks) == {"mem"}
    c = checks["mem"]
    assert CHECK_FIELDS <= set(c), f"missing {CHECK_FIELDS - set(c)}"
    assert c["CheckID"] == "mem"
    assert c["Name"] == "mem"
    assert c["Status"] == "critical"
    assert c["Notes"] == "memory"
    assert c["ServiceID"] == ""
    assert c["ServiceName"] == ""
    assert c["ServiceTags"] == []
    assert c["Type"] == "ttl"
    assert c["Node"] == "node1"


def test_check_register_with_id_and_service(agent):
    """CheckID and ServiceID; the check carries the service's name and tags."""
    agent.register_service({"ID": "w1", "Name": "web", "Tags": ["x"]})
    agent.put_ok("/v1/agent/check/register",
                 {"ID": "w1-ttl", "Name": "web ttl", "ServiceID": "w1", "TTL": "30s",
                  "Status": "passing"})
    c = local_checks(agent)["w1-ttl"]
    assert (c["ServiceID"], c["ServiceName"], c["ServiceTags"]) == ("w1", "web", ["x"])
    assert c["Status"] == "passing"


def test_check_register_missing_name_is_400(agent):
    """Name required -> 400 "Missing check name"."""
    r = agent.put("/v1/agent/check/register", {"ID": "c1", "TTL": "30s"})
    assert_text_error(r, 400, contains="Missing check name")
    assert local_checks(agent) == {}


def test_check_register_unknown_service_is_404(agent):
    """ServiceID not on this agent -> 404 'ServiceID "<id>" does not exist'."""
    r = agent.put("/v1/agent/check/register", {"Name": "c", "ServiceID": "nope", "TTL": "30s"})
    assert_text_error(r, 404, contains='ServiceID "nope" does not exist')
    assert local_checks(agent) == {}


def test_check_register_bad_status_is_400(agent):
    """Bad Status -> 400 "Bad check status"."""
    r = agent.put("/v1/agent/check/register", {"Name": "c", "TTL": "30s", "Status": "sleepy"})
    assert_text_error(r, 400, contains="Bad check status")
    assert local_checks(agent) == {}


def test_check_deregister(agent):
    """200 empty; the check is gone."""
    agent.put_ok("/v1/agent/check/register", {"Name": "c1", "TTL": "30s"})
    agent.put_ok("/v1/agent/check/deregister/c1")
    assert local_checks(agent) == {}


def test_check_deregister_unknown_is_404(agent):
    """Unknown ID -> 404 with Consul's exact text."""
    r = agent.put("/v1/agent/check/deregister/nope")
    assert_text_error(r, 404, equals='Unknown check ID "nope". Ensure that the check ID is '
                                     'passed, not the check name.')


# ---------------------------------------------------------------- pass / warn / fail / update


def test_pass_warn_fail_with_note(agent):
    """Pass/warn/fail set the status; note= becomes Output."""
    agent.put_ok("/v1/agent/check/register", {"Name": "c1", "TTL": "30s"})
    for verb, status in (("pass", "passing"), ("warn", "warning"), ("fail", "critical"),
                         ("pass", "passing")):
        agent.put_ok(f"/v1/agent/check/{verb}/c1?note=via%20{verb}")
        c = local_checks(agent)["c1"]
        assert c["Status"] == status, verb
        assert c["Output"] == f"via {verb}", verb


def test_update_sets_status_and_output(agent):
    """Update takes {"Status","Output"}."""
    agent.put_ok("/v1/agent/check/register", {"Name": "c1", "TTL": "30s"})
    agent.put_ok("/v1/agent/check/update/c1", {"Status": "warning", "Output": "disk 91%"})
    c = local_checks(agent)["c1"]
    assert (c["Status"], c["Output"]) == ("warning", "disk 91%")


def test_update_bad_status_is_400(agent):
    """Update with another status -> 400 "Invalid check status: '<s>'"; unchanged."""
    agent.put_ok("/v1/agent/check/register", {"Name": "c1", "TTL": "30s", "Status": "passing"})
    r = agent.put("/v1/agent/check/update/c1", {"Status": "bogus", "Output": "x"})
    assert_text_error(r, 400, contains="Invalid check status: 'bogus'")
    assert local_checks(agent)["c1"]["Status"] == "passing"


def test_update_output_truncated(agent):
    """Output over 4096 bytes is cut and suffixed " ... (captured 4096 of N bytes)"."""
    agent.put_ok("/v1/agent/check/register", {"Name": "c1", "TTL": "30s"})
    agent.put_ok("/v1/agent/check/update/c1", {"Status": "passing", "Output": "x" * 5000})
    out = local_checks(agent)["c1"]["Output"]
    assert out == "x" * 4096 + " ... (captured 4096 of 5000 bytes)"


def test_pass_unknown_check_is_404(agent):
    """Unknown check -> 404 with the unknown-check text."""
    for verb in ("pass", "warn", "fail"):
        r = agent.put(f"/v1/agent/check/{verb}/nope")
        assert_text_error(r, 404, contains='Unknown check ID "nope"')
    r = agent.put("/v1/agent/check/update/nope", {"Status": "passing"})
    assert_text_error(r, 404, contains='Unknown check ID "nope"')


def test_pass_non_ttl_check_is_500(agent):
    """Not a TTL check -> 500 'CheckID "<id>" does not have associated TTL'."""
    agent.put_ok("/v1/agent/check/register",
                 {"Name": "tcp1", "TCP": "127.0.0.1:1", "Interval": "30s"})
    r = agent.put("/v1/agent/check/pass/tcp1")
    assert_text_error(r, 500, contains='CheckID "tcp1" does not have associated TTL')
    r = agent.put("/v1/agent/check/update/tcp1", {"Status": "passing"})
    assert_text_error(r, 500, contains='CheckID "tcp1" does not have associated TTL')


def test_ttl_expires_to_critical(agent):
    """Passes reset the TTL timer; without them: critical, "TTL expired"."""
    agent.put_ok("/v1/agent/check/register", {"Name": "c1", "TTL": "1s"})
    t0 = time.monotonic()
    for _ in range(5):  # keep it alive for ~2 s, twice the TTL
        agent.put_ok("/v1/agent/check/pass/c1?note=alive")
        time.sleep(0.4)
        assert agent.check_status("c1") == "passing"
    assert time.monotonic() - t0 >= 1.9
    c = agent.wait_check("c1", "critical", timeout=4.0)
    assert c["Output"].startswith("TTL expired"), c["Output"]


# ---------------------------------------------------------------- maintenance


def test_node_maintenance(agent):
    """Node maintenance adds the critical _node_maintenance check; disabling removes it."""
    agent.put_ok("/v1/agent/maintenance?enable=true&reason=upgrading%20kernel")
    c = local_checks(agent)["_node_maintenance"]
    assert c["Name"] == "Node Maintenance Mode"
    assert c["Status"] == "critical"
    assert c["Notes"] == "upgrading kernel"
    assert c["ServiceID"] == ""
    node_checks = agent.get_json("/v1/health/node/node1")
    assert "_node_maintenance" in [x["CheckID"] for x in node_checks]
    agent.put_ok("/v1/agent/maintenance?enable=true")  # idempotent
    agent.put_ok("/v1/agent/maintenance?enable=false")
    assert "_node_maintenance" not in local_checks(agent)
    node_checks = agent.get_json("/v1/health/node/node1")
    assert "_node_maintenance" not in [x["CheckID"] for x in node_checks]


def test_node_maintenance_default_reason(agent):
    """Without reason, Notes is Consul's default message."""
    agent.put_ok("/v1/agent/maintenance?enable=true")
    assert local_checks(agent)["_node_maintenance"]["Notes"] == (
        "Maintenance mode is enabled for this node, but no reason was provided. "
        "This is a default message.")


def test_node_maintenance_hides_services_from_passing(agent):
    """The node check is critical, so every instance drops out of ?passing."""
    agent.register_service({"ID": "w1", "Name": "web"})
    assert len(agent.get_json("/v1/health/service/web?passing")) == 1
    agent.put_ok("/v1/agent/maintenance?enable=true")
    assert agent.get_json("/v1/health/service/web?passing") == []
    agent.put_ok("/v1/agent/maintenance?enable=false")
    assert len(agent.get_json("/v1/health/service/web?passing")) == 1


def test_maintenance_enable_param_errors(agent):
    """Enable missing -> 400 "Missing value for enable"; not a bool -> 400."""
    assert_text_error(agent.put("/v1/agent/maintenance"), 400, contains="Missing value for enable")
    assert_text_error(agent.put("/v1/agent/maintenance?enable=maybe"), 400,
                      contains='Invalid value for enable: "maybe"')
    agent.register_service({"ID": "w1", "Name": "web"})
    assert_text_error(agent.put("/v1/agent/service/maintenance/w1"), 400,
                      contains="Missing value for enable")
    assert_text_error(agent.put("/v1/agent/service/maintenance/w1?enable=maybe"), 400,
                      contains='Invalid value for enable: "maybe"')
    assert local_checks(agent) == {}


def test_service_maintenance(agent):
    """Service maintenance adds _service_maintenance:<id>, critical, with service fields."""
    agent.register_service({"ID": "w1", "Name": "web"})
    agent.register_service({"ID": "w2", "Name": "web"})
    agent.put_ok("/v1/agent/service/maintenance/w1?enable=true")
    c = local_checks(agent)["_service_maintenance:w1"]
    assert c["Name"] == "Service Maintenance Mode"
    assert c["Status"] == "critical"
    assert c["ServiceID"] == "w1"
    assert c["ServiceName"] == "web"
    assert c["Notes"] == ("Maintenance mode is enabled for this service, but no reason was "
                          "provided. This is a default message.")
    passing = agent.get_json("/v1/health/service/web?passing")
    assert [e["Service"]["ID"] for e in passing] == ["w2"]
    agent.put_ok("/v1/agent/service/maintenance/w1?enable=false")
    assert "_service_maintenance:w1" not in local_checks(agent)
    assert len(agent.get_json("/v1/health/service/web?passing")) == 2


def test_service_maintenance_reason(agent):
    """Reason becomes Notes."""
    agent.register_service({"ID": "w1", "Name": "web"})
    agent.put_ok("/v1/agent/service/maintenance/w1?enable=true&reason=deploy%201.2")
    assert local_checks(agent)["_service_maintenance:w1"]["Notes"] == "deploy 1.2"


def test_service_maintenance_unknown_is_404(agent):
    """Unknown service -> 404 'No service registered with ID "<id>"'."""
    r = agent.put("/v1/agent/service/maintenance/nope?enable=true")
    assert_text_error(r, 404, contains='No service registered with ID "nope"')


# ---------------------------------------------------------------- self and members


def test_self_shape(agent):
    """Config.NodeName string; every top-level value is an object or null."""
    r = agent.get("/v1/agent/self")
    assert r.status == 200 and r.content_type == "application/json"
    body = r.json()
    assert isinstance(body, dict)
    for k, v in body.items():
        assert v is None or isinstance(v, dict), f"top-level {k!r} is {type(v).__name__}"
    cfg = body["Config"]
    assert cfg["NodeName"] == "node1"
    assert cfg["Datacenter"] == "dc1"
    assert cfg["Server"] is True
    assert isinstance(cfg.get("Version"), str)
    assert body["Member"]["Name"] == "node1"


def test_members(agent):
    """One alive server member."""
    members = agent.get_json("/v1/agent/members")
    assert isinstance(members, list) and len(members) == 1
    m = members[0]
    assert m["Name"] == "node1"
    assert m["Addr"] == "127.0.0.1"
    assert isinstance(m["Port"], int)
    assert m["Status"] == 1
    assert m["Tags"]["role"] == "consul"
    assert m["Tags"]["dc"] == "dc1"
    for k in ("ProtocolMin", "ProtocolMax", "ProtocolCur", "DelegateMin", "DelegateMax",
              "DelegateCur"):
        assert isinstance(m[k], int), k


def test_members_segment_all(agent):
    """The `consul members` CLI sends segment=_all; same list."""
    assert [m["Name"] for m in agent.get_json("/v1/agent/members?segment=_all")] == ["node1"]



# ---------------------------------------------------------------- join / leave


def test_join_single_node(agent):
    """Join is a no-op (200 empty) or a 500 failure on a single-node registry."""
    r = agent.put("/v1/agent/join/127.0.0.1")
    assert r.status in (200, 500), r
    if r.status == 200:
        assert r.body == b""
    else:
        assert r.content_type == "text/plain"


def test_leave_answers_then_shuts_down(agent):
    """Leave answers 200 empty, then the agent shuts down."""
    agent.put_ok("/v1/agent/leave")
    try:
        agent.proc.wait(timeout=5)
    except Exception:
        raise AssertionError("agent still running 5 s after /v1/agent/leave") from None
