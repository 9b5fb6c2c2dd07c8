"""The monitor's record of one worker, and the thread that turns what the worker says
into events on the monitor's queue."""

from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass, field

from devreload.monitor.events import Event, WorkerSaid
from devreload.monitor.restarts import Restart
from devreload.wire.channel import Channel, ChannelClosed
from devreload.wire.messages import Connections, ConnectionsTaken, FromWorker, Ready


@dataclass
class Worker:
    """The monitor's record of one worker process."""

    pid: int
    channel: Channel
    started: float
    #: Wall-clock start, to compare with file mtimes.
    born: float = field(default_factory=time.time)
    #: It has said Ready: set by its reader as the message arrives, so that an exit the
    #: loop handles before the message still knows the worker served.
    ready: bool = False
    #: The restart that started it (None for the first worker).
    restart: Restart | None = None
    #: Started while the previous worker still accepted: it waits at its gate for Go.
    gated: bool = False
    #: The monitor's own fork, with the app it had imported (``devreload.monitor.standin``):
    #: a worker started the usual way replaces it once it serves.
    stand_in: bool = False
    #: The thread that reads its channel (``read_channel``).
    reader: threading.Thread | None = None


def read_channel(worker: Worker, events: queue.SimpleQueue[Event]) -> None:
    """A worker's messages, as events on the monitor's queue (the body of a thread)."""
    try:
        while True:
            message, fds = worker.channel.recv_with_fds()
            if isinstance(message, Connections):
                # Queued before confirmed: the worker's exit (SIGCHLD, Released) is
                # queued after, so the loop parks them before it starts the next one.
                events.put(WorkerSaid(worker, message, tuple(fds)))
                worker.channel.send(ConnectionsTaken())
                continue
            for fd in fds:
                os.close(fd)
            if isinstance(message, Ready):
                worker.ready = True
            if isinstance(message, FromWorker):
                events.put(WorkerSaid(worker, message))
    except ChannelClosed:
        pass
