"""`mesh lb`'s control plane end to end: the registry watch against a real `mesh agent`
(instances, names, weights, tags, identity across changes, outages), SIGHUP reload, config
errors, the PID file and the exit status of a drain.

Traffic, balancing and stats columns in depth are test_lb.py's and test_lb_stats.py's.
"""

import json
import signal
import subprocess
import time

from helpers import wait_until
from lb_helpers import HOST, backends, lb_factory, spread  # noqa: F401 (fixtures)


def register(agent, sid, backend, tags=(), weight=None, passing=True):
    svc = {"ID": sid, "Name": "web", "Address": HOST, "Port": backend.port, "Tags": list(tags),
           "Check": {"TTL": "60s"}}
    if weight is not None:
        svc["Weights"] = {"Passing": weight, "Warning": 1}
    agent.register_service(svc)
    if passing:
        agent.put_ok(f"/v1/agent/check/pass/service:{sid}")


def registry_args(agent, *extra):
    return ["-service", "web", "-registry-addr", f"{HOST}:{agent.port}"] + list(extra)


def rows_by_name(lb):
    return {r["svname"]: r for r in lb.server_rows()}


def test_instances_named_weighted_and_filtered(agent, backends, lb_factory):
    b1, b2, b3 = backends(3)
    register(agent, "web-1", b1, weight=5)
    register(agent, "web-2", b2)
    register(agent, "web-3", b3, tags=["canary"])
    lb = lb_factory(registry_args(agent))
    canary = lb_factory(registry_args(agent, "-tag", "canary"))

    want = {f"node1_{b.port}" for b in (b1, b2, b3)}
    wait_until(lambda: set(rows_by_name(lb)) == want, 5, what="three servers in the CSV")
    rows = rows_by_name(lb)
    assert rows[f"node1_{b1.port}"]["weight"] == "5"
    assert rows[f"node1_{b2.port}"]["weight"] == "1"
    assert rows[f"node1_{b1.port}"]["pxname"] == "web"
    assert rows[f"node1_{b1.port}"]["addr"] == f"{HOST}:{b1.port}"

    wait_until(lambda: set(rows_by_name(canary)) == {f"node1_{b3.port}"}, 5,
               what="only the canary instance")
    assert spread(canary.port, 10) == {str(b3.port): 10}

    # critical: gone from ?passing, gone from the set
    agent.put_ok("/v1/agent/check/fail/service:web-2")
    wait_until(lambda: f"node1_{b2.port}" not in rows_by_name(lb), 5, what="web-2 removed")
    assert set(spread(lb.port, 20)) == {str(b1.port), str(b3.port)}


def test_counters_survive_set_changes(agent, backends, lb_factory):
    b1, b2 = backends(2)
    register(agent, "web-1", b1)
    lb = lb_factory(registry_args(agent))
    name = f"node1_{b1.port}"
    wait_until(lambda: name in rows_by_name(lb), 5, what="web-1 listed")
    spread(lb.port, 20)
    before = int(rows_by_name(lb)[name]["stot"])
    assert before >= 20

    register(agent, "web-2", b2)
    wait_until(lambda: len(rows_by_name(lb)) == 2, 5, what="web-2 listed")
    # the same server object: its counters were not reset by the new set
    assert int(rows_by_name(lb)[name]["stot"]) >= before


def test_registry_outage_keeps_the_last_set(agent_factory, backends, lb_factory):
    agent = agent_factory()
    (b1,) = backends(1)
    register(agent, "web-1", b1)
    lb = lb_factory(registry_args(agent))
    wait_until(lambda: len(rows_by_name(lb)) == 1, 5, what="web-1 listed")

    agent.stop()
    time.sleep(1.0)  # several failed fetches with backoff
    assert spread(lb.port, 10) == {str(b1.port): 10}
    outages = [ln for ln in lb.log_text().splitlines() if "keeping the last 1 server" in ln]
    assert len(outages) == 1, outages  # logged once per outage

    agent.start()  # same port, empty in-memory catalog
    register(agent, "web-1", b1)
    wait_until(lambda: "reachable again" in lb.log_text(), 10, what="the registry back")
    # Its first answer may predate the registration (an empty set, applied as given): wait
    # for web-1 to be listed and UP again rather than racing the next blocking query.
    wait_until(lambda: [r["status"] for r in lb.server_rows()] == ["UP"], 10,
               what="web-1 served again")
    assert spread(lb.port, 10) == {str(b1.port): 10}


def test_sighup_reloads_servers_and_keeps_a_bad_file_out(backends, lb_factory, tmp_path):
    b1, b2 = backends(2)
    conf = tmp_path / "lb.json"
    conf.write_text(json.dumps({"servers": [b1.addr]}))
    pid_file = tmp_path / "lb.pid"
    lb = lb_factory(["-config", str(conf), "-pid-file", str(pid_file)])
    assert pid_file.read_text().strip() == str(lb.proc.pid)
    assert set(rows_by_name(lb)) == {"srv1"}

    conf.write_text(json.dumps({"servers": [b1.addr, f"{b2.addr},3"], "retries": 1}))
    lb.signal(signal.SIGHUP)
    wait_until(lambda: set(rows_by_name(lb)) == {"srv1", "srv2"}, 5, what="srv2 after SIGHUP")
    assert rows_by_name(lb)["srv2"]["weight"] == "3"
    assert "reload: retries changed; it takes effect after a restart" in lb.log_text()
    assert set(spread(lb.port, 40)) == {str(b1.port), str(b2.port)}

    conf.write_text('{"servers": [\n  "nonsense"\n]}')
    lb.signal(signal.SIGHUP)
    wait_until(lambda: "keeping the running configuration" in lb.log_text(), 5,
               what="the bad reload logged")
    assert f"{conf}:2: server \"nonsense\"" in lb.log_text()
    assert lb.running() and set(rows_by_name(lb)) == {"srv1", "srv2"}

    assert lb.stop() == 0
    assert not pid_file.exists()


def test_config_errors_exit_1_with_file_and_line(mesh, tmp_path):
    conf = tmp_path / "bad.json"
    conf.write_text('{\n  "service": "web",\n  "check_inter": 5000\n,  "balance": "hash"\n}\n')
    r = subprocess.run([mesh, "lb", "-config", str(conf)], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 1
    assert r.stderr.strip() == (f"mesh lb: {conf}:4: balance must be roundrobin, leastconn or "
                                f"random, not \"hash\""), r.stderr
    r = subprocess.run([mesh, "lb", "-port", "80"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 1
    assert r.stderr.startswith("mesh lb: no servers"), r.stderr
    r = subprocess.run([mesh, "lb", "-server", "127.0.0.1:1", "-io", "kqueue"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1
    assert r.stderr.strip() == 'mesh lb: io must be auto, epoll or uring, not "kqueue"', r.stderr
    r = subprocess.run([mesh, "lb", "-help"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and "-check-rise <int>" in r.stdout, r.stdout[:300]
