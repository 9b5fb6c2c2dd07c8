"""Fixtures every test folder shares (helpers: tests/helpers.py)."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serverkit import Clients

from devreload.platforms import PORTABLE_ENV
from devreload.wire.channel import Channel
from devreload.worker.bytecode import write_held

# The test run imported devreload: it is a program that holds its bytecode caches until it
# serves. It serves nothing: the caches are written as usual from here on.
write_held()

#: What a test needs that only some platforms have, and why it skips elsewhere (the
#: matrix in .github/workflows/tests.yml runs the suite on macOS and Windows too).
LINUX_ONLY = {
    "inotify": "inotify is Linux's; macOS and Windows watch with watchdog",
}
WINDOWS_SKIPS = {
    "e2e": "the end-to-end harness drives its processes with POSIX signals (SIGINT, "
           "SIGKILL, SIGHUP) and process groups; on Windows the pieces are unit-tested",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that cannot apply on this platform skip, each with its reason."""
    if sys.platform.startswith("linux"):
        return
    for item in items:
        reasons = [why for word, why in LINUX_ONLY.items() if word in item.nodeid]
        if reasons:
            item.add_marker(pytest.mark.skip(reason=reasons[0]))


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """On Windows a whole folder whose modules use POSIX signals at import is not
    collected; the summary says which, and why."""
    if sys.platform == "win32" and collection_path.name in WINDOWS_SKIPS:
        return True
    return None


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if sys.platform == "win32":
        for folder, why in WINDOWS_SKIPS.items():
            terminalreporter.write_line(f"SKIPPED tests/{folder}/: {why}")


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: three test processes per two cores. Most tests wait on real processes
    (a restart, a request, a browser), so a core has room for more than one; on 2 cores,
    3 finish as soon as 4 (about 100 s) and crowd the timing of a restart less."""
    return max(2, 3 * (os.cpu_count() or 1) // 2)


@pytest.fixture
def listening() -> Iterator[socket.socket]:
    """A TCP socket listening on 127.0.0.1, on a port of the kernel's choice."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield sock
    sock.close()


@pytest.fixture
def clients() -> Iterator[Clients]:
    """Client sockets, each with its server end to hand around."""
    made = Clients()
    yield made
    made.close()


@pytest.fixture
def pair() -> Iterator[tuple[Channel, Channel]]:
    """Two ends of a channel: (worker's, monitor's)."""
    ours, theirs = Channel.pair()
    other = Channel(theirs)
    yield ours, other
    ours.close()
    other.close()


@pytest.fixture
def native(monkeypatch: pytest.MonkeyPatch) -> None:
    """Linux's own choices, even in the run with ``DEVRELOAD_PORTABLE=1``."""
    monkeypatch.delenv(PORTABLE_ENV, raising=False)
