"""The template launcher: which way the next worker starts, what a failure says, and what
the monitor relies on when it signals a worker.

``ForkMode`` is the decision alone (pure, checked step by step). The launcher's own tests
use a real template process and real forked workers: a spare forked ahead is the worker
adopted at the next start, a template that is gone means a fresh worker, and a forked
failure is verified by a fresh worker before forking is given up.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import pid_alive, wait_until
from logrecords import Records, devreload_records

from devreload.log import default_logger
from devreload.monitor.forks import ForkMode, Mode, TemplateLauncher
from devreload.wire.channel import Channel
from devreload.wire.messages import Message, Ready, Spec

# ------------------------------------------------------------------------- the decision


def state(mode: ForkMode) -> Mode:
    """The mode now (a call, so that the type checker does not carry it over)."""
    return mode.mode


def test_a_forked_failure_is_retried_fresh_and_a_fresh_start_ends_forking() -> None:
    mode = ForkMode()
    mode.started(101, forked=True)
    assert mode.failed(101), "the failure may be the template's: try a fresh worker"
    assert not mode.forks() and state(mode) is Mode.FRESH_NEXT
    mode.started(102, forked=False)
    assert state(mode) is Mode.VERIFYING
    assert mode.succeeded(102), "a fresh worker starts where a forked one failed"
    assert state(mode) is Mode.SPAWN_ONLY and not mode.forks()
    mode.started(103, forked=False)
    assert not mode.failed(103) and state(mode) is Mode.SPAWN_ONLY


def test_when_the_fresh_worker_fails_too_the_app_is_broken() -> None:
    """Then a forked worker's failure is the app's (no fresh retry for every typo) until a
    forked worker starts again."""
    mode = ForkMode()
    mode.started(101, forked=True)
    assert mode.failed(101)
    mode.started(102, forked=False)
    assert not mode.failed(102)
    assert state(mode) is Mode.APP_BROKEN and mode.forks()
    mode.started(103, forked=True)
    assert not mode.failed(103), "the app is still broken"
    mode.started(104, forked=True)
    assert not mode.succeeded(104)
    assert state(mode) is Mode.FORK
    mode.started(105, forked=True)
    assert mode.failed(105), "a failure after a good start may be the template's again"


def test_a_spawned_worker_failing_is_never_the_templates_fault() -> None:
    mode = ForkMode()
    mode.started(101, forked=False)  # the template was unavailable
    assert not mode.failed(101) and state(mode) is Mode.FORK


# ------------------------------------------------------------------------- the launcher


class Started:
    """Workers a test started, each with the monitor's end of its channel."""

    def __init__(self, launcher: TemplateLauncher) -> None:
        self.launcher = launcher
        self.pids: list[int] = []
        self.ends: list[Channel] = []

    def start(self, marker: Path) -> int:
        """Start a worker that makes the folder ``marker`` and says Ready."""
        pid, ours = self.launcher.start([])
        self.pids.append(pid)
        self.ends.append(ours)
        ours.send(Spec(worker_path="os:mkdir", args=(str(marker),), sys_path=tuple(sys.path)))
        return pid

    def said(self, kind: type[Message]) -> Message:
        """What the last worker sent first of ``kind``."""
        end = self.ends[-1]
        end.sock.settimeout(10)
        while True:
            message = end.recv()
            if isinstance(message, kind):
                return message


@pytest.fixture
def records() -> Iterator[Records]:
    with devreload_records() as records:
        yield records


@pytest.fixture
def started(records: Records) -> Iterator[Started]:
    launcher = TemplateLauncher(default_logger())
    workers = Started(launcher)
    try:
        yield workers
    finally:
        for pid in workers.pids:
            launcher.kill(pid)
        for end in workers.ends:
            end.close()
        launcher.close()

        def all_gone() -> bool:
            launcher.reap()
            return not any(map(pid_alive, workers.pids))

        wait_until(all_gone)


def test_a_spare_forked_ahead_is_the_next_worker(
    started: Started, tmp_path: Path, listening: socket.socket
) -> None:
    launcher = started.launcher
    started.start(tmp_path / "first")
    started.said(Ready)
    launcher.prepare([])
    assert launcher.spare is None, "a program without the monitor's sockets gets none"
    launcher.prepare([listening])
    assert launcher.spare is not None and launcher.spare.pid is None, "not waited for"
    launcher._collect_spare()
    spare = launcher.spare.pid
    assert spare is not None and pid_alive(spare)
    pid = started.start(tmp_path / "second")
    assert pid == spare and launcher.spare is None
    wait_until((tmp_path / "second").is_dir, message="the adopted spare runs the spec")


def test_without_its_template_the_launcher_spawns_a_fresh_worker(
    started: Started, tmp_path: Path, records: Records
) -> None:
    launcher = started.launcher
    forked = started.start(tmp_path / "forked")
    assert forked in launcher.mode.forked
    os.kill(launcher.pid, signal.SIGKILL)
    fresh = started.start(tmp_path / "fresh")
    assert fresh not in launcher.mode.forked
    wait_until((tmp_path / "fresh").is_dir, message="the fresh worker runs the spec")
    assert records.messages("worker template unavailable")


def test_a_forked_failure_is_verified_by_a_fresh_worker(
    started: Started, tmp_path: Path, records: Records, listening: socket.socket
) -> None:
    launcher = started.launcher
    forked = started.start(tmp_path / "forked")
    assert launcher.failed(forked), "worth a retry, the other way"
    fresh = started.start(tmp_path / "fresh")
    assert fresh not in launcher.mode.forked and launcher.mode.verifying == fresh
    started.said(Ready)
    launcher.succeeded(fresh)
    assert state(launcher.mode) is Mode.SPAWN_ONLY and launcher.ctl is None
    assert records.messages("starting fresh workers from now on")
    later = started.start(tmp_path / "later")
    assert later not in launcher.mode.forked
    launcher.prepare([listening])
    assert launcher.spare is None, "no spare once forking is given up"


def test_a_forked_worker_leads_its_group_before_its_pid_is_known() -> None:
    """The monitor signals a worker's group: one just forked must get a SIGTERM sent at
    once (a change during its start), not lose it to a group not made yet."""
    launcher = TemplateLauncher(logging.getLogger("test"))
    pids: list[int] = []
    try:
        for _ in range(20):
            pid, ours = launcher.start([])
            pids.append(pid)
            assert os.getpgid(pid) == pid
            launcher.kill(pid)
            ours.close()

        def all_reaped() -> bool:
            launcher.reap()
            return not any(map(pid_alive, pids))

        wait_until(all_reaped)
    finally:
        for pid in pids:
            launcher.kill(pid)
        launcher.close()
