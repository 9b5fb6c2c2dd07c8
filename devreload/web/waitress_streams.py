"""Live-reload event streams under waitress, served from its main loop.

An open event stream must never hold one of waitress's few request threads: a connection
asking for the events path turns into a stream that lives in waitress's main loop. Used
by devreload's waitress backend, and by ``LiveReload`` under a waitress it did not start.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer

from devreload.web.livereload import HUB, SSE_HEADERS, EventHub, hello
from devreload.wire.contract import EVENTS_PATH


class StreamChannel(HTTPChannel):  # type: ignore[misc]
    """waitress's HTTPChannel, but one that turns into an event stream for the events path
    and then lives in the main loop: no task thread is held while a tab is open."""

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
        if self._is_event_request(request):
            self._become_stream()
        else:
            super().service()

    def _is_event_request(self, request: Any) -> bool:
        path = getattr(request, "path", None) or ""  # a malformed request has none
        return (
            self.devreload_token is None
            and not request.error
            and request.command == "GET"
            and path.endswith(EVENTS_PATH)
            and self.devreload_hub.enabled
            # A Host devreload does not answer: LiveReload, in the app, sends the 403.
            and self.devreload_hub.host_allowed(request.headers.get("HOST"))
        )

    def _become_stream(self) -> None:
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


def _channel_class_for(hub: EventHub | None) -> Any:
    cls = StreamChannel
    if hub is None or hub is HUB:
        return cls
    return type(cls.__name__, (cls,), {"devreload_hub": hub})


def _listeners(server: Any) -> list[Any]:
    """The listening dispatchers behind what ``waitress.create_server`` returned."""
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
    if not isinstance(channel, HTTPChannel):
        return False
    cls = _channel_class_for(hub)
    if not isinstance(channel, cls):
        channel.__class__ = cls
    server = channel.server
    if not issubclass(server.channel_class, StreamChannel):
        server.channel_class = cls
    return True
