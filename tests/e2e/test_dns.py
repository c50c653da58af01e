"""The agent's DNS interface (Consul's port 8600), queried over real UDP and TCP sockets.

The few bytes of a DNS query and the parse of its answer are written here with struct (no DNS
library), so the tests read the wire format as a resolver would.
"""

import socket
import struct

import pytest

from helpers import HOST, free_ports, wait_until

A, NS, CNAME, SOA, TXT, AAAA, SRV, OPT, ANY = 1, 2, 5, 6, 16, 28, 33, 41, 255
NOERROR, FORMERR, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 3, 4, 5
FLAG_QR, FLAG_AA, FLAG_TC = 0x8000, 0x0400, 0x0200


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def build_query(name, qtype, qid=0x1234, edns=None, flags=0x0100):
    head = struct.pack(">HHHHHH", qid, flags, 1, 0, 0, 1 if edns else 0)
    msg = head + encode_name(name) + struct.pack(">HH", qtype, 1)
    if edns:
        msg += b"\0" + struct.pack(">HHIH", OPT, edns, 0, 0)
    return msg


def read_name(msg, off):
    """(name, offset after the name at off); follows compression pointers (bounded)."""
    labels, end = [], None
    for _ in range(128):
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if end is None:
                end = off + 2
            off = ((n & 0x3F) << 8) | msg[off + 1]
            continue
        if n == 0:
            return ".".join(labels), (end if end is not None else off + 1)
        labels.append(msg[off + 1:off + 1 + n].decode())
        off += 1 + n
    raise AssertionError("name compression loop in the answer")


def parse_rdata(msg, rtype, off, rdlen):
    if rtype == A:
        return socket.inet_ntop(socket.AF_INET, msg[off:off + 4])
    if rtype == AAAA:
        return socket.inet_ntop(socket.AF_INET6, msg[off:off + 16])
    if rtype in (CNAME, NS):
        return read_name(msg, off)[0]
    if rtype == SRV:
        prio, weight, port = struct.unpack(">HHH", msg[off:off + 6])
        return (prio, weight, port, read_name(msg, off + 6)[0])
    if rtype == SOA:
        mname, p = read_name(msg, off)
        rname, p = read_name(msg, p)
        return (mname, rname) + struct.unpack(">IIIII", msg[p:p + 20])
    if rtype == TXT:
        parts, p = [], off
        while p < off + rdlen:
            parts.append(msg[p + 1:p + 1 + msg[p]].decode())
            p += 1 + msg[p]
        return "".join(parts)
    return msg[off:off + rdlen]


class Answer:
    def __init__(self, msg):
        self.raw = msg
        (self.id, self.flags, qd, an, ns, ar) = struct.unpack(">HHHHHH", msg[:12])
        self.rcode = self.flags & 0xF
        off = 12
        self.question = None
        for _ in range(qd):
            name, off = read_name(msg, off)
            self.question = (name,) + struct.unpack(">HH", msg[off:off + 4])
            off += 4
        self.sections = []
        for count in (an, ns, ar):
            records = []
            for _ in range(count):
                name, off = read_name(msg, off)
                rtype, _cls, ttl, rdlen = struct.unpack(">HHIH", msg[off:off + 10])
                off += 10
                records.append((name, rtype, ttl, parse_rdata(msg, rtype, off, rdlen)))
                off += rdlen
            self.sections.append(records)
        assert off == len(msg), "bytes left after the last record"
        self.answer, self.authority, self.additional = self.sections

    def data(self, rtype, section=None):
        return [r[3] for r in (section if section is not None else self.answer) if r[1] == rtype]

    @property
    def tc(self):
        return bool(self.flags & FLAG_TC)


def udp_raw(port, data, timeout=2.0, attempts=3):
    """Sends a datagram and returns the reply bytes, or None when none came (UDP may drop: a
    few bounded attempts)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        for _ in range(attempts):
            s.sendto(data, (HOST, port))
            try:
                return s.recv(65535)
            except socket.timeout:
                continue
    return None


def udp(port, name, qtype, **kw):
    reply = udp_raw(port, build_query(name, qtype, **kw))
    assert reply is not None, f"no UDP answer for {name}"
    assert len(reply) <= max(512, kw.get("edns") or 0)
    return Answer(reply)


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise AssertionError("connection closed mid-message")
        data += chunk
    return data


def tcp_exchange(s, payload):
    s.sendall(struct.pack(">H", len(payload)) + payload)
    (n,) = struct.unpack(">H", recv_exact(s, 2))
    return recv_exact(s, n)


def tcp(port, name, qtype, **kw):
    with socket.create_connection((HOST, port), timeout=5.0) as s:
        return Answer(tcp_exchange(s, build_query(name, qtype, **kw)))


@pytest.fixture
def dns_agent(agent_factory, write_config):
    """Make(config=None) -> (agent, dns port): an agent serving DNS on a free port."""

    def make(config=None):
        http, port = free_ports(2)
        files = [write_config(config, name=f"dns-{port}.json")] if config else []
        a = agent_factory(http_port=http, dns_port=port, config_files=files)
        wait_until(lambda: udp_raw(port, build_query("consul", SOA), timeout=0.3, attempts=1),
                   5.0, what="the DNS listener")
        return a, port

    return make


def register(agent, sid, name, port, address="", tags=(), check=None):
    svc = {"ID": sid, "Name": name, "Port": port, "Address": address, "Tags": list(tags)}
    if check:
        svc["Check"] = check
    r = agent.register_service(svc)
    assert r.status == 200, r


def test_service_a_and_srv(dns_agent):
    a, port = dns_agent()
    register(a, "web1", "web", 8080, "127.0.0.10")
    register(a, "web2", "web", 8081, "127.0.0.11")
    register(a, "web3", "web", 8082)  # no address: the node's (127.0.0.1)
    register(a, "web4", "web", 8083, "127.0.0.13")

    ans = udp(port, "web.service.consul", A, qid=0xBEEF)
    assert ans.id == 0xBEEF and ans.flags & FLAG_QR and ans.flags & FLAG_AA
    assert ans.rcode == NOERROR and ans.question == ("web.service.consul", A, 1)
    # Consul's defaults: at most 3 answers over UDP, no TC bit, TTL 0.
    got = ans.data(A)
    assert len(got) == 3 and not ans.tc
    assert set(got) <= {"127.0.0.10", "127.0.0.11", "127.0.0.1", "127.0.0.13"}
    assert all(r[0] == "web.service.consul" and r[2] == 0 for r in ans.answer)
    full = tcp(port, "web.service.consul", A)
    assert sorted(full.data(A)) == ["127.0.0.1", "127.0.0.10", "127.0.0.11", "127.0.0.13"]
    # The datacenter may be named; another one is not known.
    assert len(tcp(port, "web.service.dc1.consul", A).data(A)) == 4
    assert tcp(port, "web.service.dc2.consul", A).rcode == NXDOMAIN
    # Case does not matter.
    assert len(tcp(port, "WEB.Service.CONSUL", A).data(A)) == 4

    srv = tcp(port, "web.service.consul", SRV)
    records = srv.data(SRV)
    assert sorted(r[2] for r in records) == [8080, 8081, 8082, 8083]
    extra = {r[0]: r[3] for r in srv.additional if r[1] == A}
    for prio, weight, p, target in records:
        assert (prio, weight) == (1, 1)
        if p == 8082:  # on the node's address: the node's name is the target
            assert target == "node1.node.dc1.consul"
            assert extra[target] == "127.0.0.1"
        else:  # a service address: spelled as HEX.addr
            want = {8080: "127.0.0.10", 8081: "127.0.0.11", 8083: "127.0.0.13"}[p]
            assert target == socket.inet_aton(want).hex() + ".addr.dc1.consul"
            assert extra[target] == want
    # The HEX.addr name itself resolves.
    assert tcp(port, "7f00000a.addr.dc1.consul", A).data(A) == ["127.0.0.10"]
    # An IPv4-only service asked for AAAA: no records, no error, the SOA says for how long.
    v6 = udp(port, "web.service.consul", AAAA)
    assert v6.rcode == NOERROR and v6.answer == [] and v6.data(SOA, v6.authority)


def test_tag_filter_and_rfc2782(dns_agent):
    a, port = dns_agent()
    register(a, "db1", "db", 5432, "127.0.0.20", tags=["primary"])
    register(a, "db2", "db", 5433, "127.0.0.21", tags=["replica"])

    assert tcp(port, "primary.db.service.consul", A).data(A) == ["127.0.0.20"]
    assert tcp(port, "replica.db.service.consul", A).data(A) == ["127.0.0.21"]
    assert tcp(port, "nope.db.service.consul", A).rcode == NXDOMAIN
    assert [r[2] for r in tcp(port, "_db._primary.service.consul", SRV).data(SRV)] == [5432]
    both = tcp(port, "_db._tcp.service.consul", SRV).data(SRV)
    assert sorted(r[2] for r in both) == [5432, 5433]
    # The "service" label is optional in an SRV question (docs/agent.md, DNS), datacenter
    # or not; other questions need it, as in Consul.
    both = tcp(port, "_db._tcp.consul", SRV).data(SRV)
    assert sorted(r[2] for r in both) == [5432, 5433]
    assert [r[2] for r in udp(port, "_db._primary.dc1.consul", SRV).data(SRV)] == [5432]
    assert tcp(port, "_db._primary.dc2.consul", SRV).rcode == NXDOMAIN
    assert tcp(port, "_db._tcp.consul", A).rcode == NXDOMAIN
    # The datacenter may also be spelled DC.dc.
    assert tcp(port, "primary.db.service.dc1.dc.consul", A).data(A) == ["127.0.0.20"]
    assert [r[2] for r in tcp(port, "_db._replica.dc1.dc.consul", SRV).data(SRV)] == [5433]
    assert tcp(port, "db.service.dc2.dc.consul", A).rcode == NXDOMAIN


def test_unhealthy_instances_drop_out(dns_agent):
    a, port = dns_agent()
    register(a, "api1", "api", 9000, "127.0.0.30")
    register(a, "api2", "api", 9001, "127.0.0.31", check={"TTL": "30s"})

    def addrs():
        return sorted(tcp(port, "api.service.consul", A).data(A))

    # A TTL check starts critical: that instance is left out.
    assert addrs() == ["127.0.0.30"]
    assert a.put("/v1/agent/check/pass/service:api2").status == 200
    assert addrs() == ["127.0.0.30", "127.0.0.31"]
    # Warning still answers (Consul's default, without dns_config.only_passing).
    assert a.put("/v1/agent/check/warn/service:api2").status == 200
    assert addrs() == ["127.0.0.30", "127.0.0.31"]
    assert a.put("/v1/agent/check/fail/service:api2").status == 200
    assert addrs() == ["127.0.0.30"]
    # With every instance gone the name does not exist.
    r = a.put("/v1/agent/service/deregister/api1")
    assert r.status == 200
    ans = udp(port, "api.service.consul", A)
    assert ans.rcode == NXDOMAIN and ans.data(SOA, ans.authority)


def test_only_passing_applies_on_reload(dns_agent, write_config):
    a, port = dns_agent({"dns_config": {"only_passing": False}})
    register(a, "c1", "cache", 7000, "127.0.0.40", check={"TTL": "30s"})
    assert a.put("/v1/agent/check/warn/service:c1").status == 200
    assert tcp(port, "cache.service.consul", A).data(A) == ["127.0.0.40"]
    # dns_config is applied by a reload, as Consul's is.
    write_config({"dns_config": {"only_passing": True}}, name=f"dns-{port}.json")
    assert a.put("/v1/agent/reload").status == 200
    assert tcp(port, "cache.service.consul", A).rcode == NXDOMAIN
    assert a.put("/v1/agent/check/pass/service:c1").status == 200
    assert tcp(port, "cache.service.consul", A).data(A) == ["127.0.0.40"]


def test_node_lookup(dns_agent):
    _a, port = dns_agent()
    ans = udp(port, "node1.node.consul", A)
    assert ans.rcode == NOERROR and ans.data(A) == ["127.0.0.1"]
    assert tcp(port, "node1.node.dc1.consul", A).data(A) == ["127.0.0.1"]
    # Node meta as TXT records ("key=value", RFC 1464).
    assert "consul-network-segment=" in tcp(port, "node1.node.consul", TXT).data(TXT)
    missing = udp(port, "node9.node.consul", A)
    assert missing.rcode == NXDOMAIN


def test_nxdomain_soa_and_apex(dns_agent):
    _a, port = dns_agent()
    for name in ("nope.service.consul", "x.query.consul", "foo.bar.consul", "service.consul"):
        ans = udp(port, name, A)
        assert ans.rcode == NXDOMAIN, name
        assert ans.answer == []
        soa = ans.data(SOA, ans.authority)
        assert len(soa) == 1 and ans.authority[0][0] == "consul"
        mname, rname, _serial, refresh, retry, expire, minimum = soa[0]
        assert (mname, rname) == ("ns.consul", "hostmaster.consul")
        assert (refresh, retry, expire, minimum) == (3600, 600, 86400, 0)
    apex = udp(port, "consul", SOA)
    assert apex.rcode == NOERROR and len(apex.data(SOA)) == 1
    ns = udp(port, "consul", NS)
    assert ns.data(NS) == ["node1.node.dc1.consul"]
    assert ns.data(A, ns.additional) == ["127.0.0.1"]
    # Outside the domain, with no recursors: refused, as Consul's agent does.
    assert udp(port, "example.com", A).rcode == REFUSED


def test_domain_option(dns_agent):
    a, port = dns_agent({"domain": "mesh.test"})
    register(a, "w", "web", 80, "127.0.0.50")
    assert udp(port, "web.service.mesh.test", A).data(A) == ["127.0.0.50"]
    assert udp(port, "web.service.consul", A).rcode == REFUSED


def test_truncation_and_tcp_retry(dns_agent):
    a, port = dns_agent({"dns_config": {"enable_truncate": True, "udp_answer_limit": 100}})
    for i in range(60):
        register(a, f"big{i}", "big", 1000 + i, f"127.0.1.{i + 1}")

    ans = udp(port, "big.service.consul", A)
    assert ans.tc, "a UDP answer trimmed to 512 bytes must carry TC with enable_truncate"
    assert 0 < len(ans.data(A)) < 60 and len(ans.raw) <= 512
    # The client retries over TCP as a resolver does, and gets every record.
    full = tcp(port, "big.service.consul", A)
    assert not full.tc and len(set(full.data(A))) == 60
    # An EDNS0 client that takes 4096 bytes gets them all over UDP, with an OPT record back.
    edns = udp(port, "big.service.consul", A, edns=4096)
    assert not edns.tc and len(edns.data(A)) == 60
    assert edns.data(OPT, edns.additional)
    srv = udp(port, "big.service.consul", SRV, edns=1232)
    assert srv.tc and len(srv.raw) <= 1232


def test_tcp_answer_over_64k_is_trimmed(dns_agent):
    """An answer larger than a TCP message can carry (65535 bytes) is trimmed to fit, as Consul
    trims it, rather than left unanswered."""
    a, port = dns_agent()
    # SRV targets are written uncompressed (RFC 2782): ~220 bytes a record, 320 of them.
    host = ".".join(["x" * 60] * 3)
    for i in range(320):
        register(a, f"wide{i}", "wide", 2000 + i, f"h{i}.{host}")

    srv = tcp(port, "wide.service.consul", SRV)
    assert srv.rcode == NOERROR and not srv.tc
    assert 100 < len(srv.data(SRV)) < 320 and len(srv.raw) <= 65535
    # The same connection keeps answering.
    with socket.create_connection((HOST, port), timeout=5.0) as s:
        assert Answer(tcp_exchange(s, build_query("wide.service.consul", SRV))).data(SRV)
        assert Answer(tcp_exchange(s, build_query("consul", SOA))).data(SOA)


def test_malformed_queries(dns_agent):
    a, port = dns_agent()
    # Too short for a header: dropped.
    assert udp_raw(port, b"\x01\x02\x03", timeout=0.3, attempts=1) is None
    # A response (QR set) is never answered.
    assert udp_raw(port, build_query("consul", SOA, flags=0x8000), timeout=0.3,
                   attempts=1) is None
    # A name cut short: FORMERR with the query's ID.
    cut = build_query("web.service.consul", A, qid=0x4242)[:20]
    ans = Answer(udp_raw(port, cut))
    assert (ans.id, ans.rcode) == (0x4242, FORMERR) and ans.flags & FLAG_QR
    # A compression pointer to itself: FORMERR, not a loop.
    loop = struct.pack(">HHHHHH", 7, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c" + struct.pack(">HH", A, 1)
    assert Answer(udp_raw(port, loop)).rcode == FORMERR
    # Two questions: FORMERR.
    two = struct.pack(">HHHHHH", 8, 0x0100, 2, 0, 0, 0) + (encode_name("consul") + b"\0\6\0\1") * 2
    assert Answer(udp_raw(port, two)).rcode == FORMERR
    # A label type that does not exist (0x40): FORMERR.
    bad = struct.pack(">HHHHHH", 9, 0x0100, 1, 0, 0, 0) + b"\x41abc\0" + struct.pack(">HH", A, 1)
    assert Answer(udp_raw(port, bad)).rcode == FORMERR
    # An opcode other than QUERY: NOTIMP.
    assert Answer(udp_raw(port, build_query("consul", SOA, flags=0x1000))).rcode == NOTIMP
    # Over TCP, a bad message gets FORMERR and the connection serves the next query.
    with socket.create_connection((HOST, port), timeout=5.0) as s:
        junk = struct.pack(">HHHHHH", 5, 0x0100, 1, 0, 0, 0) + b"\x3fab"
        assert Answer(tcp_exchange(s, junk)).rcode == FORMERR
        assert Answer(tcp_exchange(s, build_query("node1.node.consul", A))).data(A) == [
            "127.0.0.1"]
    # A TCP client that sends half a message and leaves does not hurt the agent.
    with socket.create_connection((HOST, port), timeout=5.0) as s:
        s.sendall(b"\x00\x40\x12")
    assert udp(port, "node1.node.consul", A).data(A) == ["127.0.0.1"]
    assert a.running()


def test_client_agent_asks_its_server(agent_factory):
    server = agent_factory(node="srv")
    http, port = free_ports(2)
    client = agent_factory(node="web1", server=False, http_port=http, dns_port=port,
                           extra_args=["-retry-join", f"127.0.0.1:{server.port}"])
    register(server, "api-srv", "api", 9000, "127.0.0.60")  # on the server's node
    register(client, "api-web1", "api", 9001, "127.0.0.61", tags=["v2"])  # the client's own
    # The client's service reaches the server's catalog by its sync; then both answer.
    wait_until(lambda: len(tcp(port, "api.service.consul", A).data(A)) == 2, 10.0,
               what="both api instances through the client agent")
    assert sorted(udp(port, "api.service.consul", A).data(A)) == ["127.0.0.60", "127.0.0.61"]
    # A client that half-closes after its query still gets the answer the server gives later.
    with socket.create_connection((HOST, port), timeout=5.0) as s:
        q = build_query("api.service.consul", A)
        s.sendall(struct.pack(">H", len(q)) + q)
        s.shutdown(socket.SHUT_WR)
        (n,) = struct.unpack(">H", recv_exact(s, 2))
        assert sorted(Answer(recv_exact(s, n)).data(A)) == ["127.0.0.60", "127.0.0.61"]
        assert s.recv(1) == b"", "the agent closes once it has answered"
    assert tcp(port, "v2.api.service.consul", A).data(A) == ["127.0.0.61"]
    srv = tcp(port, "api.service.consul", SRV)
    assert sorted(r[2] for r in srv.data(SRV)) == [9000, 9001]
    assert tcp(port, "srv.node.consul", A).data(A) == ["127.0.0.1"]
    assert tcp(port, "nope.node.consul", A).rcode == NXDOMAIN
    assert tcp(port, "nope.service.consul", A).rcode == NXDOMAIN
    assert udp(port, "consul", NS).data(NS) == ["srv.node.dc1.consul"]
    # What needs no catalog is answered locally, server or not.
    server.stop()
    assert tcp(port, "7f00000a.addr.consul", A).data(A) == ["127.0.0.10"]
    # A server that cannot be reached: SERVFAIL, as Consul's RPC errors.
    assert udp(port, "api.service.consul", A).rcode == 2


def test_lookups_use_the_default_token_under_acls(dns_agent):
    """With ACLs (default deny), DNS answers what the agent's default token may read, as
    Consul's DNS does: nothing for the anonymous token, the service once the default token
    has service:read and node:read."""
    root = {"X-Consul-Token": "root"}
    a, port = dns_agent({"acl": {"enabled": True, "default_policy": "deny",
                                 "tokens": {"initial_management": "root"}}})
    assert a.put("/v1/agent/service/register", {"ID": "web1", "Name": "web", "Port": 80,
                                                "Address": "127.0.0.10"}, headers=root).status == 200
    assert tcp(port, "web.service.consul", A).rcode == NXDOMAIN
    assert tcp(port, "node1.node.consul", A).rcode == NXDOMAIN
    pol = a.put("/v1/acl/policy", {"Name": "dns", "Rules": 'service_prefix "" { policy = "read" }'
                                   '\nnode_prefix "" { policy = "read" }'}, headers=root).json()
    tok = a.put("/v1/acl/token", {"Policies": [{"ID": pol["ID"]}]}, headers=root).json()
    assert a.put("/v1/agent/token/default", {"Token": tok["SecretID"]},
                 headers=root).status == 200
    assert tcp(port, "web.service.consul", A).data(A) == ["127.0.0.10"]
    assert tcp(port, "node1.node.consul", A).data(A) == ["127.0.0.1"]


def test_tcp_idle_connections_give_way_to_a_newcomer(dns_agent):
    """Connections opened and held silent fill the TCP listener's 256 slots: at the cap the one
    idle the longest is closed for a newcomer (as the HTTP server does), so holding sockets open
    cannot lock resolvers out of DNS over TCP."""
    a, port = dns_agent()
    register(a, "w", "web", 80, "127.0.0.50")
    held = []
    try:
        for _ in range(256):
            held.append(socket.create_connection((HOST, port), timeout=5.0))
        # One that did ask something recently is not the one to give way.
        assert Answer(tcp_exchange(held[-1], build_query("consul", SOA))).data(SOA)
        for i in range(3):
            ans = tcp(port, "web.service.consul", A)
            assert ans.data(A) == ["127.0.0.50"], f"newcomer {i} was refused at the cap"
        # The oldest silent connections were the ones closed.
        held[0].settimeout(5.0)
        assert held[0].recv(1) == b""
        assert Answer(tcp_exchange(held[-1], build_query("consul", SOA))).data(SOA)
    finally:
        for s in held:
            s.close()
