"""Listen backlogs follow net.core.somaxconn (issue 18 item 5): a burst of new connections
waits in the accept queue of the webapp, the agent and the lb instead of timing out.

For a listening socket, `ss -ltn` shows the backlog it got in the Send-Q column."""

import shutil
import subprocess

import pytest

from lb_helpers import backends, lb_factory  # noqa: F401
from test_webapp import Webapp


def somaxconn():
    with open("/proc/sys/net/core/somaxconn") as f:
        return int(f.read())


def backlog(port):
    """The backlog of the TCP listener on port (ss's Send-Q for a listening socket)."""
    out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True,
                         timeout=10, check=True).stdout
    rows = [line.split() for line in out.splitlines() if line.strip()]
    assert rows, f"no listener on port {port}"
    return {int(r[2]) for r in rows}  # every worker's socket of the lb


@pytest.mark.skipif(shutil.which("ss") is None, reason="ss (iproute2) not installed")
def test_listeners_get_somaxconn_as_backlog(agent, lb_factory, backends, tmp_path):
    want = somaxconn()
    assert backlog(agent.port) == {want}, "agent HTTP API"
    web = Webapp(tmp_path, args=["-no-register"])
    try:
        assert backlog(web.port) == {want}, "webapp"
    finally:
        web.stop()
    lb = lb_factory(["-server", backends(1)[0].addr, "-check=false"])
    assert backlog(lb.port) == {want}, "lb frontend (every worker)"
    assert backlog(lb.stats_port) == {want}, "lb stats port"
