"""The monitor's loop: it runs the worker and decides when to replace it.

Every source of news (signals, file monitor threads, the channel readers, the
terminal) only queues an event (:mod:`devreload.monitor.events`); one loop in
``ReloadStrategy.run`` decides. What it decides with lives beside it: the restart
(:mod:`~devreload.monitor.restarts`) and the workers (:mod:`~devreload.monitor.workers`:
how they are launched, stopped, gated and reaped).
"""

from __future__ import annotations

import contextlib
import queue
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from devreload.imports import current_program
from devreload.log import Logger, default_logger
from devreload.monitor.choice import choose_launcher
from devreload.monitor.cooperative import Cooperation
from devreload.monitor.events import (
    EnterPressed,
    Event,
    ExitSeen,
    FileChanged,
    ReloadRequested,
    SignalReceived,
    Trigger,
    WorkerSaid,
    queued_signals,
)
from devreload.monitor.launch import Launcher
from devreload.monitor.record import Worker
from devreload.monitor.restarts import Restarts
from devreload.monitor.settings import ReloadSettings
from devreload.monitor.terminal import Terminal, stdio_in_place
from devreload.monitor.workers import Workers
from devreload.wire.channel import ChannelClosed
from devreload.wire.contract import RUN_PROGRAM
from devreload.wire.messages import (
    Failed,
    Files,
    FromWorker,
    Heard,
    Modules,
    Ready,
    ReloadAsked,
    ShutdownAsked,
    Watch,
)


class ReloadStrategy:
    """The monitor's decisions, one loop over queued events (``run``, or a stack's loop
    through ``handle``, ``advance`` and ``time_to_wait``).

    Subclass it for another trigger: call ``request_reload()`` from any thread (a timer,
    a message queue, a webhook) and override ``should_restart`` to veto. ``startup``,
    ``restart`` and ``shutdown`` may be extended; call the base method. With
    ``settings.cooperative`` the worker is told of a change and leaves at a safe point by
    exiting 75, or is stopped after ``settings.cooperative_timeout`` seconds if set."""

    #: The clock every deadline is read from (a test may drive the loop with its own).
    clock: Callable[[], float] = staticmethod(time.monotonic)

    def __init__(
        self,
        worker_path: str | Callable[..., Any],
        settings: ReloadSettings | None = None,
        *,
        logger: Logger | None = None,
        sockets: Sequence[socket.socket] = (),
        launcher: Launcher | None = None,
        events: queue.SimpleQueue[Event] | None = None,
    ) -> None:
        self.settings = settings = settings or ReloadSettings()
        self.worker_path, self.worker_args = _worker_entry(worker_path, settings.worker_args)
        self.log: Logger = logger or default_logger()
        #: The listening sockets the monitor holds; every worker accepts on them.
        self.sockets = list(sockets)
        self.launcher = launcher or choose_launcher(self.log, settings.preload,
                                                    settings.preload_exclude)
        self.events: queue.SimpleQueue[Event] = events or queue.SimpleQueue()
        self.restarts = Restarts(self.log, settings.reload_interval)
        self.workers = Workers(self.launcher, settings, self.log, self.events, self.sockets,
                               self.restarts)
        self.cooperation = Cooperation(settings, self.log)
        self.crashed, self.last_error = False, ""
        self._crashed_worker: Worker | None = None  # whose crash ``crashed`` is about
        self.exit_code: int | None = None
        self._terminal = Terminal()

    @property
    def worker(self) -> Worker | None:
        """The worker that serves, or is starting to."""
        return self.workers.current

    # -- the hooks -------------------------------------------------------------------

    def startup(self) -> None:
        """Start the first worker."""
        self.workers.preload_entry(self.worker_path)
        self._start_worker()

    def should_restart(self, trigger: Trigger) -> bool:
        """Whether this trigger (a changed file, or another request) restarts the worker."""
        return True

    def restart(self, trigger: Trigger) -> None:
        """Begin a restart: stop the worker now; the new one starts once the change is
        whole: at once after a single save, after a quiet window after a burst. The
        worker is told to stop before ``before_reload`` runs: however long that takes,
        the old code answers only what was sent before it stopped accepting."""
        starting = self.worker is not None and not self.worker.ready
        if not self.restarts.add(trigger, self.clock(), starting):
            return
        if not self.cooperation.ask(self.worker, self.clock()):
            self._stop_worker()
        if self.settings.before_reload is not None:
            self.settings.before_reload()

    def shutdown(self) -> None:
        """Release what the monitor holds."""
        self.workers.close()
        self._terminal.restore()

    def on_crash(self, error: str) -> None:
        """The worker died; ``error`` is its traceback or one line (again if more comes)."""

    def on_recover(self) -> None:
        """A new worker is about to start after a crash."""

    def on_report(self, report: Modules | Watch | Files, since: float | None) -> None:
        """What a worker started at ``since`` (wall clock) says of the files it depends on,
        even after its crash (its traceback's files); None for a replaced worker, whose last
        reports may name the change that replaced it: watched from now on, never a change."""

    def on_parked_connections(self) -> None:
        """Parked connections wait while the app is broken (``ServingReloader``: error page)."""

    # -- the loop --------------------------------------------------------------------

    def request_reload(self, reason: str = "reload requested") -> None:
        """Thread-safe: ask for a restart."""
        self.events.put(ReloadRequested(reason))

    def run(self) -> int:
        """Run until the worker exits 0 or the monitor is told to stop; the exit code."""
        stdio_in_place()
        with queued_signals(self.events.put):
            try:
                self.startup()
                while not self.finished():
                    try:
                        event: Event | None = self.events.get(timeout=self.time_to_wait())
                    except queue.Empty:
                        event = None
                    if event is not None:
                        self.handle(event)
                    self.advance()
            finally:
                self.shutdown()
        return self.exit_code or 0

    def finished(self) -> bool:  # its worker is gone for good, and no old one stops
        return self.exit_code is not None and self.worker is None and not self.workers.changeover

    def time_to_wait(self) -> float | None:
        deadlines = [self.workers.changeover.next_deadline(), self.cooperation.deadline(),
                     self.workers.tidy_at]
        if self.restarts.pending is not None and self._may_start():
            # While the old worker stops, only its exit (or its kill deadline) can start the
            # next one: the quiet window's end is no reason to wake up.
            deadlines.append(self.restarts.pending.due)
        due = [d for d in deadlines if d is not None]
        return max(0.0, min(due) - self.clock()) if due else None

    def handle(self, event: Event) -> None:
        """Act on one event; subclasses extend it for their own kinds."""
        if isinstance(event, SignalReceived):
            self._on_signal(event.signum)
        elif isinstance(event, WorkerSaid):
            self._on_message(event.worker, event.message, event.fds)
        elif isinstance(event, (FileChanged, ReloadRequested)):
            self._trigger(event)
        elif isinstance(event, ExitSeen):
            self._reap()
        elif isinstance(event, EnterPressed) and self.crashed:
            self._trigger_fresh("Enter pressed")

    def _trigger(self, trigger: Trigger) -> None:
        if self.exit_code is None and self.should_restart(trigger):
            self.restart(trigger)

    def _trigger_fresh(self, reason: str) -> None:
        """A restart asked for by hand also drops the template, so that libraries
        upgraded since (``pip install -U``) are imported anew."""
        self.launcher.refresh()
        self._trigger(ReloadRequested(reason))

    def advance(self) -> None:
        now = self.clock()
        self.workers.changeover.kill_overdue(now)
        self.workers.tidy(now)
        if self.cooperation.overdue(now):
            self._stop_worker()
        pending = self.restarts.pending
        if pending is not None and self._may_start() and now >= pending.due:
            self.restarts.begin()
            self._start_worker()

    def _may_start(self) -> bool:
        """Whether the next worker may start now. On the monitor's sockets it starts while
        the old one stops, and imports the app, gated until Go; a program that binds its
        own port (or holds a lock) has released it only once its process is gone."""
        waits = not self.sockets and bool(self.workers.changeover)
        return self.exit_code is None and self.worker is None and not waits

    def _on_signal(self, signum: int) -> None:
        if sys.platform != "win32" and signum == signal.SIGCHLD:
            self._reap()
        elif sys.platform != "win32" and signum == signal.SIGHUP:
            self._trigger_fresh("SIGHUP")
        elif self.exit_code is not None:
            self.workers.kill_all()
        else:
            self.log.debug("%s: stopping", signal.Signals(signum).name)
            self._exit(0)

    def _exit(self, code: int) -> None:
        self.exit_code, self.crashed = code, False
        self._stop_worker()
        self.workers.changeover.hurry(self.clock())
        self.workers.changeover.dismiss()

    # -- workers ---------------------------------------------------------------------

    def _start_worker(self) -> None:
        if self.crashed:
            self.crashed = False
            self.on_recover()
        self.last_error = ""
        self.workers.start(self.worker_path, self.worker_args, self.clock())

    def _place_parked(self) -> None:
        """Pass the parked connections to the worker once it serves; while the app is
        broken, ``on_parked_connections`` decides."""
        if self.workers.parked and not self.workers.give_parked() and self.crashed:
            self.on_parked_connections()

    def _stop_worker(self) -> None:
        self.cooperation.forget()
        self.workers.stop(self.clock())

    def _reap(self) -> None:
        for worker, code in self.workers.reap():
            self._terminal.restore()
            if worker is not None:
                self._worker_exited(worker, code)

    def _worker_exited(self, worker: Worker, code: int) -> None:
        if self.exit_code is not None or self.restarts.pending is not None:
            return
        if self.workers.exited(worker, code, self.clock()):
            return
        if code == 0:
            self.log.debug("worker exited with code 0")
            self.exit_code = 0
        else:
            how = f"signal {-code}" if code < 0 else f"code {code}"
            self.log.error("worker exited with %s; waiting for a change%s", how,
                           " (or press Enter)" if self._terminal.interactive else "")
            self.crashed, self._crashed_worker = True, worker
            self.on_crash(self.last_error or f"The app exited with {how}.")
            self._terminal.on_enter(lambda: self.events.put(EnterPressed()),
                                    while_=lambda: self.crashed)

    def _on_message(self, worker: Worker, message: FromWorker, fds: Sequence[int]) -> None:
        if self.workers.note(worker, message, fds, self.clock()):
            self._place_parked()
            return
        if isinstance(message, (Modules, Watch, Files)):
            current = worker is self.worker or (self.crashed and worker is self._crashed_worker)
            self.on_report(message, worker.born if current else None)
            if isinstance(message, Modules):
                self.workers.libraries(message)
            elif isinstance(message, Files) and message.answer:
                with contextlib.suppress(ChannelClosed):
                    worker.channel.send(Heard())
        elif isinstance(message, Failed):
            self.last_error = message.report
            if self.crashed:
                self.on_crash(self.last_error)
        elif worker is not self.worker:
            return  # what an old worker says of its life is no news
        elif isinstance(message, Ready):
            self.workers.serves(worker, self.clock())
            self._place_parked()
        elif isinstance(message, ReloadAsked):
            self._trigger(ReloadRequested("trigger_reload()"))
        elif isinstance(message, ShutdownAsked):
            self._exit(0)


def _worker_entry(
    path: str | Callable[..., Any], args: Sequence[Any]
) -> tuple[str | Callable[..., Any], list[Any]]:
    """A function of ``__main__`` cannot be imported by name: re-run the program instead."""
    if callable(path) and getattr(path, "__module__", None) == "__main__":
        return RUN_PROGRAM, list(current_program())
    return path, list(args)
