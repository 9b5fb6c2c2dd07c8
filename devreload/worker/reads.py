"""Files the app reads that are not modules: config read with ``from_pyfile``, ``.env``,
YAML settings, templates. Found in the worker through an audit hook on ``open``.

Only files under the project folder count, never the interpreter's or installed
libraries' own files; a file the app has opened for writing (a log, a database, an upload)
is never watched, even if it reads it too, or every write would restart the app.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

#: ``os.open`` flags that mean the file is written.
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


class ReadFiles:
    """An audit hook that sorts the files opened by this process into read and written."""

    def __init__(self, project: str, outside: Sequence[str]) -> None:
        self.project = os.path.join(os.path.abspath(project), "")
        self.outside = tuple(os.path.join(p, "") for p in outside)
        self._lock = threading.Lock()
        self.read: dict[str, None] = {}
        self.written: dict[str, None] = {}
        self._sent = (0, 0)

    def hook(self, event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            try:
                self._opened(*args)
            except Exception:  # an audit hook that raises would fail the app's open()
                pass

    def _opened(self, path: Any, mode: Any, flags: int) -> None:
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not isinstance(path, str):
            return  # a file descriptor: opened before, or not a path at all
        path = os.path.abspath(path)
        if (
            not path.startswith(self.project)
            or path.startswith(self.outside)
            or "__pycache__" in path
        ):
            return
        writes = (
            any(c in mode for c in "wax+") if isinstance(mode, str) else bool(flags & WRITE_FLAGS)
        )
        with self._lock:
            if writes:
                self.written[path] = None
            elif path not in self.written and os.path.isfile(path):
                self.read[path] = None

    def changed(self) -> bool:
        return self._sent != (len(self.read), len(self.written))

    def take(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Every file read but never written, and every file written, so far."""
        with self._lock:
            self._sent = (len(self.read), len(self.written))
            written = tuple(self.written)
            return tuple(p for p in self.read if p not in self.written), written
