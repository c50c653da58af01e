"""End-to-end tests of the Artillery script features that shape what a virtual user sends:
payload CSV files, captures, conditions and loops, and the request keys (auth, forms, cookies,
redirects). Against the test server of test_load.py, which records every request."""

import json
import os
import re
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


def test_lenient_captures_that_find_nothing(mesh, tmp_path, server):
    """A capture with strict: false that finds nothing sets what Artillery's extractor gives:
    "" for a regexp or a header, undefined for a JSONPath (over a JSON body, or a body that is
    not JSON) or a selector, which then replaces what the variable held and is left out of a
    json body."""
    steps = ['get: {url: /json, capture: [{json: "$.missing", as: m, strict: false}, '
             '{regexp: "nomatch", as: r, strict: false}, {header: x-nope, as: h, strict: false}, '
             '{selector: "#nope", attr: id, as: s, strict: false}]}',
             'get: {url: /, capture: {json: "$.id", as: t, strict: false}}',
             'post: {url: /echo, json: {m: "{{ m }}", r: "{{ r }}", h: "{{ h }}", s: "{{ s }}", '
             't: "{{ t }}"}}']
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 1}]", steps,
                      "  variables: {m: old, r: old, h: old, s: old, t: old}\n")
    rep, _ = run_report(mesh, tmp_path, script)
    assert rep["aggregate"]["counters"]["vusers.completed"] == 1
    (body,) = [r[3] for r in sent(server, "/echo")]
    assert json.loads(body) == {"r": "", "h": ""}, body


def test_capture_into_a_path_sets_a_nested_member(mesh, tmp_path, server):
    """As Artillery sets a capture with lodash's set, `as: u.id` sets id in the object u (its
    other members kept), which {{ u.id }} and {{ u }} then read."""
    steps = ['get: {url: /json, capture: {json: "$.items[0].id", as: u.id}}',
             'post: {url: /echo, json: {u: "{{ u }}", id: "{{ u.id }}"}}']
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 1}]", steps,
                      "  variables: {u: {name: ann}}\n")
    rep, _ = run_report(mesh, tmp_path, script)
    assert rep["aggregate"]["counters"]["vusers.completed"] == 1
    (body,) = [r[3] for r in sent(server, "/echo")]
    assert json.loads(body) == {"u": {"name": "ann", "id": 42}, "id": 42}, body


def test_captures_into_one_name_the_last_counts(mesh, tmp_path, server):
    """Artillery keeps a request's captures by name: of two into the same name the last one
    is what is set, and whether it failed is what fails the user."""
    ok = ['get: {url: /json, capture: [{json: "$.missing", as: id}, '
          '{json: "$.items[0].id", as: id}]}', 'get: {url: "/echo/ok?id={{ id }}"}']
    failed = ['get: {url: /json, capture: [{json: "$.items[0].id", as: id}, '
              '{json: "$.missing", as: id}]}', 'get: {url: "/echo/never"}']
    rep, _ = run_report(mesh, tmp_path, one_flow(server.url, "[{duration: 1, arrivalCount: 1}]",
                                                 ok))
    assert rep["aggregate"]["counters"]["vusers.completed"] == 1
    rep, _ = run_report(mesh, tmp_path, one_flow(server.url, "[{duration: 1, arrivalCount: 1}]",
                                                 failed))
    c = rep["aggregate"]["counters"]
    assert c["errors.Failed capture or match"] == 1 and c["vusers.failed"] == 1, c
    assert [p for _, p, _, _ in sent(server, "/echo")] == ["/echo/ok?id=42"]


def test_json_captures_of_several_values_take_one_at_random(mesh, tmp_path, server):
    """JSONPath as jsonpath-plus reads it: wildcards, recursive descent, unions and slices;
    of several values a capture takes one at random, as Artillery's extractJSONPath does."""
    steps = ['get: {url: /items, capture: [{json: "$.items[*].id", as: any}, '
             '{json: "$..id", as: deep}, {json: "$.items[1:].id", as: tail}, '
             '{json: "$.items.length", as: n}]}',
             'get: {url: "/echo/{{ any }}/{{ deep }}/{{ tail }}/{{ n }}"}']
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 30}]", steps)
    rep, _ = run_report(mesh, tmp_path, script)
    assert rep["aggregate"]["counters"]["vusers.completed"] == 30
    got = [p.split("/")[2:] for _, p, _, _ in sent(server, "/echo/")]
    assert len(got) == 30
    assert all(a in "123" and d in "123" and t in "23" and n == "3" for a, d, t, n in got), got
    # 30 users pick among three: all of them picking the same one is (1/3)^29
    assert len({a for a, _, _, _ in got}) > 1 and len({d for _, d, _, _ in got}) > 1, got


def test_capture_expressions_are_templates(mesh, tmp_path, server):
    """As Artillery renders a capture's json, regexp and header (and a match's) from the
    user's variables for each response."""
    steps = ['get: {url: /items, capture: [{json: "$.items[{{ i }}].id", as: j}, '
             '{regexp: "\\"id\\": ({{ d }})", group: 1, as: r}, {header: "{{ h }}", as: ct}], '
             'match: {json: "$.items[{{ i }}].id", value: 2}}',
             'get: {url: "/echo/{{ j }}/{{ r }}/{{ ct }}"}']
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 1}]", steps,
                      "  variables: {i: 1, d: 3, h: content-type}\n")
    rep, _ = run_report(mesh, tmp_path, script)
    assert rep["aggregate"]["counters"]["vusers.completed"] == 1
    assert [p for _, p, _, _ in sent(server, "/echo")] == ["/echo/2/3/application/json"]


def test_match_of_an_unset_value_is_undefined(mesh, tmp_path, server):
    """A match's value that is only a variable not set is undefined, as Artillery renders it:
    a JSONPath that finds nothing equals it, a header that finds nothing ("") does not."""
    steps = ['get: {url: /json, match: {json: "$.nope", value: "{{ nope }}"}}',
             'get: {url: /echo/a}',
             'get: {url: /json, match: {header: x-nope, value: "{{ nope }}"}}',
             'get: {url: /echo/never}']
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 1}]", steps)
    rep, _ = run_report(mesh, tmp_path, script)
    c = rep["aggregate"]["counters"]
    assert c["errors.Failed capture or match"] == 1 and c["vusers.failed"] == 1, c
    assert [p for _, p, _, _ in sent(server, "/echo")] == ["/echo/a"]


def test_json_capture_filters_are_refused(mesh, tmp_path, server):
    steps = ['get: {url: /items, capture: {json: "$.items[?(@.id > 1)].id", as: x}}',
             'get: {url: /items, capture: {json: "$.items[0", as: y}}']
    code, out, err = run_load(mesh, tmp_path,
                              one_flow(server.url, "[{duration: 1, arrivalCount: 1}]", steps))
    assert code == 2, out + err
    assert "test.yml:6: capture.json: filters and expressions such as [?(@.id > 1)] are not " \
        "supported" in err, err
    assert "test.yml:7: capture.json: \"$.items[0\" is not a JSONPath this reads" in err, err
    assert not sent(server, "/")


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


def sent(server, prefix):
    """(method, path, headers, body) of the requests whose path starts with prefix."""
    with server.lock:
        return [(r[1], r[2], r[3], r[4]) for r in server.requests if r[2].startswith(prefix)]


def test_selector_capture_sends_a_form_token_back(mesh, tmp_path, server):
    """The CSRF token of an HTML form, captured with a CSS selector as Artillery's cheerio
    captures it, goes back in the form each user posts; an option's value is its text, and
    without attr a capture is the element's attributes."""
    steps = ['get: {url: /form, capture: ['
             '{selector: "form input[name=_csrf]", attr: value, as: csrf}, '
             '{selector: "select[name=lang] > option", index: last, attr: value, as: lang}, '
             '{selector: ".login input[type=CHECKBOX]", as: box}]}',
             'post: {url: /echo/login, form: {_csrf: "{{ csrf }}", lang: "{{ lang }}", '
             'box: "{{ box.name }}"}}']
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 3}]", steps)
    rep, _ = run_report(mesh, tmp_path, script)
    c = rep["aggregate"]["counters"]
    assert c["vusers.completed"] == 3 and "errors.Failed capture or match" not in c, c
    posted = [parse_qs(body.decode()) for _, _, _, body in sent(server, "/echo/login")]
    with server.lock:
        tokens = list(server.tokens)
    # each token served (t<N>&x, as the page escapes it: t<N>&amp;x) comes back once
    assert len(tokens) == 3 and sorted(p["_csrf"][0] for p in posted) == sorted(tokens), posted
    assert [p["lang"] for p in posted] == [["Deutsch"]] * 3
    assert [p["box"] for p in posted] == [["remember"]] * 3


def test_selector_captures_fail_and_match_as_the_others(mesh, tmp_path, server):
    """A selector may hold templates; one that finds nothing sets "" when not strict, fails the
    user when strict; a match compares what it finds."""
    steps = ['get: {url: /form, capture: ['
             '{selector: "input[name={{ field }}]", attr: value, as: t}, '
             '{selector: "#nothing", attr: id, as: n, strict: false}]}',
             'get: {url: "/echo/a?t={{ t }}&n={{ n }}"}',
             'get: {url: /form, match: {selector: "button", attr: type, value: submit}}',
             'get: {url: /echo/b}',
             'get: {url: /form, capture: {selector: "input", attr: nothing, as: x}}',
             'get: {url: /echo/never}']
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 1}]", steps,
                      "  variables: {field: _csrf}\n")
    rep, _ = run_report(mesh, tmp_path, script)
    c = rep["aggregate"]["counters"]
    assert c["errors.Failed capture or match"] == 1 and c["vusers.failed"] == 1, c
    with server.lock:
        token = server.tokens[0]
    assert [p for _, p, _, _ in sent(server, "/echo")] == [f"/echo/a?t={token}&n=", "/echo/b"]


def test_selector_errors_are_named(mesh, tmp_path, server):
    """A selector outside the supported subset is refused when the script is read."""
    steps = ['get: {url: /form, capture: {selector: "input:first", attr: value, as: a}}',
             'get: {url: /form, capture: {selector: "a + b", as: b}}',
             'get: {url: /form, capture: {selector: "input", index: middle, as: c}}',
             'get: {url: /json, capture: {json: "$.items", attr: id, as: d}}',
             'get: {url: /form, capture: {selector: "[name=\'x]", as: e}}',
             'get: {url: /form, capture: {selector: "[name={{ x]", as: f}}']
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 1}]", steps)
    code, out, err = run_load(mesh, tmp_path, script)
    assert code == 2, out + err
    assert "test.yml:6: capture.selector: the pseudo-class :first is not supported" in err, err
    assert "test.yml:7: capture.selector: the sibling combinators + and ~ are not supported" \
        in err
    assert 'test.yml:8: capture.index: want a number, "last" or "random"' in err
    assert "test.yml:9: capture.attr: only a selector capture takes it" in err
    assert "test.yml:10: capture.selector: an attribute value without its closing '" in err
    assert err.count("test.yml:11: capture.selector: \"{{\" without \"}}\"") == 1, err
    assert not sent(server, "/")


def test_auth_forms_and_bodies(mesh, tmp_path, server):
    steps = ['post: {url: /echo, auth: {user: "{{ u }}", pass: "p:w"}, '
             'form: {a: "x y", b: "{{ u }}&=", "c d": "é"}}',
             'put: {url: /echo, formData: {name: "{{ u }}", meta: {value: "{\\"k\\": 1}", '
             'contentType: application/json}}}',
             'get: {url: "/echo?a=1", qs: {q: "a b/c", n: "{{ u }}"}}']
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 1}]", steps,
                      "  variables: {u: ann}\n")
    rep, _ = run_report(mesh, tmp_path, script)
    assert rep["aggregate"]["counters"]["vusers.completed"] == 1
    form, multi, qs = sent(server, "/echo")
    assert form[2]["Authorization"] == "Basic YW5uOnA6dw==", form  # ann:p:w
    assert form[2]["Content-Type"] == "application/x-www-form-urlencoded"
    assert form[3] == b"a=x+y&b=ann%26%3D&c+d=%C3%A9"
    ctype = multi[2]["Content-Type"]
    boundary = ctype.split("boundary=")[1]
    assert ctype.startswith("multipart/form-data; boundary=") and len(boundary) == 50
    assert multi[3].decode() == (
        f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\nann\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="meta"\r\n'
        f'Content-Type: application/json\r\n\r\n{{"k": 1}}\r\n--{boundary}--\r\n')
    # qs replaces the url's query string, as got's searchParams does
    assert qs[1] == "/echo?q=a+b%2Fc&n=ann", qs


def test_json_body_leaves_out_unset_variables(mesh, tmp_path, server):
    """As Artillery sends a json body: a value that is only a variable not set is undefined,
    which JSON.stringify leaves out of an object and writes as null in a list."""
    steps = ['post: {url: /echo, json: {a: "{{ nope }}", l: [1, "{{ nope }}", "{{ z }}"], '
             'n: {m: "{{ nope }}", k: 2}, z: "{{ z }}", nul: "{{ nul }}"}}']
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 1}]", steps,
                      "  variables: {z: 0, nul: null}\n")
    rep, _ = run_report(mesh, tmp_path, script)
    assert rep["aggregate"]["counters"]["vusers.completed"] == 1
    (body,) = [r[3] for r in sent(server, "/echo")]
    assert json.loads(body) == {"l": [1, None, 0], "n": {"k": 2}, "z": 0, "nul": None}, body


def test_json_body_leaves_out_unset_dollar_variables(mesh, tmp_path, server):
    """The same for the names Artillery gives with a "$": $env.NAME and
    $processEnvironment.NAME read process.env, where a variable not set is undefined;
    $environment without -e, $loopElement outside a loop and any other $name not set are
    undefined too."""
    steps = ['post: {url: /echo, json: {a: "{{ $nope }}", e: "{{ $env.MESH_TEST_UNSET }}", '
             'p: "{{ $processEnvironment.MESH_TEST_UNSET }}", s: "{{ $env.MESH_TEST_SET }}", '
             'env: "{{ $environment }}", le: "{{ $loopElement }}", '
             'l: ["{{ $nope }}", "{{ $env.MESH_TEST_UNSET }}", '
             '"{{ $processEnvironment.MESH_TEST_SET }}"]}}']
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 1}]", steps)
    assert "MESH_TEST_UNSET" not in os.environ
    rep, _ = run_report(mesh, tmp_path, script, env={"MESH_TEST_SET": "yes"})
    assert rep["aggregate"]["counters"]["vusers.completed"] == 1
    (body,) = [r[3] for r in sent(server, "/echo")]
    assert json.loads(body) == {"s": "yes", "l": [None, None, "yes"]}, body

def test_json_body_keeps_the_loop_variables_types(mesh, tmp_path, server):
    """"{{ $loopCount }}" and "{{ $loopElement }}" alone are the values, as Artillery sends
    them: a number and the element itself, not their text."""
    steps = ['loop: [{post: {url: /echo, json: {c: "{{ $loopCount }}", e: "{{ $loopElement }}", '
             'r: "{{ $randomNumber(1, 1) }}"}}}]\n        over: [{k: 1}, 2]']
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 1}]", steps)
    rep, _ = run_report(mesh, tmp_path, script)
    assert rep["aggregate"]["counters"]["vusers.completed"] == 1
    bodies = [json.loads(r[3]) for r in sent(server, "/echo")]
    assert bodies == [{"c": 0, "e": {"k": 1}, "r": "1"}, {"c": 1, "e": 2, "r": "1"}], bodies

def test_cookie_jar_per_user(mesh, tmp_path, server):
    """Set-Cookie goes into the user's own jar and comes back on later requests that match;
    cookie: values (and config.defaults.cookie) go into the jar too; users share nothing."""
    steps = ['get: {url: "/echo?first=1"}',
             'get: {url: "/setcookie?c=sid%3D{{ $randomNumber(1, 1000000) }}%3B%20Path%3D%2F'
             '&c=deep%3D1%3B%20Path%3D%2Fecho%2Fdeep&c=gone%3D1%3B%20Max-Age%3D0"}',
             'get: {url: "/echo?second=1", cookie: {extra: "{{ n }}"}}',
             'get: {url: "/echo/deep/x"}']
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 3}]", steps,
                      "  variables: {n: 5}\n  defaults: {cookie: {team: blue}}\n")
    rep, _ = run_report(mesh, tmp_path, script)
    assert rep["aggregate"]["counters"]["vusers.completed"] == 3
    first = [h.get("Cookie") for _, p, h, _ in sent(server, "/echo?first")]
    second = [h.get("Cookie") for _, p, h, _ in sent(server, "/echo?second")]
    deep = [h.get("Cookie") for _, p, h, _ in sent(server, "/echo/deep")]
    assert first == ["team=blue"] * 3, first
    sids = set()
    for c in second:
        parts = c.split("; ")  # same path: in the order they were set
        assert parts[0] == "team=blue" and parts[1].startswith("sid=") and parts[2] == "extra=5", c
        sids.add(parts[1])
    assert len(sids) == 3  # each user its own jar
    for c in deep:
        # the longer paths first; config's cookie, set again at /echo/deep/x, got the default
        # path /echo/deep, a second cookie of that name (as tough-cookie keeps it)
        assert re.fullmatch(r"deep=1; team=blue; team=blue; sid=\d+; extra=5", c), c


def test_redirects_are_followed(mesh, tmp_path, server):
    """Each hop is a request and a response with its own code, as in Artillery; checks,
    captures and endpoint metrics see the last response; a 303 turns a POST into a GET;
    followRedirect: false stops at the 3xx; more than 10 hops is ERR_TOO_MANY_REDIRECTS."""
    to_json = "/redirect?to=/json"
    steps = [f'post: {{url: "/redirect?code=303&to={server.url}{to_json}", json: {{a: 1}}, '
             'capture: {json: "$.items[0].id", as: id}, expect: {statusCode: 200}}',
             'get: {url: "/echo?id={{ id }}"}',
             'post: {url: "/redirect?code=307&to=echo%3Fkept", body: "b"}',
             'get: {url: "/redirect?to=/nowhere", followRedirect: false, '
             'expect: {statusCode: 302}}',
             'get: {url: "/redirect?to=/redirect%3Fto%3D/redirect%253Fto%253D/json"}']
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 1}]", steps,
                      "  plugins: {expect: {outputFormat: silent}}\n")
    rep, _ = run_report(mesh, tmp_path, script)
    c = rep["aggregate"]["counters"]
    assert c["vusers.completed"] == 1, c
    assert c["http.requests"] == 11 and c["http.responses"] == 11, c
    assert c["http.codes.303"] == 1 and c["http.codes.307"] == 1 and c["http.codes.302"] == 5
    assert c["plugins.expect.ok"] == 2 and "plugins.expect.failed" not in c
    assert "http.response_time.3xx" in rep["aggregate"]["summaries"]
    assert c["plugins.metrics-by-endpoint./redirect.codes.200"] == 3, c
    hops = [(m, p, b) for m, p, _, b in sent(server, "/")]
    assert hops[:5] == [("POST", f"/redirect?code=303&to={server.url}{to_json}", b'{"a":1}'),
                        ("GET", "/redirect?to=/json", b""), ("GET", "/json", b""),
                        ("GET", "/echo?id=42", b""), ("POST", "/redirect?code=307&to=echo%3Fkept",
                                                      b"b")]
    assert hops[5] == ("POST", "/echo?kept", b"b")
    assert hops[6] == ("GET", "/redirect?to=/nowhere", b"")


def test_too_many_redirects(mesh, tmp_path, server):
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 1}]",
                      ['get: {url: "/redirect"}'])
    rep, _ = run_report(mesh, tmp_path, script)
    c = rep["aggregate"]["counters"]
    assert c["errors.ERR_TOO_MANY_REDIRECTS"] == 1 and c["vusers.failed"] == 1, c
    assert c["http.requests"] == 11 and c["http.codes.302"] == 11, c
