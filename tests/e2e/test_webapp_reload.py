"""End-to-end test of the example webapp under `mesh pm reload`, registered with a real `mesh
agent`: the new process listens beside the old one (SO_REUSEPORT), the old one hands the port
and the registration over to it, and neither a client of the port nor the registry sees a gap.
"""

import subprocess

from helpers import HOST, free_port, request, wait_until
from test_pm import alive, mesh_bin, pm, webapp_bin  # noqa: F401 (pm is a fixture)


def served_by(port):
    """The pid that answered GET / on a fresh connection, or the error."""
    try:
        r = request(port, "GET", "/", timeout=5)
    except OSError as e:
        return e
    return r.json()["pid"] if r.status == 200 else f"HTTP {r.status}"


def registration(agent, sid):
    """(registered, status of its check) as the agent's health endpoint tells them."""
    r = agent.get("/v1/health/service/web")
    assert r.status == 200, r.body
    for entry in r.json():
        if entry["Service"]["ID"] == sid:
            checks = [c for c in entry["Checks"] if c["ServiceID"] == sid]
            return True, checks[0]["Status"] if checks else None
    return False, None


def test_reload_keeps_the_port_answering_and_the_service_registered(pm, agent_factory):
    agent = agent_factory()
    port = free_port()
    sid = f"web-web1-{port}"
    pm.run("start", "web", "-port-base", port, "-listen-timeout", "30s", "--", webapp_bin(),
           "-agent", f"{HOST}:{agent.port}", "-node", "web1", "-meta", "zone=a",
           "-check-interval", "1s")
    old = pm.app("web")[0]["pid"]
    wait_until(lambda: served_by(port) == old, 20, interval=0.1, what="webapp answering")
    wait_until(lambda: registration(agent, sid) == (True, "passing"), 20, interval=0.1,
               what="webapp registered and passing")

    failures, missing, pids = [], [], set()
    p = subprocess.Popen([mesh_bin(), "pm", "-home", pm.home, "reload", "web"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # The port and the registry, one request after the other, while the reload runs and
        # until the old process is gone (it deregisters, or not, before it exits).
        for n in range(20000):
            got = served_by(port)
            if isinstance(got, int):
                pids.add(got)
            else:
                failures.append((n, got))
            if n % 4 == 0 and not registration(agent, sid)[0]:
                missing.append(n)
            if p.poll() is not None and not alive(old):
                break
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, out + err

    new = pm.app("web")[0]["pid"]
    assert new != old and not alive(old)
    assert not failures, f"{len(failures)} failed requests: {failures[:5]}"
    assert not missing, f"the registration was missing at {len(missing)} reads"
    assert pids <= {old, new} and new in pids
    assert served_by(port) == new
    assert registration(agent, sid) == (True, "passing")
    svc = agent.get_json("/v1/agent/services")[sid]
    assert svc["Port"] == port and svc["Meta"] == {"zone": "a"}
