"""Health checks run by the agent, and their definitions."""

import socket
import time

from helpers import assert_text_error, free_port, wait_until


def closed_port():
    """A port with no listener (bound then released)."""
    return free_port()


# ---------------------------------------------------------------- HTTP checks


def test_http_check_follows_status(agent, target):
    """2xx -> passing, 429 -> warning, anything else -> critical; and back."""
    agent.register_service({"ID": "w1", "Name": "web",
                            "Check": {"HTTP": target.url(), "Interval": "1s", "Timeout": "1s"}})
    c = agent.wait_check("service:w1", "passing", timeout=6)
    assert c["Type"] == "http"
    target.set(status=429)
    agent.wait_check("service:w1", "warning", timeout=5)
    target.set(status=500)
    agent.wait_check("service:w1", "critical", timeout=5)
    target.set(status=204)
    agent.wait_check("service:w1", "passing", timeout=5)


def test_http_check_output_and_default_headers(agent, target):
    """Output "HTTP GET <url>: <status line> Output: <body>"; default UA and Accept."""
    target.set(status=200, body=b"all good")
    url = target.url("/healthz")
    agent.put_ok("/v1/agent/check/register",
                 {"Name": "h", "HTTP": url, "Interval": "1s", "Timeout": "1s"})
    c = agent.wait_check("h", "passing", timeout=6)
    assert c["Output"] == f"HTTP GET {url}: 200 OK Output: all good"
    method, path, headers = target.requests[0]
    assert (method, path) == ("GET", "/healthz")
    assert headers.get("User-Agent") == "Consul Health Check"
    assert headers.get("Accept") == "text/plain, text/*, */*"


def test_http_check_method_and_headers(agent, target):
    """Method and Header (map of lists) are sent."""
    agent.put_ok("/v1/agent/check/register",
                 {"Name": "h", "HTTP": target.url("/p"), "Method": "POST", "Interval": "1s",
                  "Header": {"X-Probe": ["yes"], "Authorization": ["Bearer t0k"]}})
    agent.wait_check("h", "passing", timeout=6)
    method, path, headers = target.requests[0]
    assert method == "POST"
    assert headers.get("X-Probe") == "yes"
    assert headers.get("Authorization") == "Bearer t0k"


def test_http_check_output_hides_a_url_password(agent):
    """The output is shown to every reader of the service: a password in the check's URL is
    printed as Go prints it, xxxxx (meshkit's HTTP checks take no userinfo, so this one fails)."""
    agent.put_ok("/v1/agent/check/register", {"CheckID": "pw", "Name": "pw", "Interval": "1s",
                                              "HTTP": "http://ops:hunter2@127.0.0.1:1/health"})
    c = agent.wait_check("pw", "critical", output_contains="xxxxx")
    assert "hunter2" not in c["Output"] and "ops:xxxxx@127.0.0.1" in c["Output"], c["Output"]


def test_http_check_timeout_is_critical(agent, target):
    """No answer within Timeout -> critical."""
    target.set(status=200)
    agent.put_ok("/v1/agent/check/register",
                 {"Name": "h", "HTTP": target.url(), "Interval": "1s", "Timeout": "1s"})
    agent.wait_check("h", "passing", timeout=6)
    target.set(delay=3.0)
    agent.wait_check("h", "critical", timeout=6)
    target.set(delay=0.0)
    agent.wait_check("h", "passing", timeout=8)


def test_http_check_connection_refused_is_critical(agent):
    """A transport error -> critical (registration Status is only the initial status)."""
    agent.put_ok("/v1/agent/check/register",
                 {"Name": "h", "HTTP": f"http://127.0.0.1:{closed_port()}/", "Interval": "1s",
                  "Status": "passing"})
    c = agent.wait_check("h", "critical", timeout=6)
    assert c["Output"], "a failed check explains itself in Output"


def test_http_check_interval(agent, target):
    """Probes run every Interval (1s -> about 3 probes in 3.5 s)."""
    agent.put_ok("/v1/agent/check/register",
                 {"Name": "h", "HTTP": target.url(), "Interval": "1s"})
    agent.wait_check("h", "passing", timeout=6)
    n0 = target.count()
    time.sleep(3.5)
    n = target.count() - n0
    assert 2 <= n <= 5, f"{n} probes in 3.5 s with Interval 1s"


def test_check_deregistered_stops_probing(agent, target):
    """A deregistered check is no longer run."""
    agent.put_ok("/v1/agent/check/register", {"Name": "h", "HTTP": target.url(), "Interval": "1s"})
    agent.wait_check("h", "passing", timeout=6)
    agent.put_ok("/v1/agent/check/deregister/h")
    time.sleep(0.3)
    n0 = target.count()
    time.sleep(2.2)
    assert target.count() == n0


# ---------------------------------------------------------------- TCP checks


def test_tcp_check_listening_port_passing(agent, listener):
    """Connect succeeds -> passing, Output "TCP connect <addr>: Success"."""
    addr = f"127.0.0.1:{listener}"
    agent.register_service({"ID": "t1", "Name": "tcpsvc",
                            "Check": {"TCP": addr, "Interval": "1s", "Timeout": "1s"}})
    c = agent.wait_check("service:t1", "passing", timeout=6)
    assert c["Type"] == "tcp"
    assert c["Output"] == f"TCP connect {addr}: Success"


def test_tcp_check_closed_port_critical(agent):
    """Connect fails -> critical with the error text."""
    agent.put_ok("/v1/agent/check/register",
                 {"Name": "t", "TCP": f"127.0.0.1:{closed_port()}", "Interval": "1s",
                  "Status": "passing"})
    c = agent.wait_check("t", "critical", timeout=6)
    assert c["Output"]


def test_tcp_check_goes_critical_when_listener_closes(agent):
    """Passing while listening, critical once the port closes."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    port = s.getsockname()[1]
    try:
        agent.put_ok("/v1/agent/check/register",
                     {"Name": "t", "TCP": f"127.0.0.1:{port}", "Interval": "1s"})
        agent.wait_check("t", "passing", timeout=6)
    finally:
        s.close()
    agent.wait_check("t", "critical", timeout=5)


# ---------------------------------------------------------------- TTL checks


def test_ttl_check_lifecycle(agent):
    """Starts critical; pass -> passing; no pass within TTL -> critical "TTL expired"."""
    agent.register_service({"ID": "w1", "Name": "web", "Check": {"TTL": "1s"}})
    assert agent.check_status("service:w1") == "critical"
    agent.put_ok("/v1/agent/check/pass/service:w1?note=ok")
    assert agent.check_status("service:w1") == "passing"
    t0 = time.monotonic()
    c = agent.wait_check("service:w1", "critical", timeout=4)
    assert time.monotonic() - t0 >= 0.5, "TTL expired too early"
    assert c["Output"].startswith("TTL expired")
    agent.put_ok("/v1/agent/check/pass/service:w1")
    assert agent.check_status("service:w1") == "passing"


def test_ttl_initial_status(agent):
    """Status at registration sets the initial status."""
    agent.put_ok("/v1/agent/check/register", {"Name": "t", "TTL": "30s", "Status": "warning"})
    assert agent.check_status("t") == "warning"


# ---------------------------------------------------------------- DeregisterCriticalServiceAfter


def test_deregister_critical_service_after(agent):
    """A service whose check stays critical longer than the limit is deregistered."""
    agent.register_service({"ID": "doomed", "Name": "doomed",
                            "Check": {"TTL": "30s", "DeregisterCriticalServiceAfter": "1s"}})
    agent.register_service({"ID": "fine", "Name": "fine",
                            "Check": {"TTL": "30s", "Status": "passing",
                                      "DeregisterCriticalServiceAfter": "1s"}})
    svcs = agent.get_json("/v1/agent/services")
    assert "doomed" in svcs and "fine" in svcs

    def gone():
        return "doomed" not in agent.get_json("/v1/agent/services")

    wait_until(gone, 5.0, 0.2, "service 'doomed' to be deregistered")
    assert "service:doomed" not in agent.agent_checks()
    assert agent.get_json("/v1/catalog/service/doomed") == []
    assert "fine" in agent.get_json("/v1/agent/services"), "a passing service must stay"


def test_deregister_critical_snake_case_alias(agent):
    """Agent definitions accept snake_case aliases (deregister_critical_service_after)."""
    agent.register_service({"id": "doomed", "name": "doomed",
                            "check": {"ttl": "30s", "deregister_critical_service_after": "1s"}})
    wait_until(lambda: "doomed" not in agent.get_json("/v1/agent/services"), 5.0, 0.2,
               "service 'doomed' to be deregistered")


# ---------------------------------------------------------------- script checks


def test_script_check_refused_by_default(agent):
    """Args checks are refused unless enable_script_checks -> 400; nothing written."""
    r = agent.put("/v1/agent/check/register",
                  {"Name": "s", "Args": ["/bin/true"], "Interval": "1s"})
    assert_text_error(r, 400)
    r = agent.put("/v1/agent/service/register",
                  {"Name": "web", "Check": {"Args": ["/bin/true"], "Interval": "1s"}})
    assert_text_error(r, 400)
    assert "s" not in agent.agent_checks()
    assert "web" not in agent.get_json("/v1/agent/services")


def test_script_check_exit_codes(agent_factory, write_config):
    """With enable_script_checks: exit 0 passing, 1 warning, other critical."""
    cfg = write_config({"enable_script_checks": True})
    agent = agent_factory(config_files=[cfg])
    for cid, code in (("ok", 0), ("warn", 1), ("crit", 2)):
        agent.put_ok("/v1/agent/check/register",
                     {"Name": cid, "Args": ["/bin/sh", "-c", f"echo out-{cid}; exit {code}"],
                      "Interval": "1s"})
    for cid, status in (("ok", "passing"), ("warn", "warning"), ("crit", "critical")):
        # "crit" starts critical: wait for the output of a run, not the initial state.
        c = agent.wait_check(cid, status, timeout=6, output_contains=f"out-{cid}")
        assert c["Type"] == "script"


def test_script_check_runs_without_shell(agent_factory, write_config, tmp_path):
    """Args are executed directly: shell metacharacters reach the program verbatim."""
    cfg = write_config({"enable_script_checks": True})
    agent = agent_factory(config_files=[cfg])
    marker = tmp_path / "should-not-exist"
    agent.put_ok("/v1/agent/check/register",
                 {"Name": "echo", "Args": ["/bin/echo", "a;b", "$HOME", f"; touch {marker}"],
                  "Interval": "1s"})
    c = agent.wait_check("echo", "passing", timeout=6)
    assert f"a;b $HOME ; touch {marker}" in c["Output"]
    assert not marker.exists(), "the arguments went through a shell"


# ---------------------------------------------------------------- more knobs


def test_interval_below_one_second_raised(agent, target):
    """An Interval under 1 s is raised to 1 s."""
    agent.put_ok("/v1/agent/check/register",
                 {"Name": "h", "HTTP": target.url(), "Interval": "100ms"})
    agent.wait_check("h", "passing", timeout=6)
    n0 = target.count()
    time.sleep(2.5)
    n = target.count() - n0
    assert n <= 4, f"{n} probes in 2.5 s: Interval 100ms was not raised to 1s"


def test_http_check_host_header(agent, target):
    """A Host header in Header sets the virtual host."""
    agent.put_ok("/v1/agent/check/register",
                 {"Name": "h", "HTTP": target.url(), "Interval": "1s",
                  "Header": {"Host": ["svc.example"]}})
    agent.wait_check("h", "passing", timeout=6)
    assert target.requests[0][2].get("Host") == "svc.example"


def test_failures_before_critical(agent, target):
    """FailuresBeforeCritical=3: the status flips only after 3 consecutive failures."""
    agent.put_ok("/v1/agent/check/register",
                 {"Name": "h", "HTTP": target.url(), "Interval": "1s",
                  "FailuresBeforeCritical": 3})
    agent.wait_check("h", "passing", timeout=6)
    target.set(status=500)
    t0 = time.monotonic()
    agent.wait_check("h", "critical", timeout=8)
    assert time.monotonic() - t0 >= 1.5, "went critical before 3 consecutive failures"


def test_success_before_passing(agent, target):
    """SuccessBeforePassing=2: a critical check needs 2 consecutive successes."""
    target.set(status=500)
    agent.put_ok("/v1/agent/check/register",
                 {"Name": "h", "HTTP": target.url(), "Interval": "1s", "Status": "passing",
                  "SuccessBeforePassing": 2})
    agent.wait_check("h", "critical", timeout=6)
    n0 = target.count()
    target.set(status=200)
    agent.wait_check("h", "passing", timeout=8)
    assert target.count() - n0 >= 2, "passing after fewer than 2 successes"


def test_https_check_tls_skip_verify(agent, tmp_path):
    """TLS is verified unless TLSSkipVerify; a self-signed server passes only with it."""
    import http.server
    import ssl
    import subprocess
    import threading

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"],
                   check=True, capture_output=True, timeout=30)

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    th = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    th.start()
    try:
        url = f"https://127.0.0.1:{srv.server_address[1]}/"
        agent.put_ok("/v1/agent/check/register",
                     {"Name": "skip", "HTTP": url, "Interval": "1s", "TLSSkipVerify": True})
        agent.put_ok("/v1/agent/check/register",
                     {"Name": "verify", "HTTP": url, "Interval": "1s", "Status": "passing"})
        agent.wait_check("skip", "passing", timeout=6)
        agent.wait_check("verify", "critical", timeout=6)
    finally:
        srv.shutdown()
        srv.server_close()
