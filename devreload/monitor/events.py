"""The events the monitor's one loop decides on.

Signal handlers, file monitor threads, the channel readers and the terminal only put
one of these on the monitor's queue (a ``SimpleQueue``, safe to use from a signal
handler); ``ReloadStrategy.run`` takes them off one at a time.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from devreload.log import display_path
from devreload.wire.messages import FromWorker


@dataclass(frozen=True)
class FileChanged:
    """A file monitor saw ``path`` change (from its thread). ``final``: the change is known
    complete (the writer closed the file, or renamed it into place); ``seen``: when
    (wall clock). Neither makes two changes of one path different."""

    path: str
    final: bool = field(default=False, compare=False)
    seen: float = field(default_factory=time.time, compare=False)

    def describe(self) -> str:
        return display_path(self.path)


@dataclass(frozen=True)
class ReloadRequested:
    """A restart asked for by other means: a signal, ``trigger_reload()``, exit 75, code."""

    reason: str

    def describe(self) -> str:
        return self.reason


#: What a restart is for; ``ReloadStrategy.should_restart`` gets one.
Trigger = FileChanged | ReloadRequested


@dataclass(frozen=True)
class SignalReceived:
    signum: int


@dataclass(frozen=True)
class WorkerSaid:
    """A message from a worker; ``worker`` is the monitor's record of it; ``fds`` came
    with it (the sockets of ``Connections``), now the monitor's to close."""

    worker: Any
    message: FromWorker
    fds: tuple[int, ...] = ()


@dataclass(frozen=True)
class EnterPressed:
    """Enter at the terminal after a crash."""


@dataclass(frozen=True)
class ExitSeen:
    """A process the launcher started has exited (where no SIGCHLD says so)."""


Event = Trigger | SignalReceived | WorkerSaid | EnterPressed | ExitSeen

#: What stops the monitor: Ctrl-C, a polite kill, and on Windows Ctrl-Break.
STOP_SIGNALS: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)
if sys.platform == "win32":
    STOP_SIGNALS += (signal.SIGBREAK,)


@contextlib.contextmanager
def queued_signals(put: Callable[[Event], None]) -> Iterator[None]:
    """While inside, the stop signals, SIGHUP and SIGCHLD (where they exist) only queue a
    ``SignalReceived`` (a ``SimpleQueue.put`` is safe in a signal handler); the old
    handlers come back after."""
    previous: dict[int, Any] = {}
    queued = STOP_SIGNALS
    if sys.platform != "win32":
        queued += (signal.SIGHUP, signal.SIGCHLD)
    for sig in queued:
        previous[sig] = signal.signal(sig, lambda signum, frame: put(SignalReceived(signum)))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
