"""The spare launcher (macOS, Windows, ``DEVRELOAD_PORTABLE=1``), with real processes: a
spare spawned ahead imports the libraries it is told before its spec and is the next
worker; a stop is a message the worker obeys as SIGTERM; a refresh drops the spare; a
failure of a spare is verified by a fresh worker, as a forked one's is."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import pid_alive, wait_until
from logrecords import Records, devreload_records

from devreload.log import default_logger
from devreload.monitor.forks import Mode
from devreload.monitor.spares import PosixSpawner, SpareLauncher
from devreload.wire.channel import Channel
from devreload.wire.messages import Spec


class Started:
    def __init__(self, launcher: SpareLauncher) -> None:
        self.launcher = launcher
        self.channels: dict[int, Channel] = {}

    def start(self, path: str, *args: object) -> int:
        pid, channel = self.launcher.start([])
        self.channels[pid] = channel
        channel.send(Spec(worker_path=path, args=args, sys_path=tuple(sys.path)))
        return pid

    def exit_code(self, pid: int) -> int:
        exits: dict[int, int] = {}

        def exited() -> bool:
            exits.update(self.launcher.reap())
            return pid in exits

        wait_until(exited)
        return exits[pid]


@pytest.fixture
def records() -> Iterator[Records]:
    with devreload_records() as records:
        yield records


@pytest.fixture
def started(records: Records, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Started]:
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    launcher = SpareLauncher(default_logger(), PosixSpawner(by_message=True))
    workers = Started(launcher)
    try:
        yield workers
    finally:
        pids = [*workers.channels, *([launcher.spare.pid] if launcher.spare else [])]
        for pid in workers.channels:
            launcher.kill(pid)
        for channel in workers.channels.values():
            channel.close()
        launcher.close()

        def all_gone() -> bool:
            launcher.reap()
            return not any(map(pid_alive, pids))

        wait_until(all_gone)


def test_a_spare_imports_its_libraries_ahead_and_is_the_next_worker(
    started: Started, tmp_path: Path
) -> None:
    (tmp_path / "dr_heavy_library.py").write_text(
        "import os\nopen(f'imported-by-{os.getpid()}', 'w').close()\n")
    launcher = started.launcher
    launcher.preload(["dr_heavy_library"])
    launcher.prepare([])
    spare = launcher.spare
    assert spare is not None
    marker = tmp_path / f"imported-by-{spare.pid}"
    wait_until(marker.exists, message="the spare imports before it has a spec")
    pid = started.start("os:mkdir", str(tmp_path / "ran"))
    assert pid == spare.pid and launcher.spare is None
    wait_until((tmp_path / "ran").is_dir, message="the adopted spare runs the spec")
    assert started.exit_code(pid) == 0


def test_a_stop_message_stops_a_worker_the_way_sigterm_does(started: Started) -> None:
    pid = started.start("time:sleep", 60)  # the stop waits in the channel if it comes early
    started.launcher.stop(pid, started.channels[pid])
    assert started.exit_code(pid) == 128 + 15


def test_a_refresh_drops_the_spare(started: Started) -> None:
    started.launcher.prepare([])
    spare = started.launcher.spare
    assert spare is not None
    started.launcher.refresh()
    assert started.launcher.spare is None
    wait_until(lambda: spare.process.poll() is not None)


def test_a_failed_spare_is_verified_by_a_fresh_worker(
    started: Started, tmp_path: Path, records: Records
) -> None:
    launcher = started.launcher
    launcher.preload(["json"])
    launcher.prepare([])
    assert launcher.spare is not None and launcher.spare.preloaded
    spare = started.start("os:mkdir", str(tmp_path / "one"))
    assert launcher.failed(spare), "a spare's failure may be the preloading's: retry fresh"
    launcher.prepare([])
    assert launcher.spare is None, "no spare while the next worker must be fresh"
    fresh = started.start("os:mkdir", str(tmp_path / "two"))
    assert fresh != spare and launcher.mode.verifying == fresh
    launcher.succeeded(fresh)
    assert launcher.mode.mode is Mode.SPAWN_ONLY
    assert records.messages("starting fresh workers from now on")


def test_a_spare_without_libraries_is_a_fresh_worker(started: Started, tmp_path: Path) -> None:
    """Nothing preloaded: its failure is the app's, as a fresh worker's would be."""
    started.launcher.prepare([])
    spare = started.start("os:mkdir", str(tmp_path / "one"))
    assert not started.launcher.failed(spare)


def test_workers_a_spare_launcher_reaps_are_its_own(started: Started) -> None:
    pid = started.start("sys:exit", 3)
    assert started.exit_code(pid) == 3
    assert started.launcher.reap() == [], "each exit once"
