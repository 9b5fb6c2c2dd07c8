"""A process of a stack that devreload does not run as a worker (``npm run dev``, a
shell loop): started by the shell, its output shown, stopped and ended with the rest,
and restarted only when a file its ``watch`` globs match changes.

It is driven by the stack's loop like a reloader is (``handle``, ``advance``,
``time_to_wait``), from the same events.
"""

from __future__ import annotations

import math
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from devreload import platforms, processes
from devreload.filemon.base import FileMonitor, FileMonitorFactory, IgnoreRules
from devreload.log import Logger, display_path
from devreload.monitor.events import STOP_SIGNALS, Event, ExitSeen, FileChanged, SignalReceived
from devreload.monitor.janitor import Janitor
from devreload.monitor.launch import ExitPool


class Supervised:
    """One supervised command line; ``watch`` globs (may be empty) restart it."""

    clock: Callable[[], float] = staticmethod(time.monotonic)

    def __init__(self, command: str, env: Mapping[str, str], log: Logger, *,
                 output: int | None, exits: ExitPool, events: queue.SimpleQueue[Event],
                 watch: Sequence[str] = (), monitor_factory: FileMonitorFactory | None = None,
                 shutdown_interval: float = 1.5, reload_interval: float = 0.05) -> None:
        self.command = command
        self.env = {**env, processes.WORKER_MARK: "supervised"}
        self.log = log
        self.output = output
        self.exits = exits
        self.events = events
        self.watch = [os.path.abspath(g) for g in watch]
        self.monitor_factory = monitor_factory
        self.shutdown_interval = shutdown_interval
        self.reload_interval = reload_interval
        self.process: subprocess.Popen[bytes] | None = None
        self.janitor: Janitor | None = None
        self.job = 0
        self.monitor: FileMonitor | None = None
        #: When to start it again (a change), and when to kill it (it was told to stop).
        self.start_at: float | None = None
        self.kill_at: float | None = None
        self.stopping = False
        self.reason = ""
        # Where the monitor reaps every child itself, this one's exit comes from the pool.
        self.pooled = platforms.current().adopts_orphans
        exits.join(self._owns)

    def _owns(self, pid: int) -> bool:
        return ((self.process is not None and pid == self.process.pid)
                or (self.janitor is not None and pid == self.janitor.pid))

    # -- the loop's side ---------------------------------------------------------------

    def startup(self) -> None:
        if self.watch and self.monitor_factory is not None:
            self.monitor = self.monitor_factory(self._changed, ignore=IgnoreRules())
            for glob in self.watch:
                self.monitor.add_path(glob)
            self.monitor.start()
            self.log.debug("restarted when these change: %s",
                           " ".join(map(display_path, self.watch)))
        self._start()

    def handle(self, event: Event) -> None:
        if isinstance(event, SignalReceived) and event.signum in STOP_SIGNALS:
            if self.stopping:
                self._kill()
            self.stopping, self.start_at = True, None
            self._stop()
        elif isinstance(event, (SignalReceived, ExitSeen)):
            self._reap()
        elif isinstance(event, FileChanged) and not self.stopping:
            if self.start_at is None:
                self.reason = event.describe()
                self._stop()
            self.start_at = self.clock() + self.reload_interval

    def advance(self) -> None:
        now = self.clock()
        if self.kill_at is not None and now >= self.kill_at:
            self._kill()
        if self.process is None and self.start_at is not None and now >= self.start_at:
            self.start_at = None
            self._start()
            self.log.info("%s changed; restarted", self.reason)

    def time_to_wait(self) -> float | None:
        due = [d for d in (self.kill_at, self.start_at if self.process is None else None)
               if d is not None and math.isfinite(d)]
        return max(0.0, min(due) - self.clock()) if due else None

    def finished(self) -> bool:
        return self.process is None and (self.stopping or not self.watch)

    def shutdown(self) -> None:
        if self.process is not None:
            self._kill()
        if self.monitor is not None:
            self.monitor.stop()
        if self.janitor is not None:
            self.janitor.close()

    # -- the process -------------------------------------------------------------------

    def _changed(self, path: str, final: bool = False) -> None:
        self.events.put(FileChanged(path, final))

    def _start(self) -> None:
        if sys.platform == "win32":
            from devreload.monitor.windows import Kernel32

            api = Kernel32()
            self.process = subprocess.Popen(
                self.command, shell=True, env=self.env, stdout=self.output,
                stderr=self.output, creationflags=subprocess.CREATE_NEW_PROCESS_GROUP)
            self.job = api.create_job()  # what the shell starts ends with it
            api.assign(self.job, self.process)
            threading.Thread(target=self._wait, args=(self.process,), daemon=True).start()
            return
        self.process = subprocess.Popen(["/bin/sh", "-c", self.command], env=self.env,
                                        stdout=self.output, stderr=self.output,
                                        start_new_session=True)
        if self.janitor is None:
            self.janitor = Janitor()
        self.janitor.watch(self.process.pid)

    def _wait(self, process: subprocess.Popen[bytes]) -> None:
        process.wait()
        self.events.put(ExitSeen())

    def _stop(self) -> None:
        if self.process is None or self.kill_at is not None:
            return
        self.kill_at = self.clock() + self.shutdown_interval
        if sys.platform == "win32":
            os.kill(self.process.pid, signal.CTRL_BREAK_EVENT)
        else:
            processes.signal_group(self.process.pid, signal.SIGTERM)

    def _kill(self) -> None:
        if self.process is None:
            return
        self.kill_at = math.inf
        if sys.platform == "win32":
            from devreload.monitor.windows import Kernel32

            Kernel32().terminate(self.job)
        else:
            processes.kill_tree(self.process.pid)
            processes.kill_group(self.process.pid)

    def _reap(self) -> None:
        process = self.process
        if process is None:
            return
        if self.pooled:
            codes = [os.waitstatus_to_exitcode(status) for pid, status
                     in self.exits.take(self._owns) if pid == process.pid]
            code = codes[0] if codes else None
        else:
            code = process.poll()
        if code is None:
            return
        processes.kill_group(process.pid)
        self.exits.end_strays()  # what it left running, detached
        if self.janitor is not None:
            self.janitor.forget(process.pid)
        self.process, self.kill_at = None, None
        if self.stopping or self.start_at is not None:
            return
        how = ("exited" if code == 0 else f"exited with code {code}" if code > 0
               else f"ended by signal {-code}")
        (self.log.info if code == 0 else self.log.error)(
            "%s; %s", how, "waiting for a change" if self.watch else "not restarted")
