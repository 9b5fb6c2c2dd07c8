"""The monitor's restart loop, driven step by step on a fake clock with fake workers.

``ReloadStrategy`` is the real class; only the launcher (no processes are started or
signalled) and the clock (no waiting) are fakes. A test feeds events with ``handle``
and moves time with ``advance`` after moving the clock, the way ``run`` does between
two events, so timing rules (quiet window, kill deadline, backoff) are checked exactly
and the whole file runs in milliseconds.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeClock, FakeLauncher, RecordingLogger

from devreload.monitor.events import (
    EnterPressed,
    ExitSeen,
    FileChanged,
    ReloadRequested,
    SignalReceived,
    Trigger,
    WorkerSaid,
)
from devreload.monitor.record import Worker
from devreload.monitor.restarts import MAX_BACKOFF, QUICK_EXIT, SINGLE_SAVE_WINDOW
from devreload.monitor.settings import ReloadSettings
from devreload.monitor.standin import StandIn
from devreload.monitor.strategy import ReloadStrategy
from devreload.monitor.workers import SETTLE_AFTER_READY
from devreload.wire.channel import Channel
from devreload.wire.contract import EXIT_RELOAD
from devreload.wire.messages import (
    AtGate,
    Failed,
    Files,
    FromWorker,
    Hurry,
    Modules,
    Ready,
    Released,
    ReloadAsked,
    ShutdownAsked,
    Watch,
)

#: Far enough on either side of a deadline that float rounding cannot matter.
EPS = 0.001


class Recording(ReloadStrategy):
    """A strategy that remembers its hook calls, and may veto some triggers."""

    def __init__(
        self, *args: Any, veto: Callable[[Trigger], bool] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.veto = veto
        self.asked: list[Trigger] = []
        self.crashes: list[str] = []
        self.recoveries = 0
        self.modules: list[tuple[Sequence[str], float | None]] = []

    def should_restart(self, trigger: Trigger) -> bool:
        self.asked.append(trigger)
        return not (self.veto and self.veto(trigger))

    def on_crash(self, error: str) -> None:
        self.crashes.append(error)

    def on_recover(self) -> None:
        self.recoveries += 1

    def on_report(self, report: Modules | Watch | Files, since: float | None) -> None:
        if isinstance(report, Modules):
            self.modules.append((report.files, since))


@dataclass
class Loop:
    """One strategy with its fakes, and the moves ``run`` would make."""

    strategy: Recording
    launcher: FakeLauncher
    clock: FakeClock
    log: RecordingLogger
    before_reload: list[float] = field(default_factory=list)
    #: Every worker record the strategy has held, to close their channels at the end.
    workers: list[Worker] = field(default_factory=list)

    def note_worker(self) -> None:
        worker = self.strategy.worker
        if worker is not None and all(w is not worker for w in self.workers):
            self.workers.append(worker)

    @property
    def pid(self) -> int:
        """The current worker's pid."""
        assert self.strategy.worker is not None, "no current worker"
        return self.strategy.worker.pid

    @property
    def starts(self) -> int:
        return len(self.launcher.started)

    def tick(self, seconds: float = 0.0) -> None:
        """Let ``seconds`` pass with no event, then let the loop act on its deadlines."""
        self.clock.advance(seconds)
        self.strategy.advance()
        self.note_worker()

    def send(self, event: Any) -> None:
        """One event through the loop: ``handle`` then ``advance``, as in ``run``."""
        self.strategy.handle(event)
        self.strategy.advance()
        self.note_worker()

    def exits(self, pid: int, code: int) -> None:
        """The worker ``pid`` exits with ``code``; its SIGCHLD reaches the loop."""
        self.launcher.exit(pid, code)
        self.send(SignalReceived(signal.SIGCHLD))

    def says(self, message: FromWorker) -> None:
        """The current worker sends ``message`` over its channel."""
        self.send(WorkerSaid(self.strategy.worker, message))

    def finished(self) -> bool:
        """The condition on which ``ReloadStrategy.run`` returns."""
        s = self.strategy
        return s.exit_code is not None and s.worker is None and not s.workers.changeover


@pytest.fixture
def make() -> Iterator[Callable[..., Loop]]:
    """Build a started strategy on fakes; keyword arguments are its settings (and its
    ``sockets``, and a ``veto``). At the
    end, close the monitor's ends of every worker's channel (the strategy drops those
    of stopped workers to the garbage collector)."""
    loops: list[Loop] = []

    def build(**kwargs: Any) -> Loop:
        launcher, clock, log = FakeLauncher(), FakeClock(), RecordingLogger()
        launcher.keep_ends = True
        before: list[float] = []
        sockets, veto = kwargs.pop("sockets", ()), kwargs.pop("veto", None)
        stand_in = kwargs.pop("stand_in", None)
        settings = ReloadSettings(before_reload=lambda: before.append(clock()), **kwargs)
        strategy = Recording("x:y", settings, logger=log, launcher=launcher, sockets=sockets,
                             veto=veto)
        strategy.clock = clock
        # Never touch the developer's terminal (tcsetattr) nor read Enter from it.
        strategy._terminal.saved = None
        strategy._terminal.interactive = False
        strategy.workers.stand_in = stand_in
        strategy.startup()
        loop = Loop(strategy, launcher, clock, log, before)
        loop.note_worker()
        loops.append(loop)
        return loop

    yield build
    for loop in loops:
        for worker in loop.workers:
            worker.channel.close()
        for end in loop.launcher.ends.values():
            end.close()


# ------------------------------------------------------------------------- file changes


def test_before_reload_runs_once_the_old_worker_no_longer_accepts(
    make: Callable[..., Loop],
) -> None:
    """A slow callback (serving reads the ini again in it) must not leave the old worker
    answering requests sent after the save."""
    loop = make()
    first = loop.pid
    told: list[list[tuple[int, int]]] = []
    loop.strategy.settings = replace(loop.strategy.settings,
                                     before_reload=lambda: told.append(list(loop.launcher.signals)))
    loop.send(FileChanged("app/views.py"))
    assert told == [[(first, signal.SIGTERM)]]


def test_an_exit_told_without_sigchld_reaches_the_loop(make: Callable[..., Loop]) -> None:
    """Windows has no SIGCHLD: the launcher's word that a worker exited is an event on the
    loop's queue like any other, and the restart goes on from it."""
    loop = make()
    loop.launcher.notifies = True
    first = loop.pid
    loop.send(FileChanged("app/views.py", final=True))
    assert loop.strategy.worker is None, "told to stop"
    event = loop.strategy.events.get_nowait()
    assert isinstance(event, ExitSeen) and loop.strategy.workers.changeover
    loop.send(event)
    assert not loop.strategy.workers.changeover, "reaped"
    loop.tick(ReloadSettings.reload_interval)
    assert loop.starts == 2 and loop.pid != first


def test_quiet_window_counts_from_the_last_change(make: Callable[..., Loop]) -> None:
    """The old worker stops at the first change; the new one waits for the files to be
    quiet for ``reload_interval``, so a save in several writes is one restart."""
    loop = make()
    first = loop.pid
    assert loop.launcher.started == [first] and loop.launcher.signals == []

    loop.send(FileChanged("app/views.py"))
    assert loop.launcher.signals == [(first, signal.SIGTERM)], "stopped at once"
    assert loop.before_reload == [loop.clock()]
    loop.exits(first, -signal.SIGTERM)
    assert loop.strategy.worker is None and not loop.strategy.workers.changeover

    loop.tick(0.03)
    loop.send(FileChanged("app/models.py"))
    loop.tick(ReloadSettings.reload_interval - 0.03 + EPS)  # the first change's window is over
    assert loop.starts == 1, "started while files were still changing"
    assert loop.strategy.time_to_wait() == pytest.approx(0.03 - EPS)

    loop.tick(0.03 - 2 * EPS)
    assert loop.starts == 1
    loop.tick(2 * EPS)
    assert loop.starts == 2
    assert loop.strategy.worker is not None and loop.pid == loop.launcher.started[1]
    assert loop.strategy.restarts.pending is None
    assert loop.strategy.time_to_wait() is None, "idle: wait for events only"
    assert loop.before_reload == [loop.before_reload[0]], "before_reload once per restart"


def test_a_burst_of_changes_is_one_restart(make: Callable[..., Loop]) -> None:
    """Changes inside the window join the pending restart: one new worker, and one log
    line that names the first file and counts the other distinct ones."""
    loop = make()
    first = loop.pid
    for path in ("app/views.py", "app/models.py", "app/views.py", "app/urls.py"):
        loop.send(FileChanged(path))
        loop.tick(0.01)
    assert loop.launcher.sent(signal.SIGTERM) == [first], "one SIGTERM for the burst"
    loop.exits(first, -signal.SIGTERM)
    loop.tick(ReloadSettings.reload_interval)
    assert loop.starts == 2

    loop.says(Ready())
    assert loop.log.lines("info", "restarted in") == [
        "app/views.py (+2 more) changed; restarted in 90 ms"
    ]


def test_no_new_worker_while_the_old_one_is_still_stopping(make: Callable[..., Loop]) -> None:
    """Two workers never overlap: past the quiet window, the new worker still waits for
    the old one's exit to be reaped (it may hold the port, or a database lock)."""
    loop = make()
    first = loop.pid
    loop.send(FileChanged("app/views.py"))  # obeys SIGTERM, but SIGCHLD is not here yet
    loop.tick(ReloadSettings.reload_interval + EPS)
    loop.tick(0.5)
    assert loop.starts == 1 and first in loop.strategy.workers.changeover.deadlines

    loop.send(SignalReceived(signal.SIGCHLD))
    assert loop.starts == 2 and not loop.strategy.workers.changeover


# ------------------------------------------------------------------------- crashes


def test_a_crash_waits_for_a_change(make: Callable[..., Loop]) -> None:
    """A worker that dies with an error is not restarted in a loop: the monitor waits
    for a file change, then starts exactly one new worker."""
    loop = make()
    first = loop.pid
    loop.exits(first, 1)
    s = loop.strategy
    assert s.crashed and s.worker is None and s.exit_code is None
    assert s.crashes == ["The app exited with code 1."]
    assert loop.log.lines("error") == ["worker exited with code 1; waiting for a change"]
    assert s.time_to_wait() is None, "nothing to wait for but an event"

    loop.tick(60.0)
    assert loop.starts == 1 and loop.launcher.signals == []

    loop.send(FileChanged("app/views.py"))
    assert loop.launcher.signals == [], "nothing left to stop"
    loop.tick(ReloadSettings.reload_interval + EPS)
    assert loop.starts == 2
    assert not s.crashed and s.recoveries == 1
    loop.tick(10.0)
    assert loop.starts == 2


def test_a_failed_start_is_retried_when_the_launcher_may_be_at_fault(
    make: Callable[..., Loop],
) -> None:
    """A worker that fails before it is ready, from a launcher that can start the next one
    another way (a fresh interpreter instead of a fork), is retried at once, without the
    crash page; a second failure is the app's and waits for a change."""
    loop = make(worker_announces_ready=True)
    loop.launcher.retry_failures = True
    first = loop.pid
    loop.exits(first, 1)
    assert loop.launcher.failures == [first]
    assert not loop.strategy.crashed and loop.strategy.crashes == []
    loop.tick(0.0)
    assert loop.starts == 2, "retried without waiting for a change"
    loop.launcher.retry_failures = False
    loop.exits(loop.pid, 1)
    assert loop.strategy.crashed
    loop.tick(60.0)
    assert loop.starts == 2


def test_a_worker_that_served_is_a_success(make: Callable[..., Loop]) -> None:
    """The launcher hears which workers started well: ready, or stopped for a restart."""
    loop = make(worker_announces_ready=True)
    first = loop.pid
    loop.says(Ready())
    assert loop.launcher.successes == [first]
    loop.send(FileChanged("app/views.py"))
    loop.send(SignalReceived(signal.SIGCHLD))  # it obeyed the SIGTERM
    assert loop.launcher.successes == [first, first]
    loop.tick(ReloadSettings.reload_interval + EPS)
    second = loop.pid
    loop.exits(second, 1)
    assert loop.launcher.failures == [second], "it crashed before it was ready"


def test_a_worker_that_said_ready_then_died_served_though_the_loop_had_not_heard(
    make: Callable[..., Loop],
) -> None:
    """Ready and the exit come by different threads: a worker that served one request and
    died may be reaped before its Ready is handled. It served, so it is no failed start,
    and a fresh worker is no help: the crash waits for a change."""
    loop = make(worker_announces_ready=True)
    loop.launcher.retry_failures = True
    first = loop.pid
    Channel(loop.launcher.ends[first]).send(Ready())
    loop.exits(first, 3)
    assert loop.launcher.failures == [] and loop.launcher.successes == [first]
    assert loop.strategy.crashed
    loop.tick(60.0)
    assert loop.starts == 1


def test_crash_report_reaches_on_crash(make: Callable[..., Loop]) -> None:
    """The worker's traceback (a Failed message) is what on_crash shows, also when it
    arrives after the exit; a worker killed by a signal says which."""
    loop = make()
    loop.says(Failed("Traceback: boom"))
    loop.exits(loop.pid, 1)
    assert loop.strategy.crashes == ["Traceback: boom"]

    loop.send(FileChanged("app/views.py"))
    loop.tick(ReloadSettings.reload_interval + EPS)
    second = loop.pid
    assert loop.strategy.last_error == "", "a new worker starts with a clean slate"
    loop.exits(second, -signal.SIGSEGV)
    assert loop.strategy.crashes[-1] == f"The app exited with signal {signal.SIGSEGV}."
    loop.send(WorkerSaid(object(), Failed("Traceback: late")))
    assert loop.strategy.crashes[-1] == "Traceback: late"


def test_enter_restarts_a_crashed_app_fresh(make: Callable[..., Loop]) -> None:
    """Enter after a crash restarts and drops the template (libraries may have been
    upgraded); Enter while the app runs does nothing."""
    loop = make()
    loop.send(EnterPressed())
    assert loop.launcher.signals == [] and loop.strategy.restarts.pending is None

    loop.exits(loop.pid, 1)
    loop.send(EnterPressed())
    assert loop.launcher.refreshed == 1 and loop.launcher.closed == 0
    loop.tick(ReloadSettings.reload_interval + EPS)
    assert loop.starts == 2 and not loop.strategy.crashed
    loop.says(Ready())
    assert loop.log.lines("info", "restarted in")[0].startswith("Enter pressed; ")


# ------------------------------------------------------------------------- exit 75


def test_exit_75_restarts_at_once(make: Callable[..., Loop]) -> None:
    """A worker asking for a restart (exit 75) is replaced without a file change and
    without waiting for a quiet window."""
    loop = make()
    loop.tick(5.0)
    loop.exits(loop.pid, EXIT_RELOAD)
    assert loop.starts == 2, "restarted on the SIGCHLD, with no wait"
    assert not loop.strategy.crashed and loop.strategy.crashes == []
    loop.says(Ready())
    assert loop.log.lines("info", "restarted in") == ["exit code 75; restarted in 0 ms"]


def _quick_exit_75(loop: Loop) -> float:
    """The current worker exits 75 at once; the delay before its successor starts,
    checked to the millisecond on the fake clock."""
    before = loop.starts
    loop.exits(loop.pid, EXIT_RELOAD)
    if loop.starts > before:
        return 0.0
    wait = loop.strategy.time_to_wait()
    assert wait is not None and wait > 0
    loop.tick(wait - EPS)
    assert loop.starts == before, f"started before its {wait:.3f} s backoff"
    loop.tick(2 * EPS)
    assert loop.starts == before + 1, f"not started after its {wait:.3f} s backoff"
    return round(wait, 6)


def test_quick_exit_75_loop_backs_off_doubling(make: Callable[..., Loop]) -> None:
    """A worker that exits 75 as soon as it starts would spin; from the second quick
    exit the monitor waits 0.1 s, doubling up to MAX_BACKOFF."""
    loop = make()
    delays = [_quick_exit_75(loop) for _ in range(9)]
    assert delays == [0.0, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, MAX_BACKOFF, MAX_BACKOFF]
    assert loop.log.lines("info", "backing off")[0] == (
        "the worker asks for a restart as soon as it starts; backing off 0.1 s"
    )
    assert len(loop.log.lines("info", "backing off")) == 8


def test_backoff_resets_after_a_worker_that_lived(make: Callable[..., Loop]) -> None:
    """Once a worker has lived longer than QUICK_EXIT, its exit 75 is an ordinary
    request: restart at once, and the quick-exit count starts over."""
    loop = make()
    assert [_quick_exit_75(loop) for _ in range(3)] == [0.0, 0.1, 0.2]
    loop.tick(QUICK_EXIT + EPS)
    assert [_quick_exit_75(loop) for _ in range(3)] == [0.0, 0.0, 0.1]


def test_exit_75_during_a_restart_is_not_a_second_restart(make: Callable[..., Loop]) -> None:
    """A worker being stopped for a change may exit with any code; the pending restart
    decides, and the worker is not counted as a crash or an exit-75 request."""
    loop = make()
    first = loop.pid
    loop.launcher.obeys_sigterm = False
    loop.send(FileChanged("app/views.py"))
    loop.exits(first, EXIT_RELOAD)
    assert loop.strategy.restarts.quick_exits == 0 and not loop.strategy.crashed
    loop.tick(ReloadSettings.reload_interval + EPS)
    assert loop.starts == 2


# ------------------------------------------------------------------------- stopping


def test_a_worker_that_ignores_sigterm_is_killed_after_shutdown_interval(
    make: Callable[..., Loop],
) -> None:
    """SIGTERM first; SIGKILL once ``shutdown_interval`` has passed and not before, once;
    the new worker starts only when the killed one has been reaped."""
    loop = make()
    first = loop.pid
    loop.launcher.obeys_sigterm = False
    loop.send(FileChanged("app/views.py"))
    assert loop.launcher.signals == [(first, signal.SIGTERM)]

    loop.tick(ReloadSettings.reload_interval + EPS)
    loop.tick(ReloadSettings.shutdown_interval - ReloadSettings.reload_interval - 2 * EPS)
    assert loop.launcher.sent(signal.SIGKILL) == [] and loop.starts == 1
    loop.tick(2 * EPS)
    assert loop.launcher.sent(signal.SIGKILL) == [first]
    assert loop.log.lines("debug", "did not stop") == [
        f"worker {first} did not stop in time; killing it"
    ]
    loop.tick(10.0)
    assert loop.launcher.sent(signal.SIGKILL) == [first], "killed once"
    assert loop.starts == 1

    loop.send(SignalReceived(signal.SIGCHLD))
    assert loop.starts == 2


def test_shutdown_interval_is_configurable(make: Callable[..., Loop]) -> None:
    """The kill deadline follows the ``shutdown_interval`` argument."""
    loop = make(shutdown_interval=0.2)
    first = loop.pid
    loop.launcher.obeys_sigterm = False
    loop.send(SignalReceived(signal.SIGTERM))
    loop.tick(0.2 - EPS)
    assert loop.launcher.sent(signal.SIGKILL) == []
    loop.tick(2 * EPS)
    assert loop.launcher.sent(signal.SIGKILL) == [first]


def test_no_busy_wait_while_the_old_worker_stops(make: Callable[..., Loop]) -> None:
    """While the old worker takes its time over SIGTERM, ``run`` should sleep until the
    kill deadline (or a SIGCHLD), not poll with a zero timeout past the quiet window."""
    loop = make()
    loop.launcher.obeys_sigterm = False
    loop.send(FileChanged("app/views.py"))
    loop.tick(ReloadSettings.reload_interval + EPS)
    assert loop.strategy.time_to_wait() == pytest.approx(
        ReloadSettings.shutdown_interval - ReloadSettings.reload_interval - EPS
    )


# ------------------------------------------------------------------------- signals and vetoes


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_or_sigint_stops_for_good(make: Callable[..., Loop], signum: int) -> None:
    """Ctrl-C or SIGTERM stops the worker and ends the monitor with 0; a change arriving
    while it stops does not start another worker."""
    loop = make()
    first = loop.pid
    loop.send(SignalReceived(signum))
    assert loop.launcher.signals == [(first, signal.SIGTERM)]
    assert loop.strategy.exit_code == 0 and not loop.finished()
    loop.send(FileChanged("app/views.py"))
    assert loop.strategy.asked == [], "no trigger is even considered once stopping"
    loop.exits(first, -signal.SIGTERM)
    loop.tick(1.0)
    assert loop.finished() and loop.starts == 1


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_during_the_quiet_window_cancels_the_restart(
    make: Callable[..., Loop], signum: int
) -> None:
    """Between the old worker's exit and the new one's start there is no worker to stop:
    the pending restart is dropped and the monitor ends."""
    loop = make()
    first = loop.pid
    loop.send(FileChanged("app/views.py"))
    loop.exits(first, -signal.SIGTERM)
    loop.send(SignalReceived(signum))
    assert loop.strategy.exit_code == 0 and loop.finished()
    loop.tick(1.0)
    assert loop.starts == 1 and loop.launcher.signals == [(first, signal.SIGTERM)]


def test_a_second_ctrl_c_kills(make: Callable[..., Loop]) -> None:
    """An impatient second Ctrl-C kills a worker that is slow to stop, at once."""
    loop = make()
    first = loop.pid
    loop.launcher.obeys_sigterm = False
    loop.send(SignalReceived(signal.SIGINT))
    loop.send(SignalReceived(signal.SIGINT))
    assert loop.launcher.signals == [(first, signal.SIGTERM), (first, signal.SIGKILL)]
    loop.send(SignalReceived(signal.SIGCHLD))
    assert loop.finished()


def test_worker_exit_0_ends_the_monitor(make: Callable[..., Loop]) -> None:
    """A worker that finishes normally (a script that ran to its end) is not restarted."""
    loop = make()
    loop.exits(loop.pid, 0)
    loop.tick(1.0)
    assert loop.strategy.exit_code == 0 and loop.finished() and loop.starts == 1


def test_should_restart_can_veto(make: Callable[..., Loop]) -> None:
    """A subclass's ``should_restart`` sees every trigger; False leaves the worker
    running untouched."""
    loop = make(veto=lambda t: isinstance(t, FileChanged) and t.path.endswith(".log"))
    first = loop.pid
    loop.send(FileChanged("app/debug.log"))
    loop.tick(1.0)
    assert loop.launcher.signals == [] and loop.starts == 1 and loop.pid == first
    assert loop.strategy.restarts.pending is None and loop.before_reload == []

    loop.send(ReloadRequested("webhook"))
    assert loop.strategy.asked == [FileChanged("app/debug.log"), ReloadRequested("webhook")]
    assert loop.launcher.signals == [(first, signal.SIGTERM)]


def test_sighup_restarts_fresh(make: Callable[..., Loop]) -> None:
    """SIGHUP restarts now and drops the template, like Enter after a crash."""
    loop = make()
    first = loop.pid
    loop.send(SignalReceived(signal.SIGHUP))
    assert loop.launcher.refreshed == 1 and loop.launcher.closed == 0
    assert loop.launcher.signals == [(first, signal.SIGTERM)]
    assert loop.strategy.exit_code is None


def test_a_restart_is_timed_from_the_save_however_late_it_was_seen(
    make: Callable[..., Loop], tmp_path: Path
) -> None:
    """A monitor that held the event back (watchman on a busy tree) does not hide it: the
    time runs from the file's mtime, and the line says how late the change was seen."""
    loop = make()
    loop.says(Ready())
    old = loop.strategy.worker
    assert old is not None
    views = tmp_path / "views.py"
    views.write_text("x")
    seen = time.time()
    os.utime(views, (seen - 2.0, seen - 2.0))
    loop.send(FileChanged(str(views), seen=seen))
    loop.exits(old.pid, -signal.SIGTERM)
    loop.tick(ReloadSettings.reload_interval + EPS)
    loop.clock.advance(0.1)
    loop.says(Ready())
    (line,) = loop.log.lines("info", "restarted in")
    took = int(line.split("restarted in ")[1].split(" ms")[0])
    assert 2100 <= took < 2600, line
    assert line.endswith("; the change was seen 2.0 s after the save")


# ------------------------------------------------------------------------- worker messages


def test_ready_logs_the_restart_time_once(make: Callable[..., Loop]) -> None:
    """The restart is timed from the first change to the new worker's Ready, once;
    the first worker's Ready and a stale worker's messages are no restart."""
    loop = make()
    old = loop.strategy.worker
    loop.clock.advance(0.02)
    loop.says(Ready())
    assert loop.log.lines("info") == []
    assert loop.log.lines("debug", "ready in") == [f"worker {loop.pid} ready in 20 ms"]

    assert old is not None
    loop.send(FileChanged("app/views.py"))
    loop.exits(old.pid, -signal.SIGTERM)
    loop.tick(ReloadSettings.reload_interval + EPS)
    loop.send(WorkerSaid(old, Ready()))
    loop.send(WorkerSaid(old, ReloadAsked()))
    assert loop.log.lines("info") == [] and loop.starts == 2

    loop.clock.advance(0.1)
    loop.says(Ready())
    loop.says(Ready())
    assert loop.log.lines("info", "restarted in") == ["app/views.py changed; restarted in 151 ms"]
    assert loop.strategy.worker is not None and loop.strategy.worker.ready


def test_worker_requests_reload_and_shutdown(make: Callable[..., Loop]) -> None:
    """``trigger_reload()`` in the worker restarts it; ``graceful_shutdown()`` ends
    the monitor; imported modules go to the hooks and the launcher's preload."""
    loop = make()
    first = loop.pid
    assert loop.strategy.worker is not None
    born = loop.strategy.worker.born
    loop.says(Modules(("app/views.py",), ("json",)))
    assert loop.strategy.modules == [(("app/views.py",), born)]
    assert loop.launcher.preloaded == [("json",)]

    loop.says(ReloadAsked())
    assert loop.strategy.asked == [ReloadRequested("trigger_reload()")]
    loop.exits(first, -signal.SIGTERM)
    loop.tick(ReloadSettings.reload_interval + EPS)
    second = loop.pid
    assert second != first

    loop.says(ShutdownAsked())
    assert loop.strategy.exit_code == 0
    assert loop.launcher.signals[-1] == (second, signal.SIGTERM)
    loop.exits(second, -signal.SIGTERM)
    assert loop.finished() and loop.starts == 2


def test_a_cooperative_worker_is_told_not_stopped(make: Callable[..., Loop]) -> None:
    """Under a cooperative monitor a change is a request: the worker leaves at its own
    safe point by exiting 75, and the next one starts after the quiet window."""
    loop = make(cooperative=True)
    first = loop.pid
    loop.send(FileChanged("app/views.py"))
    assert loop.launcher.signals == [] and loop.pid == first
    assert loop.strategy.time_to_wait() is None, "nothing to wait for but the worker"
    loop.tick(30.0)
    assert loop.starts == 1 and loop.launcher.signals == []
    loop.exits(first, 75)
    loop.tick(ReloadSettings.reload_interval + EPS)
    assert loop.starts == 2 and not loop.strategy.crashed


def test_a_cooperative_worker_that_never_leaves_is_stopped_after_its_timeout(
    make: Callable[..., Loop],
) -> None:
    loop = make(cooperative=True, cooperative_timeout=2.0)
    first = loop.pid
    loop.send(FileChanged("app/views.py"))
    assert loop.strategy.time_to_wait() == pytest.approx(2.0)
    loop.tick(2.0 - EPS)
    assert loop.launcher.signals == []
    loop.tick(2 * EPS)
    assert loop.launcher.sent(signal.SIGTERM) == [first]
    loop.send(SignalReceived(signal.SIGCHLD))
    loop.tick(ReloadSettings.reload_interval)
    assert loop.starts == 2


# ------------------------------------------------------------------------- single saves


def test_a_single_whole_save_skips_the_quiet_window(make: Callable[..., Loop]) -> None:
    """One file, closed after writing or renamed into place: the next worker starts after
    SINGLE_SAVE_WINDOW, not the burst window."""
    loop = make()
    first = loop.pid
    loop.send(FileChanged("app/views.py", final=True))
    loop.exits(first, -signal.SIGTERM)
    loop.tick(SINGLE_SAVE_WINDOW - EPS)
    assert loop.starts == 1
    loop.tick(2 * EPS)
    assert loop.starts == 2


def test_a_window_the_user_set_is_honoured_for_a_single_save(
    make: Callable[..., Loop],
) -> None:
    """``--reload-interval 1``: five saves of one file 0.25 s apart are one restart."""
    loop = make(reload_interval=1.0)
    first = loop.pid
    loop.send(FileChanged("app/views.py", final=True))
    loop.exits(first, -signal.SIGTERM)
    for _ in range(4):
        loop.tick(0.25)
        loop.send(FileChanged("app/views.py", final=True))
    loop.tick(1.0 - EPS)
    assert loop.starts == 1
    loop.tick(2 * EPS)
    assert loop.starts == 2


def test_a_change_not_known_whole_waits_for_the_quiet_window(make: Callable[..., Loop]) -> None:
    loop = make()
    loop.send(FileChanged("app/views.py"))  # a file created: its writer may not be done
    loop.exits(loop.launcher.started[0], -signal.SIGTERM)
    loop.tick(SINGLE_SAVE_WINDOW + EPS)
    assert loop.starts == 1
    loop.tick(ReloadSettings.reload_interval)
    assert loop.starts == 2


def test_a_second_file_makes_a_burst(make: Callable[..., Loop]) -> None:
    """A ``git checkout`` or a formatter run over the tree: the next file arrives within
    the single-save window, and the whole burst waits for quiet."""
    loop = make()
    loop.send(FileChanged("app/views.py", final=True))
    loop.exits(loop.launcher.started[0], -signal.SIGTERM)
    loop.tick(0.001)
    loop.send(FileChanged("app/models.py", final=True))
    loop.tick(SINGLE_SAVE_WINDOW + EPS)
    assert loop.starts == 1
    loop.tick(ReloadSettings.reload_interval)
    assert loop.starts == 2


def test_a_formatter_rewriting_the_saved_file_is_the_same_save(
    make: Callable[..., Loop],
) -> None:
    loop = make()
    loop.send(FileChanged("app/views.py", final=True))
    loop.exits(loop.launcher.started[0], -signal.SIGTERM)
    loop.tick(0.002)
    loop.send(FileChanged("app/views.py", final=True))  # the formatter's rewrite
    loop.tick(SINGLE_SAVE_WINDOW - EPS)
    assert loop.starts == 1, "the window counts from the rewrite"
    loop.tick(2 * EPS)
    assert loop.starts == 2
    loop.says(Ready())
    assert len(loop.log.lines("info", "restarted in")) == 1


def test_a_change_while_the_next_worker_starts_joins_its_restart(
    make: Callable[..., Loop],
) -> None:
    """The worker that never answered is replaced; one restart, one line, one clock."""
    loop = make()
    loop.send(FileChanged("app/views.py", final=True))
    loop.exits(loop.launcher.started[0], -signal.SIGTERM)
    loop.tick(SINGLE_SAVE_WINDOW + EPS)
    second = loop.pid
    loop.send(FileChanged("app/models.py", final=True))
    assert loop.launcher.sent(signal.SIGTERM)[-1] == second
    loop.exits(second, -signal.SIGTERM)
    loop.tick(ReloadSettings.reload_interval + EPS)
    assert loop.starts == 3
    loop.says(Ready())
    (line,) = loop.log.lines("info", "restarted in")
    assert line.startswith("app/views.py (+1 more) changed; restarted in 5")


def test_on_its_sockets_the_next_worker_starts_before_the_old_one_stops_accepting(
    make: Callable[..., Loop],
) -> None:
    """It imports the app meanwhile, and is told to accept only once the old one says
    it no longer does."""
    listener = socket.socket()
    try:
        loop = make(sockets=[listener])
        first = loop.pid
        loop.says(Ready())
        assert loop.launcher.prepared == 0, "the first pages come first"
        loop.tick(SETTLE_AFTER_READY + EPS)
        assert loop.launcher.prepared == 1, "a spare asked for once the worker serves"
        loop.send(FileChanged("app/views.py", final=True))
        loop.tick(SINGLE_SAVE_WINDOW + EPS)
        assert loop.starts == 2, "did not wait for the old worker to stop accepting"
        new = loop.strategy.worker
        assert new is not None and new.gated
        old = loop.workers[0]
        loop.send(WorkerSaid(old, Released()))
        assert not new.gated
        assert first in loop.strategy.workers.changeover.released
    finally:
        listener.close()


def test_an_old_server_drains_its_requests_until_the_drain_interval_unless_all_stops(
    make: Callable[..., Loop],
) -> None:
    """Once it stopped accepting, an old worker only finishes requests under way: it is
    killed after the drain interval (plus the shutdown interval), not the shutdown
    interval; Ctrl-C hurries it, and it gets the shutdown interval from then."""
    listener = socket.socket()
    try:
        loop = make(sockets=[listener], drain_interval=10.0)
        loop.launcher.obeys_sigterm = False
        loop.says(Ready())
        first = loop.pid
        loop.send(FileChanged("app/views.py", final=True))
        old = loop.workers[0]
        loop.send(WorkerSaid(old, Released()))
        loop.tick(SINGLE_SAVE_WINDOW + EPS)
        loop.says(Ready())
        loop.tick(10.0)
        assert loop.launcher.sent(signal.SIGKILL) == []
        loop.tick(ReloadSettings.shutdown_interval)
        assert loop.launcher.sent(signal.SIGKILL) == [first]

        second = loop.pid
        loop.send(FileChanged("app/views.py", final=True))
        loop.send(WorkerSaid(loop.workers[1], Released()))
        loop.tick(SINGLE_SAVE_WINDOW + EPS)
        loop.says(Ready())
        loop.tick(1.0)
        loop.send(SignalReceived(signal.SIGINT))
        assert any(isinstance(m, Hurry) for m in loop.launcher.told(second)), \
            "the draining worker was not told that everything stops"
        loop.tick(ReloadSettings.shutdown_interval + EPS)
        assert second in loop.launcher.sent(signal.SIGKILL)
    finally:
        listener.close()


def test_what_a_crashed_worker_said_before_it_died_counts_from_its_birth(
    make: Callable[..., Loop],
) -> None:
    """A worker's last reports (the files of its traceback) may reach the loop after its
    exit: they still count from its birth, so that a fix saved in between restarts it. A
    replaced worker's last reports do not (they may name the change that replaced it)."""
    loop = make()
    worker = loop.strategy.worker
    assert worker is not None
    loop.exits(worker.pid, 1)
    loop.send(WorkerSaid(worker, Modules(("app/views.py",), ())))
    assert loop.strategy.modules == [(("app/views.py",), worker.born)]

    loop.send(FileChanged("app/views.py"))
    loop.tick(ReloadSettings.reload_interval + EPS)
    replaced = loop.strategy.worker
    assert replaced is not None and replaced is not worker
    loop.send(FileChanged("app/views.py"))
    loop.exits(replaced.pid, -signal.SIGTERM)
    loop.send(WorkerSaid(replaced, Modules(("app/models.py",), ())))
    assert loop.strategy.modules[-1] == (("app/models.py",), None)


# ------------------------------------------------------------------------- the stand-in


@pytest.fixture
def replaced(make: Callable[..., Loop]) -> Iterator[Loop]:
    """A loop on a listening socket whose first worker is the monitor's own fork (pid
    4242, no launcher started it); it has served and settled: its successor is starting."""
    ours, theirs = Channel.pair()
    listener = socket.socket()
    try:
        loop = make(sockets=[listener], stand_in=StandIn(4242, ours))
        assert (loop.pid, loop.starts, loop.launcher.adopted) == (4242, 0, [4242])
        loop.says(Ready())
        assert loop.starts == 0, "its first pages come first"
        loop.tick(SETTLE_AFTER_READY + EPS)
        yield loop
    finally:
        listener.close()
        theirs.close()


def test_a_stand_in_serves_until_its_successor_waits_at_its_gate(replaced: Loop) -> None:
    """The monitor's fork serves first; once it has served, a worker started the usual
    way builds the app gated, and only then is the stand-in told to stop; the gate opens
    when it has released the sockets."""
    loop = replaced
    assert loop.starts == 1 and loop.launcher.prepared == 0, "no spare before the successor"
    successor = loop.strategy.worker
    assert successor is not None and successor.gated and not successor.stand_in
    assert loop.launcher.sent(signal.SIGTERM) == [], "the stand-in serves on meanwhile"
    loop.says(AtGate(time.time()))
    assert loop.launcher.sent(signal.SIGTERM) == [4242]
    loop.send(WorkerSaid(loop.workers[0], Released()))
    assert not successor.gated
    loop.says(Ready())
    loop.tick(SETTLE_AFTER_READY + EPS)
    assert loop.launcher.prepared == 1, "from here on, as after any start"
    assert not any("restarted in" in line for _, line in loop.log.records)


def test_a_change_or_a_stop_while_the_successor_builds_stops_the_stand_in_too(
    replaced: Loop,
) -> None:
    loop = replaced
    successor = loop.pid
    loop.send(FileChanged("app/views.py", final=True))
    assert sorted(loop.launcher.sent(signal.SIGTERM)) == sorted([4242, successor])
    loop.tick(SINGLE_SAVE_WINDOW + EPS)
    assert loop.starts == 2, "the change starts a worker the usual way"
    loop.send(SignalReceived(signal.SIGINT))
    for pid in [4242, *loop.launcher.started]:
        loop.exits(pid, -signal.SIGTERM)
    loop.tick(1.0)
    assert loop.finished()


def test_a_stand_in_that_dies_while_replaced_opens_its_successors_gate(replaced: Loop) -> None:
    loop = replaced
    successor = loop.strategy.worker
    assert successor is not None and successor.gated
    loop.exits(4242, -signal.SIGKILL)
    assert not successor.gated
    assert loop.strategy.exit_code is None and not loop.strategy.crashed
