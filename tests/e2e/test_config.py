"""Agent flags and JSON config files (issue 2: Consul's keys; errors name file and line)."""

import json
import re
import subprocess

from helpers import SANITIZER_MARKERS, free_port, mesh_bin, request, wait_until

BASE = ["agent", "-server", "-bootstrap", "-node", "node1", "-datacenter", "dc1",
        "-bind", "127.0.0.1", "-client", "127.0.0.1"]


def run_agent_expect_exit(args, cwd, timeout=10):
    """Runs `mesh agent ...` that must exit on its own; returns CompletedProcess."""
    try:
        return subprocess.run([mesh_bin()] + args, cwd=cwd, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"agent did not exit within {timeout}s: {e.stderr!r}") from None


def test_config_syntax_error_names_file_and_line(mesh, tmp_path):
    """A JSON syntax error -> non-zero exit, "bad.json:LINE: message"."""
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "node_name": "n1",\n  "datacenter": dc1,\n  "server": true\n}\n')
    p = run_agent_expect_exit(BASE + ["-http-port", str(free_port()), "-config-file", str(bad)],
                              cwd=tmp_path)
    assert p.returncode != 0
    assert re.search(r"bad\.json:3: \S", p.stderr), p.stderr


def test_config_wrong_type_names_file_and_line(mesh, tmp_path):
    """A key of the wrong type ("ports": {"http": "abc"}) -> non-zero exit, file:line."""
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "node_name": "n1",\n  "ports": {\n    "http": "abc"\n  }\n}\n')
    p = run_agent_expect_exit(BASE + ["-config-file", str(bad)], cwd=tmp_path)
    assert p.returncode != 0
    assert re.search(r"bad\.json:4: \S", p.stderr), p.stderr


def test_config_wrong_type_nested_service(mesh, tmp_path):
    """A wrong-typed key inside services[] is reported at its own line."""
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "services": [\n    {\n      "name": "web",\n      "port": "x"\n'
                   '    }\n  ]\n}\n')
    p = run_agent_expect_exit(BASE + ["-http-port", str(free_port()), "-config-file", str(bad)],
                              cwd=tmp_path)
    assert p.returncode != 0
    assert re.search(r"bad\.json:5: \S", p.stderr), p.stderr


def test_config_top_level_not_object(mesh, tmp_path):
    """A config file whose top level is not an object is an error naming the file."""
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]\n")
    p = run_agent_expect_exit(BASE + ["-http-port", str(free_port()), "-config-file", str(bad)],
                              cwd=tmp_path)
    assert p.returncode != 0
    assert "bad.json:1:" in p.stderr, p.stderr


def test_missing_config_file(mesh, tmp_path):
    """An unreadable config file -> non-zero exit naming it."""
    p = run_agent_expect_exit(BASE + ["-http-port", str(free_port()), "-config-file",
                                      str(tmp_path / "absent.json")], cwd=tmp_path)
    assert p.returncode != 0
    assert "absent.json" in p.stderr


def test_bad_flag_exits_nonzero(mesh, tmp_path):
    """An undefined flag -> non-zero exit and a message on stderr."""
    p = run_agent_expect_exit(BASE + ["-http-port", str(free_port()), "-no-such-flag"],
                              cwd=tmp_path)
    assert p.returncode != 0
    assert "no-such-flag" in p.stderr


def test_bad_flag_value_exits_nonzero(mesh, tmp_path):
    """A flag with a bad value (-http-port abc) -> non-zero exit and a message."""
    p = run_agent_expect_exit(BASE + ["-http-port", "abc"], cwd=tmp_path)
    assert p.returncode != 0
    assert "http-port" in p.stderr


def test_unknown_keys_warn_and_start(agent_factory, write_config):
    """Unknown keys (e.g. telemetry) are named in a warning; the agent starts."""
    cfg = write_config({"telemetry": {"statsite_address": "127.0.0.1:2180"},
                        "performance": {"raft_multiplier": 1}})
    a = agent_factory(config_files=[cfg])
    assert a.get_json("/v1/status/leader")
    log = a.log_text()
    assert "telemetry" in log and "performance" in log, "unknown keys must be named at start"


def test_null_leaves_a_key_unset(agent_factory, tmp_path):
    """null is as if the key were absent, as in Consul: python-consul2's test fixture writes
    "acl": {"tokens": {"agent": null}}, and a later file's null keeps an earlier value."""
    first = tmp_path / "10-ui.json"
    first.write_text(json.dumps({"ui_config": {"enabled": True}}))
    later = tmp_path / "20-nulls.json"
    later.write_text(json.dumps({"acl": {"tokens": {"agent": None, "master": None}},
                                 "ui_config": {"enabled": None}, "log_level": None,
                                 "retry_join": None, "ports": {"dns": None}}))
    a = agent_factory(config_files=[first, later])
    assert a.get("/ui/").status == 200
    assert a.get_json("/v1/status/leader")


def test_ports_http_from_config(agent_factory, write_config):
    """ports.http sets the HTTP port when -http-port is not given."""
    port = free_port()
    cfg = write_config({"ports": {"http": port}})
    a = agent_factory(config_files=[cfg], http_port=port, pass_http_port=False)
    assert request(port, "GET", "/v1/status/leader").status == 200
    assert a.port == port


def test_config_node_name_and_datacenter(agent_factory, write_config):
    """node_name and datacenter from a config file; flags given on the command line win."""
    cfg = write_config({"datacenter": "dc1", "node_name": "from-config"})
    a = agent_factory(config_files=[cfg])
    # -node node1 is on the command line (Consul: flags override files).
    assert a.get_json("/v1/agent/self")["Config"]["NodeName"] == "node1"
    assert a.get_json("/v1/catalog/datacenters") == ["dc1"]


def test_config_services_registered_at_start(agent_factory, write_config):
    """`services` in a config file (Consul's lower-case keys) are registered at start."""
    cfg = write_config({"services": [
        {"id": "cfg-web-1", "name": "cfg-web", "port": 8080, "tags": ["a"],
         "checks": [{"ttl": "30s"}]},
    ], "service": {"name": "single", "port": 9000}})
    a = agent_factory(config_files=[cfg])
    svcs = a.get_json("/v1/agent/services")
    assert svcs["cfg-web-1"]["Service"] == "cfg-web"
    assert svcs["cfg-web-1"]["Port"] == 8080
    assert svcs["cfg-web-1"]["Tags"] == ["a"]
    assert svcs["single"]["Port"] == 9000
    checks = a.agent_checks()
    assert checks["service:cfg-web-1"]["Type"] == "ttl"
    assert [e["ServiceID"] for e in a.get_json("/v1/catalog/service/cfg-web")] == ["cfg-web-1"]


def test_sigterm_exits_promptly(agent_factory):
    """The agent stops on SIGTERM within the stop timeout (not via SIGKILL)."""
    a = agent_factory()
    rc = a.stop()
    assert rc is not None and rc != -9, f"exit status {rc}"


def test_dev_flag_with_http_port(agent_factory):
    """-dev runs an in-memory server (here on a free port, never 8500 in tests)."""
    a = agent_factory(start=False, extra_args=["-dev"])
    a.start()
    assert a.get_json("/v1/status/leader")
    wait_until(lambda: a.get("/v1/catalog/nodes").status == 200, 2, what="catalog")


def test_config_dir_files_in_lexical_order(agent_factory, tmp_path):
    """-config-dir loads every *.json file (lexical order; later files add services)."""
    d = tmp_path / "conf.d"
    d.mkdir()
    (d / "10-web.json").write_text('{"services": [{"name": "web", "port": 80}]}')
    (d / "20-db.json").write_text('{"service": {"name": "db", "port": 5432}}')
    (d / "README.txt").write_text("not json, ignored")
    a = agent_factory(extra_args=["-config-dir", str(d)])
    svcs = a.get_json("/v1/agent/services")
    assert svcs["web"]["Port"] == 80
    assert svcs["db"]["Port"] == 5432


def test_config_dir_bad_file_names_it(mesh, tmp_path):
    """A broken file in -config-dir -> non-zero exit naming that file and line."""
    d = tmp_path / "conf.d"
    d.mkdir()
    (d / "a.json").write_text('{"datacenter": "dc1"}')
    (d / "b.json").write_text('{\n  "ports": {"http": true}\n}\n')
    p = run_agent_expect_exit(BASE + ["-http-port", str(free_port()), "-config-dir", str(d)],
                              cwd=tmp_path)
    assert p.returncode != 0
    assert re.search(r"b\.json:2: \S", p.stderr), p.stderr
    # The list of the directory's files is freed on this way out too (LSan would report it).
    assert not any(m in p.stderr for m in SANITIZER_MARKERS), p.stderr


def test_pid_file(agent_factory, tmp_path):
    """-pid-file writes the agent's PID."""
    pid_file = tmp_path / "agent.pid"
    a = agent_factory(extra_args=["-pid-file", str(pid_file)])
    assert pid_file.read_text().strip() == str(a.proc.pid)


def test_enable_script_checks_flag(agent_factory):
    """-enable-script-checks on the command line enables Args checks."""
    a = agent_factory(extra_args=["-enable-script-checks"])
    a.put_ok("/v1/agent/check/register",
             {"Name": "s", "Args": ["/bin/sh", "-c", "exit 0"], "Interval": "1s"})
    a.wait_check("s", "passing", timeout=6)
