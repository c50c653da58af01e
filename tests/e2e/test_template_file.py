"""`mesh template`'s file function against a live `mesh agent`: the file's content is
rendered, a change to the file is rendered again (it is polled, as consul-template polls it),
and a file that does not exist stops `mesh template` with consul-template's error.
"""

import subprocess

from helpers import HOST, wait_until
from test_template import read, template_factory  # noqa: F401 (fixture)


def test_file_is_rendered_and_followed(agent, tmp_path, template_factory):
    data, src, out = tmp_path / "upstreams.txt", tmp_path / "f.ctmpl", tmp_path / "f.cfg"
    data.write_text("a:1\n")
    # with a registry query beside it: both feed the same render
    src.write_text('{{ file "' + str(data) + '" | trimSpace }};{{ keyOrDefault "f/x" "d" }}\n')
    t = template_factory(["-consul-addr", f"{HOST}:{agent.port}", "-template", f"{src}:{out}"])
    wait_until(lambda: read(out) == "a:1;d\n", 15, what="the file's content rendered")

    data.write_text("a:1,b:2\n")
    wait_until(lambda: read(out) == "a:1,b:2;d\n", 15, what="the change rendered")
    agent.put_true("/v1/kv/f/x", "v")
    wait_until(lambda: read(out) == "a:1,b:2;v\n", 15, what="the key rendered beside it")
    assert t.running()


def test_a_missing_file_stops_with_consul_templates_error(agent, tmp_path, mesh):
    src, out = tmp_path / "m.ctmpl", tmp_path / "m.cfg"
    missing = tmp_path / "nope.txt"
    src.write_text('{{ file "' + str(missing) + '" }}\n')
    r = subprocess.run([mesh, "template", "-consul-addr", f"{HOST}:{agent.port}",
                        "-template", f"{src}:{out}"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1, r.stderr
    assert f"file({missing}): stat {missing}: no such file or directory" in r.stderr
    assert read(out) is None
