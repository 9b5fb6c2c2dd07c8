"""How a worker is stopped: the monitor's SIGTERM (or its Stop message, which becomes a
SIGTERM for the main thread) raised where the app happens to be, as Ctrl-C stops a
program, so that finally blocks, atexit handlers and buffered writes run.

A signal can be taken and still never acted on. The C handler only marks it; the Python
handler runs when the main thread next runs bytecode. A main thread that has just let go
of the GIL to block on a lock (``threading.Event().wait()``) and is not yet asleep in the
kernel misses the wake-up, and sleeps on with the mark set. A stop sent by another of the
worker's threads lands in exactly that moment often, because that thread gets the GIL
when the main thread lets it go. So a stop sent over the channel is sent again until the
worker has it.
"""

from __future__ import annotations

import _thread
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

#: A stop lost where exceptions are ignored comes again this much later.
RESIGNAL_DELAY = 0.001
#: A stop sent over the channel comes again this often until the worker has it.
REPEAT_INTERVAL = 0.05


class Stopped(SystemExit):
    """The monitor's SIGTERM, raised where the app happens to be."""


class Stopping:
    """The worker's SIGTERM handler, and the stop its channel reader passes on.

    ``released``: whether the worker has stopped accepting (a server took the stop with
    a handler of its own)."""

    def __init__(self, released: Callable[[], bool],
                 kill: Callable[[], None] | None = None) -> None:
        self.released = released
        self.kill = kill or stop_main
        #: The app has been told (the handler raised Stopped); more SIGTERMs change nothing.
        self.taken = threading.Event()

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self.leave)
        sys.unraisablehook = self.unraisable

    def leave(self, signum: int, frame: FrameType | None) -> None:
        if self._in_hook(frame):
            self._signal_again()  # this one would be lost like the first: later, once out
            return
        if self.taken.is_set():
            return  # a stop already under way: its finally blocks and atexit handlers run
        self.taken.set()
        raise Stopped(128 + signum)

    def unraisable(self, hook: Any) -> None:
        """The stop landed where Python ignores exceptions (a ``__del__``, a weakref
        callback inside the import system): the signal comes again a moment later, once
        this hook has returned, to land in the app's code instead of being lost while the
        monitor waits out ``shutdown_interval``."""
        if isinstance(hook.exc_value, Stopped):
            self.taken.clear()
            self._signal_again()
        else:
            sys.__unraisablehook__(hook)

    def ask(self) -> None:
        """The monitor's Stop message: SIGTERM for the main thread, again every
        REPEAT_INTERVAL until it has it. Only while devreload's own handlers answer
        SIGTERM (its own, its servers'): an app's handler gets the signal once."""
        _thread.start_new_thread(self.insist, ())

    def insist(self) -> None:
        """Signal the main thread until it has the stop, it stopped accepting, or an
        app's own handler answers SIGTERM."""
        while True:
            self.kill()
            if self.taken.wait(REPEAT_INTERVAL) or self.released():
                return
            handler = signal.getsignal(signal.SIGTERM)
            if not getattr(handler, "__module__", "").startswith("devreload."):
                return

    def _in_hook(self, frame: FrameType | None) -> bool:
        while frame is not None:
            if frame.f_code is Stopping.unraisable.__code__:
                return True
            frame = frame.f_back
        return False

    def _signal_again(self) -> None:
        """From a thread that the hook does not wait for (``threading.Thread.start``
        waits, and a signal coming meanwhile would land in the hook again)."""

        def later() -> None:
            time.sleep(RESIGNAL_DELAY)
            self.kill()

        _thread.start_new_thread(later, ())


def stop_main() -> None:
    """SIGTERM for the main thread, from any thread. Windows delivers no signal to a
    thread: the handler runs once the main thread next runs Python code."""
    if sys.platform == "win32":
        _thread.interrupt_main(signal.SIGTERM)
    else:
        main = threading.main_thread().ident
        assert main is not None
        signal.pthread_kill(main, signal.SIGTERM)
