"""The Windows spawner's logic, with the Windows calls faked (these machines are Linux):
the job comes first and holds the worker, the channel end is the one handle inherited,
the sockets follow as shares made for the worker, a stop is a message then a console
break, and a worker's exit ends its job. The processes are real (a Python that lives
until its channel closes); only what Windows alone has is recorded instead."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from helpers import wait_until

from devreload.monitor import windows
from devreload.monitor.windows import WindowsSpawner
from devreload.wire.channel import Channel
from devreload.wire.contract import FDS_ENV
from devreload.wire.messages import SharedSockets, Spec, Stop

#: A stand-in worker: it lives until its channel closes.
WAITS_ON_CHANNEL = (
    "import os, socket\n"
    f"s = socket.socket(fileno=int(os.environ[{FDS_ENV!r}]))\n"
    "while s.recv(4096): pass\n"
)


class FakeWinApi:
    """Records the Windows calls; ``popen`` starts a real process on the inherited end,
    and keeps a copy of that end to read what the worker is told."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []
        self.next_job = 100
        self.no_console = False
        self.fail_popen = False
        self.worker_ends: list[Channel] = []

    def popen(self, argv: list[str], env: dict[str, str], inherit: int,
              output: int | None = None) -> subprocess.Popen[bytes]:
        self.calls.append(("popen", inherit))
        assert env[FDS_ENV] == str(inherit), "the worker finds the one handle it inherits"
        assert os.get_inheritable(inherit)
        if self.fail_popen:
            raise OSError("CreateProcess failed")
        self.worker_ends.append(Channel(socket.socket(fileno=os.dup(inherit))))
        return subprocess.Popen([sys.executable, "-c", WAITS_ON_CHANNEL], env=env,
                                pass_fds=[inherit])

    def create_job(self) -> int:
        self.next_job += 1
        self.calls.append(("create_job", self.next_job))
        return self.next_job

    def assign(self, job: int, process: subprocess.Popen[bytes]) -> None:
        self.calls.append(("assign", (job, process.pid)))

    def terminate(self, job: int) -> None:
        self.calls.append(("terminate", job))

    def close(self, handle: int) -> None:
        self.calls.append(("close", handle))

    def send_break(self, group: int) -> None:
        self.calls.append(("send_break", group))
        if self.no_console:
            raise OSError("no console")

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


@dataclass
class Spawned:
    spawner: WindowsSpawner
    api: FakeWinApi
    channel: Channel
    listener: socket.socket
    process: subprocess.Popen[bytes]

    def told(self) -> object:
        """The next message the worker reads."""
        end = self.api.worker_ends[-1]
        end.sock.settimeout(5)
        return end.recv()


@pytest.fixture
def spawned(monkeypatch: pytest.MonkeyPatch) -> Iterator[Spawned]:
    monkeypatch.setattr(windows, "share", lambda sock, pid: f"{sock.fileno()}>{pid}".encode())
    api = FakeWinApi()
    spawner = WindowsSpawner(api)
    channel, theirs = Channel.pair()
    listener = socket.create_server(("127.0.0.1", 0))
    process = spawner.spawn({}, channel, theirs, [listener])
    theirs.close()
    try:
        yield Spawned(spawner, api, channel, listener, process)
    finally:
        channel.close()
        listener.close()
        for end in api.worker_ends:
            end.close()
        process.kill()
        process.wait()


def test_the_worker_is_in_its_job_before_it_is_told_anything(spawned: Spawned) -> None:
    assert spawned.api.names() == ["create_job", "popen", "assign"]
    job = spawned.api.calls[0][1]
    assert spawned.api.calls[2] == ("assign", (job, spawned.process.pid))
    assert spawned.spawner.jobs == {spawned.process.pid: job}


def test_the_sockets_come_first_as_shares_made_for_the_worker(spawned: Spawned) -> None:
    spawned.channel.send(Spec(worker_path="os:getpid"))
    assert spawned.told() == SharedSockets(
        (f"{spawned.listener.fileno()}>{spawned.process.pid}".encode(),))
    assert isinstance(spawned.told(), Spec)


def test_a_stop_is_a_message_then_a_break_for_what_the_worker_started(
    spawned: Spawned,
) -> None:
    spawned.told()
    spawned.spawner.stop(spawned.process, spawned.channel)
    assert spawned.told() == Stop()
    assert spawned.api.calls[-1] == ("send_break", spawned.process.pid)
    spawned.api.no_console = True
    spawned.spawner.stop(spawned.process, spawned.channel)  # pythonw: no console, no error
    assert spawned.told() == Stop()


def test_a_kill_ends_the_job_and_an_exit_closes_it(spawned: Spawned) -> None:
    job = spawned.spawner.jobs[spawned.process.pid]
    spawned.spawner.kill(spawned.process)
    assert spawned.api.calls[-1] == ("terminate", job)
    spawned.spawner.ended(spawned.process)
    assert spawned.api.calls[-2:] == [("terminate", job), ("close", job)]
    assert spawned.spawner.jobs == {}
    spawned.spawner.kill(spawned.process)  # gone: nothing to terminate
    assert spawned.api.calls[-1] == ("close", job)


def test_its_exit_is_heard_without_sigchld(spawned: Spawned) -> None:
    heard = threading.Event()
    spawned.spawner.watch_exit(spawned.process, heard.set)
    assert not heard.wait(0.05)
    spawned.channel.close()  # the stand-in worker ends when its channel closes
    for end in spawned.api.worker_ends:
        end.close()
    wait_until(heard.is_set)
    assert spawned.process.poll() == 0


def test_the_monitors_end_ends_every_job(spawned: Spawned) -> None:
    job = spawned.spawner.jobs[spawned.process.pid]
    spawned.spawner.close()
    assert spawned.api.calls[-2:] == [("terminate", job), ("close", job)]


def test_a_worker_that_cannot_start_leaves_no_job() -> None:
    api = FakeWinApi()
    api.fail_popen = True
    channel, theirs = Channel.pair()
    try:
        with pytest.raises(OSError, match="CreateProcess"):
            WindowsSpawner(api).spawn({}, channel, theirs, [])
    finally:
        channel.close()
        theirs.close()
    assert api.names() == ["create_job", "popen", "close"]
