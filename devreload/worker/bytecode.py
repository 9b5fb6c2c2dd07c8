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
    held since ``import devreload`` (a stand-in's), it holds on.

    It takes the place of two steps of ``SourceFileLoader``: ``path_stats``, whose stat
    of the source it keeps (the version compiled, without a second stat), and
    ``_cache_bytecode``, whose stat for the file mode it makes only when it writes."""

    def __init__(self) -> None:
        program = _take_hold()
        held = program._stop_holding() if program is not None else []
        self._stats = SourceFileLoader.path_stats
        self._cache = SourceFileLoader._cache_bytecode  # type: ignore[attr-defined]
        self._held: list[_Held] = held
        self._holding = True
        self._lock = threading.Lock()
        #: The version of each source the import system looked at while holding.
        versions: dict[str, Version] = {}
        self._versions = versions
        writes = self

        def path_stats(loader: Any, path: str) -> dict[str, float]:
            stat = os.stat(path)
            versions[path] = stat.st_mtime_ns, stat.st_size, stat.st_ino
            return {"mtime": stat.st_mtime, "size": stat.st_size}

        def cache_bytecode(loader: Any, source: str, path: str, data: bytes) -> None:
            with writes._lock:
                if writes._holding:
                    compiled = versions.pop(source, None) or version(source)
                    writes._held.append((loader, source, path, data, compiled))
                    return
            writes._cache(loader, source, path, data)

        SourceFileLoader.path_stats = path_stats  # type: ignore[method-assign,assignment]
        SourceFileLoader._cache_bytecode = cache_bytecode  # type: ignore[attr-defined]

    def flush(self, wait: bool = False, after: threading.Event | None = None) -> None:
        """Write what was held, from a thread of its own (``wait``: from this one), once
        ``after`` is set (the app's first response: thousands of writes would delay it) or
        ``AFTER_WAIT`` has passed; from now on writes are not held."""
        held = self._stop_holding()
        if held and wait:
            _write_all(held)
        elif held:
            threading.Thread(target=self._write_after, args=(held, after),
                             name="devreload-bytecode", daemon=True).start()

    @staticmethod
    def _write_after(held: list[_Held], after: threading.Event | None) -> None:
        if after is not None:
            after.wait(AFTER_WAIT)
        _write_all(held)

    def drop(self) -> None:
        """Forget what was held, unwritten (another process writes it); stop holding."""
        self._stop_holding()

    def _stop_holding(self) -> list[_Held]:
        with self._lock:
            held, self._held, self._holding = self._held, [], False
            SourceFileLoader.path_stats = self._stats  # type: ignore[method-assign]
            SourceFileLoader._cache_bytecode = self._cache  # type: ignore[attr-defined]
            self._versions.clear()
        return held


def _write_all(held: list[_Held]) -> None:
    """Each cache whose source is still the one compiled, with the mode the import system
    gives it. One saved again meanwhile is not written, or removed again if the save came
    while it was written: the cache would pass for a save in the same second with the same
    size, and the monitor, which drops the cache of a changed file, may have done so
    before this write."""
    for loader, source, path, data, compiled in held:
        try:
            stat = os.stat(source)
        except OSError:
            continue
        if compiled is None or _version_of(stat) != compiled:
            continue
        loader.set_data(path, data, _mode=stat.st_mode | 0o200)
        if version(source) != compiled:
            with contextlib.suppress(OSError):
                os.remove(path)


#: What tells one save of a file from another: the nanosecond mtime, the size and the
#: inode (an editor or ``git checkout`` that replaces the file makes a new one).
Version = tuple[int, int, int]


#: A held cache: the loader, the source, where the cache goes, its bytes, and the version
#: of the source it was compiled from.
_Held = tuple["Any", str, str, bytes, "Version | None"]


def version(source: str) -> Version | None:
    try:
        return _version_of(os.stat(source))
    except OSError:
        return None


def _version_of(stat: os.stat_result) -> Version:
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
