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

import threading
from importlib.machinery import SourceFileLoader
from typing import Any


class DeferredWrites:
    """Holds the bytecode the import system writes until :meth:`flush`."""

    def __init__(self) -> None:
        self._write = SourceFileLoader.set_data
        self._held: list[tuple[Any, str, bytes, int]] = []
        self._holding = True
        self._lock = threading.Lock()
        writes = self

        def set_data(loader: Any, path: str, data: bytes, *, _mode: int = 0o666) -> None:
            with writes._lock:
                if writes._holding:
                    writes._held.append((loader, path, data, _mode))
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

    def _write_all(self, held: list[tuple[Any, str, bytes, int]]) -> None:
        for loader, path, data, mode in held:
            self._write(loader, path, data, _mode=mode)
