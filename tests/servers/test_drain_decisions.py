"""What a draining server does with each of its connections, asked of real waitress
channels and real uvicorn protocol objects (no server loop runs the decision here)."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import pytest
from serverkit import HEAD, Uvicorn, Waitress, read_response, response, until

from devreload.servers import uvicorn_connections, waitress
from devreload.servers.base import Drain

# --------------------------------------------------------------------------- waitress


def test_waitress_a_connection_between_requests_is_handed_over_or_closed(
    listening: socket.socket,
) -> None:
    server = Waitress("old", listening)
    client, channel = server.accept(listening)
    try:
        assert waitress.drain_step(channel, True, grace_over=False) is Drain.HAND_OVER
        assert waitress.drain_step(channel, False, grace_over=False) is Drain.WAIT, (
            "just accepted: its request may be on its way"
        )
        assert waitress.drain_step(channel, False, grace_over=True) is Drain.CLOSE
        client.sendall(b"GET /1 HTTP/1.1\r\n" + HEAD)
        assert read_response(client, server.pump).endswith(b"old /1")
        give_up = time.monotonic() + 5
        while not waitress.idle(channel) and time.monotonic() < give_up:
            server.pump()
        assert waitress.drain_step(channel, False, grace_over=False) is Drain.CLOSE, (
            "it has served: no grace"
        )
    finally:
        client.close()
        server.close()


def test_waitress_a_request_under_way_is_waited_for(
    listening: socket.socket,
) -> None:
    server = Waitress("old", listening)
    client, channel = server.accept(listening)
    try:
        client.sendall(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n" + HEAD + b"half")
        give_up = time.monotonic() + 5
        while channel.request is None and time.monotonic() < give_up:
            server.pump()
        for handing_over in (True, False):
            assert waitress.drain_step(channel, handing_over, grace_over=True) is Drain.WAIT
    finally:
        client.close()
        server.close()


# --------------------------------------------------------------------------- uvicorn


def test_uvicorn_a_connection_between_requests_is_handed_over_or_closed() -> None:
    async def scenario() -> None:
        server = Uvicorn("h11")
        client, protocol = await server.connect()
        step = uvicorn_connections.drain_step
        assert step(protocol, False, grace_over=False) == (Drain.WAIT, b""), (
            "no request yet: it may be on its way"
        )
        assert step(protocol, False, grace_over=True) == (Drain.CLOSE, b"")
        client.sendall(b"GET /one HTTP/1.1\r\n" + HEAD)
        assert (await response(client)).endswith(b"GET /one")
        await until(lambda: uvicorn_connections.idle_bytes(protocol) == b"")
        assert step(protocol, True, grace_over=False) == (Drain.HAND_OVER, b"")
        assert step(protocol, False, grace_over=False) == (Drain.CLOSE, b""), "it has served"
        client.sendall(b"GET /two HTTP/1.1\r\nHo")
        await until(lambda: uvicorn_connections.idle_bytes(protocol))
        handed = (Drain.HAND_OVER, b"GET /two HTTP/1.1\r\nHo")
        assert step(protocol, True, grace_over=True) == handed
        protocol.transport.close()
        client.close()

    asyncio.run(scenario())


def test_uvicorn_a_request_under_way_is_waited_for_or_finished_by_uvicorn() -> None:
    async def scenario() -> None:
        server = Uvicorn("h11")
        client, protocol = await server.connect()
        client.sendall(b"GET /slow HTTP/1.1\r\n" + HEAD)
        await until(lambda: protocol.cycle is not None)
        step = uvicorn_connections.drain_step
        assert step(protocol, True, grace_over=True) == (Drain.WAIT, b"")
        # Without a next worker uvicorn's own shutdown() closes it after the response.
        assert step(protocol, False, grace_over=True) == (Drain.CLOSE, b"")
        server.release.set()
        assert (await response(client)).endswith(b"GET /slow")
        protocol.transport.close()
        client.close()

    asyncio.run(scenario())


def test_uvicorn_a_websocket_is_closed_at_once() -> None:
    pytest.importorskip("websockets")

    async def scenario() -> None:
        server = Uvicorn("h11")
        config: Any = server.config
        websocket = config.ws_protocol_class(config=config, server_state=server.state,
                                             app_state={})
        step = uvicorn_connections.drain_step
        assert step(websocket, True, grace_over=False) == (Drain.CLOSE_WEBSOCKET, b"")

    asyncio.run(scenario())
