"""Workers forked from a warm template, and the choice of a launcher.

The template (:mod:`devreload.worker.template`) is a spawned interpreter that has
imported only libraries (the standard library and installed packages the previous worker
used, never watched files) and forks a worker on request. Forking skips interpreter
start-up and library imports, which is most of a restart. The forked worker is
re-parented to the monitor (a Linux child subreaper), so the monitor reaps every worker
the same way.

A forked worker must behave like a fresh one. When one fails where a fresh one might
not, the next worker is spawned fresh to find out whose failure it was: if the fresh one
starts, forking is wrong for this app and every worker is spawned from then on; if it
fails too, the app is broken, and forked workers' failures are the app's until one
succeeds. :class:`ForkMode` is that decision, apart from the processes.
"""

from __future__ import annotations

import contextlib
import enum
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from devreload import processes
from devreload.log import Logger, counted, first_names
from devreload.monitor.ahead import TEMPLATE_ARGV, spawn_template, take_ahead
from devreload.monitor.launch import ExitPool, Processes, spawn_worker
from devreload.wire.channel import Channel, ChannelClosed
from devreload.wire.messages import Adopt, Fork, Forked, Preload, Tainted

#: The longest the monitor waits for the template's answer to a fork.
FORK_TIMEOUT = 30.0


def excluded(module: str, exclude: Sequence[str]) -> bool:
    """Whether ``preload_exclude`` names ``module`` or a package it is in."""
    return any(module == e or module.startswith(e + ".") for e in exclude)


class Mode(enum.Enum):
    #: Workers are forked; an early failure of one may be the template's fault.
    FORK = "fork"
    #: Workers are forked; a fresh worker failed too, so failures are the app's until a
    #: forked worker succeeds again (no fresh retry for every typo).
    APP_BROKEN = "fork, the app is broken"
    #: A forked worker failed early: the next one is spawned fresh, to find out why.
    FRESH_NEXT = "fresh next"
    #: That fresh worker runs: its success or failure decides.
    VERIFYING = "verifying"
    #: A forked worker failed where a fresh one started: spawn every worker from now on.
    SPAWN_ONLY = "spawn only"


class ForkMode:
    """Whether the next worker is forked, and what a worker's failure or success says."""

    def __init__(self) -> None:
        self.mode = Mode.FORK
        #: Forked workers not yet known to have started well.
        self.forked: set[int] = set()
        #: The fresh worker started in VERIFYING mode.
        self.verifying: int | None = None

    def forks(self) -> bool:
        return self.mode not in (Mode.FRESH_NEXT, Mode.SPAWN_ONLY)

    def started(self, pid: int, forked: bool) -> None:
        if forked:
            self.forked.add(pid)
        elif self.mode is Mode.FRESH_NEXT:
            self.mode, self.verifying = Mode.VERIFYING, pid

    def failed(self, pid: int) -> bool:
        """The worker ``pid`` failed before it served; True when the next one is spawned
        fresh to tell whose failure it was."""
        if self.mode is Mode.VERIFYING and pid == self.verifying:
            self.mode, self.verifying = Mode.APP_BROKEN, None
            return False
        if pid in self.forked and self.mode in (Mode.FORK, Mode.VERIFYING):
            self.mode = Mode.FRESH_NEXT
            return True
        return False

    def succeeded(self, pid: int) -> bool:
        """The worker ``pid`` started well; True when that makes forking wrong for this app
        (a fresh worker started where a forked one failed)."""
        if pid in self.forked:
            self.forked.discard(pid)
            if self.mode is Mode.APP_BROKEN:
                self.mode = Mode.FORK
        if self.mode is Mode.VERIFYING and pid == self.verifying:
            self.mode, self.verifying = Mode.SPAWN_ONLY, None
            return True
        return False


@dataclass
class Spare:
    """A worker forked ahead of time, waiting on its line for an Adopt: a restart then
    costs no fork. It has imported nothing of the app's. ``pid`` is None until the
    template's answer has been read."""

    line: Channel
    pid: int | None = None


class TemplateLauncher(Processes):
    """Forks workers from a template interpreter that keeps the libraries imported.

    The worker reports which libraries it imported before its app's own code ran
    (:mod:`devreload.worker.preload`); only those are preloaded, minus ``exclude`` (module
    names, their submodules too), and none at all unless ``preload``.
    """

    def __init__(self, log: Logger, preload: bool = True, exclude: Sequence[str] = (),
                 exits: ExitPool | None = None, output: int | None = None) -> None:
        super().__init__(exits, output)
        self.log = log
        self.preloading = preload
        self.exclude = tuple(exclude)
        self.wanted: list[str] = []
        self.excluded: set[str] = set()
        self.ctl: Channel | None = None
        self.pid = 0
        self.mode = ForkMode()
        self.spare: Spare | None = None

    def start(self, sockets: Sequence[socket.socket]) -> tuple[int, Channel]:
        channel, theirs = Channel.pair()
        with contextlib.closing(theirs):
            return self._start(theirs, sockets), channel

    def _start(self, channel_end: socket.socket, sockets: Sequence[socket.socket]) -> int:
        if not self.mode.forks():
            self._drop_spare()
            return self._spawned(channel_end, sockets)
        fds = [channel_end.fileno(), *(s.fileno() for s in sockets)]
        pid = self._adopt_spare(fds)
        if pid is not None:
            return pid
        try:
            return self._fork(Fork(), fds)
        except (ChannelClosed, OSError) as exc:
            self.log.debug("worker template unavailable (%s); spawning instead", exc)
            self._discard()
            return self._started(spawn_worker(channel_end, sockets, self.output))

    def _spawned(self, channel_end: socket.socket, sockets: Sequence[socket.socket]) -> int:
        pid = self._started(spawn_worker(channel_end, sockets, self.output))
        self.mode.started(pid, forked=False)
        return pid

    def _adopt_spare(self, fds: list[int]) -> int | None:
        """The spare, told to run as the next worker with ``fds``; None without one."""
        with contextlib.suppress(ChannelClosed, OSError):
            self._collect_spare()
        spare, self.spare = self.spare, None
        if spare is None:
            return None
        with contextlib.closing(spare.line):
            if spare.pid is None:
                return None
            try:
                spare.line.send(Adopt(), fds=fds)
                return spare.pid
            except (ChannelClosed, OSError):
                self.kill(spare.pid)
                return None

    def prepare(self, sockets: Sequence[socket.socket]) -> None:
        """Ask the template for a spare without waiting for it: the template may still be
        importing what the last worker reported; its reply is read at the next start."""
        if self.spare is not None or not self.mode.forks() or not self.preloading or not sockets:
            return  # only servers get one: a fork costs a program with no sockets little
        line, theirs = socket.socketpair()
        try:
            self._ensure_template().send(Fork(spare=True), fds=[theirs.fileno()])
            self.spare = Spare(Channel(line))
        except (ChannelClosed, OSError):
            line.close()
            self._discard()
        finally:
            theirs.close()

    def _collect_spare(self) -> None:
        spare = self.spare
        if spare is None or spare.pid is not None:
            return
        try:
            spare.pid = self._forked()
        except BaseException:
            self.spare = None
            spare.line.close()
            raise

    def _drop_spare(self) -> None:
        with contextlib.suppress(ChannelClosed, OSError):
            self._collect_spare()  # its reply must not be taken for the next worker's
        spare, self.spare = self.spare, None
        if spare is not None:
            spare.line.close()  # it ends on its own when its line closes
            if spare.pid is not None:
                self.kill(spare.pid)

    def _ensure_template(self) -> Channel:
        if self.ctl is None:
            modules = tuple(m for m in self.wanted if m not in self.excluded)
            ahead = take_ahead(modules, self.output)
            if ahead is not None:
                self.pid, line = ahead.pid, ahead.line
                self.log.debug("worker template %d started ahead, with the monitor", self.pid)
            else:
                self.pid, line = spawn_template(modules, self.output)
                self.log.debug("worker template %d started", self.pid)
            self.ctl = Channel(line)
            self.ctl.sock.settimeout(FORK_TIMEOUT)
        return self.ctl

    def _fork(self, request: Fork, fds: list[int]) -> int:
        self._ensure_template().send(request, fds=fds)
        return self._forked()

    def _forked(self) -> int:
        """The pid of the next worker the template reports (it answers in order)."""
        while True:
            if self.ctl is None:
                raise ChannelClosed("the worker template is gone")
            reply = self.ctl.recv()
            if isinstance(reply, Forked):
                if reply.pid <= 0:  # it died before it could say its pid
                    raise ChannelClosed("the worker template could not fork")
                self.mode.started(reply.pid, forked=True)
                return self._started(reply.pid)
            if isinstance(reply, Tainted):
                self._tainted(reply.module)

    def reap(self) -> list[tuple[int, int]]:
        exited = super().reap()
        spare = self.spare
        if spare is not None and any(pid == spare.pid for pid, _ in exited):
            spare.line.close()
            self.spare = None
        return exited

    def _tainted(self, module: str) -> None:
        """A library that starts threads at import makes forking unsafe: never preload it."""
        self.log.debug("not preloading %s: it starts a thread on import", module)
        self.excluded.add(module)
        self._discard()

    def failed(self, pid: int) -> bool:
        if not self.mode.failed(pid):
            return False
        self.log.debug("a forked worker failed; trying a fresh one")
        self._drop_spare()
        return True

    def succeeded(self, pid: int) -> None:
        if not self.mode.succeeded(pid):
            return
        self._discard()
        self.log.warning(
            "a worker forked from the template failed where a fresh one starts: a library "
            "keeps state from its import; starting fresh workers from now on (name the "
            "library in preload_exclude, or set preload = off)"
        )

    def preload(self, modules: Sequence[str]) -> None:
        new = [
            m for m in modules
            if m not in self.excluded and m not in self.wanted and not excluded(m, self.exclude)
        ]
        if not new or not self.preloading or self.mode.mode is Mode.SPAWN_ONLY:
            return
        self.log.debug("preloading %s in the worker template: %s",
                       counted(len(new), "more library module"), first_names(new))
        self.wanted.extend(new)
        try:
            self._ensure_template().send(Preload(tuple(new)))
        except (ChannelClosed, OSError):
            self._discard()

    def _discard(self) -> None:
        self._drop_spare()
        if self.ctl is not None:
            self.ctl.close()
            self.ctl = None
            if self.pid:
                processes.kill_all([self.pid])

    def _own_helper(self, pid: int) -> bool:
        if pid != self.pid:
            return False
        self.pid = 0
        self._discard()
        return True

    def _end_strays(self) -> None:
        with contextlib.suppress(ChannelClosed, OSError):
            self._collect_spare()  # a spare not yet named looks like a stray
        super()._end_strays()

    def _helpers(self) -> list[int]:
        spare = self.spare.pid if self.spare is not None else None
        return [pid for pid in (self.pid, spare) if pid]

    def _command_lines(self) -> set[bytes]:
        return super()._command_lines() | {processes.command_line(TEMPLATE_ARGV)}

    def refresh(self) -> None:
        self._discard()

    def close(self) -> None:
        self._discard()
        self._close_janitor()
