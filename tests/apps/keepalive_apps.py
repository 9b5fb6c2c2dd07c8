"""Fixture apps for keep-alive clients across restarts: an answer names the code's TOKEN and
the worker's pid, and echoes a POST body, so a client can tell which code answered it and
that its body arrived whole."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # types only: the app imports no devreload module at run time
    from devreload.web.asgi import ASGIApp, Receive, Scope, Send
    from devreload.web.wsgi import StartResponse, WSGIApp

TOKEN = "one"


def _answer(body: bytes) -> bytes:
    return f"{TOKEN} pid={os.getpid()} ".encode() + body


def wsgi_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    out = _answer(environ["wsgi.input"].read(length) if length else b"")
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(out)))])
    return [out]


async def asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"].endswith("shutdown"):
                return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    out = _answer(body)
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(out)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": out})


def make_wsgi(global_config: dict[str, str] | None = None, **settings: str) -> WSGIApp:
    return wsgi_app


def make_asgi(global_config: dict[str, str] | None = None, **settings: str) -> ASGIApp:
    return asgi_app
