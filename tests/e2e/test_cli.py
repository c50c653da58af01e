"""CLI on the HTTP API (issue 2): members, catalog, kv, services; -http-addr and env vars."""

import json
import re
import os
import subprocess

import pytest

from helpers import b64, free_port, mesh_bin


def run(args, env_addr=None, env_name="MESH_HTTP_ADDR", timeout=15):
    env = {k: v for k, v in os.environ.items() if k not in ("MESH_HTTP_ADDR", "CONSUL_HTTP_ADDR")}
    if env_addr is not None:
        env[env_name] = env_addr
    try:
        return subprocess.run([mesh_bin()] + args, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"`mesh {' '.join(args)}` did not finish in {timeout}s: "
                             f"{e.stdout!r} {e.stderr!r}") from None


def ok(p):
    assert p.returncode == 0, f"exit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    return p.stdout


def addr(agent):
    return f"127.0.0.1:{agent.port}"


def test_members(agent):
    """`mesh members` lists the node, its address and alive."""
    out = ok(run(["members", "-http-addr", addr(agent)]))
    line = [ln for ln in out.splitlines() if ln.startswith("node1")]
    assert line, out
    assert "127.0.0.1" in line[0]
    assert "alive" in line[0]
    assert "server" in line[0]


@pytest.mark.parametrize("env_name", ["MESH_HTTP_ADDR", "CONSUL_HTTP_ADDR"])
def test_address_from_env(agent, env_name):
    """MESH_HTTP_ADDR and CONSUL_HTTP_ADDR select the agent (with or without http://)."""
    for value in (addr(agent), "http://" + addr(agent)):
        out = ok(run(["members"], env_addr=value, env_name=env_name))
        assert "node1" in out


def test_flag_beats_env(agent):
    """-http-addr wins over the environment."""
    out = ok(run(["members", "-http-addr", addr(agent)], env_addr=f"127.0.0.1:{free_port()}"))
    assert "node1" in out


def test_unreachable_agent_fails(mesh):
    """No agent at the address -> non-zero exit and a message on stderr."""
    p = run(["members", "-http-addr", f"127.0.0.1:{free_port()}"])
    assert p.returncode != 0
    assert p.stderr.strip()


# Commands that take no argument after their flags, and what they read or write.
NO_ARGS = [["members"], ["leave"], ["reload"], ["catalog", "services"], ["catalog", "nodes"],
           ["operator", "raft", "list-peers"], ["operator", "raft", "remove-peer", "-id", "x"]]


@pytest.mark.parametrize("cmd", NO_ARGS, ids=" ".join)
def test_commands_say_the_same_about_arguments_and_addresses(mesh, cmd):
    """Every command words a stray argument and a bad -http-addr the same way, and exits 1."""
    p = run(cmd + ["stray"])
    assert p.returncode == 1 and p.stderr == "Too many arguments (expected 0, got 1)\n", p.stderr
    p = run(cmd + ["-http-addr", "ftp://nowhere"])
    assert p.returncode == 1, p.stderr
    assert p.stderr.startswith("Error connecting to the agent: Error parsing HTTP address"), \
        p.stderr


def test_catalog_services(agent):
    """`mesh catalog services` prints one service name per line, sorted."""
    agent.register_service({"ID": "w1", "Name": "web", "Tags": ["v1"]})
    agent.register_service({"ID": "d1", "Name": "db"})
    out = ok(run(["catalog", "services", "-http-addr", addr(agent)]))
    assert out.split() == ["consul", "db", "web"]


def test_catalog_nodes(agent):
    """`mesh catalog nodes` lists node1 with its address."""
    out = ok(run(["catalog", "nodes", "-http-addr", addr(agent)]))
    line = [ln for ln in out.splitlines() if ln.startswith("node1")]
    assert line and "127.0.0.1" in line[0], out


def test_catalog_service(agent):
    """`mesh catalog service NAME` lists the instances (ID, node, address/port)."""
    agent.register_service({"ID": "web-a", "Name": "web", "Address": "10.0.0.8", "Port": 3000})
    agent.register_service({"ID": "web-b", "Name": "web", "Port": 3001})
    out = ok(run(["catalog", "service", "-http-addr", addr(agent), "web"]))
    assert "web-a" in out and "web-b" in out
    assert "10.0.0.8" in out and "3000" in out and "3001" in out
    assert "node1" in out


def test_kv_put_get_delete(agent):
    """`mesh kv put/get/delete` round trip through the API."""
    ok(run(["kv", "put", "-http-addr", addr(agent), "app/config", "hello world"]))
    r = agent.get("/v1/kv/app/config?raw")
    assert r.status == 200 and r.body == b"hello world"
    assert ok(run(["kv", "get", "-http-addr", addr(agent), "app/config"])) == "hello world\n"
    ok(run(["kv", "delete", "-http-addr", addr(agent), "app/config"]))
    assert agent.get("/v1/kv/app/config").status == 404


def test_kv_get_missing_fails(agent):
    """`mesh kv get` of a missing key -> non-zero exit, message on stderr, nothing on stdout."""
    p = run(["kv", "get", "-http-addr", addr(agent), "nope"])
    assert p.returncode != 0
    assert p.stderr.strip()
    assert p.stdout == ""


def test_kv_put_key_needing_escape(agent):
    """Keys with spaces and slashes survive the CLI's URL encoding."""
    ok(run(["kv", "put", "-http-addr", addr(agent), "dir/with space/k", "v"]))
    assert agent.get_json("/v1/kv/?keys") == ["dir/with space/k"]
    assert ok(run(["kv", "get", "-http-addr", addr(agent), "dir/with space/k"])) == "v\n"


def test_kv_delete_recurse(agent):
    """`mesh kv delete -recurse PREFIX` removes the prefix only."""
    for k in ("app/a", "app/b/c", "apple", "other"):
        agent.put_true("/v1/kv/" + k, "x")
    ok(run(["kv", "delete", "-http-addr", addr(agent), "-recurse", "app/"]))
    assert agent.get_json("/v1/kv/?keys") == ["apple", "other"]


def test_services_register_and_deregister(agent, tmp_path):
    """`mesh services register FILE.json` (Consul's service definition) and `deregister ID`."""
    f = tmp_path / "svc.json"
    f.write_text(json.dumps({"service": {"id": "cli-web-1", "name": "cli-web", "port": 8080,
                                         "tags": ["cli"], "check": {"ttl": "30s"}}}))
    ok(run(["services", "register", "-http-addr", addr(agent), str(f)]))
    s = agent.get_json("/v1/agent/services")["cli-web-1"]
    assert (s["Service"], s["Port"], s["Tags"]) == ("cli-web", 8080, ["cli"])
    assert "service:cli-web-1" in agent.agent_checks()
    ok(run(["services", "deregister", "-http-addr", addr(agent), "cli-web-1"]))
    assert "cli-web-1" not in agent.get_json("/v1/agent/services")


def test_services_register_bad_file(agent, tmp_path):
    """A malformed service file -> non-zero exit, message naming the file; nothing registered."""
    f = tmp_path / "broken.json"
    f.write_text('{"service": {"name": ')
    p = run(["services", "register", "-http-addr", addr(agent), str(f)])
    assert p.returncode != 0
    assert "broken.json" in p.stderr
    svcs = agent.get_json("/v1/agent/services")
    svcs.pop("consul", None)
    assert svcs == {}


@pytest.mark.parametrize("args", [
    ["members", "-bogus"],
    ["kv", "get", "-bogus", "k"],
    ["kv", "delete", "-frobnicate", "k"],
    ["catalog", "services", "-nope"],
    ["services", "register", "-nope", "x.json"],
])
def test_bad_flag(agent, args):
    """An undefined flag -> non-zero exit and a message on stderr; nothing changed."""
    agent.put_true("/v1/kv/k", "keep")
    p = run(args, env_addr=addr(agent))
    assert p.returncode != 0
    assert p.stderr.strip()
    assert agent.get("/v1/kv/k?raw").body == b"keep"


@pytest.mark.parametrize("cmd, prefix", [
    (["catalog"], "mesh catalog"),
    (["kv"], "mesh kv"),
    (["services"], "mesh services"),
    (["operator"], "operator"),
    (["operator", "raft"], "raft"),
])
def test_subcommand_dispatch(cmd, prefix):
    """-help prints the usage on stdout (exit 0); an unknown subcommand is named on stderr with
    the usage (exit 1), and a command that needs one says how to use it (exit 1)."""
    helped = run(cmd + ["-help"])
    assert helped.returncode == 0 and helped.stdout.startswith("Usage: mesh "), helped
    assert helped.stderr == ""
    bad = run(cmd + ["frobnicate"])
    assert bad.returncode == 1 and bad.stdout == "", bad
    assert bad.stderr.startswith(f'{prefix}: unknown subcommand "frobnicate"\n\nUsage: mesh ')
    assert bad.stderr[len(prefix):].count("Usage:") == 1
    assert helped.stdout == bad.stderr.split("\n\n", 1)[1]
    if cmd != ["services"]:  # alone, services lists the cluster's services
        bare = run(cmd)
        assert bare.returncode == 1 and bare.stderr == helped.stdout, bare


def test_kv_put_then_api_value_is_exact(agent):
    """The CLI writes the value bytes exactly (no trailing newline)."""
    ok(run(["kv", "put", "-http-addr", addr(agent), "exact", "abc"]))
    assert agent.get_json("/v1/kv/exact")[0]["Value"] == b64("abc")


def test_version_names_commit_and_libraries():
    """`mesh version`: the version, the commit and the libraries, for bug reports."""
    out = ok(run(["version"])).splitlines()
    assert out[0].startswith("mesh v")
    assert re.fullmatch(r"commit: ([0-9a-f]{12}(-dirty)?|unknown)", out[1]), out
    for lib in ("libuv ", "jansson ", "OpenSSL ", "libyaml "):
        assert lib in out[2], out
    assert ok(run(["version", "-help"])).startswith("Usage: mesh version")
    assert run(["version", "extra"]).returncode == 2


def test_every_man_page_names_its_command_with_a_summary(tmp_path):
    """`mesh man` takes each page's one-line summary (the whatis entry lintian and apropos
    read) from `mesh help`, split at two spaces: a command name as wide as the column once
    left mesh-reload-service.1 without one."""
    # A page per command, each from the binary's own -help: ten seconds under ASan on a quiet
    # machine, so a bound with room for a busy one.
    ok(run(["man", str(tmp_path)], timeout=90))
    pages = sorted(tmp_path.glob("mesh-*.1"))
    assert len(pages) > 30, pages
    for page in pages:
        lines = page.read_text().splitlines()
        name = lines[lines.index(".SH NAME") + 1]
        m = re.fullmatch(r"(\S+) \\- (\S.*)", name)
        assert m and m.group(1) == page.stem, f"{page.name}: {name!r}"
        assert "  " not in m.group(2), f"{page.name}: {name!r}"
