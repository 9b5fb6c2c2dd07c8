"""The restarter protocol: a long-running worker leaves at a safe point of its own."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from helpers import Proc, save_like_editor

Start = Callable[..., Proc]


def test_a_cooperative_worker_finishes_its_job_then_restarts(
    project: Path, devreload_run: Start
) -> None:
    proc = devreload_run("--cooperative", "app_cooperative.py", apps=["app_cooperative.py"])
    first = proc.wait_ready()
    proc.wait_for(rf"JOB 2 start pid={first.pid}")
    app = project / "app_cooperative.py"
    save_like_editor(app, app.read_text().replace('TOKEN = "one"', 'TOKEN = "two"'))
    second = proc.wait_ready()
    assert second.token == "two" and second.pid != first.pid
    mine = [line for line in proc.lines if f"pid={first.pid}" in line]
    assert mine[-1] == f"LEAVING pid={first.pid}", "it left by itself, after a whole job"
    assert mine[-2].startswith("JOB ") and mine[-2].endswith(f"done pid={first.pid}")
    assert not proc.count(r"worker exited with"), proc.output


def test_a_cooperative_worker_that_never_asks_is_stopped_after_the_timeout(
    project: Path, devreload_run: Start
) -> None:
    (project / "stubborn.py").write_text(
        "import os, threading\n"
        "TOKEN = 'one'\n"
        "print(f'READY pid={os.getpid()} token={TOKEN}', flush=True)\n"
        "threading.Event().wait()\n"
    )
    proc = devreload_run("--cooperative", "--cooperative-timeout", "0.3", "stubborn.py")
    first = proc.wait_ready()
    app = project / "stubborn.py"
    save_like_editor(app, app.read_text().replace("'one'", "'two'"))
    second = proc.wait_ready()
    assert second.token == "two" and second.pid != first.pid
    proc.wait_for(r"did not leave within 0\.3 s of the change; stopping it", start=0)
