/*
 * Browser suite: every page meshkit serves to a person, loaded in Debian's headless Chromium
 * through playwright-core (no browser download). Started by tests/browser/run.
 *
 * It starts its own processes on free loopback ports and stops them by PID: a `mesh agent -dev
 * -ui`, a second agent with ACLs (default deny), a `webapp` registered with the first agent,
 * an agent as `mesh up -secure` runs them (HTTPS only, client certificates, ACLs deny),
 * a `mesh lb` in front of the webapp (stats page) and one in front of a dead port (503 page).
 * Then it drives the registry UI (services appear live, a TTL check turns critical, KV edit with
 * CAS, filters and deep links, ACL token, 320 px to 2560 px, dark scheme, keyboard), loads the stats
 * page with basic auth, the 503 page and, when `mesh load report` exists, a load-test report.
 * Any JavaScript error or console error fails the scenario that caused it. Screenshots go to
 * $BROWSER_OUT (default <repo>/build-check/browser-screenshots).
 */
'use strict';

const assert = require('node:assert/strict');
const childProcess = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const {chromium} = require('playwright-core');

const REPO = path.resolve(__dirname, '..', '..');
const MESH = process.env.MESH_BIN || path.join(REPO, 'build', 'mesh');
const WEBAPP = path.join(path.dirname(MESH), 'webapp');
const OUT = process.env.BROWSER_OUT || path.join(REPO, 'build-check', 'browser-screenshots');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const HOST = '127.0.0.1';
const WAIT_MS = 10000; /* the longest any single expectation waits */

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mesh-browser-'));
const procs = [];

/* ---- processes ---------------------------------------------------------------------- */

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, HOST, () => {
      const {port} = s.address();
      s.close(() => resolve(port));
    });
  });
}

function start(name, argv) {
  const log = path.join(tmp, name + '.log');
  const fd = fs.openSync(log, 'a');
  const child = childProcess.spawn(argv[0], argv.slice(1), {stdio: ['ignore', fd, fd], cwd: tmp});
  fs.closeSync(fd);
  const p = {name, child, log, exited: false};
  child.on('exit', () => { p.exited = true; });
  procs.push(p);
  return p;
}

async function stop(p) {
  if (p.exited) return;
  p.child.kill('SIGTERM');
  for (let i = 0; i < 50 && !p.exited; i++) await sleep(100);
  if (!p.exited) p.child.kill('SIGKILL');
  for (let i = 0; i < 50 && !p.exited; i++) await sleep(100);
}

async function stopAll() {
  for (const p of procs.slice().reverse()) await stop(p);
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/* One HTTP request: resolves {status, headers, body}. */
function request(port, method, urlPath, opts) {
  opts = opts || {};
  return new Promise((resolve, reject) => {
    const body = opts.body === undefined ? null :
      typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
    const req = http.request({host: HOST, port, method, path: urlPath, headers: opts.headers || {},
                              timeout: 10000}, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({status: res.statusCode, headers: res.headers,
                                   body: Buffer.concat(chunks).toString()}));
    });
    req.on('timeout', () => req.destroy(new Error(`timeout: ${method} ${urlPath}`)));
    req.on('error', reject);
    if (body !== null) req.write(body);
    req.end();
  });
}

async function api(port, method, urlPath, body, headers) {
  const r = await request(port, method, urlPath, {body, headers});
  assert.equal(r.status, 200, `${method} ${urlPath}: ${r.status} ${r.body}`);
  return r.body ? JSON.parse(r.body) : null;
}

/* Polls fn (bounded: at most WAIT_MS) until it returns a truthy value. */
async function until(what, fn, ms) {
  const deadline = Date.now() + (ms || WAIT_MS);
  let last;
  for (let i = 0; i < 1000; i++) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) break;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}; last: ${last}`);
}

async function startAgent(name, extra) {
  const port = await freePort();
  const p = start(name, [MESH, 'agent', '-dev', '-ui', '-node', name, '-http-port', String(port),
                         '-log-level', 'debug', ...extra]);
  p.port = port;
  await until(`${name} ready`, async () => {
    if (p.exited) throw new Error(`${name} exited; log:\n${fs.readFileSync(p.log, 'utf8')}`);
    const r = await request(port, 'GET', '/v1/status/leader');
    return r.status === 200 && JSON.parse(r.body) !== '';
  });
  return p;
}

async function startLB(name, servers, extra) {
  const port = await freePort();
  const stats = await freePort();
  const args = [MESH, 'lb', '-bind', HOST, '-port', String(port), '-stats-addr', HOST,
                '-stats-port', String(stats), '-workers', '1', '-backend', name];
  for (const s of servers) args.push('-server', s);
  const p = start(name, args.concat(extra || []));
  p.port = port;
  p.statsPort = stats;
  await until(`${name} ready`, async () => {
    if (p.exited) throw new Error(`${name} exited; log:\n${fs.readFileSync(p.log, 'utf8')}`);
    const r = await request(stats, 'GET', '/stats;csv', {headers: {Authorization: basic('admin', 'admin')}});
    return r.status === 200;
  });
  return p;
}

/* The status of a GET over HTTPS with the suite's client certificate (agents that verify_incoming). */
function httpsStatus(port, urlPath) {
  const {tlsDir} = env;
  return new Promise((resolve, reject) => {
    const req = https.request({host: HOST, port, path: urlPath, timeout: 10000,
                               ca: fs.readFileSync(path.join(tlsDir, 'consul-agent-ca.pem')),
                               cert: fs.readFileSync(path.join(tlsDir, 'dc1-client-consul-0.pem')),
                               key: fs.readFileSync(path.join(tlsDir, 'dc1-client-consul-0-key.pem'))},
                              (res) => { res.resume(); resolve(res.statusCode); });
    req.on('timeout', () => req.destroy(new Error(`timeout: GET ${urlPath}`)));
    req.on('error', reject);
    req.end();
  });
}

/* An agent as `mesh up -secure` runs them: HTTPS only, client certificates, ACLs deny. */
async function startSecureAgent(name, token) {
  const dir = env.tlsDir = path.join(tmp, 'tls');
  fs.mkdirSync(dir);
  for (const args of [['ca', 'create'], ['cert', 'create', '-server'], ['cert', 'create', '-client']])
    run([MESH, 'tls', ...args], dir);
  const conf = path.join(tmp, 'secure.json');
  fs.writeFileSync(conf, JSON.stringify({
    tls: {defaults: {ca_file: path.join(dir, 'consul-agent-ca.pem'),
                     cert_file: path.join(dir, 'dc1-server-consul-0.pem'),
                     key_file: path.join(dir, 'dc1-server-consul-0-key.pem'), verify_incoming: true}},
    acl: {enabled: true, default_policy: 'deny', tokens: {initial_management: token}}}));
  const port = await freePort();
  const p = start(name, [MESH, 'agent', '-dev', '-ui', '-node', name, '-https-port', String(port),
                         '-http-port', '-1', '-config-file', conf]);
  p.port = port;
  await until(`${name} ready`, async () => {
    if (p.exited) throw new Error(`${name} exited; log:\n${fs.readFileSync(p.log, 'utf8')}`);
    return (await httpsStatus(port, '/v1/status/leader')) === 200;
  });
  return p;
}

function basic(user, pass) {
  return 'Basic ' + Buffer.from(`${user}:${pass}`).toString('base64');
}

function commandWorks(argv) {
  const r = childProcess.spawnSync(argv[0], argv.slice(1), {stdio: 'ignore', timeout: 10000});
  return r.status === 0;
}

/* ---- pages and their errors ---------------------------------------------------------- */

let context;
const shots = [];

/*
 * A new tab that records JavaScript errors and console errors. allow: console errors that the
 * scenario causes on purpose, as [{url: RegExp, status: N}] (Chromium logs every non-2xx
 * fetch as "Failed to load resource: ... status of N").
 */
async function openPage(allow) {
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const url = (m.location() && m.location().url) || '';
    const st = /status of (\d+)/.exec(m.text());
    if (st && (allow || []).some((a) => a.url.test(url) && a.status === Number(st[1]))) return;
    page.errors.push(`console error: ${m.text()} (${url})`);
  });
  return page;
}

async function closePage(page) {
  const errors = page.errors;
  await page.close();
  assert.deepEqual(errors, [], 'the page logged errors');
}

async function shot(page, name) {
  const file = path.join(OUT, name + '.png');
  await page.screenshot({path: file, fullPage: true});
  shots.push(file);
}

/* The document is no wider than the viewport: no layout break, no sideways page scroll. */
async function assertNoOverflow(page, what) {
  const {scroll, view} = await page.evaluate(() => ({scroll: document.documentElement.scrollWidth,
                                                     view: window.innerWidth}));
  assert.ok(scroll <= view, `${what}: page is ${scroll}px wide in a ${view}px viewport`);
}

/* ---- scenarios ---------------------------------------------------------------------- */

const env = {};

async function uiServicesLive() {
  const {agent} = env;
  const page = await openPage();
  /* / redirects to the UI, which opens on the services view. */
  await page.goto(`http://${HOST}:${agent.port}/`);
  assert.match(page.url(), /\/ui\/#\/services$/);
  await page.locator('tr[data-service="web"]').waitFor({timeout: WAIT_MS}); /* the webapp */
  /* Its own check only: the node's serfHealth is the node's, not the service's (1, not 2). */
  const web = page.locator('tr[data-service="web"]');
  await until('service check counts', async () => (await web.locator('td').nth(4).textContent()) === '1');
  assert.equal(await web.locator('td').nth(3).textContent(), '1');

  /* A service registered now appears without a reload. */
  await api(agent.port, 'PUT', '/v1/agent/service/register', {
    Name: 'api', ID: 'api1', Port: 9001, Tags: ['v1', 'internal'],
    Check: {CheckID: 'api-ttl', Name: 'api heartbeat', TTL: '60s'},
  });
  await api(agent.port, 'PUT', '/v1/agent/check/pass/api-ttl?note=heartbeat%20ok');
  const row = page.locator('tr[data-service="api"]');
  await row.locator('.badge.passing').waitFor({timeout: WAIT_MS});
  assert.equal(await row.locator('td').nth(3).textContent(), '1');
  await shot(page, 'ui-services');

  /* Its instance view; then the TTL check fails and turns critical (red) live. */
  await row.locator('a').click();
  await page.waitForURL(/#\/services\/api$/);
  const check = page.locator('[data-check="api-ttl"]');
  await check.locator('.badge.passing').waitFor({timeout: WAIT_MS});
  assert.match(await check.textContent(), /heartbeat ok/);
  const t0 = Date.now();
  await api(agent.port, 'PUT', '/v1/agent/check/fail/api-ttl?note=no%20heartbeat');
  await page.locator('[data-check="api-ttl"][data-status="critical"]').waitFor({timeout: WAIT_MS});
  env.criticalMs = Date.now() - t0;
  /* "Last change" is a time: the change was seen live, so when it happened, not an index. */
  const changed = check.locator('time');
  assert.equal(await changed.getAttribute('data-live'), 'true');
  const at = Date.parse(await changed.getAttribute('datetime'));
  assert.ok(Math.abs(at - Date.now()) < 10 * 60 * 1000, `last change ${at} is not now`);
  assert.match(await changed.textContent(), /^\d{1,2}:\d{2}:\d{2}/);
  assert.doesNotMatch(await check.textContent(), /index \d/);
  const colour = await check.locator('.badge').evaluate((el) => getComputedStyle(el).color);
  const [r, g, b] = colour.match(/\d+/g).map(Number);
  assert.ok(r > 150 && g < 100 && b < 100, `critical badge is not red: ${colour}`);
  assert.match(await check.textContent(), /no heartbeat/);
  await shot(page, 'ui-service-critical');

  /* Deep links carry the filters: only the critical service, only tag v1. */
  await page.goto(`http://${HOST}:${agent.port}/ui/#/services?status=critical`);
  await page.locator('tr[data-service="api"]').waitFor({timeout: WAIT_MS});
  assert.equal(await page.locator('tr[data-service="web"]').count(), 0);
  assert.equal(await page.locator('select[name="status"]').inputValue(), 'critical');
  await page.goto(`http://${HOST}:${agent.port}/ui/#/services?q=we`);
  await page.locator('tr[data-service="web"]').waitFor({timeout: WAIT_MS});
  assert.equal(await page.locator('tr[data-service="api"]').count(), 0);
  /* Typing a filter updates the view and the link. */
  await page.locator('input[name="q"]').fill('ap');
  await page.locator('tr[data-service="api"]').waitFor({timeout: WAIT_MS});
  assert.match(page.url(), /q=ap/);
  await page.locator('select[name="tag"]').selectOption('internal');
  assert.match(page.url(), /tag=internal/);
  assert.equal(await page.locator('tr[data-service]').count(), 1);

  /* A second instance with another tag: the instance view filters by tag too. */
  await api(agent.port, 'PUT', '/v1/agent/service/register', {Name: 'api', ID: 'api2', Port: 9002,
                                                                Tags: ['v2']});
  await page.goto(`http://${HOST}:${agent.port}/ui/#/services/api?tag=v2`);
  await page.locator('[data-instance="api2"]').waitFor({timeout: WAIT_MS});
  assert.equal(await page.locator('[data-instance="api1"]').count(), 0);
  await page.locator('select[name="tag"]').selectOption('');
  await page.locator('[data-instance="api1"]').waitFor({timeout: WAIT_MS});
  assert.doesNotMatch(page.url(), /tag=/);
  await closePage(page);
}

/* The shell and a loading state paint before the registry answers: never an empty page. */
async function uiFirstPaint() {
  const {agent} = env;
  const page = await openPage();
  let release;
  const held = new Promise((resolve) => { release = resolve; });
  await page.route('**/v1/internal/ui/services*', async (route) => {
    await held;
    await route.continue();
  });
  await page.goto(`http://${HOST}:${agent.port}/ui/#/services`);
  await page.locator('main h1', {hasText: 'Services'}).waitFor({timeout: WAIT_MS});
  const wait = page.locator('main .loading[role="status"]');
  await wait.waitFor({timeout: WAIT_MS});
  assert.match(await wait.textContent(), /Loading services/);
  assert.ok(await page.locator('nav a[data-nav="nodes"]').isVisible());
  await shot(page, 'ui-loading');
  release();
  await page.locator('tr[data-service="web"]').waitFor({timeout: WAIT_MS});
  assert.equal(await wait.count(), 0);
  await page.unrouteAll({behavior: 'ignoreErrors'});
  await closePage(page);
}

async function uiNodes() {
  const {agent} = env;
  const page = await openPage();
  await page.goto(`http://${HOST}:${agent.port}/ui/#/nodes`);
  const row = page.locator('tr[data-node="browser"]');
  await row.waitFor({timeout: WAIT_MS});
  assert.match(await row.textContent(), /127\.0\.0\.1/);
  /* The services on it, each a link to its view, shown as text (nothing stringified). */
  assert.equal(await row.locator('a[href="#/services/api"]').textContent(), 'api');
  assert.match(await row.textContent(), /api ×2/); /* api1 and api2, one link */
  assert.doesNotMatch(await row.textContent(), /http:|\[object/);
  /* The registry servers and which one leads: this agent alone, the leader. */
  const server = page.locator('#servers tr[data-server="browser"]');
  await server.waitFor({timeout: WAIT_MS});
  assert.equal(await server.locator('[data-role]').getAttribute('data-role'), 'leader');
  await shot(page, 'ui-nodes');
  await row.locator('a').first().click();
  await page.waitForURL(/#\/nodes\/browser$/);
  await page.locator('tr[data-service="api1"]').waitFor({timeout: WAIT_MS});
  await page.locator('[data-check="serfHealth"][data-status="passing"]').waitFor({timeout: WAIT_MS});
  await shot(page, 'ui-node');
  await closePage(page);
}

async function uiKV() {
  const {agent} = env;
  /* Flags above 2^53 (the Go lock helper's): JSON numbers cannot carry them exactly. */
  await api(agent.port, 'PUT', '/v1/kv/app/config/maxconn?flags=3304740253564472344', '100');
  await api(agent.port, 'PUT', '/v1/kv/app/name', '<b>not html</b>');
  /* A missing key, or an empty folder (?keys), is Consul's 404: the views say "does not exist"
   * or "Nothing under", and Chromium logs the 404. */
  const page = await openPage([{url: /\/v1\/kv\//, status: 404}]);
  await page.goto(`http://${HOST}:${agent.port}/ui/#/kv/`);
  /* A folder's icon is an inline SVG (an emoji is a box without an emoji font). */
  const folder = page.locator('li[data-key="app/"] a');
  await folder.waitFor({timeout: WAIT_MS});
  assert.equal(await folder.locator('svg.icon').count(), 1);
  assert.equal(await folder.textContent(), 'app/');
  await folder.click();
  await page.locator('li[data-key="app/config/"] a').click();
  await page.waitForURL(/#\/kv\/app\/config\/$/);
  await page.locator('li[data-key="app/config/maxconn"] a').click();
  const editor = page.locator('#kv-value');
  await until('value loaded', async () => (await editor.inputValue()) === '100');

  /* Edit and save: the registry has the new value. */
  await editor.fill('200');
  await page.getByRole('button', {name: 'Save'}).click();
  await page.locator('#kv-message .notice.ok').waitFor({timeout: WAIT_MS});
  const got = await api(agent.port, 'GET', '/v1/kv/app/config/maxconn?raw');
  assert.equal(got, 200);
  /* Saving the value keeps the key's flags, exactly (a PUT without ?flags= would zero them). */
  const saved = await request(agent.port, 'GET', '/v1/kv/app/config/maxconn');
  assert.match(saved.body, /"Flags":3304740253564472344[,}]/);
  assert.match(await page.locator('form.kv-form dl.meta').textContent(), /3304740253564472344/);

  /* A concurrent write while editing: the view says so, and the CAS save is refused. */
  await editor.fill('250');
  await api(agent.port, 'PUT', '/v1/kv/app/config/maxconn', '300');
  await page.locator('#kv-message .notice.error').waitFor({timeout: WAIT_MS});
  assert.equal(await editor.inputValue(), '250'); /* the person's text is kept */
  await page.getByRole('button', {name: 'Save'}).click();
  await until('CAS refusal', async () => /Not saved/.test(await page.locator('#kv-message').textContent()));
  assert.equal(await api(agent.port, 'GET', '/v1/kv/app/config/maxconn?raw'), 300);
  await shot(page, 'ui-kv-conflict');
  await page.getByRole('button', {name: 'Load the current value'}).click();
  assert.equal(await editor.inputValue(), '300');

  /* A value that looks like HTML stays text. */
  await page.goto(`http://${HOST}:${agent.port}/ui/#/kv/app/name`);
  await until('value loaded', async () => (await editor.inputValue()) === '<b>not html</b>');
  assert.equal(await page.locator('main b').count(), 0);

  /* Creating a key that exists does not overwrite it (cas=0). */
  await page.goto(`http://${HOST}:${agent.port}/ui/#/kv/app/config/`);
  await page.locator('li[data-key="app/config/maxconn"]').waitFor({timeout: WAIT_MS});
  await page.locator('#new-key').fill('maxconn');
  await page.locator('#new-value').fill('1');
  await page.getByRole('button', {name: 'Create'}).click();
  await page.locator('.notice.error', {hasText: 'already exists'}).waitFor({timeout: WAIT_MS});
  assert.equal(await api(agent.port, 'GET', '/v1/kv/app/config/maxconn?raw'), 300);

  /* Create a key in a folder, then delete it (two steps, with CAS). */
  await page.goto(`http://${HOST}:${agent.port}/ui/#/kv/app/new/`);
  await page.locator('.notice', {hasText: 'Nothing under app/new/'}).waitFor({timeout: WAIT_MS});
  await page.locator('#new-key').fill('flag');
  await page.locator('#new-value').fill('on');
  await page.getByRole('button', {name: 'Create'}).click();
  await page.waitForURL(/#\/kv\/app\/new\/flag$/);
  await until('created', async () => (await editor.inputValue()) === 'on');
  await page.getByRole('button', {name: 'Delete'}).click();
  await page.getByRole('button', {name: 'Really delete?'}).click();
  await page.waitForURL(/#\/kv\/app\/new\/$/);
  const gone = await request(agent.port, 'GET', '/v1/kv/app/new/flag');
  assert.equal(gone.status, 404);
  await closePage(page);
}

async function uiAccessible() {
  const {agent} = env;
  const page = await openPage();
  /* Keyboard: the first Tab reaches the skip link, then the views; Enter follows a link. */
  await page.goto(`http://${HOST}:${agent.port}/ui/#/services`);
  await page.locator('tr[data-service="api"]').waitFor({timeout: WAIT_MS});
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Skip to content');
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Nodes');
  await page.keyboard.press('Enter');
  await page.locator('[data-nav="nodes"][aria-current="page"]').waitFor({timeout: WAIT_MS});
  assert.match(page.url(), /#\/nodes$/);

  /* 320 px wide: nothing sticks out, on each view. */
  await page.setViewportSize({width: 320, height: 640});
  for (const [view, ready] of [['services', 'tr[data-service="api"]'],
                               ['services/api', '[data-check="api-ttl"]'],
                               ['nodes', 'tr[data-node="browser"]'],
                               ['nodes/browser', 'tr[data-service="api1"]'],
                               ['kv/app/', 'li[data-key="app/config/"]'],
                               ['kv/app/config/maxconn', '#kv-value'],
                               ['settings', '#token']]) {
    await page.goto(`http://${HOST}:${agent.port}/ui/#/${view}`);
    await page.locator(ready).first().waitFor({timeout: WAIT_MS});
    await assertNoOverflow(page, view);
  }
  await page.goto(`http://${HOST}:${agent.port}/ui/#/services/api`);
  await page.locator('[data-check="api-ttl"]').waitFor({timeout: WAIT_MS});
  await shot(page, 'ui-service-320px');

  /* A wide screen: the content keeps a readable width, nothing sticks out. */
  await page.setViewportSize({width: 2560, height: 1000});
  await page.goto(`http://${HOST}:${agent.port}/ui/#/services`);
  await page.locator('tr[data-service="api"]').waitFor({timeout: WAIT_MS});
  await assertNoOverflow(page, 'services at 2560 px');
  const mainWidth = await page.locator('main').evaluate((el) => el.getBoundingClientRect().width);
  assert.ok(mainWidth <= 1200, `main is ${mainWidth}px wide on a 2560px screen`);

  /* Dark scheme: dark background, light text. */
  await page.setViewportSize({width: 1280, height: 800});
  await page.emulateMedia({colorScheme: 'dark'});
  await page.goto(`http://${HOST}:${agent.port}/ui/#/services`);
  await page.locator('tr[data-service="api"]').waitFor({timeout: WAIT_MS});
  const [bg, fg] = await page.evaluate(() => [getComputedStyle(document.body).backgroundColor,
                                              getComputedStyle(document.body).color]);
  const lum = (c) => c.match(/\d+/g).slice(0, 3).map(Number).reduce((a, b) => a + b, 0) / 3;
  assert.ok(lum(bg) < 60 && lum(fg) > 180, `dark scheme: background ${bg}, text ${fg}`);
  await shot(page, 'ui-services-dark');
  await page.emulateMedia({colorScheme: 'light'});
  await closePage(page);
}

async function uiACL() {
  const {aclAgent} = env;
  const root = 'root-secret';
  await api(aclAgent.port, 'PUT', '/v1/agent/service/register', {Name: 'billing', Port: 7000},
            {'X-Consul-Token': root});
  await api(aclAgent.port, 'PUT', '/v1/kv/secret/db', 'hunter2', {'X-Consul-Token': root});
  /* Without a token the agent answers 403 on reads it cannot filter: on purpose here. */
  const page = await openPage([{url: /\/v1\//, status: 403}]);
  await page.goto(`http://${HOST}:${aclAgent.port}/ui/#/services`);
  await page.locator('.notice', {hasText: 'no token is set'}).waitFor({timeout: WAIT_MS});
  assert.equal(await page.locator('tr[data-service="billing"]').count(), 0);
  await page.goto(`http://${HOST}:${aclAgent.port}/ui/#/kv/secret/db`);
  const denied = page.locator('.notice.error', {hasText: 'Permission denied'});
  await denied.waitFor({timeout: WAIT_MS});
  assert.match(await denied.textContent(), /lacks key:read/);
  assert.equal(await page.locator('#kv-value').isVisible(), false); /* no empty editor */
  await shot(page, 'ui-acl-denied');

  /* A token from the settings view: stored in the browser, sent with every call. */
  await page.goto(`http://${HOST}:${aclAgent.port}/ui/#/settings`);
  await page.locator('#token').fill(root);
  await page.getByRole('button', {name: 'Save'}).click();
  await page.locator('dd', {hasText: 'global-management'}).waitFor({timeout: WAIT_MS});
  await page.goto(`http://${HOST}:${aclAgent.port}/ui/#/kv/secret/db`);
  await until('value with token', async () => (await page.locator('#kv-value').inputValue()) === 'hunter2');
  /* A refused read in the middle of following (the token stops working), then the token works
   * again: the view recovers at once, not at the registry's next change (a blocking query). */
  await page.evaluate(() => localStorage.setItem('meshkit.token', 'not-a-token'));
  await api(aclAgent.port, 'PUT', '/v1/kv/secret/db', 'hunter3', {'X-Consul-Token': root});
  await denied.waitFor({timeout: WAIT_MS});
  await page.evaluate((t) => localStorage.setItem('meshkit.token', t), root);
  await denied.waitFor({state: 'detached', timeout: WAIT_MS});
  assert.equal(await page.locator('#kv-value').inputValue(), 'hunter3');
  await page.goto(`http://${HOST}:${aclAgent.port}/ui/#/services`);
  await page.locator('tr[data-service="billing"]').waitFor({timeout: WAIT_MS});
  await page.goto(`http://${HOST}:${aclAgent.port}/ui/#/settings`);
  await page.getByRole('button', {name: 'Forget'}).click();
  await closePage(page);
}

/* The UI of a -secure cluster: over HTTPS, the browser presenting the client certificate, and
 * the management token pasted on the ACL token page. */
async function uiSecure() {
  const {secureAgent} = env;
  const base = `https://${HOST}:${secureAgent.port}/ui/`;
  const page = await openPage([{url: /\/v1\//, status: 403}]);
  await page.goto(base + '#/services');
  await page.locator('.notice', {hasText: 'no token is set'}).waitFor({timeout: WAIT_MS});
  assert.equal(await page.locator('tr[data-service="consul"]').count(), 0);
  await page.goto(base + '#/settings');
  await page.locator('#token').fill(env.secureToken);
  await page.getByRole('button', {name: 'Save'}).click();
  await page.locator('dd', {hasText: 'global-management'}).waitFor({timeout: WAIT_MS});
  await page.goto(base + '#/services');
  await page.locator('tr[data-service="consul"]').waitFor({timeout: WAIT_MS});
  await shot(page, 'ui-secure');
  await page.goto(base + '#/settings');
  await page.getByRole('button', {name: 'Forget'}).click();
  await closePage(page);
}

async function lbStats() {
  const {lb} = env;
  const unauth = await request(lb.statsPort, 'GET', '/stats');
  assert.equal(unauth.status, 401);
  /* Some traffic first, so the page has numbers. */
  for (let i = 0; i < 5; i++) assert.equal((await request(lb.port, 'GET', '/')).status, 200);
  const page = await openPage();
  const res = await page.goto(`http://${HOST}:${lb.statsPort}/stats`);
  assert.equal(res.status(), 200);
  await until('backend row', async () => /statsweb/.test(await page.locator('body').textContent()));
  assert.ok(await page.locator('table').count() > 0, 'no table on the stats page');
  await assertNoOverflow(page, 'stats page at 1280 px');
  await shot(page, 'lb-stats');
  await closePage(page);
}

async function lb503() {
  const {lbDead} = env;
  /* The page itself is the 503: that console line is the point of this scenario. */
  const page = await openPage([{url: /.*/, status: 503}]);
  const res = await page.goto(`http://${HOST}:${lbDead.port}/`);
  assert.equal(res.status(), 503);
  const text = (await page.locator('body').textContent()) || '';
  assert.ok(/503/.test(text) && /try again/.test(text), `503 page without status or retry: ${text}`);
  await assertNoOverflow(page, '503 page');
  await shot(page, 'lb-503');
  /* The designed page follows the system's scheme: dark background, light text. */
  await page.emulateMedia({colorScheme: 'dark'});
  const [bg, fg] = await page.evaluate(() => {
    const s = getComputedStyle(document.body);
    return [s.backgroundColor, s.color];
  });
  const lum = (c) => c.match(/\d+/g).slice(0, 3).map(Number).reduce((a, b) => a + b, 0) / 3;
  assert.ok(lum(bg) < 60 && lum(fg) > 180, `503 dark scheme: background ${bg}, text ${fg}`);
  await shot(page, 'lb-503-dark');
  await closePage(page);
}

async function loadReport() {
  const {lb} = env;
  /* Artillery 2's report shape (what `artillery run --output` writes, four 10 s periods). */
  const reports = [['load-report-artillery', path.join(__dirname, 'fixtures', 'artillery-report.json')]];
  if (commandWorks([MESH, 'load', 'run', '-help'])) {
    /* And a real run of two seconds against the load balancer. */
    const scenario = path.join(tmp, 'quick.yml');
    const json = path.join(tmp, 'load.json');
    fs.writeFileSync(scenario, `config:\n  target: "http://${HOST}:${lb.port}"\n  phases:\n` +
      '    - duration: 2\n      arrivalRate: 5\n      name: quick\n' +
      'scenarios:\n  - flow:\n      - get:\n          url: "/"\n');
    run([MESH, 'load', 'run', '--output', json, scenario]);
    reports.push(['load-report', json]);
  }
  for (const [name, json] of reports) {
    const html = path.join(OUT, name + '.html');
    run([MESH, 'load', 'report', json, '-o', html]);
    const page = await openPage();
    await page.goto('file://' + html);
    await until(`${name}: charts`, async () => (await page.locator('svg, canvas').count()) > 0);
    /* Every chart frame is filled: a drawing, or its "nothing to draw" line (errors: none). */
    for (const id of ['rate', 'latency', 'codes', 'errors', 'served']) {
      const n = await page.locator(`#chart-${id} .plot`).locator('svg, .empty').count();
      assert.equal(n, 1, `${name}: chart ${id} was not drawn`);
    }
    assert.ok(await page.locator('#chart-rate .plot path.line').count() > 0,
              `${name}: no request-rate line`);
    await assertNoOverflow(page, name);
    await shot(page, name);
    /* The charts redraw to the width: nothing sticks out at 320 px. */
    await page.setViewportSize({width: 320, height: 900});
    await until(`${name}: redraw at 320 px`, async () => page.evaluate(() => {
      const svg = document.querySelector('#chart-rate svg');
      return svg && svg.viewBox.baseVal.width <= 320;
    }));
    await assertNoOverflow(page, `${name} at 320 px`);
    await shot(page, name + '-320');
    await closePage(page);
  }
}

function run(argv, cwd) {
  const r = childProcess.spawnSync(argv[0], argv.slice(1), {encoding: 'utf8', timeout: 60000, cwd});
  assert.equal(r.status, 0, `${argv.join(' ')} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
}

/* ---- main --------------------------------------------------------------------------- */

async function setup() {
  env.agent = await startAgent('browser', []);
  const aclConf = path.join(tmp, 'acl.json');
  fs.writeFileSync(aclConf, JSON.stringify({acl: {enabled: true, default_policy: 'deny',
                                                  tokens: {initial_management: 'root-secret'}}}));
  env.aclAgent = await startAgent('browser-acl', ['-config-file', aclConf]);
  env.secureToken = 'secure-secret';
  env.secureAgent = await startSecureAgent('browser-secure', env.secureToken);
  const webPort = await freePort();
  const web = start('webapp', [WEBAPP, '-port', String(webPort), '-node', 'browser',
                               '-agent', `${HOST}:${env.agent.port}`]);
  await until('webapp ready', async () => {
    if (web.exited) throw new Error(`webapp exited; log:\n${fs.readFileSync(web.log, 'utf8')}`);
    return (await request(webPort, 'GET', '/health')).status === 200;
  });
  /* Its HTTP check starts critical, as in Consul, until its first run passes. */
  await until('webapp passing', async () => {
    const r = await request(env.agent.port, 'GET', '/v1/health/service/web?passing');
    return r.status === 200 && JSON.parse(r.body).length === 1;
  }, 20000);
  env.lb = await startLB('statsweb', [`${HOST}:${webPort}`]);
  const dead = await freePort(); /* nothing listens there */
  env.lbDead = await startLB('nowhere', [`${HOST}:${dead}`], ['-retries', '0', '-check=false']);
}

async function main() {
  fs.mkdirSync(OUT, {recursive: true});
  /* Last run's pictures and pages would pass for this run's (FAILED-* ones above all). */
  for (const f of fs.readdirSync(OUT))
    if (/\.(png|html)$/.test(f)) fs.rmSync(path.join(OUT, f), {force: true});
  const scenarios = [['ui: services appear live, a TTL check turns critical, filters', uiServicesLive],
                     ['ui: first paint: shell and loading state', uiFirstPaint],
                     ['ui: nodes and one node', uiNodes],
                     ['ui: KV browse, edit, CAS conflict, create, delete', uiKV],
                     ['ui: keyboard, 320 px, dark scheme', uiAccessible],
                     ['ui: ACL token and 403', uiACL],
                     ['ui: a -secure agent over HTTPS with a client certificate', uiSecure],
                     ['lb: stats page with basic auth', lbStats],
                     ['lb: 503 page', lb503]];
  const skipped = [];
  if (commandWorks([MESH, 'load', 'report', '-help'])) scenarios.push(['load: HTML report', loadReport]);
  else skipped.push('load: HTML report (`mesh load report` is not in this build)');

  let passed = 0;
  let failed = 0;
  const userData = path.join(tmp, 'chromium-profile');
  try {
    await setup();
    context = await chromium.launchPersistentContext(userData, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
             '--disable-component-update', '--disable-sync'],
      viewport: {width: 1280, height: 800},
      httpCredentials: {username: 'admin', password: 'admin'},
      /* The secure agent asks for a client certificate; its CA is the suite's own. */
      clientCertificates: [{origin: `https://${HOST}:${env.secureAgent.port}`,
                            certPath: path.join(env.tlsDir, 'dc1-client-consul-0.pem'),
                            keyPath: path.join(env.tlsDir, 'dc1-client-consul-0-key.pem')}],
      ignoreHTTPSErrors: true,
    });
    for (const [name, fn] of scenarios) {
      const t0 = Date.now();
      try {
        await fn();
        passed++;
        console.log(`ok - ${name} (${Date.now() - t0} ms)`);
      } catch (e) {
        failed++;
        console.log(`not ok - ${name}\n  ${String(e.stack || e).split('\n').join('\n  ')}`);
        /* What the pages showed when it failed, then a clean slate for the next scenario. */
        for (const [i, p] of context.pages().filter((x) => x.url() !== 'about:blank').entries()) {
          await shot(p, `FAILED-${name.replace(/[^a-z0-9]+/gi, '-')}-${i}`).catch(() => {});
          await p.close().catch(() => {});
        }
      }
    }
  } catch (e) {
    failed++;
    console.log(`not ok - setup\n  ${e.stack || e}`);
  } finally {
    if (context) await context.close();
    await stopAll();
  }
  for (const s of skipped) console.log(`skip - ${s}`);
  /* A sanitizer build reports memory errors and UB in the logs: that fails the suite too. */
  for (const p of procs) {
    const text = fs.readFileSync(p.log, 'utf8');
    if (/ERROR: (Address|Leak)Sanitizer|runtime error:/.test(text)) {
      failed++;
      console.log(`not ok - ${p.name} log has a sanitizer report:\n${text.slice(-4000)}`);
    }
  }
  if (failed) {
    for (const p of procs) console.log(`--- ${p.name} log (tail) ---\n${fs.readFileSync(p.log, 'utf8').slice(-2000)}`);
  }
  if (env.criticalMs !== undefined)
    console.log(`check failed -> red in the UI: ${env.criticalMs} ms (not asserted)`);
  console.log(`screenshots: ${OUT} (${shots.length})`);
  console.log(`browser: ${passed} passed, ${failed} failed` + (skipped.length ? `, ${skipped.length} skipped` : ''));
  fs.rmSync(tmp, {recursive: true, force: true});
  process.exitCode = failed ? 1 : 0;
}

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    for (const p of procs) if (!p.exited) p.child.kill('SIGKILL');
    process.exit(130);
  });
}

main();
