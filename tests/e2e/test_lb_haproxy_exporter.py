"""Prometheus's HAProxy exporter, a consumer of HAProxy's CSV we did not write, reads mesh lb's
`/stats;csv` as it reads HAProxy's: every row parses (it counts the rows it cannot), and the
servers, their states and the traffic come out as HAProxy's would."""

import shutil
import subprocess

import pytest

from helpers import HOST, ManagedProcess, free_port, request, wait_until
from lb_helpers import backends, lb_factory, spread  # noqa: F401 (fixture)

EXPORTER = "prometheus-haproxy-exporter"
pytestmark = pytest.mark.skipif(shutil.which(EXPORTER) is None,
                                reason=EXPORTER + " not installed")


class Exporter(ManagedProcess):
    def __init__(self, tmp_path, scrape_uri):
        self.port = free_port()
        self.uri = scrape_uri
        self.log_path = tmp_path / "exporter.log"
        self.start()

    def argv(self):
        return [EXPORTER, f"--web.listen-address={HOST}:{self.port}",
                f"--haproxy.scrape-uri={self.uri}"]

    def wait_ready(self, timeout=30):
        wait_until(self.metrics, timeout, interval=0.2, what="the exporter to answer")

    def metrics(self):
        """{(name, frozenset of label pairs): value} of one scrape, or None."""
        try:
            r = request(self.port, "GET", "/metrics", timeout=10)
        except OSError:
            return None
        if r.status != 200:
            return None
        out = {}
        for line in r.text.splitlines():
            if not line or line.startswith("#"):
                continue
            series, _, value = line.rpartition(" ")
            name, _, labels = series.partition("{")
            pairs = frozenset(tuple(p.split("=", 1)) for p in labels.rstrip("}").split(",") if p)
            out[(name, pairs)] = float(value)
        return out


def value(metrics, name, **labels):
    want = {(k, f'"{v}"') for k, v in labels.items()}
    found = [v for (n, pairs), v in metrics.items() if n == name and want <= pairs]
    assert len(found) == 1, (name, labels, [k for k in metrics if k[0] == name])
    return found[0]


def test_exporter_reads_the_stats_csv(lb_factory, backends, tmp_path):
    b1, b2 = backends(2)
    lb = lb_factory(["-server", b1.addr, "-server", b2.addr])
    exp = Exporter(tmp_path, f"http://admin:admin@{HOST}:{lb.stats_port}/stats;csv")
    try:
        counts = spread(lb.port, 10)
        assert sorted(counts.values()) == [5, 5], counts
        b2.set_health(500)

        def second_down():
            m = exp.metrics()
            return m if m and value(m, "haproxy_server_up", backend="web",
                                    server="srv2") == 0 else None
        m = wait_until(second_down, 30, interval=0.5, what="the exporter to see the server down")
        assert value(m, "haproxy_up") == 1
        assert value(m, "haproxy_exporter_csv_parse_failures_total") == 0
        assert value(m, "haproxy_server_up", backend="web", server="srv1") == 1
        assert value(m, "haproxy_backend_up", backend="web") == 1
        for server in ("srv1", "srv2"):  # named in -server order
            assert value(m, "haproxy_server_http_responses_total", backend="web", server=server,
                         code="2xx") == 5
        assert value(m, "haproxy_frontend_http_requests_total", frontend="http-in") >= 10
        assert value(m, "haproxy_backend_current_server", backend="web") == 1
    finally:
        exp.stop()
