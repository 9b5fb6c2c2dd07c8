"""Watch globs and the project's .gitignore files: what git ignores is no glob match,
while a file named or imported is watched anyway."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import Recorder, wait_until

from devreload.filemon.base import IgnoreRules
from devreload.filemon.gitignore import GitIgnores
from devreload.filemon.inotify import InotifyFileMonitor
from devreload.filemon.polling import PollingFileMonitor


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / ".git" / "info").mkdir(parents=True)
    (tmp_path / ".gitignore").write_text("build/\n*.gen.txt\n!keep.gen.txt\n/top-only.txt\n")
    (tmp_path / "src" / "sub").mkdir(parents=True)
    (tmp_path / "src" / ".gitignore").write_text("local-*.txt\n!local-keep.txt\n")
    (tmp_path / ".git" / "info" / "exclude").write_text("*.mine\n")
    return tmp_path


def test_gitignore_verdicts(repo: Path) -> None:
    ignores = GitIgnores()
    verdicts = {
        "build/out.txt": True,
        "src/build/x.py": True,
        "src/a.gen.txt": True,
        "src/keep.gen.txt": False,
        "top-only.txt": True,
        "src/top-only.txt": False,
        "src/local-1.txt": True,
        "src/sub/local-2.txt": True,
        "src/local-keep.txt": False,
        "local-1.txt": False,  # the rule of src/.gitignore holds below src only
        "notes.mine": True,
        "src/app.py": False,
    }
    got = {rel: ignores.ignored(str(repo / rel)) for rel in verdicts}
    assert got == verdicts
    assert ignores.ignored(str(repo / "build"), is_dir=True)
    assert not ignores.ignored(str(repo / "src"), is_dir=True)


def test_outside_a_work_tree_nothing_is_ignored(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("*.txt\n")
    assert not GitIgnores().ignored(str(tmp_path / "a.txt"))


def test_rules_follow_an_edited_gitignore(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("devreload.filemon.gitignore.RECHECK_SECONDS", 0.0)
    ignores = GitIgnores()
    assert not ignores.ignored(str(repo / "src" / "app.log2"))
    (repo / ".gitignore").write_text("*.log2\n")
    assert ignores.ignored(str(repo / "src" / "app.log2"))


def test_ignore_rules_apply_gitignore_to_globs_only(repo: Path) -> None:
    rules = IgnoreRules()
    generated = str(repo / "src" / "a.gen.txt")
    assert rules.glob_ignores(generated)
    assert not rules(generated)  # named or imported, it is watched
    rules.explicit.add(generated)
    assert not rules.glob_ignores(generated)
    assert rules.glob_ignores_folder(str(repo / "build"))
    off = IgnoreRules(gitignore=False)
    assert not off.glob_ignores(str(repo / "src" / "b.gen.txt"))
    assert not off.glob_ignores_folder(str(repo / "build"))


def _inotify(seen: Recorder, rules: IgnoreRules) -> Any:
    return InotifyFileMonitor(seen, ignore=rules)


def _polling(seen: Recorder, rules: IgnoreRules) -> Any:
    return PollingFileMonitor(seen, interval=0.05, ignore=rules)


@pytest.fixture(params=[_inotify, _polling], ids=["inotify", "polling"])
def started(request: pytest.FixtureRequest, repo: Path) -> Iterator[tuple[Any, Recorder]]:
    seen = Recorder()
    (repo / "build").mkdir()
    monitor = request.param(seen, IgnoreRules())
    monitor.add_path(str(repo / "**" / "*.txt"))
    monitor.start()
    yield monitor, seen
    monitor.stop()
    monitor.join()


def test_a_glob_skips_gitignored_files(repo: Path, started: tuple[Any, Recorder]) -> None:
    _, seen = started
    ignored = [repo / "build" / "out.txt", repo / "src" / "x.gen.txt", repo / "src" / "local-a.txt"]
    for path in ignored:
        path.write_text("generated")
    (repo / "src" / "notes.txt").write_text("edited")
    wait_until(lambda: seen.seen(repo / "src" / "notes.txt"))
    assert [p for p in ignored if seen.seen(p)] == []


def test_an_ignored_folder_is_never_registered(repo: Path) -> None:
    (repo / "build" / "deep").mkdir(parents=True)
    monitor = InotifyFileMonitor(Recorder(), ignore=IgnoreRules())
    monitor.add_path(str(repo / "**" / "*.txt"))
    try:
        assert {str(repo), str(repo / "src"), str(repo / "src" / "sub")} <= monitor.folders
        assert not {f for f in monitor.folders if f.startswith(str(repo / "build"))}
        assert not {f for f in monitor.folders if f.startswith(str(repo / ".git"))}
    finally:
        monitor.stop()
