"""The monitor's terminal: its settings survive a worker killed at a pdb prompt, Enter
restarts a crashed app, and a closed stdio descriptor is never taken by a socket."""

from __future__ import annotations

import os
import select
import sys
import threading
from collections.abc import Callable
from typing import Any


class Terminal:
    """Keeps the terminal's settings so a worker killed at a pdb prompt cannot break them."""

    def __init__(self) -> None:
        self.saved: list[Any] | None = None
        self.interactive = False
        try:
            import termios

            if sys.stdin is not None and sys.stdin.isatty():
                self.saved = termios.tcgetattr(sys.stdin.fileno())
                self.interactive = True
        except (ImportError, OSError, ValueError):
            pass

    def restore(self) -> None:
        if self.saved is None:
            return
        import termios

        try:
            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, self.saved)
        except (OSError, termios.error):
            pass

    def on_enter(self, callback: Callable[[], None], while_: Callable[[], bool]) -> None:
        """Call ``callback`` (from a thread) once Enter is pressed, as long as ``while_()``;
        nothing when stdin is not a terminal."""
        if not self.interactive:
            return

        def wait() -> None:
            while while_():
                readable, _, _ = select.select([sys.stdin], [], [], 0.2)
                if readable and while_():
                    if os.read(sys.stdin.fileno(), 1024):
                        callback()
                    return

        threading.Thread(target=wait, name="devreload-enter", daemon=True).start()


def stdio_in_place() -> None:
    """A closed stdin, stdout or stderr (``2>&-``) gets /dev/null: otherwise the next
    descriptor opened (a listening socket) would take its number, and a worker's prints
    would go to it."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
