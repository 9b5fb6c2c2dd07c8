"""Keep-alive connections on the channel: each socket travels as an fd beside the bytes
of its next request read already, and none is leaked when a message is cut short."""

from __future__ import annotations

import socket
import threading

import pytest
from serverkit import Clients, still_connected

from devreload.wire.channel import (
    MAX_FDS,
    Channel,
    ChannelClosed,
    HandedConnection,
    received_connections,
    send_connections,
)
from devreload.wire.messages import Connections


def test_connections_travel_with_their_bytes_and_stay_open(
    pair: tuple[Channel, Channel], clients: Clients
) -> None:
    """More than one message's worth of fds: every one arrives, in order, each with its
    bytes; the sender's copies are closed, the connections are not."""
    sender, receiver = pair
    handed = clients.make(MAX_FDS + 3)
    handed = [(sock, f"GET /{i}".encode()) for i, (sock, _) in enumerate(handed)]
    got: list[HandedConnection] = []

    def receive() -> None:
        while len(got) < len(handed):
            message, fds = receiver.recv_with_fds()
            assert isinstance(message, Connections)
            assert len(fds) <= MAX_FDS
            got.extend(received_connections(message, fds))

    reader = threading.Thread(target=receive)
    reader.start()
    send_connections(sender, handed)
    reader.join(5)
    assert [data for _, data in got] == [data for _, data in handed]
    assert all(sock.fileno() == -1 for sock, _ in handed), "the sender's copies are closed"
    for (sock, _), client in zip(got, clients.clients, strict=True):
        still_connected(sock, client)
        sock.close()


def test_an_fd_without_bytes_is_closed(clients: Clients) -> None:
    """A message cut short (more fds than bytes) closes the extra fds, never leaks them."""
    (a, _), (b, _) = clients.make(2)
    fds = [a.detach(), b.detach()]
    got = received_connections(Connections((b"x",)), fds)
    assert [data for _, data in got] == [b"x"]
    got[0][0].close()
    assert clients.clients[1].recv(1) == b"", "the second connection is closed"


def test_a_closed_channel_still_closes_what_it_could_not_send(clients: Clients) -> None:
    ours, theirs = Channel.pair()
    theirs.close()
    ours.sock.shutdown(socket.SHUT_WR)
    handed = clients.make(2)
    with pytest.raises(ChannelClosed):
        send_connections(ours, handed)
    assert all(sock.fileno() == -1 for sock, _ in handed)
    ours.close()
