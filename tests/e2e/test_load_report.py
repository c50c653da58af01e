"""End-to-end tests of `mesh load report` (and `mesh load run --report`): the HTML page made from
a report that a real `mesh load run` wrote against a webapp, and from a report that real
Artillery 2.0.34 wrote (fixtures/artillery-report.json: 22 s at 4 users/s over / and
/status/503, three 10 s periods). The page is parsed, its tags checked for balance, and the chart
data it embeds read back."""

import json
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from helpers import mesh_bin
from test_webapp import webapp_factory  # noqa: F401  (fixture)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
CHARTS = ["rate", "latency", "codes", "errors", "served"]
VOID = {"meta", "br", "img", "input", "link", "hr"}


class Page(HTMLParser):
    """Checks that every element closes in order and collects what the tests look at."""

    def __init__(self, text):
        super().__init__()
        self.stack, self.errors, self.sections, self.scripts, self.external = [], [], [], [], []
        self._script = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("script", "link", "img") and (a.get("src") or a.get("href")):
            self.external.append((tag, a))
        if tag == "section":
            self.sections.append(a.get("id"))
        if tag == "script":
            self._script = {"attrs": a, "text": ""}
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()
        if tag == "script":
            self.scripts.append(self._script)
            self._script = None

    def handle_data(self, data):
        if self._script is not None:
            self._script["text"] += data

    def view(self):
        for s in self.scripts:
            if s["attrs"].get("id") == "report-view":
                return json.loads(s["text"])
        raise AssertionError("no embedded report view")


def mesh(*args, timeout=60):
    return subprocess.run([mesh_bin(), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, check=False)


def read_page(path):
    page = Page(Path(path).read_text())
    assert not page.errors, page.errors
    assert page.stack == [], f"unclosed: {page.stack}"
    assert not page.external, f"the page loads external assets: {page.external}"
    assert [f"chart-{c}" for c in CHARTS] == page.sections
    # The page's own stylesheet-free script plus the data: nothing else runs.
    assert len(page.scripts) == 2
    return page


def series(view, chart, name):
    c = next(c for c in view["charts"] if c["id"] == chart)
    for s in c["series"]:
        if s["name"] == name:
            return s["values"]
    return None


def test_report_of_a_real_run(tmp_path, webapp_factory):  # noqa: F811
    app = webapp_factory("-no-register", "-node", "web1", "-instance", "0")
    script = tmp_path / "short.yml"
    script.write_text(f"""config:
  target: "http://127.0.0.1:{app.port}"
  phases:
    - duration: 2
      arrivalRate: 10
      name: "steady <b>"
scenarios:
  - name: "home"
    flow:
      - get:
          url: "/"
      - get:
          url: "/status/503"
""")
    out = tmp_path / "run.json"
    run = mesh("load", "run", "--quiet", "--output", out, "--report", tmp_path / "direct.html",
               script)
    assert run.returncode == 0, run.stderr

    r = mesh("load", "report", out)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"Report written to {tmp_path / 'run.html'}"
    page = read_page(tmp_path / "run.html")
    view = page.view()
    assert view["source"] == "timeline"
    assert len(view["t"]) >= 2
    report = json.loads(out.read_text())
    counters = report["aggregate"]["counters"]
    # Per-second rates add up to the run's totals.
    assert sum(series(view, "rate", "requests/s")) == counters["http.requests"]
    assert sum(series(view, "codes", "200")) == counters["http.codes.200"]
    assert sum(series(view, "codes", "503")) == counters["http.codes.503"]
    assert sum(series(view, "served", "web1/0")) == counters["http.requests"]
    assert view["phases"] == [{"name": "steady <b>", "start": 0, "end": 2}]
    text = (tmp_path / "run.html").read_text()
    assert "steady &lt;b&gt;" in text and "steady <b>" not in text
    assert "<td>web1/0</td>" in text
    assert f"<td>http.codes.503</td><td>{counters['http.codes.503']}</td>" in text

    # --report on the run writes the same kind of page.
    assert read_page(tmp_path / "direct.html").view()["source"] == "timeline"


def test_report_of_an_artillery_run(tmp_path):
    out = tmp_path / "page.html"
    r = mesh("load", "report", FIXTURES / "artillery-report.json", "-o", out)
    assert r.returncode == 0, r.stderr
    page = read_page(out)
    view = page.view()
    assert view["source"] == "intermediate"
    assert view["t"] == [0, 10, 20]
    report = json.loads((FIXTURES / "artillery-report.json").read_text())
    periods = report["intermediate"]
    # Codes per second: each period's count over its 10 s.
    assert series(view, "codes", "503") == pytest.approx(
        [p["counters"].get("http.codes.503", 0) / 10 for p in periods])
    assert series(view, "served", "web1/0") is None
    text = out.read_text()
    assert "Artillery (no meshkit section)" in text
    assert "<td>vusers.created_by_name.unavailable</td>" in text


def test_flags_after_the_file_and_default_name(tmp_path):
    src = tmp_path / "art.json"
    src.write_bytes((FIXTURES / "artillery-report.json").read_bytes())
    r = mesh("load", "report", src)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "art.html").exists()
    r = mesh("load", "report", "--output", tmp_path / "x.html", src)
    assert r.returncode == 0 and (tmp_path / "x.html").exists()


@pytest.mark.parametrize("content,message", [
    (None, "No such file or directory"),
    ('{"aggregate": {"counters": {}},\n  "intermediate": [1,}\n', ":2: "),
    ('{"something": "else"}', "not a load report"),
    ("[1, 2]", "must be a JSON object"),
])
def test_bad_input(tmp_path, content, message):
    src = tmp_path / "in.json"
    if content is not None:
        src.write_text(content)
    r = mesh("load", "report", src, "-o", tmp_path / "out.html")
    assert r.returncode == 1
    assert r.stderr.startswith(f"mesh load report: {src}"), r.stderr
    assert message in r.stderr, r.stderr
    assert not (tmp_path / "out.html").exists()


def test_usage(tmp_path):
    r = mesh("load", "report", "--help")
    assert r.returncode == 0 and "mesh load report [options] REPORT.json" in r.stdout
    r = mesh("load", "report")
    assert r.returncode == 1 and "missing REPORT.json" in r.stderr
    r = mesh("load", "report", "a.json", "b.json")
    assert r.returncode == 1 and "one report file expected" in r.stderr
    r = mesh("load", "report", "-bogus", "a.json")
    assert r.returncode == 1 and "flag provided but not defined: -bogus" in r.stderr
