"""How the registry keeps its memory small (issue 18 item 4): freed heap goes back to the
kernel after a large answer, and stored values keep every byte across a restart."""
from helpers import wait_until


def heap_trims(agent):
    for m in agent.get_json("/v1/agent/metrics")["Counters"]:
        if m["Name"] == "mesh.runtime.heap_trims":
            return m["Count"]
    raise AssertionError("no mesh.runtime.heap_trims counter")


def test_large_answer_gives_heap_back(agent):
    """A large answer leaves its JSON tree freed in the heap: the agent trims once after it;
    small answers never ask for a trim."""
    for i in range(20):
        agent.put_true(f"/v1/kv/small/{i}", "v")
    agent.get_json("/v1/kv/small?recurse")
    assert heap_trims(agent) == 0
    agent.put_true("/v1/kv/big", "x" * (80 << 10))
    r = agent.get("/v1/kv/big")
    assert r.status == 200 and len(r.body) > (100 << 10)
    wait_until(lambda: heap_trims(agent) == 1, 10, what="one heap trim after the large answer")
