"""Live reload for ASGI apps: the twin of the WSGI ``LiveReload``, with streams as coroutines."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from devreload.web.hosts import REFUSAL_HEADERS, refusal_body
from devreload.web.injection import (
    content_length,
    inject,
    injectable,
    is_page,
    navigation,
    rewrite_headers,
)
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

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class LiveReloadASGI:
    """The ASGI twin of ``LiveReload`` (which returns one of these for an ASGI app)."""

    def __init__(self, app: ASGIApp, hub: EventHub | None = None,
                 allowed_hosts: Iterable[str] = ()) -> None:
        self.app = app
        self.hub = HUB if hub is None else hub
        self.hub.enabled = True
        self.hub.allow(allowed_hosts)
        self.hub.attach_to_worker()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if str(scope.get("path", "")).startswith(OWN_PREFIX):
            host = next((v.decode("latin-1") for n, v in scope.get("headers", ())
                         if n.lower() == b"host"), None)
            if not self.hub.host_allowed(host):
                await _refuse(scope, send, host)
                return
        if scope.get("path") == EVENTS_PATH:
            await self._events(scope, receive, send)
            return
        headers = {n.decode("latin-1").lower(): v.decode("latin-1")
                   for n, v in scope.get("headers", ())}
        navigating = navigation(str(scope.get("method", "GET")), headers.get)
        if navigating is False:
            await self.app(scope, receive, send)
            return
        responder = _Responder(scope, send, navigating)
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


async def _refuse(scope: Scope, send: Send, host: str | None) -> None:
    """The 403 for a ``Host`` devreload's own pages do not answer (see ``hosts``)."""
    body = refusal_body(host or "")
    headers = [*REFUSAL_HEADERS, ("Content-Length", str(len(body)))]
    await send({"type": "http.response.start", "status": 403,
                "headers": [(n.lower().encode(), v.encode()) for n, v in headers]})
    await send({"type": "http.response.body",
                "body": b"" if scope.get("method") == "HEAD" else body})


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _str_headers(raw: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(n.decode("latin-1"), v.decode("latin-1")) for n, v in raw]


class _Responder:
    """Wraps ``send``: an HTML page is held until its body is whole, then injected."""

    def __init__(self, scope: Scope, send: Send, navigating: bool | None) -> None:
        self.scope = scope
        self.navigating = navigating
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
            length = content_length(self.headers)
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
            if len(self.chunks) > 1 or content_length(self.headers) is not None:
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
        injected = (inject(body, tag_for(self.headers, events_url))
                    if is_page(self.navigating, int(self.start["status"]), body) else None)
        if injected is None:
            await self._send(self.start)
            await self._send({"type": "http.response.body", "body": body})
            return
        await self._send_with(rewrite_headers(self.headers, len(injected)), injected)

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
