"""OS file events through watchdog: FSEvents on macOS, ReadDirectoryChangesW on Windows.

On Linux devreload reads inotify itself (:mod:`~devreload.filemon.inotify`); this monitor stays
for the other systems, for ``DEVRELOAD_PORTABLE=1``, and for whoever asks for it with
``DEVRELOAD_MONITOR=watchdog``.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any

from watchdog import events
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import ObservedWatch

from devreload import platforms
from devreload.filemon.base import Callback, IgnoreRules, WatchLimitReached, limit_error
from devreload.filemon.folders import FolderMonitor
from devreload.filemon.roots import Roots

#: Reading a file also produces events (opened, closed_no_write); only these mean a change
#: ("closed": after a write, where the backend says so).
#: watchdog 7 reports a metadata change as its own event, "attrib" (6 called it "modified").
CHANGE_EVENTS = frozenset({"created", "modified", "deleted", "moved", "attrib", "closed"})
#: Before watchdog 7, "modified" may be a chmod: it counts only when the mtime moved.
ATTRIB_APART = hasattr(events, "EVENT_TYPE_ATTRIB")
#: Where watchdog's inotify backend says the kernel dropped events: its only sign of it.
OVERFLOW_LOGGER = "watchdog.observers.inotify_c"


class _Overflows(logging.Handler):
    """Hears watchdog say that events were lost, and has the monitor look again."""

    def __init__(self, monitor: WatchdogFileMonitor) -> None:
        super().__init__(logging.WARNING)
        self.monitor = monitor

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage():
            self.monitor._rescan()


class WatchdogFileMonitor(FolderMonitor):
    """A watchdog observer with one watch per folder, or, where the OS watches a tree
    with one stream (``recursive``; the platform's default), one per root."""

    def __init__(self, callback: Callback, logger: Any = None,
                 ignore: IgnoreRules | None = None, recursive: bool | None = None,
                 **kw: Any) -> None:
        super().__init__(callback, logger=logger, ignore=ignore, **kw)
        if recursive is None:
            recursive = platforms.current().recursive_watches
        self._roots = Roots(os.path.realpath(os.getcwd())) if recursive else None
        self._handler = _Handler(self)
        try:
            self._observer = Observer()  # watchdog 7 opens its inotify instance here
        except OSError as exc:
            if limit_error(exc):
                raise WatchLimitReached(exc) from exc
            raise
        self._started = False
        #: Each folder's watch, to drop when the folder is deleted (its emitter ends then).
        self._watches: dict[str, ObservedWatch] = {}
        self._overflows = _Overflows(self)
        logging.getLogger(OVERFLOW_LOGGER).addHandler(self._overflows)

    def _register(self, folder: str) -> None:
        replaced: list[str] = []
        if self._roots is not None:
            root, replaced = self._roots.cover(folder)
            if root is None:
                return
            folder = root
        try:
            self._watches[folder] = self._observer.schedule(
                self._handler, folder, recursive=self._roots is not None)
        except OSError as exc:
            if limit_error(exc):
                raise WatchLimitReached(exc) from exc
            raise
        for old in replaced:
            self._unschedule(old)

    def _unschedule(self, folder: str) -> None:
        watch = self._watches.pop(folder, None)
        if watch is not None:
            with contextlib.suppress(KeyError, OSError):
                self._observer.unschedule(watch)

    def _deleted_folder(self, folder: str) -> None:
        """A watched folder was deleted: watch for its return, with a new watch."""
        with self._lock:
            if folder not in self.folders:
                return
            if self._roots is None or self._roots.drop(folder):
                self._unschedule(folder)
        self._folder_gone(folder)

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
        logging.getLogger(OVERFLOW_LOGGER).removeHandler(self._overflows)
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
            if event.is_directory:
                self.monitor._deleted_folder(src)
            self.monitor._event("deleted", src, is_dir=event.is_directory)
            self.monitor._event("created", os.fsdecode(event.dest_path),
                                is_dir=event.is_directory, final=True)
        elif kind == "deleted" and event.is_directory:
            self.monitor._deleted_folder(src)
        elif kind == "closed":  # written and closed (inotify only): the save is whole
            self.monitor._event("modified", src, final=True)
        else:
            if kind == "modified" and not ATTRIB_APART:
                kind = "attrib"
            self.monitor._event(kind, src, is_dir=event.is_directory)
