"""The fallback monitor: stat every watched file at an interval.

It works where OS events do not arrive (Docker bind mounts, WSL's /mnt, network
file systems) and when the OS watch limit is reached.
"""

from __future__ import annotations

import glob
import os
import threading
from collections.abc import Callable
from typing import Any

from devreload.filemon import Callback, is_glob

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
        return [
            p
            for p in glob.glob(pattern, recursive=True)
            if os.path.isfile(p) and not self.ignore(p)
        ]

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
