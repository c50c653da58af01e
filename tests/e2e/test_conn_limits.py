"""Idle connections cannot lock users out of the registry's HTTP API (issue 12, item 7).

Consul's limits.http_max_conns_per_client (default 200): one client address holds at most that
many connections, the next is answered 429 and closed; every other address is still served.
The whole of 127.0.0.0/8 is loopback, so 127.0.0.2 is another client.
"""

import re
import socket

import pytest

from helpers import HOST, AgentError, get_from, parse_raw_response, wait_until


def open_idle(port, n, source="127.0.0.1"):
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(5)
        s.bind((source, 0))
        s.connect((HOST, port))
        socks.append(s)
    return socks


def refused(port, source):
    """Connects from source and reads what the server says unasked: (status, body)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.bind((source, 0))
        s.connect((HOST, port))
        data = b""
        for _ in range(1000):
            b = s.recv(65536)
            if not b:
                break
            data += b
        status, _, body = parse_raw_response(data)
        return status, body


def test_idle_sockets_from_one_address_do_not_lock_out_others(agent):
    idle = open_idle(agent.port, 200)
    try:
        # The 201st from the same address: Consul's 429 at once, then the close (a request
        # sent meanwhile may meet the close as a reset, as with Consul).
        status, body = refused(agent.port, "127.0.0.1")
        assert status == 429
        assert body == b"too many connections from this client\n"
        # Another address is served.
        status, _, body = get_from(agent.port, "/v1/status/leader", "127.0.0.2")
        assert status == 200 and body.startswith(b'"')
    finally:
        for s in idle:
            s.close()
    # Once they are gone the first address is served again.
    wait_until(lambda: get_from(agent.port, "/v1/status/leader", "127.0.0.1")[0] == 200, 10,
               what="127.0.0.1 served again")


def test_limit_is_configurable(agent_factory, write_config):
    a = agent_factory(config_files=[write_config({"limits": {"http_max_conns_per_client": 3}})])
    idle = open_idle(a.port, 3)
    try:
        assert refused(a.port, "127.0.0.1")[0] == 429
        assert get_from(a.port, "/v1/status/leader", "127.0.0.3")[0] == 200
    finally:
        for s in idle:
            s.close()


def test_bad_limits_exit_nonzero(agent_factory, write_config):
    """limits.http_max_conns (a meshkit key: the cap of connections per listener) is at
    least 1."""
    for limits, message in (({"http_max_conns": 0}, "limits.http_max_conns must be at least 1"),
                            ({"http_max_conns": -1}, "expected a non-negative integer")):
        a = agent_factory(start=False, config_files=[write_config({"limits": limits})])
        with pytest.raises(AgentError, match=re.escape(message)):
            a.start()
