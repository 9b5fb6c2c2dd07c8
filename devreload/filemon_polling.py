"""The fallback monitor: stat every watched file at an interval.

It works where OS events do not arrive (Docker bind mounts, WSL's /mnt, network
file systems) and when the OS watch limit is reached.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from typing import Any

from devreload.filemon import Callback, glob_regex, glob_root, is_glob

#: Stat-polling thousands of files more often than this costs CPU and gains nothing.
MIN_INTERVAL = 0.25

Signature = tuple[int, int, int] | None


def _signature(path: str) -> Signature:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class PollingFileMonitor:
    """Compares each file's mtime, size and inode with the previous round."""

    def __init__(
        self,
        callback: Callback,
        interval: float = 1.0,
        logger: Any = None,
        ignore: Callable[[str], bool] | None = None,
        **kw: Any,
    ) -> None:
        self.callback = callback
        self.interval = max(interval, MIN_INTERVAL)
        self.ignore = ignore or (lambda path: False)
        self.files: dict[str, Signature] = {}
        self.globs: set[str] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="devreload-polling", daemon=True)

    def add_path(self, path: str) -> None:
        with self._lock:
            if is_glob(path):
                if path not in self.globs:
                    self.globs.add(path)
                    for match in self._expand(path):
                        self.files.setdefault(match, _signature(match))
            elif path not in self.files:
                self.files[path] = _signature(path)

    def _expand(self, pattern: str) -> list[str]:
        """The files matching ``pattern`` now, found by walking from its root and never
        entering an ignored folder (``node_modules`` with its 20,000 files, ``.git``):
        every round pays only for the folders that can hold a match."""
        root = glob_root(pattern)
        rest = pattern[len(root) :].lstrip(os.sep)
        depth = None if "**" in rest else rest.count(os.sep)  # levels below the root
        found: list[str] = []
        self._walk(root, glob_regex(pattern), depth, found)
        return found

    def _walk(self, folder: str, regex: re.Pattern[str], depth: int | None,
              found: list[str]) -> None:
        try:
            with os.scandir(folder) as listing:
                entries = list(listing)
        except OSError:
            return
        for entry in entries:
            try:
                if entry.is_dir():
                    # Under ``**`` a link to a folder is not followed: a loop would never end.
                    if depth == 0 or (depth is None and entry.is_symlink()):
                        continue
                    if not self._ignores_folder(entry.path):
                        self._walk(entry.path, regex, None if depth is None else depth - 1,
                                   found)
                elif entry.is_file() and regex.match(entry.path) and not self.ignore(entry.path):
                    found.append(entry.path)
            except OSError:
                continue

    def _ignores_folder(self, folder: str) -> bool:
        ignores_folder = getattr(self.ignore, "ignores_folder", None)
        if ignores_folder is not None:
            return bool(ignores_folder(folder))
        return self.ignore(folder.rstrip(os.sep) + os.sep)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def join(self) -> None:
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            self.check()

    def check(self) -> None:
        """One polling round; reports each path whose signature moved."""
        with self._lock:
            paths = list(self.files)
            globs = list(self.globs)
        changed = []
        seen = {}
        for path in paths:
            seen[path] = _signature(path)
        for pattern in globs:
            for match in self._expand(pattern):
                if match not in seen:
                    seen[match] = _signature(match)
        with self._lock:
            for path, sig in seen.items():
                if path not in self.files or self.files[path] != sig:
                    changed.append(path)
                self.files[path] = sig
        for path in changed:
            self.callback(path)
