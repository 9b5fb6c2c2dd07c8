"""The file monitors as the tests build them: every monitor devreload has, over one
contract (``make_monitor``), and a private watchman server (``server``) for those that
need one."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import Recorder
from watchmankit import WATCHMAN, Server

from devreload.filemon.base import IgnoreRules
from devreload.filemon.inotify import InotifyFileMonitor
from devreload.filemon.polling import PollingFileMonitor
from devreload.filemon.watchdog import WatchdogFileMonitor
from devreload.filemon.watchman import WatchmanFileMonitor


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """A private server (a short path: a unix socket's name must fit in 108 bytes), reached
    through WATCHMAN_SOCK."""
    folder = Path(tempfile.mkdtemp(prefix="wm-", dir="/tmp"))
    server = Server(folder)
    try:
        server.start()
        monkeypatch.setenv("WATCHMAN_SOCK", server.sockname)
        yield server
    finally:
        server.kill()
        shutil.rmtree(folder, ignore_errors=True)


def _polling(callback: Recorder) -> Any:
    return PollingFileMonitor(callback, interval=0.05, ignore=IgnoreRules())


def _watchdog(callback: Recorder) -> Any:
    return WatchdogFileMonitor(callback, ignore=IgnoreRules())


def _inotify(callback: Recorder) -> Any:
    return InotifyFileMonitor(callback, ignore=IgnoreRules())


def _watchman(callback: Recorder) -> Any:
    return WatchmanFileMonitor(callback, ignore=IgnoreRules())


MONITORS = {"polling": _polling, "watchdog": _watchdog, "inotify": _inotify,
            "watchman": _watchman}


@pytest.fixture(params=list(MONITORS))
def make_monitor(request: pytest.FixtureRequest) -> Iterator[Callable[[], tuple[Any, Recorder]]]:
    """Builds a monitor of each kind, every contract test running once per kind; watchman
    on a private server. Each is stopped at teardown."""
    if request.param == "watchman":
        if WATCHMAN is None:
            pytest.skip("watchman is not installed")
        request.getfixturevalue("server")
    made: list[Any] = []

    def make() -> tuple[Any, Recorder]:
        recorder = Recorder()
        monitor = MONITORS[request.param](recorder)
        made.append(monitor)
        return monitor, recorder

    yield make
    for monitor in made:
        monitor.stop()
    for monitor in made:
        monitor.join()
