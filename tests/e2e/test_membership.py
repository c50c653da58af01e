"""Membership as Consul's API shows it (issue 15 items 1, 2, 6): joining a running client
agent to a server, force-leave of live and failed nodes with ?prune, and the WAN view."""
import os
import signal
import subprocess

import pytest

from helpers import assert_text_error, wait_until

FAILURE_TIMEOUT = "2s"


def members(agent, query=""):
    return {m["Name"]: m["Status"] for m in agent.get_json("/v1/agent/members" + query)}


@pytest.fixture
def server(agent_factory):
    return agent_factory(node="srv", extra_args=["-failure-timeout", FAILURE_TIMEOUT])


def lone_client(agent_factory, node):
    """A client agent started without -join: it answers its own endpoints at once."""
    a = agent_factory(node=node, server=False, start=False,
                      extra_args=["-failure-timeout", FAILURE_TIMEOUT])
    a.start(wait=False)

    def up():
        try:
            return a.get("/v1/agent/self", timeout=1.0).status == 200
        except OSError:
            return False
    wait_until(up, 10, what=f"{node} up")
    return a


def joined_client(agent_factory, server, node):
    return agent_factory(node=node, server=False,
                         extra_args=["-retry-join", f"127.0.0.1:{server.port}",
                                     "-failure-timeout", FAILURE_TIMEOUT])


def test_client_without_join_lists_itself(agent_factory):
    """Before it knows a server, a client agent's member list holds itself (Consul's does)."""
    web = lone_client(agent_factory, "web1")
    listed = web.get_json("/v1/agent/members")
    assert [(m["Name"], m["Status"], m["Tags"]["role"]) for m in listed] == [("web1", 1, "node")]


def test_join_through_the_api(agent_factory, server):
    """PUT /v1/agent/join/ADDR on a client started without -join: 200, the node is in the
    catalog with its services, and the member list is the cluster's."""
    web = lone_client(agent_factory, "web1")
    web.register_service({"ID": "web-1", "Name": "web", "Port": 3000})
    assert server.get_json("/v1/catalog/node/web1") is None
    web.put_ok(f"/v1/agent/join/127.0.0.1:{server.port}")
    wait_until(lambda: [e["Service"]["ID"] for e in server.get_json("/v1/health/service/web")]
               == ["web-1"], 10, what="web-1 in the catalog")
    assert members(server) == {"srv": 1, "web1": 1}
    assert members(web) == {"srv": 1, "web1": 1}
    # Joining again through the same server is harmless.
    web.put_ok(f"/v1/agent/join/http://127.0.0.1:{server.port}")


def test_join_failures(agent_factory, server, tmp_path):
    """Nothing listens: 500 "Failed to join ADDR: ...", and the agent stays alone; a bad
    address and a server asked to join answer 500 too."""
    from helpers import free_port
    web = lone_client(agent_factory, "web1")
    dead = f"127.0.0.1:{free_port()}"
    assert_text_error(web.put(f"/v1/agent/join/{dead}"), 500, startswith=f"Failed to join {dead}: ")
    assert members(web) == {"web1": 1}
    assert_text_error(web.put("/v1/agent/join/[::1"), 500, startswith="Failed to join [::1: ")
    assert_text_error(server.put("/v1/agent/join/127.0.0.1:1"), 500,
                      startswith="Failed to join 127.0.0.1:1: ")


def test_cli_join(agent_factory, server, mesh):
    """`mesh join ADDR` prints Consul's line and exits 0; with no reachable address, 1."""
    web = lone_client(agent_factory, "web1")
    out = subprocess.run([mesh, "join", "-http-addr", f"127.0.0.1:{web.port}",
                          f"127.0.0.1:{server.port}"], capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "Successfully joined cluster by contacting 1 nodes."
    wait_until(lambda: members(server).get("web1") == 1, 10, what="web1 a member")
    out = subprocess.run([mesh, "join", "-http-addr", f"127.0.0.1:{web.port}"],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode == 1 and "At least one address" in out.stderr


def test_force_leave_of_a_live_node(agent_factory, server):
    """force-leave of an alive member: as in Serf it is leaving (status 2), not left, and keeps
    its node and services in the catalog (Consul's leader acts on left and failed members
    only); its next heartbeat makes it alive again. node-consul's acceptance test waits for
    the leaving status."""
    web = joined_client(agent_factory, server, "web1")
    web.register_service({"ID": "web-1", "Name": "web", "Port": 3000})
    wait_until(lambda: server.get_json("/v1/catalog/node/web1") is not None, 10, what="web1")
    created = server.get_json("/v1/catalog/node/web1")["Node"]["CreateIndex"]
    server.put_ok("/v1/agent/force-leave/web1")
    # Unless the node's next heartbeat already came, it is leaving.
    assert members(server)["web1"] in (1, 2)
    assert server.get_json("/v1/catalog/node/web1")["Node"]["CreateIndex"] == created
    assert [e["Service"]["ID"] for e in server.get_json("/v1/health/service/web")] == ["web-1"]
    wait_until(lambda: members(server).get("web1") == 1, 10, what="web1 alive again")
    assert server.get_json("/v1/catalog/node/web1")["Node"]["CreateIndex"] == created


def test_force_left_live_node_that_goes_silent_is_left(agent_factory, server):
    """A member forced out while alive that is then heard from no more is left (status 3)
    and out of the catalog, as Serf's leave intent followed by silence; it is never failed nor
    leaving for good."""
    web = joined_client(agent_factory, server, "web1")
    wait_until(lambda: members(server).get("web1") == 1, 10, what="web1 alive")
    os.kill(web.proc.pid, signal.SIGSTOP)
    try:
        server.put_ok("/v1/agent/force-leave/web1")
        assert members(server)["web1"] == 2
        wait_until(lambda: members(server)["web1"] != 2, 10, what="web1 no longer leaving")
        assert members(server)["web1"] == 3
        assert server.get_json("/v1/catalog/node/web1") is None
    finally:
        os.kill(web.proc.pid, signal.SIGCONT)
    wait_until(lambda: members(server).get("web1") == 1, 10, what="web1 back")


def test_force_leave_prune(agent_factory, server, mesh):
    """?prune (mesh force-leave -prune) removes a failed member from the list altogether."""
    web = joined_client(agent_factory, server, "web1")
    wait_until(lambda: members(server).get("web1") == 1, 10, what="web1 alive")
    web.kill9()
    wait_until(lambda: members(server)["web1"] == 4, 10, what="web1 failed")
    out = subprocess.run([mesh, "force-leave", "-prune", "-http-addr", f"127.0.0.1:{server.port}",
                          "web1"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    assert members(server) == {"srv": 1}
    assert server.get_json("/v1/catalog/node/web1") is None
    assert_text_error(server.put("/v1/agent/force-leave/web1?prune=maybe"), 400)


def test_wan_members(agent_factory, server):
    """?wan=1 lists the servers as NAME.DC on the WAN port; clients are not in it."""
    joined_client(agent_factory, server, "web1")
    wait_until(lambda: members(server).get("web1") == 1, 10, what="web1 alive")
    wan = server.get_json("/v1/agent/members?wan=1")
    assert [(m["Name"], m["Port"], m["Tags"]["role"], m["Status"]) for m in wan] == \
        [("srv.dc1", 8302, "consul", 1)]
    assert members(server, "?wan") == {"srv.dc1": 1}
    assert sorted(members(server)) == ["srv", "web1"]
