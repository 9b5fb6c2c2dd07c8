"""Live reload for WSGI apps: HTML pages get the script, and the event stream is served.

``LiveReload(app)`` wraps a WSGI app, or an ASGI app (it returns a
:class:`~devreload.web.asgi.LiveReloadASGI` then). Use it by hand with any server,
or as a PasteDeploy filter: ``[filter:livereload] use = egg:devreload#livereload``.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

from devreload.web.hosts import REFUSAL_HEADERS, refusal_body
from devreload.web.inflight import DoneAtClose
from devreload.web.injection import (
    content_length,
    inject,
    injectable,
    is_page,
    navigation,
    rewrite_headers,
)
from devreload.web.kinds import is_asgi
from devreload.web.livereload import (
    HUB,
    KEEPALIVE,
    KEEPALIVE_INTERVAL,
    MAX_BUFFER,
    OWN_PREFIX,
    SSE_HEADERS,
    EventHub,
    hello,
    tag_for,
)
from devreload.wire.contract import EVENTS_PATH
from devreload.worker.proxy import first_response

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
StartResponse = Callable[..., Callable[[bytes], Any]]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class _Capture:
    """What the app passed to start_response, held back until we know the body."""

    def __init__(self, start_response: StartResponse) -> None:
        self.start_response = start_response
        self.status = ""
        self.headers: list[tuple[str, str]] = []
        self.exc_info: ExcInfo | None = None
        self.called = False
        self.passing = False
        self.write: Callable[[bytes], Any] | None = None

    def __call__(
        self, status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
    ) -> Callable[[bytes], Any]:
        if self.passing:
            self.write = self.start_response(status, headers, exc_info)
            return self.write
        self.status, self.headers, self.exc_info = status, list(headers), exc_info
        self.called = True
        return self._write

    def pass_through(self) -> None:
        """Send the app's own status and headers: the body goes out untouched."""
        self.passing = True
        if self.called and self.write is None:
            self.write = self.start_response(self.status, self.headers, self.exc_info)

    def _write(self, data: bytes) -> Any:
        # The legacy write() streams: the page cannot be injected any more.
        self.pass_through()
        assert self.write is not None
        return self.write(data)


class LiveReload:
    """WSGI middleware: HTML pages get the live-reload script, and the event stream is
    served (in a request thread, unless the server serves it itself: see
    ``install_waitress_events``). An ASGI app gets ``LiveReloadASGI`` instead."""

    def __new__(cls, app: Any, hub: EventHub | None = None,
                allowed_hosts: Iterable[str] = ()) -> Any:
        if cls is LiveReload and is_asgi(app):
            from devreload.web.asgi import LiveReloadASGI  # asyncio: not for a WSGI app

            return LiveReloadASGI(app, hub, allowed_hosts)
        return super().__new__(cls)

    def __init__(self, app: WSGIApp, hub: EventHub | None = None,
                 allowed_hosts: Iterable[str] = ()) -> None:
        """``allowed_hosts``: names the event stream answers besides localhost and IP
        literals (see ``hosts``); the app's own pages answer any."""
        self.app = app
        self.hub = HUB if hub is None else hub
        self.hub.enabled = True
        self.hub.allow(allowed_hosts)
        self.hub.attach_to_worker()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith(OWN_PREFIX):
            host = environ.get("HTTP_HOST")
            if not self.hub.host_allowed(host):
                body = refusal_body(host or "")
                start_response("403 Forbidden",
                               [*REFUSAL_HEADERS, ("Content-Length", str(len(body)))])
                return [b"" if environ.get("REQUEST_METHOD") == "HEAD" else body]
        if environ.get("PATH_INFO") == EVENTS_PATH:
            return self._events(environ, start_response)
        navigating = navigation(environ.get("REQUEST_METHOD", "GET"),
                                lambda name: environ.get("HTTP_" + name.upper().replace("-", "_")))
        if navigating is False:
            return self.app(environ, start_response)
        capture = _Capture(start_response)
        app_iter = self.app(environ, capture)
        if capture.passing or not capture.called:
            capture.pass_through()
            return app_iter
        status = int(capture.status.split(None, 1)[0])
        length = content_length(capture.headers)
        whole = isinstance(app_iter, (list, tuple)) or (length is not None and length <= MAX_BUFFER)
        if not whole or not injectable(status, capture.headers):
            capture.pass_through()
            return app_iter
        try:
            body = b"".join(app_iter)
        finally:
            close = getattr(app_iter, "close", None)
            if close is not None:
                close()
        if capture.passing:  # write() was used while the body was read
            return [body]
        events_url = environ.get("SCRIPT_NAME", "") + EVENTS_PATH
        injected = (inject(body, tag_for(capture.headers, events_url))
                    if is_page(navigating, status, body) else None)
        if injected is None:
            capture.pass_through()
            return [body]
        start_response(capture.status, rewrite_headers(capture.headers, len(injected)),
                       capture.exc_info)
        return [injected]

    def _events(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "GET":
            start_response("405 Method Not Allowed", [("Allow", "GET"),
                                                      ("Content-Length", "0")])
            return [b""]
        channel = getattr(environ.get("waitress.client_disconnected"), "__self__", None)
        if channel is not None and _adopt_waitress_channel(channel, self.hub):
            # This connection now streams from waitress's main loop: answer this one
            # request with the hello alone; the browser's reconnect gets the stream.
            body = hello()
            start_response("200 OK", [*SSE_HEADERS, ("Content-Length", str(len(body)))])
            return [body]
        start_response("200 OK", list(SSE_HEADERS))
        return self._stream(environ)

    def _stream(self, environ: dict[str, Any]) -> Iterable[bytes]:
        """A stream that holds this request's thread: for servers we cannot hook into."""
        messages: queue.Queue[bytes | None] = queue.Queue()
        token = self.hub.subscribe(messages.put)
        disconnected = environ.get("waitress.client_disconnected", lambda: False)
        try:
            yield hello()
            while not disconnected():
                try:
                    message = messages.get(timeout=KEEPALIVE_INTERVAL)
                except queue.Empty:
                    message = KEEPALIVE
                if message is None:
                    return
                yield message
        finally:
            self.hub.unsubscribe(token)


def livereload_filter(app: Any, global_conf: dict[str, Any], **local_conf: str) -> Any:
    """PasteDeploy filter: ``[filter:livereload] use = egg:devreload#livereload``."""
    if local_conf:
        raise ValueError(f"[filter:livereload] takes no options (got {', '.join(local_conf)})")
    return LiveReload(app)


def _adopt_waitress_channel(channel: Any, hub: EventHub) -> bool:
    """Under waitress, let its main loop serve this and later streams (no thread held)."""
    try:
        from devreload.web.waitress_streams import adopt_channel
    except ImportError:
        return False
    return adopt_channel(channel, hub)


def first_response_told(app: Any, asgi: bool) -> Any:
    """``app`` (WSGI or ASGI), telling the worker once its first response has been sent:
    the server side's last step in the reload timeline (-v), and what the bytecode writes
    wait for. Later requests pass straight on."""
    told = threading.Event()

    def tell() -> None:
        if not told.is_set():
            told.set()
            first_response()

    if asgi:

        async def told_asgi(scope: Any, receive: Any, send: Any) -> None:
            if told.is_set():
                await app(scope, receive, send)
                return

            async def sending(message: Any) -> None:
                await send(message)
                if message.get("type") == "http.response.body" and not message.get("more_body"):
                    tell()

            await app(scope, receive, sending)

        return told_asgi

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if told.is_set():
            return app(environ, start_response)  # type: ignore[no-any-return]
        return DoneAtClose(app(environ, start_response), tell)

    return wsgi
