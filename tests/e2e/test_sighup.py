"""A restart asked for by hand (SIGHUP, Enter after a crash) starts from a fresh template
but keeps every fault guarantee: the janitor stays the same process on the same pipe, and
every old worker still leaves the normal way (its atexit handlers run)."""

from __future__ import annotations

import functools
import re
import signal
from collections.abc import Callable
from pathlib import Path

from helpers import Proc, descendants_of, gone, needs_proc, save_like_editor, wait_until

Start = Callable[..., Proc]
APP = ["app_exit_path.py"]


def _restarted(proc: Proc, why: str, times: int) -> bool:
    return proc.count(rf"{why}; restarted in \d+ ms") >= times


def _janitors(monitor: int) -> list[int]:
    found = []
    for pid in descendants_of(monitor):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"janitor" in cmdline:
            found.append(pid)
    return found


@needs_proc
def test_sighup_twice_keeps_the_janitor_and_clean_exits(
    project: Path, devreload_run: Start
) -> None:
    proc = devreload_run("app_exit_path.py", apps=APP)
    worker = proc.wait_ready().pid
    janitors = _janitors(proc.pid)
    assert len(janitors) == 1, janitors
    for n in range(2):
        proc.signal(signal.SIGHUP)
        ready = proc.wait_ready()
        proc.wait_for(rf"^ATEXIT pid={worker}$", start=0)
        gone([worker])
        worker = ready.pid
        # The worker says READY before the monitor has heard it is ready: a save in
        # between would join this restart, one line for both.
        wait_until(functools.partial(_restarted, proc, "SIGHUP", n + 1))
    assert _janitors(proc.pid) == janitors, "the janitor was replaced or lost"

    mark = len(proc.lines)
    source = project / "app_exit_path.py"
    save_like_editor(source, source.read_text().replace('TOKEN = "one"', 'TOKEN = "two"'))
    assert proc.wait_ready().token == "two"
    proc.wait_for(rf"^ATEXIT pid={worker}$", start=mark)
    # One restart for the save, its old worker gone the normal way (ATEXIT above), not
    # killed at the shutdown interval; how long it took is the benchmark's to say.
    proc.wait_for(r"app_exit_path.py changed; restarted in \d+ ms", start=mark)
    assert _janitors(proc.pid) == janitors
    assert re.search(r"janitor", proc.output) is None
