"""Keep-alive connections parked in the monitor between two workers.

Closing an idle keep-alive connection races with the client's next request on it, so a
stopping worker hands its idle ones to the monitor (with any bytes of the next request
it had read). The monitor keeps them here until a worker serves, and passes them on;
while the app is broken the error page answers them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from devreload.monitor.record import Worker
from devreload.wire.channel import (
    ChannelClosed,
    HandedConnection,
    received_connections,
    send_connections,
)
from devreload.wire.messages import Connections


class ParkedConnections:
    """The connections waiting for the next worker, in the order they were handed over."""

    def __init__(self) -> None:
        self._connections: list[HandedConnection] = []

    def __len__(self) -> int:
        return len(self._connections)

    def __iter__(self) -> Iterator[HandedConnection]:
        return iter(list(self._connections))

    def park(self, message: Connections, fds: Sequence[int]) -> None:
        self._connections.extend(received_connections(message, fds))

    def extend(self, connections: Iterable[HandedConnection]) -> None:
        self._connections.extend(connections)

    def take(self) -> list[HandedConnection]:
        """All of them, now the caller's to answer or close."""
        taken, self._connections = self._connections, []
        return taken

    def give_to(self, worker: Worker) -> None:
        """Pass them to ``worker``, which serves; if it died just now, they die with it."""
        if self._connections:
            try:
                send_connections(worker.channel, self.take())
            except ChannelClosed:
                pass

    def close(self) -> None:
        for sock, _ in self.take():
            sock.close()
