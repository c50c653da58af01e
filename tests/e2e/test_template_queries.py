"""`mesh template`'s queries beyond the basic ones, against a live `mesh agent`: safeLs and
safeTree hold the file back while their prefix is empty (at first, and when it empties later),
where ls and tree would write an empty list; datacenters lists the registry's datacenters
and is asked again every 15 s, as consul-template polls it.
"""

import subprocess

from helpers import HOST, wait_until
from test_template import read, template_factory  # noqa: F401 (fixture)

SAFE_TEMPLATE = """\
{{- range safeTree "app/cfg" }}{{ .Key }}={{ .Value }}
{{ end }}top:{{ range safeLs "app/cfg" }} {{ .Key }}{{ end }}
"""


def log_count(t, text):
    return t.log_text().count(text)


def test_safe_tree_and_safe_ls_hold_the_file_while_the_prefix_is_empty(agent, tmp_path,
                                                                         template_factory):
    src, out = tmp_path / "safe.ctmpl", tmp_path / "safe.cfg"
    src.write_text(SAFE_TEMPLATE)
    t = template_factory(["-consul-addr", f"{HOST}:{agent.port}", "-template", f"{src}:{out}"])
    # the registry answered the empty prefix and the render held the file back
    wait_until(lambda: "new data for kv.list(app/cfg)" in t.log_text()
               and "waiting for 2 dependencies" in t.log_text(), 15, what="the held render")
    assert read(out) is None, t.log_tail()

    agent.put_true("/v1/kv/app/cfg/a", "1")
    agent.put_true("/v1/kv/app/cfg/d/b", "2")
    want = "a=1\nd/b=2\ntop: a\n"
    wait_until(lambda: read(out) == want, 15, what="the file once the prefix has keys")

    # emptied later, the prefix holds the render again: the last file stays
    held = log_count(t, "waiting for 2 dependencies")
    assert agent.delete("/v1/kv/app/cfg?recurse").status == 200
    wait_until(lambda: log_count(t, "waiting for 2 dependencies") > held, 15,
               what="the render held after the prefix emptied")
    assert read(out) == want
    assert t.running()


def test_datacenters_lists_the_registry_datacenter(agent, tmp_path, mesh):
    src, out = tmp_path / "dc.ctmpl", tmp_path / "dc.cfg"
    src.write_text("{{ range datacenters }}{{ . }};{{ end }}{{ datacenters true | len }}\n")
    r = subprocess.run([mesh, "template", "-consul-addr", f"{HOST}:{agent.port}", "-once",
                        "-template", f"{src}:{out}"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    want = agent.get_json("/v1/catalog/datacenters")
    assert want, "the agent lists no datacenter"
    assert read(out) == "".join(f"{dc};" for dc in want) + f"{len(want)}\n"


def test_datacenters_is_polled(agent_factory, tmp_path, template_factory):
    first = agent_factory()
    src, out = tmp_path / "dcs.ctmpl", tmp_path / "dcs.cfg"
    src.write_text("{{ range datacenters }}{{ . }};{{ end }}\n")
    t = template_factory(["-consul-addr", f"{HOST}:{first.port}", "-template", f"{src}:{out}"])
    wait_until(lambda: read(out) == "dc1;\n", 15, what="the first datacenter list")
    # the registry on that address comes back as another datacenter: the next poll sees it
    first.stop()
    agent_factory(http_port=first.port, extra_args=["-datacenter", "dc2"])
    wait_until(lambda: read(out) == "dc2;\n", 60, what="the datacenter list asked again")
    assert t.running()
