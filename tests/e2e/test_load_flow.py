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
