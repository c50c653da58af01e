"""KV store (/v1/kv/:key) and its index rules."""

import base64

from helpers import assert_query_meta, assert_text_error, b64

ENTRY_KEYS = {"LockIndex", "Key", "Flags", "Value", "CreateIndex", "ModifyIndex"}
MAX_VALUE = 524288


def get_entry(agent, key_path):
    r = agent.get("/v1/kv/" + key_path)
    assert r.status == 200, r
    assert r.content_type == "application/json"
    body = r.json()
    assert isinstance(body, list) and len(body) == 1, body
    return body[0], r


def kv_keys(agent):
    r = agent.get("/v1/kv/?keys")
    assert r.status == 200, r
    return r.json()


def test_put_get_entry_shape(agent):
    """PUT -> true; GET -> one-element array with exactly the entry keys."""
    agent.put_true("/v1/kv/service/web/maxconn", "100")
    e, r = get_entry(agent, "service/web/maxconn")
    assert set(e) == ENTRY_KEYS, "Session must be omitted when not locked"
    assert e["Key"] == "service/web/maxconn"
    assert e["Value"] == b64("100")
    assert e["Flags"] == 0
    assert e["LockIndex"] == 0
    assert e["CreateIndex"] >= 1
    assert e["ModifyIndex"] == e["CreateIndex"]
    assert assert_query_meta(r) == e["ModifyIndex"], "single key: X-Consul-Index = ModifyIndex"


def test_update_keeps_create_index(agent):
    """An update raises ModifyIndex, CreateIndex stays."""
    agent.put_true("/v1/kv/k", "a")
    e1, _ = get_entry(agent, "k")
    agent.put_true("/v1/kv/k", "b")
    e2, r = get_entry(agent, "k")
    assert e2["Value"] == b64("b")
    assert e2["CreateIndex"] == e1["CreateIndex"]
    assert e2["ModifyIndex"] > e1["ModifyIndex"]
    assert r.index == e2["ModifyIndex"]


def test_missing_key_404_with_index_headers(agent):
    """Missing key -> 404, empty body, but X-Consul-Index (>=1)/KnownLeader/LastContact."""
    r = agent.get("/v1/kv/nope")
    assert r.status == 404
    assert r.body == b""
    assert_query_meta(r)


def test_empty_value_is_null(agent):
    """Empty value -> Value null."""
    agent.put_true("/v1/kv/empty", b"")
    e, _ = get_entry(agent, "empty")
    assert e["Value"] is None


def test_binary_value_round_trip(agent):
    """Value is base64 of the raw bytes; raw returns them as sent."""
    data = bytes(range(256)) * 4
    agent.put_true("/v1/kv/bin", data)
    e, _ = get_entry(agent, "bin")
    assert base64.b64decode(e["Value"]) == data
    r = agent.get("/v1/kv/bin?raw")
    assert r.status == 200
    assert r.body == data


def test_raw(agent):
    """?raw -> the value bytes, text/plain; 404 when missing."""
    agent.put_true("/v1/kv/cfg", '{"not": "json-decoded"}')
    r = agent.get("/v1/kv/cfg?raw")
    assert r.status == 200
    assert r.content_type == "text/plain"
    assert r.body == b'{"not": "json-decoded"}'
    r = agent.get("/v1/kv/nope?raw")
    assert r.status == 404


def test_recurse_prefix_sorted(agent):
    """?recurse is a plain string prefix; sorted by key; index = max ModifyIndex."""
    for k in ("app/b", "app/a/x", "apple", "app/c", "other"):
        agent.put_true("/v1/kv/" + k, k)
    r = agent.get("/v1/kv/app?recurse")
    assert r.status == 200
    entries = r.json()
    assert [e["Key"] for e in entries] == ["app/a/x", "app/b", "app/c", "apple"]
    assert all(base64.b64decode(e["Value"]).decode() == e["Key"] for e in entries)
    assert r.index == max(e["ModifyIndex"] for e in entries)
    everything = agent.get_json("/v1/kv/?recurse")
    assert [e["Key"] for e in everything] == ["app/a/x", "app/b", "app/c", "apple", "other"]


def test_recurse_no_match_404(agent):
    """Recurse with no match -> 404 (with index)."""
    agent.put_true("/v1/kv/a", "1")
    r = agent.get("/v1/kv/zzz/?recurse")
    assert r.status == 404
    assert_query_meta(r)


def test_keys_and_separator(agent):
    """?keys lists sorted keys; separator truncates after the first separator."""
    for k in ("a/x/1", "a/x/2", "a/y/2", "a/z", "b/q"):
        agent.put_true("/v1/kv/" + k, "v")
    r = agent.get("/v1/kv/a/?keys")
    assert r.status == 200 and r.content_type == "application/json"
    assert_query_meta(r)
    assert r.json() == ["a/x/1", "a/x/2", "a/y/2", "a/z"]
    assert agent.get_json("/v1/kv/a/?keys&separator=/") == ["a/x/", "a/y/", "a/z"]
    assert agent.get_json("/v1/kv/?keys&separator=/") == ["a/", "b/"]
    assert agent.get_json("/v1/kv/?keys") == ["a/x/1", "a/x/2", "a/y/2", "a/z", "b/q"]


def test_keys_empty_prefix_never_404(agent):
    """Keys with prefix "" -> 200 [] on an empty store; non-empty prefix, no keys -> 404."""
    r = agent.get("/v1/kv/?keys")
    assert r.status == 200
    assert r.json() == []
    assert agent.get("/v1/kv/nothing/?keys").status == 404


def test_missing_key_name_400(agent):
    """Empty key without recurse -> 400 "Missing key name" (GET and DELETE)."""
    assert_text_error(agent.get("/v1/kv/"), 400, contains="Missing key name")
    assert_text_error(agent.delete("/v1/kv/"), 400, contains="Missing key name")


def test_flags(agent):
    """Flags stored as uint64, round-trip exactly (> 2^53)."""
    agent.put_true("/v1/kv/f?flags=42", "x")
    assert get_entry(agent, "f")[0]["Flags"] == 42
    big = 3304740253564472344
    agent.put_true(f"/v1/kv/lock?flags={big}", "x")
    e, r = get_entry(agent, "lock")
    assert e["Flags"] == big
    assert str(big).encode() in r.body, "flags must be written as an exact integer"
    agent.put_true(f"/v1/kv/max?flags={2**64 - 1}", "x")
    assert get_entry(agent, "max")[0]["Flags"] == 2**64 - 1


def test_bad_flags_rejected(agent):
    """A bad flags number is an error; nothing written."""
    r = agent.put("/v1/kv/f?flags=abc", "x")
    assert r.status != 200 and r.status >= 400, r
    assert r.content_type == "text/plain"
    assert agent.get("/v1/kv/f").status == 404


def test_cas_zero_creates_only(agent):
    """Cas=0 writes only if the key is absent; false otherwise, value unchanged."""
    r = agent.put("/v1/kv/c?cas=0", "first")
    assert r.status == 200 and r.json() is True
    r = agent.put("/v1/kv/c?cas=0", "second")
    assert r.status == 200 and r.json() is False
    assert get_entry(agent, "c")[0]["Value"] == b64("first")


def test_cas_index(agent):
    """Cas=N writes only when ModifyIndex == N."""
    agent.put_true("/v1/kv/c", "v1")
    idx = get_entry(agent, "c")[0]["ModifyIndex"]
    r = agent.put(f"/v1/kv/c?cas={idx + 1000}", "nope")
    assert r.status == 200 and r.json() is False
    r = agent.put(f"/v1/kv/c?cas={idx}", "v2")
    assert r.status == 200 and r.json() is True
    e = get_entry(agent, "c")[0]
    assert e["Value"] == b64("v2")
    r = agent.put(f"/v1/kv/c?cas={idx}", "v3")
    assert r.json() is False
    assert get_entry(agent, "c")[0]["ModifyIndex"] == e["ModifyIndex"]


def test_conflicting_flags_400(agent):
    """More than one of cas/acquire/release -> 400 "Conflicting flags"."""
    for q in ("cas=0&acquire=abc", "acquire=abc&release=abc", "cas=1&release=abc"):
        r = agent.put("/v1/kv/k?" + q, "v")
        assert_text_error(r, 400, startswith="Conflicting flags")
    assert agent.get("/v1/kv/k").status == 404


def test_delete(agent):
    """Delete -> true; idempotent (true for a missing key)."""
    agent.put_true("/v1/kv/d", "x")
    r = agent.delete("/v1/kv/d")
    assert r.status == 200 and r.content_type == "application/json" and r.json() is True
    assert agent.get("/v1/kv/d").status == 404
    r = agent.delete("/v1/kv/d")
    assert r.status == 200 and r.json() is True


def test_delete_recurse(agent):
    """?recurse deletes the prefix only; /v1/kv/?recurse wipes everything."""
    for k in ("p/1", "p/2", "p/q/3", "pz", "q"):
        agent.put_true("/v1/kv/" + k, "x")
    r = agent.delete("/v1/kv/p/?recurse")
    assert r.status == 200 and r.json() is True
    assert kv_keys(agent) == ["pz", "q"]
    r = agent.delete("/v1/kv/?recurse")
    assert r.status == 200 and r.json() is True
    assert kv_keys(agent) == []


def test_delete_cas(agent):
    """Cas deletes only on matching ModifyIndex; cas=0 never deletes; recurse+cas -> 400."""
    agent.put_true("/v1/kv/d", "x")
    idx = get_entry(agent, "d")[0]["ModifyIndex"]
    r = agent.delete("/v1/kv/d?cas=0")
    assert r.status == 200 and r.json() is False
    r = agent.delete(f"/v1/kv/d?cas={idx + 7}")
    assert r.status == 200 and r.json() is False
    assert agent.get("/v1/kv/d").status == 200
    assert_text_error(agent.delete(f"/v1/kv/d?recurse&cas={idx}"), 400)
    assert agent.get("/v1/kv/d").status == 200
    r = agent.delete(f"/v1/kv/d?cas={idx}")
    assert r.status == 200 and r.json() is True
    assert agent.get("/v1/kv/d").status == 404


def test_delete_raises_index(agent):
    """A delete raises the index a watcher of that key sees (404 carries a higher index)."""
    agent.put_true("/v1/kv/w", "x")
    idx = get_entry(agent, "w")[0]["ModifyIndex"]
    agent.delete("/v1/kv/w")
    r = agent.get("/v1/kv/w")
    assert r.status == 404
    assert r.index > idx


def test_value_size_limit(agent):
    """512 KiB is accepted; one byte more -> 413 "Request body(<n> bytes) too large"."""
    agent.put_true("/v1/kv/big", b"a" * MAX_VALUE)
    assert len(agent.get("/v1/kv/big?raw").body) == MAX_VALUE
    r = agent.put("/v1/kv/toobig", b"a" * (MAX_VALUE + 1))
    assert_text_error(r, 413, startswith=f"Request body({MAX_VALUE + 1} bytes) too large")
    assert "max size: 524288 bytes" in r.text
    assert agent.get("/v1/kv/toobig").status == 404


def test_percent_encoded_key(agent):
    """Keys are percent-decoded: a%2Fb is the key "a/b" (node-consul's encoding)."""
    agent.put_true("/v1/kv/a%2Fb", "slashed")
    e, _ = get_entry(agent, "a/b")
    assert e["Key"] == "a/b"
    assert get_entry(agent, "a%2Fb")[0]["Value"] == b64("slashed")
    agent.put_true("/v1/kv/with%20space", "s")
    assert get_entry(agent, "with%20space")[0]["Key"] == "with space"
    assert kv_keys(agent) == ["a/b", "with space"]
    r = agent.delete("/v1/kv/a%2Fb")
    assert r.json() is True
    assert kv_keys(agent) == ["with space"]


def test_keys_case_sensitive(agent):
    """KV keys are case-sensitive."""
    agent.put_true("/v1/kv/Foo", "1")
    assert agent.get("/v1/kv/foo").status == 404
    assert agent.get("/v1/kv/Foo").status == 200


def test_put_any_content_type(agent):
    """The body is the raw value whatever the Content-Type."""
    agent.put_true("/v1/kv/form", "a=1&b=2")
    r = agent.req("PUT", "/v1/kv/form2", body=b'{"x":1}',
                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 200 and r.json() is True
    assert agent.get("/v1/kv/form?raw").body == b"a=1&b=2"
    assert agent.get("/v1/kv/form2?raw").body == b'{"x":1}'


def test_seperator_misspelling_accepted(agent):
    """The misspelling "seperator" is accepted too."""
    for k in ("a/x/1", "a/y/2"):
        agent.put_true("/v1/kv/" + k, "v")
    assert agent.get_json("/v1/kv/a/?keys&seperator=/") == ["a/x/", "a/y/"]


def test_raw_ignored_with_recurse(agent):
    """Raw is ignored with recurse (JSON entries come back)."""
    agent.put_true("/v1/kv/r/a", "1")
    r = agent.get("/v1/kv/r/?recurse&raw")
    assert r.status == 200
    assert r.content_type == "application/json"
    assert [e["Key"] for e in r.json()] == ["r/a"]


def test_plain_put_replaces_flags(agent):
    """Without cas/acquire/release a PUT always answers true; the entry is replaced, so
    flags not given are 0 (Consul writes the whole entry)."""
    agent.put_true("/v1/kv/f?flags=9", "a")
    agent.put_true("/v1/kv/f", "b")
    e, _ = get_entry(agent, "f")
    assert e["Value"] == b64("b")
    assert e["Flags"] == 0
