"""How a worker process comes to life, and how the monitor signals and reaps it.

Every launcher hands the new process the same things (its end of the channel and the
listening sockets) and puts it in a session of its own; the monitor then sends it the
spec over the channel, so the worker's code does not care how it was started. This
module has the interface, what all launchers share, and the one that spawns a fresh
interpreter per worker; :mod:`devreload.monitor.forks` has the one that forks workers
from a warm template.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
from collections.abc import Callable, Collection, Sequence
from typing import Protocol

from devreload import processes
from devreload.monitor.janitor import Janitor
from devreload.monitor.spawn import python_argv, spawn
from devreload.wire.channel import Channel
from devreload.wire.contract import FDS_ENV

WORKER_ARGV = python_argv("from devreload.worker.runtime import main; main()")


class Launcher(Protocol):
    """Starts worker processes; the monitor owns (and reaps) every pid it returns."""

    def start(self, sockets: Sequence[socket.socket]) -> tuple[int, Channel]:
        """A new worker on ``sockets``: its pid, and the monitor's end of its channel."""

    def adopt(self, pid: int) -> bool:
        """Own and reap ``pid``, a worker this launcher did not start (the monitor's own
        fork); False when it cannot."""

    def notify_exits(self, notify: Callable[[], None]) -> None:
        """Call ``notify`` (from any thread) when a worker may have exited, where no
        SIGCHLD says so; ``reap`` tells which."""

    def preload(self, modules: Sequence[str]) -> None:
        """Library modules the last worker imported; the next may start with them."""

    def prepare(self, sockets: Sequence[socket.socket]) -> None:
        """The monitor is idle: the launcher may get the next worker ready now."""

    def stop(self, pid: int, channel: Channel) -> None:
        """Ask the worker ``pid`` to stop the graceful way (finally blocks, atexit), and
        what it started too."""

    def kill(self, pid: int) -> None:
        """End the worker ``pid`` and what it started, now."""

    def reap(self) -> list[tuple[int, int]]:
        """Workers that have exited since the last call, with their exit codes (negative:
        the signal); what is left of their process groups is killed."""

    def failed(self, pid: int) -> bool:
        """The worker ``pid`` failed before it served: True when the launcher starts the next
        one another way (the failure may be the launcher's), so it is worth a retry now."""

    def succeeded(self, pid: int) -> None:
        """The worker ``pid`` started well (it serves, or ended without a crash)."""

    def refresh(self) -> None:
        """The next workers start without what was preloaded (libraries may have been
        upgraded since); the janitor and the workers alive stay as they are."""

    def close(self) -> None: ...


class ExitPool:
    """The monitor's children that have exited, reaped once (``waitpid(-1)``) and handed to
    whichever launcher owns each: in a stack, several launchers share one monitor, and
    none may take another's exits, or its workers for strays."""

    def __init__(self) -> None:
        self.owners: list[Callable[[int], bool]] = []
        self.pending: dict[int, int] = {}

    def join(self, owns: Callable[[int], bool]) -> None:
        self.owners.append(owns)

    def owned(self, pid: int) -> bool:
        return any(owns(pid) for owns in self.owners)

    def end_strays(self, command_lines: Collection[bytes] = ()) -> None:
        """Processes re-parented to the monitor that nobody owns: what exited workers
        left behind (a daemon, a ``setsid`` child); ``command_lines``: how a process
        forked from a worker without exec shows."""
        for _ in range(processes.KILL_ROUNDS):
            strays = [p for p in processes.children_of(os.getpid())
                      if not self.owned(p) and processes.started_by_a_worker(p, command_lines)]
            if not strays:
                return
            for pid in strays:
                processes.kill_tree(pid)
            processes.kill_all(strays)

    def take(self, owns: Callable[[int], bool]) -> list[tuple[int, int]]:
        """The exits (pid, wait status) of the processes ``owns`` claims; the exits of
        processes nobody owns (strays) are dropped."""
        if sys.platform != "win32":  # (never used there: workers are not adopted)
            while True:
                try:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
                if self.owned(pid):
                    self.pending[pid] = status
        mine = [(pid, status) for pid, status in self.pending.items() if owns(pid)]
        for pid, _ in mine:
            del self.pending[pid]
        return mine


class Processes:
    """Workers are real processes, each leading its own session, reaped by the monitor.

    When a worker exits, whatever it left running (it is a subreaper, so its detached
    descendants come back to the monitor) is ended too. ``output``: the descriptor the
    workers write to, if not the monitor's stdout and stderr.
    """

    def __init__(self, exits: ExitPool | None = None, output: int | None = None) -> None:
        self.janitor: Janitor | None = None
        #: Live workers: never taken for strays.
        self.workers: set[int] = set()
        self.exits = exits or ExitPool()
        self.exits.join(self._owns)
        self.output = output
        #: The monitor's command line, once it has a fork of its own as a worker.
        self._adopted_lines: set[bytes] = set()

    def _owns(self, pid: int) -> bool:
        return (pid in self.workers or pid in self._helpers()
                or (self.janitor is not None and pid == self.janitor.pid))

    def _started(self, pid: int) -> int:
        if self.janitor is None:
            self.janitor = Janitor()
        self.janitor.watch(pid)
        self.workers.add(pid)
        return pid

    def adopt(self, pid: int) -> bool:
        with contextlib.suppress(OSError), open("/proc/self/cmdline", "rb") as f:
            # What the monitor's fork forks without exec shows the monitor's command line.
            self._adopted_lines.add(f.read())
        self._started(pid)
        return True

    def _close_janitor(self) -> None:
        """Only when the monitor ends: the janitor's EOF kills every worker it watches."""
        if self.janitor is not None:
            self.janitor.close()

    def notify_exits(self, notify: Callable[[], None]) -> None:
        pass  # SIGCHLD tells

    def stop(self, pid: int, channel: Channel) -> None:
        processes.signal_group(pid, signal.SIGTERM)

    def kill(self, pid: int) -> None:
        processes.kill_group(pid)

    def reap(self) -> list[tuple[int, int]]:
        exited: list[tuple[int, int]] = []
        for pid, status in self.exits.take(self._owns):
            if self._own_helper(pid) or (self.janitor is not None and pid == self.janitor.pid):
                continue
            self.kill(pid)  # the worker's own children end with it
            self.workers.discard(pid)
            if self.janitor is not None:
                self.janitor.forget(pid)
            exited.append((pid, os.waitstatus_to_exitcode(status)))
        if exited:
            self._end_strays()
        return exited

    def _end_strays(self) -> None:
        self.exits.end_strays(self._command_lines())

    def _helpers(self) -> list[int]:
        return []

    def _command_lines(self) -> set[bytes]:
        """How the interpreters that run workers are started: a process forked from one
        without exec shows the same command line."""
        return {processes.command_line(WORKER_ARGV), *self._adopted_lines}

    def _own_helper(self, pid: int) -> bool:
        """True when ``pid`` was the launcher's own helper process (now reaped)."""
        return False

    def failed(self, pid: int) -> bool:
        return False

    def succeeded(self, pid: int) -> None:
        pass


def spawn_worker(channel_end: socket.socket, sockets: Sequence[socket.socket],
                 output: int | None = None) -> int:
    """A fresh interpreter that runs a worker on ``channel_end`` and ``sockets``."""
    fds = [channel_end.fileno(), *(s.fileno() for s in sockets)]
    env = dict(os.environ, **{FDS_ENV: ",".join(map(str, fds))})
    return spawn(WORKER_ARGV, fds, env, output)


class SpawnLauncher(Processes):
    """A fresh interpreter per worker: slower, but always available."""

    def start(self, sockets: Sequence[socket.socket]) -> tuple[int, Channel]:
        channel, theirs = Channel.pair()
        with contextlib.closing(theirs):
            return self._started(spawn_worker(theirs, sockets, self.output)), channel

    def preload(self, modules: Sequence[str]) -> None:
        pass

    def prepare(self, sockets: Sequence[socket.socket]) -> None:
        pass

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        self._close_janitor()
