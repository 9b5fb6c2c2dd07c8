"""The worker side of handing keep-alive connections over to the next worker.

The monitor's side (parking them between workers, and the error page answering them while
the app is broken) is in :mod:`devreload.monitor.parking` and ``ServingReloader``; the
servers use this through :func:`devreload.worker.proxy.handoff_for`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from devreload import processes
from devreload.wire.channel import (
    MAX_FDS,
    Channel,
    ChannelClosed,
    HandedConnection,
    received_connections,
    send_connections,
)
from devreload.wire.messages import Connections

#: How long a stopped server waits for the monitor to confirm it has parked the connections.
HANDOFF_TIMEOUT = 2.0


class ConnectionHandoff:
    """Keep-alive connections that outlive the worker that accepted them.

    Closing an idle keep-alive connection races with the client's next request on it (a
    reset, or a connection closed without response), so a stopping server hands its idle
    connections to the monitor instead, and the next worker's server adopts them as if it
    had just accepted them. A server calls ``open`` once it serves, ``take`` when woken,
    ``give_back`` for each connection that turns idle while it drains, and ``finish`` last.
    """

    def __init__(self, channel: Channel) -> None:
        self._channel = channel
        self._lock = threading.Condition()
        self._inbox: list[HandedConnection] = []
        self._wake: Callable[[], object] | None = None
        self._finished = False
        self._sent = 0  # Connections messages sent, and confirmed by the monitor
        self._confirmed = 0

    def open(self, wake: Callable[[], object]) -> None:
        """Take connections from now on: ``wake()`` is called (from another thread) when
        some arrive, and at once when some are waiting."""
        with self._lock:
            self._wake = wake
            waiting = bool(self._inbox)
        if waiting:
            self._call(wake)

    def take(self) -> list[HandedConnection]:
        """The connections passed to this worker and not adopted yet: the caller's now."""
        with self._lock:
            taken, self._inbox = self._inbox, []
        return taken

    def give_back(self, connections: Sequence[HandedConnection]) -> None:
        """Hand idle connections to the monitor for the next worker; they are closed here
        (the kernel keeps them open while their fds travel)."""
        if not connections:
            return
        with self._lock:
            self._sent += -(-len(connections) // MAX_FDS)
        try:
            send_connections(self._channel, connections)
        except ChannelClosed:
            processes.end_own_tree()

    def finish(self, connections: Sequence[HandedConnection] = ()) -> None:
        """The server has stopped: hand back ``connections`` and those passed here but never
        adopted, and return once the monitor has parked every one. Its confirmation also means
        that none is on its way here any more: the channel keeps the order."""
        with self._lock:
            self._wake = None
        pending = [*connections, *self.take()]
        while True:
            self.give_back(pending)
            with self._lock:
                self._sent += 1
            try:
                self._channel.send(Connections())  # nothing to carry: a request to confirm
            except ChannelClosed:
                processes.end_own_tree()
            with self._lock:
                self._lock.wait_for(lambda: self._confirmed >= self._sent, HANDOFF_TIMEOUT)
                pending, self._inbox = self._inbox, []
                self._finished = not pending
            if not pending:
                return

    def _arrived(self, message: Connections, fds: Sequence[int]) -> None:
        """From the thread reading the channel: connections for this worker's server."""
        connections = received_connections(message, fds)
        with self._lock:
            finished = self._finished
            if not finished:
                self._inbox.extend(connections)
            wake = self._wake
        if finished:
            self.give_back(connections)  # the server is gone: the next worker's then
        elif wake is not None and connections:
            self._call(wake)

    def _confirmed_one(self) -> None:
        with self._lock:
            self._confirmed += 1
            self._lock.notify_all()

    @staticmethod
    def _call(wake: Callable[[], object]) -> None:
        try:
            wake()
        except (OSError, RuntimeError):  # the server's loop has closed: finish() takes them
            pass
