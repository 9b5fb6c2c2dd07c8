"""The monitor's side of the files workers read: a file changed after the serving worker
read it and before the monitor watched it is a change, whichever report laid the watch.

A replaced worker's last report may arrive late (it stops while the next one serves), and
its reads are watched from then on; the serving worker's own report of the same file,
a moment later, must still be checked from its read."""

from __future__ import annotations

import os
import queue
import signal
import time
from pathlib import Path

from fakes import FakeClock, FakeFileMonitor, FakeLauncher, RecordingLogger

from devreload.monitor.events import FileChanged, SignalReceived, WorkerSaid
from devreload.monitor.record import Worker
from devreload.monitor.reloader import Reloader
from devreload.monitor.settings import ReloadSettings
from devreload.wire.messages import Files, Read

#: Past the quiet window after a change.
INTERVAL = ReloadSettings.reload_interval + 0.001


def _reloader() -> tuple[Reloader, FakeLauncher]:
    launcher = FakeLauncher()
    settings = ReloadSettings(monitor_factory=lambda *a, **k: FakeFileMonitor())
    reloader = Reloader("x:y", settings, logger=RecordingLogger(), launcher=launcher)
    reloader.clock = FakeClock()
    reloader._terminal.saved = None
    reloader._terminal.interactive = False
    reloader.startup()
    return reloader, launcher


def _replace_worker(reloader: Reloader, launcher: FakeLauncher, changed: str) -> Worker:
    """A change restarts the worker; the old one's record, once the next one started."""
    old = reloader.worker
    assert old is not None
    reloader.handle(FileChanged(changed))
    reloader.advance()
    launcher.exit(old.pid, -signal.SIGTERM)
    reloader.handle(SignalReceived(signal.SIGCHLD))
    reloader.clock.advance(INTERVAL)  # type: ignore[attr-defined]
    reloader.advance()
    assert reloader.worker is not None and reloader.worker is not old
    return old


def _changes(reloader: Reloader) -> list[str]:
    found: list[str] = []
    while True:
        try:
            event = reloader.events.get_nowait()
        except queue.Empty:
            return found
        if isinstance(event, FileChanged):
            found.append(event.path)


def _read(path: Path, at: float) -> Files:
    return Files((Read(str(path), at, "read by django.template.loaders.filesystem"),), ())


def test_a_change_between_the_serving_workers_read_and_a_late_watch_is_a_change(
    tmp_path: Path,
) -> None:
    reloader, launcher = _reloader()
    try:
        edited, untouched = tmp_path / "index.html", tmp_path / "base.html"
        edited.write_text("old")
        untouched.write_text("old")
        now = time.time()
        os.utime(untouched, (now - 100, now - 100))
        old = _replace_worker(reloader, launcher, str(tmp_path / "admin.py"))
        serving = reloader.worker
        assert serving is not None
        _changes(reloader)
        # The serving worker read both files 2 s ago; one was edited 1 s ago.
        edited.write_text("new")
        os.utime(edited, (now - 1, now - 1))
        # The replaced worker's report (it read both before it was replaced) arrives
        # first: watched from now on, not a change of its own.
        reloader.handle(WorkerSaid(old, _read(edited, now - 30)))
        reloader.handle(WorkerSaid(old, _read(untouched, now - 30)))
        assert _changes(reloader) == []
        # The serving worker's report: the edit came after its read.
        reloader.handle(WorkerSaid(serving, _read(edited, now - 2)))
        reloader.handle(WorkerSaid(serving, _read(untouched, now - 2)))
        assert _changes(reloader) == [str(edited)]
        # A read after the watch was laid: the file monitor sees every change since.
        os.utime(untouched, (now + 5, now + 5))
        reloader.handle(WorkerSaid(serving, _read(untouched, time.time() + 1)))
        assert _changes(reloader) == []
        monitor = reloader.monitor
        assert isinstance(monitor, FakeFileMonitor)
        assert monitor.paths.count(str(edited)) == 1, "one watch per path"
    finally:
        reloader.shutdown()
