"""What devreload knows of uvicorn's connections: whether one is idle between two requests,
busy, or a websocket; what was read of its next request; how to take it out of its
transport, and how the next worker adopts it.

A draining server asks :func:`drain_step` about each of its connections, round after
round; the rest of this module is what that answer is made of. Each function reads the
protocol objects of uvicorn's HTTP/1.1 implementations (h11 and httptools) as they are.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import weakref
from collections.abc import Callable
from typing import Any

from devreload.servers.base import Drain

#: uvicorn's HTTP/1.1 protocols, whose state between requests devreload knows.
HTTP_PROTOCOLS = ("uvicorn.protocols.http.h11_impl", "uvicorn.protocols.http.httptools_impl")


def drain_step(connection: Any, handing_over: bool, grace_over: bool) -> tuple[Drain, bytes]:
    """What a draining server does with ``connection`` now, and, to hand it over, the bytes
    of its next request read already. ``handing_over``: a next worker takes idle ones;
    ``grace_over``: a connection accepted just before the stop had its moment to send its
    request."""
    if is_websocket(connection):
        return Drain.CLOSE_WEBSOCKET, b""
    if handing_over and is_http(connection):
        # Between requests it goes to the next worker, with what was read of the next
        # one; with a request under way, once its response is out.
        data = idle_bytes(connection)
        if data is not None:
            return Drain.HAND_OVER, data
        if busy(connection):
            return Drain.WAIT, b""
    fresh = getattr(connection, "cycle", None) is None
    if fresh and not grace_over:
        return Drain.WAIT, b""
    return Drain.CLOSE, b""


async def adopt(
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


def is_http(connection: Any) -> bool:
    """Plain HTTP/1.1 that can change process: not TLS (its session stays here)."""
    transport = getattr(connection, "transport", None)
    return (
        type(connection).__module__ in HTTP_PROTOCOLS
        and transport is not None
        and transport.get_extra_info("sslcontext") is None
    )


def busy(connection: Any) -> bool:
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


def idle_bytes(connection: Any) -> bytes | None:
    """For an HTTP connection between two requests, what was read of the next one and not
    parsed yet (h11 keeps a partial head in its buffer); None when it is not idle."""
    import h11

    if busy(connection):
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


def defer_next_request(connection: Any) -> None:
    """Once the server has stopped accepting, a connection parses no new request: one
    under way finishes, the next waits unread (in h11's buffer, or in ``devreload_unread``
    for httptools) and goes to the next worker with the connection. Otherwise a request
    sent after the restart on a connection kept open would be answered by the old code."""
    if not is_http(connection) or getattr(connection, "devreload_deferring", False):
        return
    connection.devreload_deferring = True
    if getattr(connection, "conn", None) is not None:  # h11
        import h11

        handle_events = connection.handle_events

        def deferring_handle_events() -> None:
            conn = connection.conn
            if conn.our_state is h11.IDLE and conn.their_state is h11.IDLE:
                return  # between requests: what came of the next one stays in the buffer
            handle_events()

        connection.handle_events = deferring_handle_events
        return
    data_received = connection.data_received
    unread = connection.devreload_unread = bytearray()

    def deferring_data_received(data: bytes) -> None:
        if unread or (not busy(connection) and not connection.pipeline):
            unread.extend(data)
            return
        data_received(data)

    connection.data_received = deferring_data_received


def detach(connection: Any) -> socket.socket:
    """Take an idle connection from its transport: asyncio lets go of it, the client's
    connection stays open (on a duplicate descriptor) for the next worker."""
    raw = connection.transport.get_extra_info("socket")
    sock = socket.socket(fileno=os.dup(raw.fileno()))
    connection.transport.abort()
    return sock


#: After its websocket is closed, an app still running its handler gets this long to return
#: before it is cancelled (an app that only pushes never reads the disconnect).
WEBSOCKET_APP_GRACE = 0.1


def is_websocket(connection: Any) -> bool:
    """A websocket connection: any of uvicorn's implementations (websockets, its sans-I/O
    variant, wsproto); each closes with 1012 on ``shutdown()``."""
    return type(connection).__module__.startswith("uvicorn.protocols.websockets.")


def task_owner(task: asyncio.Task[Any]) -> Any:
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


def quiet_cancel(task: asyncio.Task[Any]) -> None:
    """Cancel a websocket's app: its handler sees CancelledError, its log no traceback."""
    logger = logging.getLogger("uvicorn.error")
    if _QUIET not in logger.filters:
        logger.addFilter(_QUIET)
    _QUIET.tasks.add(task)
    task.cancel()
