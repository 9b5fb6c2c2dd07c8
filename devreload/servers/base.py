"""What every server backend shares: the interface a backend module provides, and the
words of a drain.

A backend module (:mod:`~devreload.servers.waitress`, :mod:`~devreload.servers.uvicorn`)
has ``convert_options`` (ini strings to the server's types; unknown keys raise) and
``run`` (serve on listening sockets until SIGTERM or SIGINT, stop accepting at once, then
drain within a bound). Draining, each connection is decided on again and again, until
none is left or the bound has passed: see :class:`Drain`.
"""

from __future__ import annotations

import enum
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

ReadyCallback = Callable[[], None]

#: A connection accepted just before a stop but with no request yet gets this long to send
#: one before the draining server closes it.
FRESH_CONNECTION_GRACE = 0.2


@dataclass(frozen=True)
class Bounds:
    """How long a stopped server lets the requests under way finish: ``drain`` seconds
    from the stop (under a monitor the next worker serves meanwhile, so this may be long),
    and no more than ``hurry`` once ``hurried()`` says everything stops (Ctrl-C)."""

    drain: float
    hurry: float
    hurried: Callable[[], bool] = field(default=lambda: False)


class DrainClock:
    """A drain's deadline, brought forward when everything stops."""

    def __init__(self, bounds: Bounds, began: float) -> None:
        self.bounds = bounds
        self.deadline = began + bounds.drain
        self._hurried = False

    def over(self, now: float) -> bool:
        if not self._hurried and self.bounds.hurried():
            self._hurried = True
            self.deadline = min(self.deadline, now + self.bounds.hurry)
        return now >= self.deadline

    def why(self) -> str:
        """What the line about a request cut at the deadline says of it."""
        if self._hurried:
            return "devreload stopped"
        return f"the worker's {self.bounds.drain:g} s to finish its requests ran out"


class Drain(enum.Enum):
    """What a draining server does with one connection, this round."""

    #: Between two requests, under a monitor: it goes to the next worker, open.
    HAND_OVER = "hand over"
    #: A request under way (or, for a connection just accepted, on its way): not yet.
    WAIT = "wait"
    #: Done here: closed once its response is out.
    CLOSE = "close"
    #: A websocket: closed now with 1012 (service restart), never waited for.
    CLOSE_WEBSOCKET = "close websocket"


class Backend(Protocol):
    """What a backend module provides."""

    #: Whether it serves ASGI apps (else WSGI).
    ASGI: bool

    def convert_options(self, options: Mapping[str, Any]) -> dict[str, Any]: ...

    def run(
        self,
        app: Any,
        sockets: Sequence[socket.socket],
        options: Mapping[str, Any],
        on_ready: ReadyCallback | None,
        bounds: Bounds,
        on_stop: ReadyCallback | None = None,
    ) -> None: ...
