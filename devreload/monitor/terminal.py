"""The monitor's terminal: its settings survive a worker killed at a pdb prompt, Enter
restarts a crashed app, and a closed stdio descriptor is never taken by a socket."""

from __future__ import annotations

import contextlib
import os
import select
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol


class Keyboard(Protocol):
    """What the monitor needs of the console, one implementation per platform family."""

    def save(self) -> Any:
        """The console's settings, to put back after a worker changed them; None when
        stdin is no console."""

    def restore(self, saved: Any) -> None: ...

    def enter_pressed(self, timeout: float) -> bool:
        """Whether a line was typed within ``timeout`` seconds."""


class PosixKeyboard:
    """termios settings, and a line read from stdin once select says one is there."""

    def save(self) -> Any:
        if sys.platform == "win32":
            return None
        import termios

        try:
            return termios.tcgetattr(sys.stdin.fileno())
        except (OSError, termios.error, ValueError):
            return None

    def restore(self, saved: Any) -> None:
        if sys.platform == "win32":
            return
        import termios

        with contextlib.suppress(OSError, termios.error, ValueError):
            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, saved)

    def enter_pressed(self, timeout: float) -> bool:
        readable, _, _ = select.select([sys.stdin], [], [], timeout)
        return bool(readable) and bool(os.read(sys.stdin.fileno(), 1024))


class WindowsKeyboard:
    """The console's keys through ``msvcrt`` (select cannot wait on a console there); a
    console keeps no line settings a worker could leave broken."""

    def __init__(self, keys: Any = None, clock: Callable[[], float] = time.monotonic,
                 pause: Callable[[float], None] = time.sleep) -> None:
        if keys is None:
            import msvcrt as keys
        self.keys = keys
        self.clock = clock
        self.pause = pause

    def save(self) -> Any:
        return True

    def restore(self, saved: Any) -> None:
        pass

    def enter_pressed(self, timeout: float) -> bool:
        deadline = self.clock() + timeout
        while True:
            while self.keys.kbhit():
                if self.keys.getwch() in ("\r", "\n"):
                    return True
            if self.clock() >= deadline:
                return False
            self.pause(KEY_POLL)


#: How often the Windows console is asked for keys.
KEY_POLL = 0.05


def keyboard() -> Keyboard:
    """This platform's console; ``-v`` has no line for it: nothing to choose."""
    if sys.platform == "win32":
        return WindowsKeyboard()
    return PosixKeyboard()


class Terminal:
    """Keeps the terminal's settings so a worker killed at a pdb prompt cannot break them."""

    def __init__(self, keys: Keyboard | None = None) -> None:
        self.keys = keys or keyboard()
        self.saved: Any = None
        self.interactive = False
        if sys.stdin is not None and _is_console(sys.stdin):
            self.saved = self.keys.save()
            self.interactive = self.saved is not None

    def restore(self) -> None:
        if self.saved is not None:
            self.keys.restore(self.saved)

    def on_enter(self, callback: Callable[[], None], while_: Callable[[], bool]) -> None:
        """Call ``callback`` (from a thread) once Enter is pressed, as long as ``while_()``;
        nothing when stdin is not a terminal."""
        if not self.interactive:
            return

        def wait() -> None:
            while while_():
                if self.keys.enter_pressed(0.2) and while_():
                    callback()
                    return

        threading.Thread(target=wait, name="devreload-enter", daemon=True).start()


def _is_console(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (OSError, ValueError):
        return False


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
