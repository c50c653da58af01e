/*
 * meshkit registry UI: plain JavaScript against the agent's own HTTP API, no framework.
 *
 * - A hash router (#/services, #/services/web, #/nodes/web1, #/kv/app/config/, #/settings);
 *   filters live in the hash too (#/services?status=critical), so every view is a link.
 * - Each view follows the registry through blocking queries (?index=N&wait=5m): the request
 *   returns as soon as something changes, and the view re-renders. The view's AbortController
 *   cancels its queries when the view changes. Errors retry with a growing pause (not a poll).
 * - Every string from the API goes into the page through textContent or attributes, never HTML.
 * - The ACL token (stored in this browser) rides on every API call as X-Consul-Token.
 */
'use strict';

const TOKEN_KEY = 'meshkit.token';
const WAIT = '5m';

/* ---- DOM helpers ---------------------------------------------------------------------- */

/* h('a', {href: '#/x', class: 'y'}, 'text', child...): an element; strings become text nodes. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/* Replaces el's children; arrays (of arrays) of nodes and strings are flattened. */
function fill(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== undefined && c !== null &&
                                                              c !== false && c !== ''));
}

function badge(status) {
  return h('span', {class: 'badge ' + status, 'data-status': status}, status);
}

/* What a view shows until its first answer: the page is never blank while the registry thinks. */
function loading(what) {
  return h('p', {class: 'loading muted', role: 'status'}, `Loading ${what}\u2026`);
}

/* An inline SVG icon (no font or image to fetch): a folder. Decorative: hidden from readers,
 * the text beside it says what it is. */
function folderIcon() {
  const NS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(NS, 'svg');
  for (const [k, v] of Object.entries({class: 'icon', viewBox: '0 0 16 16', width: '16', height: '16',
                                       'aria-hidden': 'true', focusable: 'false'}))
    svg.setAttribute(k, v);
  const path = document.createElementNS(NS, 'path');
  path.setAttribute('d', 'M1.5 3.5A1.5 1.5 0 0 1 3 2h3.4l1.6 1.8H13a1.5 1.5 0 0 1 1.5 1.5v7.2A1.5 ' +
                         '1.5 0 0 1 13 14H3a1.5 1.5 0 0 1-1.5-1.5z');
  svg.append(path);
  return svg;
}

function notice(kind, ...text) {
  return h('div', {class: 'notice ' + kind, role: kind === 'error' ? 'alert' : 'status'}, ...text);
}

function table(headers, rows, label) {
  /* Each cell names its column, for the stacked layout of narrow screens (app.css). */
  for (const tr of rows) {
    [...tr.children].forEach((td, i) => {
      td.setAttribute('data-label', headers[i]);
      td.append(h('div', {}, [...td.childNodes])); /* one box beside the label */
    });
  }
  return h('div', {class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': label},
           h('table', {}, h('thead', {}, h('tr', {}, headers.map((t) => h('th', {scope: 'col'}, t)))),
             h('tbody', {}, rows)));
}

/* Worst of a list of statuses: critical > warning > passing. */
function worst(statuses) {
  if (statuses.includes('critical')) return 'critical';
  if (statuses.includes('warning')) return 'warning';
  return 'passing';
}

/* ---- the API ------------------------------------------------------------------------ */

function token() {
  try {
    return localStorage.getItem(TOKEN_KEY) || '';
  } catch (e) {
    return ''; /* storage disabled: no token */
  }
}

/* An API error with what the UI shows for it. */
class ApiError extends Error {
  constructor(status, body, path) {
    super(body || ('HTTP ' + status));
    this.status = status;
    this.path = path;
  }
}

/* Encodes a KV key or name for a URL path, keeping its slashes. */
function encPath(s) {
  return s.split('/').map(encodeURIComponent).join('/');
}

async function api(path, opts) {
  opts = opts || {};
  const headers = {};
  const t = token();
  if (t) headers['X-Consul-Token'] = t;
  const res = await fetch(path, {method: opts.method || 'GET', body: opts.body, headers,
                                 signal: opts.signal, cache: 'no-store'});
  const text = await res.text();
  const out = {
    status: res.status,
    index: Number(res.headers.get('X-Consul-Index') || 0),
    filtered: res.headers.get('X-Consul-Results-Filtered-By-ACLs') === 'true',
    defaultPolicy: res.headers.get('X-Consul-Default-ACL-Policy') || 'allow',
    data: null,
    text, /* the body as sent: numbers JSON.parse would round (KV flags) are read from it */
  };
  if (res.ok) {
    out.data = text ? JSON.parse(text) : null;
    return out;
  }
  if (res.status === 404 && opts.notFoundOk) return out;
  throw new ApiError(res.status, text.trim(), path);
}

/*
 * Follows a blocking query: calls onData(result) with each new answer, onError(err) on failure
 * (then retries after 1 s, 2 s, ... up to 10 s). Stops when signal aborts. Consul's rules: an
 * index that goes backwards resets to 0; the index is never sent as 0 after the first answer.
 * After a failure the retry does not block: the view shows the error until the next answer,
 * and a blocking read would keep it there until the registry next changes.
 */
async function follow(path, signal, onData, onError, opts) {
  let index = 0;
  let pause = 1000;
  const sep = path.includes('?') ? '&' : '?';
  while (!signal.aborted) {
    let r;
    try {
      const url = index > 0 ? `${path}${sep}index=${index}&wait=${WAIT}` : path;
      r = await api(url, Object.assign({signal}, opts));
    } catch (e) {
      if (signal.aborted || e.name === 'AbortError') return;
      if (e instanceof ApiError) onError(e);
      else setLive(false);
      index = 0;
      await sleep(pause, signal);
      pause = Math.min(pause * 2, 10000);
      continue;
    }
    if (signal.aborted) return;
    pause = 1000;
    setLive(true, r.index);
    if (r.index < index) index = 0; /* the registry restarted: start over */
    const changed = r.index !== index || index === 0;
    index = Math.max(r.index, 1);
    try {
      if (changed) onData(r);
    } catch (e) {
      reportError(e); /* a bug in a view: surface it as uncaught, keep following */
    }
  }
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, {once: true});
  });
}

/* The connection state is announced (role=status) only when it changes; the index is not. */
function setLive(ok, index) {
  const el = document.getElementById('live');
  const text = ok ? 'live' : 'registry unreachable, retrying';
  if (el.textContent !== text) el.textContent = text;
  el.parentElement.className = 'live ' + (ok ? 'ok' : 'bad');
  document.getElementById('index').textContent = ok ? `· index ${index}` : '';
}

/* What a failed call means to the person looking. */
function explain(err) {
  if (err.status === 403) {
    const missing = /lacks permission '([^']+)'/.exec(err.message);
    const what = missing ? `The ACL token in use lacks ${missing[1]}.` :
      err.message === 'ACL not found' ? 'The registry does not know the ACL token in use.' :
      'The ACL token in use is not allowed to do this.';
    return notice('error', h('strong', {}, 'Permission denied. '), what + ' ',
                  h('a', {href: '#/settings'}, 'Set a token'), ' ',
                  h('span', {class: 'muted'}, `(${err.message})`));
  }
  return notice('error', `The registry answered ${err.status}: ${err.message}`);
}

function filteredNote(r) {
  if (r.filtered) return notice('', 'Some entries are hidden: the ACL token lacks read permission on them.');
  if (r.defaultPolicy === 'deny' && !token())
    return notice('', 'ACLs deny by default here and no token is set: ',
                  h('a', {href: '#/settings'}, 'set a token'), ' to see more.');
  return null;
}

/* ---- routing ------------------------------------------------------------------------ */

let current = null; /* {abort: AbortController} of the view on screen */

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const q = raw.indexOf('?');
  const path = q < 0 ? raw : raw.slice(0, q);
  const params = new URLSearchParams(q < 0 ? '' : raw.slice(q + 1));
  const slash = path.indexOf('/');
  const view = slash < 0 ? path : path.slice(0, slash);
  let rest = slash < 0 ? '' : path.slice(slash + 1);
  try {
    rest = decodeURIComponent(rest);
  } catch (e) {
    /* a hand-typed bad escape: use it as written */
  }
  return {view: view || 'services', rest, params};
}

/* Rewrites the hash's query (filters) without adding a history entry or re-routing. */
function setParams(params) {
  const r = parseHash();
  const base = '#/' + r.view + (r.rest ? '/' + encPath(r.rest) : '');
  const qs = params.toString();
  history.replaceState(null, '', base + (qs ? '?' + qs : ''));
}

const views = {services: viewServices, nodes: viewNodes, kv: viewKV, settings: viewSettings};

function route() {
  if (current) current.abort();
  current = new AbortController();
  const r = parseHash();
  const main = document.getElementById('main');
  fill(main);
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === r.view) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const fn = views[r.view];
  if (!fn) {
    main.append(h('h1', {}, 'Not found'), notice('error', `There is no view "${r.view}". `,
                                                h('a', {href: '#/services'}, 'Services')));
    return;
  }
  fn(main, r, current.signal);
}

/* ---- filters ------------------------------------------------------------------------ */

/* A filter bar whose values live in the hash. onChange re-renders from the last data. */
function filterBar(params, fields, onChange) {
  const bar = h('form', {class: 'filters', role: 'search', onsubmit: (e) => e.preventDefault()});
  const inputs = {};
  for (const f of fields) {
    let input;
    if (f.options) {
      input = h('select', {name: f.name}, f.options.map(([v, label]) => h('option', {value: v}, label)));
    } else {
      input = h('input', {name: f.name, type: 'search', placeholder: f.placeholder || '',
                          autocomplete: 'off'});
    }
    input.value = params.get(f.name) || '';
    input.addEventListener('input', () => {
      for (const [k, el] of Object.entries(inputs)) {
        if (el.value) params.set(k, el.value);
        else params.delete(k);
      }
      setParams(params);
      onChange();
    });
    inputs[f.name] = input;
    bar.append(h('label', {}, f.label, input));
  }
  bar.inputs = inputs;
  return bar;
}

/* A tag select added to a filter bar; its choices follow the data (update(tags)). */
function tagFilter(bar, params, onChange) {
  const select = h('select', {name: 'tag'}, h('option', {value: ''}, 'any'));
  bar.append(h('label', {}, 'Tag', select));
  select.addEventListener('change', () => {
    if (select.value) params.set('tag', select.value);
    else params.delete('tag');
    setParams(params);
    onChange();
  });
  return {
    want: () => params.get('tag') || '',
    update(tags) {
      const sorted = [...new Set(tags)].sort();
      fill(select, h('option', {value: ''}, 'any'), sorted.map((t) => h('option', {value: t}, t)));
      select.value = sorted.includes(this.want()) ? this.want() : '';
    },
  };
}

function matchText(hay, needle) {
  return !needle || hay.toLowerCase().includes(needle.toLowerCase());
}

const STATUS_OPTIONS = [['', 'any'], ['passing', 'passing'], ['warning', 'warning'],
                        ['critical', 'critical']];

/* ---- services ----------------------------------------------------------------------- */

function serviceStatus(s) {
  return s.ChecksCritical > 0 ? 'critical' : s.ChecksWarning > 0 ? 'warning' : 'passing';
}

/* Each service's own checks by status, {name: {passing, warning, critical}}: the summary's
 * ChecksPassing also counts the instances' node checks (as Consul's does), which the services
 * view must not show as the service's. */
function serviceCheckCounts(checks) {
  const counts = new Map();
  for (const c of checks) {
    if (!c.ServiceID) continue;
    if (!counts.has(c.ServiceName)) counts.set(c.ServiceName, {passing: 0, warning: 0, critical: 0});
    const n = counts.get(c.ServiceName);
    if (c.Status in n) n[c.Status]++;
  }
  return counts;
}

function viewServices(main, r, signal) {
  if (r.rest) return viewService(main, r, signal);
  let last = null;
  let counts = null;
  const out = h('div', {id: 'results'}, loading('services'));
  const bar = filterBar(r.params, [
    {name: 'q', label: 'Name', placeholder: 'filter by name'},
    {name: 'status', label: 'Status', options: STATUS_OPTIONS},
  ], () => render());
  const tags = tagFilter(bar, r.params, () => render());
  main.append(h('h1', {}, 'Services'), bar, out);

  function render() {
    if (!last || !counts) return;
    tags.update(last.data.flatMap((s) => s.Tags));
    const want = tags.want();
    const q = r.params.get('q') || '';
    const st = r.params.get('status') || '';
    const rows = last.data
      .filter((s) => matchText(s.Name, q) && (!st || serviceStatus(s) === st) &&
              (!want || s.Tags.includes(want)))
      .map((s) => h('tr', {'data-service': s.Name},
        h('td', {}, h('a', {href: '#/services/' + encPath(s.Name)}, s.Name)),
        h('td', {}, badge(serviceStatus(s))),
        h('td', {}, s.Tags.map((t) => h('span', {class: 'tag'}, t))),
        h('td', {class: 'num'}, s.InstanceCount),
        ['passing', 'warning', 'critical'].map((st) =>
          h('td', {class: 'num count ' + st}, (counts.get(s.Name) || {})[st] || 0))));
    fill(out, filteredNote(last) || '',
      rows.length ? table(['Service', 'Health', 'Tags', 'Instances', 'Passing', 'Warning',
                           'Critical'], rows, 'Services') :
        notice('', last.data.length ? 'No service matches the filter.' : 'No services are registered.'));
  }
  follow('/v1/internal/ui/services', signal, (res) => { last = res; render(); },
         (err) => fill(out, explain(err)));
  follow('/v1/health/state/any', signal, (res) => { counts = serviceCheckCounts(res.data); render(); },
         (err) => fill(out, explain(err)));
}

/*
 * "Last change" of a check, as a time. The registry keeps no clock time for checks (Consul's
 * API has none), so the UI notes when it first saw each check's ModifyIndex: a change seen live
 * shows that time; a check unchanged since the page opened shows "before" the opening time.
 */
const seenAt = new Map();
const openedAt = new Date();
let firstLoadDone = false;

function lastChange(c) {
  const key = `${c.Node}/${c.CheckID}/${c.ModifyIndex}`;
  if (!seenAt.has(key)) seenAt.set(key, firstLoadDone ? new Date() : null);
  const t = seenAt.get(key);
  const when = t || openedAt;
  return h('time', {datetime: when.toISOString(), 'data-live': t ? 'true' : 'false',
                    title: (t ? 'changed at ' : 'unchanged since this page opened at ') +
                      when.toLocaleString() + ` (registry index ${c.ModifyIndex})`},
           (t ? '' : 'before ') + when.toLocaleTimeString());
}

/* The checks as a table; withService adds what each check is about (a node's view). */
function checkList(checks, withService) {
  if (!checks.length) return h('span', {class: 'muted'}, 'no checks');
  const headers = ['Check', withService && 'For', 'Status', 'Output', 'Last change'].filter(Boolean);
  return table(headers, checks.map((c) =>
    h('tr', {'data-check': c.CheckID, 'data-status': c.Status},
      h('td', {}, c.Name, h('div', {class: 'muted mono'}, c.CheckID)),
      withService && h('td', {}, c.ServiceID ? h('a', {href: '#/services/' + encPath(c.ServiceName)},
                                                   c.ServiceID) : 'the node'),
      h('td', {}, badge(c.Status)),
      h('td', {}, h('pre', {class: 'out'}, c.Output || '')),
      h('td', {}, lastChange(c)))), 'Checks');
}

function viewService(main, r, signal) {
  const name = r.rest;
  let last = null;
  const out = h('div', {id: 'results'}, loading('instances'));
  const bar = filterBar(r.params, [
    {name: 'q', label: 'Node or ID', placeholder: 'filter instances'},
    {name: 'status', label: 'Status', options: STATUS_OPTIONS},
  ], () => render());
  const tags = tagFilter(bar, r.params, () => render());
  main.append(h('p', {class: 'crumbs'}, h('a', {href: '#/services'}, 'Services'), ' / '),
              h('h1', {}, name), bar, out);

  function render() {
    if (!last) return;
    tags.update(last.data.flatMap((e) => e.Service.Tags));
    const want = tags.want();
    const q = r.params.get('q') || '';
    const st = r.params.get('status') || '';
    const items = last.data.filter((e) => {
      const status = worst(e.Checks.map((c) => c.Status));
      return (matchText(e.Node.Node, q) || matchText(e.Service.ID, q)) && (!st || status === st) &&
        (!want || e.Service.Tags.includes(want));
    });
    const sections = items.map((e) => {
      const addr = (e.Service.Address || e.Node.Address) + ':' + e.Service.Port;
      const status = worst(e.Checks.map((c) => c.Status));
      return h('section', {class: 'instance', 'data-instance': e.Service.ID},
        h('h2', {}, e.Service.ID, ' ', badge(status)),
        h('dl', {class: 'meta'},
          h('dt', {}, 'Node'), h('dd', {}, h('a', {href: '#/nodes/' + encPath(e.Node.Node)}, e.Node.Node)),
          h('dt', {}, 'Address'), h('dd', {class: 'mono'}, addr),
          h('dt', {}, 'Tags'), h('dd', {}, e.Service.Tags.length ?
            e.Service.Tags.map((t) => h('span', {class: 'tag'}, t)) : h('span', {class: 'muted'}, 'none'))),
        checkList(e.Checks));
    });
    fill(out, filteredNote(last) || '', h('p', {class: 'muted'},
      `${last.data.length} instance${last.data.length === 1 ? '' : 's'}`),
      sections.length ? sections : notice('', last.data.length ? 'No instance matches the filter.' :
        `No instances of ${name} are registered.`));
    firstLoadDone = true;
  }
  follow('/v1/health/service/' + encodeURIComponent(name), signal,
         (res) => { last = res; render(); }, (err) => fill(out, explain(err)));
}

/* ---- nodes -------------------------------------------------------------------------- */

function nodeStatus(n) {
  return worst(n.Checks.filter((c) => !c.ServiceID).map((c) => c.Status));
}

/* [[service name, instances on the node], ...] in the node's order. */
function serviceCounts(services) {
  const counts = new Map();
  for (const s of services) counts.set(s.Service, (counts.get(s.Service) || 0) + 1);
  return [...counts];
}

function viewNodes(main, r, signal) {
  if (r.rest) return viewNode(main, r, signal);
  let last = null;
  const out = h('div', {id: 'results'}, loading('nodes'));
  const servers = h('section', {id: 'servers', 'aria-label': 'Servers'});
  const bar = filterBar(r.params, [
    {name: 'q', label: 'Name', placeholder: 'filter by name'},
    {name: 'status', label: 'Node health', options: STATUS_OPTIONS},
  ], () => render());
  main.append(h('h1', {}, 'Nodes'), servers, bar, out);

  /* The registry servers and which one leads, from the Raft configuration. It has no blocking
   * query: it is asked again with each change of the node list, which a server that dies or
   * comes back changes (its serfHealth). */
  async function renderServers() {
    try {
      const res = await api('/v1/operator/raft/configuration', {signal});
      const rows = res.data.Servers.map((s) => h('tr', {'data-server': s.Node},
        h('td', {}, h('a', {href: '#/nodes/' + encPath(s.Node)}, s.Node)),
        h('td', {class: 'mono'}, s.Address),
        h('td', {}, h('span', {class: 'badge' + (s.Leader ? ' passing' : ''),
                               'data-role': s.Leader ? 'leader' : 'follower'},
                      s.Leader ? 'leader' : 'follower')),
        h('td', {}, s.Voter ? 'yes' : 'no')));
      fill(servers, h('h2', {}, 'Servers'),
           table(['Server', 'Raft address', 'Role', 'Voter'], rows, 'Servers'));
    } catch (err) {
      /* Aborted (the view changed), or a token without operator:read: the nodes alone. */
      fill(servers);
    }
  }

  function render() {
    if (!last) return;
    const q = r.params.get('q') || '';
    const st = r.params.get('status') || '';
    const rows = last.data
      .filter((n) => matchText(n.Node, q) && (!st || nodeStatus(n) === st))
      .map((n) => h('tr', {'data-node': n.Node},
        h('td', {}, h('a', {href: '#/nodes/' + encPath(n.Node)}, n.Node)),
        h('td', {class: 'mono'}, n.Address),
        h('td', {}, badge(nodeStatus(n))),
        h('td', {}, n.Services.length ? serviceCounts(n.Services).map(([svc, count], i) => [
          i ? ', ' : '', h('a', {href: '#/services/' + encPath(svc)}, svc),
          count > 1 ? ` ×${count}` : '']) : h('span', {class: 'muted'}, 'none'))));
    fill(out, filteredNote(last) || '',
      rows.length ? table(['Node', 'Address', 'Node health', 'Services'], rows, 'Nodes') :
        notice('', last.data.length ? 'No node matches the filter.' : 'No nodes are registered.'));
  }
  follow('/v1/internal/ui/nodes', signal, (res) => { last = res; render(); renderServers(); },
         (err) => fill(out, explain(err)));
}

function viewNode(main, r, signal) {
  const name = r.rest;
  const out = h('div', {id: 'results'}, loading('the node'));
  main.append(h('p', {class: 'crumbs'}, h('a', {href: '#/nodes'}, 'Nodes'), ' / '),
              h('h1', {}, name), out);
  /* One query serves the node list and one node: the summary has services and checks. */
  follow('/v1/internal/ui/nodes', signal, (res) => {
    const n = res.data.find((x) => x.Node.toLowerCase() === name.toLowerCase());
    if (!n) {
      fill(out, filteredNote(res) || '', notice('', `No node named ${name} is registered.`));
      return;
    }
    const nodeChecks = n.Checks.filter((c) => !c.ServiceID);
    const services = n.Services.map((s) => h('tr', {'data-service': s.ID},
      h('td', {}, h('a', {href: '#/services/' + encPath(s.Service)}, s.Service)),
      h('td', {class: 'mono'}, s.ID),
      h('td', {class: 'mono'}, (s.Address || n.Address) + ':' + s.Port),
      h('td', {}, badge(worst(n.Checks.filter((c) => !c.ServiceID || c.ServiceID === s.ID)
        .map((c) => c.Status)))),
      h('td', {}, s.Tags.map((t) => h('span', {class: 'tag'}, t)))));
    fill(out, filteredNote(res) || '',
      h('dl', {class: 'meta'},
        h('dt', {}, 'Address'), h('dd', {class: 'mono'}, n.Address),
        h('dt', {}, 'Datacenter'), h('dd', {}, n.Datacenter),
        h('dt', {}, 'Node health'), h('dd', {}, badge(worst(nodeChecks.map((c) => c.Status))))),
      h('h2', {}, 'Services'),
      services.length ? table(['Service', 'ID', 'Address', 'Health', 'Tags'], services, 'Services') :
        notice('', 'No services on this node.'),
      h('h2', {}, 'Checks'), checkList(n.Checks, true));
    firstLoadDone = true;
  }, (err) => fill(out, explain(err)));
}

/* ---- key/value ---------------------------------------------------------------------- */

function decodeValue(b64) {
  if (b64 === null || b64 === undefined) return {text: '', binary: false, size: 0};
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  try {
    return {text: new TextDecoder('utf-8', {fatal: true}).decode(bytes), binary: false, size: bytes.length};
  } catch (e) {
    return {text: b64, binary: true, size: bytes.length};
  }
}

function kvCrumbs(path) {
  const parts = path.split('/');
  const crumbs = [h('a', {href: '#/kv/'}, 'Key/Value')];
  let acc = '';
  for (let i = 0; i < parts.length - 1; i++) {
    acc += parts[i] + '/';
    crumbs.push(' / ', h('a', {href: '#/kv/' + encPath(acc)}, parts[i]));
  }
  return h('p', {class: 'crumbs'}, crumbs);
}

function viewKV(main, r, signal) {
  if (r.rest && !r.rest.endsWith('/')) return viewKey(main, r, signal);
  const prefix = r.rest;
  const out = h('div', {id: 'results'}, loading('keys'));
  const msg = h('div', {});
  const keyInput = h('input', {name: 'key', id: 'new-key', required: true, autocomplete: 'off',
                               placeholder: 'name, or folder/name'});
  const valueInput = h('textarea', {name: 'value', id: 'new-value'});
  const form = h('form', {class: 'kv-form', 'aria-label': 'Create a key'},
    h('label', {for: 'new-key'}, `Key (under ${prefix || 'the root'})`), keyInput,
    h('label', {for: 'new-value'}, 'Value'), valueInput,
    h('div', {class: 'actions'}, h('button', {type: 'submit', class: 'primary'}, 'Create')), msg);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const key = prefix + keyInput.value.replace(/^\/+/, '');
    if (key.endsWith('/')) {
      location.hash = '#/kv/' + encPath(key); /* a folder exists once a key is in it */
      return;
    }
    try {
      /* cas=0: create only; an existing key is not overwritten. */
      const res = await api('/v1/kv/' + encPath(key) + '?cas=0', {method: 'PUT', body: valueInput.value});
      if (res.data === true) location.hash = '#/kv/' + encPath(key);
      else fill(msg, notice('error', `${key} already exists: open it to edit it.`));
    } catch (err) {
      fill(msg, explain(err));
    }
  });
  main.append(kvCrumbs(prefix), h('h1', {}, prefix || 'Key/Value'), out,
              h('h2', {}, 'Create'), form);
  follow('/v1/kv/' + encPath(prefix) + '?keys&separator=/', signal, (res) => {
    const keys = res.status === 404 || !res.data ? [] : res.data.filter((k) => k !== prefix);
    const items = keys.map((k) => {
      const label = k.slice(prefix.length);
      return h('li', {'data-key': k}, h('a', {href: '#/kv/' + encPath(k)},
        k.endsWith('/') ? folderIcon() : '', label));
    });
    fill(out, filteredNote(res) || '', items.length ? h('ul', {class: 'kv-list'}, items) :
      notice('', prefix ? `Nothing under ${prefix}.` : 'The KV store is empty.'));
  }, (err) => fill(out, explain(err)), {notFoundOk: true});
}

/* A KV entry's flags are a uint64: JSON.parse rounds those above 2^53 (the Go lock helper's
 * flag), so they are taken from the body's text, where the agent writes them exactly. */
function kvFlags(text, entry) {
  const m = /"Flags":(\d+)/.exec(text);
  return m ? m[1] : String(entry.Flags);
}

function viewKey(main, r, signal) {
  const key = r.rest;
  const out = h('div', {id: 'results'}, loading('the key'));
  const msg = h('div', {id: 'kv-message'});
  const editor = h('textarea', {id: 'kv-value', 'aria-label': 'Value'});
  const save = h('button', {type: 'submit', class: 'primary'}, 'Save');
  const del = h('button', {type: 'button', class: 'danger'}, 'Delete');
  const reload = h('button', {type: 'button', hidden: true}, 'Load the current value');
  const info = h('dl', {class: 'meta'});
  const form = h('form', {class: 'kv-form', 'aria-label': 'Edit ' + key, hidden: true}, info, editor,
                 h('div', {class: 'actions'}, save, reload, del), msg);
  let loaded = null; /* the entry the editor shows: its ModifyIndex is the CAS for writes */
  let latest = null; /* the newest entry the registry sent */
  let dirty = false;
  editor.addEventListener('input', () => { dirty = true; });

  function show(entry) {
    loaded = entry;
    dirty = false;
    reload.hidden = true;
    const v = decodeValue(entry.Value);
    editor.value = v.text;
    editor.readOnly = v.binary;
    save.disabled = v.binary;
    fill(info, h('dt', {}, 'Modify index'), h('dd', {}, entry.ModifyIndex),
      h('dt', {}, 'Flags'), h('dd', {}, entry.flags),
      h('dt', {}, 'Size'), h('dd', {}, `${v.size} bytes` + (v.binary ? ' (binary, shown as base64, read only)' : '')),
      entry.Session ? [h('dt', {}, 'Locked by session'), h('dd', {class: 'mono'}, entry.Session)] : []);
  }
  reload.addEventListener('click', () => {
    if (latest) show(latest);
    fill(msg);
  });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!loaded) return;
    try {
      /* A PUT without ?flags= sets them to 0: the edit is of the value only. */
      const res = await api(`/v1/kv/${encPath(key)}?cas=${loaded.ModifyIndex}&flags=${loaded.flags}`,
                            {method: 'PUT', body: editor.value});
      if (res.data === true) {
        dirty = false;
        fill(msg, notice('ok', 'Saved.'));
      } else {
        reload.hidden = false;
        fill(msg, notice('error', 'Not saved: the key changed in the registry after ' +
          `you opened it (you edited index ${loaded.ModifyIndex}). Your text is still here; ` +
          'load the current value to compare, then save again.'));
      }
    } catch (err) {
      fill(msg, explain(err));
    }
  });
  del.addEventListener('click', async () => {
    if (!loaded) return;
    if (del.dataset.armed !== 'yes') { /* two steps instead of a modal dialog */
      del.dataset.armed = 'yes';
      del.textContent = 'Really delete?';
      return;
    }
    try {
      const res = await api(`/v1/kv/${encPath(key)}?cas=${loaded.ModifyIndex}`, {method: 'DELETE'});
      if (res.data === true) {
        const parent = key.includes('/') ? key.slice(0, key.lastIndexOf('/') + 1) : '';
        location.hash = '#/kv/' + encPath(parent);
      } else {
        reload.hidden = false;
        fill(msg, notice('error', 'Not deleted: the key changed in the registry after you opened it.'));
      }
    } catch (err) {
      fill(msg, explain(err));
    }
    del.dataset.armed = '';
    del.textContent = 'Delete';
  });
  main.append(kvCrumbs(key), h('h1', {}, key), out, form);
  follow('/v1/kv/' + encPath(key), signal, (res) => {
    const entry = res.status === 404 || !res.data ? null : res.data[0];
    if (entry) entry.flags = kvFlags(res.text, entry);
    latest = entry;
    if (!entry) {
      loaded = null;
      form.hidden = true;
      fill(out, notice('', `The key ${key} does not exist (any more).`));
      return;
    }
    form.hidden = false;
    fill(out);
    if (!loaded || !dirty) {
      show(entry);
    } else if (entry.ModifyIndex !== loaded.ModifyIndex) {
      reload.hidden = false;
      fill(msg, notice('error', `Someone changed this key (now index ${entry.ModifyIndex}) ` +
        'while you were editing; saving would fail. Load the current value to see it.'));
    }
  }, (err) => fill(out, explain(err)), {notFoundOk: true});
}

/* ---- settings ----------------------------------------------------------------------- */

function viewSettings(main, r, signal) {
  const input = h('input', {id: 'token', type: 'password', autocomplete: 'off', value: token(),
                            spellcheck: 'false'});
  const msg = h('div', {});
  const who = h('div', {});
  const form = h('form', {class: 'kv-form', 'aria-label': 'ACL token'},
    h('label', {for: 'token'}, 'ACL token (SecretID), sent as X-Consul-Token and kept in this browser only'),
    input, h('div', {class: 'actions'}, h('button', {type: 'submit', class: 'primary'}, 'Save'),
      h('button', {type: 'button', onclick: () => { input.value = ''; store(''); }}, 'Forget')), msg);
  function store(v) {
    try {
      if (v) localStorage.setItem(TOKEN_KEY, v);
      else localStorage.removeItem(TOKEN_KEY);
      fill(msg, notice('ok', v ? 'Token saved.' : 'Token forgotten.'));
    } catch (e) {
      fill(msg, notice('error', 'This browser does not allow storing the token.'));
    }
    whoami();
  }
  async function whoami() {
    if (!token()) {
      fill(who, notice('', 'No token set: the registry answers as its anonymous token ' +
                                     '(everything, when ACLs are off).'));
      return;
    }
    try {
      const res = await api('/v1/acl/token/self', {signal});
      const t = res.data;
      fill(who, h('dl', {class: 'meta'},
        h('dt', {}, 'Accessor'), h('dd', {class: 'mono'}, t.AccessorID),
        h('dt', {}, 'Description'), h('dd', {}, t.Description || ''),
        h('dt', {}, 'Policies'), h('dd', {}, (t.Policies || []).map((p) => p.Name).join(', ') || 'none')));
    } catch (err) {
      if (err.name === 'AbortError') return;
      fill(who, notice('', /ACL support disabled/i.test(err.message) ?
        'ACLs are off on this registry: no token is needed.' :
        err.status === 403 ? 'No valid token: the registry answers as the anonymous token.' :
        `Token lookup failed: ${err.message}`));
    }
  }
  form.addEventListener('submit', (e) => { e.preventDefault(); store(input.value.trim()); });
  main.append(h('h1', {}, 'ACL token'), form, h('h2', {}, 'Token in use'), who);
  whoami();
}

/* ---- start -------------------------------------------------------------------------- */

async function start() {
  window.addEventListener('hashchange', () => {
    route();
    document.getElementById('main').focus({preventScroll: true});
  });
  if (!location.hash) history.replaceState(null, '', '#/services');
  route();
  try {
    const self = await api('/v1/agent/self');
    document.getElementById('dc').textContent = `${self.data.Config.Datacenter} · ${self.data.Config.NodeName}`;
  } catch (e) {
    /* agent:read denied or not a Consul agent: the header just shows no datacenter */
  }
}

start();
