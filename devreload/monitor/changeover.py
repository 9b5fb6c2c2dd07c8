"""The monitor's side of the changeover from the old worker to the next one.

An old worker is told to stop (SIGTERM, or a message) at the first change and has
``shutdown_interval`` before its group is killed; once it has stopped accepting (a
server: the next worker serves its successors), ``drain_interval`` to finish the
requests under way, unless everything stops (``hurry``). The next worker, started
meanwhile on the same listening sockets, waits at its gate until every old one has
*released* them (stopped accepting), then gets ``Go``; a gated worker not needed any
more gets ``StandDown``. Old workers that have stopped are *dismissed* (``Leave``) once
the new one serves, so that their exit does not share the CPU with its start.
"""

from __future__ import annotations

import contextlib
import math

from devreload.log import Logger
from devreload.monitor.launch import Launcher
from devreload.monitor.record import Worker
from devreload.wire.channel import Channel, ChannelClosed
from devreload.wire.messages import Go, Hurry, Leave, StandDown


class Changeover:
    """The workers being stopped, and the gate of the one that replaces them."""

    def __init__(self, launcher: Launcher, shutdown_interval: float, log: Logger,
                 drain_interval: float = 0.0) -> None:
        self.launcher = launcher
        self.shutdown_interval = shutdown_interval
        self.drain_interval = drain_interval
        self.log = log
        self.hurrying = False
        #: Stopping workers: pid -> when to SIGKILL its group (inf once killed).
        self.deadlines: dict[int, float] = {}
        self._channels: dict[int, Channel] = {}
        #: Stopping workers that no longer accept.
        self.released: set[int] = set()

    def __bool__(self) -> bool:
        """Whether any old worker is still stopping."""
        return bool(self.deadlines)

    def stop(self, worker: Worker, now: float) -> None:
        self.deadlines[worker.pid] = now + self.shutdown_interval
        self._channels[worker.pid] = worker.channel
        self.launcher.stop(worker.pid, worker.channel)
        if worker.gated:
            # At its gate its server has taken SIGTERM over, and waits on: tell it.
            with contextlib.suppress(ChannelClosed):
                worker.channel.send(StandDown())

    def keep(self, worker: Worker) -> None:
        """An old worker that serves on while the next one builds its app: it counts as
        accepting (the next one starts gated) until ``stop``."""
        self.deadlines[worker.pid] = math.inf
        self._channels[worker.pid] = worker.channel

    def accepting(self) -> bool:
        """Whether a stopping worker still accepts: the next one accepts only once it has
        released the sockets (it says Released), not once its interpreter has exited."""
        return any(pid not in self.released for pid in self.deadlines)

    def release(self, pid: int, now: float) -> bool:
        """The stopping worker ``pid`` no longer accepts; False if it is not stopping. What
        it still does is requests under way: they may take the drain interval."""
        if pid not in self.deadlines:
            return False
        self.released.add(pid)
        if not self.hurrying and math.isfinite(self.deadlines[pid]):
            self.deadlines[pid] = max(self.deadlines[pid],
                                      now + self.drain_interval + self.shutdown_interval)
        self.launcher.succeeded(pid)
        return True

    def exited(self, pid: int) -> bool:
        """The worker ``pid`` is gone; False if it was not stopping."""
        if pid not in self.deadlines:
            return False
        del self.deadlines[pid]
        self.released.discard(pid)
        self._channels.pop(pid).close()
        self.launcher.succeeded(pid)
        return True

    def open_gate(self, worker: Worker | None) -> bool:
        """Tell a gated ``worker`` to accept, once no old one does; True when told."""
        if worker is None or not worker.gated or self.accepting():
            return False
        worker.gated = False
        try:
            worker.channel.send(Go())
        except ChannelClosed:
            return False
        return True

    def next_deadline(self) -> float | None:
        """The earliest SIGKILL to send. A killed worker's deadline is infinite: only its
        SIGCHLD can end that wait."""
        finite = [d for d in self.deadlines.values() if math.isfinite(d)]
        return min(finite) if finite else None

    def hurry(self, now: float) -> None:
        """Everything stops: no worker drains longer than the shutdown interval."""
        self.hurrying = True
        for pid, deadline in self.deadlines.items():
            if math.isfinite(deadline):
                self.deadlines[pid] = min(deadline, now + self.shutdown_interval)
                with contextlib.suppress(ChannelClosed, OSError):
                    self._channels[pid].send(Hurry())

    def kill_overdue(self, now: float) -> None:
        for pid, deadline in list(self.deadlines.items()):
            if now >= deadline:
                self.log.debug("worker %d did not stop in time; killing it", pid)
                self.kill(pid)

    def kill(self, pid: int) -> None:
        self.launcher.kill(pid)
        if pid in self.deadlines:
            self.deadlines[pid] = math.inf

    def dismiss(self) -> None:
        """Stopped workers may exit now: none is starting that their exit would slow."""
        for channel in self._channels.values():
            with contextlib.suppress(ChannelClosed, OSError):
                channel.send(Leave())
