"""Agent reload (SIGHUP, PUT /v1/agent/reload, `mesh reload`): services from config files
follow the files; a broken file changes nothing and names file:line."""

import json
import signal
import subprocess

from helpers import wait_until


def services(agent):
    return {sid: s["Port"] for sid, s in agent.get_json("/v1/agent/services").items()
            if sid != "consul"}


def reload_cli(mesh, agent):
    return subprocess.run([mesh, "reload", "-http-addr", f"127.0.0.1:{agent.port}"],
                          capture_output=True, text=True, timeout=10)


def start(agent_factory, tmp_path):
    confdir = tmp_path / "conf.d"
    confdir.mkdir()
    (confdir / "web.json").write_text(json.dumps(
        {"service": {"name": "web", "port": 3000, "check": {"ttl": "30s"}}}))
    (confdir / "cache.json").write_text(json.dumps({"service": {"name": "cache", "port": 6379}}))
    agent = agent_factory(extra_args=["-config-dir", str(confdir)])
    return agent, confdir


def test_reload_follows_the_config_files(agent_factory, tmp_path, mesh):
    agent, confdir = start(agent_factory, tmp_path)
    agent.register_service({"Name": "api-only", "Port": 9000})
    assert services(agent) == {"web": 3000, "cache": 6379, "api-only": 9000}

    (confdir / "web.json").write_text(json.dumps({"service": {"name": "web", "port": 3001}}))
    (confdir / "cache.json").unlink()
    (confdir / "db.json").write_text(json.dumps({"services": [{"name": "db", "port": 5432}]}))
    r = reload_cli(mesh, agent)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "Configuration reload triggered"
    # Changed, removed and added; what the API registered is not the files' to remove.
    assert services(agent) == {"web": 3001, "db": 5432, "api-only": 9000}
    # web's TTL check went with its old definition.
    assert "service:web" not in agent.get_json("/v1/agent/checks")


def test_broken_file_changes_nothing_and_names_the_line(agent_factory, tmp_path, mesh):
    agent, confdir = start(agent_factory, tmp_path)
    (confdir / "cache.json").unlink()
    (confdir / "web.json").write_text('{\n  "service": {\n    "name": "web",\n'
                                      '    "port": "not a number"\n  }\n}\n')
    r = reload_cli(mesh, agent)
    assert r.returncode == 1
    assert "web.json:4:" in r.stderr, r.stderr
    assert services(agent) == {"web": 3000, "cache": 6379}
    r = agent.put("/v1/agent/reload")
    assert r.status == 500 and "web.json:4:" in r.text


def test_sighup_reloads(agent_factory, tmp_path):
    agent, confdir = start(agent_factory, tmp_path)
    (confdir / "cache.json").write_text(json.dumps({"service": {"name": "cache", "port": 6380}}))
    agent.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: services(agent).get("cache") == 6380, 5, what="cache moved to 6380")
    assert agent.proc.poll() is None
