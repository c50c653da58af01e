"""Hostile input on what the servers of a cluster use among themselves (issue 14): the
replication port and the join endpoint. Nothing may crash a server, hang its loop, or change
the configuration; the cluster goes on taking writes through the same leader.

The replication port speaks canonical raft's protocol: a handshake (protocol version, server
ID, address length, then the address), then messages (type, header length, header, payload).
"""

import os
import socket
import struct

import pytest

from helpers import wait_until
from raft_helpers import form, leader_of

# Under ASan an allocation as large as a peer can ask for aborts the process; the release build
# gets NULL from malloc and drops the connection, which is what these tests check.
ASAN_ENV = {"ASAN_OPTIONS": "allocator_may_return_null=1"}


def connect(server):
    host, port = server.raft_addr.split(":")
    return socket.create_connection((host, int(port)), timeout=5)


def handshake(server):
    s = connect(server)
    addr = b"127.0.0.1:1\0\0\0\0\0"  # padded to 8 bytes
    s.sendall(struct.pack("<QQQ", 1, 4242, len(addr)) + addr)
    return s


def message(type_, header):
    return struct.pack("<QQ", type_, len(header)) + header


INPUTS = {
    "garbage": lambda s: connect(s).sendall(os.urandom(4096)),
    "wrong protocol": lambda s: connect(s).sendall(struct.pack("<QQQ", 7, 1, 8) + b"x" * 8),
    "huge address length": lambda s: connect(s).sendall(struct.pack("<QQQ", 1, 4242, 1 << 40)),
    "half a handshake": lambda s: connect(s).sendall(struct.pack("<QQ", 1, 4242)),
    "unknown message type": lambda s: handshake(s).sendall(message(99, b"\0" * 8)),
    "empty header": lambda s: handshake(s).sendall(struct.pack("<QQ", 1, 0)),
    "huge header length": lambda s: handshake(s).sendall(struct.pack("<QQ", 1, 1 << 40)),
    "request vote, far future term": lambda s: handshake(s).sendall(
        message(1, struct.pack("<QQQQQ", 1 << 40, 4242, 1 << 40, 1 << 39, 1))),
}


def configuration(server):
    conf = server.get_json("/v1/operator/raft/configuration?stale")
    return sorted((x["ID"], x["Address"], x["Voter"]) for x in conf["Servers"])


@pytest.mark.parametrize("what", list(INPUTS))
def test_hostile_bytes_on_the_replication_port(request, tmp_path, agent_factory, what):
    cluster = form(request, tmp_path, env=ASAN_ENV)
    leader = leader_of(cluster)
    want = configuration(leader)
    held = []
    for s in cluster:
        held.append(INPUTS[what](s) or None)
    leader.put_true("/v1/kv/after", "1")  # the loop still turns, the leader still commits
    assert all(s.running() for s in cluster)
    assert leader_of(cluster) is leader
    for s in cluster:
        assert configuration(s) == want


def test_join_from_an_address_where_no_server_answers_leaves_the_configuration(
        request, tmp_path, agent_factory):
    cluster = form(request, tmp_path)
    leader = leader_of(cluster)
    want = configuration(leader)
    r = leader.put("/v1/internal/mesh/raft/join", body="{not json")
    assert r.status == 400
    r = leader.put("/v1/internal/mesh/raft/join",
                   body={"ID": "4242", "Node": "intruder", "Address": "127.0.0.9:1",
                         "HTTPAddr": "127.0.0.9:1"}, timeout=60)
    assert r.status == 500, r
    # The spare it added while trying is taken out again, on every server.
    for s in cluster:
        wait_until(lambda: configuration(s) == want, 20,
                   what=f"{s.name}'s configuration to be the three servers again")
    leader.put_true("/v1/kv/after", "1")
