"""Debian's Python Consul client (python3-consul2, python-consul2 0.1.5) against `mesh agent`.

Its upstream test suite, run against meshkit, found what these tests keep fixed: a token update
through the client's ACL API, a server listing its built-in `consul` service among the agent's
own, and a bootstrap reset through the data directory's acl-bootstrap-reset file. The client
talks to the agent over HTTP exactly as it talks to Consul.
"""

import json
import re

import consul
import pytest

ROOT = "root"


def acl_agent(agent_factory, tmp_path, **kw):
    cfg = tmp_path / "acl.json"
    cfg.write_text(json.dumps({"acl": {"enabled": True, "default_policy": "deny",
                                       "tokens": {"initial_management": ROOT}}}))
    return agent_factory(config_files=[cfg], **kw)


def test_token_update_through_the_client(agent_factory, tmp_path):
    """Updating a token (PUT /v1/acl/token/<accessor>) twice keeps its secret and create index
    and the agent alive; the update used to read the replaced token after freeing it."""
    a = acl_agent(agent_factory, tmp_path)
    c = consul.Consul(port=a.port, token=ROOT)
    policy = c.acl.policy.create("kv-read", rules='key_prefix "" { policy = "read" }')
    token = c.acl.tokens.create({"Description": "first", "Policies": [{"ID": policy["ID"]}]})
    for text in ("second", "third"):
        got = c.acl.tokens.update({"Description": text, "Policies": [{"Name": "kv-read"}]},
                                  token["AccessorID"])
        assert got["Description"] == text
        assert got["SecretID"] == token["SecretID"]
        assert got["CreateIndex"] == token["CreateIndex"]
        assert got["ModifyIndex"] > token["CreateIndex"]
    again = c.acl.tokens.get(token["AccessorID"])
    assert again["Description"] == "third"
    assert [p["Name"] for p in again["Policies"]] == ["kv-read"]
    reader = consul.Consul(port=a.port, token=token["SecretID"])
    assert reader.kv.get("missing")[1] is None  # the updated token still resolves
    assert a.running()


def test_agent_services_are_the_agents_own(agent_factory):
    """A server's built-in `consul` service is in the catalog, not among the agent's services:
    /v1/agent/services lists what was registered, and the agent endpoints do not reach it."""
    a = agent_factory()
    c = consul.Consul(port=a.port)
    assert c.agent.services() == {}
    assert c.agent.service.register("foo") is True
    assert set(c.agent.services()) == {"foo"}
    assert c.agent.service.deregister("consul") is False  # 404: not a local service
    assert a.get("/v1/agent/service/consul").status == 404
    assert a.get("/v1/agent/health/service/name/consul").status == 404
    assert "consul" in c.catalog.services()[1]
    assert c.agent.self()["Stats"]["agent"]["services"] == "1"
    assert c.agent.service.deregister("foo") is True
    assert c.agent.services() == {}


def test_bootstrap_again_through_the_reset_file(agent_factory, tmp_path):
    """Consul's way back in when the management tokens are lost: the reset index a refused
    bootstrap names, written into acl-bootstrap-reset in the data directory, allows one more
    bootstrap; a file naming another index allows nothing."""
    data = tmp_path / "data"
    a = acl_agent(agent_factory, tmp_path, data_dir=data)
    c = consul.Consul(port=a.port)
    with pytest.raises(consul.ACLPermissionDenied) as refused:
        c.acl.bootstrap()
    index = int(re.search(r"reset index: (\d+)", str(refused.value)).group(1))
    reset = data / "acl-bootstrap-reset"
    reset.write_text(f"{index + 1}\n")
    with pytest.raises(consul.ACLPermissionDenied):
        c.acl.bootstrap()
    assert reset.exists()
    reset.write_text(f"{index}\n")
    token = c.acl.bootstrap()
    assert token["Policies"] == [{"ID": "00000000-0000-0000-0000-000000000001",
                                  "Name": "global-management"}]
    assert not reset.exists()
    admin = consul.Consul(port=a.port, token=token["SecretID"])
    assert admin.kv.put("k", "v") is True
    assert consul.Consul(port=a.port, token=ROOT).kv.get("k")[1]["Value"] == b"v"
    with pytest.raises(consul.ACLPermissionDenied):
        c.acl.bootstrap()
