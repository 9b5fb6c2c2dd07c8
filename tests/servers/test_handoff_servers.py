"""How each server lets go of an idle keep-alive connection and adopts one handed over
(issue 11), in-process with real server objects on a socket pair or a loopback socket:
a connection is idle only between requests; its unparsed bytes travel with it and are
parsed before what the client sends next."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
from serverkit import DEADLINE, HEAD, Uvicorn, Waitress, read_response, response, until

from devreload.servers import uvicorn_connections as server_uvicorn
from devreload.servers import waitress as server_waitress

# --------------------------------------------------------------------------- waitress


def test_waitress_hands_over_an_idle_connection_and_adopts_it_with_its_bytes(
    listening: socket.socket,
) -> None:
    old, new = Waitress("old", listening), Waitress("new", listening)
    client, channel = old.accept(listening)
    try:
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
    client, channel = server.accept(listening)
    try:
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


def test_uvicorn_h11_hands_over_an_idle_connection_with_its_partial_head() -> None:
    async def scenario() -> None:
        server = Uvicorn("h11")
        loop = asyncio.get_running_loop()
        # Adopted with the start of a request: the rest comes from the socket, after it.
        client, protocol = await server.connect(b"GET /one HTTP/1.1\r\nHo")
        client.sendall(b"st: x\r\n\r\n")
        assert (await response(client)).endswith(b"GET /one")
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
        client, protocol = await server.connect(b"GET /one HTTP/1.1\r\nHo")
        client.sendall(b"st: x\r\n\r\n")
        assert (await response(client)).endswith(b"GET /one")
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
