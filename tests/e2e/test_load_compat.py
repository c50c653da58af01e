"""End-to-end tests of `mesh load run` on scripts as Artillery users write them: the forms
Artillery accepts beyond the ones our scenarios use (durations in words, a script without
phases, ...). Against the test server of test_load.py."""

import json
import re

from test_load import one_flow, run_load, run_report, server  # noqa: F401

# Think times are timed on a millisecond clock (libuv's, as Node's setTimeout in Artillery): a
# think can end up to a millisecond before its time has passed on a finer clock.
CLOCK_MS = 0.002


def test_durations_as_artillery_reads_them(mesh, tmp_path, server):
    """Phase durations, pauses and think times in the `ms` package's words ("10min",
    "2 hours"), as Artillery reads them."""
    phases = ('[{duration: "0.01min", arrivalCount: 1}, {pause: "200 Msecs"}, '
              '{duration: ".5 sec", arrivalCount: 1}]')
    script = one_flow(server.url, phases, ['get: {url: "/a"}', 'think: "300 milliseconds"',
                                           'get: {url: "/b"}'])
    rep, out = run_report(mesh, tmp_path, script)
    assert [p["duration_ms"] for p in rep["meshkit"]["phases"]] == [600, 200, 500], rep
    assert rep["aggregate"]["counters"]["vusers.completed"] == 2
    with server.lock:
        t = {}
        for when, _, path, _, _ in server.requests:
            t.setdefault(path, []).append(when)
    # each user waited its think time between its two requests
    assert len(t["/a"]) == 2 and len(t["/b"]) == 2
    assert all(b - a >= 0.3 - CLOCK_MS for a, b in zip(sorted(t["/a"]), sorted(t["/b"]))), t
    for bad in ("10 lightyears", "1.min", "-5min"):
        script = one_flow(server.url, f'[{{duration: "{bad}", arrivalCount: 1}}]',
                          ['get: {url: "/"}'])
        code, out, err = run_load(mesh, tmp_path, script)
        assert code == 2 and "test.yml:3: config.phases[0].duration: want seconds" in err, err


def test_think_times_from_templates(mesh, tmp_path, server):
    """A think time may be a template, rendered from the user's variables each time it runs,
    as Artillery's is; one that reads as no duration fails the user with Artillery's error."""
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 2}]",
                      ['get: {url: "/a"}', 'think: "{{ pause }}"', 'get: {url: "/b"}'],
                      '  variables: {pause: ["300ms", "0.3"]}\n')
    rep, out = run_report(mesh, tmp_path, script)
    c = rep["aggregate"]["counters"]
    assert c["vusers.completed"] == 2 and c["http.requests"] == 4, c
    with server.lock:
        t = {}
        for when, _, path, _, _ in server.requests:
            t.setdefault(path, []).append(when)
    assert all(b - a >= 0.3 - CLOCK_MS for a, b in zip(sorted(t["/a"]), sorted(t["/b"]))), t
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 1}]",
                      ['think: "{{ nope }}"', 'get: {url: "/c"}'],
                      '  variables: {bad: "soon"}\n')
    rep, out = run_report(mesh, tmp_path, script)
    c = rep["aggregate"]["counters"]
    assert c["vusers.failed"] == 1 and "http.requests" not in c, c
    assert c["errors.val is not a non-empty string or a valid number. val=undefined"] == 1, c
    rep, out = run_report(mesh, tmp_path, script.replace("nope", "bad"))
    assert rep["aggregate"]["counters"]["errors.Invalid think time: soon"] == 1


def test_a_script_without_phases_runs_one_user(mesh, tmp_path, server):
    """Artillery runs a script without config.phases (a functional test) as one user, and
    `--solo` makes any script one user."""
    script = (f'config:\n  target: "{server.url}"\n  environments:\n'
              '    load: {phases: [{duration: 1, arrivalRate: 5}]}\n'
              '    functional: {variables: {who: tester}}\n'
              'scenarios:\n  - flow:\n      - get: {url: "/solo?who={{ who }}"}\n')
    for args in ((), ("-e", "functional"), ("-e", "load", "--solo"), ("-s",)):
        rep, out = run_report(mesh, tmp_path, script, *args)
        c = rep["aggregate"]["counters"]
        assert c["vusers.created"] == 1 and c["vusers.completed"] == 1, (args, c)
        assert [p["duration_ms"] for p in rep["meshkit"]["phases"]] == [1000], rep
    with server.lock:
        paths = [path for _, _, path, _, _ in server.requests]
    assert paths == ["/solo?who=", "/solo?who=tester", "/solo?who=", "/solo?who="], paths


BODY_CHECKS = ('get: {url: "/json", capture: {json: "$.items[0].id", as: id}, expect: ['
               '{statusCode: "{{ code }}"}, {notStatusCode: [500, 503]}, '
               '{hasProperty: "items[0].id"}, {notHasProperty: "items[1]"}, '
               '{equals: ["{{ id }}", 42]}, {matchesRegexp: "\\"id\\": [0-9]+"}, '
               '{cdnHit: false}]}')


def test_expect_checks_on_the_body(mesh, tmp_path, server):
    """The expect plugin's checks beyond the head: hasProperty, notHasProperty, equals and
    matchesRegexp on the body, notStatusCode, cdnHit; templates in their values (the request's
    own captures included); a mapping whose every key is a check."""
    config = "  variables: {code: '200'}\n  plugins:\n    expect: {outputFormat: json}\n"
    failing = ('get: {url: "/", expect: {hasProperty: id, contentType: json, '
               'equals: ["{{ code }}", 201], matchesRegexp: "^nope"}}')
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 1}]", [BODY_CHECKS, failing],
                      config)
    code, out, err = run_load(mesh, tmp_path, script, "--output", str(tmp_path / "r.json"))
    assert code == 21, out + err
    c = json.loads((tmp_path / "r.json").read_text())["aggregate"]["counters"]
    for check in ("statusCode", "notStatusCode", "hasProperty", "notHasProperty", "equals",
                  "matchesRegexp"):
        assert c[f"plugins.expect.ok.{check}"] == 1, (check, c)
    assert c["plugins.expect.failed.cdnHit"] == 1  # no cache header: neither hit nor miss
    for check in ("hasProperty", "contentType", "equals", "matchesRegexp"):
        assert c[f"plugins.expect.failed.{check}"] == 1, (check, c)
    assert c["plugins.expect.ok"] == 6 and c["plugins.expect.failed"] == 5, c
    lines = [json.loads(line) for line in out.splitlines() if line.startswith('{"name"')]
    assert [r["url"] for r in lines] == ["/json", "/"], out
    assert lines[1]["results"] == [
        {"ok": False, "expected": "id", "type": "hasProperty",
         "got": "response body is not an object"},
        {"ok": False, "expected": "json", "type": "contentType",
         "got": "content-type is not JSON"},
        {"ok": False, "expected": "all values to be equal", "type": "equals", "got": "200, 201"},
        {"ok": False, "expected": True, "type": "matchesRegexp", "got": False}], lines[1]
    assert lines[0]["results"][1]["expected"] == "Status code different than 500,503"
    # what the plugin has no check for, or a pattern we cannot run, is refused by name
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 1}]",
                      ['get: {url: "/", expect: [{jmespath: "sort_by(a, &b)"}, '
                       '{matchesRegexp: "(?=x)"}, {statusCode: 200, hasHeader: x}]}'],
                      "  plugins: {expect: {}}\n")
    code, out, err = run_load(mesh, tmp_path, script)
    assert code == 2
    assert ('test.yml:7: expect.jmespath: "sort_by(a, &b)": the function sort_by() (length() '
            'is supported) is not supported at column 1') in err, err
    assert "test.yml:7: expect.matchesRegexp: lookahead and lookbehind are not supported" in err
    assert "test.yml:7: expect[2]: want one check" in err


def test_expect_jmespath_checks(mesh, tmp_path, server):
    """The expect plugin's jmespath (and jpath) checks: a JMESPath expression over a JSON body
    passes when its value is true as JavaScript takes it (an empty list is), with the check's
    description in the lines when it has one; a body that is not JSON fails it."""
    checks = ('[{jmespath: "length(items) == `1`"}, '
              '{jmespath: "items[?id > `40`].id | [0]", description: "an id over 40"}, '
              '{jpath: "items[*].missing"}, {jmespath: "items[0].id == \'42\'"}]')
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 1}]",
                      [f'get: {{url: "/json", expect: {checks}}}',
                       'get: {url: "/", expect: {jmespath: "@"}}'],
                      "  plugins:\n    expect: {outputFormat: json}\n")
    code, out, err = run_load(mesh, tmp_path, script, "--output", str(tmp_path / "r.json"))
    assert code == 21, out + err
    c = json.loads((tmp_path / "r.json").read_text())["aggregate"]["counters"]
    assert c["plugins.expect.ok.jmespath"] == 2 and c["plugins.expect.ok.jpath"] == 1, c
    assert c["plugins.expect.failed.jmespath"] == 2, c  # 42 is no '42'; the text body
    lines = [json.loads(line) for line in out.splitlines() if line.startswith('{"name"')]
    assert lines[0]["results"] == [
        {"ok": True, "expected": "length(items) == `1`", "type": "jmespath",
         "got": "length(items) == `1`"},
        {"ok": True, "expected": "an id over 40", "type": "jmespath",
         "got": "items[?id > `40`].id | [0]"},
        {"ok": True, "expected": "items[*].missing", "type": "jpath", "got": "items[*].missing"},
        {"ok": False, "expected": "items[0].id == '42'", "type": "jmespath",
         "got": "items[0].id == '42'"}], lines[0]
    assert lines[1]["results"] == [{"ok": False, "expected": "@", "type": "jmespath",
                                    "got": "response body is not an object"}], lines[1]
    # what the subset has no room for is refused, named with its column
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 1}]",
                      ['get: {url: "/", expect: [{jmespath: "items[*].{id: id}"}, '
                       '{jmespath: "items[0", description: 7}]}'], "  plugins: {expect: {}}\n")
    code, out, err = run_load(mesh, tmp_path, script)
    assert code == 2
    assert ('test.yml:7: expect.jmespath: "items[*].{id: id}": a multi-select hash .{k: v} is '
            'not supported at column 10') in err, err
    assert "test.yml:7: expect.description: want a string" in err, err


def test_config_templates_from_the_environment(mesh, tmp_path, server):
    """Artillery renders config templates when it reads the script: the target, phase values
    and payload paths may come from the environment ($processEnvironment, $env), the script's
    directory ($dirname) or the environment's name ($environment)."""
    (tmp_path / "ci.csv").write_text("7\n")
    script = ('config:\n  target: "{{ $processEnvironment.MESH_T_TARGET }}"\n'
              '  phases: [{duration: "{{ $env.MESH_T_DURATION }}", '
              'arrivalCount: "{{ $env.MESH_T_COUNT }}"}]\n'
              '  payload: {path: "{{ $dirname }}/{{ $environment }}.csv", fields: [id]}\n'
              '  environments: {ci: {}}\n'
              'scenarios:\n  - flow:\n      - get: {url: "/tmpl?id={{ id }}"}\n')
    env = {"MESH_T_TARGET": server.url, "MESH_T_DURATION": "1s", "MESH_T_COUNT": "3"}
    rep, out = run_report(mesh, tmp_path, script, "-e", "ci", env=env)
    assert rep["aggregate"]["counters"]["vusers.created"] == 3, rep["aggregate"]["counters"]
    with server.lock:
        assert [p for _, _, p, _, _ in server.requests] == ["/tmpl?id=7"] * 3
    # what an unset variable leaves is named
    code, out, err = run_load(mesh, tmp_path, script, env={**env, "MESH_T_COUNT": ""})
    assert code == 2
    assert ('test.yml:3: config.phases[0].arrivalCount: want a number from 0 to 1e9 '
            '("{{ $env.MESH_T_COUNT }}" reads "")') in err, err


def test_config_variables_are_config_templates(mesh, tmp_path, server):
    """config.variables are part of the config Artillery renders when it reads the script: a
    variable may come from the environment, the -e name or --variables, in a list too, and a
    template that is only one name keeps its value's type."""
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 2}]",
                      ['post: {url: "/v/{{ p }}/{{ e }}/{{ pick }}/{{ x }}", json: {n: "{{ n }}"}}'],
                      '  variables:\n    p: "{{ $processEnvironment.MESH_T_P }}"\n'
                      '    e: "{{ $environment }}"\n    n: "{{ count }}"\n'
                      '    pick: ["{{ $env.MESH_T_P }}-1", "{{ $env.MESH_T_P }}-1"]\n'
                      '  environments: {ci: {variables: {x: "{{ $env.MESH_T_P }}"}}}\n')
    rep, out = run_report(mesh, tmp_path, script, "-e", "ci", "-v", '{"count": 5}',
                          env={"MESH_T_P": "pp"})
    assert rep["aggregate"]["counters"]["vusers.completed"] == 2, rep["aggregate"]["counters"]
    with server.lock:
        sent = [(p, json.loads(b)) for _, _, p, _, b in server.requests]
    assert sent == [("/v/pp/ci/pp-1/pp", {"n": 5})] * 2, sent


def test_template_paths_as_lodash_reads_them(mesh, tmp_path, server):
    """A template's name is a path as lodash's get reads it, as Artillery looks it up:
    brackets index a list (a capture, a loadAll payload) and quote a key."""
    (tmp_path / "rows.csv").write_text("id,name\n7,x y\n")
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 1}]",
                      ['get: {url: "/json", capture: {json: "$.items", as: items}}',
                       'get: {url: "/p/{{ items[0].id }}/{{ rows[0].id }}/{{ m[\'a b\'] }}"}'],
                      '  payload: {path: rows.csv, name: rows, loadAll: true, fields: [id, name],'
                      ' skipHeader: true}\n  variables: {m: {"a b": q}}\n')
    rep, out = run_report(mesh, tmp_path, script)
    assert rep["aggregate"]["counters"]["vusers.completed"] == 1, rep["aggregate"]["counters"]
    with server.lock:
        assert [p for _, _, p, _, _ in server.requests] == ["/json", "/p/42/7/q"]


def test_every_user_has_artillerys_builtin_variables(mesh, tmp_path, server):
    """As Artillery's users have them: target, $environment, $dirname and $scenarioFile under
    the script's variables, and $uuid, each user's own id."""
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 2}]",
                      ['post: {url: "/b", json: {t: "{{ target }}", e: "{{ $environment }}", '
                       'd: "{{ $dirname }}", f: "{{ $scenarioFile }}", u: "{{ $uuid }}"}}'],
                      "  environments: {ci: {}}\n")
    rep, out = run_report(mesh, tmp_path, script, "-e", "ci")
    assert rep["aggregate"]["counters"]["vusers.completed"] == 2, rep["aggregate"]["counters"]
    with server.lock:
        bodies = [json.loads(b) for _, _, _, _, b in server.requests]
    for b in bodies:
        assert (b["t"], b["e"], b["d"], b["f"]) == (server.url, "ci", str(tmp_path),
                                                    str(tmp_path / "test.yml")), b
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
                            b["u"]), b
    assert bodies[0]["u"] != bodies[1]["u"]


def test_plugins_that_do_not_run_are_refused_by_name(mesh, tmp_path, server):
    """Artillery loads other plugins from npm (and only warns when one is missing); here none
    of them runs, so the script is refused, naming the plugin, rather than run without it."""
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 1}]", ['get: {url: "/"}'],
                      "  apdex: {threshold: 100}\n  plugins:\n    apdex: {}\n"
                      "    hello-world: {greeting: hi}\n    expcet: {}\n")
    code, out, err = run_load(mesh, tmp_path, script)
    assert code == 2
    assert "test.yml:4: config.apdex: not supported" in err, err
    assert ("test.yml:6: config.plugins.apdex: not supported (the plugins mesh load has are "
            "ensure, expect and metrics-by-endpoint, built in)") in err, err
    assert "test.yml:7: config.plugins.hello-world: not supported (the plugins" in err
    assert "test.yml:8: config.plugins.expcet: unknown plugin `expcet`, did you mean `expect`?" \
        in err


def test_variables_from_the_command_line(mesh, tmp_path, server):
    """--variables (-v) sets variables over config.variables, as Artillery's does: a value, or
    a list each user picks one element of."""
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 2}]",
                      ['get: {url: "/v?a={{ a }}&b={{ b }}&c={{ c }}"}'],
                      "  variables: {a: file, b: file}\n")
    rep, out = run_report(mesh, tmp_path, script, "--variables", '{"b": "flag", "c": [7]}')
    assert rep["aggregate"]["counters"]["vusers.completed"] == 2
    with server.lock:
        assert [p for _, _, p, _, _ in server.requests] == ["/v?a=file&b=flag&c=7"] * 2
    for bad, message in (('{"b": ', "--variables: "), ("[1]", "want a JSON object")):
        code, out, err = run_load(mesh, tmp_path, script, "-v", bad)
        assert code == 2 and "mesh load run: --variables: " in err and message in err, err


def test_dotenv_file_feeds_config_templates(mesh, tmp_path, server):
    """--dotenv FILE sets its variables in the environment before the script is read, so
    $processEnvironment templates see them; a variable already set keeps its value."""
    (tmp_path / ".env").write_text(
        "# the target\nexport MESH_T_TARGET = " + server.url + "  # a comment\n"
        "MESH_T_COUNT='2'\nMESH_T_WORD=\"a b\\nc\"\nMESH_T_KEPT=file\nnot a line\n")
    script = ('config:\n  target: "{{ $processEnvironment.MESH_T_TARGET }}"\n'
              '  phases: [{duration: 1, arrivalCount: "{{ $env.MESH_T_COUNT }}"}]\n'
              'scenarios:\n  - flow:\n      - post: {url: "/echo", json: '
              '{w: "{{ $env.MESH_T_WORD }}", k: "{{ $env.MESH_T_KEPT }}"}}\n')
    rep, out = run_report(mesh, tmp_path, script, "--dotenv", str(tmp_path / ".env"),
                          env={"MESH_T_KEPT": "shell"})
    assert rep["aggregate"]["counters"]["vusers.completed"] == 2
    with server.lock:
        bodies = [json.loads(b) for _, _, p, _, b in server.requests if p == "/echo"]
    assert bodies == [{"w": "a b\nc", "k": "shell"}] * 2, bodies
    code, out, err = run_load(mesh, tmp_path, script, "--dotenv", str(tmp_path / "none.env"))
    assert code == 2 and "mesh load run: --dotenv " in err and "none.env: No such file" in err


def test_an_environment_the_script_lacks_is_warned_about(mesh, tmp_path, server):
    """`-e NAME` for an environment the script does not define: Artillery warns and runs the
    script's own config, with $environment still NAME."""
    script = (f'config:\n  target: "{server.url}"\n  phases: [{{duration: 1, arrivalCount: 1}}]\n'
              '  environments: {quick: {phases: [{duration: 1, arrivalCount: 2}]}}\n'
              'scenarios:\n  - flow:\n      - get: {url: "/env?e={{ $environment }}"}\n')
    code, out, err = run_load(mesh, tmp_path, script, "-e", "nope")
    assert code == 0, err
    assert "WARNING: environment nope is set but is not defined in the script" in err, err
    with server.lock:
        assert [r[2] for r in server.requests] == ["/env?e=nope"], server.requests


def test_every_run_has_a_test_id(mesh, tmp_path, server):
    """$testId, in config templates and in every user's, is the run's id, printed first, as
    Artillery makes it (or ARTILLERY_TEST_RUN_ID)."""
    script = (f'config:\n  target: "{server.url}"\n  phases: [{{duration: 1, arrivalCount: 2}}]\n'
              '  variables: {tid: "{{ $testId }}"}\n'
              'scenarios:\n  - flow:\n      - get: {url: "/id?a={{ $testId }}&b={{ tid }}"}\n')
    code, out, err = run_load(mesh, tmp_path, script)
    assert code == 0, err
    m = re.search(r"^Test run id: (t[3-9a-hjkmnpqrtwxyz]{4}_[3-9a-hjkmnpqrtwxyz]{29}"
                  r"_[3-9a-hjkmnpqrtwxyz]{4})$", out, re.M)
    assert m, out
    with server.lock:
        assert [r[2] for r in server.requests] == [f"/id?a={m[1]}&b={m[1]}"] * 2
        server.requests.clear()
    code, out, err = run_load(mesh, tmp_path, script, env={"ARTILLERY_TEST_RUN_ID": "ci-42"})
    assert code == 0 and "Test run id: ci-42\n" in out, out + err
    with server.lock:
        assert [r[2] for r in server.requests] == ["/id?a=ci-42&b=ci-42"] * 2


def think_gaps(server):
    """Each user's time from its /a to its /b, paired by the user's $uuid."""
    with server.lock:
        t = {}
        for when, _, path, _, _ in server.requests:
            page, user = path.split("?u=")
            t.setdefault(user, {})[page] = when
        server.requests.clear()
    return [at["/b"] - at["/a"] for at in t.values()]


def test_think_jitter_from_the_defaults(mesh, tmp_path, server):
    """config.defaults.think.jitter spreads every think time either side, as Artillery's does:
    with 100 % of 0.4 s, some of 16 users think less than 0.4 s (each does with even odds);
    http.defaults.think, taken whole over defaults.think, has none, so none do."""
    flow = ['get: {url: "/a?u={{ $uuid }}"}', 'think: 0.4', 'get: {url: "/b?u={{ $uuid }}"}']
    jitter = '  defaults: {think: {jitter: "100%"}}\n'
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 16}]", flow, jitter)
    rep, out = run_report(mesh, tmp_path, script)
    assert rep["aggregate"]["counters"]["vusers.completed"] == 16
    gaps = think_gaps(server)
    assert len(gaps) == 16 and min(gaps) < 0.4 - CLOCK_MS, gaps
    script = one_flow(server.url, "[{duration: 1, arrivalCount: 16}]", flow,
                      jitter + "  http: {defaults: {think: {}}}\n")
    rep, out = run_report(mesh, tmp_path, script)
    gaps = think_gaps(server)
    assert len(gaps) == 16 and min(gaps) >= 0.4 - CLOCK_MS, gaps
    for bad in ('"lots"', "-5", '"5%%"'):
        script = one_flow(server.url, "[{duration: 1, arrivalCount: 1}]", flow,
                          f"  defaults: {{think: {{jitter: {bad}}}}}\n")
        code, out, err = run_load(mesh, tmp_path, script)
        assert code == 2 and ("test.yml:4: config.defaults.think.jitter: want milliseconds or a "
                              'percentage such as "20%"') in err, err
