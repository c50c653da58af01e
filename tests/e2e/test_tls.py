"""TLS on the agent's HTTP API, with certificates made by `mesh tls` (contract: issue 3, Security).

Certificates come from `mesh tls ca create` and `mesh tls cert create` in a temporary
directory; the agent serves HTTPS on -https-port with tls.defaults.* from a config file, next to
its plain HTTP port.
"""

import http.client
import json
import os
import re
import socket
import ssl
import subprocess

import pytest

from helpers import HOST, free_port, wait_until
from lb_helpers import backends, lb_factory, spread  # noqa: F401 (fixtures)

GO_PLAIN_ON_TLS = (b"HTTP/1.0 400 Bad Request\r\n\r\n"
                   b"Client sent an HTTP request to an HTTPS server.\n")


def run_mesh(mesh, args, cwd, env=None, check=True):
    full_env = dict(os.environ)
    for k in list(full_env):
        if k.startswith(("CONSUL_", "MESH_HTTP", "MESH_CA", "MESH_CLIENT", "MESH_TLS")):
            del full_env[k]
    full_env.update(env or {})
    p = subprocess.run([mesh] + args, cwd=str(cwd), env=full_env, capture_output=True,
                       text=True, timeout=20)
    if check:
        assert p.returncode == 0, f"mesh {' '.join(args)}: {p.returncode}\n{p.stdout}{p.stderr}"
    return p


@pytest.fixture
def certs(tmp_path, mesh):
    """A CA, a server and a client certificate, and a client certificate of another CA."""
    d = tmp_path / "certs"
    d.mkdir()
    out = run_mesh(mesh, ["tls", "ca", "create"], d).stdout
    assert out == "==> Saved consul-agent-ca.pem\n==> Saved consul-agent-ca-key.pem\n"
    out = run_mesh(mesh, ["tls", "cert", "create", "-server"], d).stdout
    assert "==> Saved dc1-server-consul-0.pem\n==> Saved dc1-server-consul-0-key.pem\n" in out
    run_mesh(mesh, ["tls", "cert", "create", "-client"], d)
    run_mesh(mesh, ["tls", "ca", "create", "-domain", "other"], d)
    run_mesh(mesh, ["tls", "cert", "create", "-client", "-domain", "other"], d)
    return d


def tls_agent(agent_factory, write_config, certs, verify_incoming=False):
    https_port = free_port()
    cfg = write_config({"tls": {"defaults": {
        "ca_file": str(certs / "consul-agent-ca.pem"),
        "cert_file": str(certs / "dc1-server-consul-0.pem"),
        "key_file": str(certs / "dc1-server-consul-0-key.pem"),
        "verify_incoming": verify_incoming,
    }}}, name=f"tls-{https_port}.json")
    a = agent_factory(config_files=[cfg], extra_args=["-https-port", str(https_port)])
    a.https_port = https_port
    return a


def client_ctx(certs, cert=None):
    ctx = ssl.create_default_context(cafile=str(certs / "consul-agent-ca.pem"))
    if cert:
        ctx.load_cert_chain(str(certs / f"{cert}.pem"), str(certs / f"{cert}-key.pem"))
    return ctx


def https_get(port, ctx, path="/v1/status/leader"):
    c = http.client.HTTPSConnection(HOST, port, context=ctx, timeout=5)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def test_cli_refuses_to_overwrite_ca(certs, mesh):
    p = run_mesh(mesh, ["tls", "ca", "create"], certs, check=False)
    assert p.returncode == 1
    assert "==> CA file consul-agent-ca.pem already exists" in p.stderr
    # A second server certificate takes the next index.
    out = run_mesh(mesh, ["tls", "cert", "create", "-server"], certs).stdout
    assert "==> Saved dc1-server-consul-1.pem\n" in out


def test_https_api_with_ca(agent_factory, write_config, certs):
    a = tls_agent(agent_factory, write_config, certs)
    status, body = https_get(a.https_port, client_ctx(certs))
    assert status == 200
    assert json.loads(body) == a.get_json("/v1/status/leader")
    # The same API: a write over HTTPS is visible over plain HTTP.
    c = http.client.HTTPSConnection(HOST, a.https_port, context=client_ctx(certs), timeout=5)
    c.request("PUT", "/v1/kv/tls-key", body=b"secret")
    r = c.getresponse()
    assert (r.status, r.read()) == (200, b"true")
    c.close()
    assert a.get("/v1/kv/tls-key?raw").body == b"secret"


def test_https_untrusted_without_ca(agent_factory, write_config, certs):
    a = tls_agent(agent_factory, write_config, certs)
    with pytest.raises(ssl.SSLCertVerificationError):
        https_get(a.https_port, ssl.create_default_context())


def test_plain_http_on_https_port(agent_factory, write_config, certs):
    a = tls_agent(agent_factory, write_config, certs)
    with socket.create_connection((HOST, a.https_port), timeout=5) as s:
        s.sendall(b"GET /v1/status/leader HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break  # the server closes after its answer
            data += chunk
    assert data == GO_PLAIN_ON_TLS
    c = http.client.HTTPConnection(HOST, a.https_port, timeout=5)
    c.request("PUT", "/v1/kv/x", body=b"1")
    r = c.getresponse()
    assert r.status == 400
    assert r.read() == b"Client sent an HTTP request to an HTTPS server.\n"
    c.close()
    assert a.get("/v1/kv/x").status == 404


def test_verify_incoming(agent_factory, write_config, certs):
    a = tls_agent(agent_factory, write_config, certs, verify_incoming=True)
    # No client certificate: the handshake fails (with TLS 1.3 the client learns it on read).
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.RemoteDisconnected)):
        https_get(a.https_port, client_ctx(certs))
    # A client certificate from another CA: refused too.
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.RemoteDisconnected)):
        https_get(a.https_port, client_ctx(certs, "dc1-client-other-0"))
    # Signed by the CA: served.
    status, _ = https_get(a.https_port, client_ctx(certs, "dc1-client-consul-0"))
    assert status == 200
    # Both listeners run when both ports are set.
    assert a.get("/v1/status/leader").status == 200


def test_cli_over_https(agent_factory, write_config, certs, mesh):
    a = tls_agent(agent_factory, write_config, certs, verify_incoming=True)
    addr = f"https://{HOST}:{a.https_port}"
    env = {
        "CONSUL_CACERT": str(certs / "consul-agent-ca.pem"),
        "CONSUL_CLIENT_CERT": str(certs / "dc1-client-consul-0.pem"),
        "CONSUL_CLIENT_KEY": str(certs / "dc1-client-consul-0-key.pem"),
    }
    run_mesh(mesh, ["kv", "put", "-http-addr", addr, "cli/tls", "yes"], certs, env)
    p = run_mesh(mesh, ["kv", "get", "-http-addr", addr, "cli/tls"], certs, env)
    assert p.stdout == "yes\n"
    # CONSUL_HTTP_SSL with a bare host:port, MESH_ names.
    env2 = {"MESH_HTTP_ADDR": f"{HOST}:{a.https_port}", "MESH_HTTP_SSL": "true",
            "MESH_CACERT": env["CONSUL_CACERT"], "MESH_CLIENT_CERT": env["CONSUL_CLIENT_CERT"],
            "MESH_CLIENT_KEY": env["CONSUL_CLIENT_KEY"]}
    p = run_mesh(mesh, ["members"], certs, env2)
    assert "node1" in p.stdout
    # Without the CA the server's certificate is not trusted, in Go's words.
    p = run_mesh(mesh, ["kv", "get", "-http-addr", addr, "cli/tls"], certs, check=False)
    assert p.returncode == 1
    assert "certificate signed by unknown authority" in p.stderr
    assert f'Get "{addr}/v1/kv/cli/tls' in p.stderr


def test_lb_follows_an_agent_with_verify_incoming(agent_factory, write_config, certs, backends,
                                                  lb_factory):
    """mesh lb presents a client certificate to an agent that demands one."""
    a = tls_agent(agent_factory, write_config, certs, verify_incoming=True)
    (b1,) = backends(1)
    a.register_service({"ID": "web-1", "Name": "web", "Address": HOST, "Port": b1.port})
    registry = ["-service", "web", "-registry-addr", f"https://{HOST}:{a.https_port}",
                "-registry-ca-file", str(certs / "consul-agent-ca.pem")]

    # Without a certificate the agent refuses the handshake: no servers, and the log says so.
    bare = lb_factory(registry, workers=1)
    wait_until(lambda: "keeping the last 0 servers of web" in bare.log_text(), 10,
               what="the refused handshake logged")
    assert bare.server_rows() == []

    lb = lb_factory(registry + ["-registry-cert-file", str(certs / "dc1-client-consul-0.pem"),
                                "-registry-key-file", str(certs / "dc1-client-consul-0-key.pem")],
                    workers=1)
    wait_until(lambda: len(lb.server_rows()) == 1, 10, what="web-1 from the agent")
    assert spread(lb.port, 4) == {str(b1.port): 4}


def test_bad_tls_config_stops_the_agent(agent_factory, write_config, certs):
    cfg = write_config({"tls": {"defaults": {
        "cert_file": str(certs / "missing.pem"),
        "key_file": str(certs / "dc1-server-consul-0-key.pem"),
    }}}, name="bad-tls.json")
    a = agent_factory(start=False, config_files=[cfg],
                      extra_args=["-https-port", str(free_port())])
    a.start(wait=False)
    assert a.proc.wait(timeout=10) == 1
    assert "missing.pem" in a.log_text()

    cfg = write_config({"tls": {"defaults": {
        "cert_file": str(certs / "dc1-server-consul-0.pem"),
        "key_file": str(certs / "dc1-server-consul-0-key.pem"),
        "verify_incoming": True,
    }}}, name="no-ca.json")
    b = agent_factory(start=False, config_files=[cfg],
                      extra_args=["-https-port", str(free_port())])
    b.start(wait=False)
    assert b.proc.wait(timeout=10) == 1
    assert "verify_incoming needs tls.defaults.ca_file" in b.log_text()


def test_client_agent_syncs_to_the_server_over_tls(agent_factory, write_config, certs):
    """Agent-to-server traffic with TLS configured: a client agent with a CA-signed client
    certificate joins the server's HTTPS port (verify_incoming) and its services reach the
    catalog; one without a certificate never gets in."""
    import time
    from helpers import wait_until
    server = tls_agent(agent_factory, write_config, certs, verify_incoming=True)

    def client(node, cert):
        tls = {"ca_file": str(certs / "consul-agent-ca.pem"), "verify_outgoing": True}
        if cert:
            tls.update(cert_file=str(certs / f"{cert}.pem"),
                       key_file=str(certs / f"{cert}-key.pem"))
        cfg = write_config({"tls": {"defaults": tls},
                            "retry_join": [f"127.0.0.1:{server.https_port}"]},
                           name=f"{node}.json")
        c = agent_factory(node=node, server=False, config_files=[cfg], start=False)
        c.start(wait=False)
        return c

    def up(agent):
        try:
            return agent.get("/v1/agent/self").status == 200
        except OSError:
            return False

    good = client("web1", "dc1-client-consul-0")
    wait_until(lambda: up(good), 10, what="web1 up")
    good.register_service({"ID": "web-1", "Name": "web", "Port": 3000})
    wait_until(lambda: [e["ServiceID"] for e in server.get_json("/v1/catalog/service/web")]
               == ["web-1"], 10, what="web-1 in the catalog through HTTPS")
    bad = client("web2", None)
    wait_until(lambda: up(bad), 10, what="web2 up")
    bad.register_service({"ID": "web-2", "Name": "web", "Port": 3000})
    time.sleep(1.5)
    assert server.get_json("/v1/catalog/node/web2") is None
    assert "heartbeat to" in bad.log_text() and "certificate required" in bad.log_text()


# ---------------------------------------------------------------- verify_incoming closes plain HTTP


def listening_tcp_ports(pid):
    """The TCP ports process pid listens on, from /proc (its socket inodes in LISTEN state)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        m = re.fullmatch(r"socket:\[(\d+)\]", target)
        if m:
            inodes.add(m.group(1))
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(table).read().splitlines()[1:]:
            f = line.split()
            if f[3] == "0A" and f[9] in inodes:  # 0A: LISTEN
                ports.add(int(f[1].rsplit(":", 1)[1], 16))
    return ports


def verify_incoming_agent(agent_factory, write_config, certs, ports):
    """An agent with verify_incoming and the given `ports` config, started without -http-port;
    ready once it answers over HTTPS with a client certificate."""
    cfg = write_config({"ports": ports, "tls": {"defaults": {
        "ca_file": str(certs / "consul-agent-ca.pem"),
        "cert_file": str(certs / "dc1-server-consul-0.pem"),
        "key_file": str(certs / "dc1-server-consul-0-key.pem"),
        "verify_incoming": True,
    }}}, name="verify-incoming.json")
    a = agent_factory(start=False, pass_http_port=False, config_files=[cfg])
    a.start(wait=False)
    ctx = client_ctx(certs, "dc1-client-consul-0")
    wait_until(lambda: a.running() and https_answers(ports["https"], ctx), 10,
               what="the agent to answer over HTTPS")
    return a, ctx


def https_answers(port, ctx):
    try:
        return https_get(port, ctx)[0] == 200
    except OSError:
        return False


def test_verify_incoming_closes_plain_http_unless_asked(agent_factory, write_config, certs):
    """Issue 12 item 15: with verify_incoming and only ports.https, the plain HTTP port (8500 by
    default) used to serve the API to anyone without a certificate."""
    https_port = free_port()
    a, ctx = verify_incoming_agent(agent_factory, write_config, certs, {"https": https_port})
    assert listening_tcp_ports(a.proc.pid) == {https_port}
    assert "http=off" in a.log_text()
    status, body = https_get(https_port, ctx, "/v1/agent/self")
    assert status == 200 and json.loads(body)["DebugConfig"]["HTTPPort"] == -1
    a.stop()

    # Asked for explicitly, plain HTTP stays (Consul's rule).
    http_port = free_port()
    b, _ = verify_incoming_agent(agent_factory, write_config, certs,
                                 {"http": http_port, "https": https_port})
    assert listening_tcp_ports(b.proc.pid) == {http_port, https_port}
    c = http.client.HTTPConnection(HOST, http_port, timeout=5)
    c.request("GET", "/v1/status/leader")
    assert c.getresponse().status == 200
    c.close()


def test_http_port_off_needs_https(agent_factory, write_config):
    """ports.http -1 without an HTTPS port would leave no API at all: refused at start."""
    cfg = write_config({"ports": {"http": -1}})
    a = agent_factory(start=False, pass_http_port=False, config_files=[cfg])
    a.start(wait=False)
    assert a.proc.wait(timeout=10) != 0
    assert "no API listener: ports.http is -1 and no ports.https is set" in a.log_text()
