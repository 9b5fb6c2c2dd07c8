"""The app's bytecode caches, written once it answers rather than while it starts.

Importing a module without a valid ``__pycache__`` entry compiles it and writes the
entry: a folder made, a file written, a rename, for each module. A project just cloned or
checked out imports thousands that way at its first start, and on some filesystems (an
overlay in a container, a network or synced folder) the writes cost several times the
compiling: 0.8 s for the benchmark's 2,000 modules, against 0.1 s to compile them. The
worker keeps what the import system would write and writes it from a thread once the app
answers. Later imports write as usual; a worker stopped before it wrote leaves the next one
to compile again. hupper stops its workers from writing bytecode at all, and then every
restart compiles the whole app again.
"""

from __future__ import annotations

import contextlib
import os
import threading
from importlib.machinery import SourceFileLoader
from typing import Any


class DeferredWrites:
    """Holds the bytecode the import system writes until :meth:`flush`."""

    def __init__(self) -> None:
        self._write = SourceFileLoader.set_data
        self._held: list[tuple[Any, str, bytes, int, Version | None]] = []
        self._holding = True
        self._lock = threading.Lock()
        writes = self

        def set_data(loader: Any, path: str, data: bytes, *, _mode: int = 0o666) -> None:
            with writes._lock:
                if writes._holding:
                    source = getattr(loader, "path", "")
                    writes._held.append((loader, path, data, _mode, version(source)))
                    return
            writes._write(loader, path, data, _mode=_mode)

        SourceFileLoader.set_data = set_data  # type: ignore[method-assign,assignment]

    def flush(self) -> None:
        """Write what was held, from a thread of its own; from now on writes are not held."""
        with self._lock:
            held, self._held, self._holding = self._held, [], False
            SourceFileLoader.set_data = self._write  # type: ignore[method-assign]
        if held:
            threading.Thread(target=self._write_all, args=(held,), name="devreload-bytecode",
                             daemon=True).start()

    def _write_all(self, held: list[tuple[Any, str, bytes, int, Version | None]]) -> None:
        """Each cache whose source is still the one compiled. One saved again meanwhile is
        not written, or removed again if the save came while it was written: the cache
        would pass for a save in the same second with the same size, and the monitor,
        which drops the cache of a changed file, may have done so before this write."""
        for loader, path, data, mode, compiled in held:
            source = getattr(loader, "path", "")
            if compiled is None or version(source) != compiled:
                continue
            self._write(loader, path, data, _mode=mode)
            if version(source) != compiled:
                with contextlib.suppress(OSError):
                    os.remove(path)


#: What tells one save of a file from another: the nanosecond mtime, the size and the
#: inode (an editor or ``git checkout`` that replaces the file makes a new one).
Version = tuple[int, int, int]


def version(source: str) -> Version | None:
    try:
        stat = os.stat(source)
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size, stat.st_ino
