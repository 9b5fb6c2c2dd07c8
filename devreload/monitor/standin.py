"""The first worker of a program that imported its app before it called ``serve()``.

Such a monitor holds the whole app already. A fresh worker would import it all again
before the first request is answered: twice the start of a big app. Instead the monitor
forks itself right after binding, and that fork (the *stand-in*) serves the app it has,
exactly as the program would without reload. A worker started the usual way then
imports the app behind it, builds it, and takes over at its gate (the stand-in stops
accepting only then); from there on every worker starts the usual way, reports what it
read while importing, and tells the template what to preload. The stand-in does not scan
its modules: the monitor has the same ones, and watches them from its start; and it writes
the bytecode caches the program's imports compiled (held since ``import devreload``).

Only where workers are forked anyway (Linux), with preloading on, and only from a
process with a single thread: a fork keeps no other thread, so an app that started one
at import would run without it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from devreload import platforms
from devreload.log import Logger
from devreload.monitor.ahead import LAUNCHER_ENV, forget_ahead
from devreload.wire.channel import Channel


@dataclass
class StandIn:
    """The monitor's own fork, serving; the monitor's end of its channel."""

    pid: int
    channel: Channel


def why_not(preload: bool) -> str | None:
    """Why this process may not fork its first worker; None when it may."""
    if not preload:
        return "preloading is off"
    if not platforms.current().forks or os.environ.get(LAUNCHER_ENV) == "spawn":
        return "workers are not forked here"
    if threading.active_count() > 1 or _os_threads() > 1:
        return "the program runs more than one thread (a fork would keep only this one)"
    return None


def _os_threads() -> int:
    """Threads of this process, the ones Python did not start too (a C library's)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


def fork_stand_in(serve: Callable[[], object], bound: Sequence[socket.socket],
                  log: Logger, preload: bool) -> StandIn | None:
    """Fork the first worker, which runs ``serve()`` on ``bound``; None (with the reason,
    at debug level) when this process may not, and the first worker starts the usual way."""
    reason = why_not(preload)
    if reason is not None:
        log.debug("the first worker imports the app anew: %s", reason)
        return None
    for stream in (sys.stdout, sys.stderr):  # what it printed is not printed again
        if stream is not None:
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
    channel, theirs = Channel.pair()
    try:
        if sys.platform == "win32":  # (never: why_not says so)
            raise OSError("no fork on Windows")
        pid = os.fork()
    except OSError as exc:
        log.debug("the first worker imports the app anew: %s", exc)
        channel.close()
        theirs.close()
        return None
    if pid == 0:
        _become_worker(channel, theirs, bound, serve)
    theirs.close()
    channel.peer = pid
    log.debug("worker %d forked from the monitor, with the app it imported", pid)
    return StandIn(pid, channel)


def _become_worker(channel: Channel, theirs: socket.socket, bound: Sequence[socket.socket],
                   serve: Callable[[], object]) -> None:
    """The stand-in's side of the fork: it leads a session of its own (the monitor
    signals its group), keeps none of the monitor's ends, and lives as a worker."""
    from devreload.worker.runtime import run

    if sys.platform == "win32":  # (never: why_not says so)
        raise OSError("no fork on Windows")
    os.setsid()
    channel.close()
    forget_ahead()
    run(theirs.detach(), [sock.detach() for sock in bound], entry=serve)
