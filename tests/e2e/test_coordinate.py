"""Network coordinates (issue 15 item 9): /v1/coordinate/*, client agents computing theirs
from heartbeat RTTs, ?near= sorting and `mesh rtt`."""
import re
import subprocess

from helpers import assert_text_error, wait_until


def coord(x):
    """A coordinate x seconds along the first axis (heights at Consul's minimum)."""
    return {"Vec": [x] + [0.0] * 7, "Error": 0.2, "Adjustment": 0.0, "Height": 1e-05}


def test_update_and_read(agent):
    agent.put_true("/v1/catalog/register", {"Node": "n2", "Address": "10.0.0.2"})
    r0 = agent.get("/v1/coordinate/nodes")
    assert r0.status == 200 and [c["Node"] for c in r0.json()] == ["node1"]  # the server's own
    agent.put_ok("/v1/coordinate/update", {"Node": "n2", "Coord": coord(0.005)})
    r = agent.get(f"/v1/coordinate/nodes?index={r0.index}&wait=5s")
    assert r.index > r0.index
    by_node = {c["Node"]: c for c in r.json()}
    assert by_node["n2"]["Coord"]["Vec"][0] == 0.005 and by_node["n2"]["Segment"] == ""
    (one,) = agent.get_json("/v1/coordinate/node/n2")
    assert one["Node"] == "n2" and len(one["Coord"]["Vec"]) == 8
    missing = agent.get("/v1/coordinate/node/nope")
    assert missing.status == 404 and missing.body == b""
    dcs = agent.get_json("/v1/coordinate/datacenters")
    assert dcs[0]["Datacenter"] == "dc1" and dcs[0]["Coordinates"][0]["Node"] == "node1.dc1"
    assert len(agent.get_json("/v1/agent/self")["Coord"]["Vec"]) == 8


def test_update_errors(agent):
    assert_text_error(agent.put("/v1/coordinate/update", {"Node": "n9", "Coord": coord(0.1)}),
                      500, contains="not found")
    bad = coord(0.1)
    bad["Vec"] = [0.0, 1.0]
    assert_text_error(agent.put("/v1/coordinate/update", {"Node": "node1", "Coord": bad}), 400,
                      contains="coordinate is not compatible")
    assert_text_error(agent.put("/v1/coordinate/update", {"Coord": coord(0.1)}), 400,
                      equals="Must provide node")


def test_near_sorts_by_estimated_rtt(agent):
    """?near=NODE (or _agent) orders catalog and health answers by estimated RTT; nodes
    without a coordinate come last."""
    for name, x in (("far", 0.050), ("near", 0.001), ("mid", 0.010), ("none", None)):
        agent.put_true("/v1/catalog/register", {"Node": name, "Address": "10.0.0.9",
                                                "Service": {"ID": "db", "Service": "db"},
                                                "Check": {"CheckID": "db", "ServiceID": "db",
                                                          "Status": "passing"}})
        if x is not None:
            agent.put_ok("/v1/coordinate/update", {"Node": name, "Coord": coord(x)})
    want = ["near", "mid", "far", "none"]
    assert [e["Node"] for e in agent.get_json("/v1/catalog/service/db?near=_agent")] == want
    assert [e["Node"]["Node"] for e in agent.get_json("/v1/health/service/db?near=node1")] == want
    assert [e["Node"] for e in agent.get_json("/v1/catalog/service/db?near=far")][:3] == \
        ["far", "mid", "near"]
    # Consul's Catalog.ListNodes, Health.ServiceChecks and Health.ChecksInState sort too.
    assert [e["Node"] for e in agent.get_json("/v1/catalog/nodes?near=_agent")] == \
        ["node1"] + want  # this agent's node is nearest itself
    assert [e["Node"] for e in agent.get_json("/v1/health/checks/db?near=_agent")] == want
    assert [e["Node"] for e in agent.get_json(
        "/v1/health/state/passing?near=_agent&filter=ServiceName%3D%3Ddb")] == want
    # An unknown node, or none, leaves the catalog's order (by name).
    assert [e["Node"] for e in agent.get_json("/v1/catalog/nodes?near=nope")] == \
        ["far", "mid", "near", "node1", "none"]
    qid = agent.req("POST", "/v1/query", {"Name": "dbq", "Service": {"Service": "db",
                                                                     "Near": "_agent"}}).json()
    assert qid["ID"]
    assert [e["Node"]["Node"] for e in agent.get_json("/v1/query/dbq/execute")["Nodes"]] == want


def test_client_agents_compute_coordinates(agent_factory, mesh):
    """A client agent's coordinate moves off the origin from its heartbeats' RTTs and reaches
    the server; mesh rtt estimates between them."""
    server = agent_factory(node="srv")
    client = agent_factory(node="web1", server=False,
                           extra_args=["-retry-join", f"127.0.0.1:{server.port}"])

    def reported():
        nodes = {c["Node"]: c["Coord"] for c in server.get_json("/v1/coordinate/nodes")}
        return "web1" in nodes and nodes["web1"]["Error"] < 1.5 and nodes["web1"]
    wait_until(reported, 15, what="web1's computed coordinate on the server")
    out = subprocess.run([mesh, "rtt", "-http-addr", f"127.0.0.1:{server.port}", "web1", "srv"],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    m = re.fullmatch(r"Estimated web1 <-> srv rtt: (\d+\.\d{3}) ms \(using LAN coordinates\)\n",
                     out.stdout)
    assert m, out.stdout
    out = subprocess.run([mesh, "rtt", "-http-addr", f"127.0.0.1:{client.port}", "srv"],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 0 and out.stdout.startswith("Estimated srv <-> web1 rtt: "), out
    out = subprocess.run([mesh, "rtt", "-http-addr", f"127.0.0.1:{server.port}", "nope"],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 1 and 'Could not find a coordinate for node "nope"' in out.stderr


def test_near_agent_through_a_client_agent_is_the_client(agent_factory):
    """Consul's agent turns ?near=_agent into its own node name before it asks a server: through
    a client agent, _agent is the client's node, not the server's."""
    server = agent_factory(node="srv")
    client = agent_factory(node="web1", server=False,
                           extra_args=["-retry-join", f"127.0.0.1:{server.port}"])
    wait_until(lambda: "web1" in {n["Node"] for n in server.get_json("/v1/catalog/nodes")}, 15,
               what="web1 in the server's catalog")
    for name in ("east", "west"):
        server.put_true("/v1/catalog/register", {"Node": name, "Address": "10.0.0.9",
                                                 "Service": {"ID": "db", "Service": "db"}})
    for name, x in (("east", 1.0), ("west", -1.0), ("srv", 0.9)):
        server.put_ok("/v1/coordinate/update", {"Node": name, "Coord": coord(x)})
    assert [e["Node"] for e in server.get_json("/v1/catalog/service/db?near=_agent")] == \
        ["east", "west"]

    def web1_at(x):
        r = server.get("/v1/coordinate/node/web1")
        return r.status == 200 and r.json()[0]["Coord"] == coord(x)
    # The client sends its own coordinate with some heartbeats: an answer counts only when
    # web1's coordinate on the server is the one set here before and after it.
    seen = None
    for _ in range(20):
        server.put_ok("/v1/coordinate/update", {"Node": "web1", "Coord": coord(-0.9)})
        if not web1_at(-0.9):
            continue
        answer = [e["Node"] for e in client.get_json("/v1/catalog/service/db?near=_agent")]
        if web1_at(-0.9):
            seen = answer
            break
    assert seen == ["west", "east"]
