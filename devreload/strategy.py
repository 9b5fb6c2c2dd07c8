"""The monitor's loop: it runs the worker and decides when to replace it.

Every source of news (signals, file monitor threads, the channel readers, the
terminal) only queues an event (:mod:`devreload.messages`); one loop in
``ReloadStrategy.run`` decides. Signal handlers put on a ``SimpleQueue``, whose ``put``
is safe to call from them.
"""

from __future__ import annotations

import math
import queue
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from devreload.channel import Channel, ChannelClosed
from devreload.imports import current_program
from devreload.launch import Launcher, choose_launcher
from devreload.log import Logger, default_logger
from devreload.messages import (
    EnterPressed,
    Event,
    Failed,
    FileChanged,
    FromWorker,
    Modules,
    Ready,
    ReloadAsked,
    ReloadRequested,
    ShutdownAsked,
    SignalReceived,
    Spec,
    Trigger,
    Watch,
    WorkerSaid,
)
from devreload.terminal import Terminal
from devreload.worker import EXIT_RELOAD

#: The quiet window that folds a burst of changes into one restart (seconds).
DEFAULT_RELOAD_INTERVAL = 0.05
#: How long a worker may take to stop after SIGTERM before it is killed (seconds).
DEFAULT_SHUTDOWN_INTERVAL = 1.5
#: The longest wait before restarting a worker that keeps exiting 75 at once.
MAX_BACKOFF = 5.0
#: A worker that exits 75 sooner than this after its start counts as a quick exit.
QUICK_EXIT = 1.0
#: The entry point that runs a script or ``-m`` module as ``__main__`` in the worker.
RUN_PROGRAM = "devreload.worker:run_program"


@dataclass
class Worker:
    """The monitor's record of one worker process."""

    pid: int
    channel: Channel
    started: float
    #: Wall-clock start, to compare with file mtimes.
    born: float = field(default_factory=time.time)
    ready: bool = False


@dataclass
class Restart:
    """A restart in progress: what asked for it, and when."""

    triggers: list[Trigger]
    began: float
    last: float = 0.0

    def describe(self) -> str:
        """``views.py (+2 more) changed``, or the reason a restart was asked for."""
        first = self.triggers[0]
        more = len(set(self.triggers)) - 1
        text = f"{first.describe()} (+{more} more)" if more else first.describe()
        return f"{text} changed" if isinstance(first, FileChanged) else text


class ReloadStrategy:
    """The monitor's decisions, one loop over queued events.

    Subclass it for another trigger: call ``request_reload()`` from any thread (a timer,
    a message queue, a webhook) and override ``should_restart`` to veto. ``startup``,
    ``restart`` and ``shutdown`` may be extended; call the base method.
    """

    #: The clock every deadline is read from (a test may drive the loop with its own).
    clock: Callable[[], float] = staticmethod(time.monotonic)

    def __init__(
        self,
        worker_path: str | Callable[..., Any],
        *,
        reload_interval: float = DEFAULT_RELOAD_INTERVAL,
        shutdown_interval: float = DEFAULT_SHUTDOWN_INTERVAL,
        logger: Logger | None = None,
        worker_args: Sequence[Any] | None = None,
        worker_kwargs: Mapping[str, Any] | None = None,
        before_reload: Callable[[], None] | None = None,
        sockets: Sequence[socket.socket] = (),
        worker_announces_ready: bool = False,
        launcher: Launcher | None = None,
    ) -> None:
        if reload_interval < 0 or shutdown_interval < 0:
            raise ValueError("reload_interval and shutdown_interval must not be negative")
        self.worker_path, self.worker_args = _worker_entry(worker_path, worker_args)
        self.worker_kwargs = dict(worker_kwargs or {})
        self.reload_interval = reload_interval
        self.shutdown_interval = shutdown_interval
        self.log: Logger = logger or default_logger()
        self.before_reload = before_reload
        self.sockets = list(sockets)
        self.worker_announces_ready = worker_announces_ready
        self.launcher = launcher or choose_launcher(self.log)
        self.events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self.worker: Worker | None = None
        self.stopping: dict[int, float] = {}  # pid -> when to SIGKILL its group
        self._stopped_channels: dict[int, Channel] = {}
        self.restart_state: Restart | None = None
        self.timing: Restart | None = None
        self.crashed = False
        self.last_error = ""
        self.quick_exits = 0
        self.exit_code: int | None = None
        self._terminal = Terminal()

    # -- the hooks -------------------------------------------------------------------

    def startup(self) -> None:
        """Start the first worker."""
        self._start_worker()

    def should_restart(self, trigger: Trigger) -> bool:
        """Whether this trigger (a changed file, or another request) restarts the worker."""
        return True

    def restart(self, trigger: Trigger) -> None:
        """Begin a restart: stop the worker now; the new one starts after a quiet window."""
        now = self.clock()
        if self.restart_state is not None:
            self.restart_state.triggers.append(trigger)
            self.restart_state.last = now
            return
        if self.before_reload is not None:
            self.before_reload()
        self.restart_state = Restart([trigger], began=now, last=now)
        self._stop_worker()

    def shutdown(self) -> None:
        """Release what the monitor holds."""
        self.launcher.close()
        for sock in self.sockets:
            sock.close()
        self._terminal.restore()

    def on_crash(self, error: str) -> None:
        """The worker died; ``error`` is its traceback (or one line). Called again if a
        fuller report arrives after the exit."""

    def on_recover(self) -> None:
        """A new worker is about to start after a crash."""

    def on_modules(self, files: Sequence[str], since: float) -> None:
        """Source files imported by a worker started at ``since`` (wall clock)."""

    def on_watch(self, paths: Sequence[str], since: float | None = None) -> None:
        """Paths a worker started at ``since`` asked to watch."""

    # -- the loop --------------------------------------------------------------------

    def request_reload(self, reason: str = "reload requested") -> None:
        """Thread-safe: ask for a restart."""
        self.events.put(ReloadRequested(reason))

    def run(self) -> int:
        """Run until the worker exits 0 or the monitor is told to stop; the exit code."""
        previous = self._install_signals()
        try:
            self.startup()
            while not (self.exit_code is not None and self.worker is None and not self.stopping):
                try:
                    event: Event | None = self.events.get(timeout=self._timeout())
                except queue.Empty:
                    event = None
                if event is not None:
                    self.handle(event)
                self._advance()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.shutdown()
        return self.exit_code or 0

    def _install_signals(self) -> dict[int, Any]:
        put = self.events.put
        previous: dict[int, Any] = {}
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
            previous[sig] = signal.signal(sig, lambda signum, frame: put(SignalReceived(signum)))
        return previous

    def _timeout(self) -> float | None:
        # A killed worker's deadline is infinite: only SIGCHLD can end that wait.
        deadlines = [d for d in self.stopping.values() if math.isfinite(d)]
        if self.restart_state is not None and self.exit_code is None and not self.stopping:
            # While the old worker stops, only its exit (or its kill deadline) can start the
            # next one: the quiet window's end is no reason to wake up.
            deadlines.append(self.restart_state.last + self.reload_interval)
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - self.clock())

    def handle(self, event: Event) -> None:
        """Act on one event; subclasses extend it for their own kinds."""
        if isinstance(event, SignalReceived):
            self._on_signal(event.signum)
        elif isinstance(event, WorkerSaid):
            self._on_message(event.worker, event.message)
        elif isinstance(event, (FileChanged, ReloadRequested)):
            self._trigger(event)
        elif isinstance(event, EnterPressed) and self.crashed:
            self._trigger_fresh("Enter pressed")

    def _trigger(self, trigger: Trigger) -> None:
        if self.exit_code is None and self.should_restart(trigger):
            self.restart(trigger)

    def _trigger_fresh(self, reason: str) -> None:
        """A restart asked for by hand also drops the template, so that libraries
        upgraded since (``pip install -U``) are imported anew."""
        self.launcher.close()
        self._trigger(ReloadRequested(reason))

    def _advance(self) -> None:
        now = self.clock()
        for pid, deadline in list(self.stopping.items()):
            if now >= deadline:
                self.log.debug("worker %d did not stop in %.1f s; killing it", pid,
                               self.shutdown_interval)
                self.launcher.signal(pid, signal.SIGKILL)
                self.stopping[pid] = float("inf")
        pending = self.restart_state
        if (
            pending is not None
            and self.exit_code is None
            and self.worker is None
            and not self.stopping
            and now >= pending.last + self.reload_interval
        ):
            self.restart_state = None
            self.timing = pending
            self._start_worker()

    def _on_signal(self, signum: int) -> None:
        if signum == signal.SIGCHLD:
            self._reap()
        elif signum == signal.SIGHUP:
            self._trigger_fresh("SIGHUP")
        elif self.exit_code is not None:
            for pid in list(self.stopping) + ([self.worker.pid] if self.worker else []):
                self.launcher.signal(pid, signal.SIGKILL)
        else:
            self._exit(0)

    def _exit(self, code: int) -> None:
        self.exit_code = code
        self.crashed = False
        self._stop_worker()

    # -- workers ---------------------------------------------------------------------

    def _start_worker(self) -> None:
        if self.crashed:
            self.crashed = False
            self.on_recover()
        self.last_error = ""
        channel, theirs = Channel.pair()
        born = time.time()
        try:
            pid = self.launcher.start(theirs, self.sockets)
        finally:
            theirs.close()
        worker = Worker(pid, channel, self.clock(), born)
        self.worker = worker
        spec = Spec(
            worker_path=self.worker_path,
            args=tuple(self.worker_args),
            kwargs=self.worker_kwargs,
            sys_path=tuple(sys.path),
            argv=tuple(sys.argv),
            announce_ready=self.worker_announces_ready,
        )
        try:
            channel.send(spec)
        except ChannelClosed:
            pass
        threading.Thread(target=self._read_channel, args=(worker,), daemon=True,
                         name=f"devreload-channel-{pid}").start()
        self.log.debug("worker %d started", pid)

    def _read_channel(self, worker: Worker) -> None:
        try:
            while True:
                message = worker.channel.recv()
                if isinstance(message, FromWorker):
                    self.events.put(WorkerSaid(worker, message))
        except ChannelClosed:
            pass

    def _stop_worker(self) -> None:
        worker = self.worker
        if worker is None:
            return
        self.worker = None
        self.stopping[worker.pid] = self.clock() + self.shutdown_interval
        self._stopped_channels[worker.pid] = worker.channel
        self.launcher.signal(worker.pid, signal.SIGTERM)

    def _reap(self) -> None:
        for pid, code in self.launcher.reap():
            if pid in self.stopping:
                del self.stopping[pid]
                self._stopped_channels.pop(pid).close()
                self._terminal.restore()
            elif self.worker is not None and pid == self.worker.pid:
                lived = self.clock() - self.worker.started
                self.worker.channel.close()
                self.worker = None
                self._terminal.restore()
                self._worker_exited(code, lived)

    def _worker_exited(self, code: int, lived: float) -> None:
        if self.exit_code is not None or self.restart_state is not None:
            return
        if code == EXIT_RELOAD:
            # A worker that keeps asking as soon as it starts is a loop: from the second
            # time on, back off, doubling up to MAX_BACKOFF.
            self.quick_exits = self.quick_exits + 1 if lived < QUICK_EXIT else 0
            backoff = 0.0
            if self.quick_exits > 1:
                backoff = min(0.1 * 2 ** (self.quick_exits - 2), MAX_BACKOFF)
                self.log.info("the worker asks for a restart as soon as it starts; "
                              "backing off %.1f s", backoff)
            now = self.clock()
            self.restart_state = Restart([ReloadRequested("exit code 75")], began=now,
                                         last=now + backoff - self.reload_interval)
        elif code == 0:
            self.log.debug("worker exited with code 0")
            self.exit_code = 0
        else:
            how = f"signal {-code}" if code < 0 else f"code {code}"
            self.log.error("worker exited with %s; waiting for a change%s", how,
                           " (or press Enter)" if self._terminal.interactive else "")
            self.crashed = True
            self.on_crash(self.last_error or f"The app exited with {how}.")
            if self._terminal.interactive:
                self._terminal.on_enter(lambda: self.events.put(EnterPressed()),
                                        while_=lambda: self.crashed)

    def _on_message(self, worker: Worker, message: FromWorker) -> None:
        if isinstance(message, Modules):
            self.on_modules(message.files, worker.born)
            self.launcher.preload(message.libraries)
        elif isinstance(message, Watch):
            self.on_watch(message.paths, worker.born)
        elif isinstance(message, Failed):
            self.last_error = message.report
            if self.crashed:
                self.on_crash(self.last_error)
        elif worker is not self.worker:
            return
        elif isinstance(message, Ready):
            worker.ready = True
            self._report_ready(worker)
        elif isinstance(message, ReloadAsked):
            self._trigger(ReloadRequested("trigger_reload()"))
        elif isinstance(message, ShutdownAsked):
            self._exit(0)

    def _report_ready(self, worker: Worker) -> None:
        timing, self.timing = self.timing, None
        if timing is None:
            self.log.debug("worker %d ready in %.0f ms", worker.pid,
                           (self.clock() - worker.started) * 1000)
            return
        elapsed = (self.clock() - timing.began) * 1000
        self.log.info("%s; restarted in %.0f ms", timing.describe(), elapsed)


def _worker_entry(
    path: str | Callable[..., Any], args: Sequence[Any] | None
) -> tuple[str | Callable[..., Any], list[Any]]:
    """A function of ``__main__`` cannot be imported by name: re-run the program instead."""
    if callable(path) and getattr(path, "__module__", None) == "__main__":
        return RUN_PROGRAM, list(current_program())
    return path, list(args or ())
