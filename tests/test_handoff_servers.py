"""How each server lets go of an idle keep-alive connection and adopts one handed over
(issue 11), in-process with real server objects on a socket pair or a loopback socket:
a connection is idle only between requests; its unparsed bytes travel with it and are
parsed before what the client sends next."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from devreload.servers import uvicorn_connections as server_uvicorn
from devreload.servers import waitress as server_waitress
from devreload.web import waitress_streams

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


@pytest.fixture
def listening() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock
    sock.close()


# --------------------------------------------------------------------------- waitress


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

    def close(self) -> None:
        self.server.task_dispatcher.shutdown()
        for channel in self.channels():
            channel.handle_close()


def test_waitress_hands_over_an_idle_connection_and_adopts_it_with_its_bytes(
    listening: socket.socket,
) -> None:
    old, new = Waitress("old", listening), Waitress("new", listening)
    client = socket.create_connection(listening.getsockname())
    try:
        old.listeners[0].handle_accept()
        (channel,) = old.channels()
        assert server_waitress.idle(channel), "accepted, nothing read yet"
        client.sendall(b"GET /1 HTTP/1.1\r\n" + HEAD)
        assert read_response(client, old.pump).endswith(b"old /1")
        # The response can reach the client before the task thread has finished its
        # bookkeeping: idle is a state the channel reaches, not at once.
        give_up = time.monotonic() + DEADLINE
        while not server_waitress.idle(channel) and time.monotonic() < give_up:
            old.pump()
        assert server_waitress.idle(channel), "between two requests"
        client.sendall(b"GET /2 HTTP/1.1\r\nHo")  # not read by the old server
        sock, data = server_waitress.detach(channel)
        assert data == b"" and old.channels() == []
        server_waitress.adopt(sock, data, new.listeners, new.map)
        client.sendall(b"st: x\r\n\r\n")
        assert read_response(client, new.pump).endswith(b"new /2")
        # Handed over with the start of a request read already: that comes first.
        (channel,) = new.channels()
        sock, _ = server_waitress.detach(channel)
        server_waitress.adopt(sock, b"GET /3 HTTP/1.1\r\nX: ", old.listeners, old.map)
        client.sendall(b"y\r\n" + HEAD)
        assert read_response(client, old.pump).endswith(b"old /3")
    finally:
        client.close()
        old.close()
        new.close()


def test_waitress_keeps_a_connection_whose_request_is_half_read(
    listening: socket.socket,
) -> None:
    server = Waitress("old", listening)
    client = socket.create_connection(listening.getsockname())
    try:
        server.listeners[0].handle_accept()
        (channel,) = server.channels()
        client.sendall(b"POST / HTTP/1.1\r\nContent-Length: 13\r\n\r\nhalf")
        deadline = time.monotonic() + DEADLINE
        while channel.request is None and time.monotonic() < deadline:
            server.pump()
        assert not server_waitress.idle(channel), "half a request: finished here"
        # Draining, a connection between requests is not read any more, one mid-request is.
        channel.devreload_draining = True
        assert channel.readable()
        client.sendall(b"-the-rest")
        assert read_response(client, server.pump).endswith(b"old /")
        deadline = time.monotonic() + DEADLINE
        while not server_waitress.idle(channel) and time.monotonic() < deadline:
            server.pump()  # the task thread ends the request just after the response
        assert server_waitress.idle(channel)
        assert not channel.readable(), "idle and draining: left for the next worker"
    finally:
        client.close()
        server.close()


# --------------------------------------------------------------------------- uvicorn


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


def test_uvicorn_h11_hands_over_an_idle_connection_with_its_partial_head() -> None:
    async def scenario() -> None:
        server = Uvicorn("h11")
        loop = asyncio.get_running_loop()
        client, sock = socket.socketpair()
        client.setblocking(False)
        # Adopted with the start of a request: the rest comes from the socket, after it.
        await server_uvicorn.adopt(loop, server.factory, sock, b"GET /one HTTP/1.1\r\nHo")
        client.sendall(b"st: x\r\n\r\n")
        assert (await response(client)).endswith(b"GET /one")
        (protocol,) = server.made
        await until(lambda: server_uvicorn.idle_bytes(protocol) == b"")
        # A request under way, then its response still to come: busy, not idle.
        client.sendall(b"GET /slow HTTP/1.1\r\n" + HEAD)
        await until(lambda: protocol.cycle is not None and not protocol.cycle.response_complete)
        assert server_uvicorn.busy(protocol) and server_uvicorn.idle_bytes(protocol) is None
        server.release.set()
        assert (await response(client)).endswith(b"GET /slow")
        # The next request's head half read: idle, with those bytes.
        client.sendall(b"POST /two HTTP/1.1\r\n")
        await until(lambda: server_uvicorn.idle_bytes(protocol))
        data = server_uvicorn.idle_bytes(protocol)
        assert data == b"POST /two HTTP/1.1\r\n"
        handed = server_uvicorn.detach(protocol)
        await until(lambda: protocol not in server.state.connections)
        await server_uvicorn.adopt(loop, server.factory, handed, data)
        client.sendall(b"Content-Length: 2\r\n" + HEAD[:-2] + b"\r\nhi")
        assert (await response(client)).endswith(b"POST /two")
        assert server_uvicorn.is_http(server.made[-1])
        for protocol in server.made:
            protocol.transport.close()
        client.close()

    asyncio.run(scenario())


def test_uvicorn_httptools_hands_over_only_between_whole_requests() -> None:
    """httptools parses every byte it gets at once, so a half-read head is under way."""
    pytest.importorskip("httptools")

    async def scenario() -> None:
        server = Uvicorn("httptools")
        loop = asyncio.get_running_loop()
        client, sock = socket.socketpair()
        client.setblocking(False)
        await server_uvicorn.adopt(loop, server.factory, sock, b"GET /one HTTP/1.1\r\nHo")
        client.sendall(b"st: x\r\n\r\n")
        assert (await response(client)).endswith(b"GET /one")
        (protocol,) = server.made
        await until(lambda: server_uvicorn.idle_bytes(protocol) == b"")
        client.sendall(b"GET /two HTTP/1.1\r\n")
        await until(lambda: server_uvicorn.busy(protocol))
        assert server_uvicorn.idle_bytes(protocol) is None
        client.sendall(HEAD)
        assert (await response(client)).endswith(b"GET /two")
        await until(lambda: server_uvicorn.idle_bytes(protocol) == b"")
        handed = server_uvicorn.detach(protocol)
        await server_uvicorn.adopt(loop, server.factory, handed, b"")
        client.sendall(b"GET /three HTTP/1.1\r\n" + HEAD)
        assert (await response(client)).endswith(b"GET /three")
        for protocol in server.made:
            protocol.transport.close()
        client.close()

    asyncio.run(scenario())
