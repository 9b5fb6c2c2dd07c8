"""The worker's side of the keep-alive hand-over: connections handed to it wait for its
server, and a stopping server gives its idle ones back until the monitor holds them all."""

from __future__ import annotations

import socket
import threading

import pytest
from helpers import wait_until
from serverkit import Clients, still_connected

from devreload.wire.channel import (
    Channel,
    ChannelClosed,
    HandedConnection,
    received_connections,
    send_connections,
)
from devreload.wire.messages import Connections, ConnectionsTaken, Message
from devreload.worker import proxy as worker_module
from devreload.worker.handoff import ConnectionHandoff
from devreload.worker.proxy import ReloaderProxy, handoff_for


class FakeMonitor:
    """The monitor's end of a worker's channel: confirms every Connections, as the real
    reader thread does, and keeps the connections it got."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.got: list[HandedConnection] = []
        self.messages: list[Message] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            while True:
                message, fds = self.channel.recv_with_fds()
                self.messages.append(message)
                if isinstance(message, Connections):
                    self.got.extend(received_connections(message, fds))
                    self.channel.send(ConnectionsTaken())
        except ChannelClosed:
            pass


class WorkerEnd:
    """A proxy on the worker's end, with the thread that dispatches what the monitor says."""

    def __init__(self, channel: Channel) -> None:
        self.proxy = ReloaderProxy(channel, [])
        self.channel = channel
        threading.Thread(target=self._dispatch, daemon=True).start()

    def _dispatch(self) -> None:
        try:
            while True:
                self.proxy._dispatch(*self.channel.recv_with_fds())
        except ChannelClosed:
            pass

    @property
    def handoff(self) -> ConnectionHandoff:
        return self.proxy.connections


def test_connections_wait_for_the_server_then_wake_it(
    pair: tuple[Channel, Channel], clients: Clients
) -> None:
    """Connections that come before the server opens wait; opening wakes it at once, and
    later ones wake it as they come."""
    worker_end, monitor_end = pair
    worker = WorkerEnd(worker_end)
    send_connections(monitor_end, clients.make(2, b"GET / HT"))
    wakes: list[int] = []
    wait_until(lambda: worker.handoff._inbox)
    worker.handoff.open(lambda: wakes.append(1))
    assert wakes == [1]
    taken = worker.handoff.take()
    assert [data for _, data in taken] == [b"GET / HT", b"GET / HT"]
    send_connections(monitor_end, clients.make(1))
    wait_until(lambda: len(wakes) == 2)
    taken += worker.handoff.take()
    for (sock, _), client in zip(taken, clients.clients, strict=True):
        still_connected(sock, client)
        sock.close()


def test_finish_returns_once_the_monitor_holds_every_connection(
    pair: tuple[Channel, Channel], clients: Clients
) -> None:
    """What the server gives back while it drains, what it gives last and what it never
    adopted all reach the monitor before ``finish`` returns."""
    worker_end, monitor_end = pair
    worker = WorkerEnd(worker_end)
    monitor = FakeMonitor(monitor_end)
    drained, last, never_adopted = clients.make(1), clients.make(1, b"PO"), clients.make(1)
    worker.handoff.open(lambda: None)
    send_connections(monitor_end, never_adopted)
    wait_until(lambda: worker.handoff._inbox)
    worker.handoff.give_back(drained)
    worker.handoff.finish(last)
    assert len(monitor.got) == 3, "all held before finish returned"
    assert [data for _, data in monitor.got] == [b"", b"PO", b""]
    for (sock, _), client in zip(monitor.got, clients.clients, strict=True):
        still_connected(sock, client)
        sock.close()


def test_connections_that_come_after_finish_go_straight_back(
    pair: tuple[Channel, Channel], clients: Clients
) -> None:
    worker_end, monitor_end = pair
    worker = WorkerEnd(worker_end)
    monitor = FakeMonitor(monitor_end)
    worker.handoff.open(lambda: None)
    worker.handoff.finish()
    send_connections(monitor_end, clients.make(1, b"GET"))
    wait_until(lambda: monitor.got)
    assert monitor.got[0][1] == b"GET"
    monitor.got[0][0].close()


def test_only_a_server_on_the_monitors_sockets_hands_connections_over(
    monkeypatch: pytest.MonkeyPatch, pair: tuple[Channel, Channel]
) -> None:
    held = socket.socket()
    other = socket.socket()
    try:
        assert handoff_for([held]) is None, "no monitor"
        proxy = ReloaderProxy(pair[0], [held])
        monkeypatch.setattr(worker_module, "_proxy", proxy)
        assert handoff_for([held]) is proxy.connections
        assert handoff_for([other]) is None, "a server on sockets of its own"
        assert handoff_for([]) is None
    finally:
        held.close()
        other.close()
