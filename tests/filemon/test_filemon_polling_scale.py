"""The polling monitor on big trees: a round stats the watched files and folders and lists
only a folder whose entries changed; ignored trees are never entered; the wait between
rounds grows with a round's cost. Rounds are run with ``check()``; one test runs the thread."""

from __future__ import annotations

import logging
import os
import queue
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import Recorder

from devreload.filemon.base import IgnoreRules
from devreload.filemon.polling import ROUND_SHARE, PollingFileMonitor


def _files(root: Path, names: list[str], text: str = "x\n") -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def _age(root: Path) -> None:
    """Date every folder a minute back: older than the racy window, so that a round lists
    a folder only if something changes in it from now on."""
    then = time.time() - 60
    for folder, _, _ in os.walk(root):
        os.utime(folder, (then, then))


def _observe(monkeypatch: pytest.MonkeyPatch, name: str) -> list[str]:
    """Every path ``os.<name>`` is called with, from now on."""
    seen: list[str] = []
    real: Callable[..., Any] = getattr(os, name)

    def observed(path: Any, *args: Any, **kw: Any) -> Any:
        seen.append(os.fspath(path))
        return real(path, *args, **kw)

    monkeypatch.setattr(os, name, observed)
    return seen


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5,000 watched files in 50 folders under src/, beside a node_modules of 5,000
    files that would match the same glob."""
    root = tmp_path_factory.mktemp("big")
    for top in ("src", "node_modules"):
        for i in range(50):
            folder = root / top / f"lib{i}"
            folder.mkdir(parents=True)
            for j in range(100):
                (folder / f"f{j}.txt").touch()
    _age(root)
    return root


def test_an_ignored_tree_is_never_listed_nor_stated(
    big: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    listed = _observe(monkeypatch, "scandir")
    stated = _observe(monkeypatch, "stat")
    seen = Recorder()
    monitor = PollingFileMonitor(seen, ignore=IgnoreRules())
    monitor.add_path(str(big / "**" / "*.txt"))
    monitor.check()
    (big / "src" / "lib0" / "new.txt").write_text("x\n")
    (big / "node_modules" / "lib0" / "new.txt").write_text("x\n")
    monitor.check()
    monkeypatch.undo()
    assert seen.take() == {str(big / "src" / "lib0" / "new.txt")}
    modules = str(big / "node_modules")
    assert not [p for p in listed + stated if p.startswith(modules)]
    assert len(monitor.files) == 5_001
    assert not [p for p in [*monitor.files, *monitor.folders] if p.startswith(modules)]
    (big / "src" / "lib0" / "new.txt").unlink()
    (big / "node_modules" / "lib0" / "new.txt").unlink()
    _age(big)


def test_a_quiet_round_lists_no_folder(tmp_path: Path) -> None:
    _files(tmp_path, ["a.txt", "pkg/b.txt", "pkg/sub/c.txt", "pkg/sub/deep/d.txt", "e.ini"])
    _age(tmp_path)
    seen = Recorder()
    monitor = PollingFileMonitor(seen, ignore=IgnoreRules())
    monitor.add_path(str(tmp_path / "**" / "*.txt"))
    assert monitor.listed == 4
    monitor.check()
    assert monitor.listed == 4
    assert seen.take() == set()
    # A change of content leaves the folder's entries, hence its mtime, as they were: the
    # stat of the file sees it, and still no folder is listed.
    (tmp_path / "pkg" / "sub" / "c.txt").write_text("changed\n")
    monitor.check()
    assert seen.take() == {str(tmp_path / "pkg" / "sub" / "c.txt")}
    assert monitor.listed == 4


def test_a_new_file_deep_down_lists_only_its_folder(tmp_path: Path) -> None:
    _files(tmp_path, ["a/b/c/d/e/old.txt", "a/x.txt", "f/y.txt"])
    _age(tmp_path)
    seen = Recorder()
    monitor = PollingFileMonitor(seen, ignore=IgnoreRules())
    monitor.add_path(str(tmp_path / "**" / "*.txt"))
    listed = monitor.listed
    new = tmp_path / "a/b/c/d/e/new.txt"
    new.write_text("x\n")
    monitor.check()
    assert seen.take() == {str(new)}
    assert monitor.listed == listed + 1
    assert str(new) in monitor.files


def test_a_new_subfolder_is_followed(tmp_path: Path) -> None:
    _files(tmp_path, ["pkg/a.txt"])
    _age(tmp_path)
    seen = Recorder()
    monitor = PollingFileMonitor(seen, ignore=IgnoreRules())
    monitor.add_path(str(tmp_path / "**" / "*.txt"))
    _files(tmp_path, ["pkg/new/deeper/b.txt", "pkg/new/c.ini", "pkg/node_modules/x/d.txt"])
    monitor.check()
    assert seen.take() == {str(tmp_path / "pkg/new/deeper/b.txt")}
    assert {os.path.relpath(f, tmp_path) for f in monitor.folders} == {
        ".", "pkg", "pkg/new", "pkg/new/deeper"}
    # It is watched from now on, like the rest.
    (tmp_path / "pkg/new/deeper/b.txt").write_text("changed\n")
    monitor.check()
    assert seen.take() == {str(tmp_path / "pkg/new/deeper/b.txt")}


def test_a_removed_tree_reports_its_files_and_is_forgotten(tmp_path: Path) -> None:
    _files(tmp_path, ["keep.txt", "gone/a.txt", "gone/sub/b.txt"])
    seen = Recorder()
    monitor = PollingFileMonitor(seen, ignore=IgnoreRules())
    monitor.add_path(str(tmp_path / "**" / "*.txt"))
    shutil.rmtree(tmp_path / "gone")
    monitor.check()
    assert seen.take() == {str(tmp_path / "gone/a.txt"), str(tmp_path / "gone/sub/b.txt")}
    assert set(monitor.files) == {str(tmp_path / "keep.txt")}
    assert set(monitor.folders) == {str(tmp_path)}
    # Made again, it is found again.
    _files(tmp_path, ["gone/sub/b.txt"])
    monitor.check()
    assert seen.take() == {str(tmp_path / "gone/sub/b.txt")}


def test_a_change_within_the_folders_clock_tick_is_not_missed(tmp_path: Path) -> None:
    """The folder was listed, then an entry was added in the same tick of the file
    system's clock (simulated by putting the mtime back): its signature did not move,
    but it was listed so recently that the next round lists it again."""
    _files(tmp_path, ["a.txt"])
    seen = Recorder()
    monitor = PollingFileMonitor(seen, ignore=IgnoreRules())
    monitor.add_path(str(tmp_path / "*.txt"))
    st = tmp_path.stat()
    (tmp_path / "b.txt").write_text("x\n")
    os.utime(tmp_path, ns=(st.st_atime_ns, st.st_mtime_ns))
    monitor.check()
    assert seen.take() == {str(tmp_path / "b.txt")}


def test_two_globs_share_folders(tmp_path: Path) -> None:
    _files(tmp_path, ["conf/a.txt", "conf/base.ini", "conf/sub/b.txt", "conf/sub/c.ini"])
    _age(tmp_path)
    seen = Recorder()
    monitor = PollingFileMonitor(seen, ignore=IgnoreRules())
    monitor.add_path(str(tmp_path / "**" / "*.txt"))
    # conf changes before the second glob lists it: the first glob still sees the change.
    (tmp_path / "conf" / "new.txt").write_text("x\n")
    monitor.add_path(str(tmp_path / "conf" / "*.ini"))
    assert str(tmp_path / "conf/base.ini") in monitor.files
    assert str(tmp_path / "conf/sub/c.ini") not in monitor.files  # "*" stays in conf/
    monitor.check()
    assert seen.take() == {str(tmp_path / "conf/new.txt")}
    (tmp_path / "conf" / "new.ini").write_text("x\n")
    (tmp_path / "conf" / "sub" / "new.ini").write_text("x\n")
    monitor.check()
    assert seen.take() == {str(tmp_path / "conf/new.ini")}
    shutil.rmtree(tmp_path / "conf")
    monitor.check()
    assert seen.take() == {str(tmp_path / p) for p in
                           ("conf/a.txt", "conf/base.ini", "conf/new.txt", "conf/new.ini",
                            "conf/sub/b.txt")}
    # The root of the second glob stays watched, gone as it is.
    assert set(monitor.folders) == {str(tmp_path), str(tmp_path / "conf")}
    _files(tmp_path, ["conf/again.ini"])
    monitor.check()
    assert seen.take() == {str(tmp_path / "conf/again.ini")}


def test_links_to_folders_only_under_a_bounded_glob(tmp_path: Path) -> None:
    _files(tmp_path, ["real/a.txt"])
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    (tmp_path / "real" / "loop").symlink_to(tmp_path, target_is_directory=True)
    monitor = PollingFileMonitor(Recorder(), ignore=IgnoreRules())
    assert monitor._expand(str(tmp_path / "**" / "*.txt")) == [str(tmp_path / "real/a.txt")]
    assert sorted(monitor._expand(str(tmp_path / "*" / "*.txt"))) == [
        str(tmp_path / "link/a.txt"), str(tmp_path / "real/a.txt")]


class GitRules:
    """Ignore rules as they are with .gitignore support: globs skip more than named files."""

    def __call__(self, path: str) -> bool:
        return False

    def glob_ignores(self, path: str) -> bool:
        return path.endswith("generated.txt")

    def glob_ignores_folder(self, folder: str) -> bool:
        return folder.endswith(f"{os.sep}dist")


def test_glob_rules_are_used_when_the_rules_have_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _files(tmp_path, ["a.txt", "generated.txt", "dist/b.txt", "skip/c.txt"])
    listed = _observe(monkeypatch, "scandir")
    with_rules = PollingFileMonitor(Recorder(), ignore=GitRules())
    with_rules.add_path(str(tmp_path / "**" / "*.txt"))
    plain = PollingFileMonitor(Recorder(), ignore=lambda path: f"{os.sep}skip{os.sep}" in path)
    plain.add_path(str(tmp_path / "**" / "*.txt"))
    monkeypatch.undo()
    assert {os.path.relpath(f, tmp_path) for f in with_rules.files} == {"a.txt", "skip/c.txt"}
    assert {os.path.relpath(f, tmp_path) for f in plain.files} == {
        "a.txt", "generated.txt", "dist/b.txt"}
    assert sorted(os.path.relpath(p, tmp_path) for p in listed) == [
        ".", ".", "dist", "skip"]


def test_the_wait_grows_with_a_rounds_cost(
    big: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = logging.getLogger("devreload.test.polling")
    monitor = PollingFileMonitor(Recorder(), interval=0.25, logger=log,
                                 ignore=IgnoreRules())
    monitor.add_path(str(big / "src" / "**" / "*.txt"))
    assert monitor.next_wait == 0.25
    with caplog.at_level(logging.DEBUG, logger=log.name):
        for _ in range(2):
            monitor.check()
            assert monitor.round_time > 0
            assert monitor.next_wait == max(0.25, monitor.round_time * ROUND_SHARE)
            assert monitor.next_wait >= ROUND_SHARE * monitor.round_time
    # 5,000 stats take more than 2.5 ms: the wait grew, and that was said once.
    assert [r.getMessage().split(" takes ")[0] for r in caplog.records] == [
        "polling 5000 files and 51 folders"]


def test_the_thread_sees_a_write(tmp_path: Path) -> None:
    _files(tmp_path, ["pkg/app.py"])
    changes: queue.Queue[str] = queue.Queue()
    monitor = PollingFileMonitor(lambda path, final=False: changes.put(path), interval=0.25,
                                ignore=IgnoreRules())
    monitor.add_path(str(tmp_path / "**" / "*.py"))
    monitor.start()
    try:
        (tmp_path / "pkg" / "app.py").write_text("changed = True\n")
        assert changes.get(timeout=10) == str(tmp_path / "pkg" / "app.py")
        (tmp_path / "pkg" / "new.py").write_text("x\n")
        assert changes.get(timeout=10) == str(tmp_path / "pkg" / "new.py")
    finally:
        monitor.stop()
        monitor.join()
