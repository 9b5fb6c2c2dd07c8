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

from devreload.channel import HandedConnection
from devreload.errors import ServerOptionError
from devreload.livereload import HUB, SSE_HEADERS, EventHub, close_streams, hello
from devreload.messages import EVENTS_PATH
from devreload.servers import FRESH_CONNECTION_GRACE, ReadyCallback
from devreload.worker import handoff_for

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


# --------------------------------------------------------------------------- event streams

_channel_class: Any = None


def _stream_channel_class() -> Any:
    """waitress's HTTPChannel, but one that turns into an event stream for the events path
    and then lives in the main loop: no task thread is held while a tab is open."""
    global _channel_class
    if _channel_class is not None:
        return _channel_class
    from waitress.channel import HTTPChannel

    class StreamChannel(HTTPChannel):  # type: ignore[misc]
        devreload_token: int | None = None
        devreload_pending: list[bytes | None] | None = None
        devreload_hub: EventHub = HUB
        #: The server stopped: a connection between requests is not read any more (it is
        #: handed to the next worker), one with a request under way still is.
        devreload_draining = False
        requests: list[Any]
        request: Any

        def readable(self) -> bool:
            if self.devreload_draining and self.request is None and not self.requests:
                return False
            return bool(super().readable())

        def service(self) -> None:
            request = self.requests[0]
            path = getattr(request, "path", None) or ""  # a malformed request has none
            if (
                self.devreload_token is not None
                or request.error
                or request.command != "GET"
                or not path.endswith(EVENTS_PATH)
                or not self.devreload_hub.enabled
                # A Host devreload does not answer: LiveReload, in the app, sends the 403.
                or not self.devreload_hub.host_allowed(request.headers.get("HOST"))
            ):
                super().service()
                return
            head = "HTTP/1.1 200 OK\r\n" + "".join(f"{n}: {v}\r\n" for n, v in SSE_HEADERS)
            # Subscribed before the hello goes out, so nothing published after it is lost;
            # what arrives before the head is written waits in ``devreload_pending``.
            self.devreload_pending = []
            token = self.devreload_hub.subscribe(self._deliver)
            with self.requests_lock:
                self.devreload_token = token
                for pending in self.requests:
                    pending.close()
            with self.outbuf_lock:
                first = head.encode("latin-1") + b"Connection: close\r\n\r\n" + hello()
                for message in self.devreload_pending:
                    if message is None:
                        self.close_when_flushed = True
                        break
                    first += message
                self.devreload_pending = None
                self._buffer(first)
            with self.requests_lock:
                self.requests = []
                self.request = None
            self.last_activity = time.time()
            self.server.pull_trigger()

        def received(self, data: bytes) -> bool:
            if self.devreload_token is not None:
                return True  # a stream reads nothing more; reading only tells a hang-up
            return bool(super().received(data))

        def _deliver(self, message: bytes | None) -> None:
            # From any thread: the writes happen in the main loop, which owns the buffers.
            with contextlib.suppress(OSError):  # the server has closed already
                self.server.trigger.pull_trigger(lambda: self._append(message))

        def _append(self, message: bytes | None) -> None:
            if not self.connected:
                return
            with self.outbuf_lock:
                if self.devreload_pending is not None:
                    self.devreload_pending.append(message)
                    return
                if message is not None:
                    self._buffer(message)
                    return
                if self.total_outbufs_len:  # the last word ("reloading") goes out first
                    self.close_when_flushed = True
                    return
            self.handle_close()

        def _buffer(self, data: bytes) -> None:
            self.outbufs[-1].append(data)
            self.current_outbuf_count += len(data)
            self.total_outbufs_len += len(data)

        def handle_close(self) -> None:
            if self.devreload_token is not None:
                self.devreload_hub.unsubscribe(self.devreload_token)
            super().handle_close()

    _channel_class = StreamChannel
    return StreamChannel


def _channel_class_for(hub: EventHub | None) -> Any:
    cls = _stream_channel_class()
    if hub is None or hub is HUB:
        return cls
    return type(cls.__name__, (cls,), {"devreload_hub": hub})


def _listeners(server: Any) -> list[Any]:
    """The listening dispatchers behind what ``waitress.create_server`` returned."""
    from waitress.server import BaseWSGIServer

    if isinstance(server, BaseWSGIServer):
        return [server]
    socket_map = getattr(server, "map", None) or {}
    return [obj for obj in socket_map.values() if isinstance(obj, BaseWSGIServer)]


def install_waitress_events(server: Any, hub: EventHub | None = None) -> None:
    """Serve ``/__devreload__/events`` from waitress's main loop on ``server`` (what
    ``waitress.create_server`` returns): open tabs hold no request thread. The streams
    are served only once a LiveReload exists in the process."""
    cls = _channel_class_for(hub)
    for listener in _listeners(server):
        listener.channel_class = cls


def adopt_channel(channel: Any, hub: EventHub) -> bool:
    """LiveReload used by hand under waitress: hook its listener and this connection, so
    that later event requests are served from the main loop too."""
    try:
        from waitress.channel import HTTPChannel
    except ImportError:
        return False
    if not isinstance(channel, HTTPChannel):
        return False
    cls = _channel_class_for(hub)
    if not isinstance(channel, cls):
        channel.__class__ = cls
    server = channel.server
    if not issubclass(server.channel_class, _stream_channel_class()):
        server.channel_class = cls
    return True
