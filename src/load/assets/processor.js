// mesh load's Node.js helper: runs an Artillery processor's functions for the C engine.
//
// Started as `node -e <this file> PROCESSOR` with a socket pair on fd 3 (stdout and stderr are
// the user's, as console.log in a processor prints there under Artillery too). The protocol is
// one JSON object per line each way; src/load/processor.c is the other end:
//   -> {"op":"ready","functions":[names]}           once the module is loaded
//   -> {"op":"fatal","message":"..."}                when it cannot be
//   <- {"id":N,"vu":V,"kind":K,"fns":[names],"vars":{...},"scenario":"...","req":{...},"res":{...}}
//   -> {"id":N,"vars":{...},"req":{...},"result":B,"error":"..."}  when the fns have finished
//   -> {"op":"metrics","m":[[type,name,value],...]}  what ee.emit recorded since the last one
//   <- {"op":"end","vu":V}                           the virtual user is gone: forget its context
// K is "function" (fn(context, ee, next)), "request" (fn(req, context, ee, next)), "response"
// (fn(req, res, context, ee, next)), "condition" (an ifTrue: fn(context.vars)) or "while" (a
// whileTrue: fn(context, done)); the last two reply with "result": true or false. Replies
// written in one tick leave in one write.
'use strict';

const net = require('net');
const path = require('path');
const EventEmitter = require('events');

const chan = new net.Socket({ fd: 3, readable: true, writable: true });
let outbox = [];
let metrics = [];

function send(obj) {
  if (outbox.length === 0) setImmediate(flush);
  outbox.push(JSON.stringify(obj));
}

// Metrics go ahead of the replies: the engine may end the run on the last reply it reads.
function flush() {
  if (metrics.length) {
    outbox.unshift(JSON.stringify({ op: 'metrics', m: metrics }));
    metrics = [];
  }
  if (outbox.length) chan.write(outbox.join('\n') + '\n');
  outbox = [];
}

// One emitter for every virtual user, as Artillery's functions get the runner's.
const ee = new EventEmitter();
function metric(type) {
  return (name, value) => {
    if (metrics.length === 0 && outbox.length === 0) setImmediate(flush);
    metrics.push([type, String(name), value === undefined ? 1 : Number(value)]);
  };
}
ee.on('counter', metric('counter'));
ee.on('histogram', metric('histogram'));
ee.on('rate', metric('rate'));
ee.on('error', metric('error'));

function load(file) {
  const abs = path.resolve(file);
  try {
    return Promise.resolve(require(abs));
  } catch (err) {
    if (err.code !== 'ERR_REQUIRE_ESM') return Promise.reject(err);
    return import(require('url').pathToFileURL(abs).href);
  }
}

// Calls fn the way Artillery does: plain functions call next, async ones resolve or throw.
function callOne(fn, args) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const next = (err) => {
      if (settled) return;
      settled = true;
      if (err) reject(err);
      else resolve();
    };
    try {
      if (fn.constructor.name === 'Function') {
        fn(...args, next);
      } else {
        Promise.resolve(fn(...args)).then(() => next(), (err) => next(err || new Error('rejected')));
      }
    } catch (err) {
      next(err);
    }
  });
}

// ifTrue: fn(context.vars), truthy or not (a throw lets the request go, as in Artillery);
// whileTrue: fn(context, done), done(true) for another pass (or a promise of it).
function decide(fn, kind, ctx) {
  if (kind === 'condition') {
    try {
      return Promise.resolve(Boolean(fn(ctx.vars)));
    } catch (err) {
      return Promise.resolve(true);
    }
  }
  return new Promise((resolve, reject) => {
    try {
      const r = fn(ctx, (b) => resolve(Boolean(b)));
      if (r && typeof r.then === 'function') r.then((b) => resolve(Boolean(b)), reject);
    } catch (err) {
      reject(err);
    }
  });
}

const contexts = new Map();

function contextOf(msg) {
  let ctx = contexts.get(msg.vu);
  if (!ctx) {
    ctx = { vars: {}, scenario: { name: msg.scenario }, _uid: String(msg.vu) };
    contexts.set(msg.vu, ctx);
  }
  ctx.vars = msg.vars || {};
  return ctx;
}

function main(mod) {
  const fns = mod && typeof mod === 'object' ? mod : {};
  const names = Object.keys(fns).filter((k) => typeof fns[k] === 'function');

  async function run(msg) {
    const ctx = contextOf(msg);
    const reply = { id: msg.id };
    try {
      if (msg.kind === 'condition' || msg.kind === 'while') {
        reply.result = await decide(fns[msg.fns[0]], msg.kind, ctx);
        msg.fns = [];
      }
      for (const name of msg.fns) {
        const fn = fns[name];
        if (typeof fn !== 'function') continue; // warned about at start, as Artillery warns
        if (msg.kind === 'request') await callOne(fn, [msg.req, ctx, ee]);
        else if (msg.kind === 'response') await callOne(fn, [msg.req, msg.res, ctx, ee]);
        else await callOne(fn, [ctx, ee]);
      }
    } catch (err) {
      const e = err || {};
      reply.error = String(e.code || e.message || e);
    }
    reply.vars = ctx.vars;
    if (msg.kind === 'request') reply.req = msg.req;
    send(reply);
  }

  let pending = '';
  chan.on('data', (chunk) => {
    pending += chunk.toString('utf8');
    let nl;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (!line) continue;
      const msg = JSON.parse(line);
      if (msg.op === 'end') contexts.delete(msg.vu);
      else run(msg);
    }
  });
  chan.on('end', () => {
    flush();
    process.exit(0);
  });
  send({ op: 'ready', functions: names });
}

load(process.argv[1]).then(
  // an ES module's functions may come as named exports or as its default export's
  (mod) => main(mod && mod.default && typeof mod.default === 'object' ? { ...mod.default, ...mod } : mod),
  (err) => {
    chan.write(JSON.stringify({ op: 'fatal', message: String((err && err.stack) || err) }) + '\n', () =>
      process.exit(1)
    );
  }
);
