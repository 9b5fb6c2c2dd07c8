"""WSGI apps under waitress: option conversion, a run loop that stops accepting at once and
drains within a bound, and the channel that serves live-reload streams off the thread pool.

Under a monitor, idle keep-alive connections are not closed when the server stops (that
races with the client's next request): they go to the next worker, which adopts them.

An open event stream must never hold one of waitress's few request threads: a connection
asking for the events path turns into a stream that lives in waitress's main loop.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import FrameType
from typing import Any

from devreload.errors import ServerOptionError
from devreload.servers.choice import FRESH_CONNECTION_GRACE, ReadyCallback
from devreload.web.livereload import close_streams
from devreload.web.waitress_streams import install_waitress_events
from devreload.wire.channel import HandedConnection
from devreload.worker.proxy import handoff_for

ASGI = False
#: devreload's dev defaults, under the user's options.
DEFAULTS: dict[str, Any] = {"threads": 8}
#: Keys devreload sets itself: the sockets decide where to listen.
RESERVED = frozenset({"host", "port", "listen", "unix_socket", "sockets", "ipv4", "ipv6"})


def convert_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """waitress's keyword arguments, converted as waitress converts its own ini options."""
    from waitress.adjustments import Adjustments

    converters: Mapping[str, Callable[[Any], Any]] = Adjustments._param_map
    out: dict[str, Any] = dict(DEFAULTS)
    for key, value in options.items():
        if key in RESERVED:
            raise ServerOptionError("waitress", key, "is set by devreload; use listen instead")
        if key not in converters:
            raise ServerOptionError("waitress", key, "unknown option")
        try:
            out[key] = converters[key](value)
        except (TypeError, ValueError) as exc:
            raise ServerOptionError("waitress", key, f"bad value {value!r} ({exc})") from None
    return out


@contextlib.contextmanager
def _stop_signals(handler: Callable[[int, FrameType | None], None]) -> Iterator[None]:
    """Install ``handler`` for SIGTERM and SIGINT (main thread only), restore them after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run(
    app: Any,
    sockets: Sequence[socket.socket],
    options: Mapping[str, Any],
    on_ready: ReadyCallback | None,
    graceful_timeout: float,
    on_stop: ReadyCallback | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT; then stop accepting, and drain."""
    import waitress
    from waitress import wasyncore
    from waitress.channel import HTTPChannel
    from waitress.server import BaseWSGIServer

    socket_map: dict[int, Any] = {}
    server = waitress.create_server(app, map=socket_map, sockets=list(sockets), **options)
    install_waitress_events(server)
    listeners = [obj for obj in socket_map.values() if isinstance(obj, BaseWSGIServer)]
    adj = listeners[0].adj
    stop = threading.Event()
    handoff = handoff_for(sockets)

    def adopt_waiting() -> None:
        # In the main loop: the previous worker's connections, as if just accepted here.
        if handoff is not None and not stop.is_set():
            for sock, data in handoff.take():
                _adopt(sock, data, listeners, socket_map)

    def request_stop(signum: int, frame: FrameType | None) -> None:
        # Runs before the loop looks at what poll() returned: no accept in this round.
        for listener in listeners:
            listener.accepting = False
        stop.set()
        listeners[0].pull_trigger()

    with _stop_signals(request_stop):
        if handoff is not None:
            handoff.open(lambda: listeners[0].trigger.pull_trigger(adopt_waiting))
        if on_ready is not None:
            on_ready()
        while not stop.is_set():
            wasyncore.loop(
                timeout=adj.asyncore_loop_timeout,
                map=socket_map,
                use_poll=adj.asyncore_use_poll,
                count=1,
            )
        close_streams()
        for listener in listeners:
            listener.del_channel()
            listener.socket.close()
        # One round for the streams' last word ("reloading", queued through the trigger):
        # buffered now, it goes out before they close, and each page asks again at once.
        wasyncore.loop(timeout=0, map=socket_map, use_poll=adj.asyncore_use_poll, count=1)
        if on_stop is not None:
            on_stop()
        stopped = time.monotonic()
        deadline = stopped + graceful_timeout
        if handoff is not None:
            for obj in socket_map.values():
                if isinstance(obj, HTTPChannel):
                    obj.devreload_draining = True
        while time.monotonic() < deadline:
            channels = [obj for obj in socket_map.values() if isinstance(obj, HTTPChannel)]
            pending = False
            idle: list[HandedConnection] = []
            for channel in channels:
                busy = channel.requests or channel.request is not None or channel.total_outbufs_len
                fresh = channel.last_activity == channel.creation_time
                if handoff is not None and _idle(channel):
                    idle.append(_detach(channel))
                elif busy or (fresh and time.monotonic() < stopped + FRESH_CONNECTION_GRACE):
                    pending = True
                else:
                    channel.handle_close()
            if handoff is not None:
                handoff.give_back(idle)
            if not pending:
                break
            wasyncore.loop(timeout=0.01, map=socket_map, use_poll=adj.asyncore_use_poll, count=1)
        if handoff is not None:
            handoff.finish()
        server.task_dispatcher.shutdown(timeout=max(0.0, deadline - time.monotonic()))
        wasyncore.close_all(socket_map)


def _idle(channel: Any) -> bool:
    """Between two requests, nothing read of the next one and nothing left to send: the
    connection can go to the next worker (checked in the main loop, the only reader)."""
    with channel.requests_lock:
        return bool(
            channel.connected
            and not channel.requests
            and channel.request is None
            and not channel.total_outbufs_len
            and not channel.will_close
            and not channel.close_when_flushed
            and getattr(channel, "devreload_token", None) is None
        )


def _detach(channel: Any) -> HandedConnection:
    """Take an idle connection out of the server: waitress lets go of it, the client's
    connection stays open (on a duplicate descriptor) for the next worker."""
    sock: socket.socket = channel.socket.dup()
    channel.handle_close()
    return sock, b""


def _adopt(sock: socket.socket, data: bytes, listeners: Sequence[Any], socket_map: Any) -> None:
    """Serve a connection the previous worker handed over, as if just accepted: ``data`` is
    the start of its next request, read there already."""
    listener = _listener_for(sock, listeners)
    try:
        addr = listener.fix_addr(sock.getpeername())
    except OSError:  # the client has gone meanwhile
        sock.close()
        return
    channel = listener.channel_class(listener, sock, addr, listener.adj, map=socket_map)
    if data:
        channel.received(data)


def _listener_for(sock: socket.socket, listeners: Sequence[Any]) -> Any:
    """The listener that accepted ``sock`` (same family and port, or same path)."""
    try:
        here = sock.getsockname()
        for listener in listeners:
            there = listener.socket.getsockname()
            same = here == there or (isinstance(here, tuple) and here[1] == there[1])
            if listener.socket.family == sock.family and same:
                return listener
    except OSError:
        pass
    return listeners[0]
