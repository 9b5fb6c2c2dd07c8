"""Spawned workers, with a spare spawned ahead: how workers start where they are not
forked (macOS, Windows, ``DEVRELOAD_PORTABLE=1``).

While the monitor is idle it spawns the next worker already: the spare has its channel
and the listening sockets, imports the libraries the last worker used (never the app's
own files), and waits for its spec. A restart then costs no interpreter start-up and no
library imports, as a fork from the template does on Linux. A spare that fails where a
fresh worker starts is judged as a forked one is (:class:`~devreload.monitor.forks.ForkMode`).

How a process is spawned, stopped, ended with its tree and heard to exit is the
:class:`Spawner`'s, one per platform family.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from devreload import processes
from devreload.log import Logger, counted, first_names
from devreload.monitor.forks import ForkMode, excluded
from devreload.monitor.janitor import Janitor
from devreload.monitor.launch import WORKER_ARGV
from devreload.wire.channel import Channel, ChannelClosed
from devreload.wire.contract import FDS_ENV
from devreload.wire.messages import Preload, Stop


class Spawner(Protocol):
    """One platform family's way to start a worker process and to end it with its tree."""

    def spawn(self, env: dict[str, str], channel: Channel, channel_end: socket.socket,
              sockets: Sequence[socket.socket]) -> subprocess.Popen[bytes]:
        """A worker interpreter with ``channel_end`` and ``sockets``; ``env`` is complete
        but for where it finds them."""

    def watch_exit(self, process: subprocess.Popen[bytes], notify: Callable[[], None]) -> None:
        """Call ``notify`` when ``process`` exits, where no SIGCHLD says so."""

    def stop(self, process: subprocess.Popen[bytes], channel: Channel) -> None: ...

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        """The worker and what it started end now."""

    def ended(self, process: subprocess.Popen[bytes]) -> None:
        """The worker exited: what it started ends too."""

    def close(self) -> None:
        """The monitor ends: every worker does too."""


def stop_message(channel: Channel) -> None:
    with contextlib.suppress(ChannelClosed):
        channel.send(Stop())


class PosixSpawner:
    """A session (and process group) per worker; the janitor ends the groups of the
    workers alive when the monitor dies, however it dies."""

    def __init__(self, by_message: bool, output: int | None = None) -> None:
        self.by_message = by_message
        self.output = output
        self.janitor: Janitor | None = None

    def spawn(self, env: dict[str, str], channel: Channel, channel_end: socket.socket,
              sockets: Sequence[socket.socket]) -> subprocess.Popen[bytes]:
        fds = [channel_end.fileno(), *(s.fileno() for s in sockets)]
        env[FDS_ENV] = ",".join(map(str, fds))
        process = subprocess.Popen(WORKER_ARGV, env=env, pass_fds=fds, start_new_session=True,
                                   stdout=self.output, stderr=self.output)
        if self.janitor is None:
            self.janitor = Janitor()
        self.janitor.watch(process.pid)
        return process

    def watch_exit(self, process: subprocess.Popen[bytes], notify: Callable[[], None]) -> None:
        pass  # SIGCHLD tells

    def stop(self, process: subprocess.Popen[bytes], channel: Channel) -> None:
        if self.by_message:
            stop_message(channel)
        else:
            processes.signal_group(process.pid, signal.SIGTERM)

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        processes.kill_group(process.pid)

    def ended(self, process: subprocess.Popen[bytes]) -> None:
        processes.kill_group(process.pid)
        if self.janitor is not None:
            self.janitor.forget(process.pid)

    def close(self) -> None:
        if self.janitor is not None:
            self.janitor.close()


@dataclass
class Spawned:
    process: subprocess.Popen[bytes]
    channel: Channel
    #: It was told to import libraries: its failure may be theirs, not the app's.
    preloaded: bool = False

    @property
    def pid(self) -> int:
        return self.process.pid


class SpareLauncher:
    """Spawns workers, one ahead; reaps only its own processes (``Popen.poll``), never
    whatever else the monitor started."""

    def __init__(self, log: Logger, spawner: Spawner, preload: bool = True,
                 exclude: Sequence[str] = ()) -> None:
        self.log = log
        self.spawner = spawner
        self.preloading = preload
        self.exclude = tuple(exclude)
        self.wanted: list[str] = []
        self.mode = ForkMode()
        self.spare: Spawned | None = None
        #: Workers the monitor knows, by pid.
        self.workers: dict[int, Spawned] = {}
        #: Spares killed and not yet reaped.
        self.discarded: list[subprocess.Popen[bytes]] = []
        self._notify: Callable[[], None] = lambda: None

    def adopt(self, pid: int) -> bool:
        return False  # it knows its workers by their Popen

    def notify_exits(self, notify: Callable[[], None]) -> None:
        self._notify = notify

    def start(self, sockets: Sequence[socket.socket]) -> tuple[int, Channel]:
        spare, self.spare = self.spare, None
        if spare is not None and spare.process.poll() is None and self.mode.forks():
            self.mode.started(spare.pid, forked=spare.preloaded)
        else:
            if spare is not None:
                self._discard(spare)
            spare = self._spawn(sockets)
            self.mode.started(spare.pid, forked=False)
        self.workers[spare.pid] = spare
        return spare.pid, spare.channel

    def prepare(self, sockets: Sequence[socket.socket]) -> None:
        if self.spare is not None or not self.mode.forks():
            return
        self.spare = spare = self._spawn(sockets)
        if self.wanted:
            with contextlib.suppress(ChannelClosed):
                spare.channel.send(Preload(tuple(self.wanted)))
                spare.preloaded = True
        self.log.debug("spare worker %d spawned", spare.pid)

    def _spawn(self, sockets: Sequence[socket.socket]) -> Spawned:
        channel, theirs = Channel.pair()
        with contextlib.closing(theirs):
            process = self.spawner.spawn(dict(os.environ), channel, theirs, sockets)
        channel.peer = process.pid
        self.spawner.watch_exit(process, lambda: self._notify())
        return Spawned(process, channel)

    def preload(self, modules: Sequence[str]) -> None:
        new = [m for m in dict.fromkeys(modules)
               if m not in self.wanted and not excluded(m, self.exclude)]
        if not new or not self.preloading:
            return
        self.log.debug("preloading %s in spare workers: %s",
                       counted(len(new), "more library module"), first_names(new))
        self.wanted.extend(new)

    def stop(self, pid: int, channel: Channel) -> None:
        worker = self.workers.get(pid)
        if worker is not None:
            self.spawner.stop(worker.process, channel)

    def kill(self, pid: int) -> None:
        worker = self.workers.get(pid)
        if worker is not None:
            self.spawner.kill(worker.process)

    def reap(self) -> list[tuple[int, int]]:
        exited = []
        for pid, worker in list(self.workers.items()):
            code = worker.process.poll()
            if code is not None:
                del self.workers[pid]
                self.spawner.ended(worker.process)
                exited.append((pid, code))
        if self.spare is not None and self.spare.process.poll() is not None:
            self._drop_spare()
        self.discarded = [p for p in self.discarded if p.poll() is None]
        return exited

    def failed(self, pid: int) -> bool:
        if not self.mode.failed(pid):
            return False
        self.log.debug("a worker started ahead failed; trying a fresh one")
        self._drop_spare()
        return True

    def succeeded(self, pid: int) -> None:
        if self.mode.succeeded(pid):
            self.log.warning(
                "a worker started ahead with the libraries imported failed where a fresh "
                "one starts: a library keeps state from its import; starting fresh workers "
                "from now on (name the library in preload_exclude, or set preload = off)")

    def refresh(self) -> None:
        self._drop_spare()  # the next one imports the libraries anew

    def _drop_spare(self) -> None:
        spare, self.spare = self.spare, None
        if spare is not None:
            self._discard(spare)

    def _discard(self, spare: Spawned) -> None:
        spare.channel.close()
        self.spawner.kill(spare.process)
        self.spawner.ended(spare.process)
        self.discarded.append(spare.process)

    def close(self) -> None:
        self._drop_spare()
        self.spawner.close()

