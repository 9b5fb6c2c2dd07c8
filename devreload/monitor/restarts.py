"""A restart, from the first event that asks for it to the new worker's first answer.

A restart is *pending* from its first trigger until its new worker starts (it waits for
the changes to be whole, and for a program that binds its own port, for the old process
to be gone), then *under way* until that worker says Ready, where it is timed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

from devreload.log import Logger
from devreload.monitor.events import FileChanged, ReloadRequested, Trigger
from devreload.monitor.settings import ReloadSettings

#: A single save (one file, whole: closed after writing or renamed into place) waits only
#: this long for a second file that would make it a burst. An editor's save is one event,
#: a ``git checkout`` or a formatter run over the tree sends the next file within it.
SINGLE_SAVE_WINDOW = 0.003
#: The longest wait before restarting a worker that keeps exiting 75 at once.
MAX_BACKOFF = 5.0
#: A worker that exits 75 sooner than this after its start counts as a quick exit.
QUICK_EXIT = 1.0


#: How old a changed file's mtime may be and still tell when it was saved: a monitor that
#: holds events back (watchman, on a tree that never settles) may report a save this late.
SAVE_HORIZON = 60.0
#: A change seen this long after its save is said to be late, in the "restarted in" line.
LATE = 0.5


@dataclass
class Restart:
    """A restart: what asked for it, and when."""

    triggers: list[Trigger]
    began: float
    last: float = 0.0
    #: How long it waits after its last trigger (the quiet window, or none at all).
    window: float = 0.0
    #: When the save it is for happened (wall clock): the reload timeline's zero.
    saved: float = 0.0
    #: From the save to the moment the monitor saw it: part of the restart's time.
    lag: float = 0.0
    #: Its "restarted in" line was said: a fresh retry after a forked worker's failure
    #: is the same restart, and says nothing more.
    said: bool = False

    @classmethod
    def first(cls, trigger: Trigger, now: float, reload_interval: float) -> Restart:
        saved = saved_at(trigger)
        restart = cls([trigger], began=now, last=now, saved=saved,
                      lag=max(0.0, time.time() - saved))
        restart.window = quiet_window(restart.triggers, reload_interval)
        return restart

    def add(self, trigger: Trigger, now: float, reload_interval: float) -> None:
        """One more change before the new worker starts: the window counts from it."""
        self.triggers.append(trigger)
        self.last = now
        self.window = quiet_window(self.triggers, reload_interval)

    def joined(self, trigger: Trigger, now: float, reload_interval: float) -> Restart:
        """This restart with one more trigger: a new one when this one's worker had
        started already (it never answered), keeping this one's line and clock."""
        restart = Restart([*self.triggers, trigger], began=self.began, last=now,
                          saved=self.saved, lag=self.lag)
        restart.window = quiet_window(restart.triggers, reload_interval)
        return restart

    def again(self, now: float) -> Restart:
        """The same restart once more (a forked worker failed, a fresh one follows): its
        line says what changed, and its time includes the failed attempt."""
        return Restart(self.triggers, began=self.began, last=now, saved=self.saved,
                       lag=self.lag, said=self.said)

    @property
    def due(self) -> float:
        """When the changes count as whole: the quiet window after the last one."""
        return self.last + self.window

    def describe(self) -> str:
        """``views.py (+2 more) changed``, or the reason a restart was asked for."""
        first = self.triggers[0]
        more = len(set(self.triggers)) - 1
        text = f"{first.describe()} (+{more} more)" if more else first.describe()
        return f"{text} changed" if isinstance(first, FileChanged) else text


def quiet_window(triggers: Sequence[Trigger], reload_interval: float) -> float:
    """The quiet time a restart waits for: next to none for one whole file, unless the
    user chose the window: one they set is honoured for every save."""
    last = triggers[-1]
    chosen = reload_interval != ReloadSettings.reload_interval
    if chosen or not isinstance(last, FileChanged) or not last.final:
        return reload_interval
    if all(isinstance(t, FileChanged) and t.path == last.path for t in triggers):
        return min(SINGLE_SAVE_WINDOW, reload_interval)
    return reload_interval


def saved_at(trigger: Trigger) -> float:
    """When the save happened: the file's new mtime, if it is not older than
    ``SAVE_HORIZON`` (a file moved into place keeps its old one) nor newer than the event."""
    now = time.time()
    if not isinstance(trigger, FileChanged):
        return now
    try:
        mtime = os.lstat(trigger.path).st_mtime  # a link just made: its own time
    except OSError:
        return trigger.seen
    return mtime if trigger.seen - SAVE_HORIZON < mtime <= trigger.seen else trigger.seen


class Restarts:
    """The restart pending and the one under way, and the timeline lines (-v) and the
    "restarted in" line that follow them."""

    def __init__(self, log: Logger, reload_interval: float) -> None:
        self.log = log
        self.reload_interval = reload_interval
        #: Waiting for its changes to be whole (and, maybe, for the old worker to go).
        self.pending: Restart | None = None
        #: Its new worker is starting: timed until it says Ready.
        self.underway: Restart | None = None
        #: Exits 75 in a row, each soon after its worker started (see QUICK_EXIT).
        self.quick_exits = 0

    def add(self, trigger: Trigger, now: float, starting: bool) -> bool:
        """A trigger arrived; True when it begins a restart (stop the worker), False when
        it joins the pending one. A change while the next worker is still ``starting``
        joins that worker's restart: it never answered, its replacement takes over its
        line and its clock."""
        if self.pending is not None:
            self.pending.add(trigger, now, self.reload_interval)
            return False
        if starting and self.underway is not None:
            self.pending = self.underway.joined(trigger, now, self.reload_interval)
            self.underway = None
            self.mark(self.pending, f"{trigger.describe()} changed while the new worker started")
        else:
            self.pending = Restart.first(trigger, now, self.reload_interval)
            self.mark(self.pending, f"first event seen ({trigger.describe()})",
                      trigger.seen if isinstance(trigger, FileChanged) else None)
        return True

    def begin(self) -> None:
        """The pending restart starts its worker now."""
        pending, self.pending = self.pending, None
        if pending is not None:
            self.underway = pending
            self.mark(pending, f"restart decided (quiet for {pending.window * 1000:.0f} ms)"
                      + _not_whole(pending.triggers[-1]))

    def retry(self, origin: Restart | None, now: float) -> None:
        """The same restart once more, another way (a forked worker failed)."""
        origin = origin or Restart([ReloadRequested("a fresh worker")], began=now)
        self.pending = origin.again(now)

    def asked(self, lived: float, now: float) -> None:
        """The worker exited 75 after ``lived`` seconds. One that keeps asking as soon as it
        starts is a loop: from the second time on, back off, doubling up to MAX_BACKOFF."""
        self.quick_exits = self.quick_exits + 1 if lived < QUICK_EXIT else 0
        backoff = 0.0
        if self.quick_exits > 1:
            backoff = min(0.1 * 2.0 ** (self.quick_exits - 2), MAX_BACKOFF)
            self.log.info("the worker asks for a restart as soon as it starts; "
                          "backing off %.1f s", backoff)
        self.pending = Restart([ReloadRequested("exit code 75")], began=now, last=now,
                               window=backoff)

    def served(self, pid: int, started: float, now: float) -> None:
        """The worker ``pid`` started at ``started`` serves: the restart is done."""
        underway, self.underway = self.underway, None
        if underway is None or underway.said:
            self.log.debug("worker %d ready in %.0f ms", pid, (now - started) * 1000)
        else:
            underway.said = True
            late = (f"; the change was seen {underway.lag:.1f} s after the save"
                    if underway.lag >= LATE else "")
            self.log.info("%s; restarted in %.0f ms%s", underway.describe(),
                          (underway.lag + now - underway.began) * 1000, late)

    def mark(self, restart: Restart | None, phase: str, at: float | None = None) -> None:
        """One line of the reload timeline (-v): ``phase``, in ms from the save."""
        if restart is not None and restart.saved:
            at = time.time() if at is None else at
            self.log.debug("timeline %+7.1f ms  %s", (at - restart.saved) * 1000, phase)


def _not_whole(last: Trigger) -> str:
    """Why the quiet window was waited out in full: the last change was not a whole save."""
    if not isinstance(last, FileChanged) or last.final:
        return ""
    return f": {last.describe()} was not known whole ({last.why or 'not closed or renamed'})"
