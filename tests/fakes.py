"""Fakes for the monitor's restart loop: a clock that moves when told, a launcher without
processes, a file monitor that only remembers, a logger that keeps its lines. Nothing else
is faked: the loop is the real one."""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable, Sequence
from typing import Any

from devreload.wire.channel import Channel, ChannelClosed

#: Fake pids start here: above any real pid_max, so a stray signal could hit nothing.
FIRST_PID = 10**7


class FakeClock:
    """Monotonic time that moves only when a test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        assert seconds >= 0, "a monotonic clock never goes back"
        self.now += seconds


class FakeLauncher:
    """The Launcher protocol without processes: pids are numbers, signals are records.

    A worker that obeys SIGTERM is marked exited when signalled; SIGKILL always ends
    one. The strategy hears of an exit only through ``reap``, after a SIGCHLD event,
    as with real processes.
    """

    def __init__(self) -> None:
        self.started: list[int] = []
        self.signals: list[tuple[int, int]] = []
        self.preloaded: list[tuple[str, ...]] = []
        self.closed = 0
        self.refreshed = 0
        self.prepared = 0
        self.obeys_sigterm = True
        #: Exits are told through ``notify_exits`` (where there is no SIGCHLD).
        self.notifies = False
        self._notify: Callable[[], None] = lambda: None
        self.retry_failures = False
        self.failures: list[int] = []
        self.successes: list[int] = []
        self._exited: list[tuple[int, int]] = []
        self._dead: set[int] = set()
        #: Each worker's end of its channel, to read what the monitor told it (kept, and
        #: to be closed by the test, only when asked for).
        self.keep_ends = False
        #: Workers it did not start (a stand-in), in order.
        self.adopted: list[int] = []
        self.ends: dict[int, socket.socket] = {}

    def start(self, sockets: Sequence[socket.socket]) -> tuple[int, Channel]:
        channel, theirs = Channel.pair()
        pid = FIRST_PID + len(self.started)
        self.started.append(pid)
        if self.keep_ends:
            self.ends[pid] = theirs
        else:
            theirs.close()
        return pid, channel

    def adopt(self, pid: int) -> bool:
        self.adopted.append(pid)
        return True

    def notify_exits(self, notify: Callable[[], None]) -> None:
        """Called only with ``notifies`` (Windows's way); else a test sends SIGCHLD."""
        self._notify = notify

    def preload(self, modules: Sequence[str]) -> None:
        self.preloaded.append(tuple(modules))

    def prepare(self, sockets: Sequence[socket.socket]) -> None:
        self.prepared += 1

    def stop(self, pid: int, channel: Channel) -> None:
        self.signal(pid, signal.SIGTERM)

    def kill(self, pid: int) -> None:
        self.signal(pid, signal.SIGKILL)

    def signal(self, pid: int, sig: int) -> None:
        assert pid in self.started or pid in self.adopted, \
            f"signal {sig} sent to {pid}, never started nor adopted here"
        self.signals.append((pid, sig))
        if sig == signal.SIGKILL or (sig == signal.SIGTERM and self.obeys_sigterm):
            self.exit(pid, -sig)

    def exit(self, pid: int, code: int) -> None:
        """The worker ``pid`` ends with ``code`` (a zombie until reaped)."""
        if pid not in self._dead:
            self._dead.add(pid)
            if pid in self.ends:
                # Its writes end with it: the monitor's reader sees the line close (what
                # the monitor sent it stays readable to ``told``).
                self.ends[pid].shutdown(socket.SHUT_WR)
            self._exited.append((pid, code))
            if self.notifies:
                self._notify()

    def reap(self) -> list[tuple[int, int]]:
        exited, self._exited = self._exited, []
        return exited

    def failed(self, pid: int) -> bool:
        """A failure of a worker is never this launcher's fault, unless a test says so."""
        self.failures.append(pid)
        return self.retry_failures

    def succeeded(self, pid: int) -> None:
        self.successes.append(pid)

    def refresh(self) -> None:
        self.refreshed += 1

    def close(self) -> None:
        self.closed += 1

    def told(self, pid: int) -> list[Any]:
        """Every message the monitor has sent the worker ``pid`` so far."""
        end = self.ends[pid]
        end.setblocking(False)
        channel, told = Channel(end), []
        try:
            while True:
                told.append(channel.recv())
        except (BlockingIOError, ChannelClosed):
            return told
        finally:
            end.setblocking(True)

    def sent(self, sig: int) -> list[int]:
        """The pids that were sent ``sig``, in order."""
        return [pid for pid, s in self.signals if s == sig]


class RecordingLogger:
    """The Logger protocol, keeping each formatted line with its level."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str]] = []

    def _add(self, level: str, msg: str, args: tuple[Any, ...]) -> None:
        self.records.append((level, msg % args if args else msg))

    def error(self, msg: str, *args: Any) -> None:
        self._add("error", msg, args)

    def warning(self, msg: str, *args: Any) -> None:
        self._add("warning", msg, args)

    def info(self, msg: str, *args: Any) -> None:
        self._add("info", msg, args)

    def debug(self, msg: str, *args: Any) -> None:
        self._add("debug", msg, args)

    def lines(self, level: str, containing: str = "") -> list[str]:
        return [text for lvl, text in self.records if lvl == level and containing in text]


class FakeFileMonitor:
    """A file monitor that sees no change, and remembers what it was asked to watch."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    def add_path(self, path: str) -> None:
        self.paths.append(path)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def join(self) -> None:
        pass
