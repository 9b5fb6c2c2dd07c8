"""The events the monitor's one loop decides on.

Signals, file monitor threads, the channel readers and the terminal only put one of
these on the monitor's queue (a ``SimpleQueue``, safe to use from any thread);
``ReloadStrategy.run`` takes them off one at a time.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import sys
import threading
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
    #: Where a change not seen by the file monitor comes from (the ``-v`` timeline says).
    why: str = field(default="", compare=False)

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
    ``SignalReceived``; the old handlers come back after.

    The kernel may hand a signal to any thread, and Python runs its handler only when the
    main thread next runs bytecode: a main thread asleep in ``SimpleQueue.get`` would not
    wake. So the C handler's wakeup byte, written from whichever thread took the signal,
    is what queues the event, from a thread of its own; the Python handlers do nothing."""
    queued = STOP_SIGNALS
    if sys.platform != "win32":
        queued += (signal.SIGHUP, signal.SIGCHLD)
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    previous = {sig: signal.signal(sig, _only_wake) for sig in queued}
    previous_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    thread = threading.Thread(target=_read_wakeups, args=(reader, put), daemon=True,
                              name="devreload-signals")
    thread.start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(previous_fd)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        writer.shutdown(socket.SHUT_RDWR)
        writer.close()
        thread.join()
        reader.close()


def _only_wake(signum: int, frame: Any) -> None:
    """Installed so that the C handler writes the wakeup byte; the byte is the event."""


def _read_wakeups(reader: socket.socket, put: Callable[[Event], None]) -> None:
    while data := reader.recv(512):
        for signum in data:
            put(SignalReceived(signum))
