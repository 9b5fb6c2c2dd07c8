"""The console on each platform: Enter is read through msvcrt on Windows (its calls faked
here, on a fake clock; the POSIX side runs for real in the e2e Enter test, on a pty)."""

from __future__ import annotations

import threading
from collections import deque

from devreload.monitor.terminal import KEY_POLL, Terminal, WindowsKeyboard


class FakeMsvcrt:
    """msvcrt's kbhit and getwch over keys typed ahead of time, each at a given moment."""

    def __init__(self, clock: FakeClock, typed: list[tuple[float, str]]) -> None:
        self.clock = clock
        self.typed = deque(typed)

    def kbhit(self) -> bool:
        return bool(self.typed) and self.typed[0][0] <= self.clock.now

    def getwch(self) -> str:
        return self.typed.popleft()[1]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []

    def __call__(self) -> float:
        return self.now

    def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


def test_windows_enter_is_a_carriage_return_among_other_keys() -> None:
    clock = FakeClock()
    keys = FakeMsvcrt(clock, [(0.0, "x"), (0.1, "y"), (0.12, "\r")])
    keyboard = WindowsKeyboard(keys, clock=clock, pause=clock.pause)
    assert keyboard.enter_pressed(0.2)
    assert clock.now < 0.2
    assert set(clock.pauses) == {KEY_POLL}


def test_windows_no_enter_within_the_timeout() -> None:
    clock = FakeClock()
    keys = FakeMsvcrt(clock, [(0.0, "a"), (0.5, "\r")])
    keyboard = WindowsKeyboard(keys, clock=clock, pause=clock.pause)
    assert not keyboard.enter_pressed(0.2)
    assert 0.2 <= clock.now < 0.2 + KEY_POLL + 1e-9
    assert keyboard.enter_pressed(0.5)


class TypedEnter:
    """A keyboard on which Enter is pressed once, at its second look."""

    def __init__(self) -> None:
        self.looks = 0
        self.restored: list[object] = []

    def save(self) -> object:
        return "settings"

    def restore(self, saved: object) -> None:
        self.restored.append(saved)

    def enter_pressed(self, timeout: float) -> bool:
        self.looks += 1
        return self.looks == 2


def test_the_terminal_calls_back_once_on_enter_and_restores_what_it_saved() -> None:
    keys = TypedEnter()
    terminal = Terminal(keys)
    terminal.interactive, terminal.saved = True, keys.save()  # stdin is no console here
    pressed = threading.Event()
    terminal.on_enter(pressed.set, lambda: True)
    assert pressed.wait(5)
    terminal.restore()
    assert keys.restored == ["settings"]
