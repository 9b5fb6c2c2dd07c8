"""The default monitor: OS file events through watchdog (inotify on Linux).

Folders are watched, not file inodes, so that every way an editor saves (in place,
rename over, delete and recreate) is seen; events are then matched by name.
"""

from __future__ import annotations

import errno
import os
import threading
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from devreload.filemon import Callback, IgnoreRules, glob_regex, glob_root, is_glob

#: Reading a file also produces events (opened, closed_no_write); only these mean a change.
CHANGE_EVENTS = frozenset({"created", "modified", "deleted", "moved"})
#: watchdog 7 reports a metadata change as its own event (6 called it "modified"): ``touch``
#: (a new mtime) is a change, as under polling; chmod, chown or a new hard link is not.
ATTRIB_EVENT = "attrib"


class WatchLimitReached(OSError):
    """The OS refused another watch; the caller falls back to polling."""

    def __init__(self, cause: OSError) -> None:
        name = "max_user_instances" if cause.errno == errno.EMFILE else "max_user_watches"
        self.message = (
            f"the OS file-watch limit is reached (raise it with `sysctl fs.inotify.{name}=524288`)"
        )
        super().__init__(cause.errno, self.message)

    def __str__(self) -> str:
        return self.message


def _limit_error(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EMFILE)


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


class WatchdogFileMonitor(FileSystemEventHandler):
    """One non-recursive watch per folder holding a watched file; globs watch their root."""

    def __init__(
        self,
        callback: Callback,
        logger: Any = None,
        ignore: IgnoreRules | None = None,
        **kw: Any,
    ) -> None:
        self.callback = callback
        self.ignore = ignore or IgnoreRules(defaults=False)
        self.files: set[str] = set()
        self.globs: set[str] = set()
        self.folders: set[str] = set()
        self.trees: set[str] = set()  # roots of recursive globs, followed into new folders
        self.aliases: dict[str, set[str]] = {}  # a watched folder's real path -> its links
        self.pending: set[tuple[str, bool]] = set()  # folders that do not exist yet
        self.mtimes: dict[str, int | None] = {}  # last known mtime of files reported or named
        self._lock = threading.Lock()
        try:
            self._observer = Observer()  # watchdog 7 opens its inotify instance here
        except OSError as exc:
            if _limit_error(exc):
                raise WatchLimitReached(exc) from exc
            raise
        self._started = False

    def add_path(self, path: str) -> None:
        with self._lock:
            if is_glob(path):
                if path in self.globs:
                    return
                self.globs.add(path)
                root = glob_root(path)
                recursive = os.sep in path[len(root) + 1 :] or "**" in path
                self._watch_folder(root, recursive)
            elif path not in self.files:
                self.files.add(path)
                self.mtimes[path] = _mtime(path)
                self._watch_folder(os.path.dirname(path), False)

    def _watch_folder(self, folder: str, recursive: bool) -> None:
        """Recursive watches are laid folder by folder so ignored trees are never registered."""
        if not os.path.isdir(folder):
            self.pending.add((folder, recursive))
            parent = os.path.dirname(folder)
            if parent != folder:
                self._watch_folder(parent, False)
            return
        if recursive:
            self.trees.add(folder)
            for top, dirs, _ in os.walk(folder):
                dirs[:] = [d for d in dirs if not self.ignore.ignores_folder(os.path.join(top, d))]
                self._schedule(top)
        else:
            self._schedule(folder)

    def _schedule(self, folder: str) -> None:
        if folder in self.folders:
            return
        self.folders.add(folder)
        # A watch on a symlinked folder would watch the link itself: watch the target, and
        # report events under the name the folder was asked for.
        real = os.path.realpath(folder)
        if real != folder:
            self.aliases.setdefault(real, set()).add(folder)
            if real in self.folders:
                return
            self.folders.add(real)
        try:
            self._observer.schedule(self, real, recursive=False)
        except OSError as exc:
            if _limit_error(exc):
                raise WatchLimitReached(exc) from exc
            raise

    def start(self) -> None:
        try:
            self._observer.start()
        except OSError as exc:
            if _limit_error(exc):
                raise WatchLimitReached(exc) from exc
            raise
        self._started = True

    def stop(self) -> None:
        self._observer.stop()

    def join(self) -> None:
        if self._started:
            self._observer.join()

    def on_any_event(self, event: FileSystemEvent) -> None:
        attrib = event.event_type == ATTRIB_EVENT
        if event.event_type not in CHANGE_EVENTS and not attrib:
            return
        paths = [os.fsdecode(event.src_path)]
        if event.event_type == "moved":
            paths.append(os.fsdecode(event.dest_path))
        if event.is_directory:
            if event.event_type in ("created", "moved"):
                self._folder_appeared(paths[-1])
            return
        for path in paths:
            folder, name = os.path.split(path)
            for candidate in [path, *(os.path.join(a, name) for a in self.aliases.get(folder, ()))]:
                if self._wanted(candidate) and self._mtime_moved(candidate, attrib):
                    self.callback(candidate)

    def _mtime_moved(self, path: str, attrib: bool) -> bool:
        """Remember ``path``'s mtime; for a metadata event, whether it moved (a file not
        known yet counts as moved: a glob's match touched for the first time)."""
        now = _mtime(path)
        with self._lock:
            before = self.mtimes.get(path, -1)
            self.mtimes[path] = now
        return not attrib or before != now

    def _wanted(self, path: str) -> bool:
        if path in self.files:
            return not self.ignore(path)
        return any(glob_regex(g).match(path) for g in self.globs) and not self.ignore(path)

    def _folder_appeared(self, folder: str) -> None:
        ready: list[tuple[str, bool]] = []
        with self._lock:
            # A folder made inside one that was not watched yet sent no event: look again
            # after each watch is laid, until nothing pending exists.
            while found := [(f, r) for f, r in self.pending if os.path.isdir(f)]:
                for entry in found:
                    self.pending.discard(entry)
                    self._watch_folder(*entry)
                ready += found
            inside_tree = any(folder.startswith(t + os.sep) for t in self.trees)
            if inside_tree and not self.ignore.ignores_folder(folder):
                self._watch_folder(folder, True)
                ready.append((folder, True))
        for root, recursive in ready:
            for top, _, names in os.walk(root) if recursive else [(root, [], os.listdir(root))]:
                for name in names:
                    path = os.path.join(top, name)
                    if self._wanted(path):
                        self.callback(path)
