"""File monitors on real files (issue 11): ``touch`` (a new mtime, nothing written) is a
change under watchdog and polling alike, while reading a file or changing only its mode is
not; the polling monitor's globs never enter an ignored folder."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import Recorder, wait_until

from devreload.filemon.base import IgnoreRules
from devreload.filemon.inotify import InotifyFileMonitor
from devreload.filemon.polling import PollingFileMonitor
from devreload.filemon.watchdog import WatchdogFileMonitor


def _polling(callback: Recorder) -> Any:
    return PollingFileMonitor(callback, interval=0.05, ignore=IgnoreRules())


def _watchdog(callback: Recorder) -> Any:
    return WatchdogFileMonitor(callback, ignore=IgnoreRules())


def _inotify(callback: Recorder) -> Any:
    return InotifyFileMonitor(callback, ignore=IgnoreRules())


@pytest.fixture(params=[_polling, _watchdog, _inotify], ids=["polling", "watchdog", "inotify"])
def monitor_of(request: pytest.FixtureRequest) -> Iterator[Callable[[Recorder], Any]]:
    made: list[Any] = []

    def make(recorder: Recorder) -> Any:
        monitor = request.param(recorder)
        made.append(monitor)
        return monitor

    yield make
    for monitor in made:
        monitor.stop()
        monitor.join()


def _touch(path: Path) -> None:
    """What ``touch`` does to an existing file: a new mtime, not one byte written."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))


@pytest.mark.parametrize("watched_as", ["file", "glob"])
def test_touch_is_a_change_but_reading_or_chmod_is_not(
    monitor_of: Callable[[Recorder], Any], tmp_path: Path, watched_as: str
) -> None:
    touched, quiet, sentinel = tmp_path / "app.py", tmp_path / "read.py", tmp_path / "z.py"
    for path in (touched, quiet, sentinel):
        path.write_text("x = 1\n")
    seen = Recorder()
    monitor = monitor_of(seen)
    if watched_as == "glob":
        monitor.add_path(str(tmp_path / "*.py"))
    else:
        for path in (touched, quiet, sentinel):
            monitor.add_path(str(path))
    monitor.start()
    if watched_as == "glob":
        # watchdog learns a glob match's mtime from its first event: give it one.
        time.sleep(0.1)
        quiet.write_text("x = 2\n")
        wait_until(lambda: seen.seen(quiet))
        # A write may come as several events: all of them are in before the sentinel's.
        sentinel.write_text("x = 2\n")
        wait_until(lambda: seen.seen(sentinel))
        seen.paths.clear()
    for _ in range(3):
        assert quiet.read_text()  # opened, closed_no_write (and access): not a change
    quiet.chmod(0o600)  # a metadata change whose mtime stays: not a change either
    _touch(touched)
    wait_until(lambda: seen.seen(touched), message=f"touch {touched} was not seen")
    # Events come in order: whatever the reads or chmod caused has arrived by the time the
    # sentinel's write is seen (polling: one more round).
    sentinel.write_text("x = 3\n")
    wait_until(lambda: seen.seen(sentinel))
    assert not seen.seen(quiet)


# --------------------------------------------------------------------------- pruning


def test_polling_globs_never_enter_an_ignored_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "pkg" / "mod.py").write_text("x\n")
    (tmp_path / "app.py").write_text("x\n")
    modules = tmp_path / "web" / "node_modules"
    for i in range(20):
        (modules / f"lib{i}").mkdir(parents=True)
        for j in range(100):  # 2,000 files
            (modules / f"lib{i}" / f"f{j}.py").write_text("")
    # A walker that entered node_modules would also loop here, and hang on nothing else.
    (modules / "loop").symlink_to(modules, target_is_directory=True)
    os.mkfifo(modules / "pipe.py")
    listed: list[str] = []
    real_scandir = os.scandir

    def scandir(path: Any = ".") -> Any:
        listed.append(os.fspath(path))
        return real_scandir(path)

    seen = Recorder()
    monitor = PollingFileMonitor(seen, interval=0.05, ignore=IgnoreRules())
    monkeypatch.setattr(os, "scandir", scandir)
    monitor.add_path(str(tmp_path / "**" / "*.py"))
    monitor.check()
    monkeypatch.undo()
    assert set(monitor.files) == {str(tmp_path / "app.py"), str(tmp_path / "src/pkg/mod.py")}
    assert not [p for p in listed if "node_modules" in p]
    assert {os.path.relpath(p, tmp_path) for p in listed} == {".", "src", "src/pkg", "web"}
    # A new file in a walked folder is found in the next round; one in node_modules is not.
    (tmp_path / "src" / "new.py").write_text("x\n")
    (modules / "lib0" / "new.py").write_text("x\n")
    monitor.check()
    assert seen.seen(tmp_path / "src" / "new.py")
    assert not seen.seen(modules / "lib0" / "new.py")


def test_polling_globs_keep_their_depth(tmp_path: Path) -> None:
    (tmp_path / "conf" / "sub").mkdir(parents=True)
    for name in ("conf/a.ini", "conf/sub/b.ini", "conf/sub/c.txt", "d.ini"):
        (tmp_path / name).write_text("x\n")
    monitor = PollingFileMonitor(Recorder(), ignore=IgnoreRules())
    assert monitor._expand(str(tmp_path / "conf" / "*.ini")) == [str(tmp_path / "conf/a.ini")]
    assert monitor._expand(str(tmp_path / "*" / "*" / "*.ini")) == [
        str(tmp_path / "conf/sub/b.ini")
    ]
    assert sorted(monitor._expand(str(tmp_path / "**" / "*.ini"))) == [
        str(tmp_path / p) for p in ("conf/a.ini", "conf/sub/b.ini", "d.ini")
    ]
