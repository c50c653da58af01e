"""scripts/check-includes enforces the layering: no include across components, and the
registry's folder rules (src/registry/*/README.md).

The tests copy src/, apps/ and scripts/ into a scratch tree and break rules there: the script
must name each offending line and fail; the tree as committed passes.
"""

import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def tree(tmp_path):
    for d in ("src", "scripts", "apps"):
        shutil.copytree(os.path.join(ROOT, d), tmp_path / d)
    return tmp_path


def run(tree):
    return subprocess.run(["sh", str(tree / "scripts" / "check-includes")],
                          capture_output=True, text=True, timeout=60)


def add_include(tree, path, line):
    p = tree / path
    text = p.read_text()
    p.write_text(line + "\n" + text)


def test_the_tree_passes(tree):
    r = run(tree)
    assert r.returncode == 0, r.stdout + r.stderr


BROKEN = [
    ("src/registry/state/state.c", '#include "registry/api/api.h"'),
    ("src/registry/state/acl.c", '#include "registry/agent/agent_config.h"'),
    ("src/registry/api/api_health.c", '#include "registry/agent/agent_internal.h"'),
    ("src/registry/api/api_kv.c", '#include "registry/cluster/cluster.h"'),
    ("src/registry/dns/dns.c", '#include "registry/cluster/members.h"'),
    ("src/registry/dns/dns_remote.c", '#include "registry/agent/agent_internal.h"'),
    ("src/registry/dns/dns_server.c", '#include "registry/agent/sync.h"'),
    ("src/registry/cluster/members.c", '#include "registry/dns/dns.h"'),
    ("src/registry/cluster/coord.c", '#include "registry/agent/agent_internal.h"'),
    ("src/registry/cluster/forward.c", '#include "registry/agent/sync.h"'),
    ("src/registry/cluster/cluster.c", "#include <raft.h>"),
    # nothing but agent/ includes agent/: the settings are registry/settings/
    ("src/registry/api/api_txn.c", '#include "registry/agent/agent_config.h"'),
    ("src/registry/api/decode.h", '#include "registry/agent/checks.h"'),
    ("src/registry/dns/dns.h", '#include "registry/agent/agent_config.h"'),
    ("src/registry/cluster/api_status.c", '#include "registry/agent/agent_config.h"'),
    ("src/registry/settings/settings.h", '#include "registry/api/api.h"'),
]


def test_each_broken_folder_rule_is_named(tree):
    for path, line in BROKEN:
        add_include(tree, path, line)
    r = run(tree)
    assert r.returncode == 1
    for path, line in BROKEN:
        assert f"{path}:1:{line}" in r.stdout
    assert len(r.stdout.splitlines()) == len(BROKEN)
    assert "registry folder rule" in r.stderr


def test_replication_may_include_libraft(tree):
    add_include(tree, "src/registry/cluster/replication.c", "#include <raft.h>")
    r = run(tree)
    assert r.returncode == 0, r.stdout + r.stderr


CROSSING = [
    ("src/lib/buf.c", '#include "registry/state/state.h"'),  # lib includes a component
    ("src/lb/proxy.c", '#include "load/report.h"'),  # a component includes another
    ("apps/webapp/webapp.c", '#include "pm/spec.h"'),  # an app includes a component
]


def test_each_include_across_components_is_named(tree):
    for path, line in CROSSING:
        add_include(tree, path, line)
    add_include(tree, "src/main.c", '#include "load/report.h"')  # the dispatcher may
    r = run(tree)
    assert r.returncode == 1
    assert "an include crosses components" in r.stderr
    for path, line in CROSSING:
        assert f"{path}:1:{line}" in r.stdout
    assert "src/main.c" not in r.stdout
