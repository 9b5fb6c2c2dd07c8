"""The monitor's records of its workers, and what it hears from them.

Runs in the monitor. ``strategy.ReloadStrategy`` owns the decisions; these are the
pieces it decides with: one record per worker, the restart in progress, the thread that
turns a worker's messages into events, and the log of what the template may not preload.
"""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from devreload.log import Logger
from devreload.monitor.events import Event, FileChanged, Trigger, WorkerSaid
from devreload.wire.channel import Channel, ChannelClosed
from devreload.wire.messages import Connections, ConnectionsTaken, FromWorker


@dataclass
class Worker:
    """The monitor's record of one worker process."""

    pid: int
    channel: Channel
    started: float
    #: Wall-clock start, to compare with file mtimes.
    born: float = field(default_factory=time.time)
    ready: bool = False
    #: The restart that started it (None for the first worker).
    restart: Restart | None = None
    #: Started while the previous worker still accepted: it waits for Go.
    held: bool = False


@dataclass
class Restart:
    """A restart in progress: what asked for it, and when."""

    triggers: list[Trigger]
    began: float
    last: float = 0.0
    #: How long it waits after its last trigger (the quiet window, or none at all).
    window: float = 0.0
    #: When the save it is for happened (wall clock): the reload timeline's zero.
    saved: float = 0.0

    def describe(self) -> str:
        """``views.py (+2 more) changed``, or the reason a restart was asked for."""
        first = self.triggers[0]
        more = len(set(self.triggers)) - 1
        text = f"{first.describe()} (+{more} more)" if more else first.describe()
        return f"{text} changed" if isinstance(first, FileChanged) else text


def read_channel(worker: Worker, events: queue.SimpleQueue[Event]) -> None:
    """A worker's messages, as events on the monitor's queue (the body of a thread)."""
    try:
        while True:
            message, fds = worker.channel.recv_with_fds()
            if isinstance(message, Connections):
                # Queued before confirmed: the worker's exit (SIGCHLD, Released) is
                # queued after, so the loop holds them before it starts the next one.
                events.put(WorkerSaid(worker, message, tuple(fds)))
                worker.channel.send(ConnectionsTaken())
                continue
            for fd in fds:
                os.close(fd)
            if isinstance(message, FromWorker):
                events.put(WorkerSaid(worker, message))
    except ChannelClosed:
        pass


class RefusedLog:
    """With -v: which libraries the template will not preload, and why, once each."""

    def __init__(self, log: Logger) -> None:
        self.log = log
        self.seen: set[str] = set()

    def __call__(self, refused: Sequence[tuple[str, str]]) -> None:
        by_reason: dict[str, list[str]] = {}
        for name, reason in refused:
            if name not in self.seen:
                self.seen.add(name)
                by_reason.setdefault(reason, []).append(name)
        for reason, names in by_reason.items():
            more = f" (+{len(names) - 8} more)" if len(names) > 8 else ""
            self.log.debug("not preloading %s: %s", ", ".join(names[:8]) + more, reason)


def stdio_in_place() -> None:
    """A closed stdin, stdout or stderr (``2>&-``) gets /dev/null: otherwise the next
    descriptor opened (a listening socket) would take its number, and a worker's prints
    would go to it."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
