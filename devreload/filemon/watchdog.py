"""OS file events through watchdog: FSEvents on macOS, ReadDirectoryChangesW on Windows.

On Linux devreload reads inotify itself (:mod:`~devreload.filemon.inotify`); this monitor stays
for the other systems, and for whoever asks for it with ``DEVRELOAD_MONITOR=watchdog``.
"""

from __future__ import annotations

import os
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from devreload.filemon.base import Callback, IgnoreRules, WatchLimitReached, limit_error
from devreload.filemon.folders import FolderMonitor

#: Reading a file also produces events (opened, closed_no_write); only these mean a change.
#: watchdog 7 reports a metadata change as its own event, "attrib" (6 called it "modified").
CHANGE_EVENTS = frozenset({"created", "modified", "deleted", "moved", "attrib"})


class WatchdogFileMonitor(FolderMonitor):
    """A watchdog observer with one watch per folder."""

    def __init__(self, callback: Callback, logger: Any = None,
                 ignore: IgnoreRules | None = None, **kw: Any) -> None:
        super().__init__(callback, logger=logger, ignore=ignore, **kw)
        self._handler = _Handler(self)
        try:
            self._observer = Observer()  # watchdog 7 opens its inotify instance here
        except OSError as exc:
            if limit_error(exc):
                raise WatchLimitReached(exc) from exc
            raise
        self._started = False

    def _register(self, folder: str) -> None:
        try:
            self._observer.schedule(self._handler, folder, recursive=False)
        except OSError as exc:
            if limit_error(exc):
                raise WatchLimitReached(exc) from exc
            raise

    def start(self) -> None:
        try:
            self._observer.start()
        except OSError as exc:
            if limit_error(exc):
                raise WatchLimitReached(exc) from exc
            raise
        self._started = True
        super().start()

    def stop(self) -> None:
        super().stop()
        self._observer.stop()

    def join(self) -> None:
        if self._started:
            self._observer.join()
        super().join()


class _Handler(FileSystemEventHandler):
    def __init__(self, monitor: WatchdogFileMonitor) -> None:
        self.monitor = monitor

    def on_any_event(self, event: FileSystemEvent) -> None:
        kind = event.event_type
        if kind not in CHANGE_EVENTS:
            return
        src = os.fsdecode(event.src_path)
        if kind == "moved":  # renamed into place: whole at its new name
            self.monitor._event("deleted", src, is_dir=event.is_directory)
            self.monitor._event("created", os.fsdecode(event.dest_path),
                                is_dir=event.is_directory, final=True)
        else:
            self.monitor._event(kind, src, is_dir=event.is_directory)
