"""A restarted worker leaves on disk what a normal exit leaves: files closed with their
trailers, temporary files removed, databases closed, buffers flushed, atexit run."""

from __future__ import annotations

import gzip
import sqlite3
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import Proc, pid_alive, save_like_editor, wait_until
from served import SERVING_RE, devreload_serve, edit, stop, wait_body

Start = Callable[..., Proc]


def test_files_the_app_held_are_closed_properly_on_a_reload(
    spawn: Start, project: Path
) -> None:
    (project / "development.ini").write_text(
        "[app:main]\nuse = call:app_files:make_app\n\n"
        "[server:main]\nuse = egg:devreload\nlisten = 127.0.0.1:0\n"
    )
    proc = devreload_serve(spawn, "development.ini", "--reload", apps=["app_files.py"])
    url = proc.wait_for(SERVING_RE)[1]
    old = int(wait_body(url, "^one ").split()[1])
    edit(project / "app_files.py", 'VERSION = "one"', 'VERSION = "two"')
    wait_body(url, "^two ")
    wait_until(lambda: not pid_alive(old))
    with gzip.open(project / f"log-{old}.gz", "rt") as f:
        assert f.read() == f"worker {old}\n"
    with zipfile.ZipFile(project / f"archive-{old}.zip") as z:
        assert z.read("hello.txt") == f"from {old}".encode()
    assert not list(project.glob(f"scratch-{old}-*")), "the temporary file is removed"
    assert not (project / f"db-{old}.sqlite-wal").exists(), "the database was closed"
    with sqlite3.connect(project / f"db-{old}.sqlite") as db:
        assert db.execute("SELECT count(*) FROM t").fetchone() == (1,)
    assert stop(proc) == 0


def test_a_restarted_program_leaves_what_a_stopped_one_leaves(
    project: Path, devreload_run: Start
) -> None:
    proc = devreload_run("app_exit_path.py", apps=["app_exit_path.py"])
    first = proc.wait_ready()
    app = project / "app_exit_path.py"
    save_like_editor(app, app.read_text().replace('"one"', '"two"'))
    proc.wait_ready()
    proc.wait_for(rf"ATEXIT pid={first.pid}", start=0)
    wait_until(lambda: not pid_alive(first.pid))
    assert "never flushed by hand" in (project / f"buffered-{first.pid}.txt").read_text()


@pytest.mark.parametrize("stderr", ["/dev/full", "&-"], ids=["full", "closed"])
def test_a_broken_app_is_noticed_fixed_with_stderr_full_or_closed(
    project: Path, spawn: Start, stderr: str
) -> None:
    """The worker's failure report reaches the monitor before stderr is tried, so the
    fix is noticed even when nothing can be printed."""
    marker = project / "failed-pid"
    (project / "app.py").write_text(
        "import os\n"
        "open('failed-pid', 'w').write(str(os.getpid()))\n"
        "import no_such_module_xyz\n"
    )
    proc = spawn(["sh", "-c", f"exec {sys.executable} -m devreload run app.py 2>{stderr}"])
    wait_until(lambda: marker.exists() and marker.read_text())
    failed = int(marker.read_text())
    wait_until(lambda: not pid_alive(failed))
    save_like_editor(
        project / "app.py",
        "import os, threading\n"
        "print(f'READY pid={os.getpid()} token=fixed', flush=True)\n"
        "threading.Event().wait()\n",
    )
    assert proc.wait_ready(timeout=15).token == "fixed"
    assert stop(proc) == 0
