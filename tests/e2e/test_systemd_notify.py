"""End-to-end tests of the systemd readiness protocol (Type=notify units): `mesh agent`, `mesh lb`
and `mesh pm daemon -foreground` send READY=1 to $NOTIFY_SOCKET once they serve, RELOADING=1 then
READY=1 around a SIGHUP reload, and STOPPING=1 when they stop. The test plays systemd: it binds
the datagram socket and reads what arrives.
"""

import signal
import socket
import subprocess

import pytest

from helpers import HOST, STOP_TIMEOUT, mesh_bin
from lb_helpers import backends, lb_factory  # noqa: F401

NOTIFY_TIMEOUT = 15.0


@pytest.fixture
def notify(tmp_path, monkeypatch):
    """A bound notify socket; children started from now on inherit NOTIFY_SOCKET."""
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    yield sock
    sock.close()


def next_message(sock, timeout=NOTIFY_TIMEOUT):
    sock.settimeout(timeout)
    data = sock.recv(4096).decode()
    return dict(line.split("=", 1) for line in data.splitlines() if "=" in line)


def test_agent_notifies_ready_reloading_and_stopping(agent_factory, notify):
    a = agent_factory(start=False)
    a.start(wait=False)
    msg = next_message(notify)
    assert msg.get("READY") == "1", msg
    # Ready means serving: the API answers at once, with no retry.
    assert a.get("/v1/status/leader").status == 200

    a.proc.send_signal(signal.SIGHUP)
    msg = next_message(notify)
    assert msg.get("RELOADING") == "1" and int(msg["MONOTONIC_USEC"]) > 0, msg
    assert next_message(notify).get("READY") == "1"

    a.proc.send_signal(signal.SIGTERM)
    assert next_message(notify).get("STOPPING") == "1"


def test_lb_notifies_ready_once_it_proxies(backends, lb_factory, notify):
    (b,) = backends(1)
    lb = lb_factory(["-server", f"{HOST}:{b.port}"], start=False)
    lb.start(wait=False)
    assert next_message(notify).get("READY") == "1"
    status, _, _ = lb.get("/")
    assert status == 200

    lb.signal(signal.SIGHUP)
    assert next_message(notify).get("RELOADING") == "1"
    assert next_message(notify).get("READY") == "1"
    lb.signal(signal.SIGTERM)
    assert next_message(notify).get("STOPPING") == "1"


def test_pm_daemon_notifies_ready_in_the_foreground(tmp_path, notify):
    home = tmp_path / "pm"
    log = open(tmp_path / "pm.log", "wb")
    proc = subprocess.Popen([mesh_bin(), "pm", "-home", str(home), "daemon", "-foreground"],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        assert next_message(notify).get("READY") == "1"
        out = subprocess.run([mesh_bin(), "pm", "-home", str(home), "ls", "-json"],
                             capture_output=True, text=True, timeout=10)
        assert out.returncode == 0, out.stderr
        proc.send_signal(signal.SIGTERM)
        assert next_message(notify).get("STOPPING") == "1"
        proc.wait(timeout=STOP_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT)
        log.close()
