"""WSGI apps under waitress: option conversion, and a main loop that stops accepting at
once and drains within a bound.

Under a monitor, idle keep-alive connections are not closed when the server stops (that
races with the client's next request): they go to the next worker, which adopts them.
Live-reload streams are served from the main loop (:mod:`devreload.web.waitress_streams`).
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

import waitress
from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer

from devreload.errors import ServerOptionError
from devreload.servers.base import (
    FRESH_CONNECTION_GRACE,
    Bounds,
    Drain,
    DrainClock,
    ReadyCallback,
)
from devreload.servers.waitress_pool import GrowingDispatcher
from devreload.web.inflight import REQUESTS
from devreload.web.livereload import close_streams
from devreload.web.waitress_streams import install_waitress_events
from devreload.wire.channel import HandedConnection
from devreload.worker.handoff import ConnectionHandoff
from devreload.worker.proxy import handoff_for

ASGI = False
#: devreload's dev defaults, under the user's options.
DEFAULTS: dict[str, Any] = {"threads": 8}
#: Keys devreload sets itself: the sockets decide where to listen.
RESERVED = frozenset({"host", "port", "listen", "unix_socket", "sockets", "ipv4", "ipv6"})


def convert_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """waitress's keyword arguments, converted as waitress converts its own ini options."""
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
    bounds: Bounds,
    on_stop: ReadyCallback | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT; then stop accepting, and drain."""
    server = DrainingServer(app, sockets, options, handoff_for(sockets))
    with _stop_signals(server.request_stop):
        server.serve(on_ready)
        server.stop_accepting(on_stop)
        server.drain(bounds)


class DrainingServer:
    """waitress's main loop, run by devreload: it stops accepting the moment it is told
    to, then drains within a bound; under a monitor, it hands its idle keep-alive
    connections to the next worker (``handoff``) and adopts the previous one's."""

    def __init__(
        self,
        app: Any,
        sockets: Sequence[socket.socket],
        options: Mapping[str, Any],
        handoff: ConnectionHandoff | None,
    ) -> None:
        self.map: dict[int, Any] = {}
        most = options.get("threads", Adjustments.threads)
        self.server = waitress.create_server(app, map=self.map, sockets=list(sockets),
                                             _dispatcher=GrowingDispatcher(most), **options)
        install_waitress_events(self.server)
        self.listeners = [obj for obj in self.map.values() if isinstance(obj, BaseWSGIServer)]
        self.adj = self.listeners[0].adj
        self.handoff = handoff
        self.stopping = threading.Event()

    def serve(self, on_ready: ReadyCallback | None) -> None:
        """Run the main loop until told to stop."""
        if self.handoff is not None:
            self.handoff.open(lambda: self.listeners[0].trigger.pull_trigger(self.adopt_waiting))
        if on_ready is not None:
            on_ready()
        while not self.stopping.is_set():
            self._loop(self.adj.asyncore_loop_timeout)

    def _loop(self, timeout: float) -> None:
        wasyncore.loop(timeout=timeout, map=self.map, use_poll=self.adj.asyncore_use_poll,
                       count=1)

    def adopt_waiting(self) -> None:
        """In the main loop: the previous worker's connections, as if just accepted here."""
        if self.handoff is not None and not self.stopping.is_set():
            for sock, data in self.handoff.take():
                adopt(sock, data, self.listeners, self.map)

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        """The signal handler: it runs before the loop looks at what poll() returned, so
        nothing is accepted in this round."""
        for listener in self.listeners:
            listener.accepting = False
        self.stopping.set()
        self.listeners[0].pull_trigger()

    def stop_accepting(self, on_stop: ReadyCallback | None) -> None:
        close_streams()
        for listener in self.listeners:
            listener.del_channel()
            listener.socket.close()
        # One round for the streams' last word ("reloading", queued through the trigger):
        # buffered now, it goes out before they close, and each page asks again at once.
        self._loop(0)
        if on_stop is not None:
            on_stop()

    def channels(self) -> list[Any]:
        return [obj for obj in self.map.values() if isinstance(obj, HTTPChannel)]

    def drain(self, bounds: Bounds) -> None:
        """Let the requests under way finish, within ``bounds``; name those cut."""
        began = time.monotonic()
        clock = DrainClock(bounds, began)
        if self.handoff is not None:
            for channel in self.channels():
                channel.devreload_draining = True
        while not clock.over(time.monotonic()):
            grace_over = time.monotonic() >= began + FRESH_CONNECTION_GRACE
            if not self.drain_round(grace_over):
                break
            self._loop(0.01)
        if self.handoff is not None:
            self.handoff.finish()
        while self.server.task_dispatcher.active_count and not clock.over(time.monotonic()):
            self._loop(0.01)
        if clock.over(time.monotonic()):
            REQUESTS.cut(clock.why())
        self.server.task_dispatcher.shutdown(timeout=max(0.0, clock.deadline - time.monotonic()))
        wasyncore.close_all(self.map)

    def drain_round(self, grace_over: bool) -> bool:
        """Decide on every connection once; True while some must be waited for."""
        waiting = False
        idle: list[HandedConnection] = []
        for channel in self.channels():
            step = drain_step(channel, self.handoff is not None, grace_over)
            if step is Drain.HAND_OVER:
                idle.append(detach(channel))
            elif step is Drain.WAIT:
                waiting = True
            else:
                channel.handle_close()
        if self.handoff is not None:
            self.handoff.give_back(idle)
        return waiting


def drain_step(channel: Any, handing_over: bool, grace_over: bool) -> Drain:
    """What a draining server does with ``channel`` now. ``handing_over``: a next worker
    takes idle ones; ``grace_over``: a connection accepted just before the stop had its
    moment to send its request."""
    if handing_over and idle(channel):
        return Drain.HAND_OVER
    busy = channel.requests or channel.request is not None or channel.total_outbufs_len
    fresh = channel.last_activity == channel.creation_time
    if busy or (fresh and not grace_over):
        return Drain.WAIT
    return Drain.CLOSE


def idle(channel: Any) -> bool:
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


def detach(channel: Any) -> HandedConnection:
    """Take an idle connection out of the server: waitress lets go of it, the client's
    connection stays open (on a duplicate descriptor) for the next worker."""
    sock: socket.socket = channel.socket.dup()
    channel.handle_close()
    return sock, b""


def adopt(sock: socket.socket, data: bytes, listeners: Sequence[Any], socket_map: Any) -> None:
    """Serve a connection the previous worker handed over, as if just accepted: ``data`` is
    the start of its next request, read there already."""
    listener = listener_for(sock, listeners)
    try:
        addr = listener.fix_addr(sock.getpeername())
    except OSError:  # the client has gone meanwhile
        sock.close()
        return
    channel = listener.channel_class(listener, sock, addr, listener.adj, map=socket_map)
    if data:
        channel.received(data)


def listener_for(sock: socket.socket, listeners: Sequence[Any]) -> Any:
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
