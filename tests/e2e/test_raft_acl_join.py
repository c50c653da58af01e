"""Joining a formed cluster of replicated servers with ACLs on and default deny (issue 14): a
server asks the leader to add it, and a client agent announces its node, each with its agent
token (acl.tokens.agent). With a token that may (operator:write for a server, node:write for a
client: here the management token), each joins; without one, each is refused, says so in its
log, and the cluster is left as it was."""
import json

from helpers import free_ports, wait_until
from raft_helpers import Server, form, leader_of

MGMT = "5f0b9c1e-7a43-4c1b-9a51-2f6e8d3c4b70"


def acl_file(tmp_path, name, server, agent_token):
    tokens = {"initial_management": MGMT} if server else {}
    if agent_token:
        tokens["agent"] = agent_token
    path = tmp_path / f"acl-{name}.json"
    path.write_text(json.dumps({"acl": {"enabled": True, "default_policy": "deny",
                                        "tokens": tokens}}))
    return path


def as_manager(server, path):
    r = server.get(path, headers={"X-Consul-Token": MGMT})
    assert r.status == 200, (path, r)
    return r.json()


def test_joining_a_formed_cluster_needs_the_agent_token(request, tmp_path, agent_factory):
    conf = acl_file(tmp_path, "servers", True, MGMT)
    servers = form(request, tmp_path, extra=("-config-file", str(conf)))
    leader = leader_of(servers)
    joins = [a for s in servers for a in ("-retry-join", f"127.0.0.1:{s.port}")]

    def nodes():
        return {n["Node"] for n in as_manager(leader, "/v1/catalog/nodes")}

    def voters():
        return {s["Node"] for s in as_manager(leader, "/v1/operator/raft/configuration")["Servers"]}

    # A client agent: with the token its node is in the catalog; without, it is refused.
    agent_factory(name="good", node="client-good", server=False,
                  extra_args=joins + ["-config-file", str(acl_file(tmp_path, "good", False, MGMT))])
    wait_until(lambda: "client-good" in nodes(), 20, what="the client with a token to join")
    bad = agent_factory(name="bad", node="client-bad", server=False,
                        extra_args=joins + ["-config-file",
                                            str(acl_file(tmp_path, "bad", False, None))])
    wait_until(lambda: "Permission denied" in bad.log_text(), 20,
               what="the client without a token to say it was refused")
    assert "client-bad" not in nodes()

    # A fourth server: with the token the leader adds it; without, it is refused.
    ports = free_ports(4)
    http, raft = ports[:2], ports[2:]
    good = Server(tmp_path, 3, http[0], raft[0], [s.port for s in servers],
                  extra=("-config-file", str(conf)))
    refused = Server(tmp_path, 4, http[1], raft[1], [s.port for s in servers],
                     extra=("-config-file",
                            str(acl_file(tmp_path, "refused", True, None))))
    request.node._mesh_agents.extend([good, refused])
    good.start(wait=False)
    refused.start(wait=False)
    wait_until(lambda: "server3" in voters(), 30, what="the server with a token to be added")
    good.wait_ready(timeout=30)
    wait_until(lambda: "asking to join failed" in refused.log_text(), 30,
               what="the server without a token to say it was refused")
    assert voters() == {"server0", "server1", "server2", "server3"}
    assert refused.running()
