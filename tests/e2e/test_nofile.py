"""The long-running commands raise their soft limit on open files to the hard one at start, as
Go's runtime does for Consul and consul-template (and nginx's worker_rlimit_nofile): each
connection, check or watch holds a descriptor, and a distribution's default soft limit of 1024
would cut them off long before the hard limit. `mesh template` and `mesh load run` do too, as
consul-template (Go) and Artillery (node) do. (`mesh pm`'s daemon: tests/e2e/test_pm.py.)
"""

import resource
import signal
import subprocess

import pytest

from helpers import HOST, wait_until
from lb_helpers import backends, lb_factory  # noqa: F401 (fixtures)

LOW = 256


def hard_limit():
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard <= LOW:
        pytest.skip(f"the hard limit on open files ({hard}) leaves nothing to raise")
    return hard


def low_soft_limit():
    """In the child before the exec: a soft limit well under the hard one."""
    resource.setrlimit(resource.RLIMIT_NOFILE,
                       (LOW, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))


def open_files_limit(pid):
    return resource.prlimit(pid, resource.RLIMIT_NOFILE)


def test_agent_raises_its_open_files_limit(agent_factory):
    hard = hard_limit()
    a = agent_factory(start=False)
    a.preexec_fn = low_soft_limit
    a.start()
    assert open_files_limit(a.proc.pid) == (hard, hard)
    assert f"open files limit raised from {LOW} to {hard}" in a.log_text()


def test_lb_raises_its_open_files_limit(backends, lb_factory):  # noqa: F811 (fixtures)
    hard = hard_limit()
    b = backends(1)[0]
    lb = lb_factory(["-server", b.addr, "-log-level", "debug"], start=False)
    lb.preexec_fn = low_soft_limit
    lb.start()
    assert open_files_limit(lb.proc.pid) == (hard, hard)
    assert f"open files limit raised from {LOW} to {hard}" in lb.log_text()
    wait_until(lambda: lb.get("/")[0] == 200, 10, what="a request through the lb")


def raised_while_running(argv, tmp_path, hard):
    """Starts argv with the low soft limit and waits until its limit is the hard one (the
    process raises it once its arguments are read); stops it by PID."""
    with open(tmp_path / "out.log", "wb") as log:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                             preexec_fn=low_soft_limit)
    try:
        wait_until(lambda: p.poll() is None and open_files_limit(p.pid) == (hard, hard), 20,
                   what=f"{argv[1]} to raise its limit (log: {tmp_path / 'out.log'})")
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def test_template_raises_its_open_files_limit(agent, mesh, tmp_path):
    hard = hard_limit()
    src = tmp_path / "t.ctmpl"
    src.write_text('{{ key "k" }}\n')
    agent.put_true("/v1/kv/k", "v")
    raised_while_running([mesh, "template", "-consul-addr", f"{HOST}:{agent.port}",
                          "-template", f"{src}:{tmp_path / 't.out'}"], tmp_path, hard)


def test_load_raises_its_open_files_limit(backends, mesh, tmp_path):  # noqa: F811 (fixture)
    hard = hard_limit()
    b = backends(1)[0]
    script = tmp_path / "s.yml"
    script.write_text(f"config:\n  target: http://{b.addr}\n"
                      "  phases: [{duration: 30, arrivalRate: 1}]\n"
                      "scenarios: [{flow: [{get: {url: /}}]}]\n")
    raised_while_running([mesh, "load", "run", str(script)], tmp_path, hard)
