"""An unlucky operator: while `mesh load` sends a scenario through the load balancer, parts of
a `mesh up` cluster die by kill -9 (the lb, a web node's agent, a webapp, a web node's
supervisor). `mesh status` says what is down, the supervisor brings back the webapp it
supervises, and `mesh down` stops everything left, checked PID by PID."""
import os
import signal
import subprocess

from cluster_helpers import Cluster, gone
from helpers import mesh_bin, wait_until

SCENARIO = """config:
  target: "http://127.0.0.1:{port}"
  phases:
    - duration: 5
      arrivalRate: 5
  http:
    timeout: 2
scenarios:
  - flow:
      - get:
          url: "/"
"""


def pidfile(run, path):
    return int((run / path).read_text().split()[0])


def test_kill_9_under_load_then_status_and_down(tmp_path):
    run = tmp_path / "run"
    c = Cluster(run)
    load = None
    try:
        c.up()
        web1_app = c.apps("web1")[0]["pid"]
        web2_app = c.apps("web2")[0]["pid"]
        before = c.pids() | {web2_app}
        scenario = tmp_path / "s.yml"
        scenario.write_text(SCENARIO.format(port=c.ports["lb"]))
        load = subprocess.Popen([mesh_bin(), "load", "run", str(scenario)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: c.get("/").status == 200, 10, what="the lb to answer")
        for pid in (pidfile(run, "web2/pm/pm.pid"), web1_app,
                    pidfile(run, "web1/agent.pid"), pidfile(run, "loadbalancer/lb.pid")):
            os.kill(pid, signal.SIGKILL)

        # web1's supervisor restarts its webapp (a new PID, online).
        def restarted():
            apps = c.apps("web1")
            return apps and apps[0]["pid"] != web1_app and apps[0]["status"] == "online" and apps
        new_app = wait_until(restarted, 20, what="web1's webapp restarted")[0]["pid"]
        # The registry sees web1's agent fail.
        wait_until(lambda: any(n["node"] == "web1" and n["status"] == "failed"
                               for n in c.json("status")["nodes"]), 20, what="web1 failed")
        status = c.json("status")
        assert status["lb"] is None
        assert "connection refused" in status["unavailable"]["lb"]
        assert {"node": "web2", "name": "-", "status": "supervisor down"} in status["apps"]
        text = c.mesh("status").stdout
        assert "unavailable" in text and "supervisor down" in text and "failed" in text
        # web2's webapp outlived its supervisor and still serves.
        assert not gone(web2_app)
        assert load.wait(timeout=60) is not None
    finally:
        if load and load.poll() is None:
            load.kill()
            load.wait()
        down = subprocess.run([mesh_bin(), "down", "-run-dir", str(run)], capture_output=True,
                              text=True, timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr
    for pid in before | {new_app}:
        assert wait_until(lambda: gone(pid), 10, what=f"process {pid} to be gone")
