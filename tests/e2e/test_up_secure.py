"""`mesh up -secure` (issue 13 item 10): the cluster comes up encrypted and locked (CA and
certificates from `mesh tls`, HTTPS only with client certificates, ACLs with default deny, a
management token printed once and kept mode 0600), refuses plain HTTP and anonymous requests,
and every operator command, the UI, mesh exec and the lb work in that mode."""
import http.client
import json
import os
import re
import ssl
import stat
import subprocess
from pathlib import Path

import pytest

from cluster_helpers import Cluster
from helpers import HOST, SANITIZER_MARKERS, mesh_bin


@pytest.fixture(scope="module")
def secure(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("secure") / "run")
    try:
        c.up_result = c.up("-secure")
        c.tls = Path(c.run_dir, "tls")
        c.token = (c.tls / "token").read_text().strip() if c.up_result.returncode == 0 else ""
        yield c
    finally:
        subprocess.run([mesh_bin(), "down", "-run-dir", c.run_dir], capture_output=True,
                       timeout=120)
        for log in Path(c.run_dir).rglob("*.log"):
            text = log.read_text(errors="replace")
            assert not any(m in text for m in SANITIZER_MARKERS), (log, text[-3000:])


def https(c, method, path, token=None, cert=True, body=None, port=None):
    """A request to the server's agent (or the one on port) over HTTPS, trusting the cluster's
    CA, with its client certificate unless cert is false."""
    ctx = ssl.create_default_context(cafile=str(c.tls / "consul-agent-ca.pem"))
    if cert:
        ctx.load_cert_chain(str(c.tls / "dc1-client-consul-0.pem"),
                            str(c.tls / "dc1-client-consul-0-key.pem"))
    conn = http.client.HTTPSConnection(HOST, port or c.ports["http"], context=ctx, timeout=10)
    try:
        conn.request(method, path, body=body,
                     headers={"X-Consul-Token": token} if token else {})
        r = conn.getresponse()
        return r.status, r.read().decode(errors="replace")
    finally:
        conn.close()


def cli_env(c):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MESH_", "CONSUL_"))}
    env["MESH_RUN_DIR"] = c.run_dir
    return env


def test_up_prints_the_token_once_and_keeps_it_private(secure):
    p = secure.up_result
    assert p.returncode == 0, p.stdout + p.stderr
    token = secure.token
    assert re.fullmatch(r"[0-9a-f-]{36}", token)
    assert p.stdout.count(token) == 1, p.stdout
    assert f"https://127.0.0.1:{secure.ports['http']}/ui/" in p.stdout
    for f in (secure.tls / "token", Path(secure.run_dir, "web1", "secure.json"),
              secure.tls / "consul-agent-ca-key.pem"):
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    assert token not in secure.mesh("status").stdout


def test_plain_http_and_anonymous_requests_are_refused(secure):
    conn = http.client.HTTPConnection(HOST, secure.ports["http"], timeout=10)
    conn.request("GET", "/v1/agent/self")
    r = conn.getresponse()
    assert r.status == 400 and b"HTTP request to an HTTPS server" in r.read()
    conn.close()
    with pytest.raises((ssl.SSLError, ConnectionError)):
        https(secure, "GET", "/v1/agent/self", token=secure.token, cert=False)
    assert https(secure, "GET", "/v1/agent/self")[0] == 403
    assert https(secure, "PUT", "/v1/kv/anon", body="x")[0] == 403
    status, body = https(secure, "GET", "/v1/agent/self", token=secure.token)
    assert status == 200 and json.loads(body)["Config"]["NodeName"] == "loadbalancer"
    # A web node's agent is locked the same way.
    assert https(secure, "GET", "/v1/agent/self", port=secure.ports["agents"])[0] == 403


def test_operator_commands_work(secure):
    st = secure.json("status")
    assert {n["node"]: n["status"] for n in st["nodes"]} == {
        "loadbalancer": "alive", "web1": "alive", "web2": "alive"}
    assert all(a["status"] == "online" for a in st["apps"]) and len(st["apps"]) == 2
    assert [r["status"] for r in st["lb"] if r["server"] != "BACKEND"] == ["UP", "UP"]
    assert secure.mesh("health").returncode == 0
    assert len(secure.passing("web1")) == 1
    res = secure.json("test-lb", "-n", "10")
    assert res["failed"] == 0 and set(res["served_by"]) == {"web1/0", "web2/0"}, res
    secure.mesh("scale-up", "web1")
    assert len(secure.passing("web1")) == 2
    # The consul-style CLI finds the cluster's address, CA, certificate and token in the run dir.
    env = cli_env(secure)
    p = subprocess.run([mesh_bin(), "kv", "put", "app/mode", "secure"], env=env,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    p = subprocess.run([mesh_bin(), "kv", "get", "app/mode"], env=env, capture_output=True,
                       text=True, timeout=30)
    assert p.stdout == "secure\n", p
    p = subprocess.run([mesh_bin(), "exec", "web2", "--", mesh_bin(), "kv", "get", "app/mode"],
                       env=env, capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and p.stdout == "secure\n", p
    assert secure.get().status == 200


def test_ui_is_served_over_https(secure):
    status, body = https(secure, "GET", "/ui/")
    assert status == 200 and "meshkit registry" in body
    status, body = https(secure, "GET", "/v1/internal/ui/services", token=secure.token)
    assert status == 200 and any(s["Name"] == "web" for s in json.loads(body))


def test_down_stops_everything(secure):
    pids = secure.pids()
    p = secure.mesh("down")
    assert "stopped" in p.stdout
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or \
            Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] in ("Z", "X")
