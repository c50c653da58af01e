"""`mesh template`'s queries beyond the basic ones, against a live `mesh agent`: safeLs and
safeTree hold the file back while their prefix is empty (at first, and when it empties later),
where ls and tree would write an empty list; datacenters lists the registry's datacenters
and is asked again every 15 s, as consul-template polls it; service and nodes take
consul-template's query options (?ns=...) and ~near, whose order the file keeps.
"""

import subprocess

from helpers import HOST, wait_until
from test_coordinate import coord
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


NEAR_TEMPLATE = """\
{{ range service "db~node1" }}{{ .Node }} {{ end }}
{{ range service "v1.db?ns=default&partition=default@dc1~far|passing,warning" }}{{ .Node }} {{ end }}
{{ range service "db" }}{{ .Node }} {{ end }}
{{ range nodes "?ns=default@dc1" }}{{ .Node }} {{ end }}
"""


def test_service_query_options_and_near(agent, tmp_path, mesh):
    for name, x in (("far", 0.050), ("near", 0.001), ("mid", 0.010)):
        agent.put_true("/v1/catalog/register", {
            "Node": name, "Address": "10.0.0.9",
            "Service": {"ID": "db", "Service": "db", "Tags": ["v1"]}})
        agent.put_ok("/v1/coordinate/update", {"Node": name, "Coord": coord(x)})
    src, out = tmp_path / "near.ctmpl", tmp_path / "near.cfg"
    src.write_text(NEAR_TEMPLATE)
    r = subprocess.run([mesh, "template", "-consul-addr", f"{HOST}:{agent.port}", "-once",
                        "-template", f"{src}:{out}"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    # by estimated round-trip time from the node named, where without ~near it is by node
    assert read(out) == ("near mid far \nfar mid near \nfar mid near \n"
                         "far mid near node1 \n")


def test_a_namespace_the_registry_refuses_holds_the_file(agent, tmp_path, template_factory):
    src, out = tmp_path / "ns.ctmpl", tmp_path / "ns.cfg"
    src.write_text('{{ range service "web?ns=team" }}{{ .ID }}{{ end }}\n')
    t = template_factory(["-consul-addr", f"{HOST}:{agent.port}", "-template", f"{src}:{out}"])
    # the query carries the namespace; an agent without namespaces refuses it (400)
    wait_until(lambda: "health.service(web?ns=team|passing)" in t.log_text()
               and "400" in t.log_text(), 15, what="the refused query logged")
    assert read(out) is None
    assert t.running()
