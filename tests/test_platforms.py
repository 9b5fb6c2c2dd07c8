"""The one place that knows the platform: each platform's choices, and the switch that
makes a Linux run take the portable paths."""

from __future__ import annotations

import sys

import pytest

from devreload import platforms
from devreload.platforms import PORTABLE_ENV


@pytest.mark.parametrize(
    ("system", "env", "expected"),
    [
        ("linux", "", platforms.LINUX),
        ("linux", "0", platforms.LINUX),
        ("linux", "1", platforms.PORTABLE),
        ("darwin", "", platforms.MACOS),
        ("darwin", "1", platforms.MACOS),
        ("win32", "", platforms.WINDOWS),
    ],
)
def test_each_platform_has_its_choices(
    monkeypatch: pytest.MonkeyPatch, system: str, env: str, expected: platforms.Platform
) -> None:
    monkeypatch.setattr(sys, "platform", system)
    monkeypatch.setenv(PORTABLE_ENV, env)
    assert platforms.current() is expected


def test_the_portable_paths_are_what_macos_and_windows_share() -> None:
    """Every choice the portable run makes is one that macOS or Windows makes."""
    portable, mac, win = platforms.PORTABLE, platforms.MACOS, platforms.WINDOWS
    assert not portable.forks and not portable.adopts_orphans
    assert portable.stops_by_message == win.stops_by_message
    assert (portable.file_events, portable.recursive_watches) == (
        mac.file_events, mac.recursive_watches) == (win.file_events, win.recursive_watches)


def test_minus_v_says_how_this_run_works() -> None:
    assert platforms.LINUX.describe() == (
        "linux: workers forked from a template, stopped by SIGTERM, ended with the monitor by "
        "subreaper and janitor; file events by inotify, one watch per folder")
    assert platforms.WINDOWS.describe() == (
        "Windows: workers spawned, with a spare, stopped by a message over the channel, ended "
        "with the monitor by a job object; file events by watchdog, recursive roots")
