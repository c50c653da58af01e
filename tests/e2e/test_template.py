"""`mesh template` end to end: templates rendered against a live `mesh agent`, files that
follow registry changes after the quiescence window, the command run once per change burst,
an outage that keeps the last file, -once / -dry / errors, and a real HAProxy driven by
configs/haproxy.ctmpl that follows a scale-up and serves its 503 page with no instance.
"""

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from helpers import HOST, REPO, SANITIZER_MARKERS, ManagedProcess, free_port, gone, request, wait_until
from lb_helpers import backends  # noqa: F401 (fixture)
from cluster_helpers import Cluster
from test_tls import certs, tls_agent  # noqa: F401 (fixture)

STOP_TIMEOUT = 5.0


class Template(ManagedProcess):
    """A `mesh template` process, stopped by PID; its log (stdout and stderr) in tmp_path."""

    def __init__(self, mesh, tmp_path, args, env=None, name="template"):
        self.name = name
        self.log_path = Path(tmp_path) / f"{name}.log"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([mesh, "template", "-log-level", "debug"] + list(args),
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         env=env)


@pytest.fixture
def template_factory(request, tmp_path, mesh):
    made = []
    shown = request.node.__dict__.setdefault("_mesh_agents", [])

    def make(args, env=None):
        t = Template(mesh, tmp_path, args, env, name=f"template{len(made)}")
        made.append(t)
        shown.append(t)
        return t

    yield make
    for t in made:
        t.stop()
    for t in made:
        for marker in SANITIZER_MARKERS:
            assert marker not in t.log_text(), t.log_tail(80)


def register(agent, sid, port, passing=True):
    agent.register_service({"ID": sid, "Name": "web", "Address": HOST, "Port": port,
                            "Check": {"TTL": "60s"}})
    if passing:
        agent.put_ok(f"/v1/agent/check/pass/service:{sid}")


def read(path):
    try:
        return Path(path).read_text()
    except FileNotFoundError:
        return None


def run_count(path):
    text = read(path)
    return 0 if text is None else text.count("run\n")


WEB_TEMPLATE = """\
{{- range service "web" }}
server {{ .ID }} {{ .Address }}:{{ .Port }}
{{- else }}
no instance
{{- end }}
maxconn {{ keyOrDefault "lb/maxconn" "100" }}
"""


def test_follows_registry_and_runs_command_once_per_burst(agent, tmp_path, template_factory):
    src, out, runs = tmp_path / "web.ctmpl", tmp_path / "web.cfg", tmp_path / "runs"
    src.write_text(WEB_TEMPLATE)
    # a quiescence window wider than the burst below takes (a few local requests)
    t = template_factory(["-consul-addr", f"{HOST}:{agent.port}", "-wait", "1s:4s",
                          "-template", f"{src}:{out}:echo run >> {runs}"])
    wait_until(lambda: read(out) == "\nno instance\nmaxconn 100\n", 10, what="first render")
    wait_until(lambda: run_count(runs) == 1, 10, what="the first command")

    for i in range(3):
        register(agent, f"web-{i}", 3000 + i)
    want = "".join(f"\nserver web-{i} {HOST}:{3000 + i}" for i in range(3)) + "\nmaxconn 100\n"
    wait_until(lambda: read(out) == want, 15, what="the three instances")
    wait_until(lambda: run_count(runs) >= 2, 10, what="the command after the burst")
    # the burst's changes were merged into one write: no further run follows them
    time.sleep(1.5)
    assert run_count(runs) == 2, t.log_tail()

    agent.put_true("/v1/kv/lb/maxconn", "250")
    wait_until(lambda: read(out) == want.replace("100", "250"), 15, what="the key's value")
    wait_until(lambda: run_count(runs) == 3, 10, what="the command after the key")

    # an unchanged value rewrites nothing; a failing check takes its instance out
    agent.put_true("/v1/kv/lb/maxconn", "250")
    agent.put_ok("/v1/agent/check/fail/service:web-2")
    want2 = want.replace("100", "250").replace(f"\nserver web-2 {HOST}:3002", "")
    wait_until(lambda: read(out) == want2, 15, what="the failing instance leaving")
    wait_until(lambda: run_count(runs) == 4, 10, what="the command after the check")
    time.sleep(1.5)
    assert run_count(runs) == 4
    assert t.running()
    assert not list(tmp_path.glob("web.cfg.mesh-tmp*")), "temporary file left behind"

    # SIGHUP re-reads the template; one that no longer parses is refused and the old one stays
    src.write_text("{{ range service \"web\" }}{{ .ID }} {{ end }}\n")
    t.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: read(out) == "web-0 web-1 \n", 15, what="the re-read template")
    src.write_text("{{ if }}\n")
    t.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "missing value for command; keeping the templates in use" in t.log_text(),
               10, what="the refused reload")
    assert read(out) == "web-0 web-1 \n" and t.running()


def test_keeps_file_while_registry_is_down(agent, tmp_path, template_factory):
    src, out = tmp_path / "web.ctmpl", tmp_path / "web.cfg"
    src.write_text(WEB_TEMPLATE)
    register(agent, "web-a", 4000)
    t = template_factory(["-template", f"{src}:{out}"],
                         env=dict(os.environ, CONSUL_HTTP_ADDR=f"http://{HOST}:{agent.port}"))
    first = f"\nserver web-a {HOST}:4000\nmaxconn 100\n"
    wait_until(lambda: read(out) == first, 10, what="first render")
    agent.stop()
    wait_until(lambda: "keeping the last data and retrying" in t.log_text(), 10,
               what="the outage logged")
    time.sleep(1.0)
    assert read(out) == first and t.running()
    # the registry comes back (in-memory: empty) and the file follows it again
    agent.start()
    register(agent, "web-b", 4001)
    wait_until(lambda: read(out) == f"\nserver web-b {HOST}:4001\nmaxconn 100\n", 20,
               what="the render after the outage")
    assert "reachable again" in t.log_text()


def test_once_dry_and_errors(agent, tmp_path, mesh):
    src, out = tmp_path / "web.ctmpl", tmp_path / "web.cfg"
    src.write_text(WEB_TEMPLATE)
    register(agent, "web-1", 3000)
    addr = ["-consul-addr", f"{HOST}:{agent.port}"]

    r = subprocess.run([mesh, "template", *addr, "-once",
                        "-template", f"{src}:{out}:echo ran-once"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert read(out) == f"\nserver web-1 {HOST}:3000\nmaxconn 100\n"
    assert r.stdout == "ran-once\n"

    # a MIN whose default MAX (4 x MIN) passes int64 nanoseconds: MAX saturates
    r = subprocess.run([mesh, "template", *addr, "-once", "-wait", "2562047h",
                        "-template", f"{src}:{tmp_path / 'long.cfg'}"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert read(tmp_path / "long.cfg") == read(out)

    # as consul-template (create_dest_dirs), missing directories above the file are made
    nested = tmp_path / "conf.d" / "lb" / "web.cfg"
    r = subprocess.run([mesh, "template", *addr, "-once", "-template", f"{src}:{nested}"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert read(nested) == read(out)

    r = subprocess.run([mesh, "template", *addr, "-once", "-dry",
                        "-template", f"{src}:{tmp_path / 'dry.cfg'}:echo never"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"> {tmp_path / 'dry.cfg'}\n\nserver web-1 {HOST}:3000\nmaxconn 100\n"
    assert not (tmp_path / "dry.cfg").exists()

    r = subprocess.run([mesh, "template", *addr, "-once",
                        "-template", f"{src}:{tmp_path / 'f.cfg'}:exit 3"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "failed: exit status 3" in r.stderr, r.stderr

    bad = tmp_path / "bad.ctmpl"
    bad.write_text("ok\n{{ range servce \"web\" }}{{ end }}\n")
    r = subprocess.run([mesh, "template", *addr, "-once", "-template", f"{bad}:{out}"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert f"{bad}:2:10: function \"servce\" not defined" in r.stderr

    bad.write_text("{{ index (service \"web\") 7 }}")
    r = subprocess.run([mesh, "template", *addr, "-once", "-template", f"{bad}:{out}"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert f"{bad}:1:4: error calling index: index out of range: 7" in r.stderr

    for args, msg in [(["-wait", "soon"], "invalid value \"soon\" for flag -wait"),
                      (["-template", "nocolon"], "invalid template \"nocolon\""),
                      (["-bogus"], "flag provided but not defined: -bogus"),
                      ([], "no templates"),
                      (["-template", f"{tmp_path}/absent.ctmpl:x"], "absent.ctmpl: No such file")]:
        r = subprocess.run([mesh, "template", *addr, "-once", *args], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode != 0 and msg in r.stderr, (args, r.stderr)

    r = subprocess.run([mesh, "template", "--help"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and "-template" in r.stdout and "-wait" in r.stdout


CONSUL_TEMPLATE_IDIOMS = """\
{{- define "server" }}server {{ .s.ID }} {{ .s.Address }}:{{ add .s.Port .cfg.offset }}
{{ end }}
{{- $cfg := key "app/config" | parseJSON -}}
backend {{ $cfg.name | trimPrefix "svc-" }} maxconn {{ multiply $cfg.maxconn 2 }}
{{ range $i, $s := service "web" -}}
{{ if ge $i (parseInt (keyOrDefault "app/limit" "1")) }}{{ break }}{{ end -}}
{{ template "server" (parseJSON (printf "{\\"s\\": %s, \\"cfg\\": %s}" (toJSON $s) (key "app/config"))) -}}
{{ end -}}
"""


def test_consul_template_idioms_against_the_registry(agent, tmp_path, mesh):
    """A consul-template file with a named template, break, parseJSON of a KV value and the
    arithmetic helpers, rendered against a live agent."""
    src, out = tmp_path / "app.ctmpl", tmp_path / "app.cfg"
    src.write_text(CONSUL_TEMPLATE_IDIOMS)
    register(agent, "web-1", 3000)
    register(agent, "web-2", 3001)
    agent.put_true("/v1/kv/app/config", '{"name": "svc-shop", "maxconn": 50, "offset": 10}')
    r = subprocess.run([mesh, "template", "-consul-addr", f"{HOST}:{agent.port}", "-once",
                        "-template", f"{src}:{out}"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    # parseJSON's numbers are floats, as in consul-template: 50 * 2 and 3000 + 10 print plainly
    assert read(out) == f"backend shop maxconn 100\nserver web-1 {HOST}:3010\n"

    agent.put_true("/v1/kv/app/limit", "5")
    r = subprocess.run([mesh, "template", "-consul-addr", f"{HOST}:{agent.port}", "-once",
                        "-template", f"{src}:{out}"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert read(out) == (f"backend shop maxconn 100\nserver web-1 {HOST}:3010\n"
                         f"server web-2 {HOST}:3011\n")


def test_command_timeout_kills_the_whole_command(agent, tmp_path, mesh):
    """A timed-out command is killed with what it started, not only its shell."""
    src, out, child = tmp_path / "web.ctmpl", tmp_path / "web.cfg", tmp_path / "child.pid"
    src.write_text(WEB_TEMPLATE)
    # a non-interactive sh keeps its children in its process group; `wait` keeps sh running
    cmd = f"sleep 60 >/dev/null 2>&1 & echo $! > {child}; wait"
    r = subprocess.run([mesh, "template", "-consul-addr", f"{HOST}:{agent.port}", "-once",
                        "-command-timeout", "300ms", "-template", f"{src}:{out}:{cmd}"],
                       capture_output=True, text=True, timeout=30)
    pid = int(child.read_text())
    try:
        assert r.returncode == 1 and "timed out: killed" in r.stderr, r.stderr
        wait_until(lambda: gone(pid), 5, what=f"the command's child {pid} killed")
    finally:
        if not gone(pid):
            os.kill(pid, signal.SIGKILL)


def test_https_registry_with_client_certificate(agent_factory, write_config, certs, tmp_path,
                                               mesh):
    """consul-template's TLS environment: CONSUL_CACERT, CONSUL_CLIENT_CERT / _KEY for an agent
    that verifies clients, and CONSUL_HTTP_SSL for a bare host:port."""
    a = tls_agent(agent_factory, write_config, certs, verify_incoming=True)
    assert a.put("/v1/kv/tls/k", "secure").status == 200
    src, out = tmp_path / "k.ctmpl", tmp_path / "k.cfg"
    src.write_text('k={{ key "tls/k" }}\n')
    env = dict(os.environ, CONSUL_CACERT=str(certs / "consul-agent-ca.pem"),
               CONSUL_CLIENT_CERT=str(certs / "dc1-client-consul-0.pem"),
               CONSUL_CLIENT_KEY=str(certs / "dc1-client-consul-0-key.pem"),
               CONSUL_HTTP_SSL="true")
    r = subprocess.run([mesh, "template", "-once", "-consul-addr", f"{HOST}:{a.https_port}",
                        "-template", f"{src}:{out}"],
                       capture_output=True, text=True, timeout=30, env=env)
    assert r.returncode == 0, r.stderr
    assert read(out) == "k=secure\n"


class Haproxy:
    """HAProxy in master-worker mode (-W) in the foreground, stopped by its master's PID."""

    def __init__(self, cfg, pidfile, log_path):
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(["haproxy", "-W", "-f", str(cfg), "-p", str(pidfile)],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT)


def served_by(port, n):
    seen = {}
    for _ in range(n):
        r = request(port, "GET", "/", timeout=5)
        key = r.header("X-Served-By") if r.status == 200 else r.status
        seen[key] = seen.get(key, 0) + 1
    return seen


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")
def test_haproxy_follows_registry(agent, tmp_path, template_factory, backends):
    b1, b2 = backends(2)
    port, stats_port = free_port(), free_port()
    cfg, pidfile = tmp_path / "haproxy.cfg", tmp_path / "haproxy.pid"
    env = dict(os.environ, MESH_HAPROXY_BIND=HOST, MESH_HAPROXY_PORT=str(port),
               MESH_HAPROXY_STATS_PORT=str(stats_port), MESH_HAPROXY_SERVICE="web",
               MESH_HAPROXY_ERRORFILE_503=f"{REPO}/configs/errors/503.http")
    register(agent, "web-1", b1.port)
    reload_cmd = f"test -f {pidfile} && haproxy -c -q -f {cfg} && kill -USR2 $(cat {pidfile})"
    t = template_factory(["-consul-addr", f"{HOST}:{agent.port}", "-wait", "200ms:1s",
                          "-template", f"{REPO}/configs/haproxy.ctmpl:{cfg}:{reload_cmd}"],
                         env=env)
    wait_until(lambda: f"server node1_{b1.port} {HOST}:{b1.port}" in (read(cfg) or ""), 10,
               what="the first haproxy.cfg")
    hap = Haproxy(cfg, pidfile, tmp_path / "haproxy.log")
    try:
        def answers():
            try:
                return served_by(port, 4)
            except OSError:
                return None
        assert wait_until(answers, 10, what="haproxy serving") == {str(b1.port): 4}

        r = request(stats_port, "GET", "/stats;csv", headers={
            "Authorization": "Basic YWRtaW46YWRtaW4="})
        assert r.status == 200 and f"node1_{b1.port}" in r.text

        # scale up: the new instance gets a server line, HAProxy reloads, traffic spreads
        register(agent, "web-2", b2.port)
        wait_until(lambda: f"node1_{b2.port}" in read(cfg), 10, what="the second server line")
        wait_until(lambda: set(served_by(port, 6)) == {str(b1.port), str(b2.port)}, 20,
                   what="traffic on both instances")
        assert "done" in t.log_text()

        # no instance left: the backend is empty and HAProxy answers 503
        agent.put_ok("/v1/agent/service/deregister/web-1")
        agent.put_ok("/v1/agent/service/deregister/web-2")
        wait_until(lambda: "no passing instance of web" in read(cfg), 10, what="the empty backend")

        def unavailable():
            r = request(port, "GET", "/", timeout=5)
            return r if r.status == 503 else None
        r = wait_until(unavailable, 20, what="the 503 page")
        # mesh lb's page, configs/errors/503.http, as HAProxy's errorfile
        page = (REPO / "configs/errors/503.http").read_bytes()
        assert r.body == page.partition(b"\r\n\r\n")[2], r.body[:200]
        assert r.header("Retry-After") == "5"
        assert hap.proc.poll() is None, "the master must survive the reloads"
    finally:
        hap.stop()


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")
def test_up_with_haproxy_reads_its_stats_socket(tmp_path):
    """`mesh up -lb haproxy`: HAProxy in place of mesh lb, its config rendered by mesh template;
    lb-status reads HAProxy's stats socket, a scale-up reaches HAProxy, down stops it all. The
    run directory is deep: the socket's path is longer than a Unix socket address can hold."""
    run = tmp_path / ("a-deep-run-directory-" * 4) / "run"
    assert len(str(run / "loadbalancer" / "haproxy.sock")) > 108
    run.parent.mkdir()
    c = Cluster(run)  # free ports for every part of the cluster

    def servers():
        return {r["server"]: r for r in c.json("lb-status") if r["server"] != "BACKEND"}

    pids = set()
    try:
        up = c.up("-lb", "haproxy")
        assert "HAProxy rendered by mesh template" in up.stdout
        assert json.loads((run / "cluster.json").read_text())["lb"] == "haproxy"
        seen = served_by(c.ports["lb"], 6)
        assert {k.split("/")[0] for k in seen} == {"web1", "web2"}, seen
        # right after a reload a new worker's servers may still be in their first check
        wait_until(lambda: len(servers()) == 2 and
                   all(r["status"] == "UP" for r in servers().values()), 20, interval=0.3,
                   what="both servers UP in lb-status")

        c.mesh("scale-up", "web2")
        wait_until(lambda: len(servers()) == 3, 20, interval=0.3, what="the third server")
        cfg = (run / "loadbalancer" / "haproxy.cfg").read_text()
        assert cfg.count("    server web2_") == 2, cfg

        assert "SIGUSR2" in c.mesh("reload-lb").stdout
        assert "L7OK" in c.mesh("status").stdout
        pids = c.pids()
        # a pidfile holds "PID START_TICKS"
        lb_pids = [int(p.read_text().split()[0])
                   for p in (run / "loadbalancer").glob("*.pid")]
        assert len(lb_pids) == 3  # the server's agent, mesh template, HAProxy's master
    finally:
        c.mesh("down", check=False)
    for pid in pids:
        assert gone(pid), f"process {pid} still running"
    text = (run / "loadbalancer" / "template.log").read_text(errors="replace")
    for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        assert marker not in text
