"""The app's bytecode caches, written once it answers rather than while it starts.

Importing a module without a valid ``__pycache__`` entry compiles it and writes the
entry: a folder made, a file written, a rename, for each module. A project just cloned or
checked out imports thousands that way at its first start, and on some filesystems (an
overlay in a container, a network or synced folder) the writes cost several times the
compiling: 0.8 s for the benchmark's 2,000 modules, against 0.1 s to compile them. The
worker keeps what the import system would write and writes it from a thread once the app
has sent its first response (thousands of writes beside it would delay it). Later
imports write as usual; a worker stopped before it wrote leaves the next one to compile
again. hupper stops its workers from writing bytecode at all, and then every restart
compiles the whole app again.

A program that imports devreload and then its app (``import devreload``, ``from app import
app``, ``devreload.serve(app, reload=True)``) holds its caches the same way from that
import on (:func:`hold_from_import`): its first worker, the monitor's own fork, writes
them once it answers; a monitor that forks no such worker drops them (its workers write
their own); a program that serves without reload writes them as it starts serving, and
one that never serves, at its exit.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
from importlib.machinery import SourceFileLoader

from devreload.wire.contract import FDS_ENV, TEMPLATE_ENV

#: ``typing.TYPE_CHECKING`` without importing ``typing`` (``import devreload`` imports this).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


#: The longest held caches wait for the first response before they are written.
AFTER_WAIT = 2.0


class DeferredWrites:
    """Holds the bytecode the import system writes until :meth:`flush`; what the program
    held since ``import devreload`` (a stand-in's), it holds on."""

    def __init__(self) -> None:
        program = _take_hold()
        held = program._stop_holding() if program is not None else []
        self._write = SourceFileLoader.set_data
        self._held: list[tuple[Any, str, bytes, int, Version | None]] = held
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

    def flush(self, wait: bool = False, after: threading.Event | None = None) -> None:
        """Write what was held, from a thread of its own (``wait``: from this one), once
        ``after`` is set (the app's first response: thousands of writes would delay it) or
        ``AFTER_WAIT`` has passed; from now on writes are not held."""
        held = self._stop_holding()
        if held and wait:
            self._write_all(held)
        elif held:
            threading.Thread(target=self._write_after, args=(held, after),
                             name="devreload-bytecode", daemon=True).start()

    def _write_after(self, held: list[tuple[Any, str, bytes, int, Version | None]],
                     after: threading.Event | None) -> None:
        if after is not None:
            after.wait(AFTER_WAIT)
        self._write_all(held)

    def drop(self) -> None:
        """Forget what was held, unwritten (another process writes it); stop holding."""
        self._stop_holding()

    def _stop_holding(self) -> list[tuple[Any, str, bytes, int, Version | None]]:
        with self._lock:
            held, self._held, self._holding = self._held, [], False
            SourceFileLoader.set_data = self._write  # type: ignore[method-assign]
        return held

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


#: The hold of a program that imported devreload (see the module's docstring).
_program: list[DeferredWrites] = []


def hold_from_import() -> None:
    """At ``import devreload`` in a program, not in a worker or template devreload started
    (they hold their own): hold the caches of what it imports from now on."""
    if _program or FDS_ENV in os.environ or TEMPLATE_ENV in os.environ:
        return
    _program.append(DeferredWrites())
    atexit.register(_write_at_exit)


def _take_hold() -> DeferredWrites | None:
    """The program's hold, now the caller's to flush or drop; None without one."""
    return _program.pop() if _program else None


def drop_hold() -> None:
    """This program is a monitor now: its workers write the caches of what they import."""
    held = _take_hold()
    if held is not None:
        held.drop()


def write_held() -> None:
    """This program serves without reload: its caches are written now, from a thread."""
    held = _take_hold()
    if held is not None:
        held.flush()


def _write_at_exit() -> None:
    held = _take_hold()
    if held is not None:
        held.flush(wait=True)
