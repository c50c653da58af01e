"""End-to-end tests of PM2's max_memory_restart in `mesh pm`: an instance whose RSS grows past its
limit is restarted (one restart in `ls`, PM2's reason in the daemon's log), one under its limit is
left alone, and a limit that is not a size is refused with file:line.

The daemon checks memory every $PM2_WORKER_INTERVAL milliseconds (30 s by default, as PM2): each
test starts it with a short interval in its environment.
"""

import json
import os
import subprocess
import sys

from helpers import wait_until
from test_pm import mesh_bin, pm  # noqa: F401 (pm is a fixture)

# Grows by 1 MiB every 10 ms up to 120 MiB (bytes objects are written, so they count in RSS),
# then waits to be stopped.
GROW = r'''
import time
chunks = []
for _ in range(120):
    chunks.append(b"x" * (1 << 20))
    time.sleep(0.01)
time.sleep(3600)
'''

MIB = 1024 * 1024


def start_daemon(pm, interval_ms):
    env = dict(os.environ, PM2_WORKER_INTERVAL=str(interval_ms))
    r = subprocess.run([mesh_bin(), "pm", "-home", pm.home, "daemon"], env=env,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    pm._note_daemon()


def write_eco(tmp_path, apps):
    path = tmp_path / "eco.json"
    path.write_text(json.dumps({"apps": apps}, indent=1))
    return str(path)


def test_an_instance_past_its_limit_is_restarted_one_under_it_is_not(pm, tmp_path):
    start_daemon(pm, 200)
    # Under its limit: a python that only sleeps (about 10 MB), started with PM2's flag spelling.
    pm.run("start", "small", "--max-memory-restart", "100M", "--", sys.executable, "-c",
           "import time; time.sleep(3600)")
    small = pm.wait_status("small", "online")[0]
    eco = write_eco(tmp_path, [{"name": "grow", "script": sys.executable, "args": ["-c", GROW],
                                "max_memory_restart": "40M"}])
    pm.run("start", eco)
    first = pm.wait_status("grow", "online")[0]

    row = wait_until(lambda: (lambda r: r if r["restarts"] >= 1 else None)(pm.app("grow")[0]),
                     60, interval=0.1, what="grow restarted for its memory")
    assert row["pid"] != first["pid"]
    log = pm.log()
    assert (f"grow-0 (pid {first['pid']}) restarted because it exceeds --max-memory-restart value"
            in log), log[-3000:]
    assert f"max_memory_limit={40 * MIB} [octets]" in log
    # Checked in the same passes, and never restarted.
    after = pm.app("small")[0]
    assert after["restarts"] == 0 and after["pid"] == small["pid"] and after["status"] == "online"
    assert f"small-0 (pid {small['pid']}) restarted" not in log
    spec = json.loads(pm.run("describe", "grow", "-json").stdout)[0]["spec"]
    assert spec["max_memory_restart"] == 40 * MIB
    spec = json.loads(pm.run("describe", "small", "-json").stdout)[0]["spec"]
    assert spec["max_memory_restart"] == 100 * MIB


def test_a_limit_that_is_not_a_size_is_refused(pm, tmp_path):
    eco = tmp_path / "eco.json"
    eco.write_text('{"apps": [\n {"name": "a", "script": "sleep", "args": "60",\n'
                   '  "max_memory_restart": "300MB"}\n]}\n')
    r = pm.run("start", str(eco), check=False)
    assert r.returncode == 1
    assert f"{eco}:3: apps[0].max_memory_restart: invalid size \"300MB\"" in r.stderr, r.stderr
    r = pm.run("start", "a", "-max-memory-restart", "1.5G", "--", "sleep", "60", check=False)
    assert r.returncode == 1 and "-max-memory-restart 1.5G: invalid size" in r.stderr, r.stderr
    assert pm.ls() == []
