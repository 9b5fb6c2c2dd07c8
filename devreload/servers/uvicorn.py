"""ASGI apps under uvicorn: option conversion from ini strings, and a ``uvicorn.Server``
that closes its listeners the moment it is told to stop and drains within a bound,
without uvicorn's fixed pauses.

Under a monitor, idle keep-alive connections are not closed when the server stops (that
races with the client's next request): they go to the next worker, which adopts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import signal
import socket
import weakref
from collections.abc import Callable, Mapping, Sequence
from types import FrameType
from typing import Any

from devreload.errors import ServerOptionError
from devreload.servers.choice import FRESH_CONNECTION_GRACE, ReadyCallback
from devreload.values import asbool
from devreload.web.livereload import close_streams
from devreload.wire.channel import HandedConnection
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
    import uvicorn

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
    graceful_timeout: float,
    on_stop: ReadyCallback | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT; then stop accepting, and drain."""
    import uvicorn

    options = dict(options)
    bound = options.pop("timeout_graceful_shutdown", None)
    timeout = graceful_timeout if bound is None else float(bound)
    if logging.getLogger().handlers:
        # Logging is configured already (an ini's sections): let uvicorn's loggers use it.
        options.setdefault("log_config", None)
    handoff = handoff_for(sockets)

    class Server(uvicorn.Server):
        """uvicorn, but closing its listeners the moment it is told to stop, and draining
        within ``timeout`` without uvicorn's fixed pauses."""

        loop: asyncio.AbstractEventLoop | None = None
        wake: asyncio.Event | None = None
        stopped_accepting = False
        adopting: set[asyncio.Task[None]]

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            self.loop = asyncio.get_running_loop()
            self.wake = asyncio.Event()
            self.adopting = set()
            await super().startup(sockets=sockets)
            if self.started and not self.should_exit and handoff is not None:
                loop = self.loop
                handoff.open(lambda: loop.call_soon_threadsafe(self.adopt_waiting))
            if self.started and not self.should_exit and on_ready is not None:
                on_ready()

        def adopt_waiting(self) -> None:
            """The previous worker's connections, served as if just accepted here."""
            if handoff is None or self.should_exit or self.loop is None:
                return  # stopping: finish() hands them on
            # What the listeners' accepts use (asyncio keeps it on the Server).
            factory = self.servers[0]._protocol_factory  # type: ignore[attr-defined]
            for sock, data in handoff.take():
                task = self.loop.create_task(_adopt(self.loop, factory, sock, data))
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
            self.hold_next_requests()
            if on_stop is not None and not self.stopped_accepting:
                self.stopped_accepting = True
                on_stop()
            if self.wake is not None:
                self.wake.set()

        def hold_next_requests(self) -> None:
            """No connection starts a new request here any more: it goes to the next
            worker (see _hold_next_request)."""
            if handoff is not None:
                for connection in self.server_state.connections:
                    _hold_next_request(connection)

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
            self.hold_next_requests()  # those too
            began = self.loop.time()
            deadline = began + timeout
            state = self.server_state
            closing: set[Any] = set()
            websocket_apps: dict[asyncio.Task[Any], float] = {}  # task -> when to cancel it
            while (state.connections or state.tasks) and not self.force_exit:
                idle: list[HandedConnection] = []
                now = self.loop.time()
                if now >= deadline:
                    for task in state.tasks:
                        task.cancel()
                    break
                for connection in list(state.connections):
                    if connection in closing:
                        continue
                    if _is_websocket(connection):
                        # A websocket: closed now with 1012 (service restart), never waited
                        # for. Its app is told so, and gets a moment to return.
                        connection.shutdown()
                        closing.add(connection)
                        for task in state.tasks:
                            if _task_owner(task) is connection:
                                websocket_apps[task] = now + WEBSOCKET_APP_GRACE
                        continue
                    if handoff is not None and _is_http(connection):
                        # Between requests it goes to the next worker, with what was read of
                        # the next one; with a request under way, once its response is out.
                        data = _idle_bytes(connection)
                        if data is not None:
                            idle.append((_detach(connection), data))
                            closing.add(connection)
                            continue
                        if _busy(connection):
                            continue
                    # A connection accepted just before the stop whose request is still on
                    # its way gets a moment to send it; any other closes after its response.
                    fresh = getattr(connection, "cycle", None) is None
                    if not fresh or now >= began + FRESH_CONNECTION_GRACE:
                        connection.shutdown()
                        closing.add(connection)
                for task, cancel_at in list(websocket_apps.items()):
                    if task.done() or now >= cancel_at:
                        del websocket_apps[task]
                        if not task.done():
                            _quiet_cancel(task)
                if handoff is not None:
                    handoff.give_back(idle)
                await asyncio.sleep(0.01)
            if handoff is not None:
                handoff.finish()
            for listener in self.servers:
                listener.close()
            for sock in sockets or []:
                sock.close()
            if not self.force_exit:
                await self.lifespan.shutdown()

    config = uvicorn.Config(app, **options)
    Server(config).run(sockets=list(sockets))


async def _adopt(
    loop: asyncio.AbstractEventLoop,
    factory: Callable[[], asyncio.Protocol],
    sock: socket.socket,
    data: bytes,
) -> None:
    """Serve a connection the previous worker handed over, as if just accepted: ``data``,
    the start of its next request read there already, is fed before anything the
    socket delivers (the transport starts reading only after ``connection_made``)."""

    def protocol() -> asyncio.Protocol:
        new = factory()
        if data:
            made = new.connection_made

            def connection_made(transport: asyncio.BaseTransport) -> None:
                made(transport)
                new.data_received(data)

            new.connection_made = connection_made  # type: ignore[method-assign]
        return new

    try:
        await loop.connect_accepted_socket(protocol, sock)
    except OSError:  # the client has gone meanwhile
        sock.close()


#: uvicorn's HTTP/1.1 protocols, whose state between requests devreload knows.
HTTP_PROTOCOLS = ("uvicorn.protocols.http.h11_impl", "uvicorn.protocols.http.httptools_impl")


def _is_http(connection: Any) -> bool:
    """Plain HTTP/1.1 that can change process: not TLS (its session stays here)."""
    transport = getattr(connection, "transport", None)
    return (
        type(connection).__module__ in HTTP_PROTOCOLS
        and transport is not None
        and transport.get_extra_info("sslcontext") is None
    )


def _busy(connection: Any) -> bool:
    """A request is under way on this HTTP connection (or its response still being sent):
    it goes to the next worker once that is done."""
    import h11

    transport = connection.transport
    if transport is None or transport.is_closing():
        return False
    cycle = connection.cycle
    if (cycle is not None and not cycle.response_complete) or transport.get_write_buffer_size():
        return True
    # httptools: a request's head being parsed (its cycle starts once the head is complete).
    scope = getattr(connection, "scope", None)
    if scope is not None and (cycle is None or cycle.scope is not scope):
        return True
    # h11: the rest of a body the app answered without reading.
    conn = getattr(connection, "conn", None)
    return conn is not None and conn.their_state is h11.SEND_BODY


def _idle_bytes(connection: Any) -> bytes | None:
    """For an HTTP connection between two requests, what was read of the next one and not
    parsed yet (h11 keeps a partial head in its buffer); None when it is not idle."""
    import h11

    if _busy(connection):
        return None
    transport = connection.transport
    if transport is None or transport.is_closing():
        return None
    conn = getattr(connection, "conn", None)
    if conn is not None:  # h11
        if conn.our_state is not h11.IDLE or conn.their_state is not h11.IDLE:
            return None
        data, closed = conn.trailing_data
        return None if closed else bytes(data)
    # httptools parses every byte it gets at once: idle when its last request was whole.
    cycle = connection.cycle
    if connection.pipeline or (cycle is not None and cycle.more_body):
        return None
    return bytes(getattr(connection, "devreload_unread", b""))


def _hold_next_request(connection: Any) -> None:
    """Once the server has stopped accepting, a connection parses no new request: one
    under way finishes, the next waits unread (in h11's buffer, or in ``devreload_unread``
    for httptools) and goes to the next worker with the connection. Otherwise a request
    sent after the restart on a connection kept open would be answered by the old code."""
    if not _is_http(connection) or getattr(connection, "devreload_held", False):
        return
    connection.devreload_held = True
    if getattr(connection, "conn", None) is not None:  # h11
        import h11

        handle_events = connection.handle_events

        def held_handle_events() -> None:
            conn = connection.conn
            if conn.our_state is h11.IDLE and conn.their_state is h11.IDLE:
                return  # between requests: what came of the next one stays in the buffer
            handle_events()

        connection.handle_events = held_handle_events
        return
    data_received = connection.data_received
    unread = connection.devreload_unread = bytearray()

    def held_data_received(data: bytes) -> None:
        if unread or (not _busy(connection) and not connection.pipeline):
            unread.extend(data)
            return
        data_received(data)

    connection.data_received = held_data_received


def _detach(connection: Any) -> socket.socket:
    """Take an idle connection from its transport: asyncio lets go of it, the client's
    connection stays open (on a duplicate descriptor) for the next worker."""
    raw = connection.transport.get_extra_info("socket")
    sock = socket.socket(fileno=os.dup(raw.fileno()))
    connection.transport.abort()
    return sock


#: After its websocket is closed, an app still running its handler gets this long to return
#: before it is cancelled (an app that only pushes never reads the disconnect).
WEBSOCKET_APP_GRACE = 0.1


def _is_websocket(connection: Any) -> bool:
    """A websocket connection: any of uvicorn's implementations (websockets, its sans-I/O
    variant, wsproto); each closes with 1012 on ``shutdown()``."""
    return type(connection).__module__.startswith("uvicorn.protocols.websockets.")


def _task_owner(task: asyncio.Task[Any]) -> Any:
    """The protocol object whose ``run_asgi`` this task runs (uvicorn's websocket
    protocols do not keep their task), or None."""
    frame = getattr(task.get_coro(), "cr_frame", None)
    return None if frame is None else frame.f_locals.get("self")


class _QuietCancelled(logging.Filter):
    """Drops uvicorn's "Exception in ASGI application" for the tasks we cancel on purpose."""

    def __init__(self) -> None:
        super().__init__()
        self.tasks: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, asyncio.CancelledError):
            return True
        try:
            return asyncio.current_task() not in self.tasks
        except RuntimeError:  # no loop in this thread
            return True


_QUIET = _QuietCancelled()


def _quiet_cancel(task: asyncio.Task[Any]) -> None:
    """Cancel a websocket's app: its handler sees CancelledError, its log no traceback."""
    logger = logging.getLogger("uvicorn.error")
    if _QUIET not in logger.filters:
        logger.addFilter(_QUIET)
    _QUIET.tasks.add(task)
    task.cancel()
