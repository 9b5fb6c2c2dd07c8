"""The monitor's signals become events on its queue, whichever thread the kernel picks."""

from __future__ import annotations

import queue
import signal
import threading

import pytest

from devreload.monitor.events import Event, SignalReceived, queued_signals

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
