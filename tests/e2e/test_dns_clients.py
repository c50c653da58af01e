"""The agent's DNS interface read by resolvers we did not write: BIND's dig, and HAProxy's
resolvers filling a backend from SRV records (`server-template`), the way HAProxy is run
beside Consul without consul-template."""

import shutil
import subprocess

import pytest

from helpers import HOST, free_port, wait_until
from lb_helpers import backends, spread  # noqa: F401 (fixture)
from test_dns import SRV, build_query, dns_agent, register, udp_raw  # noqa: F401 (fixture)
from test_template import Haproxy


def dig(port, *args):
    r = subprocess.run(["dig", "@" + HOST, "-p", str(port), "+time=2", "+tries=2", *args],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


@pytest.mark.skipif(shutil.which("dig") is None, reason="dig (bind9-dnsutils) not installed")
def test_dig_reads_srv_and_a_over_udp_and_tcp(dns_agent):
    """dig parses every answer without a complaint (a malformed message makes it print a
    warning or ";; Got bad packet"), over UDP and over TCP."""
    a, port = dns_agent()
    register(a, "web1", "web", 8080, "127.0.0.10")
    register(a, "web2", "web", 8081, "127.0.0.11")
    for transport in ("+notcp", "+tcp"):
        srv = dig(port, transport, "web.service.consul", "SRV")
        assert "status: NOERROR" in srv and "bad packet" not in srv.lower(), srv
        short = dig(port, transport, "+short", "web.service.consul", "SRV").split("\n")
        ports = sorted(line.split()[2] for line in short if line)
        assert ports == ["8080", "8081"], short
        addrs = dig(port, transport, "+short", "web.service.consul", "A").split()
        assert sorted(addrs) == ["127.0.0.10", "127.0.0.11"], addrs
    # the SRV targets resolve to the instances' addresses, from the additional section
    full = dig(port, "_web._tcp.service.consul", "SRV")
    additional = full.partition(";; ADDITIONAL SECTION:")[2]
    assert "127.0.0.10" in additional and "127.0.0.11" in additional, full
    missing = dig(port, "nothing.service.consul", "A")
    assert "status: NXDOMAIN" in missing and "AUTHORITY: 1" in missing, missing


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")
def test_haproxy_server_template_follows_srv_records(dns_agent, backends, tmp_path):
    """HAProxy's resolvers ask the agent for _web._tcp.service.consul and fill four server
    slots from the SRV answer (ports from the records, addresses from its additional
    section): both instances get traffic, and a deregistered one leaves the backend."""
    a, dns_port = dns_agent()
    b1, b2 = backends(2)
    register(a, "web-1", "web", b1.port, HOST)
    register(a, "web-2", "web", b2.port, HOST)
    wait_until(lambda: udp_raw(dns_port, build_query("web.service.consul", SRV)), 5,
               what="the SRV answer")
    port = free_port()
    cfg, pidfile = tmp_path / "haproxy.cfg", tmp_path / "haproxy.pid"
    cfg.write_text(f"""global
    maxconn 100
resolvers mesh
    nameserver agent {HOST}:{dns_port}
    accepted_payload_size 8192
    resolve_retries 3
    timeout resolve 200ms
    timeout retry 200ms
    hold valid 1s
    hold obsolete 1s
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend web
    bind {HOST}:{port}
    default_backend web
backend web
    balance roundrobin
    server-template web 4 _web._tcp.service.consul resolvers mesh resolve-prefer ipv4 init-addr none
""")
    hap = Haproxy(cfg, pidfile, tmp_path / "haproxy.log")
    try:
        def both():
            try:
                seen = spread(port, 6)
            except (OSError, AssertionError):
                return None
            return seen if set(seen) == {str(b1.port), str(b2.port)} else None
        wait_until(both, 30, interval=0.2, what="haproxy to serve from both SRV records")

        a.put_ok("/v1/agent/service/deregister/web-2")

        def only_first():
            try:
                seen = spread(port, 6)
            except (OSError, AssertionError):
                return None
            return seen if set(seen) == {str(b1.port)} else None
        wait_until(only_first, 30, interval=0.2, what="haproxy to drop the deregistered one")
        assert hap.proc.poll() is None, (tmp_path / "haproxy.log").read_text()
    finally:
        hap.stop()
