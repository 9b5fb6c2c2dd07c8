"""The worker's side of the changeover from the old worker to the next one.

A new worker started while the old one still accepts builds its app, then waits at its
gate for ``Go`` (or ``StandDown``: not needed after all). An old worker tells the monitor
it has *released* the sockets (stopped accepting) at once, drains, and then waits to be
*dismissed* (``Leave``: the next worker serves) before its exit takes the CPU.
"""

from __future__ import annotations

import threading
import time

#: The longest a stopped server waits to be dismissed before it exits.
LEAVE_WAIT = 0.5


class Changeover:
    """The gate of a new worker and the release of an old one; the monitor's messages
    arrive on the channel's reader thread."""

    def __init__(self, gated: bool = False) -> None:
        self._go = threading.Event()
        if not gated:
            self._go.set()
        self._stand_down = False
        #: When this worker released the sockets (monotonic), once it has.
        self.released_at: float | None = None
        self._dismissed = threading.Event()
        self._hurried = threading.Event()

    @property
    def gated(self) -> bool:
        return not self._go.is_set()

    def go(self) -> None:
        self._go.set()

    def stand_down(self) -> None:
        self._stand_down = True
        self._go.set()

    def wait_for_go(self) -> bool:
        """Block until the gate opens; False when told to stand down instead."""
        self._go.wait()
        return not self._stand_down

    def release(self) -> bool:
        """This worker no longer accepts; True the first time (the monitor is told once)."""
        if self.released_at is not None:
            return False
        self.released_at = time.monotonic()
        return True

    def dismiss(self) -> None:
        self._dismissed.set()

    def hurry(self) -> None:
        self._hurried.set()

    def hurried(self) -> bool:
        """Everything stops: a draining server finishes within its short bound."""
        return self._hurried.is_set()

    def wait_to_leave(self) -> None:
        """A worker that released the sockets exits once dismissed (its exit would share
        the CPU with the next worker's start), or after LEAVE_WAIT."""
        if self.released_at is not None:
            self._dismissed.wait(max(0.0, self.released_at + LEAVE_WAIT - time.monotonic()))
