"""The monitor of a whole stack (``devreload up``): one loop, one event queue, one file
monitor, and a member per process: a reloader for a served app or a Python program, a
:class:`~devreload.monitor.supervised.Supervised` for anything else.

Each member puts its events on the queue tagged with its name, and only it handles
them; a signal goes to every member. A member whose process ended for good (it exited
0, or a supervised one stopped) is shut down; the others keep running. The stack ends
once every member has.
"""

from __future__ import annotations

import queue
import signal
from collections.abc import Callable
from typing import Protocol

from devreload.log import Logger
from devreload.monitor.events import STOP_SIGNALS, Event, SignalReceived, queued_signals
from devreload.monitor.terminal import stdio_in_place


class Member(Protocol):
    """What the stack's loop drives: a :class:`~devreload.monitor.strategy.ReloadStrategy`
    fits, and so does a supervised process."""

    def startup(self) -> None: ...

    def handle(self, event: Event) -> None: ...

    def advance(self) -> None: ...

    def time_to_wait(self) -> float | None: ...

    def finished(self) -> bool: ...

    def shutdown(self) -> None: ...


class Tagged(queue.SimpleQueue):  # type: ignore[type-arg]
    """A member's own queue, as it sees it: what it puts lands on the stack's queue,
    tagged with its name."""

    def __init__(self, stack: queue.SimpleQueue[tuple[str | None, Event]], name: str) -> None:
        self.stack = stack
        self.name = name

    def put(self, item: Event, block: bool = True, timeout: float | None = None) -> None:
        self.stack.put((self.name, item))


class Stack:
    """The one loop of a stack's monitor."""

    def __init__(self, log: Logger) -> None:
        self.log = log
        self.events: queue.SimpleQueue[tuple[str | None, Event]] = queue.SimpleQueue()
        self.members: dict[str, Member] = {}
        self.stopping = False
        #: Run once the loop has ended (the shared file monitor, the output pipes).
        self.closers: list[Callable[[], None]] = []

    def queue_for(self, name: str) -> queue.SimpleQueue[Event]:
        return Tagged(self.events, name)

    def add(self, name: str, member: Member) -> None:
        self.members[name] = member

    def run(self) -> int:
        """Until every member has ended; 0 (a member's failure is its own, shown)."""
        stdio_in_place()
        live = dict(self.members)
        with queued_signals(lambda event: self.events.put((None, event))):
            try:
                for member in live.values():
                    member.startup()
                while live:
                    try:
                        name, event = self.events.get(timeout=self._time_to_wait(live))
                    except queue.Empty:
                        name, event = None, None
                    if event is not None:
                        self._dispatch(live, name, event)
                    for member in live.values():
                        member.advance()
                    self._end_finished(live)
            finally:
                for member in live.values():
                    member.shutdown()
                for close in self.closers:
                    close()
        return 0

    def _dispatch(self, live: dict[str, Member], name: str | None, event: Event) -> None:
        if name is not None:
            if name in live:
                live[name].handle(event)
            return
        if isinstance(event, SignalReceived) and event.signum in STOP_SIGNALS:
            if not self.stopping:
                self.log.info("%s: stopping %s", signal.Signals(event.signum).name,
                              ", ".join(live))
            self.stopping = True
        for member in live.values():
            member.handle(event)

    def _end_finished(self, live: dict[str, Member]) -> None:
        for name, member in list(live.items()):
            if member.finished():
                del live[name]
                member.shutdown()
                if not self.stopping:
                    self.log.info("%s has ended; %s", name,
                                  "the others keep running" if live else "nothing is left")

    @staticmethod
    def _time_to_wait(live: dict[str, Member]) -> float | None:
        waits = [w for w in (m.time_to_wait() for m in live.values()) if w is not None]
        return min(waits) if waits else None

