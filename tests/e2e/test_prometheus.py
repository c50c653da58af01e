"""Prometheus scrapes meshkit's own metrics endpoints (the agent's
/v1/agent/metrics?format=prometheus and mesh lb's /metrics): its parser, not ours, reads their
text exposition format. (Debian's Prometheus is built without consul_sd_configs, so its Consul
discovery cannot be run here.)"""

import json
import shutil
import urllib.parse

import pytest

from helpers import HOST, ManagedProcess, free_port, request, wait_until
from lb_helpers import backends, lb_factory  # noqa: F401 (fixture)

pytestmark = pytest.mark.skipif(shutil.which("prometheus") is None,
                                reason="prometheus not installed")


class Prometheus(ManagedProcess):
    """A Prometheus server on a free 127.0.0.1 port, its data in tmp_path, stopped by PID."""

    def __init__(self, tmp_path, config):
        self.port = free_port()
        self.cfg = tmp_path / "prometheus.yml"
        self.cfg.write_text(config)
        self.tsdb = tmp_path / "tsdb"
        self.log_path = tmp_path / "prometheus.log"
        self.start()

    def argv(self):
        return ["prometheus", f"--config.file={self.cfg}",
                f"--web.listen-address={HOST}:{self.port}", f"--storage.tsdb.path={self.tsdb}",
                "--log.level=debug"]

    def wait_ready(self, timeout=60):
        wait_until(self.ready, timeout, interval=0.2, what="prometheus to start")

    def ready(self):
        try:
            return request(self.port, "GET", "/-/ready", timeout=2).status == 200
        except OSError:
            return False

    def api(self, path):
        r = request(self.port, "GET", "/api/v1/" + path, timeout=5)
        assert r.status == 200, r.text
        body = json.loads(r.body)
        assert body["status"] == "success", body
        return body["data"]

    def targets(self):
        return self.api("targets?state=active")["activeTargets"]

    def query(self, expr):
        return self.api("query?query=" + urllib.parse.quote(expr))["result"]


def config(agent_port, lb_stats_port):
    return f"""global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: agent
    metrics_path: /v1/agent/metrics
    params: {{format: [prometheus]}}
    static_configs: [{{targets: ["{HOST}:{agent_port}"]}}]
  - job_name: lb
    basic_auth: {{username: admin, password: admin}}
    static_configs: [{{targets: ["{HOST}:{lb_stats_port}"]}}]
"""


def test_scrapes_the_agent_and_the_lb(agent, lb_factory, backends, tmp_path):
    """Both endpoints are scraped up with no error (one line Prometheus cannot parse fails
    the whole scrape), and their series can be queried with their labels."""
    b1, = backends(1)
    lb = lb_factory(["-server", b1.addr])
    prom = Prometheus(tmp_path, config(agent.port, lb.stats_port))
    try:
        def both_up():
            ts = {t["labels"]["job"]: t for t in prom.targets()}
            return ts if {j: t["health"] for j, t in ts.items()} == {"agent": "up", "lb": "up"} \
                else None
        ts = wait_until(both_up, 60, interval=0.5, what="both endpoints scraped up")
        assert ts["agent"]["lastError"] == "" and ts["lb"]["lastError"] == "", ts
        for query in ('consul_api_http_requests{job="agent",method="GET"} > 0',
                      'consul_rpc_queries_blocking{job="agent"}',
                      'consul_state_nodes{job="agent"} == 1'):
            wait_until(lambda: prom.query(query), 30, interval=0.5, what=query)
        assert prom.query('up{job="lb"} == 1')
        series = prom.api('series?match[]={job="lb"}')
        assert len({s["__name__"] for s in series}) > 5, series
    finally:
        prom.stop()
