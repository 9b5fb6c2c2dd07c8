"""The monitor's side of the keep-alive hand-over: parked connections wait for the next
worker to serve, and get the error page while the app is broken."""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Sequence

from fakes import FakeClock, FakeFileMonitor, FakeLauncher, RecordingLogger
from serverkit import REQUEST, Clients, still_connected

from devreload.monitor.errorserver import ErrorPage
from devreload.monitor.events import FileChanged, SignalReceived, WorkerSaid
from devreload.monitor.record import Worker, read_channel
from devreload.monitor.reloader import ServingReloader
from devreload.monitor.settings import ReloadSettings
from devreload.monitor.strategy import ReloadStrategy
from devreload.wire.channel import (
    Channel,
    HandedConnection,
    send_connections,
)
from devreload.wire.messages import Connections, ConnectionsTaken, Ready

#: Past the quiet window after a change.
INTERVAL = ReloadSettings.reload_interval + 0.001


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
        self.strategy.advance()

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
        self.strategy.advance()

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
    settings = ReloadSettings(monitor_factory=lambda *a, **k: FakeFileMonitor())
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
        monitor.strategy.advance()
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
