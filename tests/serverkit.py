"""Servers as the tests drive them: real waitress and uvicorn objects run step by step on
the test's own loop, and client sockets on socket pairs."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import waitress
from waitress import wasyncore

from devreload.servers import uvicorn_connections
from devreload.web import waitress_streams
from devreload.web.waitress_streams import install_waitress_events
from devreload.wire.channel import (
    HandedConnection,
)

HEAD = b"Host: x\r\n\r\n"


DEADLINE = 5.0


def read_response(client: socket.socket, pump: Callable[[], None]) -> bytes:
    """One whole response (its body sized by Content-Length), pumping the server meanwhile."""
    client.setblocking(False)
    data = b""
    give_up = time.monotonic() + DEADLINE
    while time.monotonic() < give_up:
        pump()
        try:
            data += client.recv(65536)
        except BlockingIOError:
            pass
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            if len(body) >= length:
                return data
    raise AssertionError(f"no whole response within {DEADLINE} s: {data!r}")


def wsgi(name: str) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        body = f"{name} {environ['PATH_INFO']}".encode()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]

    return app


class Waitress:
    """A waitress server object on ``listening``, its loop run step by step by the test."""

    def __init__(self, name: str, listening: socket.socket) -> None:
        import waitress

        self.map: dict[int, Any] = {}
        self.server = waitress.create_server(wsgi(name), map=self.map, sockets=[listening],
                                             threads=1)
        waitress_streams.install_waitress_events(self.server)
        self.listeners = waitress_streams._listeners(self.server)

    def pump(self) -> None:
        from waitress import wasyncore

        wasyncore.loop(timeout=0.01, map=self.map, count=1)

    def channels(self) -> list[Any]:
        from waitress.channel import HTTPChannel

        return [obj for obj in self.map.values() if isinstance(obj, HTTPChannel)]

    def accept(self, listening: socket.socket) -> tuple[socket.socket, Any]:
        """A client connected to ``listening``, and the channel that accepted it here."""
        client = socket.create_connection(listening.getsockname())
        self.listeners[0].handle_accept()
        return client, self.channels()[-1]

    def close(self) -> None:
        self.server.task_dispatcher.shutdown()
        for channel in self.channels():
            channel.handle_close()


class Uvicorn:
    """uvicorn's HTTP protocol objects as its server makes them, on a loop of the test's."""

    def __init__(self, http: str) -> None:
        import uvicorn
        from uvicorn.server import ServerState

        self.release = asyncio.Event()
        self.config = uvicorn.Config(self.app, lifespan="off", http=http, log_level="warning",
                                     interface="asgi3")
        self.config.load()
        self.state = ServerState()
        self.made: list[Any] = []

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        if scope["path"] == "/slow":
            await self.release.wait()
        body = f"{scope['method']} {scope['path']}".encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    def factory(self) -> asyncio.Protocol:
        make: Any = self.config.http_protocol_class
        protocol: asyncio.Protocol = make(config=self.config, server_state=self.state,
                                          app_state={})
        self.made.append(protocol)
        return protocol

    async def connect(self, data: bytes = b"") -> tuple[socket.socket, Any]:
        """A client, and the protocol that adopted its connection with ``data`` read
        already (as a connection handed over from the previous worker)."""
        client, sock = socket.socketpair()
        client.setblocking(False)
        await uvicorn_connections.adopt(asyncio.get_running_loop(), self.factory, sock, data)
        return client, self.made[-1]


async def response(client: socket.socket) -> bytes:
    loop = asyncio.get_running_loop()
    give_up = loop.time() + DEADLINE
    data = b""
    while loop.time() < give_up:
        await asyncio.sleep(0.005)
        try:
            data += client.recv(65536)
        except BlockingIOError:
            continue
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep and head.lower().count(b"content-length") and body:
            return data
    raise AssertionError(f"no response within {DEADLINE} s: {data!r}")


async def until(predicate: Callable[[], object]) -> None:
    loop = asyncio.get_running_loop()
    give_up = loop.time() + DEADLINE
    while not predicate():
        assert loop.time() < give_up, "condition not met in time"
        await asyncio.sleep(0.005)


REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\nAccept: text/plain\r\n\r\n"


class Clients:
    """Socket pairs: the server ends to hand around, the client ends kept by the test."""

    def __init__(self) -> None:
        self.clients: list[socket.socket] = []
        self.servers: list[socket.socket] = []

    def make(self, n: int, data: bytes = b"") -> list[HandedConnection]:
        made = []
        for _ in range(n):
            client, server = socket.socketpair()
            client.settimeout(5)
            self.clients.append(client)
            self.servers.append(server)
            made.append((server, data))
        return made

    def close(self) -> None:
        for sock in self.clients + self.servers:
            sock.close()


def still_connected(handed: socket.socket, client: socket.socket) -> None:
    """Bytes go both ways between a handed-over socket and its client."""
    client.sendall(b"ping")
    handed.settimeout(5)
    assert handed.recv(4) == b"ping"
    handed.sendall(b"pong")
    assert client.recv(4) == b"pong"


class ThreadedWaitress:
    """A real waitress on 127.0.0.1 in a thread, with the events served from its loop."""

    def __init__(self, app: Any, threads: int) -> None:
        self.map: dict[int, Any] = {}
        self.server = waitress.create_server(app, map=self.map, host="127.0.0.1", port=0,
                                             threads=threads)
        install_waitress_events(self.server, hub=app.hub)
        self.port = self.server.effective_port
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.is_set():
            wasyncore.loop(timeout=0.05, map=self.map, count=1)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.server.task_dispatcher.shutdown(timeout=1)
        wasyncore.close_all(self.map)
