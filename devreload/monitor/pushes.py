"""Static files pushed to open pages: once per save, however many events the save makes.

An editor's save is several events (vim: the file renamed to a backup, made anew,
written, its mode set back); pushing on each swaps the stylesheet as often, the first
time with the file missing or half written. A push waits for a quiet window after the
file's last event (next to none after an event that says the file is whole: written and
closed, or renamed into place), and a file that is as it was at its last push is not
pushed again.
"""

from __future__ import annotations

import os


class StaticPushes:
    """The static files changed and not yet pushed, each with when it may be."""

    def __init__(self) -> None:
        self._due: dict[str, float] = {}
        #: What each file was (mtime, size, inode) when it was last pushed.
        self._pushed: dict[str, tuple[int, int, int]] = {}

    def changed(self, path: str, due: float) -> None:
        """A new event for ``path``: it may be pushed at ``due`` if no other comes."""
        self._due[path] = due

    def deadline(self) -> float | None:
        return min(self._due.values(), default=None)

    def due(self, now: float) -> list[str]:
        """The files whose window has passed and that are new since their last push; a
        file gone by then has nothing to show."""
        ready = [path for path, at in self._due.items() if at <= now]
        pushed = []
        for path in ready:
            del self._due[path]
            try:
                stat = os.stat(path)
            except OSError:
                continue
            signature = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
            if self._pushed.get(path) != signature:
                self._pushed[path] = signature
                pushed.append(path)
        return pushed
