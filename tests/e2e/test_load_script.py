"""End-to-end tests of Artillery script features around the scenarios: the script's before and
after flows, Artillery 1's forms, the command line's ways to change a script. Against the test
server of test_load.py, which records every request."""

import json

from test_load import run_load, run_report, server  # noqa: F401


def paths(server):
    with server.lock:
        return [r[2] for r in server.requests]


def test_before_and_after_flows_run_once_around_the_phases(mesh, tmp_path, server):
    """before runs once before the phases and what it captured is every user's; after runs
    once at the end from before's variables; neither is in the measurements. A failed before
    stops the run (exit 1, as Artillery stops), and so does a failed after, once reported."""
    script = (f'config:\n  target: "{server.url}"\n'
              '  phases: [{duration: 1, arrivalCount: 3}]\n'
              '  variables: {v: file}\n'
              'before:\n  flow:\n'
              '    - get: {url: /json, capture: {json: "$.items[0].id", as: id}}\n'
              '    - log: "before {{ id }}"\n'
              'after:\n  flow:\n    - get: {url: "/echo?after={{ id }}&v={{ v }}"}\n'
              'scenarios:\n  - flow:\n      - get: {url: "/echo?id={{ id }}&v={{ v }}"}\n')
    rep, out = run_report(mesh, tmp_path, script)
    c = rep["aggregate"]["counters"]
    assert c["vusers.created"] == 3 and c["vusers.completed"] == 3, c
    assert c["http.requests"] == 3 and c["http.responses"] == 3, c
    assert "before 42" in out
    assert paths(server) == ["/json"] + ["/echo?id=42&v=file"] * 3 + ["/echo?after=42&v=file"]

    with server.lock:
        server.requests.clear()
    code, out, err = run_load(mesh, tmp_path, script.replace("$.items[0].id", "$.nope"))
    assert code == 1, out + err
    assert ("mesh load run: before: errors.Failed capture or match (the run does not start)"
            in err), err
    assert paths(server) == ["/json"]

    with server.lock:
        server.requests.clear()
    script = script.replace('"/echo?after={{ id }}&v={{ v }}"}',
                            '/json, capture: {json: "$.nope", as: x}}')
    code, out, err = run_load(mesh, tmp_path, script)
    assert code == 1 and "mesh load run: after: errors.Failed capture or match" in err, err
    assert "Summary report" in out
    assert paths(server) == ["/json"] + ["/echo?id=42&v=file"] * 3 + ["/json"]

    code, out, err = run_load(mesh, tmp_path, script.replace("before:\n  flow:\n",
                                                             "before:\n  flwo:\n"))
    assert code == 2 and "test.yml:6: before: missing flow" in err, err
    assert "before.flwo: unknown key `flwo`, did you mean `flow`?" in err, err


def test_match_checks_what_a_capture_finds(mesh, tmp_path, server):
    """Artillery 1's match: what a json, header or regexp spec finds must be the value (a
    template), compared as JavaScript's ===, so "42" is not the number 42; a strict match
    that fails fails the user as a failed capture does, strict: false lets it pass."""
    steps = ['get: {url: /json, match: {json: "$.items[0].id", value: 42}}',
             'get: {url: /json, match: [{json: "$.items[0].id", value: "{{ n }}"}, '
             '{header: content-type, value: application/json}, '
             '{regexp: \'"id": (\\d+)\', group: 1, value: "42"}]}',
             'get: {url: /json, match: {json: "$.items[0].id", value: "42", strict: false}, '
             'capture: {json: "$.items[0].id", as: id}}',
             'get: {url: "/echo?id={{ id }}"}',
             'get: {url: /json, match: {json: "$.items[0].id", value: "42"}}',
             'get: {url: "/echo?never"}']
    script = (f'config:\n  target: "{server.url}"\n'
              '  phases: [{duration: 1, arrivalCount: 1}]\n  variables: {n: 42}\n'
              'scenarios:\n  - flow:\n' + "".join(f"      - {s}\n" for s in steps))
    rep, out = run_report(mesh, tmp_path, script)
    c = rep["aggregate"]["counters"]
    assert c["errors.Failed capture or match"] == 1 and c["vusers.failed"] == 1, c
    assert paths(server) == ["/json"] * 3 + ["/echo?id=42", "/json"]

    code, out, err = run_load(mesh, tmp_path, script.replace("value: 42}", "valeu: 42}"))
    assert code == 2, out + err
    assert "match.valeu: unknown key `valeu`, did you mean `value`?" in err, err
    assert "match: want json: \"$.path\", header: NAME, regexp: PATTERN or selector: CSS, and " \
        "value: WHAT" in err, err


def test_config_file_and_overrides_are_laid_over_the_script(mesh, tmp_path, server):
    """--config FILE is merged over the script as lodash merges (a list element by element),
    $dirname naming its directory; --overrides JSON over that and the environment, a list
    replacing a list, and its config.target over -t; their mistakes name where they are."""
    script = (f'config:\n  target: "{server.url}"\n'
              '  phases: [{duration: 1, arrivalCount: 1}, {duration: 1, arrivalCount: 1}]\n'
              '  variables: {a: script, b: script, c: script}\n'
              '  environments:\n    e1: {variables: {c: env}}\n'
              'scenarios:\n  - flow:\n'
              '      - get: {url: "/c?a={{ a }}&b={{ b }}&c={{ c }}&d={{ d }}&p={{ p }}"}\n')
    (tmp_path / "conf").mkdir()
    conf = tmp_path / "conf" / "more.yml"
    (tmp_path / "conf" / "p.csv").write_text("conf\n")
    conf.write_text('config:\n  phases: [{arrivalCount: 2}]\n  variables: {a: conf}\n'
                    '  payload: {path: "{{ $dirname }}/p.csv", fields: [p]}\n')
    over = '{"config": {"variables": {"b": "ov", "c": "ov", "d": "ov"}}}'
    rep, out = run_report(mesh, tmp_path, script, "-e", "e1", "--config", str(conf),
                          "--overrides", over)
    assert rep["aggregate"]["counters"]["vusers.created"] == 3
    assert paths(server) == ["/c?a=conf&b=ov&c=ov&d=ov&p=conf"] * 3

    with server.lock:
        server.requests.clear()
    over = ('{"config": {"target": "%s", "phases": [{"duration": 1, "arrivalCount": 1}]}}'
            % server.url)
    rep, out = run_report(mesh, tmp_path, script, "-c", str(conf), "--overrides", over,
                          "-t", "http://127.0.0.1:1")
    assert rep["aggregate"]["counters"]["vusers.created"] == 1
    assert paths(server) == ["/c?a=conf&b=script&c=script&d=&p=conf"]

    conf.write_text("config:\n  phases:\n    - {duration: 1, arivalCount: 2}\n")
    code, out, err = run_load(mesh, tmp_path, script, "--config", str(conf), "--overrides",
                              '{"config": {"http": {"timeot": 1}}}')
    assert code == 2, out + err
    assert (f"{conf}:3: config.phases[0].arivalCount: unknown key `arivalCount`, did you mean "
            "`arrivalCount`?") in err, err
    assert "--overrides:1: config.http.timeot: unknown key `timeot`, did you mean `timeout`?" \
        in err, err
    code, out, err = run_load(mesh, tmp_path, script, "--overrides", '{"config": ')
    assert code == 2 and "--overrides:" in err and "did not find expected node" in err, err


def test_form_data_file_parts(mesh, tmp_path, server):
    """formData's {fromFile}: the file (next to the script) as a part with its file name and
    the Content-Type form-data gives its extension (or the one given), its bytes as they are."""
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "pic.png").write_bytes(b"\x89PNG\r\n\x00\xff{{ x }}")
    (tmp_path / "notes.dat").write_bytes(b"a\nb")
    script = (f'config:\n  target: "{server.url}"\n'
              '  phases: [{duration: 1, arrivalCount: 1}]\n'
              'scenarios:\n  - flow:\n      - post:\n          url: /up\n          formData:\n'
              '            title: "hi"\n'
              '            pic: {fromFile: ./files/pic.png}\n'
              '            notes: {fromFile: notes.dat, contentType: text/x-notes}\n')
    rep, out = run_report(mesh, tmp_path, script)
    assert rep["aggregate"]["counters"]["http.responses"] == 1
    with server.lock:
        (_, _, _, headers, body), = server.requests
    boundary = headers["Content-Type"].split("boundary=")[1].encode()
    parts = body.split(b"--" + boundary)
    assert parts[0] == b"" and parts[-1] == b"--\r\n", body
    assert parts[1:-1] == [
        b'\r\nContent-Disposition: form-data; name="title"\r\n\r\nhi\r\n',
        b'\r\nContent-Disposition: form-data; name="pic"; filename="pic.png"\r\n'
        b"Content-Type: image/png\r\n\r\n\x89PNG\r\n\x00\xff{{ x }}\r\n",
        b'\r\nContent-Disposition: form-data; name="notes"; filename="notes.dat"\r\n'
        b"Content-Type: text/x-notes\r\n\r\na\nb\r\n"], body

    code, out, err = run_load(mesh, tmp_path, script.replace("notes.dat", "none.dat")
                              .replace("./files/pic.png", '"{{ f }}"'))
    assert code == 2, out + err
    assert "test.yml:10: formData.pic.fromFile: want the path of a file (without templates" in err
    assert f"test.yml:11: formData.notes.fromFile: {tmp_path}/none.dat: No such file" in err, err


def test_expect_header_equals(mesh, tmp_path, server):
    """expect's headerEquals: [NAME, VALUE], counted under the plugin's own name for it
    (`header NAME values equals`), a missing header failing it."""
    script = (f'config:\n  target: "{server.url}"\n'
              '  phases: [{duration: 1, arrivalCount: 1}]\n'
              '  variables: {t: application/json}\n  plugins: {expect: {}}\n'
              'scenarios:\n  - flow:\n      - get: {url: /json, expect: ['
              '{headerEquals: [content-type, "{{ t }}"]}, {headerEquals: [content-type, x]}, '
              '{headerEquals: [x-none, a]}]}\n')
    out_json = tmp_path / "report.json"
    code, out, err = run_load(mesh, tmp_path, script, "--output", str(out_json))
    assert code == 21, out + err
    c = json.loads(out_json.read_text())["aggregate"]["counters"]
    assert c["plugins.expect.ok"] == 1 and c["plugins.expect.failed"] == 2, c
    assert c["plugins.expect.ok.header content-type values equals"] == 1, c
    assert c["plugins.expect.failed.header content-type values equals"] == 1, c
    assert c["plugins.expect.failed.header x-none values equals"] == 1, c
    assert "  not ok header x-none values equals response has no x-none header" in out, out
    code, out, err = run_load(mesh, tmp_path, script.replace("[x-none, a]", "[x-none]"))
    assert code == 2 and "expect.headerEquals: want [NAME, VALUE]" in err, err


def test_variables_reach_config_templates(mesh, tmp_path, server):
    """--variables are rendered into config templates too, as Artillery renders its config with
    them: the target's port and a phase's count here."""
    port = server.url.rsplit(":", 1)[1]
    script = ('config:\n  target: "http://127.0.0.1:{{ port }}"\n'
              '  phases: [{duration: 1, arrivalCount: "{{ n }}"}]\n'
              'scenarios:\n  - flow:\n      - get: {url: "/v?n={{ n }}"}\n')
    rep, out = run_report(mesh, tmp_path, script, "-v", '{"port": %s, "n": 2}' % port)
    assert rep["aggregate"]["counters"]["vusers.completed"] == 2
    assert paths(server) == ["/v?n=2"] * 2


def test_object_variables(mesh, tmp_path, server):
    """A variable may be an object, in config.variables and --variables alike, as Artillery
    takes it: templates read into it with dotted paths, a JSON body gets it whole."""
    script = (f'config:\n  target: "{server.url}"\n'
              '  phases: [{duration: 1, arrivalCount: 1}]\n'
              '  variables:\n    user: {name: ann, ids: [1, 2]}\n'
              'scenarios:\n  - flow:\n'
              '      - post: {url: "/o?n={{ user.name }}&k={{ opts.kind }}", '
              'json: {u: "{{ user }}"}}\n')
    rep, out = run_report(mesh, tmp_path, script, "-v", '{"opts": {"kind": "x"}}')
    assert rep["aggregate"]["counters"]["vusers.completed"] == 1
    with server.lock:
        (_, _, path, _, body), = server.requests
    assert path == "/o?n=ann&k=x"
    assert json.loads(body) == {"u": {"name": "ann", "ids": [1, 2]}}
