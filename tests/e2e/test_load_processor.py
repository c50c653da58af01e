"""End-to-end tests of Artillery processors under `mesh load run`: config.processor, hooks
and function steps run by the Node.js helper, against the test server of test_load.py.

Node.js is a test dependency (scripts/install-deps installs nodejs)."""

import json
import os
import shutil
from pathlib import Path

import pytest

from test_load import make_handler, one_flow, run_load, run_report, server  # noqa: F401

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("node") is None,
                                reason="Node.js is not installed (scripts/install-deps)")


def counters(rep):
    return rep["aggregate"]["counters"]


def test_failover_script_with_the_helper_functions(mesh, tmp_path, server):
    """The shipped failover-test.yml and functions.js, unchanged: trackNode counts every answer
    per node from X-Served-By, beforeScenario sets a variable the requests send, and expect
    (plugins.expect) accepts 200 and 503."""
    for name in ("failover-test.yml", "functions.js"):
        shutil.copy(REPO / "scenarios" / name, tmp_path / name)
    script = (tmp_path / "failover-test.yml").read_text()
    out_json = tmp_path / "report.json"
    code, out, err = run_load(mesh, tmp_path, script, "-e", "quick", "-t", server.url,
                              "--output", str(out_json))
    assert code == 0, out + err
    c = counters(json.loads(out_json.read_text()))
    n = c["vusers.created"]
    assert n > 20 and c["vusers.completed"] == n and c["vusers.failed"] == 0
    assert c["http.responses"] == 2 * n
    # the test server answers X-Served-By s1 and s2 in turn
    assert c["served_by.s1"] + c["served_by.s2"] == 2 * n and "served_by.none" not in c
    assert c["plugins.expect.ok"] == 2 * n
    users = {h.get("X-User") for _, _, path, h, _ in server.requests if path == "/"}
    assert len(users) >= 2 and all(u and u.startswith("user-") for u in users), users
    assert "served_by.s1" in out  # in the printed summary too


PROCESSOR = r"""
const path = require('path');           // Node's own modules
const helper = require('./helper');     // and the user's, next to the processor
module.exports = {
  sign(req, context, ee, next) {
    req.headers['X-Sig'] = helper.tag(context.vars.n);
    req.headers['X-Tmpl'] = '{{ n }}';  // templates set by a hook are rendered after it
    req.url = req.url.replace('/before', '/echo/after');
    return next();
  },
  count(req, res, context, ee, next) {
    ee.emit('counter', 'custom.answers', 1);
    ee.emit('histogram', 'custom.size', res.body.length);
    ee.emit('rate', 'custom.rate');
    context.vars.status = res.statusCode + '-' + res.headers['content-type'];
    return next();
  },
  async setN(context, ee) {
    await new Promise((r) => setTimeout(r, 5));
    context.vars.n = 41 + 1;
  },
  fail(context, ee, next) {
    const err = new Error('boom');
    err.code = 'EBOOM';
    return next(err);
  },
  base: () => path.basename('/a/b'),
};
"""


def write_processor(tmp_path):
    (tmp_path / "proc.js").write_text(PROCESSOR)
    (tmp_path / "helper.js").write_text("exports.tag = (n) => 'sig-' + n;\n")


def test_hooks_function_steps_and_custom_metrics(mesh, tmp_path, server):
    write_processor(tmp_path)
    script = f"""
config:
  target: "{server.url}"
  processor: "./proc.js"
  phases: [{{duration: 1, arrivalCount: 3}}]
scenarios:
  - afterResponse: count
    flow:
      - function: setN
      - get: {{url: "/before/{{{{ n }}}}", beforeRequest: sign}}
      - get: {{url: "/echo/{{{{ status }}}}"}}
"""
    rep, out = run_report(mesh, tmp_path, script)
    c = counters(rep)
    assert c["vusers.completed"] == 3 and c["http.responses"] == 6, c
    assert c["custom.answers"] == 6
    assert rep["aggregate"]["summaries"]["custom.size"]["count"] == 6
    assert "custom.rate" in rep["aggregate"]["rates"]
    reqs = [(p, h) for _, _, p, h, _ in server.requests]
    signed = [(p, h) for p, h in reqs if p.startswith("/echo/after")]
    assert len(signed) == 3
    assert all(p == "/echo/after/42" and h["X-Sig"] == "sig-42" and h["X-Tmpl"] == "42"
               for p, h in signed), signed
    # afterResponse set a variable from the response the next request used
    assert sum(1 for p, _ in reqs if p == "/echo/200-text/plain") == 3, reqs


def test_a_function_error_fails_the_user(mesh, tmp_path, server):
    write_processor(tmp_path)
    script = f"""
config:
  target: "{server.url}"
  processor: "./proc.js"
  phases: [{{duration: 1, arrivalCount: 2}}]
scenarios:
  - afterScenario: count
    flow:
      - function: fail
      - get: {{url: "/"}}
      - function: notExported
"""
    rep, _ = run_report(mesh, tmp_path, script)
    c = counters(rep)
    assert c["errors.EBOOM"] == 2 and c["vusers.failed"] == 2
    assert "http.requests" not in c and "custom.answers" not in c


def test_undefined_function_is_counted_and_skipped(mesh, tmp_path, server):
    """As Artillery: a function step the processor lacks counts errors.Undefined function "x"
    and the flow goes on."""
    write_processor(tmp_path)
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 2}]",
                      ["function: nope", 'get: {url: "/"}'], '  processor: "./proc.js"\n')
    rep, _ = run_report(mesh, tmp_path, script)
    c = counters(rep)
    assert c['errors.Undefined function "nope"'] == 2
    assert c["http.responses"] == 2 and c["vusers.completed"] == 2


def test_processor_errors_are_clear(mesh, tmp_path, server):
    write_processor(tmp_path)
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 1}]", ["function: setN"],
                      '  processor: "./proc.js"\n')
    code, out, err = run_load(mesh, tmp_path, script, env={"PATH": "/nonexistent"})
    assert code == 2 and "needs Node.js" in err and "`node` was not found" in err, err
    (tmp_path / "proc.js").write_text("this is not javascript(\n")
    code, out, err = run_load(mesh, tmp_path, script)
    assert code == 2 and "config.processor" in err and "SyntaxError" in err, err
    code, out, err = run_load(mesh, tmp_path, script.replace("./proc.js", "./missing.js"))
    assert code == 2 and "Cannot find module" in err, err
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 1}]", ["function: setN"])
    code, out, err = run_load(mesh, tmp_path, script)
    assert code == 2 and "test.yml:6: function: needs config.processor" in err, err


def test_requests_without_hooks_never_reach_the_helper(mesh, tmp_path, server):
    """A processor that counts its calls: only the hooked request's calls arrive."""
    (tmp_path / "proc.js").write_text(
        "let n = 0;\nmodule.exports = { one(req, ctx, ee, next) {"
        " ee.emit('counter', 'calls', ++n ? 1 : 0); next(); } };\n")
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 4}]",
                      ['get: {url: "/"}', 'get: {url: "/json", beforeRequest: one}',
                       'get: {url: "/"}'], '  processor: "./proc.js"\n')
    rep, _ = run_report(mesh, tmp_path, script)
    c = counters(rep)
    assert c["http.responses"] == 12 and c["calls"] == 4


def test_a_run_that_ends_says_nothing_of_the_helper(mesh, tmp_path, server):
    """The helper exits when the run closes its channel: that exit is not reported."""
    write_processor(tmp_path)
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 2}]",
                      ['function: setN', 'get: {url: "/"}'], '  processor: "./proc.js"\n')
    code, out, err = run_load(mesh, tmp_path, script)
    assert code == 0, out + err
    assert "helper" not in err and "helper" not in out, err
