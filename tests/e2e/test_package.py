"""The Debian package (`make deb`) and the install rules (`make install`), tested from outside:
the package's file list, lintian, its systemd units, and the extracted binaries run from a
temporary root (the agent answers, the load balancer proxies, the man pages match -help).

`make check` builds the package and sets MESH_DEB; the package tests are skipped, saying so, when
the variable is unset (a plain `pytest tests/e2e` run). The install-rule test needs only the build
directory of MESH_BIN.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import HOST, Agent, mesh_bin, wait_until
from lb_helpers import Backend, Lb

DEB = os.environ.get("MESH_DEB")
needs_deb = pytest.mark.skipif(not DEB, reason="MESH_DEB unset: run `make check-package`")

UNITS = ("meshkit-agent.service", "meshkit-lb.service", "meshkit-pm.service")
EXPECTED_FILES = [
    "./usr/bin/mesh", "./usr/bin/webapp",
    "./etc/meshkit.d/agent.json", "./etc/meshkit/lb.json",
    "./usr/share/man/man1/mesh.1.gz", "./usr/share/man/man1/mesh-agent.1.gz",
    "./usr/share/man/man1/mesh-lb.1.gz", "./usr/share/man/man1/mesh-pm-start.1.gz",
    "./usr/share/man/man1/webapp.1.gz",
    "./usr/share/doc/meshkit/copyright", "./usr/share/doc/meshkit/examples/lb.json",
] + [f"./lib/systemd/system/{u}" for u in UNITS]


def run(args, timeout=120, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """The package extracted into a temporary root."""
    if not DEB:
        pytest.skip("MESH_DEB unset")
    r = tmp_path_factory.mktemp("root")
    p = run(["dpkg-deb", "-x", DEB, str(r)])
    assert p.returncode == 0, p.stderr
    return r


@needs_deb
def test_file_list_and_control_fields():
    p = run(["dpkg-deb", "-c", DEB])
    assert p.returncode == 0, p.stderr
    files = {line.split()[-1] for line in p.stdout.splitlines()}
    missing = [f for f in EXPECTED_FILES if f not in files]
    assert not missing, f"missing from the package: {missing}"
    # Every command has its page: the pages are written from the binary's own -help.
    pages = {f for f in files if f.startswith("./usr/share/man/man1/")}
    assert len(pages) > 40, pages
    # Nothing from a build tree or a test leaks into the package.
    assert not [f for f in files if re.search(r"build|tests/|\.pyc|/tmp/", f)], files

    info = run(["dpkg-deb", "-f", DEB, "Package", "Depends", "Architecture"]).stdout
    assert "Package: meshkit" in info
    depends = re.search(r"Depends: (.*)", info).group(1)
    for lib in ("libuv1", "libjansson4", "libssl3", "libyaml-0-2", "adduser"):
        assert lib in depends, depends


@needs_deb
def test_maintainer_scripts_create_the_user_and_keep_it_on_purge(tmp_path):
    p = run(["dpkg-deb", "-e", DEB, str(tmp_path / "control")])
    assert p.returncode == 0, p.stderr
    postinst = (tmp_path / "control" / "postinst").read_text()
    assert "adduser --system" in postinst and "meshkit" in postinst
    # dh_installsystemd: the agent is enabled; lb and pm wait for their configuration.
    assert "meshkit-agent.service" in postinst
    conffiles = (tmp_path / "control" / "conffiles").read_text().split()
    assert "/etc/meshkit.d/agent.json" in conffiles and "/etc/meshkit/lb.json" in conffiles


@needs_deb
def test_lintian_is_clean():
    if not shutil.which("lintian"):
        pytest.skip("lintian is not installed (scripts/install-deps check installs it)")
    changes = next(Path(DEB).parent.glob("meshkit_*.changes"))
    p = run(["lintian", "--fail-on", "error,warning", str(changes)], timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr


def unit_fields(text):
    fields = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            fields.setdefault(k.strip(), []).append(v.strip())
    return fields


@needs_deb
def test_units_are_notify_services_with_hardening(root):
    for unit in UNITS:
        f = unit_fields((root / "lib/systemd/system" / unit).read_text())
        assert f["Type"] == ["notify"], unit
        assert f["User"] == ["meshkit"], unit
        assert f["ProtectSystem"] == ["strict"] and f["NoNewPrivileges"] == ["yes"], unit
        assert f["Restart"] == ["on-failure"], unit
        assert f["ExecReload"], unit
        assert f["ExecStart"][0].startswith("/usr/bin/mesh "), unit
    agent = unit_fields((root / "lib/systemd/system/meshkit-agent.service").read_text())
    assert "-config-dir=/etc/meshkit.d" in agent["ExecStart"][0]
    assert "/var/lib/meshkit" in agent["ReadWritePaths"]


@needs_deb
def test_systemd_analyze_verify_accepts_the_units(root, tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed: the units were not verified")
    # verify checks that each command exists on this machine: point the units at the extracted
    # binary and at this machine's kill.
    kill = shutil.which("kill") or "/bin/kill"
    for unit in UNITS:
        text = (root / "lib/systemd/system" / unit).read_text()
        text = text.replace("/usr/bin/mesh", str(root / "usr/bin/mesh")).replace("/bin/kill",
                                                                                 kill)
        (tmp_path / unit).write_text(text)
    p = run(["systemd-analyze", "verify", "--man=no"] + [str(tmp_path / u) for u in UNITS])
    assert p.returncode == 0, p.stdout + p.stderr


@needs_deb
def test_extracted_binaries_serve(root, tmp_path, monkeypatch):
    mesh = str(root / "usr/bin/mesh")
    monkeypatch.setenv("MESH_BIN", mesh)  # the helpers start the packaged binary
    out = run([mesh, "version"]).stdout
    assert out.startswith("mesh v") and "libuv" in out, out

    # The agent, with the package's own configuration file (ports moved to free ones).
    agent = Agent(tmp_path, name="pkg", data_dir=tmp_path / "data",
                  config_files=[root / "etc/meshkit.d/agent.json"])
    backend = Backend(tmp_path, 0)
    lb = None
    try:
        agent.start()
        r = agent.put("/v1/agent/service/register",
                      {"Name": "web", "ID": "web1", "Address": HOST, "Port": backend.port})
        assert r.status == 200
        lb = Lb(mesh, tmp_path, "pkg", ["-config", str(root / "etc/meshkit/lb.json"),
                                         "-registry-addr", f"{HOST}:{agent.port}"])
        lb.start()
        status = wait_until(lambda: (lambda s: s if s == 200 else None)(lb.get("/")[0]), 15,
                            what="the packaged lb proxying to the registered backend")
        assert status == 200
    finally:
        if lb:
            lb.stop()
        agent.stop()
        backend.stop()


def test_install_rules_lay_out_a_prefix(tmp_path):
    """`cmake --install` of MESH_BIN's build directory into a DESTDIR (its configured prefix,
    as `make install PREFIX=...` sets it): binaries, units with the prefix's paths,
    configuration, docs, and man pages that match each command's -help."""
    build = Path(mesh_bin()).parent
    if not (build / "cmake_install.cmake").exists():
        pytest.skip(f"{build} is not a CMake build directory")
    cache = (build / "CMakeCache.txt").read_text()
    prefix_path = re.search(r"^CMAKE_INSTALL_PREFIX:PATH=(.*)$", cache, re.M).group(1)
    etc = "/etc" if prefix_path == "/usr" else f"{prefix_path}/etc"
    dest = tmp_path / "dest"
    env = dict(os.environ, DESTDIR=str(dest))
    p = run(["cmake", "--install", str(build)], env=env, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    prefix = dest / prefix_path.lstrip("/")
    assert os.access(prefix / "bin/mesh", os.X_OK) and os.access(prefix / "bin/webapp", os.X_OK)
    unit = (prefix / "lib/systemd/system/meshkit-agent.service").read_text()
    assert f"ExecStart={prefix_path}/bin/mesh agent -config-dir={etc}/meshkit.d" in unit
    assert (dest / etc.lstrip("/") / "meshkit.d/agent.json").exists()
    assert (prefix / "share/doc/meshkit/agent.md").exists()

    # The agent page lists exactly the flags `mesh agent -help` prints: generated, not copied.
    page = (prefix / "share/man/man1/mesh-agent.1").read_text()
    help_flags = re.findall(r"^  (-[a-z][\w-]*)", run([mesh_bin(), "agent", "-help"]).stdout,
                            re.M)
    page_flags = [f.replace("\\-", "-") for f in re.findall(r"^\.B (\\-[a-z][\w\\-]*)", page,
                                                             re.M)]
    assert help_flags and page_flags == help_flags
    if shutil.which("man"):
        for f in ("mesh.1", "mesh-agent.1", "mesh-pm-start.1", "webapp.1"):
            p = run(["man", "--warnings", "-l", str(prefix / "share/man/man1" / f)],
                    env=dict(os.environ, MANWIDTH="80"))
            assert p.returncode == 0 and not p.stderr.strip(), (f, p.stderr)
