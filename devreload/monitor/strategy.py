"""The monitor's loop: it runs the worker and decides when to replace it.

Every source of news (signals, file monitor threads, the channel readers, the
terminal) only queues an event (:mod:`devreload.monitor.events`); one loop in
``ReloadStrategy.run`` decides. Signal handlers put on a ``SimpleQueue``, whose ``put``
is safe to call from them.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from devreload.imports import current_program
from devreload.log import Logger, default_logger
from devreload.monitor.events import (
    EnterPressed,
    Event,
    FileChanged,
    ReloadRequested,
    SignalReceived,
    Trigger,
    WorkerSaid,
)
from devreload.monitor.launch import Launcher, choose_launcher
from devreload.monitor.terminal import Terminal
from devreload.monitor.workers import RefusedLog, Restart, Worker, read_channel, stdio_in_place
from devreload.wire.channel import (
    Channel,
    ChannelClosed,
    HandedConnection,
    received_connections,
    send_connections,
)
from devreload.wire.contract import EXIT_RELOAD
from devreload.wire.messages import (
    Connections,
    Failed,
    Files,
    FromWorker,
    Go,
    Leave,
    Milestone,
    Modules,
    Ready,
    Released,
    ReloadAsked,
    RestartPending,
    ShutdownAsked,
    Spec,
    StandDown,
    Watch,
)

#: The quiet window that folds a burst of changes into one restart (seconds).
DEFAULT_RELOAD_INTERVAL = 0.05
#: A single save (one file, whole: closed after writing or renamed into place) waits only
#: this long for a second file that would make it a burst. An editor's save is one event,
#: a ``git checkout`` or a formatter run over the tree sends the next file within it.
SINGLE_SAVE_WINDOW = 0.003
#: How long a worker may take to stop after SIGTERM before it is killed (seconds).
DEFAULT_SHUTDOWN_INTERVAL = 1.5
#: After a worker serves, how long the monitor keeps the CPU for it and its first pages
#: (the browser reloads them now) before the old worker exits and a spare is forked.
SETTLE_AFTER_READY = 0.2
#: The longest wait before restarting a worker that keeps exiting 75 at once.
MAX_BACKOFF = 5.0
#: A worker that exits 75 sooner than this after its start counts as a quick exit.
QUICK_EXIT = 1.0
#: The entry point that runs a script or ``-m`` module as ``__main__`` in the worker.
RUN_PROGRAM = "devreload.worker.runtime:run_program"


class ReloadStrategy:
    """The monitor's decisions, one loop over queued events.

    Subclass it for another trigger: call ``request_reload()`` from any thread (a timer,
    a message queue, a webhook) and override ``should_restart`` to veto. ``startup``,
    ``restart`` and ``shutdown`` may be extended; call the base method.

    With ``cooperative`` the worker is not stopped on a change: it is told, and leaves at a
    safe point of its own by exiting 75 (``devreload.should_restart()`` says when), or is
    stopped after ``cooperative_timeout`` seconds when that is set.
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
        preload: bool = True,
        preload_exclude: Sequence[str] = (),
        cooperative: bool = False,
        cooperative_timeout: float | None = None,
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
        self.cooperative = cooperative
        self.cooperative_timeout = cooperative_timeout
        self._asked_at: float | None = None
        self.launcher = launcher or choose_launcher(self.log, preload, preload_exclude)
        self.events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self.worker: Worker | None = None
        self.stopping: dict[int, float] = {}  # pid -> when to SIGKILL its group
        self._stopped_channels: dict[int, Channel] = {}
        self.released: set[int] = set()  # stopping workers that no longer serve
        self.restart_state: Restart | None = None
        self.timing: Restart | None = None
        self.crashed = False
        self.last_error = ""
        self.quick_exits = 0
        self.exit_code: int | None = None
        self.warm: dict[str, None] = {}
        self._log_refused = RefusedLog(self.log)
        self._retrying = False
        self._terminal = Terminal()
        #: Idle keep-alive connections stopped workers handed over, for the next one.
        self.held: list[HandedConnection] = []
        #: When to let stopped workers exit and fork a spare (see SETTLE_AFTER_READY).
        self._tidy_at: float | None = None

    # -- the hooks -------------------------------------------------------------------

    def startup(self) -> None:
        """Start the first worker."""
        if isinstance(self.worker_path, str) and self.worker_path.startswith("devreload."):
            # devreload's own entry module (the serving layer) is imported before the app
            # in every worker, forked or fresh: the template has it ready.
            self.launcher.preload([self.worker_path.partition(":")[0]])
        self._start_worker()

    def should_restart(self, trigger: Trigger) -> bool:
        """Whether this trigger (a changed file, or another request) restarts the worker."""
        return True

    def restart(self, trigger: Trigger) -> None:
        """Begin a restart: stop the worker now; the new one starts once the change is
        whole: at once after a single save, after a quiet window after a burst."""
        now = self.clock()
        state = self.restart_state
        if state is not None:
            state.triggers.append(trigger)
            state.last = now
            state.window = self._window(state.triggers)
            return
        if self.before_reload is not None:
            self.before_reload()
        # A change while the next worker is still starting is part of the same restart:
        # that worker never answered, its replacement takes over its line and its clock.
        starting = self.timing if self.worker is not None and not self.worker.ready else None
        if starting is not None:
            self.timing = None
            state = Restart([*starting.triggers, trigger], began=starting.began, last=now,
                            saved=starting.saved)
            self._mark(state, f"{trigger.describe()} changed while the new worker started")
        else:
            state = Restart([trigger], began=now, last=now, saved=_saved_at(trigger))
            self._mark(state, f"first event seen ({trigger.describe()})",
                       trigger.seen if isinstance(trigger, FileChanged) else None)
        state.window = self._window(state.triggers)
        self.restart_state = state
        if self.cooperative and self.worker is not None:
            self._ask_to_leave(self.worker)
        else:
            self._stop_worker()

    def _window(self, triggers: Sequence[Trigger]) -> float:
        """The quiet time a restart waits for: next to none for one whole file."""
        last = triggers[-1]
        if not isinstance(last, FileChanged) or not last.final:
            return self.reload_interval
        if all(isinstance(t, FileChanged) and t.path == last.path for t in triggers):
            return min(SINGLE_SAVE_WINDOW, self.reload_interval)
        return self.reload_interval

    def _mark(self, restart: Restart | None, phase: str, at: float | None = None) -> None:
        """One line of the reload timeline (-v): ``phase``, in ms from the save."""
        if restart is not None and restart.saved:
            at = time.time() if at is None else at
            self.log.debug("timeline %+7.1f ms  %s", (at - restart.saved) * 1000, phase)

    def _ask_to_leave(self, worker: Worker) -> None:
        self._asked_at = self.clock()
        self.log.debug("told worker %d that a restart is pending", worker.pid)
        try:
            worker.channel.send(RestartPending())
        except ChannelClosed:
            pass

    def shutdown(self) -> None:
        """Release what the monitor holds."""
        self.launcher.close()
        for sock in self.sockets:
            sock.close()
        for sock, _ in self.take_connections():
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

    def on_files(self, read: Sequence[str], written: Sequence[str], since: float) -> None:
        """Project files a worker started at ``since`` read, and files it wrote."""

    def on_held_connections(self) -> None:
        """Keep-alive connections wait in ``held`` while the app is broken; by default
        until a worker serves again (``ServingReloader`` answers them with the error page)."""

    def take_connections(self) -> list[HandedConnection]:
        """The held keep-alive connections, now the caller's to answer or close."""
        held, self.held = self.held, []
        return held

    # -- the loop --------------------------------------------------------------------

    def request_reload(self, reason: str = "reload requested") -> None:
        """Thread-safe: ask for a restart."""
        self.events.put(ReloadRequested(reason))

    def run(self) -> int:
        """Run until the worker exits 0 or the monitor is told to stop; the exit code."""
        stdio_in_place()
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
        cooperative = self._cooperative_deadline()
        if cooperative is not None:
            deadlines.append(cooperative)
        if self._tidy_at is not None:
            deadlines.append(self._tidy_at)
        waiting = self.worker is None and not self._must_wait()
        if self.restart_state is not None and self.exit_code is None and waiting:
            # While the old worker stops, only its exit (or its kill deadline) can start the
            # next one: the quiet window's end is no reason to wake up.
            deadlines.append(self.restart_state.last + self.restart_state.window)
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - self.clock())

    def handle(self, event: Event) -> None:
        """Act on one event; subclasses extend it for their own kinds."""
        if isinstance(event, SignalReceived):
            self._on_signal(event.signum)
        elif isinstance(event, WorkerSaid) and isinstance(event.message, Connections):
            self._hold_connections(event.message, event.fds)
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
        if self._tidy_at is not None and now >= self._tidy_at:
            self._tidy_at = None
            self._let_go()
            if self.sockets and self.worker is not None and self.restart_state is None:
                # Idle now: the next server can be made ready before a change needs it.
                self.launcher.prepare(self.sockets)
        overdue = self._cooperative_deadline()
        if overdue is not None and now >= overdue:
            self.log.info("the worker did not leave within %.1f s of the change; stopping it",
                          self.cooperative_timeout)
            self._stop_worker()
        pending = self.restart_state
        if (
            pending is not None
            and self.exit_code is None
            and self.worker is None
            and not self._must_wait()
            and now >= pending.last + pending.window
        ):
            self.restart_state = None
            self.timing = pending
            self._mark(pending, f"restart decided (quiet for {pending.window * 1000:.0f} ms)")
            self._start_worker()

    def _blocking(self) -> bool:
        """Whether a stopping worker still accepts: the next one accepts only once it has
        let go (it says Released), not once its interpreter has finished exiting."""
        return any(pid not in self.released for pid in self.stopping)

    def _must_wait(self) -> bool:
        """Whether the next worker may not even start yet. On the monitor's sockets it
        starts at once and imports the app while the old one stops, held until Go; a
        program that binds its own port (or holds a lock) has let go only once its
        process is gone: the next one waits for that."""
        return not self.sockets and bool(self.stopping)

    def _release_held(self) -> None:
        worker = self.worker
        if worker is None or not worker.held or self._blocking():
            return
        worker.held = False
        try:
            worker.channel.send(Go())
        except ChannelClosed:
            return
        self._mark(worker.restart, f"new worker {worker.pid} told to accept")

    def _cooperative_deadline(self) -> float | None:
        """When a worker told of a pending restart gets stopped anyway, if ever."""
        if (
            self._asked_at is None
            or self.cooperative_timeout is None
            or self.worker is None
            or self.restart_state is None
        ):
            return None
        return self._asked_at + self.cooperative_timeout

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
        self._let_go()

    def _let_go(self) -> None:
        """Stopped workers may exit now: none is starting that their exit would slow."""
        for channel in self._stopped_channels.values():
            with contextlib.suppress(ChannelClosed, OSError):
                channel.send(Leave())

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
        worker = Worker(pid, channel, self.clock(), born, restart=self.timing,
                        held=bool(self.sockets) and self._blocking())
        self.worker = worker
        self._mark(self.timing, f"new worker {pid} started")
        spec = Spec(
            worker_path=self.worker_path,
            args=tuple(self.worker_args),
            kwargs=self.worker_kwargs,
            sys_path=tuple(sys.path),
            argv=tuple(sys.argv),
            announce_ready=self.worker_announces_ready,
            warm=tuple(self.warm),
            quiet_failure=self._retrying,
            hold=worker.held,
        )
        self._retrying = False
        try:
            channel.send(spec)
        except ChannelClosed:
            pass
        threading.Thread(target=read_channel, args=(worker, self.events), daemon=True,
                         name=f"devreload-channel-{pid}").start()
        self.log.debug("worker %d started", pid)

    def _hold_connections(self, message: Connections, fds: Sequence[int]) -> None:
        """A stopping worker's idle keep-alive connections: held until a worker serves."""
        self.held.extend(received_connections(message, fds))
        self._place_connections()

    def _place_connections(self) -> None:
        """Pass the held connections to the worker once it serves (it said Ready); while
        the app is broken, ``on_held_connections`` decides."""
        worker = self.worker
        if not self.held:
            return
        if worker is not None and worker.ready:
            try:
                send_connections(worker.channel, self.take_connections())
            except ChannelClosed:  # it died just now: they are closed with it
                pass
        elif self.crashed:
            self.on_held_connections()

    def _stop_worker(self) -> None:
        worker = self.worker
        self._asked_at = None
        if worker is None:
            return
        self.worker = None
        self.stopping[worker.pid] = self.clock() + self.shutdown_interval
        self._stopped_channels[worker.pid] = worker.channel
        self.launcher.signal(worker.pid, signal.SIGTERM)
        if worker.held:
            # Waiting for its Go, its server has taken SIGTERM over and waits on.
            with contextlib.suppress(ChannelClosed):
                worker.channel.send(StandDown())
        self._mark(self.restart_state, f"old worker {worker.pid} told to stop")

    def _reap(self) -> None:
        for pid, code in self.launcher.reap():
            if pid in self.stopping:
                del self.stopping[pid]
                self.released.discard(pid)
                self._stopped_channels.pop(pid).close()
                self.launcher.succeeded(pid)
                self._terminal.restore()
                self._release_held()
            elif self.worker is not None and pid == self.worker.pid:
                worker = self.worker
                worker.channel.close()
                self.worker = None
                self._terminal.restore()
                self._let_go()
                self._worker_exited(worker, code)

    def _worker_exited(self, worker: Worker, code: int) -> None:
        if self.exit_code is not None or self.restart_state is not None:
            return
        lived = self.clock() - worker.started
        early = not worker.ready or (not self.worker_announces_ready and lived < QUICK_EXIT)
        if code in (0, EXIT_RELOAD):
            self.launcher.succeeded(worker.pid)
        elif early and self.launcher.failed(worker.pid):
            # The same restart again, the other way: its line says what changed, and its
            # time includes the failed attempt.
            self._retrying = True
            now = self.clock()
            origin = worker.restart or Restart([ReloadRequested("a fresh worker")], began=now)
            self.restart_state = Restart(origin.triggers, began=origin.began, last=now,
                                         saved=origin.saved)
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
                                         last=now, window=backoff)
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
            # What the next worker imports before the app anyway (the server) is in the
            # template too: a worker forked from it is the same as a fresh one.
            self.launcher.preload((*message.libraries, *message.warm))
            self._log_refused(message.refused)
            self.warm.update(dict.fromkeys(message.warm))
        elif isinstance(message, Watch):
            self.on_watch(message.paths, worker.born)
        elif isinstance(message, Files):
            self.on_files(message.read, message.written, worker.born)
        elif isinstance(message, Failed):
            self.last_error = message.report
            if self.crashed:
                self.on_crash(self.last_error)
        elif isinstance(message, Released):
            if worker.pid in self.stopping:
                self.released.add(worker.pid)
                self.launcher.succeeded(worker.pid)
                self._mark(self.restart_state or self.timing,
                           f"old worker {worker.pid} stopped accepting")
                self._release_held()
        elif isinstance(message, Milestone):
            self._mark(worker.restart, message.phase, message.at)
        elif worker is not self.worker:
            return
        elif isinstance(message, Ready):
            worker.ready = True
            self._mark(worker.restart, "accepting")
            if self.worker_announces_ready:
                self.launcher.succeeded(worker.pid)
            self._report_ready(worker)
            self._place_connections()
            self._tidy_at = self.clock() + SETTLE_AFTER_READY
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


def _saved_at(trigger: Trigger) -> float:
    """When the save happened: the file's new mtime, if it is not older than a few
    seconds (a file moved into place keeps its old one) nor newer than the event."""
    now = time.time()
    if not isinstance(trigger, FileChanged):
        return now
    try:
        mtime = os.stat(trigger.path).st_mtime
    except OSError:
        return trigger.seen
    return mtime if trigger.seen - 5 < mtime <= trigger.seen else trigger.seen


def _worker_entry(
    path: str | Callable[..., Any], args: Sequence[Any] | None
) -> tuple[str | Callable[..., Any], list[Any]]:
    """A function of ``__main__`` cannot be imported by name: re-run the program instead."""
    if callable(path) and getattr(path, "__module__", None) == "__main__":
        return RUN_PROGRAM, list(current_program())
    return path, list(args or ())
