"""WSGI and ASGI fixture apps for the server tests: ``/slow`` takes 0.5 s to answer,
``/sleep/S`` takes S seconds (saying SLEEPING first), ``/stream`` streams a chunk every 50 ms
and never ends, ``/data/NAME`` answers the file
``data/NAME`` (data another process drops); the ASGI app echoes websockets."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # types only: the app imports no devreload module at run time
    from devreload.web.asgi import ASGIApp, Receive, Scope, Send
    from devreload.web.wsgi import StartResponse, WSGIApp

TOKEN = "one"


def _endless() -> Iterator[bytes]:
    while True:
        yield b"tick\n"
        time.sleep(0.05)


def _data(path: str) -> str:
    if not path.startswith("/data/"):
        return ""
    with open(os.path.join("data", os.path.basename(path))) as f:
        return " " + f.read()


def wsgi_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    if environ["PATH_INFO"] == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _endless()
    if environ["PATH_INFO"] == "/slow":
        time.sleep(0.5)
    if environ["PATH_INFO"].startswith("/sleep/"):
        print(f"SLEEPING pid={os.getpid()}", flush=True)
        time.sleep(float(environ["PATH_INFO"].rpartition("/")[2]))
    body = f"wsgi {TOKEN} pid={os.getpid()}{_data(environ['PATH_INFO'])}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


async def asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            event = message["type"].rsplit(".", 1)[-1]
            print(f"LIFESPAN {event} pid={os.getpid()}", flush=True)
            await send({"type": message["type"] + ".complete"})
            if event == "shutdown":
                return
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while True:  # echo until the client or the server ends it
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            await send({"type": "websocket.send", "text": message.get("text") or ""})
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while True:
            await send({"type": "http.response.body", "body": b"tick\n", "more_body": True})
            await asyncio.sleep(0.05)
    if scope["path"] == "/slow":
        await asyncio.sleep(0.5)
    if scope["path"].startswith("/sleep/"):
        print(f"SLEEPING pid={os.getpid()}", flush=True)
        await asyncio.sleep(float(scope["path"].rpartition("/")[2]))
    body = f"asgi {TOKEN} pid={os.getpid()}{_data(scope['path'])}".encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def make_wsgi(global_config: dict[str, str] | None = None, **settings: str) -> WSGIApp:
    return wsgi_app


def make_asgi(global_config: dict[str, str] | None = None, **settings: str) -> ASGIApp:
    return asgi_app
