"""End-to-end tests of the Artillery script features that shape what a virtual user sends:
payload CSV files, captures, conditions and loops, and the request keys (auth, forms, cookies,
redirects). Against the test server of test_load.py, which records every request."""

import json
from urllib.parse import parse_qs, urlsplit

from test_load import one_flow, run_load, run_report, server  # noqa: F401


def paths(server, prefix):
    with server.lock:
        return [r[2] for r in server.requests if r[2].startswith(prefix)]


def test_payload_rows_become_variables(mesh, tmp_path, server):
    """Two payloads: one in sequence with a header line and another delimiter, one at random;
    numbers are cast (a JSON body gets them as numbers), a quoted field keeps its delimiter."""
    (tmp_path / "users.csv").write_text('user;n\nann;1\n"b;ob";2\ncy;3\n')
    (tmp_path / "colors.csv").write_text("red,light\ngreen,light\n")
    script = one_flow(
        server.url, "[{duration: 1, arrivalCount: 6}]",
        ['post: {url: "/echo?u={{ user }}&c={{ color }}&s={{ shade }}", json: {n: "{{ n }}"}}'],
        "  payload:\n"
        "    - {path: users.csv, fields: [user, n], skipHeader: true, delimiter: ';',\n"
        "       order: sequence}\n"
        "    - {path: colors.csv, fields: [color, shade]}\n"
        "  variables: {shade: dark}\n")
    rep, _ = run_report(mesh, tmp_path, script)
    assert rep["aggregate"]["counters"]["vusers.completed"] == 6
    with server.lock:
        sent = [(parse_qs(urlsplit(r[2]).query), json.loads(r[4])) for r in server.requests]
    users = sorted(q["u"][0] for q, _ in sent)
    assert users == ["ann", "ann", "b;ob", "b;ob", "cy", "cy"], sent
    assert {q["c"][0] for q, _ in sent} <= {"red", "green"}
    # config.variables win over a payload's field of the same name
    assert {q["s"][0] for q, _ in sent} == {"dark"}
    assert sorted(b["n"] for _, b in sent) == [1, 1, 2, 2, 3, 3]


def test_payload_errors_name_file_and_line(mesh, tmp_path, server):
    (tmp_path / "users.csv").write_text("a,b\nc\n")
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 1}]", ['get: {url: "/"}'],
                      "  payload: {path: users.csv, fields: [x, y]}\n")
    code, out, err = run_load(mesh, tmp_path, script)
    assert code == 2
    assert "test.yml:4: config.payload: " in err and "users.csv: line 2: 1 fields, where the " \
        "first row has 2" in err, err
    assert not paths(server, "/")


FLOW = [
    'get: {url: /json, capture: [{regexp: "\\"id\\": (\\\\d+)", group: 1, as: rid}, '
    '{json: "$.items", as: items}, {header: content-type, as: ct}]}',
    'get: {url: "/echo?rid={{ rid }}&ct={{ ct }}"}',
    'loop: [{get: {url: "/echo?el={{ $loopElement.id }}&i={{ $loopCount }}"}}]\n'
    '        over: items',
    'loop: [{get: {url: "/echo?c={{ n }}"}}]\n        count: "2-4"\n        loopValue: n',
    'loop: [{get: {url: "/echo?o={{ $loopElement }}"}}]\n        over: [a, "{{ rid }}"]',
    'get: {url: "/echo?skip=1", ifTrue: "rid > 100"}',
    'get: {url: "/echo?go=1", ifTrue: "rid == 42 and ct != \\"\\""}',
    # as filtrex computes it: Number(1 && "application/json") is NaN, which is false
    'get: {url: "/echo?skip=2", ifTrue: "rid == 42 and ct"}',
    'get: {url: /json, capture: {regexp: "nomatch", as: x, strict: false}}',
    'get: {url: "/echo?x={{ x }}"}',
]


def test_captures_conditions_and_loops(mesh, tmp_path, server):
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 1}]", FLOW)
    rep, _ = run_report(mesh, tmp_path, script)
    c = rep["aggregate"]["counters"]
    assert c["vusers.completed"] == 1 and "errors.Failed capture or match" not in c, c
    assert paths(server, "/echo") == [
        "/echo?rid=42&ct=application/json", "/echo?el=42&i=0", "/echo?c=2", "/echo?c=3",
        "/echo?o=a", "/echo?o=42", "/echo?go=1", "/echo?x="]


def test_failed_captures_set_nothing_and_fail_the_user(mesh, tmp_path, server):
    """A strict capture that finds nothing (or "") fails the user and sets none of the request's
    captures; http.defaults.strictCapture: false makes them all lenient."""
    steps = ['get: {url: /json, capture: [{json: "$.items[0].id", as: id}, '
             '{regexp: "(nomatch)?", as: empty}]}', 'get: {url: "/echo?id={{ id }}"}']
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 2}]", steps)
    rep, _ = run_report(mesh, tmp_path, script)
    c = rep["aggregate"]["counters"]
    assert c["errors.Failed capture or match"] == 2 and c["vusers.failed"] == 2, c
    assert not paths(server, "/echo")
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 2}]", steps,
                      "  http: {defaults: {strictCapture: false}}\n")
    rep, _ = run_report(mesh, tmp_path, script)
    assert rep["aggregate"]["counters"]["vusers.completed"] == 2
    assert paths(server, "/echo") == ["/echo?id=42"] * 2


def test_while_true_and_if_true_functions(mesh, tmp_path, server):
    (tmp_path / "f.js").write_text(
        "module.exports = {\n"
        "  more(context, done) { context.vars.k = (context.vars.k || 0) + 1;"
        " return done(context.vars.k < 3); },\n"
        "  odd(vars) { return vars.k % 2 === 1; },\n"
        "};\n")
    steps = ['loop: [{get: {url: "/echo?k={{ k }}"}}, {get: {url: "/echo?odd={{ k }}", '
             'ifTrue: odd}}]\n        whileTrue: more']
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 1}]", steps,
                      "  processor: ./f.js\n")
    rep, _ = run_report(mesh, tmp_path, script)
    assert rep["aggregate"]["counters"]["vusers.completed"] == 1
    # the first pass always runs; whileTrue is asked after each
    assert paths(server, "/echo") == ["/echo?k=", "/echo?k=1", "/echo?odd=1", "/echo?k=2"]


def test_flow_errors_are_named(mesh, tmp_path, server):
    steps = ['get: {url: /json, capture: {regexp: "(?=x)", as: a}}',
             'get: {url: /json, capture: {regexp: "\\"(.*?)\\"", as: b}}',
             'get: {url: /, ifTrue: "n >"}',
             'loop: [{get: {url: /}}]']
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 1}]", steps)
    code, out, err = run_load(mesh, tmp_path, script)
    assert code == 2
    assert "test.yml:6: capture.regexp: lookahead and lookbehind are not supported" in err, err
    assert "test.yml:7: capture.regexp: lazy quantifiers such as *? are not supported" in err
    assert "test.yml:8: ifTrue: unexpected end of expression" in err
    assert "test.yml:9: loop: want count, over or whileTrue" in err
