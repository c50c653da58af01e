// Compatibility test: the npm `consul` client (silas/node-consul 2.x) against `mesh agent`.
// Usage: node compat.js PORT CLIENT_PORT. Exits 0 when every step passes, 1 with a message
// otherwise. PORT is the agent under test: a lone server, or a follower or a client agent of a
// cluster. CLIENT_PORT is a client agent started without -join. The environment describes a
// cluster (defaults: the lone server):
//   COMPAT_PEERS        its servers' replication addresses, comma-separated (127.0.0.1:8300)
//   COMPAT_JOIN         the server address the lone client joins (127.0.0.1:PORT)
//   COMPAT_CLIENT_NODE  the lone client's node name (compat-client)
//   COMPAT_OWNER_PORT   the client agent that registers the services, when PORT is a server
//                       of a cluster (which refuses them: docs/replication.md)
// Contract: docs/api.md and docs/agent.md.
"use strict";

const assert = require("assert");
const Consul = require("consul");

const port = Number(process.argv[2] || process.env.MESH_HTTP_PORT);
const clientPort = Number(process.argv[3]);
if (![port, clientPort].every((p) => Number.isInteger(p) && p > 0)) {
  console.error("usage: node compat.js PORT CLIENT_PORT");
  process.exit(2);
}

const consul = new Consul({ host: "127.0.0.1", port });
const client = new Consul({ host: "127.0.0.1", port: clientPort });
const ownerPort = Number(process.env.COMPAT_OWNER_PORT || port);
const owner = ownerPort === port ? consul : new Consul({ host: "127.0.0.1", port: ownerPort });
const CLIENT_NODE = process.env.COMPAT_CLIENT_NODE || "compat-client";
const PEERS = (process.env.COMPAT_PEERS || "127.0.0.1:8300").split(",").sort();
const JOIN = process.env.COMPAT_JOIN || `127.0.0.1:${port}`;
const SVC = "compat-web";
const SID = "compat-web-1";
const CHECK = `service:${SID}`;
let current = "start";

function step(name) {
  current = name;
  console.log(`compat: ${name}`);
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Resolves with the first value of `events` (emitted by a watch) that satisfies pred.
function waitForChange(watch, pred, timeoutMs, what) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`watch: no change matching "${what}" within ${timeoutMs} ms`));
    }, timeoutMs);
    const onChange = (data, res) => {
      if (pred(data, res)) {
        cleanup();
        resolve({ data, res });
      }
    };
    const onError = (err) => {
      cleanup();
      reject(new Error(`watch error: ${err.message}`));
    };
    function cleanup() {
      clearTimeout(timer);
      watch.removeListener("change", onChange);
      watch.removeListener("error", onError);
    }
    watch.on("change", onChange);
    watch.on("error", onError);
  });
}

async function agentAndStatus() {
  step("status.leader / status.peers");
  const leader = await consul.status.leader();
  assert.ok(PEERS.includes(leader), `leader ${leader} is not one of ${PEERS}`);
  assert.deepStrictEqual((await consul.status.peers()).sort(), PEERS);

  step("agent.self / agent.members: every server, all alive");
  const self = await consul.agent.self();
  assert.strictEqual(typeof self.Config.NodeName, "string");
  const members = await consul.agent.members();
  assert.ok(members.some((m) => m.Name === self.Config.NodeName), "members lack the agent");
  assert.ok(members.every((m) => m.Status === 1), "a member is not alive");
  assert.strictEqual(members.filter((m) => m.Tags.role === "consul").length, PEERS.length);
}

async function services() {
  if (owner !== consul) {
    step("agent.service.register on a server of a cluster: 500, register through a client");
    await assert.rejects(consul.agent.service.register({ name: SVC, id: SID }), (err) =>
      err.response.statusCode === 500 && /through a client agent/.test(String(err.response.body)));
  }
  step("agent.service.register with a TTL check");
  await owner.agent.service.register({
    name: SVC,
    id: SID,
    port: 3000,
    tags: ["compat", "v1"],
    check: { ttl: "30s" },
  });
  const svcs = await owner.agent.service.list();
  assert.ok(svcs[SID], `agent.service.list lacks ${SID}`);
  assert.strictEqual(svcs[SID].Service, SVC);
  assert.strictEqual(svcs[SID].Port, 3000);

  step("agent.check.list: new TTL check is critical");
  let checks = await owner.agent.check.list();
  assert.ok(checks[CHECK], `no check ${CHECK}`);
  assert.strictEqual(checks[CHECK].Status, "critical");

  step("health.service passing=true excludes it while critical");
  assert.deepStrictEqual(await consul.health.service({ service: SVC, passing: true }), []);

  step("agent.check.pass");
  await owner.agent.check.pass({ id: CHECK, note: "compat ok" });
  checks = await owner.agent.check.list();
  assert.strictEqual(checks[CHECK].Status, "passing");
  assert.strictEqual(checks[CHECK].Output, "compat ok");

  step("catalog.service.list / catalog.service.nodes");
  const list = await consul.catalog.service.list();
  assert.deepStrictEqual(list.consul, []);
  assert.deepStrictEqual([...list[SVC]].sort(), ["compat", "v1"]);
  const nodes = await consul.catalog.service.nodes(SVC);
  assert.strictEqual(nodes.length, 1);
  assert.strictEqual(nodes[0].ServiceID, SID);
  assert.strictEqual(nodes[0].ServicePort, 3000);
  const tagged = await consul.catalog.service.nodes({ service: SVC, tag: "COMPAT" });
  assert.strictEqual(tagged.length, 1, "tag filter is case-insensitive");

  step("health.service passing=true");
  const healthy = await consul.health.service({ service: SVC, passing: true });
  assert.strictEqual(healthy.length, 1);
  assert.strictEqual(healthy[0].Service.ID, SID);
  const ids = healthy[0].Checks.map((c) => c.CheckID).sort();
  assert.deepStrictEqual(ids, [CHECK, "serfHealth"].sort());
  assert.ok(healthy[0].Checks.every((c) => c.Status === "passing"));

  step("health.node: serfHealth first");
  const nodeChecks = await consul.health.node(self_node(nodes));
  assert.strictEqual(nodeChecks[0].CheckID, "serfHealth");

  step("health.state critical/any");
  assert.deepStrictEqual(await consul.health.state("critical"), []);
  const own = (await consul.health.state("any")).filter((c) => c.Node === self_node(nodes));
  assert.deepStrictEqual(own.map((c) => c.CheckID).sort(), [CHECK, "serfHealth"].sort());
}

function self_node(nodes) {
  return nodes[0].Node;
}

async function kv() {
  step("kv.set / kv.get");
  assert.strictEqual(await consul.kv.set("compat/x/1", "v1"), true);
  assert.strictEqual(await consul.kv.set("compat/y/2", "v2"), true);
  const e = await consul.kv.get("compat/x/1");
  assert.ok(e, "kv.get returned nothing");
  assert.strictEqual(e.Key, "compat/x/1");
  assert.strictEqual(e.Value, "v1");
  assert.deepStrictEqual(
    Object.keys(e).sort(),
    ["CreateIndex", "Flags", "Key", "LockIndex", "ModifyIndex", "Value"],
  );

  step("kv.set with flags and cas");
  assert.strictEqual(await consul.kv.set("compat/flags", "f", { flags: 42 }), true);
  assert.strictEqual((await consul.kv.get("compat/flags")).Flags, 42);
  // A failed cas answers `false`; papi resolves a falsy body as undefined, so check the value.
  assert.notStrictEqual(await consul.kv.set("compat/flags", "g", { cas: 0 }), true);
  assert.strictEqual((await consul.kv.get("compat/flags")).Value, "f");

  step("kv.get recurse");
  const all = await consul.kv.get({ key: "compat/", recurse: true });
  assert.deepStrictEqual(
    all.map((x) => x.Key),
    ["compat/flags", "compat/x/1", "compat/y/2"],
  );

  step("kv.keys with and without separator");
  assert.deepStrictEqual(await consul.kv.keys("compat/"), [
    "compat/flags",
    "compat/x/1",
    "compat/y/2",
  ]);
  assert.deepStrictEqual(await consul.kv.keys({ key: "compat/", separator: "/" }), [
    "compat/flags",
    "compat/x/",
    "compat/y/",
  ]);

  step("kv.get missing key -> undefined (404)");
  assert.strictEqual(await consul.kv.get("compat/missing"), undefined);

  step("kv.del");
  assert.strictEqual(await consul.kv.del("compat/x/1"), true);
  assert.strictEqual(await consul.kv.get("compat/x/1"), undefined);
  assert.strictEqual(await consul.kv.del({ key: "compat/", recurse: true }), true);
  assert.deepStrictEqual(await consul.kv.keys(""), []);
}

async function watchKv() {
  step("watch kv.get: sees the key appear, change and go away");
  const key = "compat/watched";
  const watch = consul.watch({
    method: consul.kv.get,
    options: { key, wait: "2s" },
    backoffFactor: 100,
    maxAttempts: 3,
  });
  try {
    // First answer: the key is missing (404 with an index), data undefined.
    await waitForChange(watch, (data) => data === undefined, 5000, "initial 404");
    const appeared = waitForChange(watch, (d) => d && d.Value === "one", 5000, "value one");
    await sleep(200);
    await consul.kv.set(key, "one");
    const a = await appeared;
    const idxA = BigInt(a.res.headers["x-consul-index"]);
    const changed = waitForChange(watch, (d) => d && d.Value === "two", 5000, "value two");
    await sleep(200);
    const t0 = Date.now();
    await consul.kv.set(key, "two");
    const b = await changed;
    assert.ok(Date.now() - t0 < 1500, "watch woke late");
    const idxB = BigInt(b.res.headers["x-consul-index"]);
    assert.ok(idxB > idxA, `index did not grow: ${idxA} -> ${idxB}`);
    const gone = waitForChange(watch, (d) => d === undefined, 5000, "deleted (404)");
    await sleep(200);
    await consul.kv.del(key);
    const c = await gone;
    const idxC = BigInt(c.res.headers["x-consul-index"]);
    assert.ok(idxC > idxB, `delete did not raise the index: ${idxB} -> ${idxC}`);
  } finally {
    watch.end();
  }
}

// Polls fn until it resolves truthy (at most timeoutMs), for what another agent does on its own.
async function eventually(fn, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await sleep(100);
  }
}

async function memberStatus(agent, node) {
  const m = (await agent.agent.members()).find((x) => x.Name === node);
  return m ? m.Status : undefined;
}

async function joinAndForceLeave() {
  step("agent.members on a client that has not joined: itself");
  const alone = await client.agent.members();
  assert.deepStrictEqual(alone.map((m) => [m.Name, m.Status]), [[CLIENT_NODE, 1]]);

  step("agent.join through the client");
  await client.agent.join(JOIN);
  await eventually(async () => (await memberStatus(consul, CLIENT_NODE)) === 1, 10000,
    "client alive on the server");
  assert.ok(await consul.catalog.node.services(CLIENT_NODE), "client node not in the catalog");

  step("agent.forceLeave of the live client: leaving, keeps its node, alive again");
  const before = (await consul.catalog.node.services(CLIENT_NODE)).Node.CreateIndex;
  await consul.agent.forceLeave(CLIENT_NODE);
  // Serf's status 2, unless the client's next heartbeat already made it alive again.
  assert.ok([1, 2].includes(await memberStatus(consul, CLIENT_NODE)), "not leaving nor alive");
  assert.strictEqual((await consul.catalog.node.services(CLIENT_NODE)).Node.CreateIndex, before);
  await eventually(async () => (await memberStatus(consul, CLIENT_NODE)) === 1, 10000,
    "client alive again");
  assert.strictEqual((await consul.catalog.node.services(CLIENT_NODE)).Node.CreateIndex, before);
}

async function perResourceBlocking() {
  step("health.service watch: waits while another service changes, wakes on its own");
  await consul.catalog.register({ Node: "compat-n1", Address: "10.0.0.1",
    Service: { ID: "db1", Service: "compat-db" } });
  const watch = consul.watch({
    method: consul.health.service,
    options: { service: "compat-db", wait: "1s" },
    backoffFactor: 100,
    maxAttempts: 3,
  });
  try {
    const first = await waitForChange(watch, (d) => d && d.length === 1, 5000, "one db");
    const idx = BigInt(first.res.headers["x-consul-index"]);
    let woke = null;
    const onChange = (d, res) => { woke = woke || BigInt(res.headers["x-consul-index"]); };
    watch.on("change", onChange);
    await consul.catalog.register({ Node: "compat-n1", Address: "10.0.0.1",
      Service: { ID: "other1", Service: "compat-other" } });
    // Long enough for the watch to come back from its 1 s waits: each answer carries db's
    // index, unchanged, so no change is emitted.
    await sleep(2500);
    watch.removeListener("change", onChange);
    assert.strictEqual(woke, null, "a change to compat-other woke the compat-db watch");
    const grown = waitForChange(watch, (d) => d && d.length === 2, 5000, "two db");
    await consul.catalog.register({ Node: "compat-n2", Address: "10.0.0.2",
      Service: { ID: "db2", Service: "compat-db" } });
    const second = await grown;
    assert.ok(BigInt(second.res.headers["x-consul-index"]) > idx, "index did not grow");
  } finally {
    watch.end();
  }
  await consul.catalog.deregister({ Node: "compat-n1" });
  await consul.catalog.deregister({ Node: "compat-n2" });
}

async function preparedQueries() {
  step("query.list on no queries: []");
  assert.deepStrictEqual(await consul.query.list(), []);

  step("query.create / get / update / execute / explain / destroy");
  const created = await consul.query.create({
    name: "compat-q",
    service: { service: SVC, onlyPassing: true, failover: { nearestN: 2 } },
    dns: { ttl: "10s" },
  });
  assert.match(created.ID, /^[0-9a-f-]{36}$/);
  const q = await consul.query.get(created.ID);
  assert.strictEqual(q.Name, "compat-q");
  assert.strictEqual(q.Service.Service, SVC);
  assert.strictEqual(q.Service.Failover.NearestN, 2);
  assert.strictEqual(q.DNS.TTL, "10s");
  await consul.query.update({ query: created.ID, name: "compat-q",
    service: { service: SVC, tags: ["v1"] } });
  assert.deepStrictEqual((await consul.query.get(created.ID)).Service.Tags, ["v1"]);
  const ran = await consul.query.execute("compat-q");
  assert.strictEqual(ran.Service, SVC);
  assert.deepStrictEqual(ran.Nodes.map((e) => e.Service.ID), [SID]);
  // node-consul 2.0.1 takes the first element of a list here, so Consul's {"Query": {...}}
  // resolves undefined: the call must succeed, the shape is checked by tests/e2e/test_query.py.
  await consul.query.explain(created.ID);
  assert.deepStrictEqual((await consul.query.list()).map((x) => x.ID), [created.ID]);
  await consul.query.destroy(created.ID);
  assert.deepStrictEqual(await consul.query.list(), []);
}

async function cleanup() {
  step("agent.service.deregister");
  await owner.agent.service.deregister(SID);
  assert.deepStrictEqual(await consul.catalog.service.nodes(SVC), []);
  const checks = await owner.agent.check.list();
  assert.ok(!checks[CHECK], "check survived its service");
}

async function main() {
  await agentAndStatus();
  await services();
  await kv();
  await watchKv();
  await joinAndForceLeave();
  await perResourceBlocking();
  await preparedQueries();
  await cleanup();
}

const overall = setTimeout(() => {
  console.error(`compat: FAIL: timed out during "${current}"`);
  process.exit(1);
}, 60000);

main().then(
  () => {
    clearTimeout(overall);
    consul.destroy();
    client.destroy();
    owner.destroy();
    console.log("compat: all steps passed");
    process.exit(0);
  },
  (err) => {
    clearTimeout(overall);
    console.error(`compat: FAIL in "${current}": ${err && err.stack ? err.stack : err}`);
    process.exit(1);
  },
);
