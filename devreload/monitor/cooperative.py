"""Cooperative restarts: a change does not stop the worker, it tells it.

A bot or a queue consumer should not be stopped in the middle of a job: the worker is
sent ``RestartPending`` (``devreload.should_restart()`` turns True there) and leaves at a
safe point by exiting 75; with a timeout, it is stopped anyway once that has passed.
"""

from __future__ import annotations

import contextlib

from devreload.log import Logger
from devreload.monitor.record import Worker
from devreload.monitor.settings import ReloadSettings
from devreload.wire.channel import ChannelClosed
from devreload.wire.messages import RestartPending


class Cooperation:
    """When the worker was asked to leave, and when it is stopped if it does not."""

    def __init__(self, settings: ReloadSettings, log: Logger) -> None:
        self.cooperative = settings.cooperative
        self.timeout = settings.cooperative_timeout
        self.log = log
        self._asked_at: float | None = None

    def ask(self, worker: Worker | None, now: float) -> bool:
        """Tell ``worker`` a restart is pending; False when it is to be stopped instead."""
        if not self.cooperative or worker is None:
            return False
        self._asked_at = now
        self.log.debug("told worker %d that a restart is pending", worker.pid)
        with contextlib.suppress(ChannelClosed):
            worker.channel.send(RestartPending())
        return True

    def forget(self) -> None:
        """The worker is stopped or gone: nothing is asked of it any more."""
        self._asked_at = None

    def deadline(self) -> float | None:
        """When the worker asked to leave is stopped anyway, if ever."""
        if self._asked_at is None or self.timeout is None:
            return None
        return self._asked_at + self.timeout

    def overdue(self, now: float) -> bool:
        deadline = self.deadline()
        if deadline is None or now < deadline:
            return False
        self.log.info("the worker did not leave within %.1f s of the change; stopping it",
                      self.timeout)
        return True
