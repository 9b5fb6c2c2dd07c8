"""A worker's stop: raised in the main thread, sent again when the main thread missed it,
and never twice into a stop already under way."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from devreload.worker import stopping
from devreload.worker.stopping import Stopped, Stopping

pytestmark = pytest.mark.skipif(sys.platform == "win32",
                                reason="a signal for one thread needs pthread_kill")


@pytest.fixture(autouse=True)
def _handlers_restored() -> Iterator[None]:
    handler, hook = signal.getsignal(signal.SIGTERM), sys.unraisablehook
    yield
    signal.signal(signal.SIGTERM, handler)
    sys.unraisablehook = hook


class Kills:
    """Counts the stops sent; the first ``lost`` of them never reach the main thread."""

    def __init__(self, lost: int = 0) -> None:
        self.lost = lost
        self.sent = 0

    def __call__(self) -> None:
        self.sent += 1
        if self.sent > self.lost:
            stopping.stop_main()


def _after(go: threading.Event, target: Callable[[], None]) -> threading.Thread:
    """``target`` in a thread of its own, once ``go`` is set (the main thread is inside
    ``pytest.raises`` by then)."""
    def run() -> None:
        go.wait(10)
        target()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_stop_the_main_thread_missed_is_sent_again() -> None:
    kills = Kills(lost=1)
    stop = Stopping(lambda: False, kills)
    stop.install()
    began = time.monotonic()
    go = threading.Event()
    thread = _after(go, stop.insist)
    with pytest.raises(Stopped) as raised:
        go.set()
        threading.Event().wait(10)
    thread.join(10)
    assert raised.value.code == 128 + signal.SIGTERM
    assert kills.sent >= 2  # more on a loaded machine: the handler takes the first only
    assert time.monotonic() - began < 5, "the second stop did not come"


def test_the_stops_end_once_the_main_thread_has_one() -> None:
    kills = Kills()
    stop = Stopping(lambda: False, kills)
    stop.install()
    go = threading.Event()
    thread = _after(go, stop.insist)
    with pytest.raises(Stopped):
        go.set()
        threading.Event().wait(10)
    thread.join(10)
    assert not thread.is_alive(), "the stop was still being sent"
    assert stop.taken.is_set()


def test_a_stop_under_way_is_not_interrupted_by_another() -> None:
    stop = Stopping(lambda: False)
    stop.install()
    finished = False
    with pytest.raises(Stopped):
        try:
            signal.raise_signal(signal.SIGTERM)
        finally:
            signal.raise_signal(signal.SIGTERM)  # the cleanup goes on
            finished = True
    assert finished


def test_a_server_that_stopped_accepting_is_not_signalled_again() -> None:
    """Its own handler took the stop; that it released the sockets says so."""
    kills = Kills(lost=1)
    Stopping(lambda: True, kills).insist()
    assert kills.sent == 1


def test_an_apps_own_handler_gets_the_stop_once() -> None:
    kills = Kills(lost=1)
    stop = Stopping(lambda: False, kills)
    stop.install()
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    stop.insist()
    assert kills.sent == 1
