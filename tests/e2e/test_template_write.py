"""`mesh template`'s writeToFile against a live `mesh agent`: the files of a render that takes
several passes (services, then each service) are written once, from the complete render, with
their modes; each later render writes them again (an "append" file grows by one line per
render); a write that fails (a symbolic link as the file) leaves the template's own file
unwritten, as its error stops consul-template's render; -dry prints them instead.
"""

import os
import stat
import subprocess
import threading
import time

from helpers import HOST, wait_until
from test_template import read, register, template_factory  # noqa: F401 (fixture)


def run_once(mesh, agent, args):
    return subprocess.run([mesh, "template", "-consul-addr", f"{HOST}:{agent.port}", "-once",
                           *args], capture_output=True, text=True, timeout=60)


def test_written_once_from_the_complete_render(agent, tmp_path, mesh):
    register(agent, "web-1", 3000)
    agent.put_true("/v1/kv/cfg/secret", "s3cret")
    log, secret = tmp_path / "files" / "log.txt", tmp_path / "files" / "secret"
    src, out = tmp_path / "w.ctmpl", tmp_path / "w.cfg"
    # three passes before the render is complete: services, then service "web" (and the key)
    src.write_text(
        '{{ "render" | writeToFile "' + str(log) + '" "" "" "0640" "append,newline" }}'
        '{{ range services }}{{ if eq .Name "web" }}{{ range service .Name }}{{ .ID }}'
        '{{ key "cfg/secret" | writeToFile "' + str(secret) + '" "" "" "0600" }}'
        '{{ end }}{{ end }}{{ end }}\n')
    r = run_once(mesh, agent, ["-template", f"{src}:{out}"])
    assert r.returncode == 0, r.stderr
    assert read(out) == "web-1\n"
    assert read(log) == "render\n"
    assert read(secret) == "s3cret"
    assert stat.S_IMODE(os.stat(log).st_mode) == 0o640
    assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600


def test_each_render_writes_again(agent, tmp_path, template_factory):
    agent.put_true("/v1/kv/w/k", "1")
    log, src, out = tmp_path / "log.txt", tmp_path / "k.ctmpl", tmp_path / "k.cfg"
    src.write_text('{{ key "w/k" | writeToFile "' + str(log) + '" "" "" "0644" "append,newline" }}'
                   'k={{ key "w/k" }}\n')
    t = template_factory(["-consul-addr", f"{HOST}:{agent.port}", "-template", f"{src}:{out}"])
    wait_until(lambda: read(out) == "k=1\n", 15, what="the first render")
    assert read(log) == "1\n"
    agent.put_true("/v1/kv/w/k", "2")
    wait_until(lambda: read(out) == "k=2\n", 15, what="the second render")
    assert read(log) == "1\n2\n"
    assert t.running()


def read_fifo(fifo, timeout=20):
    """What one writer writes into fifo before it closes it, or None when none opens it in
    time (the reader is then released by opening the write end here)."""
    got = {}

    def reader():
        with open(fifo, "rb") as f:
            got["data"] = f.read()
    th = threading.Thread(target=reader, daemon=True)
    th.start()
    th.join(timeout)
    if th.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        th.join(5)
        return None
    return got["data"]


def test_renders_wait_behind_a_write_that_blocks(agent, tmp_path, template_factory):
    """writeToFile into a FIFO blocks each write until the test reads it: a render that comes
    meanwhile waits, and one more coming while that queued one is written supersedes nothing
    it should not. (The queued render's file count outlived its list: the third render freed
    a NULL list of one file and crashed.) The sleeps only give renders time to queue."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    agent.put_true("/v1/kv/w/k", "1")
    src, out = tmp_path / "f.ctmpl", tmp_path / "f.cfg"
    src.write_text('{{ key "w/k" | writeToFile "' + str(fifo) + '" "" "" "0644" "newline" }}'
                   'k={{ key "w/k" }}\n')
    t = template_factory(["-consul-addr", f"{HOST}:{agent.port}", "-template", f"{src}:{out}"])
    time.sleep(1)  # the first write waits for a reader
    agent.put_true("/v1/kv/w/k", "2")
    time.sleep(1)  # the second render waits for the first write
    assert read_fifo(fifo) == b"1\n"
    wait_until(lambda: read(out) == "k=1\n", 15, what="the first render's file")
    time.sleep(0.5)  # the second write waits for a reader now
    agent.put_true("/v1/kv/w/k", "3")
    time.sleep(1)
    assert read_fifo(fifo) == b"2\n", t.log_tail()
    assert read_fifo(fifo) == b"3\n", t.log_tail()
    wait_until(lambda: read(out) == "k=3\n", 15, what="the last render's file")
    assert t.running(), t.log_tail()


def test_a_failed_write_leaves_the_file_and_dry_prints(agent, tmp_path, mesh):
    target, link = tmp_path / "target", tmp_path / "link"
    target.write_text("keep")
    link.symlink_to(target)
    src, out = tmp_path / "l.ctmpl", tmp_path / "l.cfg"
    src.write_text('x{{ "y" | writeToFile "' + str(link) + '" "" "" "0644" }}\n')
    r = run_once(mesh, agent, ["-template", f"{src}:{out}"])
    assert r.returncode == 1, r.stderr
    assert (f'{src}:1:11: error calling writeToFile: writeToFile: refusing to write to symlink '
            f'"{link}"') in r.stderr
    assert read(out) is None
    assert read(target) == "keep"

    dry = tmp_path / "dry.txt"
    src.write_text('x{{ "y" | writeToFile "' + str(dry) + '" "" "" "0644" "newline" }}\n')
    r = run_once(mesh, agent, ["-dry", "-template", f"{src}:{out}"])
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"> {dry}\ny\n> {out}\nx\n"
    assert read(dry) is None and read(out) is None
