"""The monitor's workers: the current one, the old ones stopping, and what they left.

``ReloadStrategy`` decides *when* a worker starts and stops; this is *how*: the launcher
starts the process and the spec tells it what to run, the changeover stops the old ones
and opens the new one's gate, the parking keeps their idle keep-alive connections, and
the libraries a worker reports go to the template.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from devreload import processes
from devreload.log import Logger, first_names
from devreload.monitor.changeover import Changeover
from devreload.monitor.events import Event, ExitSeen
from devreload.monitor.launch import Launcher
from devreload.monitor.parking import ParkedConnections
from devreload.monitor.record import Worker, read_channel
from devreload.monitor.restarts import QUICK_EXIT, Restarts
from devreload.monitor.settings import ReloadSettings
from devreload.monitor.standin import StandIn
from devreload.wire.channel import ChannelClosed
from devreload.wire.contract import EXIT_RELOAD
from devreload.wire.messages import (
    AtGate,
    Connections,
    FromWorker,
    Milestone,
    Modules,
    Released,
    Spec,
)
from devreload.worker.bytecode import drop_hold

#: After a worker serves, how long the monitor keeps the CPU for it and its first pages
#: (the browser reloads them now) before the old worker exits and a spare is forked.
SETTLE_AFTER_READY = 0.2

#: The reload timeline's line for a worker that waits at its gate.
GATE_PHASE = "server started; waiting for the old worker to stop accepting"

#: How long a worker's exit waits for its reader to have read all it said (Ready may be
#: in the line still): a child it forked may hold the line open past its exit.
LINE_END_TIMEOUT = 0.5


class Workers:
    """Starts, stops and reaps the workers of one monitor."""

    def __init__(
        self,
        launcher: Launcher,
        settings: ReloadSettings,
        log: Logger,
        events: queue.SimpleQueue[Event],
        sockets: Sequence[socket.socket],
        restarts: Restarts,
    ) -> None:
        self.launcher = launcher
        self.restarts = restarts
        self.settings = settings
        self.log = log
        self.events = events
        self.sockets = sockets
        #: The worker that serves, or is starting to.
        self.current: Worker | None = None
        self.changeover = Changeover(launcher, settings.shutdown_interval, log,
                                     settings.drain_interval)
        self.parked = ParkedConnections()
        #: Modules every worker imports before the app (the server): the template has them.
        self.warm: dict[str, None] = {}
        #: The next start retries a failure already shown: it is not shown again.
        self.retrying = False
        #: When to dismiss stopped workers and fork a spare (see SETTLE_AFTER_READY).
        self.tidy_at: float | None = None
        #: The monitor's own fork, to be the first worker (``devreload.monitor.standin``).
        self.stand_in: StandIn | None = None
        #: That worker, serving on while the one that replaces it builds the app.
        self.retiring: Worker | None = None
        #: What the workers run: the stand-in's successor starts it too.
        self._entry: tuple[str | Callable[..., Any], Sequence[Any]] = ("", ())
        self._log_refused = RefusedLog(log)
        launcher.notify_exits(lambda: events.put(ExitSeen()))
        drop_hold()  # what this process compiled: the workers write their own caches

    def start(
        self, worker_path: str | Callable[..., Any], args: Sequence[Any], now: float
    ) -> Worker:
        """Launch the next worker and send it its spec. On the monitor's sockets, while an
        old worker still accepts, it starts gated: it builds the app, then waits for Go."""
        born = time.time()
        self._entry = (worker_path, args)
        stand_in, self.stand_in = self.stand_in, None
        if stand_in is not None and self.launcher.adopt(stand_in.pid):
            pid, channel = stand_in.pid, stand_in.channel
        else:
            if stand_in is not None:
                processes.kill_group(stand_in.pid)
                stand_in.channel.close()
                stand_in = None
            pid, channel = self.launcher.start(self.sockets)
        worker = Worker(pid, channel, now, born, restart=self.restarts.underway,
                        gated=bool(self.sockets) and self.changeover.accepting(),
                        stand_in=stand_in is not None)
        self.current = worker
        self.restarts.mark(worker.restart, f"new worker {pid} started")
        spec = Spec(
            worker_path=worker_path,
            args=tuple(args),
            kwargs=dict(self.settings.worker_kwargs),
            sys_path=tuple(sys.path),
            argv=tuple(sys.argv if self.settings.argv is None else self.settings.argv),
            announce_ready=self.settings.worker_announces_ready,
            warm=tuple(self.warm),
            quiet_failure=self.retrying,
            gated=worker.gated,
            environ=None if self.settings.environ is None else dict(self.settings.environ),
        )
        self.retrying = False
        with contextlib.suppress(ChannelClosed):
            channel.send(spec)
        worker.reader = threading.Thread(target=read_channel, args=(worker, self.events),
                                         daemon=True, name=f"devreload-channel-{pid}")
        worker.reader.start()
        self.log.debug("worker %d started", pid)
        return worker

    def stop(self, now: float) -> Worker | None:
        """Tell the current worker to stop (SIGTERM); it is stopping from now on."""
        worker, self.current = self.current, None
        if worker is not None:
            self.changeover.stop(worker, now)
            self.restarts.mark(self.restarts.pending, f"worker {worker.pid} told to stop")
        self._retire(now)
        return worker

    def _replace_stand_in(self, now: float) -> None:
        """The stand-in serves on while its successor imports and builds the app; it stops
        once that one waits at its gate (``AtGate``)."""
        stand_in = self.retiring = self.current
        if stand_in is None:
            return
        self.changeover.keep(stand_in)
        worker = self.start(*self._entry, now)
        self.log.debug("worker %d, started the usual way, replaces worker %d once it is ready",
                       worker.pid, stand_in.pid)

    def _retire(self, now: float) -> None:
        """The stand-in, if one serves on, stops now: its successor is at its gate, or
        gone, or every worker stops."""
        stand_in, self.retiring = self.retiring, None
        if stand_in is not None and stand_in.pid in self.changeover.deadlines:
            self.changeover.stop(stand_in, now)

    def reap(self) -> list[tuple[Worker | None, int]]:
        """Collect exited workers, each with its exit code; the record is there only for
        the current worker (an old one's exit may open the gate instead)."""
        exits: list[tuple[Worker | None, int]] = []
        for pid, code in self.launcher.reap():
            if self.retiring is not None and pid == self.retiring.pid:
                self.retiring = None
            if self.changeover.exited(pid):
                exits.append((None, code))
                self._open_gate()
            elif self.current is not None and pid == self.current.pid:
                worker, self.current = self.current, None
                if worker.reader is not None:
                    # Its process is gone and its strays killed: the line ends at once.
                    worker.reader.join(LINE_END_TIMEOUT)
                worker.channel.close()
                self.changeover.dismiss()
                exits.append((worker, code))
        return exits

    def exited(self, worker: Worker, code: int, now: float) -> bool:
        """The current worker exited with ``code``; True when a restart follows: it asked
        (exit 75), or it failed early where the launcher can start the next one another
        way (the same restart again)."""
        self._retire(now)
        lived = now - worker.started
        early = not worker.ready or (not self.settings.worker_announces_ready
                                     and lived < QUICK_EXIT)
        if code in (0, EXIT_RELOAD) or not early:
            self.launcher.succeeded(worker.pid)
        elif self.launcher.failed(worker.pid):
            self.retrying = True
            self.restarts.retry(worker.restart, now)
            return True
        if code == EXIT_RELOAD:
            self.restarts.asked(lived, now)
        return code == EXIT_RELOAD

    def preload_entry(self, worker_path: str | Callable[..., Any]) -> None:
        """devreload's own entry module (the serving layer) is imported before the app in
        every worker, forked or fresh: the template has it ready from the start."""
        if isinstance(worker_path, str) and worker_path.startswith("devreload."):
            self.launcher.preload([worker_path.partition(":")[0]])

    def note(self, worker: Worker, message: FromWorker, fds: Sequence[int] = (),
             now: float = 0.0) -> bool:
        """Take what concerns only the handling of workers; False for anything else."""
        if isinstance(message, Connections):
            self.parked.park(message, fds)
        elif isinstance(message, Released):
            self._released(worker, now)
        elif isinstance(message, Milestone):
            self.restarts.mark(worker.restart, message.phase, message.at)
        elif isinstance(message, AtGate):
            self.restarts.mark(worker.restart, GATE_PHASE, message.at)
            if worker is self.current:
                self._retire(now)
        else:
            return False
        return True

    def _released(self, worker: Worker, now: float) -> None:
        """``worker`` no longer accepts: if it was stopping, the next one may."""
        if self.changeover.release(worker.pid, now):
            restart = self.restarts.pending or self.restarts.underway
            self.restarts.mark(restart, f"old worker {worker.pid} stopped accepting")
            self._open_gate()

    def _open_gate(self) -> None:
        worker = self.current
        if worker is not None and self.changeover.open_gate(worker):
            self.restarts.mark(worker.restart, f"new worker {worker.pid} told to accept")

    def serves(self, worker: Worker, now: float) -> None:
        """``worker`` said Ready: the restart is done; its first pages get the CPU for
        SETTLE_AFTER_READY before the old workers exit and a spare is forked."""
        worker.ready = True
        self.restarts.mark(worker.restart, "accepting")
        if self.settings.worker_announces_ready:
            self.launcher.succeeded(worker.pid)
        self.restarts.served(worker.pid, worker.started, now)
        self.tidy_at = now + SETTLE_AFTER_READY

    def tidy(self, now: float) -> None:
        """Once the new worker has settled: dismiss the old ones, and, idle now, have the
        next worker made ready before a change needs it."""
        if self.tidy_at is None or now < self.tidy_at:
            return
        self.tidy_at = None
        self.changeover.dismiss()
        if self.current is not None and self.restarts.pending is None:
            if self.current.stand_in:
                self._replace_stand_in(now)
            else:
                self.launcher.prepare(self.sockets)

    def give_parked(self) -> bool:
        """Pass the parked connections to the current worker, if it serves (it said Ready)."""
        if self.current is None or not self.current.ready:
            return False
        self.parked.give_to(self.current)
        return True

    def libraries(self, message: Modules) -> None:
        """What a worker imported as libraries: the next one may have them preloaded."""
        # What the next worker imports before the app anyway (the server) is in the
        # template too: a worker forked from it is the same as a fresh one.
        self.launcher.preload((*message.libraries, *message.warm))
        self._log_refused(message.refused)
        self.warm.update(dict.fromkeys(message.warm))

    def kill_all(self) -> None:
        """A second Ctrl-C: no more waiting for anyone."""
        self.log.debug("stopping again: killing every worker")
        for pid in [*self.changeover.deadlines, *([self.current.pid] if self.current else [])]:
            self.changeover.kill(pid)

    def close(self) -> None:
        self.launcher.close()
        for sock in self.sockets:
            sock.close()
        self.parked.close()


class RefusedLog:
    """With -v: which libraries the template will not preload, and why, once each."""

    def __init__(self, log: Logger) -> None:
        self.log = log
        self.seen: set[str] = set()

    def __call__(self, refused: Sequence[tuple[str, str]]) -> None:
        by_reason: dict[str, list[str]] = {}
        for name, reason in refused:
            if name not in self.seen:
                self.seen.add(name)
                by_reason.setdefault(reason, []).append(name)
        for reason, names in by_reason.items():
            self.log.debug("not preloading %s: %s", first_names(names), reason)
