"""Fixtures for meshkit's end-to-end tests: agents on free ports, stopped by PID.

Run: /usr/bin/python3 -m pytest -q tests/e2e   (MESH_BIN selects the binary, default
<repo>/build/mesh). When a test fails, the log (stdout+stderr) of every agent it started is
attached to the report.
"""

import fcntl
import json
import os
import socket
import time

import pytest

from helpers import SANITIZER_MARKERS, Agent, Target, mesh_bin


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for agent in getattr(item, "_mesh_agents", []):
            rep.sections.append((f"mesh agent '{agent.name}' log ({agent.log_path})",
                                 agent.log_tail()))


@pytest.fixture(scope="session")
def mesh():
    path = mesh_bin()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(f"mesh binary not found or not executable: {path} "
                    "(build it, or set MESH_BIN)", pytrace=False)
    return path


@pytest.fixture
def agent_factory(request, tmp_path, mesh):
    """make(**kw) -> Agent (not started unless start=True). Every agent is stopped by PID."""
    agents = []
    request.node._mesh_agents = agents

    def make(start=True, **kw):
        kw.setdefault("name", f"a{len(agents)}")
        a = Agent(tmp_path, **kw)
        agents.append(a)
        if start:
            a.start()
        return a

    yield make
    for a in agents:
        a.stop()
    # A sanitizer build reports memory errors and UB on stderr and may keep running: any report
    # fails the test even when every assertion passed.
    for a in agents:
        text = a.log_text()
        for marker in SANITIZER_MARKERS:
            if marker in text:
                pytest.fail(f"agent '{a.name}' log has a sanitizer report ({marker!r}):\n"
                            f"{a.log_tail(80)}", pytrace=False)


@pytest.fixture
def agent(agent_factory):
    """A fresh in-memory server agent, node "node1", datacenter "dc1"."""
    return agent_factory()


@pytest.fixture
def target():
    """An HTTP server on a free port whose answers a test switches (health-check target)."""
    t = Target()
    yield t
    t.close()


@pytest.fixture
def listener():
    """A listening TCP socket on 127.0.0.1 (TCP-check target); yields its port."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(128)
    yield s.getsockname()[1]
    s.close()


@pytest.fixture
def write_config(tmp_path):
    """write_config(obj_or_text, name="config.json") -> path of a config file in tmp_path."""

    def write(content, name="config.json"):
        p = tmp_path / name
        p.write_text(content if isinstance(content, str) else json.dumps(content, indent=2))
        return p

    return write


# `make check` runs the suite in two passes: everything else spread over several processes
# (pytest-xdist; most tests spend their time waiting on timers, not on the CPU), then these
# alone. They measure rates, latencies or timings against what they configured (a drill's
# detection time, an arrival rate, a queue wait), so a neighbour's CPU use can skew them.
# A module name selects the whole module. New timing-sensitive tests belong here.
SERIAL = (
    "test_drill.py",
    "test_lb_stats.py::test_queue_time_counts_the_wait_for_a_slot",
    "test_load.py::test_phases_make_the_scheduled_arrivals",
    "test_load.py::test_percentiles_match_a_known_latency",
    "test_load.py::test_think_time_is_not_response_time",
    "test_load_artillery.py::test_socket_floor_without_http_timeout",
    "test_load_artillery.py::test_aggregate_rate_is_the_mean_of_the_periods",
    "test_pm.py::test_logs_rotate_and_are_followed",
    "test_pm.py::test_kill_wins_over_a_restart_in_flight",
)


@pytest.fixture
def up_netns_lock():
    """Held for a test that runs `mesh up -netns`. That cluster names its bridge, subnet and
    namespaces (meshbr0, 10.77.0.0/24, mesh-<node>) the way an operator expects to find them, so
    two at once would fight over one bridge: a lock on a file every checkout on the machine
    shares makes them take turns, in the parallel pass or in two test runs at once."""
    with open("/tmp/meshkit-up-netns.lock", "a") as f:
        deadline = time.monotonic() + 600
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail("another `mesh up -netns` test held its lock for 10 minutes",
                                pytrace=False)
                time.sleep(0.2)
        yield


def pytest_configure(config):
    config.addinivalue_line("markers", "serial: timing-sensitive, run alone (see SERIAL)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        name = item.nodeid.split("/")[-1]
        if any(name == s or name.startswith(s + "::") or name.startswith(s + "[")
               for s in SERIAL):
            item.add_marker(pytest.mark.serial)
