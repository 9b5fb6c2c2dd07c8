"""Keep-alive connections handed from worker to worker (issue 11), in-process: the channel
carries sockets with their unparsed bytes, the worker's ``ConnectionHandoff`` passes them
to its server and back, the monitor holds them between workers, and the error page
answers them while the app is broken.

A "connection" here is one end of a socket pair; the test keeps the other end as the
client, so it can tell that a connection stayed open across every move.
"""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Iterator, Sequence

import pytest
from helpers import wait_until
from test_strategy import FakeClock, FakeLauncher, RecordingLogger

from devreload.monitor.errorserver import ErrorPage
from devreload.monitor.events import FileChanged, SignalReceived, WorkerSaid
from devreload.monitor.record import Worker, read_channel
from devreload.monitor.reloader import ServingReloader
from devreload.monitor.settings import ReloadSettings
from devreload.monitor.strategy import ReloadStrategy
from devreload.wire.channel import (
    MAX_FDS,
    Channel,
    ChannelClosed,
    HandedConnection,
    received_connections,
    send_connections,
)
from devreload.wire.messages import Connections, ConnectionsTaken, Message, Ready
from devreload.worker import proxy as worker_module
from devreload.worker.handoff import ConnectionHandoff
from devreload.worker.proxy import ReloaderProxy, handoff_for

#: Past the quiet window after a change.
INTERVAL = ReloadSettings.reload_interval + 0.001
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


@pytest.fixture
def clients() -> Iterator[Clients]:
    made = Clients()
    yield made
    made.close()


@pytest.fixture
def pair() -> Iterator[tuple[Channel, Channel]]:
    """Two ends of a channel: (worker's, monitor's)."""
    ours, theirs = Channel.pair()
    other = Channel(theirs)
    yield ours, other
    ours.close()
    other.close()


def still_connected(handed: socket.socket, client: socket.socket) -> None:
    """Bytes go both ways between a handed-over socket and its client."""
    client.sendall(b"ping")
    handed.settimeout(5)
    assert handed.recv(4) == b"ping"
    handed.sendall(b"pong")
    assert client.recv(4) == b"pong"


# --------------------------------------------------------------------------- the channel


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


# --------------------------------------------------------------------------- the worker


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


# --------------------------------------------------------------------------- the monitor


class Monitor:
    """A ReloadStrategy on fakes, whose workers' channels the test reads."""

    def __init__(self, strategy: ReloadStrategy, launcher: FakeLauncher) -> None:
        self.strategy = strategy
        self.launcher = launcher
        self.ends: list[Channel] = []
        self.stopped: Worker | None = None

    def wire(self) -> Channel:
        """Give the current worker a channel whose other end the test holds."""
        worker = self.strategy.worker
        assert worker is not None
        worker.channel.close()
        ours, theirs = Channel.pair()
        worker.channel = ours
        self.ends += [ours, Channel(theirs)]
        return self.ends[-1]

    def send(self, event: object) -> None:
        self.strategy.handle(event)  # type: ignore[arg-type]
        self.strategy._advance()

    def change(self) -> None:
        """A file changes: the worker is told to stop."""
        self.stopped = self.strategy.worker
        self.send(FileChanged("app.py"))

    def next_worker(self) -> None:
        """The stopped worker exits; the next one starts once the quiet window is over."""
        assert self.stopped is not None
        self.launcher.exit(self.stopped.pid, -signal.SIGTERM)
        self.send(SignalReceived(signal.SIGCHLD))
        self.strategy.clock.advance(INTERVAL)  # type: ignore[attr-defined]
        self.strategy._advance()

    def close(self) -> None:
        for end in self.ends:
            end.close()


def make_monitor(
    cls: type[ReloadStrategy] = ReloadStrategy,
    settings: ReloadSettings | None = None,
    sockets: Sequence[socket.socket] = (),
) -> Monitor:
    launcher = FakeLauncher()
    strategy = cls("x:y", settings, logger=RecordingLogger(), launcher=launcher, sockets=sockets)
    strategy.clock = FakeClock()
    strategy._terminal.saved = None
    strategy._terminal.interactive = False
    strategy.startup()
    return Monitor(strategy, launcher)


def handed_by(monitor: Monitor, connections: list[HandedConnection]) -> None:
    """The stopping worker hands ``connections`` over (as its channel reader queues them)."""
    fds = tuple(sock.detach() for sock, _ in connections)
    message = Connections(tuple(data for _, data in connections))
    monitor.send(WorkerSaid(monitor.stopped, message, fds))


def test_the_monitor_holds_connections_until_the_next_worker_serves(clients: Clients) -> None:
    monitor = make_monitor()
    try:
        monitor.change()
        handed_by(monitor, clients.make(2, b"GET /"))
        assert len(monitor.strategy.workers.parked) == 2
        monitor.next_worker()
        second = monitor.wire()
        assert len(monitor.strategy.workers.parked) == 2, "held while the next worker starts"
        monitor.send(WorkerSaid(monitor.strategy.worker, Ready()))
        assert not monitor.strategy.workers.parked
        message, fds = second.recv_with_fds()
        assert isinstance(message, Connections) and message.data == (b"GET /", b"GET /")
        for fd, client in zip(fds, clients.clients, strict=True):
            with socket.socket(fileno=fd) as sock:
                still_connected(sock, client)
    finally:
        monitor.close()


def test_a_worker_that_serves_gets_connections_handed_over_later(clients: Clients) -> None:
    monitor = make_monitor()
    try:
        current = monitor.wire()
        monitor.send(WorkerSaid(monitor.strategy.worker, Ready()))
        handed_by(monitor, clients.make(1, b"G"))  # from a worker stopped earlier
        message, fds = current.recv_with_fds()
        assert isinstance(message, Connections) and message.data == (b"G",) and len(fds) == 1
        socket.socket(fileno=fds[0]).close()
    finally:
        monitor.close()


def test_the_reader_queues_connections_before_it_confirms(clients: Clients) -> None:
    """The worker exits only after the confirmation, so its exit is queued after them."""
    monitor = make_monitor()
    try:
        worker_end = monitor.wire()
        worker = monitor.strategy.worker
        assert worker is not None
        reader = threading.Thread(target=read_channel, args=(worker, monitor.strategy.events))
        reader.start()
        send_connections(worker_end, clients.make(1, b"x"))
        assert isinstance(worker_end.recv(), ConnectionsTaken)
        event = monitor.strategy.events.get_nowait()
        assert isinstance(event, WorkerSaid) and isinstance(event.message, Connections)
        assert len(event.fds) == 1
        monitor.send(event)
        assert len(monitor.strategy.workers.parked) == 1
        worker_end.close()
        reader.join(5)
    finally:
        monitor.close()


def test_the_monitor_closes_held_connections_when_it_stops(clients: Clients) -> None:
    monitor = make_monitor()
    try:
        monitor.change()
        handed_by(monitor, clients.make(1))
        monitor.strategy.shutdown()
        assert not monitor.strategy.workers.parked
        assert clients.clients[0].recv(1) == b"", "closed"
    finally:
        monitor.close()


def test_while_broken_the_error_page_answers_held_connections(clients: Clients) -> None:
    """Under ServingReloader a connection handed over to a broken app gets the error page
    when its request comes; one whose request has not come when a fix is saved goes to
    the next worker."""
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen()
    settings = ReloadSettings(monitor_factory=lambda *a, **k: _NoFiles())
    monitor = make_monitor(ServingReloader, settings, sockets=[listening])
    try:
        asking, idle, partial = clients.make(1), clients.make(1), clients.make(1, REQUEST[:10])
        monitor.change()
        handed_by(monitor, asking + idle + partial)
        monitor.next_worker()
        broken = monitor.strategy.worker
        assert broken is not None
        monitor.launcher.exit(broken.pid, 1)  # its app fails to start
        monitor.send(SignalReceived(signal.SIGCHLD))
        assert monitor.strategy.crashed and not monitor.strategy.workers.parked
        clients.clients[0].sendall(REQUEST)
        assert _response(clients.clients[0]).startswith(b"HTTP/1.1 500 ")
        clients.clients[2].sendall(REQUEST[10:])
        assert _response(clients.clients[2]).startswith(b"HTTP/1.1 500 ")
        monitor.send(FileChanged("app.py"))  # the fix
        monitor.strategy.clock.advance(INTERVAL)  # type: ignore[attr-defined]
        monitor.strategy._advance()
        assert [data for _, data in monitor.strategy.workers.parked] == [b""], "the idle one, back"
        fixed = monitor.wire()
        monitor.send(WorkerSaid(monitor.strategy.worker, Ready()))
        message, fds = fixed.recv_with_fds()
        assert isinstance(message, Connections) and len(fds) == 1
        with socket.socket(fileno=fds[0]) as sock:
            still_connected(sock, clients.clients[1])
    finally:
        monitor.strategy.shutdown()
        monitor.close()


class _NoFiles:
    """A file monitor that watches nothing."""

    def add_path(self, path: str) -> None:
        pass

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def join(self) -> None:
        pass


def _response(client: socket.socket) -> bytes:
    data = b""
    while chunk := client.recv(65536):
        data += chunk
    return data


def test_the_error_page_answers_a_handed_connection_with_its_bytes(clients: Clients) -> None:
    page = ErrorPage([], show=True)
    (conn, _), = clients.make(1)
    page.adopt([(conn, REQUEST[:20])])
    clients.clients[0].sendall(REQUEST[20:])
    answer = _response(clients.clients[0])
    assert answer.startswith(b"HTTP/1.1 500 ") and b"X-Devreload-Error: 1" in answer
    assert page.stop() == []
