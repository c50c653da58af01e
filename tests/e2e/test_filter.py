"""?filter= on the read endpoints: go-bexpr expressions over the answer."""

import threading
import time
import urllib.parse

from helpers import assert_text_error, run_blocking


def q(expr):
    return "filter=" + urllib.parse.quote(expr)


def register(agent):
    for sid, port, tags, env in (("web-1", 3000, ["primary", "v2"], "prod"),
                                 ("web-2", 3001, ["v2"], "staging"),
                                 ("api-1", 4000, ["v1"], "prod")):
        agent.register_service({"ID": sid, "Name": sid.split("-")[0], "Port": port, "Tags": tags,
                                "Meta": {"env": env},
                                "Check": {"CheckID": "c-" + sid, "TTL": "30s"}})
    agent.put_ok("/v1/agent/check/pass/c-web-1")


def test_agent_services_filtered_by_meta_and_tags(agent):
    register(agent)
    got = agent.get_json("/v1/agent/services?" + q('Meta.env == prod and Service != api'))
    assert sorted(got) == ["web-1"]
    got = agent.get_json("/v1/agent/services?" + q('"v2" in Tags'))
    assert sorted(got) == ["web-1", "web-2"]
    got = agent.get_json("/v1/agent/services?" + q("not (Port == 3000 or Port == 4000 or Service == consul)"))
    assert sorted(got) == ["web-2"]


def test_health_service_filters_on_checks_and_node(agent):
    register(agent)
    got = agent.get_json("/v1/health/service/web?" + q("Checks.Status == critical"))
    assert [e["Service"]["ID"] for e in got] == ["web-2"]
    got = agent.get_json("/v1/health/service/web?" + q('Service.Tags contains "primary"'))
    assert [e["Service"]["ID"] for e in got] == ["web-1"]
    got = agent.get_json("/v1/health/service/web?" + q("Node.Node == node1"))
    assert len(got) == 2


def test_catalog_endpoints_filter_their_elements(agent):
    register(agent)
    got = agent.get_json("/v1/catalog/service/web?" + q("ServicePort == 3001"))
    assert [e["ServiceID"] for e in got] == ["web-2"]
    got = agent.get_json("/v1/catalog/node/node1?" + q("Meta.env == staging"))
    assert sorted(got["Services"]) == ["web-2"]
    got = agent.get_json("/v1/catalog/nodes?" + q("Node matches \"^node\""))
    assert [n["Node"] for n in got] == ["node1"]
    got = agent.get_json("/v1/health/state/any?" + q("ServiceName == api"))
    assert [c["CheckID"] for c in got] == ["c-api-1"]


def test_bad_filter_is_400_with_the_position(agent):
    register(agent)
    r = agent.get("/v1/health/service/web?" + q("Service.Port =="))
    assert_text_error(r, 400, startswith="Failed to create boolean expression evaluator",
                      contains="1:16")
    r = agent.get("/v1/agent/services?" + q("Port == abc"))
    assert_text_error(r, 400, contains='Failed to coerce value "abc" for selector "Port"')
    # Endpoints that take no filter refuse it rather than answer unfiltered.
    r = agent.get("/v1/catalog/services?" + q("ServiceName == web"))
    assert_text_error(r, 400, contains="not supported")


def test_blocking_query_wakes_only_when_the_filtered_answer_changes(agent):
    register(agent)
    path = "/v1/health/service/web?" + q("Service.Meta.env == prod")
    first = agent.get(path)
    idx = first.index
    woke = threading.Event()
    result = run_blocking(lambda: (agent.get(f"{path}&index={idx}&wait=10s"), woke.set())[0])
    time.sleep(0.5)  # let the query park before the registry changes
    # A change outside the filter (web-2 is staging) raises the index but not the answer.
    agent.put_ok("/v1/agent/check/pass/c-web-2")
    assert agent.get("/v1/health/service/web").index > idx
    assert not woke.wait(0.5), "a change the filter hides woke the query"
    # One inside it wakes the query.
    agent.put_ok("/v1/agent/check/fail/c-web-1")
    r, _ = result()
    assert r.status == 200
    assert [c["Status"] for c in r.json()[0]["Checks"] if c["CheckID"] == "c-web-1"] == ["critical"]


EVALUATOR = "Failed to create boolean expression evaluator: "


def test_filter_is_checked_against_the_type_even_when_nothing_matches(agent):
    """Consul checks a filter against the endpoint's type before it reads any data: an unknown
    field, or an operator its type does not take, is 400 on an empty answer too."""
    for path, expr, want in (
            ("/v1/health/service/nothing", "Service.Nope == x", 'Selector "Service.Nope" is not valid'),
            ("/v1/catalog/service/nothing", "Service.Port == 80", 'Selector "Service" is not valid'),
            ("/v1/health/checks/nothing", "Status is empty",
             'Invalid match operator "Is Empty" for selector "Status"'),
            ("/v1/health/service/nothing", "Service.Tags == v1",
             'Invalid match operator "Equal" for selector "Service.Tags"'),
            ("/v1/health/state/critical", "ExposedPort == x",
             'Failed to coerce value "x" for selector "ExposedPort": strconv.ParseInt: parsing "x": '
             "invalid syntax"),
            ("/v1/agent/services", "Nope == x", 'Selector "Nope" is not valid')):
        assert_text_error(agent.get(path + "?" + q(expr)), 400, equals=EVALUATOR + want)
    # A valid selector on the same empty answers is 200 with nothing.
    assert agent.get_json("/v1/health/service/nothing?" + q("Service.Meta.env == prod")) == []
    assert agent.get_json("/v1/catalog/service/nothing?" + q("ServiceMeta.env == prod")) == []


def test_a_blocking_read_refuses_a_bad_filter_at_once(agent):
    # Checked before the read parks: the answer comes now, not when the wait runs out.
    idx = agent.get("/v1/health/service/nothing").index
    r = agent.get(f"/v1/health/service/nothing?index={idx}&wait=30s&" + q("Nope == x"), timeout=10)
    assert_text_error(r, 400, contains='Selector "Nope" is not valid')


def test_is_nil_takes_maps_lists_and_structs_only(agent):
    """go-bexpr's `is nil` asks about what a Go value can be nil in (maps, slices, pointers;
    a struct never is); on a string, number or bool it is refused with go-bexpr's words."""
    register(agent)
    both = "Service.Meta is not nil and Service.Tags is not nil and Checks is not nil"
    assert len(agent.get_json("/v1/health/service/web?" + q(both))) == 2
    assert agent.get_json("/v1/health/service/web?" + q("Service.Meta is nil")) == []
    for path, expr, kind, sel in (
            ("/v1/health/service/web", "Service.Port is nil", "int", "Service.Port"),
            ("/v1/health/service/web", "Node.Node is not nil", "string", "Node.Node"),
            ("/v1/catalog/service/web", "ServiceEnableTagOverride is nil", "bool",
             "ServiceEnableTagOverride"),
            ("/v1/agent/services", "Meta.env is nil", "string", "Meta.env")):
        assert_text_error(agent.get(path + "?" + q(expr)), 400, equals=EVALUATOR + (
            f'cannot perform is-nil operations on type {kind} for selector: "{sel}"'))


def test_ui_nodes_filtered_as_consul_filters_its_node_dump(agent):
    """Consul's Internal.NodeDump (the UI's /v1/internal/ui/nodes) takes ?filter over NodeInfo:
    the node's fields, its Services and its Checks."""
    register(agent)
    agent.put_true("/v1/catalog/register", {"Node": "rack2", "Address": "10.0.0.2",
                                            "NodeMeta": {"rack": "r2"}})
    nodes = agent.get_json("/v1/internal/ui/nodes?" + q('Meta.rack == "r2"'))
    assert [n["Node"] for n in nodes] == ["rack2"]
    nodes = agent.get_json("/v1/internal/ui/nodes?" + q("Services.Service == api"))
    assert [n["Node"] for n in nodes] == ["node1"]
    assert agent.get_json("/v1/internal/ui/nodes?" + q('Checks.CheckID == "c-web-1" and '
                                                          "Services is empty")) == []
    assert_text_error(agent.get("/v1/internal/ui/nodes?" + q("Services.Nope == x")), 400,
                      equals=EVALUATOR + 'Selector "Services.Nope" is not valid')


def test_ui_services_summarise_the_instances_the_filter_selects(agent):
    """Consul's Internal.ServiceDump (the UI's /v1/internal/ui/services) runs ?filter over its
    CheckServiceNodes (Node, Service, Checks) and UIServices summarises what is left: a summary
    counts only the instances that matched, and a summary's own fields are no selectors."""
    register(agent)

    def summaries(expr):
        return {s["Name"]: s for s in agent.get_json("/v1/internal/ui/services?" + q(expr))}

    got = summaries('Service.Tags contains "primary"')
    assert list(got) == ["web"]
    web = got["web"]
    assert (web["InstanceCount"], sorted(web["Tags"]), web["Nodes"]) == (1, ["primary", "v2"],
                                                                          ["node1"])
    # web-1's own check passes, and so does its node's serfHealth.
    assert (web["ChecksPassing"], web["ChecksWarning"], web["ChecksCritical"]) == (2, 0, 0)
    got = summaries("Checks.Status == critical")
    assert sorted(got) == ["api", "web"]
    assert (got["web"]["InstanceCount"], got["web"]["Tags"]) == (1, ["v2"])
    got = summaries("Service.Meta.env == prod and Node.Node == node1")
    assert sorted(got) == ["api", "web"] and got["web"]["InstanceCount"] == 1
    assert summaries("Service.Service == nothing") == {}
    assert_text_error(agent.get("/v1/internal/ui/services?" + q("InstanceCount == 1")), 400,
                      equals=EVALUATOR + 'Selector "InstanceCount" is not valid')
