"""The inotify monitor against the real kernel: one thread and one instance for thousands
of folders, folders that vanish and come back, a real queue overflow, and folders on file
systems without events polled instead."""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import Recorder, inotify_instances, save_like_editor, wait_until

from devreload.filemon.base import IgnoreRules
from devreload.filemon.filesystems import MountTable
from devreload.filemon.inotify import InotifyFileMonitor

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/fd"), reason="Linux only")


@pytest.fixture
def monitors() -> Iterator[list[InotifyFileMonitor]]:
    made: list[InotifyFileMonitor] = []
    yield made
    for monitor in made:
        monitor.stop()
    for monitor in made:
        monitor.join()


def test_thousands_of_folders_one_thread_one_instance(
    tmp_path: Path, monitors: list[InotifyFileMonitor]
) -> None:
    files = []
    for i in range(3000):
        folder = tmp_path / f"pkg{i}"
        folder.mkdir()
        (folder / "mod.py").write_text("x = 1\n")
        files.append(folder / "mod.py")
    threads, instances = threading.active_count(), inotify_instances()
    seen = Recorder()
    monitor = InotifyFileMonitor(seen, ignore=IgnoreRules())
    monitors.append(monitor)
    for path in files:
        monitor.add_path(str(path))
    monitor.start()
    assert threading.active_count() - threads == 1
    assert inotify_instances() - instances == 1
    assert len(monitor._watches) == 3000
    save_like_editor(files[-1], "x = 2\n")
    seen.wait(files[-1])


def test_a_folder_deleted_and_made_again_is_watched_again(
    tmp_path: Path, monitors: list[InotifyFileMonitor]
) -> None:
    """A ``git checkout`` that removes a package and another that brings it back."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    module = pkg / "mod.py"
    module.write_text("x = 1\n")
    seen = Recorder()
    monitor = InotifyFileMonitor(seen, ignore=IgnoreRules())
    monitors.append(monitor)
    monitor.add_path(str(module))
    monitor.start()
    shutil.rmtree(pkg)
    seen.wait(module)
    wait_until(lambda: str(pkg) not in monitor._watches.values())
    seen.paths.clear()
    pkg.mkdir()
    module.write_text("x = 2\n")
    seen.wait(module)
    wait_until(lambda: str(pkg) in monitor._watches.values())
    seen.paths.clear()
    save_like_editor(module, "x = 3\n")
    seen.wait(module)


def test_a_folder_moved_away_stops_reporting_under_its_old_name(
    tmp_path: Path, monitors: list[InotifyFileMonitor]
) -> None:
    (tmp_path / "a").mkdir()
    seen = Recorder()
    monitor = InotifyFileMonitor(seen, ignore=IgnoreRules())
    monitors.append(monitor)
    monitor.add_path(str(tmp_path / "**" / "*.py"))
    monitor.start()
    (tmp_path / "a").rename(tmp_path / "b")
    wait_until(lambda: str(tmp_path / "b") in monitor._watches.values())
    (tmp_path / "b" / "x.py").write_text("x\n")
    seen.wait(tmp_path / "b" / "x.py")
    assert not seen.seen(tmp_path / "a" / "x.py")


def test_a_queue_overflow_reports_what_changed_meanwhile(
    tmp_path: Path, monitors: list[InotifyFileMonitor], caplog: pytest.LogCaptureFixture
) -> None:
    """Real overflow: the reader is not started until the kernel's queue (16,384 events by
    default) has dropped events, among them the one change that matters."""
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    noisy = [tmp_path / "noisy1.txt", tmp_path / "noisy2.txt"]
    quiet = tmp_path / "quiet.py"
    quiet.write_text("x = 1\n")
    seen = Recorder()
    log = logging.getLogger("test_filemon_inotify")
    monitor = InotifyFileMonitor(seen, ignore=IgnoreRules(), logger=log)
    monitors.append(monitor)
    monitor.add_path(str(quiet))
    for path in noisy:
        path.write_text("0")
        monitor.add_path(str(path))
    for i in range(limit + 10):  # alternate: the kernel merges an event equal to the last
        os.close(os.open(noisy[i % 2], os.O_WRONLY))
    stat = quiet.stat()
    quiet.write_text("x = 2\n")
    os.utime(quiet, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    with caplog.at_level(logging.INFO, logger=log.name):
        monitor.start()
        seen.wait(quiet)
    assert any("queue overflowed" in r.getMessage() for r in caplog.records)


def _fake_9p(tmp_path: Path) -> MountTable:
    """FAKE mount table, labelled as such: the real one of this machine, plus a 9p mount
    (WSL's /mnt/c) at ``tmp_path/share``, read by the same parser as /proc/self/mountinfo."""
    real = Path("/proc/self/mountinfo").read_text()
    share = str(tmp_path / "share").replace(" ", "\\040")
    fake = f"9999 1 0:999 / {share} rw,noatime - 9p drvfs rw,aname=drvfs;path=C:\\\n"
    return MountTable.parse(real + fake)


def test_a_folder_on_a_9p_mount_is_polled(
    tmp_path: Path, monitors: list[InotifyFileMonitor], caplog: pytest.LogCaptureFixture
) -> None:
    share, local = tmp_path / "share", tmp_path / "local"
    share.mkdir()
    local.mkdir()
    remote_file, local_file = share / "views.py", local / "models.py"
    remote_file.write_text("v = 1\n")
    local_file.write_text("m = 1\n")
    seen = Recorder()
    log = logging.getLogger("test_filemon_inotify")
    monitor = InotifyFileMonitor(seen, ignore=IgnoreRules(), mounts=_fake_9p(tmp_path),
                                 logger=log, interval=0.05)
    monitor.poll_wait = 0.05  # the test's own pace; the default is a second
    monitors.append(monitor)
    with caplog.at_level(logging.INFO, logger=log.name):
        monitor.add_path(str(remote_file))
        monitor.add_path(str(local_file))
        monitor.start()
    assert list(monitor.polled) == [str(share)]
    assert set(monitor._watches.values()) == {str(local)}
    assert [r.getMessage() for r in caplog.records] == [
        f"9p mount {share} (drvfs): file events do not arrive there; polling its folders"
    ]
    save_like_editor(remote_file, "v = 22\n")
    seen.wait(remote_file)
    save_like_editor(local_file, "m = 2\n")
    seen.wait(local_file)
