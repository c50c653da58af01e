"""Changing the servers of a replicated cluster (issue 14): `DELETE /v1/operator/raft/peer`
and `mesh operator raft list-peers | remove-peer` for a server that failed, and a server that
leaves gracefully (`mesh leave`, SIGINT) removing itself from the configuration.
"""

import os
import signal
import subprocess

from helpers import assert_text_error, wait_until
from raft_helpers import cluster, leader_of  # noqa: F401 (fixture)


def mesh_cli(mesh, server, *args):
    return subprocess.run([mesh, *args, "-http-addr", f"127.0.0.1:{server.port}"],
                          capture_output=True, text=True, timeout=60)


def peers(server):
    return sorted(server.get_json("/v1/status/peers?stale"))


def test_remove_a_failed_server_and_list_peers(cluster, mesh):
    leader = leader_of(cluster)
    out = mesh_cli(mesh, leader, "operator", "raft", "list-peers")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["Node", "ID", "Address", "State", "Voter", "RaftProtocol"]
    rows = {line.split()[2]: line.split() for line in lines[1:]}
    assert set(rows) == {s.raft_addr for s in cluster}
    assert rows[leader.raft_addr][3] == "leader" and rows[leader.raft_addr][4] == "true"
    assert sorted(r[3] for r in rows.values()) == ["follower", "follower", "leader"]

    # Bad requests are refused with the reason, and change nothing.
    assert_text_error(leader.delete("/v1/operator/raft/peer"), 400, startswith="Must specify")
    assert_text_error(leader.delete("/v1/operator/raft/peer?address=127.0.0.1:1"), 500,
                      contains="was not found in the Raft configuration")
    assert_text_error(leader.delete(f"/v1/operator/raft/peer?address={leader.raft_addr}"), 500,
                      contains="cannot remove itself")
    out = mesh_cli(mesh, leader, "operator", "raft", "remove-peer")
    assert out.returncode == 1 and "address or an ID is required" in out.stderr
    assert len(peers(leader)) == 3

    dead = next(s for s in cluster if s is not leader)
    dead.kill9()
    # Through the other follower: the removal is forwarded to the leader.
    other = next(s for s in cluster if s is not leader and s is not dead)
    dead_id = rows[dead.raft_addr][1]
    out = mesh_cli(mesh, other, "operator", "raft", "remove-peer", "-id", dead_id)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f'Removed peer with id "{dead_id}"'
    want = sorted([leader.raft_addr, other.raft_addr])
    for s in (leader, other):
        wait_until(lambda: peers(s) == want, 20, what=f"{s.name} to drop the removed server")
    leader.put_true("/v1/kv/after-removal", "1")


def test_servers_that_leave_are_removed_from_the_configuration(cluster, mesh, agent_factory):
    leader = leader_of(cluster)
    client = agent_factory(node="web1", server=False,
                           extra_args=["-retry-join", f"127.0.0.1:{leader.port}"])

    def known():
        return int(client.get_json("/v1/agent/self")["Stats"]["consul"]["known_servers"])
    wait_until(lambda: known() == 3, 20, what="the client to know three servers")

    # SIGINT on a follower: it leaves, then exits 0.
    follower = next(s for s in cluster if s is not leader)
    os.kill(follower.proc.pid, signal.SIGINT)
    assert follower.proc.wait(timeout=30) == 0
    rest = [s for s in cluster if s is not follower]
    want = sorted(s.raft_addr for s in rest)
    for s in rest:
        wait_until(lambda: peers(s) == want, 20, what=f"{s.name} to drop the server that left")
    assert "left the cluster" in follower.log_text()
    # The client forgets a server it learned of once the cluster no longer has it.
    wait_until(lambda: known() == 2, 20, what="the client to forget the server that left")

    # mesh leave on the leader: it hands leadership over first, then is removed.
    out = mesh_cli(mesh, leader, "leave")
    assert out.returncode == 0, out.stderr
    assert leader.proc.wait(timeout=30) == 0
    last = next(s for s in rest if s is not leader)
    wait_until(lambda: peers(last) == [last.raft_addr], 30, what="one server left")
    assert leader_of([last]) is last
    # Alone it is a majority of its configuration: it still accepts writes.
    last.put_true("/v1/kv/alone", "1")
    # The client follows the last one (the address it was given with -retry-join it keeps).
    wait_until(lambda: client.put("/v1/kv/via-client", "1").status == 200, 20,
               what="a write through the client agent")
