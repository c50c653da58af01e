"""`mesh up` / `mesh down` and the operator commands (issue 5): the local cluster comes up
healthy on free loopback ports, spreads traffic over web1 and web2, and survives the operator's
moves: stop-service and scale-up/down under load with no failed request, both services stopped
giving the 503 page, kill-node detected and routed around, a webapp killed with -9 restarted by
its supervisor. `mesh down` leaves no process. One cluster serves the module, in order."""
import json
import os
import pty
import re
import signal
import subprocess
import time
import urllib.parse
from pathlib import Path

from cluster_helpers import cluster, gone, under_load  # noqa: F401 (cluster: fixture)
from helpers import mesh_bin, request, wait_until
from test_dns import udp


def test_up_comes_up_healthy_and_prints_urls(cluster):
    out = cluster.up_result.stdout
    assert f"http://127.0.0.1:{cluster.ports['lb']}/" in out
    assert f"http://127.0.0.1:{cluster.ports['stats']}/stats" in out
    assert f"http://127.0.0.1:{cluster.ports['http']}/" in out
    assert "admin / admin" in out
    checks = cluster.json("health")
    assert checks and all(c["status"] == "passing" for c in checks), checks
    assert {c["node"] for c in checks} == {"loadbalancer", "web1", "web2"}
    assert len(cluster.passing("web1")) == 1 and len(cluster.passing("web2")) == 1
    assert cluster.mesh("health").returncode == 0


def test_up_twice_says_so(cluster):
    p = cluster.up()
    assert "already up" in p.stdout


def test_dns_moves_with_the_port_offset(cluster):
    """The server answers DNS on 8600 + the offset (two clusters no longer collide on 8600),
    each web node's agent on the next port."""
    assert udp(cluster.ports["dns"], "web.service.consul", 1).data(1) == ["127.0.0.1"]
    srv = udp(cluster.ports["dns"], "web.service.consul", 33)
    assert len(srv.data(33)) == 2, srv.answer  # one per web node
    assert udp(cluster.ports["dns"] + 1, "web.service.consul", 1).data(1)
    state = json.loads(Path(cluster.run_dir, "cluster.json").read_text())
    assert [n["dns_port"] for n in state["nodes"]] == [cluster.ports["dns"] + i for i in range(3)]


def test_a_second_cluster_cannot_hurt_the_first(cluster, tmp_path):
    """A second `up` on the same ports fails before starting anything, naming the port and its
    holder; a `down` in another run directory whose state names the very same nodes and ports
    signals nothing of this cluster (no process is ever found by its command line)."""
    before = cluster.pids()
    other = tmp_path / "other"
    p = subprocess.run([mesh_bin(), "up", "-run-dir", str(other), "-port-offset",
                        str(cluster.ports["offset"])], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1, p.stdout + p.stderr
    assert f"port {cluster.ports['http']} (loadbalancer's agent HTTP API) is in use by pid" \
        in p.stderr, p.stderr
    assert "meshkit is up" not in p.stdout and not (other / "cluster.json").exists()
    state = json.loads(Path(cluster.run_dir, "cluster.json").read_text())
    state["run_dir"] = str(other)
    other.mkdir()
    (other / "cluster.json").write_text(json.dumps(state))
    down = json.loads(subprocess.run([mesh_bin(), "down", "-run-dir", str(other), "-json"],
                                     capture_output=True, text=True, timeout=120).stdout)
    assert down["stopped"] == 0, down
    assert cluster.pids() == before and not any(gone(pid) for pid in before)
    assert cluster.json("test-lb", "-n", "4")["failed"] == 0


def test_requests_spread_evenly(cluster):
    res = cluster.json("test-lb", "-n", "40")
    assert res["failed"] == 0, res
    assert set(res["served_by"]) == {"web1/0", "web2/0"}, res
    assert all(15 <= n <= 25 for n in res["served_by"].values()), res
    table = cluster.mesh("test-lb", "-n", "4").stdout
    assert "web1/0" in table and "web2/0" in table and "SHARE" in table


def test_the_original_command_names_still_work(cluster):
    """cluster_utils.sh's names answer as the commands they became, listed once in mesh help."""
    names = {n["node"] for n in cluster.json("consul-status")}
    assert names == {n["node"] for n in cluster.json("nodes")} == {"loadbalancer", "web1", "web2"}
    assert any(r["server"] == "BACKEND" for r in cluster.json("haproxy-status"))
    assert cluster.json("test-loadbalancer", "-n", "4")["failed"] == 0
    assert "SIGHUP" in cluster.mesh("reload-haproxy").stdout
    p = subprocess.run([mesh_bin(), "artillery-basic", "-run-dir", cluster.run_dir, "--", "-e",
                        "quick", "--quiet", "--output", os.path.join(cluster.run_dir, "basic.json")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    report = json.loads(Path(cluster.run_dir, "basic.json").read_text())
    assert report["meshkit"]["target"] == f"http://127.0.0.1:{cluster.ports['lb']}", report["meshkit"]
    assert report["aggregate"]["counters"]["http.codes.200"] > 0
    p = cluster.mesh("test-load", "earthquake", check=False)
    assert p.returncode == 1 and 'unknown scenario "earthquake"' in p.stderr
    helptext = subprocess.run([mesh_bin(), "help"], capture_output=True, text=True).stdout
    for old, new in (("consul-status", "nodes"), ("haproxy-status", "lb-status"),
                     ("reload-haproxy", "reload-lb"), ("test-loadbalancer", "test-lb"),
                     ("artillery-basic", "test-load basic"),
                     ("artillery-stress", "test-load stress"),
                     ("artillery-failover", "test-load failover")):
        assert helptext.count(old) == 1 and f"{old} " in helptext, old
        assert f"= mesh {new}\n" in helptext, new


def test_status_and_tables(cluster):
    st = cluster.json("status")
    assert {n["node"]: n["status"] for n in st["nodes"]} == {
        "loadbalancer": "alive", "web1": "alive", "web2": "alive"}
    assert {a["node"] for a in st["apps"]} == {"web1", "web2"}
    assert all(a["status"] == "online" for a in st["apps"]), st["apps"]
    servers = [r for r in st["lb"] if r["server"] != "BACKEND"]
    assert len(servers) == 2 and all(r["status"] == "UP" for r in servers), st["lb"]
    text = cluster.mesh("status").stdout
    for word in ("Nodes", "Services", "Supervised apps", "Load balancer", "web1", "web2"):
        assert word in text
    assert "\033[" not in text  # no colour when stdout is not a terminal
    nodes = cluster.mesh("nodes").stdout.splitlines()
    assert nodes[0].split() == ["NODE", "ADDRESS", "AGENT", "CHECKS"]
    # Aligned: every row's second column starts where the header's does.
    col = nodes[0].index("ADDRESS")
    assert all(line[col - 2:col] == "  " and line[col] != " " for line in nodes[1:]), nodes
    lb = cluster.mesh("lb-status").stdout
    assert "BACKEND" in lb and "UP" in lb
    assert cluster.mesh("services").stdout.startswith("SERVICE")
    assert "mesh lb" in cluster.mesh("reload-lb").stdout
    assert cluster.get().status == 200
    # Memory as mesh pm ls prints it; JSON ends with one newline, not a blank line.
    assert re.search(r"  \d+\.\d MB\n", text.split("Supervised apps")[1]), text
    for cmd in ("status", "nodes", "services", "health", "lb-status"):
        out = cluster.mesh(cmd, "-json").stdout
        assert out.endswith("\n") and not out.endswith("\n\n"), (cmd, out[-20:])


def test_health_shows_multi_line_output_whole(cluster):
    agent = cluster.ports["agents"]  # web1's agent
    check = {"ID": "multi", "Name": "multi", "TTL": "1h"}
    assert request(agent, "PUT", "/v1/agent/check/register", check).status == 200
    try:
        note = urllib.parse.quote("first line\nsecond line\nthird line")
        assert request(agent, "PUT", f"/v1/agent/check/pass/multi?note={note}").status == 200
        wait_until(lambda: any(c["check"] == "multi" and c["status"] == "passing"
                               for c in cluster.json("health")), 30, what="the check to sync")
        lines = cluster.mesh("health").stdout.splitlines()
        first = next(i for i, line in enumerate(lines) if line.endswith("first line"))
        col = lines[first].index("first line")
        assert lines[first + 1] == " " * col + "second line", lines
        assert lines[first + 2] == " " * col + "third line", lines
    finally:
        request(agent, "PUT", "/v1/agent/check/deregister/multi")


def test_exec_runs_a_command_as_if_on_the_node(cluster):
    """mesh exec NODE -- CMD (the original's vagrant ssh): the node's agent in the environment,
    CMD's exit status passed through."""
    def run(*args):
        return subprocess.run([mesh_bin(), "exec", "-run-dir", cluster.run_dir, *args],
                              capture_output=True, text=True, timeout=60)
    ask = ("import json, os, urllib.request; print(os.environ['NODE_NAME'], json.load("
           "urllib.request.urlopen('http://' + os.environ['CONSUL_HTTP_ADDR'] + "
           "'/v1/agent/self'))['Config']['NodeName'])")
    for i, node in enumerate(("web1", "web2")):
        p = run(node, "--", "/usr/bin/python3", "-c", ask)
        assert p.returncode == 0 and p.stdout == f"{node} {node}\n", p
        p = run(node, "sh", "-c", "echo $MESH_HTTP_ADDR")  # no --: CMD follows NODE
        assert p.stdout == f"127.0.0.1:{cluster.ports['agents'] + i}\n", p
    # The mesh CLI inside talks to that node's agent: its own services are web2's.
    p = run("web2", "--", mesh_bin(), "kv", "put", "from-exec", "web2")
    assert p.returncode == 0, p
    assert run("loadbalancer", "--", mesh_bin(), "kv", "get", "from-exec").stdout == "web2\n"
    assert run("web1", "--", "sh", "-c", "exit 7").returncode == 7
    p = run("web1", "--", "/nonexistent/cmd")
    assert p.returncode == 127 and "/nonexistent/cmd: No such file or directory" in p.stderr, p
    p = run("web9", "--", "true")
    assert p.returncode == 1 and 'no node "web9"' in p.stderr, p
    p = run("web1")
    assert p.returncode == 1 and "give the command" in p.stderr, p


def test_stop_service_under_load_moves_traffic_without_failures(cluster):
    t0 = time.monotonic()
    results, errors = under_load(cluster, lambda: cluster.mesh("stop-service", "web1"))
    assert not errors, errors[:5]
    assert all(r[1] == 200 for r in results), [r for r in results if r[1] != 200][:5]
    assert any(r[2] == "web1/0" for r in results if r[0] > t0)  # web1 served before the stop
    assert all(cluster.get().header("X-Served-By") == "web2/0" for _ in range(6))


def test_both_stopped_gives_503_and_start_recovers(cluster):
    cluster.mesh("stop-service", "web2")
    r = wait_until(lambda: (lambda r: r if r.status == 503 else None)(cluster.get()), 15,
                   what="the 503 page")
    assert "text/html" in r.content_type
    cluster.mesh("start-service", "web1")
    cluster.mesh("start-service", "web2")
    res = wait_until(lambda: (lambda r: r if set(r["served_by"]) == {"web1/0", "web2/0"} else
                              None)(cluster.json("test-lb", "-n", "10")), 20,
                     what="traffic to web1 and web2 again")
    assert res["failed"] == 0


def test_scale_up_and_down_under_load_without_failures(cluster):
    results, errors = under_load(cluster, lambda: cluster.mesh("scale-up", "web1"))
    assert not errors, errors[:5]
    assert all(r[1] == 200 for r in results), [r for r in results if r[1] != 200][:5]
    assert len(cluster.passing("web1")) == 2
    assert len(cluster.apps("web1")) == 2
    seen = wait_until(lambda: (lambda s: s if "web1/1" in s else None)(
        cluster.json("test-lb", "-n", "12")["served_by"]), 15, what="web1/1 taking traffic")
    assert set(seen) == {"web1/0", "web1/1", "web2/0"}, seen

    results, errors = under_load(cluster, lambda: cluster.mesh("scale-down", "web1"))
    assert not errors, errors[:5]
    assert all(r[1] == 200 for r in results), [r for r in results if r[1] != 200][:5]
    assert len(cluster.passing("web1")) == 1
    p = cluster.mesh("scale-down", "web1", check=False)
    assert p.returncode == 1 and "stop-service" in p.stderr


def test_reload_service_under_load_replaces_the_webapp_without_failures(cluster):
    """reload-service: web1's supervisor starts a new webapp beside the old one, which hands it
    the port and the registration, while the load balancer keeps answering every request."""
    old = cluster.apps("web1")[0]
    t0 = time.monotonic()
    reads = []  # web1's passing instances in the registry, read while the reload runs

    def reload_and_watch():
        p = subprocess.Popen([mesh_bin(), "reload-service", "web1", "-run-dir", cluster.run_dir],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            for _ in range(2000):
                reads.append(len(cluster.passing("web1")))
                if p.poll() is not None:
                    break
            out, err = p.communicate(timeout=120)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        assert p.returncode == 0, out + err

    results, errors = under_load(cluster, reload_and_watch)
    assert not errors, errors[:5]
    assert all(r[1] == 200 for r in results), [r for r in results if r[1] != 200][:5]
    app = cluster.apps("web1")[0]
    assert app["pid"] != old["pid"] and app["status"] == "online" and gone(old["pid"]), app
    # One new process (no crash on a taken port), and web1 registered and passing throughout.
    assert app["restarts"] == old["restarts"] + 1, app
    assert reads and all(n == 1 for n in reads), reads
    # web1 stayed in the rotation: it served after the reload had begun.
    assert any(r[2] == "web1/0" for r in results if r[0] > t0)
    res = wait_until(lambda: (lambda r: r if set(r["served_by"]) == {"web1/0", "web2/0"} else
                              None)(cluster.json("test-lb", "-n", "10")), 20,
                     what="web1 and web2 in rotation")
    assert res["failed"] == 0


def test_supervisor_restarts_a_webapp_killed_with_9(cluster):
    old = cluster.apps("web2")[0]["pid"]
    os.kill(old, signal.SIGKILL)
    wait_until(lambda: any(a["pid"] not in (old, 0, None) and a["status"] == "online"
                           for a in cluster.apps("web2")), 20, what="web2's webapp restarted")
    wait_until(lambda: len(cluster.passing("web2")) == 1, 20, what="web2 passing again")
    assert cluster.apps("web2")[0]["restarts"] >= 1


def test_kill_node_is_detected_and_routed_around(cluster):
    cluster.mesh("kill-node", "web1")  # returns once the server marked it failed
    nodes = {n["node"]: n["status"] for n in cluster.json("nodes")}
    assert nodes["web1"] == "failed", nodes
    assert cluster.passing("web1") == []
    res = wait_until(lambda: (lambda r: r if set(r["served_by"]) == {"web2/0"} else None)(
        cluster.json("test-lb", "-n", "10")), 15, what="traffic only to web2")
    assert res["failed"] == 0
    p = cluster.mesh("kill-node", "web1", check=False)
    assert p.returncode == 1 and "not running" in p.stderr
    # The supervisor commands say the node is down instead of starting an empty supervisor.
    for cmd in ("stop-service", "start-service", "scale-up"):
        p = cluster.mesh(cmd, "web1", check=False)
        assert p.returncode == 1 and "node web1 is down" in p.stderr, (cmd, p.stderr)
    pm = subprocess.run([mesh_bin(), "pm", "-home", os.path.join(cluster.run_dir, "web1", "pm"),
                         "ping"], capture_output=True, text=True, timeout=30)
    assert pm.returncode == 1, "a supervisor was started on the killed node"
    cluster.mesh("revive-node", "web1")
    assert len(cluster.passing("web1")) == 1
    wait_until(lambda: (lambda r: r if set(r["served_by"]) == {"web1/0", "web2/0"} else None)(
        cluster.json("test-lb", "-n", "10")), 20, what="web1 back in rotation")


def test_bad_input(cluster):
    p = cluster.mesh("stop-service", "web9", check=False)
    assert p.returncode == 1 and "no node \"web9\"" in p.stderr
    p = cluster.mesh("scale-up", "loadbalancer", check=False)
    assert p.returncode == 1 and "not a web node" in p.stderr
    p = cluster.mesh("test-lb", "-n", "0", check=False)
    assert p.returncode == 1
    p = subprocess.run([mesh_bin(), "status", "-run-dir", cluster.run_dir + "-nothing"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "mesh up" in p.stderr
    p = subprocess.run([mesh_bin(), "up", "-nodes", "web1,web1", "-run-dir",
                        cluster.run_dir + "-bad"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "given twice" in p.stderr


def on_terminal(args, env):
    """Runs mesh with stdout on a pseudo-terminal; returns what it printed."""
    master, slave = pty.openpty()
    try:
        p = subprocess.run([mesh_bin(), *args], stdout=slave, stderr=subprocess.PIPE, env=env,
                           timeout=30)
        assert p.returncode == 0, p.stderr
        os.close(slave)
        slave = -1
        out = b""
        for _ in range(1000):
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the terminal's other side is closed and drained
                break
            if not chunk:
                break
            out += chunk
        return out.decode(errors="replace")
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)


def test_colour_only_on_a_terminal_and_help(cluster):
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    out = on_terminal(["nodes", "-run-dir", cluster.run_dir], env)
    assert "\033[32malive\033[0m" in out, out
    out = on_terminal(["nodes", "-run-dir", cluster.run_dir], dict(env, NO_COLOR="1"))
    assert "\033[" not in out and "alive" in out
    helptext = subprocess.run([mesh_bin(), "help"], capture_output=True, text=True).stdout
    for cmd in ("up", "down", "cleanup", "status", "services", "nodes", "health", "lb-status",
                "stop-service", "start-service", "reload-service", "scale-up", "scale-down",
                "kill-node",
                "revive-node", "reload-lb", "test-lb"):
        assert f"\n    {cmd} " in helptext, cmd
    for cmd in ("up", "status", "scale-up", "test-lb"):
        p = subprocess.run([mesh_bin(), cmd, "-help"], capture_output=True, text=True)
        assert p.returncode == 0 and p.stdout.startswith(f"Usage: mesh {cmd}"), p.stdout


def test_down_stops_everything(cluster):
    pids = cluster.pids()
    assert len(pids) == 6, pids  # 3 agents, the lb, the 2 webapps
    p = cluster.mesh("down")
    assert "process(es) stopped" in p.stdout
    for pid in pids:
        assert gone(pid), f"process {pid} still running"
    left = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert cluster.run_dir not in left
    # The state file is still there: the commands say the cluster is down, exit 1, start nothing.
    for args in (("status",), ("status", "-json"), ("services",), ("health",), ("test-lb",),
                 ("stop-service", "web1"), ("reload-lb",)):
        p = cluster.mesh(*args, check=False)
        assert p.returncode == 1 and "is down" in p.stderr and "mesh up" in p.stderr, (args, p)
    assert not os.path.exists(os.path.join(cluster.run_dir, "web1", "pm", "pm.sock"))
    assert "not up" in cluster.mesh("down").stdout
    again = cluster.json("down")
    assert again["was_up"] is False and again["stopped"] == 0, again
    assert cluster.json("cleanup")["state_removed"] is True
    assert not os.path.exists(os.path.join(cluster.run_dir, "cluster.json"))
