"""How a worker process comes to life: spawned fresh, or forked from a warm template.

Both launchers hand the new process the same things (its end of the channel and the
listening sockets) and put it in a session of its own; the monitor then sends it the
spec over the channel, so the worker's code does not care how it was started.

The template is a spawned interpreter that has imported only libraries (the standard
library and installed packages the previous worker used, never watched files) and
forks a worker on request. Forking skips interpreter start-up and library imports,
which is most of a restart. The forked worker is re-parented to the monitor (a
Linux child subreaper), so the monitor reaps every worker the same way.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from typing import Protocol

from devreload import processes
from devreload.log import Logger
from devreload.wire.channel import Channel, ChannelClosed
from devreload.wire.contract import FDS_ENV, TEMPLATE_ENV
from devreload.wire.messages import Adopt, Fork, Forked, Preload, Tainted

LAUNCHER_ENV = "DEVRELOAD_WORKER"
FORK_TIMEOUT = 30.0


class Launcher(Protocol):
    """Starts worker processes; the monitor owns (and reaps) every pid it returns."""

    def start(self, channel_end: socket.socket, sockets: Sequence[socket.socket]) -> int: ...

    def preload(self, modules: Sequence[str]) -> None:
        """Library modules the last worker imported; the next may start with them."""

    def prepare(self, sockets: Sequence[socket.socket]) -> None:
        """The monitor is idle: the launcher may get the next worker ready now."""

    def signal(self, pid: int, sig: int) -> None:
        """Send ``sig`` to the worker ``pid`` and every process of its group."""

    def reap(self) -> list[tuple[int, int]]:
        """Workers that have exited since the last call, with their exit codes (negative:
        the signal); what is left of their process groups is killed."""

    def failed(self, pid: int) -> bool:
        """The worker ``pid`` failed before it served: True when the launcher starts the next
        one another way (the failure may be the launcher's), so it is worth a retry now."""

    def succeeded(self, pid: int) -> None:
        """The worker ``pid`` started well (it serves, or ended without a crash)."""

    def close(self) -> None: ...


class _Processes:
    """Workers are real processes, each leading its own session, reaped by the monitor.

    When a worker exits, whatever it left running (it is a subreaper, so its detached
    descendants come back to the monitor) is ended too.
    """

    def __init__(self) -> None:
        self.janitor: Janitor | None = None
        #: Live workers: never taken for strays.
        self.workers: set[int] = set()

    def _started(self, pid: int) -> int:
        if self.janitor is None:
            self.janitor = Janitor()
        self.janitor.watch(pid)
        self.workers.add(pid)
        return pid

    def _close_janitor(self) -> None:
        if self.janitor is not None:
            self.janitor.close()

    def signal(self, pid: int, sig: int) -> None:
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def reap(self) -> list[tuple[int, int]]:
        exited = []
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if self._own_helper(pid) or (self.janitor is not None and pid == self.janitor.pid):
                continue
            self.signal(pid, signal.SIGKILL)  # the worker's own children end with it
            self.workers.discard(pid)
            if self.janitor is not None:
                self.janitor.forget(pid)
            exited.append((pid, os.waitstatus_to_exitcode(status)))
        if exited:
            self._end_strays()
        return exited

    def _end_strays(self) -> None:
        """Processes re-parented to the monitor that are none of its own: what exited
        workers left behind (a daemon, a ``setsid`` child)."""
        own = {self.janitor.pid if self.janitor else 0, *self._helpers()}
        for _ in range(processes.KILL_ROUNDS):
            strays = [p for p in processes.children_of(os.getpid())
                      if p not in own and not self._is_worker(p)
                      and processes.started_by_a_worker(p)]
            if not strays:
                return
            for pid in strays:
                processes.kill_tree(pid)
            processes.kill_all(strays)

    def _helpers(self) -> list[int]:
        return []

    def _is_worker(self, pid: int) -> bool:
        return pid in self.workers

    def _own_helper(self, pid: int) -> bool:
        """True when ``pid`` was the launcher's own helper process (now reaped)."""
        return False

    def failed(self, pid: int) -> bool:
        return False

    def succeeded(self, pid: int) -> None:
        pass


def _python_argv(code: str) -> list[str]:
    flags: list[str] = subprocess._args_from_interpreter_flags()  # type: ignore[attr-defined]
    return [sys.executable, *flags, "-c", code]


def _spawn(argv: list[str], fds: list[int], env: dict[str, str]) -> int:
    """posix_spawn rather than Popen: the monitor reaps its children itself. The new
    process gets ``fds`` and stdio, no other descriptor of the monitor's."""
    processes.close_on_exec(fds)
    for fd in fds:
        os.set_inheritable(fd, True)
    try:
        return os.posix_spawn(argv[0], argv, env, setsid=True)
    finally:
        for fd in fds:
            os.set_inheritable(fd, False)


class Janitor:
    """A tiny process that ends every worker's tree when the monitor dies, even by SIGKILL,
    and even when a worker is stuck in C code holding the GIL (its own threads cannot run
    then). It reads the pids of live workers from a pipe; EOF means the monitor is gone."""

    def __init__(self) -> None:
        read, self.pipe = os.pipe()
        argv = [sys.executable, "-I", "-S", processes.__file__, "janitor", str(read)]
        self.pid = _spawn(argv, [read], dict(os.environ))
        os.close(read)

    def _say(self, line: str) -> None:
        with contextlib.suppress(OSError):
            os.write(self.pipe, line.encode())

    def watch(self, pid: int) -> None:
        self._say(f"+{pid}\n")

    def forget(self, pid: int) -> None:
        self._say(f"-{pid}\n")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.pipe)


def _spawn_worker(channel_end: socket.socket, sockets: Sequence[socket.socket]) -> int:
    fds = [channel_end.fileno(), *(s.fileno() for s in sockets)]
    env = dict(os.environ, **{FDS_ENV: ",".join(map(str, fds))})
    return _spawn(_python_argv("from devreload.worker.runtime import main; main()"), fds, env)


class SpawnLauncher(_Processes):
    """A fresh interpreter per worker: slower, but always available."""

    def start(self, channel_end: socket.socket, sockets: Sequence[socket.socket]) -> int:
        return self._started(_spawn_worker(channel_end, sockets))

    def preload(self, modules: Sequence[str]) -> None:
        pass

    def prepare(self, sockets: Sequence[socket.socket]) -> None:
        pass

    def close(self) -> None:
        self._close_janitor()


class TemplateLauncher(_Processes):
    """Forks workers from a template interpreter that keeps the libraries imported.

    The worker reports which libraries it imported before its app's own code ran
    (:mod:`devreload.worker.preload`); only those are preloaded, minus ``exclude`` (module names,
    their submodules too), and none at all unless ``preload``. A forked worker that fails
    where a fresh one then starts means preloading is wrong for this app: from then on
    every worker is spawned, and that is said once.
    """

    def __init__(self, log: Logger, preload: bool = True, exclude: Sequence[str] = ()) -> None:
        super().__init__()
        self.log = log
        self.preloading = preload
        self.exclude = tuple(exclude)
        self.wanted: list[str] = []
        self.excluded: set[str] = set()
        self.ctl: Channel | None = None
        self.pid = 0
        self.forked: set[int] = set()
        self.spawn_next = False
        self.blame_app = False
        self.verifying: int | None = None
        self.spawn_only = False
        #: A worker forked ahead of time, waiting on its line for an Adopt: a restart
        #: then costs no fork. It has imported nothing of the app's.
        self.spare: tuple[int, Channel] | None = None
        #: The line of a spare asked for whose Forked reply is not read yet.
        self.spare_line: Channel | None = None

    def _ensure_template(self) -> Channel:
        if self.ctl is None:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            env = dict(os.environ, **{TEMPLATE_ENV: f"{theirs.fileno()},{os.getpid()}"})
            self.pid = _spawn(
                _python_argv("from devreload.worker.template import main; main()"),
                [theirs.fileno()], env,
            )
            theirs.close()
            self.ctl = Channel(ours)
            self.ctl.sock.settimeout(FORK_TIMEOUT)
            self.log.debug("worker template %d started", self.pid)
            modules = [m for m in self.wanted if m not in self.excluded]
            if modules:
                self.ctl.send(Preload(tuple(modules)))
        return self.ctl

    def start(self, channel_end: socket.socket, sockets: Sequence[socket.socket]) -> int:
        if self.spawn_only or self.spawn_next:
            self._drop_spare()
            pid = self._started(_spawn_worker(channel_end, sockets))
            if self.spawn_next:
                self.spawn_next, self.verifying = False, pid
            return pid
        fds = [channel_end.fileno(), *(s.fileno() for s in sockets)]
        with contextlib.suppress(ChannelClosed, OSError):
            self._collect_spare()
        if self.spare is not None:
            pid, line = self.spare
            self.spare = None
            try:
                line.send(Adopt(), fds=fds)
                return pid
            except (ChannelClosed, OSError):
                self.signal(pid, signal.SIGKILL)
            finally:
                line.close()
        try:
            return self._fork(Fork(), fds)
        except (ChannelClosed, OSError) as exc:
            self.log.debug("worker template unavailable (%s); spawning instead", exc)
            self._discard()
            return self._started(_spawn_worker(channel_end, sockets))

    def prepare(self, sockets: Sequence[socket.socket]) -> None:
        """Ask the template for a spare without waiting for it: the template may still be
        importing what the last worker reported; its reply is read at the next start."""
        busy = self.spare is not None or self.spare_line is not None
        if busy or self.spawn_only or self.spawn_next or not self.preloading:
            return
        line, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._ensure_template().send(Fork(spare=True), fds=[theirs.fileno()])
            self.spare_line = Channel(line)
        except (ChannelClosed, OSError):
            line.close()
            self._discard()
        finally:
            theirs.close()

    def _collect_spare(self) -> None:
        if self.spare_line is None:
            return
        line, self.spare_line = self.spare_line, None
        try:
            self.spare = (self._forked(), line)
        except BaseException:
            line.close()
            raise

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
                self.forked.add(reply.pid)
                return self._started(reply.pid)
            if isinstance(reply, Tainted):
                self._tainted(reply.module)

    def _drop_spare(self) -> None:
        with contextlib.suppress(ChannelClosed, OSError):
            self._collect_spare()  # its reply must not be taken for the next worker's
        if self.spare is not None:
            pid, line = self.spare
            self.spare = None
            line.close()  # it ends on its own when its line closes
            self.signal(pid, signal.SIGKILL)

    def reap(self) -> list[tuple[int, int]]:
        exited = super().reap()
        if self.spare is not None and any(pid == self.spare[0] for pid, _ in exited):
            self.spare[1].close()
            self.spare = None
        return exited

    def _tainted(self, module: str) -> None:
        """A library that starts threads at import makes forking unsafe: never preload it."""
        self.log.debug("not preloading %s: it starts a thread on import", module)
        self.excluded.add(module)
        self._discard()

    def failed(self, pid: int) -> bool:
        if pid == self.verifying:
            # A fresh worker fails too: the app is broken. Until a forked worker succeeds
            # again, its failures are taken for the app's (no retry for every typo).
            self.verifying = None
            self.blame_app = True
            return False
        if pid in self.forked and not self.spawn_only and not self.blame_app:
            self.log.debug("a forked worker failed; trying a fresh one")
            self.spawn_next = True
            self._drop_spare()
            return True
        return False

    def succeeded(self, pid: int) -> None:
        if pid in self.forked:
            self.forked.discard(pid)
            self.blame_app = False
        if pid != self.verifying:
            return
        self.verifying = None
        self.spawn_only = True
        self._discard()
        self.log.warning(
            "a worker forked from the template failed where a fresh one starts: a library "
            "keeps state from its import; starting fresh workers from now on (name the "
            "library in preload_exclude, or set preload = off)"
        )

    def preload(self, modules: Sequence[str]) -> None:
        new = [
            m for m in modules
            if m not in self.excluded and m not in self.wanted and not self._is_excluded(m)
        ]
        if not new or not self.preloading or self.spawn_only:
            return
        shown = ", ".join(new[:8]) + (f" (+{len(new) - 8} more)" if len(new) > 8 else "")
        self.log.debug("preloading %d more library modules in the worker template: %s",
                       len(new), shown)
        self.wanted.extend(new)
        try:
            self._ensure_template().send(Preload(tuple(new)))
        except (ChannelClosed, OSError):
            self._discard()

    def _is_excluded(self, module: str) -> bool:
        return any(module == e or module.startswith(e + ".") for e in self.exclude)

    def _discard(self) -> None:
        self._drop_spare()
        if self.ctl is not None:
            self.ctl.close()
            self.ctl = None
            if self.pid:
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def _own_helper(self, pid: int) -> bool:
        if pid != self.pid:
            return False
        self.pid = 0
        self._discard()
        return True

    def _helpers(self) -> list[int]:
        return [self.pid] if self.pid else []

    def close(self) -> None:
        self._discard()
        self._close_janitor()


def choose_launcher(log: Logger, preload: bool = True, exclude: Sequence[str] = ()) -> Launcher:
    """The template where the monitor can adopt forked workers (Linux), else spawn.
    ``DEVRELOAD_WORKER=spawn`` forces a fresh interpreter per worker."""
    if os.environ.get(LAUNCHER_ENV) != "spawn" and processes.prctl(
        processes.PR_SET_CHILD_SUBREAPER, 1
    ):
        return TemplateLauncher(log, preload, exclude)
    return SpawnLauncher()
