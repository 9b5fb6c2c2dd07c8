"""The monitor's events: signals on its queue whichever thread the kernel picks, and the
timeline's account of the changes a restart waited for."""

from __future__ import annotations

import queue
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from devreload.log import display_path
from devreload.monitor.events import Event, FileChanged, SignalReceived, queued_signals
from devreload.monitor.restarts import Restarts

pytestmark = pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="POSIX threads")


def test_a_signal_taken_by_another_thread_wakes_a_loop_asleep_on_its_queue() -> None:
    """The race behind a monitor that ignored Ctrl-C: the kernel gave SIGINT to a watcher
    thread while a SIGCHLD was pending for the main thread, asleep in ``get``."""
    events: queue.SimpleQueue[Event] = queue.SimpleQueue()
    asleep, done = threading.Event(), threading.Event()

    def watcher() -> None:
        asleep.wait(5)  # the GIL comes back once the main thread sleeps in get()
        signal.pthread_kill(threading.get_ident(), signal.SIGHUP)
        done.wait(5)

    thread = threading.Thread(target=watcher)
    with queued_signals(events.put):
        thread.start()
        asleep.set()
        try:
            event = events.get(timeout=5)
        finally:
            done.set()
            thread.join()
    assert event == SignalReceived(signal.SIGHUP)


def test_the_old_handlers_and_wakeup_fd_come_back() -> None:
    before = signal.getsignal(signal.SIGTERM)
    events: queue.SimpleQueue[Event] = queue.SimpleQueue()
    with queued_signals(events.put):
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before
    assert signal.set_wakeup_fd(-1) == -1


def test_a_restart_that_waited_out_its_window_says_which_change_was_not_whole(
    tmp_path: Path,
) -> None:
    """The ``-v`` timeline names the change that made the restart wait the whole quiet
    window, and where it came from when no file monitor saw it."""
    lines: list[str] = []

    class Log:
        def debug(self, msg: str, *args: Any) -> None:
            lines.append(msg % args)

        info = warning = error = debug

    app = tmp_path / "app.py"
    app.write_text("x = 1\n")
    restarts = Restarts(Log(), 0.05)
    restarts.add(FileChanged(str(app), final=True), 0.0, starting=False)
    restarts.add(FileChanged(str(app), why="changed since the worker read it"), 0.01,
                 starting=False)
    restarts.begin()
    decided = [line for line in lines if "restart decided" in line]
    assert len(decided) == 1
    assert decided[0].endswith(
        f"restart decided (quiet for 50 ms): {display_path(str(app))} was not known whole "
        "(changed since the worker read it)")
