"""The monitor-worker channel over a real socketpair: framing, fd passing, closing, threads."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator

import pytest

from devreload import platforms
from devreload.wire import channel as channel_module
from devreload.wire.channel import (
    Channel,
    ChannelClosed,
    received_connections,
    send_connections,
)
from devreload.wire.messages import (
    Connections,
    Failed,
    Fork,
    Message,
    Modules,
    Ready,
    ReloadAsked,
    Spec,
    Watch,
)


@pytest.fixture
def pair() -> Iterator[tuple[Channel, Channel]]:
    ours, theirs = Channel.pair()
    peer = Channel(theirs)
    yield ours, peer
    ours.close()
    peer.close()


def test_messages_round_trip_in_order(pair: tuple[Channel, Channel]) -> None:
    a, b = pair
    messages: list[Message] = [
        Spec("app:main", argv=("x",), kwargs={"n": 1}),
        Ready(),
        Watch(("/a", "/b")),
    ]
    for message in messages:
        a.send(message)
    assert [b.recv() for _ in messages] == messages
    b.send(ReloadAsked())
    assert a.recv() == ReloadAsked()


def test_large_message_is_framed(pair: tuple[Channel, Channel]) -> None:
    a, b = pair
    big = Modules(tuple(f"/project/pkg/module_{i:06d}.py" for i in range(100_000)), ())
    result: list[Message] = []
    reader = threading.Thread(target=lambda: result.append(b.recv()))
    reader.start()  # the payload is bigger than the socket buffer: read while sending
    a.send(big)
    a.send(Failed("after"))
    reader.join(10)
    assert result == [big]
    assert b.recv() == Failed("after")


def test_file_descriptors_travel_with_a_message(pair: tuple[Channel, Channel]) -> None:
    a, b = pair
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    try:
        a.send(Fork(), fds=[listener.fileno()])
        message, fds = b.recv_with_fds()
        assert message == Fork()
        assert len(fds) == 1 and fds[0] != listener.fileno()
        received = socket.socket(fileno=fds[0])
        with received, socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            conn, _ = received.accept()  # the passed descriptor is the same listening socket
            with conn:
                client.sendall(b"hi")
                assert conn.recv(2) == b"hi"
    finally:
        listener.close()


def test_recv_raises_channel_closed_when_peer_closes(pair: tuple[Channel, Channel]) -> None:
    a, b = pair
    a.send(Failed("last"))
    a.close()
    assert b.recv() == Failed("last")
    with pytest.raises(ChannelClosed):
        b.recv()


def test_recv_unblocks_when_peer_closes_later(pair: tuple[Channel, Channel]) -> None:
    a, b = pair
    errors: list[BaseException] = []

    def receive() -> None:
        try:
            b.recv()
        except ChannelClosed as exc:
            errors.append(exc)

    reader = threading.Thread(target=receive)
    reader.start()
    a.close()
    reader.join(5)
    assert not reader.is_alive()
    assert len(errors) == 1
    assert isinstance(errors[0], EOFError)


def test_send_to_closed_peer_raises_channel_closed(pair: tuple[Channel, Channel]) -> None:
    a, b = pair
    b.close()
    with pytest.raises(ChannelClosed):
        for _ in range(1000):  # the first sends may still fit in the buffer
            a.send(Failed("x" * 1000))


def test_concurrent_senders_do_not_interleave(pair: tuple[Channel, Channel]) -> None:
    a, b = pair
    senders, each = 8, 200
    received: list[Message] = []
    reader = threading.Thread(
        target=lambda: received.extend(b.recv() for _ in range(senders * each))
    )
    reader.start()

    def send(n: int) -> None:
        for i in range(each):
            a.send(Watch((str(n), str(i), "p" * (i * 37 % 5000))))  # sender, index, padding

    threads = [threading.Thread(target=send, args=(n,)) for n in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    reader.join(10)
    assert len(received) == senders * each
    paths = [m.paths if isinstance(m, Watch) else () for m in received]
    for n in range(senders):  # each sender's messages arrive whole and in its order
        assert [int(p[1]) for p in paths if p[0] == str(n)] == list(range(each))


def test_from_fd_wraps_an_inherited_descriptor() -> None:
    ours, theirs = Channel.pair()
    fd = os.dup(theirs.fileno())
    theirs.close()
    peer = Channel.from_fd(fd)
    try:
        ours.send(Ready())
        assert peer.recv() == Ready()
        assert peer.fileno() == fd
    finally:
        ours.close()
        peer.close()


def test_where_descriptors_do_not_travel_connections_go_as_shares(
    pair: tuple[Channel, Channel], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows: each connection is shared for the process at the other end, and taken
    from its share there; no descriptor rides the message. ``share`` and ``fromshare``
    are Windows's: here a share names a socket kept aside."""
    kept: dict[bytes, socket.socket] = {}

    def share(sock: socket.socket, pid: int) -> bytes:
        name = f"{len(kept)}>{pid}".encode()
        kept[name] = sock.dup()
        return name

    monkeypatch.setattr(platforms, "current", lambda: platforms.WINDOWS)
    monkeypatch.setattr(channel_module, "share", share)
    monkeypatch.setattr(channel_module, "from_share", kept.pop)
    ours, theirs = pair
    ours.peer = 4242
    a, b = socket.socketpair()
    with b:
        send_connections(ours, [(a, b"GET /")])
        assert a.fileno() == -1, "closed here once sent"
        message, fds = theirs.recv_with_fds()
        assert isinstance(message, Connections) and fds == []
        assert message.shares == (b"0>4242",) and message.data == (b"GET /",)
        [(sock, data)] = received_connections(message, fds)
        with sock:
            assert data == b"GET /" and not kept
            sock.sendall(b"still open")
            assert b.recv(64) == b"still open"
