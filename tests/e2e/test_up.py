"""`make up` / `make down` (scripts/up, scripts/down): the local cluster of the README comes up
on loopback, the load balancer spreads traffic over web1 and web2, and down leaves no process
behind. Runs the scripts with the binaries under test and free ports."""
import json
import os
import subprocess
import urllib.request
from pathlib import Path

from helpers import free_port, mesh_bin

REPO = Path(__file__).resolve().parents[2]


def test_up_serves_through_both_web_nodes_and_down_stops_everything(tmp_path):
    run = tmp_path / "run"
    env = dict(os.environ, MESH_HTTP_PORT=str(free_port()), MESH_LB_PORT=str(free_port()),
               MESH_STATS_PORT=str(free_port()), MESH_WEB_AGENT_PORT=str(free_port()),
               MESH_WEBAPP_PORT=str(free_port()))
    # The web nodes' agents and webapps take consecutive ports from their bases.
    build = os.path.dirname(mesh_bin())
    try:
        up = subprocess.run([str(REPO / "scripts" / "up"), build, str(run)], env=env,
                            capture_output=True, text=True, timeout=60)
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"http://127.0.0.1:{env['MESH_LB_PORT']}/" in up.stdout
        nodes = set()
        for _ in range(10):
            with urllib.request.urlopen(f"http://127.0.0.1:{env['MESH_LB_PORT']}/",
                                        timeout=5) as r:
                assert r.status == 200
                nodes.add(json.loads(r.read())["node"])
        assert nodes == {"web1", "web2"}
        pids = [int(p.read_text()) for p in run.glob("*/*.pid")]
        assert len(pids) == 6
    finally:
        down = subprocess.run([str(REPO / "scripts" / "down"), str(run)], capture_output=True,
                              text=True, timeout=60)
    assert down.returncode == 0
    assert "6 process(es) stopped" in down.stdout
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}"), f"process {pid} still running"
    for log in run.glob("*/*.log"):
        text = log.read_text(errors="replace")
        assert "ERROR: AddressSanitizer" not in text and "runtime error:" not in text, log
