"""The worker's handle on its monitor: the one process-global of a worker.

``get_reloader()`` and ``is_active()`` ask for it; the module-level ``watch_files``,
``trigger_reload`` and friends do nothing when no monitor is there, so applications
may call them unconditionally.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence

from devreload import processes
from devreload.wire.channel import Channel, ChannelClosed
from devreload.wire.messages import (
    AtGate,
    Connections,
    ConnectionsTaken,
    FromWorker,
    Go,
    Heard,
    Hurry,
    Leave,
    Message,
    Milestone,
    Ready,
    Released,
    ReloadAsked,
    RestartPending,
    ShutdownAsked,
    StandDown,
    StaticChanged,
    Watch,
)
from devreload.worker.changeover import Changeover
from devreload.worker.handoff import ConnectionHandoff


class ReloaderProxy:
    """The worker's handle on its monitor."""

    def __init__(
        self,
        channel: Channel,
        sockets: list[socket.socket],
        report_modules: Callable[[], None] | None = None,
        changeover: Changeover | None = None,
        heard: threading.Event | None = None,
        answered: threading.Event | None = None,
    ) -> None:
        self._channel = channel
        #: Set when the monitor has taken a report that asked for an answer.
        self._heard = heard or threading.Event()
        #: Set once the app's first response has been sent (see ``first_response``).
        self.answered = answered or threading.Event()
        self._report_modules = report_modules
        self._static_listeners: list[Callable[[str], None]] = []
        self._restart_pending = threading.Event()
        #: Listening sockets the monitor bound and handed over, in the order it was given them.
        self.sockets = sockets
        #: Keep-alive connections between this worker and the ones before and after it.
        self.connections = ConnectionHandoff(channel)
        #: Its gate (a new worker) and its release (an old one).
        self.changeover = changeover or Changeover()

    def watch_files(self, paths: Iterable[str | os.PathLike[str]]) -> None:
        """Add files or glob patterns to the monitor's watch list (relative to the cwd)."""
        self._send(Watch(tuple(os.path.abspath(os.fspath(p)) for p in paths)))

    def watch_static(self, paths: Iterable[str | os.PathLike[str]]) -> None:
        """Files or folders served as static files: a change is pushed to open pages (a
        stylesheet swapped in place), never a restart."""
        self._send(Watch(tuple(os.path.abspath(os.fspath(p)) for p in paths), static=True))

    def trigger_reload(self) -> None:
        """Ask for a fresh worker now, whatever the files say."""
        self._send(ReloadAsked())

    def graceful_shutdown(self) -> None:
        """Ask the monitor to stop this worker and exit."""
        self._send(ShutdownAsked())

    def notify_ready(self) -> None:
        """Tell the monitor the app is answering; the restart is timed up to here.

        The modules imported so far are reported first, so that everything the app
        loaded is watched before anyone can see it answer. A worker started while the
        previous one still accepted waits here for its Go: no request after a change is
        answered by the code from before it. Told to stand down instead, it stops."""
        if self._report_modules is not None:
            self._report_modules()
        if self.changeover.gated:
            self._send(AtGate(time.time()))
        if not self.changeover.wait_for_go():
            # The server's own SIGTERM handler runs before this returns: it stops at once.
            signal.raise_signal(signal.SIGTERM)
            return
        self._send(Ready())

    def milestone(self, phase: str) -> None:
        """Tell the monitor a step of this worker's start happened now, for its reload
        timeline (-v)."""
        self._send(Milestone(phase, time.time()))

    def notify_released(self) -> None:
        """Tell the monitor this worker no longer accepts (its requests may still be
        finishing): the next one may accept from now on."""
        if self.changeover.release():
            self._send(Released())

    def should_restart(self) -> bool:
        """True once a change is waiting (under a cooperative monitor): leave at the next
        safe point by exiting with ``EXIT_RELOAD`` (75)."""
        return self._restart_pending.is_set()

    def add_static_listener(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(path)`` (from a background thread) when a static file changes:
        the monitor does not restart the worker for those, it tells it instead."""
        self._static_listeners.append(callback)

    def _dispatch(self, message: Message, fds: Sequence[int] = ()) -> None:
        if isinstance(message, Connections):
            self.connections._arrived(message, fds)
            return
        for fd in fds:  # no other message carries any
            os.close(fd)
        if isinstance(message, ConnectionsTaken):
            self.connections._confirmed_one()
        elif isinstance(message, StaticChanged):
            for callback in list(self._static_listeners):
                callback(message.path)
        elif isinstance(message, RestartPending):
            self._restart_pending.set()
        elif isinstance(message, Go):
            self.changeover.go()
        elif isinstance(message, StandDown):
            self.changeover.stand_down()
        elif isinstance(message, Leave):
            self.changeover.dismiss()
        elif isinstance(message, Hurry):
            self.changeover.hurry()
        elif isinstance(message, Heard):
            self._heard.set()

    def _send(self, message: FromWorker) -> None:
        try:
            self._channel.send(message)
        except ChannelClosed:
            processes.end_own_tree()


_proxy: ReloaderProxy | None = None


def get_reloader() -> ReloaderProxy:
    """The proxy to the monitor; RuntimeError when this process is not a worker."""
    if _proxy is None:
        raise RuntimeError("this process is not running under a devreload monitor")
    return _proxy


def handoff_for(sockets: Sequence[socket.socket]) -> ConnectionHandoff | None:
    """The hand-over of keep-alive connections, for a server listening on ``sockets``: only
    a worker serving the monitor's own sockets has a next worker to hand them to."""
    if _proxy is None or not sockets:
        return None
    if all(any(sock is ours for ours in _proxy.sockets) for sock in sockets):
        return _proxy.connections
    return None


def is_active() -> bool:
    return _proxy is not None


def watch_files(paths: Iterable[str | os.PathLike[str]]) -> None:
    """Watch these files too, when running under a monitor; otherwise do nothing."""
    if _proxy is not None:
        _proxy.watch_files(paths)


def milestone(phase: str) -> None:
    """Tell the monitor a step of this worker's start happened now, for its reload
    timeline (-v); nothing outside a monitor."""
    if _proxy is not None:
        _proxy.milestone(phase)


def first_response() -> None:
    """The app's first response has been sent: the last step of the reload timeline (-v),
    and what the bytecode caches the start compiled wait for (their writes would slow it)."""
    if _proxy is not None:
        _proxy.answered.set()
        _proxy.milestone("first response served")


def trigger_reload() -> None:
    """Restart the app, when running under a monitor; otherwise do nothing."""
    if _proxy is not None:
        _proxy.trigger_reload()


def should_restart() -> bool:
    """Whether the monitor waits for this worker to leave (a cooperative restart is
    pending); always False when no monitor runs."""
    return _proxy is not None and _proxy.should_restart()


def activate(proxy: ReloaderProxy) -> None:
    """Make ``proxy`` this process's: called once, by the worker runtime."""
    global _proxy
    _proxy = proxy
