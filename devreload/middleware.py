"""Live reload: the open page follows every restart, and stylesheets swap in place.

``LiveReload(app)`` injects a small script into HTML pages. The script listens to
server-sent events on ``/__devreload__/events``: the first event names this worker's boot
id, so a page whose id differs was made by older code and reloads, once, but only after
the new worker is answering (never onto a refused connection). Static files that need no
restart are pushed as ``css`` (swapped in place) or ``reload`` events.

An open event stream must never hold one of a threaded server's few request threads, nor
delay a restart: under waitress ``install_waitress_events`` serves the streams from the
server's main loop, under an ASGI server they are coroutines, and ``close_streams()`` ends
them all at once when the server stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import io
import json
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from types import TracebackType
from typing import Any

logger = logging.getLogger("devreload")

PREFIX = "/__devreload__/"
EVENTS_PATH = PREFIX + "events"
#: A comment line every so often keeps proxies and the server's idle timeout away.
KEEPALIVE_INTERVAL = 15.0
#: Largest HTML body (by its Content-Length) read into memory to inject the script.
MAX_BUFFER = 8 * 1024 * 1024

Deliver = Callable[[bytes | None], None]
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
StartResponse = Callable[..., Callable[[bytes], Any]]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_boot: tuple[int, str] | None = None


def boot_id() -> str:
    """This process's id: a forked or spawned worker always gets a new one."""
    global _boot
    pid = os.getpid()
    if _boot is None or _boot[0] != pid:
        _boot = (pid, f"{pid}-{time.time_ns()}")
    return _boot[1]


def sse(event: str, data: Any) -> bytes:
    """One server-sent event, its data as JSON."""
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


KEEPALIVE = b": keep-alive\n\n"
SSE_HEADERS = [
    ("Content-Type", "text/event-stream"),
    ("Cache-Control", "no-store"),
    ("X-Accel-Buffering", "no"),
]


def hello() -> bytes:
    return sse("hello", {"boot": boot_id()})


# --------------------------------------------------------------------------- the hub


class EventHub:
    """Fans events out to every open stream, whatever serves it.

    A subscriber is a ``deliver(message)`` callable that must not block: it hands the
    bytes to its own loop (waitress's trigger, an asyncio loop, a queue). ``None`` means
    the stream must end now.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: dict[int, Deliver] = {}
        self._next = 0
        self._closed = False
        self._attached = False
        self._ticker: threading.Thread | None = None
        #: Set once a LiveReload exists in this process: only then are streams served.
        self.enabled = False

    def subscribe(self, deliver: Deliver) -> int:
        """Register a stream; a closed hub ends it at once."""
        with self._lock:
            closed = self._closed
            if not closed:
                self._next += 1
                token = self._next
                self._subscribers[token] = deliver
                self._start_ticker()
        if closed:
            deliver(None)
            return 0
        return token

    def unsubscribe(self, token: int) -> None:
        with self._lock:
            self._subscribers.pop(token, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def publish(self, event: str, data: Any) -> None:
        self._send(sse(event, data))

    def publish_static(self, path: str) -> None:
        """A static file changed: a stylesheet is swapped, anything else reloads."""
        rel = os.path.relpath(path) if path.startswith(os.getcwd() + os.sep) else path
        self.publish("css" if path.lower().endswith(".css") else "reload", {"path": rel})

    def close(self) -> None:
        """End every stream now and refuse new ones: the server is stopping."""
        with self._lock:
            self._closed = True
            subscribers = list(self._subscribers.values())
            self._subscribers.clear()
        for deliver in subscribers:
            deliver(None)

    def reopen(self) -> None:
        """Accept streams again after ``close()``."""
        with self._lock:
            self._closed = False

    def attach_to_worker(self) -> None:
        """Under a devreload monitor, forward its static-file changes to the streams."""
        from devreload import worker

        with self._lock:
            if self._attached or not worker.is_active():
                return
            self._attached = True
        worker.get_reloader().add_static_listener(self.publish_static)

    def _send(self, message: bytes) -> None:
        with self._lock:
            subscribers = list(self._subscribers.values())
        for deliver in subscribers:
            deliver(message)

    def _start_ticker(self) -> None:
        if self._ticker is None or not self._ticker.is_alive():
            self._ticker = threading.Thread(target=self._tick, name="devreload-keepalive",
                                            daemon=True)
            self._ticker.start()

    def _tick(self) -> None:
        while True:
            time.sleep(KEEPALIVE_INTERVAL)
            self._send(KEEPALIVE)


HUB = EventHub()


def open_streams() -> None:
    """Accept streams again: a server is starting (this process may have served before)."""
    HUB.reopen()


def close_streams() -> None:
    """End every open event stream: call it when the server starts to stop, so that no
    stream delays the restart. Thread-safe; not from a signal handler."""
    HUB.close()


# --------------------------------------------------------------------------- the script

SCRIPT = """\
<script data-devreload{nonce}>
(function () {{
  var boot = {boot}, url = {url}, key = "devreload-reloaded-for", last = null;
  var delay = 100, failingSince = 0, source = null, tag = document.currentScript;
  var channel = window.BroadcastChannel ? new BroadcastChannel("devreload " + url) : null;
  function reload() {{ if (source) {{ source.close(); }} location.reload(); }}
  function swapCss(path) {{
    var name = path.split("/").pop(), links = [], matching = [];
    document.querySelectorAll("link[rel~=stylesheet]").forEach(function (l) {{
      links.push(l);
      if (new URL(l.href, location.href).pathname.split("/").pop() === name) {{ matching.push(l); }}
    }});
    (matching.length ? matching : links).forEach(function (old) {{
      var u = new URL(old.href, location.href), link = old.cloneNode();
      u.searchParams.set("devreload", Date.now());
      link.href = u.href;
      link.onload = link.onerror = function () {{ old.remove(); }};
      old.after(link);
    }});
  }}
  function handle(event, data) {{
    if (event === "hello") {{
      if (tag) {{ tag.setAttribute("data-connected", data.boot); }}
      if (data.boot === boot || sessionStorage.getItem(key) === data.boot) {{ return; }}
      sessionStorage.setItem(key, data.boot);
      reload();
    }} else if (event === "css") {{ swapCss(data.path); }}
    else {{ reload(); }}
  }}
  function share(event, data) {{
    if (event === "hello") {{ last = data; }}
    if (channel) {{ channel.postMessage({{event: event, data: data}}); }}
    handle(event, data);
  }}
  function connect(done) {{
    source = new EventSource(url);
    ["hello", "css", "reload", "broken"].forEach(function (name) {{
      source.addEventListener(name, function (e) {{
        if (name === "hello") {{ delay = 100; failingSince = 0; }}
        share(name, e.data ? JSON.parse(e.data) : {{}});
      }});
    }});
    source.onerror = function () {{
      source.close();
      var now = Date.now();
      if (!failingSince) {{ failingSince = now; }}
      if (now - failingSince > 120000) {{ done(); return; }}
      setTimeout(function () {{ connect(done); }}, delay);
      delay = Math.min(delay * 2, 5000);
    }};
  }}
  // One tab holds the stream and tells the others: a browser allows only six
  // connections per host, and every open tab would otherwise keep one.
  if (channel && navigator.locks) {{
    channel.onmessage = function (e) {{
      if (e.data.event !== "ask") {{ handle(e.data.event, e.data.data); }}
      else if (last) {{ channel.postMessage({{event: "hello", data: last}}); }}
    }};
    navigator.locks.request("devreload " + url, function () {{
      return new Promise(function (resolve) {{ connect(resolve); }});
    }});
    channel.postMessage({{event: "ask"}});
  }} else {{
    connect(function () {{}});
  }}
}})();
</script>"""


def script(events_url: str = EVENTS_PATH, nonce: str | None = None) -> bytes:
    """The tag injected into pages, with this worker's boot id baked in."""
    attr = f' nonce="{nonce}"' if nonce else ""
    text = SCRIPT.format(nonce=attr, boot=json.dumps(boot_id()), url=json.dumps(events_url))
    return text.encode()


_NONCE = re.compile(r"'nonce-([A-Za-z0-9+/_=-]+)'")
_MARKER = b"<script data-devreload"


def csp_nonce(policies: Iterable[str]) -> str | None:
    """The nonce that lets our inline script run under these Content-Security-Policy values."""
    for directive in ("script-src-elem", "script-src", "default-src"):
        for policy in policies:
            for part in policy.split(";"):
                words = part.split()
                if words and words[0].lower() == directive:
                    found = _NONCE.search(part)
                    if found:
                        return found.group(1)
    return None


def inject(body: bytes, tag: bytes) -> bytes | None:
    """``body`` with ``tag`` before its last ``</body>``; None when there is none (a
    fragment) or the page has the script already (LiveReload wrapped twice)."""
    index = body.lower().rfind(b"</body>")
    if index < 0 or _MARKER in body:
        return None
    return body[:index] + tag + body[index:]


def _media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def injectable(status: int, headers: Iterable[tuple[str, str]]) -> bool:
    """An HTML page, whole and readable: no other response is ever touched."""
    if status < 200 or status in (204, 206, 304):
        return False
    html = False
    for name, value in headers:
        lowered = name.lower()
        if lowered == "content-type":
            html = _media_type(value) == "text/html"
        elif lowered == "content-encoding" and value.strip().lower() not in ("", "identity"):
            return False
    return html


def _content_length(headers: Iterable[tuple[str, str]]) -> int | None:
    for name, value in headers:
        if name.lower() == "content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def rewrite_headers(headers: Iterable[tuple[str, str]], length: int) -> list[tuple[str, str]]:
    """The headers of an injected page: its new length, and no validators, which
    described the page without the script."""
    out = []
    for name, value in headers:
        lowered = name.lower()
        if lowered == "content-length":
            out.append((name, str(length)))
        elif lowered not in ("etag", "last-modified"):
            out.append((name, value))
    return out


def _tag_for(headers: Iterable[tuple[str, str]], events_url: str) -> bytes:
    policies = [v for n, v in headers if n.lower() == "content-security-policy"]
    return script(events_url, csp_nonce(policies))


def _is_asgi(app: object) -> bool:
    return inspect.iscoroutinefunction(app) or inspect.iscoroutinefunction(
        getattr(app, "__call__", None)  # noqa: B004 - the coroutine test needs the method
    )


# --------------------------------------------------------------------------- WSGI


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

    def __new__(cls, app: Any, hub: EventHub | None = None) -> Any:
        if cls is LiveReload and _is_asgi(app):
            return LiveReloadASGI(app, hub)
        return super().__new__(cls)

    def __init__(self, app: WSGIApp, hub: EventHub | None = None) -> None:
        self.app = app
        self.hub = HUB if hub is None else hub
        self.hub.enabled = True
        self.hub.attach_to_worker()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == EVENTS_PATH:
            return self._events(environ, start_response)
        method = environ.get("REQUEST_METHOD", "GET")
        capture = _Capture(start_response)
        app_iter = self.app(environ, capture)
        if capture.passing or not capture.called:
            capture.pass_through()
            return app_iter
        status = int(capture.status.split(None, 1)[0])
        length = _content_length(capture.headers)
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
        tag = _tag_for(capture.headers, events_url)
        if method == "HEAD" and not body and length:
            page = self._get_body(environ)
            new_length = length if inject(page, tag) is None else length + len(tag)
            headers = rewrite_headers(capture.headers, new_length)
            start_response(capture.status, headers, capture.exc_info)
            return [b""]
        injected = inject(body, tag)
        if injected is None:
            capture.pass_through()
            return [body]
        headers = rewrite_headers(capture.headers, len(injected))
        start_response(capture.status, headers, capture.exc_info)
        return [b""] if method == "HEAD" else [injected]

    def _get_body(self, environ: dict[str, Any]) -> bytes:
        """The page a GET would give: a HEAD must announce the length the GET will have."""
        get = dict(environ, REQUEST_METHOD="GET", CONTENT_LENGTH="")
        get["wsgi.input"] = io.BytesIO()

        def ignore(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return lambda data: None

        app_iter = self.app(get, ignore)
        try:
            return b"".join(app_iter)
        finally:
            close = getattr(app_iter, "close", None)
            if close is not None:
                close()

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


# --------------------------------------------------------------------------- waitress


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
        requests: list[Any]
        request: Any

        def service(self) -> None:
            request = self.requests[0]
            path = request.path or ""
            if (
                self.devreload_token is not None
                or request.error
                or request.command != "GET"
                or not path.endswith(EVENTS_PATH)
                or not self.devreload_hub.enabled
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
    cls = _stream_channel_class()
    for listener in _listeners(server):
        if hub is not None:
            listener.channel_class = type(cls.__name__, (cls,), {"devreload_hub": hub})
        else:
            listener.channel_class = cls


def _adopt_waitress_channel(channel: Any, hub: EventHub) -> bool:
    """LiveReload used by hand under waitress: hook its listener and this connection, so
    that later event requests are served from the main loop too."""
    try:
        from waitress.channel import HTTPChannel
    except ImportError:
        return False
    if not isinstance(channel, HTTPChannel):
        return False
    cls = _stream_channel_class()
    if hub is not HUB:
        cls = type(cls.__name__, (cls,), {"devreload_hub": hub})
    if not isinstance(channel, cls):
        channel.__class__ = cls
    server = channel.server
    if not issubclass(server.channel_class, _stream_channel_class()):
        server.channel_class = cls
    return True


# --------------------------------------------------------------------------- ASGI


class LiveReloadASGI:
    """The ASGI twin of ``LiveReload`` (which returns one of these for an ASGI app)."""

    def __init__(self, app: ASGIApp, hub: EventHub | None = None) -> None:
        self.app = app
        self.hub = HUB if hub is None else hub
        self.hub.enabled = True
        self.hub.attach_to_worker()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope.get("path") == EVENTS_PATH:
            await self._events(scope, receive, send)
            return
        responder = _Responder(self, scope, send)
        await self.app(scope, receive, responder.send)
        await responder.finish()

    async def _events(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("method") != "GET":
            await send({"type": "http.response.start", "status": 405,
                        "headers": [(b"allow", b"GET"), (b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        loop = asyncio.get_running_loop()
        messages: asyncio.Queue[bytes | None] = asyncio.Queue()

        def deliver(message: bytes | None) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to end
                loop.call_soon_threadsafe(messages.put_nowait, message)

        token = self.hub.subscribe(deliver)
        hangup = asyncio.ensure_future(_wait_disconnect(receive))
        try:
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(n.lower().encode(), v.encode()) for n, v in SSE_HEADERS]})
            await send({"type": "http.response.body", "body": hello(), "more_body": True})
            while True:
                get = asyncio.ensure_future(messages.get())
                done, _ = await asyncio.wait(
                    {get, hangup}, timeout=KEEPALIVE_INTERVAL,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if get not in done:
                    get.cancel()
                if hangup in done:
                    return
                message = get.result() if get in done else KEEPALIVE
                if message is None:
                    break
                await send({"type": "http.response.body", "body": message, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            return
        finally:
            self.hub.unsubscribe(token)
            hangup.cancel()


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _str_headers(raw: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(n.decode("latin-1"), v.decode("latin-1")) for n, v in raw]


class _Responder:
    """Wraps ``send``: an HTML page is held until its body is whole, then injected."""

    def __init__(self, owner: LiveReloadASGI, scope: Scope, send: Send) -> None:
        self.owner = owner
        self.scope = scope
        self._send = send
        self.start: Message | None = None
        self.headers: list[tuple[str, str]] = []
        self.chunks: list[bytes] = []
        self.holding = False
        self.done = False

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.headers = _str_headers(message.get("headers", []))
            length = _content_length(self.headers)
            if (
                injectable(int(message["status"]), self.headers)
                and not message.get("trailers")
                and (length is None or length <= MAX_BUFFER)
            ):
                self.start, self.holding = message, True
                return
        elif kind == "http.response.body" and self.holding:
            self.chunks.append(bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                self.holding = False
                await self._flush_injected()
                return
            if len(self.chunks) > 1 or _content_length(self.headers) is not None:
                return  # a body of a known, bounded length: keep reading it
            await self._release()  # a stream: it goes out as it comes
            return
        elif self.holding:
            await self._release()
        await self._send(message)

    async def _release(self) -> None:
        """Send what is held untouched: this response is not a whole page."""
        self.holding = False
        assert self.start is not None
        await self._send(self.start)
        for chunk in self.chunks:
            await self._send({"type": "http.response.body", "body": chunk, "more_body": True})
        self.chunks = []

    async def _flush_injected(self) -> None:
        assert self.start is not None
        body = b"".join(self.chunks)
        self.chunks = []
        events_url = self.scope.get("root_path", "") + EVENTS_PATH
        tag = _tag_for(self.headers, events_url)
        length = _content_length(self.headers)
        head = self.scope.get("method") == "HEAD"
        if head and not body and length:
            page = await _get_body(self.owner.app, self.scope)
            new_length = length if inject(page, tag) is None else length + len(tag)
            await self._send_with(rewrite_headers(self.headers, new_length), b"")
            return
        injected = inject(body, tag)
        if injected is None:
            await self._send(self.start)
            await self._send({"type": "http.response.body", "body": body})
            return
        await self._send_with(rewrite_headers(self.headers, len(injected)),
                              b"" if head else injected)

    async def _send_with(self, headers: list[tuple[str, str]], body: bytes) -> None:
        assert self.start is not None
        start = dict(self.start)
        start["headers"] = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in headers]
        await self._send(start)
        await self._send({"type": "http.response.body", "body": body})

    async def finish(self) -> None:
        """The app returned while a page was held (it never ended its body): send it."""
        if self.holding:
            self.holding = False
            await self._flush_injected()


async def _get_body(app: ASGIApp, scope: Scope) -> bytes:
    """The page a GET would give, for a HEAD that must announce the GET's length."""
    chunks: list[bytes] = []
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # the client never leaves: wait to be cancelled
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            chunks.append(bytes(message.get("body", b"")))

    await app(dict(scope, method="GET"), receive, send)
    return b"".join(chunks)
