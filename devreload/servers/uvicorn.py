"""ASGI apps under uvicorn: option conversion from ini strings, and a ``uvicorn.Server``
that closes its listeners the moment it is told to stop and drains within a bound,
without uvicorn's fixed pauses.

Under a monitor, idle keep-alive connections are not closed when the server stops (that
races with the client's next request): they go to the next worker, which adopts them
(:mod:`devreload.servers.uvicorn_connections` knows their state).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import signal
import socket
from collections.abc import Mapping, Sequence
from dataclasses import replace
from types import FrameType
from typing import Any

import uvicorn

from devreload.errors import ServerOptionError
from devreload.servers.base import (
    FRESH_CONNECTION_GRACE,
    Bounds,
    Drain,
    DrainClock,
    ReadyCallback,
)
from devreload.servers.uvicorn_connections import (
    WEBSOCKET_APP_GRACE,
    adopt,
    defer_next_request,
    detach,
    drain_step,
    quiet_cancel,
    task_owner,
)
from devreload.values import asbool
from devreload.web.inflight import REQUESTS
from devreload.web.livereload import close_streams
from devreload.wire.channel import HandedConnection
from devreload.worker.handoff import ConnectionHandoff
from devreload.worker.proxy import handoff_for

ASGI = True
#: devreload's dev defaults, under the user's options.
DEFAULTS: dict[str, Any] = {"lifespan": "on"}
#: Keys devreload sets itself: the sockets decide where to listen, the monitor reloads.
RESERVED = frozenset(
    {
        "app",
        "host",
        "port",
        "uds",
        "fd",
        "reload",
        "reload_dirs",
        "reload_delay",
        "reload_includes",
        "reload_excludes",
        "workers",
        "callback_notify",
    }
)


def convert_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """``uvicorn.Config`` keyword arguments, ini strings turned into the annotated types."""
    parameters = inspect.signature(uvicorn.Config.__init__).parameters
    out: dict[str, Any] = dict(DEFAULTS)
    for key, value in options.items():
        if key in RESERVED:
            raise ServerOptionError("uvicorn", key, "is set by devreload; use listen instead")
        if key not in parameters or key == "self":
            raise ServerOptionError("uvicorn", key, "unknown option")
        out[key] = _convert(key, value, str(parameters[key].annotation))
    return out


def _convert(key: str, value: Any, annotation: str) -> Any:
    """Turn an ini string into the type a uvicorn.Config parameter is annotated with; a
    parameter that also takes a string (``log_level: str | int | None``) keeps a value
    that is not of its other types (``info``) as the string."""
    if not isinstance(value, str):
        return value
    kinds = {part.strip() for part in annotation.split("|")}
    text = value.strip()
    try:
        if "None" in kinds and text.lower() in ("", "none"):
            return None
        if "bool" in kinds:
            return asbool(text)
        if "int" in kinds:
            return int(text)
        if "float" in kinds:
            return float(text)
    except ValueError as exc:
        if "str" in kinds:
            return value
        raise ServerOptionError("uvicorn", key, f"bad value {value!r} ({exc})") from None
    return value


def run(
    app: Any,
    sockets: Sequence[socket.socket],
    options: Mapping[str, Any],
    on_ready: ReadyCallback | None,
    bounds: Bounds,
    on_stop: ReadyCallback | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT; then stop accepting, and drain."""
    options = dict(options)
    bound = options.pop("timeout_graceful_shutdown", None)
    if bound is not None:  # the user's own bound, whatever the next worker does
        bounds = replace(bounds, drain=float(bound), hurry=min(bounds.hurry, float(bound)))
    if logging.getLogger().handlers:
        # Logging is configured already (an ini's sections): let uvicorn's loggers use it.
        options.setdefault("log_config", None)
    server = DrainingServer(uvicorn.Config(app, **options), bounds, handoff_for(sockets),
                            on_ready, on_stop)
    server.run(sockets=list(sockets))


class DrainingServer(uvicorn.Server):
    """uvicorn, but closing its listeners the moment it is told to stop, and draining
    within ``bounds`` without uvicorn's fixed pauses; under a monitor, handing its idle
    keep-alive connections to the next worker (``handoff``)."""

    def __init__(
        self,
        config: uvicorn.Config,
        bounds: Bounds,
        handoff: ConnectionHandoff | None,
        on_ready: ReadyCallback | None,
        on_stop: ReadyCallback | None,
    ) -> None:
        super().__init__(config)
        self.bounds = bounds
        self.handoff = handoff
        self.on_ready = on_ready
        self.on_stop = on_stop
        self.loop: asyncio.AbstractEventLoop | None = None
        self.wake: asyncio.Event | None = None
        self.stopped_accepting = False
        self.adopting: set[asyncio.Task[None]] = set()
        #: Connections told to close, and websocket apps' tasks with when to cancel them.
        self.closing: set[Any] = set()
        self.websocket_apps: dict[asyncio.Task[Any], float] = {}

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        self.wake = asyncio.Event()
        await super().startup(sockets=sockets)
        if not self.started or self.should_exit:
            return
        if self.handoff is not None:
            loop = self.loop
            self.handoff.open(lambda: loop.call_soon_threadsafe(self.adopt_waiting))
        if self.on_ready is not None:
            self.on_ready()

    def adopt_waiting(self) -> None:
        """The previous worker's connections, served as if just accepted here."""
        if self.handoff is None or self.should_exit or self.loop is None:
            return  # stopping: finish() hands them on
        # What the listeners' accepts use (asyncio keeps it on the Server).
        factory = self.servers[0]._protocol_factory  # type: ignore[attr-defined]
        for sock, data in self.handoff.take():
            task = self.loop.create_task(adopt(self.loop, factory, sock, data))
            self.adopting.add(task)
            task.add_done_callback(self.adopting.discard)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.should_exit = True
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.stop_accepting)

    def stop_accepting(self) -> None:
        close_streams()
        # Stop reading the listeners without closing the asyncio servers yet: a
        # connection accepted a moment ago still gets its transport (closing first
        # makes asyncio drop it, a reset for the client).
        if self.loop is not None:
            for listener in getattr(self, "servers", []):
                for sock in listener.sockets:
                    self.loop.remove_reader(sock.fileno())
        self.defer_next_requests()
        if self.on_stop is not None and not self.stopped_accepting:
            self.stopped_accepting = True
            self.on_stop()
        if self.wake is not None:
            self.wake.set()

    def defer_next_requests(self) -> None:
        """No connection starts a new request here any more: it goes to the next worker
        (see ``defer_next_request``)."""
        if self.handoff is not None:
            for connection in self.server_state.connections:
                defer_next_request(connection)

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):
            assert self.wake is not None
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.wake.wait(), 0.1)
            counter = (counter + 1) % 864000

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.stop_accepting()
        assert self.loop is not None
        for _ in range(5):  # let just-accepted connections reach connection_made
            await asyncio.sleep(0)
        self.defer_next_requests()  # those too
        began = self.loop.time()
        clock = DrainClock(self.bounds, began)
        state = self.server_state
        while (state.connections or state.tasks) and not self.force_exit:
            now = self.loop.time()
            if clock.over(now):
                REQUESTS.cut(clock.why())
                for task in state.tasks:
                    task.cancel()
                break
            self.drain_round(now, grace_over=now >= began + FRESH_CONNECTION_GRACE)
            await asyncio.sleep(0.01)
        if self.handoff is not None:
            self.handoff.finish()
        for listener in self.servers:
            listener.close()
        for sock in sockets or []:
            sock.close()
        if not self.force_exit:
            await self.lifespan.shutdown()

    def drain_round(self, now: float, grace_over: bool) -> None:
        """Decide on every connection not told to close yet, once."""
        idle: list[HandedConnection] = []
        for connection in list(self.server_state.connections):
            if connection in self.closing:
                continue
            step, data = drain_step(connection, self.handoff is not None, grace_over)
            if step is Drain.HAND_OVER:
                idle.append((detach(connection), data))
            elif step is Drain.CLOSE_WEBSOCKET:
                # Its app is told so by the close, and gets a moment to return.
                connection.shutdown()
                for task in self.server_state.tasks:
                    if task_owner(task) is connection:
                        self.websocket_apps[task] = now + WEBSOCKET_APP_GRACE
            elif step is Drain.CLOSE:
                connection.shutdown()
            if step is not Drain.WAIT:
                self.closing.add(connection)
        self.end_websocket_apps(now)
        if self.handoff is not None:
            self.handoff.give_back(idle)

    def end_websocket_apps(self, now: float) -> None:
        """A websocket's app that has not returned in its moment after the close is
        cancelled (an app that only pushes never reads the disconnect)."""
        for task, cancel_at in list(self.websocket_apps.items()):
            if task.done() or now >= cancel_at:
                del self.websocket_apps[task]
                if not task.done():
                    quiet_cancel(task)
