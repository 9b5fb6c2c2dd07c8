"""The template process: a spawned interpreter that imports the libraries the last worker
used (never the app's own files) and forks each new worker on the monitor's request.

Forking skips interpreter start-up and library imports, which is most of a restart.
It returns from ``main`` only inside a freshly forked worker, which then runs as any
other (:func:`devreload.worker.runtime.run`).
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from collections.abc import Callable, Sequence

from devreload import processes
from devreload.wire.channel import Channel, ChannelClosed
from devreload.wire.contract import TEMPLATE_ENV
from devreload.wire.messages import Fork, Forked, Preload, Tainted
from devreload.worker.modules import scan_ahead
from devreload.worker.prefault import own_memory
from devreload.worker.runtime import run


def main() -> None:
    """The template process. Returns only inside a freshly forked worker."""
    fd, monitor, *modules = os.environ.pop(TEMPLATE_ENV).split(",")
    processes.prctl(processes.PR_SET_PDEATHSIG, processes.KILL)
    if os.getppid() != int(monitor):
        return
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]
    ctl = Channel.from_fd(int(fd))
    _preload(ctl, modules)
    scan_ahead()
    fds, spare = _serve_forks(ctl, scan_ahead)
    if spare:
        # Forked ahead of time: the restart that needs it sends the real channel.
        line = Channel.from_fd(fds[0])
        own_memory(line.readable)
        try:
            _, fds = line.recv_with_fds()
        except ChannelClosed:
            os._exit(0)
        line.close()
    run(fds[0], fds[1:])


def _serve_forks(ctl: Channel, scan_ahead: Callable[[], object]) -> tuple[list[int], bool]:
    while True:
        try:
            message, fds = ctl.recv_with_fds()
        except ChannelClosed:
            os._exit(0)
        if isinstance(message, Preload):
            _preload(ctl, message.modules)
            scan_ahead()
        elif isinstance(message, Fork):
            if _fork(ctl):
                return fds, message.spare
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
    """Double fork, so the worker is adopted by the monitor; True in the worker.

    The worker tells its pid itself, once it leads its own session: the monitor signals
    workers by process group, and a SIGTERM sent to a group not made yet is lost."""
    if sys.platform == "win32":
        raise OSError("no fork on Windows")
    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    middle = os.fork()
    if middle == 0:
        os.close(read_end)
        if os.fork() == 0:
            ctl.close()
            os.setsid()
            os.write(write_end, str(os.getpid()).encode())
            os.close(write_end)
            return True
        os._exit(0)
    os.close(write_end)
    worker_pid = int(os.read(read_end, 32) or b"0")
    os.close(read_end)
    ctl.send(Forked(worker_pid))
    os.waitpid(middle, 0)
    return False
