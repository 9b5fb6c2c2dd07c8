"""Code and configuration are watched, data is not: what a worker or an endpoint reads
at run time, dropped there by another process, never restarts it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import Proc, save_like_editor, wait_until, write_atomic
from served import SERVING_RE, Spawn, devreload_serve, edit, wait_body

Start = Callable[..., Proc]
RESTARTED = r"restarted in \d+ ms"


def test_a_spool_worker_finishes_every_job_and_still_follows_its_code(
    project: Path, devreload_run: Start
) -> None:
    proc = devreload_run("-v", "app_spool.py", apps=["app_spool.py"])
    first = proc.wait_ready()
    (project / "incoming").mkdir()
    for n in range(10):  # dropped whole, the way a queue does: written aside, moved in
        (project / "incoming" / f"{n:04}.job").write_text(f"job {n}")
        (project / "incoming" / f"{n:04}.job").rename(project / "spool" / f"{n:04}.job")
    wait_until(lambda: proc.count(rf"^DONE \d+\.job pid={first.pid}$") == 10, timeout=20)
    assert sorted(p.name for p in (project / "done").iterdir()) == [f"{n:04}.job" for n in
                                                                    range(10)]
    assert proc.count(RESTARTED) == 0 and len(proc.readies()) == 1
    edit(project / "app_spool.py", 'TOKEN = "one"', 'TOKEN = "two"')
    assert proc.wait_ready().token == "two"


def test_jobs_waiting_before_the_worker_starts_are_not_code_either(
    project: Path, devreload_run: Start
) -> None:
    """Jobs queued before the worker started are read while it starts (watched, like a
    config file read then), but each becomes the worker's own when it removes it: the
    monitor hears that before the removal happens, so the removal restarts nothing."""
    for folder in ("spool", "done"):
        (project / folder).mkdir()
    for n in range(5):
        (project / "spool" / f"{n:04}.job").write_text(f"job {n}")
    proc = devreload_run("app_spool.py", apps=["app_spool.py"])
    first = proc.wait_ready()
    wait_until(lambda: proc.count(rf"^DONE \d+\.job pid={first.pid}$") == 5, timeout=20)
    assert proc.count(RESTARTED) == 0 and len(proc.readies()) == 1


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_an_app_reading_a_data_folder_is_not_restarted_by_its_data(
    spawn: Spawn, project: Path, kind: str
) -> None:
    (project / "data").mkdir()
    (project / "data" / "a").write_text("first a")
    proc = devreload_serve(spawn, f"serve_apps:{kind}_app", "--reload", "-v",
                           apps=["serve_apps.py"])
    url = proc.wait_for(SERVING_RE)[1]
    pid = wait_body(url, rf"^{kind} one pid=\d+").split("pid=")[1]
    assert wait_body(f"{url}/data/a", "first a").endswith(f"pid={pid} first a")
    for n in range(5):
        write_atomic(project / "data" / f"new{n}", f"new {n}")
        assert wait_body(f"{url}/data/new{n}", f"new {n}").endswith(f"pid={pid} new {n}")
        save_like_editor(project / "data" / "a", f"a again {n}")
        assert wait_body(f"{url}/data/a", f"a again {n}").endswith(f"pid={pid} a again {n}")
    proc.wait_for(r"not watching what the app reads in data: read while it served", start=0)
    assert proc.count(RESTARTED) == 0
