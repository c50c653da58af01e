"""Compressed answers (Consul's HTTP API gzips a body of 1,400 bytes or more for a client
sending Accept-Encoding: gzip, as Go's HTTP client does by default)."""

import gzip
import json

from helpers import run_blocking

GZIP = {"Accept-Encoding": "gzip"}


def fill_kv(agent, n=40):
    for i in range(n):
        agent.put_true(f"/v1/kv/app/key{i:02d}", f"value number {i} " * 4)


def test_large_answer_is_gzip_and_equal_to_the_plain_one(agent):
    fill_kv(agent)
    plain = agent.get("/v1/kv/app?recurse")
    assert plain.status == 200 and len(plain.body) >= 1400
    assert plain.header("Content-Encoding") is None
    assert plain.header("Vary") == "Accept-Encoding"
    z = agent.get("/v1/kv/app?recurse", headers=GZIP)
    assert z.status == 200
    assert z.header("Content-Encoding") == "gzip" and z.header("Vary") == "Accept-Encoding"
    assert int(z.header("Content-Length")) == len(z.body) < len(plain.body)
    assert gzip.decompress(z.body) == plain.body
    assert z.header("X-Consul-Index") == plain.header("X-Consul-Index")


def test_what_is_compressed_follows_size_and_q_values(agent):
    fill_kv(agent)
    small = agent.get("/v1/status/leader", headers=GZIP)
    assert small.status == 200 and small.header("Content-Encoding") is None
    assert json.loads(small.body)
    for accept, compressed in (("gzip;q=0", False), ("deflate, br", False), ("*", False),
                               ("deflate;q=0.5, GZIP;q=0.8", True), ("br, gzip", True),
                               ("gzip;foo=1;q=0", False)):
        r = agent.get("/v1/kv/app?recurse", headers={"Accept-Encoding": accept})
        assert (r.header("Content-Encoding") == "gzip") == compressed, accept
        body = gzip.decompress(r.body) if compressed else r.body
        assert len(json.loads(body)) == 40
    # Answers a handler gives itself (not a catalog or KV read) are compressed alike.
    self_ = agent.get("/v1/agent/self", headers=GZIP)
    assert self_.header("Content-Encoding") == "gzip"
    assert json.loads(gzip.decompress(self_.body))["Config"]["NodeName"] == "node1"
    # HEAD carries no body: nothing to compress.
    head = agent.req("HEAD", "/v1/kv/app?recurse", headers=GZIP)
    assert head.status == 200 and head.header("Content-Encoding") is None


def test_blocking_watchers_get_their_own_encoding(agent):
    fill_kv(agent)
    first = agent.get("/v1/kv/app?recurse")
    path = f"/v1/kv/app?recurse&index={first.index}&wait=30s"
    zipped = run_blocking(lambda: agent.get(path, headers=GZIP, timeout=40))
    plain = run_blocking(lambda: agent.get(path, timeout=40))
    agent.put_true("/v1/kv/app/key00", "changed")
    (z, _), (p, _) = zipped(), plain()
    assert z.status == p.status == 200
    assert z.index > first.index and z.index == p.index
    assert z.header("Content-Encoding") == "gzip" and p.header("Content-Encoding") is None
    assert gzip.decompress(z.body) == p.body == agent.get("/v1/kv/app?recurse").body
