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

import ctypes
import importlib
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import Protocol

from devreload.channel import Channel, ChannelClosed
from devreload.log import Logger
from devreload.messages import Fork, Forked, Preload, Tainted

TEMPLATE_ENV = "DEVRELOAD_TEMPLATE_FD"
LAUNCHER_ENV = "DEVRELOAD_WORKER"
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
FORK_TIMEOUT = 30.0


class Launcher(Protocol):
    """Starts worker processes; the monitor owns (and reaps) every pid it returns."""

    def start(self, channel_end: socket.socket, sockets: Sequence[socket.socket]) -> int: ...

    def preload(self, modules: Sequence[str]) -> None:
        """Library modules the last worker imported; the next may start with them."""

    def signal(self, pid: int, sig: int) -> None:
        """Send ``sig`` to the worker ``pid`` and every process of its group."""

    def reap(self) -> list[tuple[int, int]]:
        """Workers that have exited since the last call, with their exit codes (negative:
        the signal); what is left of their process groups is killed."""

    def close(self) -> None: ...


class _Processes:
    """Workers are real processes, each leading its own session, reaped by the monitor."""

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
            if self._own_helper(pid):
                continue
            self.signal(pid, signal.SIGKILL)  # the worker's own children end with it
            exited.append((pid, os.waitstatus_to_exitcode(status)))
        return exited

    def _own_helper(self, pid: int) -> bool:
        """True when ``pid`` was the launcher's own helper process (now reaped)."""
        return False


def _prctl(option: int, value: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(option, value, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _python_argv(code: str) -> list[str]:
    flags: list[str] = subprocess._args_from_interpreter_flags()  # type: ignore[attr-defined]
    return [sys.executable, *flags, "-c", code]


def _spawn(code: str, fds: list[int], env: dict[str, str]) -> int:
    """posix_spawn rather than Popen: the monitor reaps its children itself."""
    for fd in fds:
        os.set_inheritable(fd, True)
    try:
        return os.posix_spawn(sys.executable, _python_argv(code), env, setsid=True)
    finally:
        for fd in fds:
            os.set_inheritable(fd, False)


class SpawnLauncher(_Processes):
    """A fresh interpreter per worker: slower, but always available."""

    def start(self, channel_end: socket.socket, sockets: Sequence[socket.socket]) -> int:
        from devreload.worker import FDS_ENV

        fds = [channel_end.fileno(), *(s.fileno() for s in sockets)]
        env = dict(os.environ, **{FDS_ENV: ",".join(map(str, fds))})
        return _spawn("from devreload.worker import main; main()", fds, env)

    def preload(self, modules: Sequence[str]) -> None:
        pass

    def close(self) -> None:
        pass


class TemplateLauncher(_Processes):
    """Forks workers from a template interpreter that keeps the libraries imported."""

    def __init__(self, log: Logger) -> None:
        self.log = log
        self.fallback = SpawnLauncher()
        self.wanted: list[str] = []
        self.excluded: set[str] = set()
        self.ctl: Channel | None = None
        self.pid = 0

    def _ensure_template(self) -> Channel:
        if self.ctl is None:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            env = dict(os.environ, **{TEMPLATE_ENV: f"{theirs.fileno()},{os.getpid()}"})
            self.pid = _spawn("from devreload.launch import template_main; template_main()",
                              [theirs.fileno()], env)
            theirs.close()
            self.ctl = Channel(ours)
            self.ctl.sock.settimeout(FORK_TIMEOUT)
            self.log.debug("worker template %d started", self.pid)
            modules = [m for m in self.wanted if m not in self.excluded]
            if modules:
                self.ctl.send(Preload(tuple(modules)))
        return self.ctl

    def start(self, channel_end: socket.socket, sockets: Sequence[socket.socket]) -> int:
        fds = [channel_end.fileno(), *(s.fileno() for s in sockets)]
        try:
            ctl = self._ensure_template()
            ctl.send(Fork(), fds=fds)
            while True:
                reply = ctl.recv()
                if isinstance(reply, Forked):
                    return reply.pid
                if isinstance(reply, Tainted):
                    self._tainted(reply.module)
        except (ChannelClosed, OSError) as exc:
            self.log.debug("worker template unavailable (%s); spawning instead", exc)
            self._discard()
            return self.fallback.start(channel_end, sockets)

    def _tainted(self, module: str) -> None:
        """A library that starts threads at import makes forking unsafe: never preload it."""
        self.log.debug("not preloading %s: it starts a thread on import", module)
        self.excluded.add(module)
        self._discard()

    def preload(self, modules: Sequence[str]) -> None:
        new = [m for m in modules if m not in self.excluded and m not in self.wanted]
        if not new:
            return
        self.wanted.extend(new)
        try:
            self._ensure_template().send(Preload(tuple(new)))
        except (ChannelClosed, OSError):
            self._discard()

    def _discard(self) -> None:
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

    def close(self) -> None:
        self._discard()


def choose_launcher(log: Logger) -> Launcher:
    """The template where the monitor can adopt forked workers (Linux), else spawn.
    ``DEVRELOAD_WORKER=spawn`` forces a fresh interpreter per worker."""
    if os.environ.get(LAUNCHER_ENV) != "spawn" and _prctl(PR_SET_CHILD_SUBREAPER, 1):
        return TemplateLauncher(log)
    return SpawnLauncher()


def template_main() -> None:
    """The template process. Returns only inside a freshly forked worker."""
    from devreload.worker import run

    fd, monitor = (int(x) for x in os.environ.pop(TEMPLATE_ENV).split(","))
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != monitor:
        return
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]
    fds = _serve_forks(Channel.from_fd(fd))
    run(fds[0], fds[1:])


def _serve_forks(ctl: Channel) -> list[int]:
    while True:
        try:
            message, fds = ctl.recv_with_fds()
        except ChannelClosed:
            os._exit(0)
        if isinstance(message, Preload):
            _preload(ctl, message.modules)
        elif isinstance(message, Fork):
            if _fork(ctl):
                return fds
            for fd in fds:
                os.close(fd)


def _preload(ctl: Channel, modules: Sequence[str]) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except BaseException:  # a library that fails here fails in the worker, visibly
            continue
        if threading.active_count() > 1:
            ctl.send(Tainted(name))
            os._exit(0)


def _fork(ctl: Channel) -> bool:
    """Double fork, so the worker is adopted by the monitor; True in the worker."""
    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    middle = os.fork()
    if middle == 0:
        os.close(read_end)
        worker = os.fork()
        if worker == 0:
            os.close(write_end)
            ctl.close()
            os.setsid()
            return True
        os.write(write_end, str(worker).encode())
        os._exit(0)
    os.close(write_end)
    worker_pid = int(os.read(read_end, 32) or b"0")
    os.close(read_end)
    os.waitpid(middle, 0)
    ctl.send(Forked(worker_pid))
    return False
