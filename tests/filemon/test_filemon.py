"""File monitors against real files and threads: ignore rules, globs, and every way an editor
saves (in place, rename over, delete and recreate) seen by the polling, inotify and watchdog
monitors."""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import Recorder, save_like_editor, wait_until

from devreload import platforms
from devreload.filemon import base
from devreload.filemon.base import IgnoreRules, glob_regex, glob_root
from devreload.filemon.choice import MONITOR_ENV, find_default_monitor_factory
from devreload.filemon.inotify import InotifyFileMonitor
from devreload.filemon.polling import PollingFileMonitor
from devreload.filemon.watchdog import OVERFLOW_LOGGER, WatchdogFileMonitor
from devreload.platforms import PORTABLE_ENV

# --------------------------------------------------------------------------- helpers


# --------------------------------------------------------------------------- ignore rules


@pytest.mark.parametrize(
    "path",
    [
        "/p/.git/config",
        "/p/.git/objects/ab/cdef",
        "/p/.hg/store/x",
        "/p/.venv/lib/python3.11/site-packages/x.py",
        "/p/venv/lib/x.py",
        "/p/.tox/py311/x.py",
        "/p/pkg/__pycache__/mod.cpython-311.pyc",
        "/p/pkg/mod.pyc",
        "/p/pkg/mod.pyo",
        "/p/web/node_modules/left-pad/index.js",
        "/p/pkg/.mod.py.swp",
        "/p/pkg/.mod.py.swx",
        "/p/pkg/mod.py~",
        "/p/pkg/4913",
        "/p/pkg/.#mod.py",
        "/p/pkg/#mod.py#",
        "/p/pkg/mod.py___jb_tmp___",
        "/p/pkg/mod.py___jb_old___",
        "/p/app.log",
        "/p/db.sqlite-wal",
        "/p/db.sqlite-shm",
        "/p/db.sqlite-journal",
        "/p/.mypy_cache/3.11/x.json",
        "/p/.pytest_cache/v/cache",
    ],
)
def test_default_ignores(path: str) -> None:
    assert IgnoreRules()(path)


@pytest.mark.parametrize(
    "path",
    ["/p/app.py", "/p/pkg/mod.py", "/p/conf/app.ini", "/p/templates/x.html", "/p/49130.py"],
)
def test_default_ignores_keep_sources(path: str) -> None:
    assert not IgnoreRules()(path)


def test_ignored_folders() -> None:
    rules = IgnoreRules()
    for folder in ("/p/node_modules", "/p/.git", "/p/.venv", "/p/pkg/__pycache__"):
        assert rules.ignores_folder(folder), folder
    assert not rules.ignores_folder("/p/src")


def test_user_patterns_relative_to_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    rules = IgnoreRules(["generated/*.py", "*/secret.ini"], defaults=False)
    assert rules(str(tmp_path / "generated" / "x.py"))
    assert not rules("/elsewhere/generated/x.py")
    assert rules("/anywhere/secret.ini")
    assert not rules(str(tmp_path / "app.py"))


def test_explicit_files_beat_defaults_not_user_patterns() -> None:
    rules = IgnoreRules(["*/private.log"])
    rules.explicit.update(["/p/app.log", "/p/private.log"])
    assert not rules("/p/app.log")  # asked for by name: watched despite "*.log"
    assert rules("/p/other.log")
    assert rules("/p/private.log")  # the user's own ignore still wins


def test_no_defaults() -> None:
    assert not IgnoreRules(defaults=False)("/p/.git/config")


def test_glob_helpers() -> None:
    assert glob_regex("/p/conf/*.ini").match("/p/conf/a.ini")
    assert not glob_regex("/p/conf/*.ini").match("/p/conf/sub/a.ini")
    assert glob_regex("/p/**/*.ini").match("/p/conf/sub/a.ini")
    assert glob_regex("/p/**/*.ini").match("/p/a.ini")
    assert glob_regex("/p/m?.py").match("/p/m1.py")
    assert not glob_regex("/p/m[!0-9].py").match("/p/m1.py")
    assert glob_root("/p/conf/*.ini") == "/p/conf"
    assert glob_root("/p/**/x.py") == "/p"


# --------------------------------------------------------------------------- choosing


@pytest.mark.usefixtures("native")
def test_default_factory_choice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MONITOR_ENV, raising=False)
    monkeypatch.setenv("WATCHMAN_SOCK", str(tmp_path / "no-watchman-here"))
    monkeypatch.chdir(tmp_path)
    assert find_default_monitor_factory() is InotifyFileMonitor
    assert find_default_monitor_factory(choice="polling") is PollingFileMonitor
    monkeypatch.setenv(MONITOR_ENV, "polling")
    assert find_default_monitor_factory(choice="watchdog") is PollingFileMonitor  # env wins
    monkeypatch.setenv(MONITOR_ENV, "watchdog")
    assert find_default_monitor_factory() is WatchdogFileMonitor
    monkeypatch.setenv(MONITOR_ENV, "inotify")
    assert find_default_monitor_factory() is InotifyFileMonitor
    (tmp_path / "dr_my_monitors.py").write_text("def factory(callback, **kw):\n    return 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for spec in ("dr_my_monitors.factory", "dr_my_monitors:factory"):
        monkeypatch.setenv(MONITOR_ENV, spec)
        made: object = find_default_monitor_factory()(_nowhere)  # the factory's own return
        assert made == 42


# ------------------------------------------------------------- every monitor (conftest.py)


@pytest.mark.parametrize("mode", ["inplace", "rename", "recreate"])
def test_monitor_sees_every_kind_of_save(
    make_monitor: Callable[[], tuple[Any, Recorder]], tmp_path: Path, mode: str
) -> None:
    target = tmp_path / "app.py"
    target.write_text("x = 1\n")
    monitor, seen = make_monitor()
    monitor.add_path(str(target))
    monitor.start()
    save_like_editor(target, "x = 22\n", mode)
    seen.wait(target)
    # The watch survives the new inode: the next save is seen too.
    seen.clear()
    save_like_editor(target, "x = 333\n", mode)
    seen.wait(target)


def test_monitor_reports_only_watched_files(
    make_monitor: Callable[[], tuple[Any, Recorder]], tmp_path: Path
) -> None:
    watched, other = tmp_path / "watched.py", tmp_path / "other.py"
    watched.write_text("a\n")
    other.write_text("b\n")
    monitor, seen = make_monitor()
    monitor.add_path(str(watched))
    monitor.start()
    other.write_text("bb\n")
    watched.write_text("aa\n")
    seen.wait(watched)
    assert not seen.seen(other)


def test_monitor_glob_sees_new_files_but_not_ignored_ones(
    make_monitor: Callable[[], tuple[Any, Recorder]], tmp_path: Path
) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "base.ini").write_text("[a]\n")
    monitor, seen = make_monitor()
    monitor.add_path(str(conf / "*"))
    monitor.start()
    junk = [conf / ".base.ini.swp", conf / "4913", conf / "base.ini~", conf / "x.pyc"]
    for path in junk:
        path.write_text("junk")
    (conf / "new.ini").write_text("[b]\n")
    seen.wait(conf / "new.ini")
    assert [p for p in junk if seen.seen(p)] == []
    assert not seen.seen(conf / "base.ini")


def test_monitor_sees_a_file_that_appears_later(
    make_monitor: Callable[[], tuple[Any, Recorder]], tmp_path: Path
) -> None:
    target = tmp_path / "late.ini"
    monitor, seen = make_monitor()
    monitor.add_path(str(target))
    monitor.start()
    target.write_text("now\n")
    seen.wait(target)


def test_monitor_watches_a_folder_deleted_and_made_again(
    make_monitor: Callable[[], tuple[Any, Recorder]], tmp_path: Path
) -> None:
    """A ``git checkout`` that removes a package and another that brings it back: the
    package's files are followed again, the first save after it and the ones after."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    module = pkg / "mod.py"
    module.write_text("x = 1\n")
    monitor, seen = make_monitor()
    monitor.add_path(str(module))
    monitor.start()
    shutil.rmtree(pkg)
    seen.wait(module)
    seen.clear()
    pkg.mkdir()
    module.write_text("x = 2\n")
    seen.wait(module)
    for text in ("x = 33\n", "x = 444\n"):
        seen.clear()
        save_like_editor(module, text)
        seen.wait(module)


def test_monitor_follows_a_tree_with_a_name_that_is_not_utf8(
    make_monitor: Callable[[], tuple[Any, Recorder]], tmp_path: Path
) -> None:
    """Linux allows any bytes in a name: such a file is reported under Python's name for
    it, and the others keep being reported (watchman's JSON could carry neither)."""
    app = tmp_path / "app.py"
    app.write_text("x = 1\n")
    odd = tmp_path / os.fsdecode(b"caf\xe9.py")  # Latin-1, as an old archive names it
    odd.write_text("y = 1\n")
    monitor, seen = make_monitor()
    monitor.add_path(str(app))
    monitor.add_path(str(tmp_path / "**" / "*.py"))
    monitor.start()
    save_like_editor(odd, "y = 22\n")
    seen.wait(odd)
    save_like_editor(app, "x = 22\n")
    seen.wait(app)


@pytest.mark.parametrize("how", ["ln -sf", "rename"])
def test_monitor_sees_a_file_replaced_by_a_symlink(
    make_monitor: Callable[[], tuple[Any, Recorder]], tmp_path: Path, how: str
) -> None:
    """``ln -sf shared/helper.py helper.py`` (remove, then link), or a link made aside and
    renamed over the file: either way the name now leads to other code."""
    (tmp_path / "shared").mkdir()
    target = tmp_path / "shared" / "helper.py"
    target.write_text('TOKEN = "shared"\n')
    module = tmp_path / "helper.py"
    module.write_text('TOKEN = "own"\n')
    monitor, seen = make_monitor()
    monitor.add_path(str(module))
    monitor.start()
    if how == "ln -sf":
        module.unlink()
        module.symlink_to(target)
    else:
        (tmp_path / ".helper.py.tmp").symlink_to(target)
        os.replace(tmp_path / ".helper.py.tmp", module)
    seen.wait(module)


def test_monitor_stops(make_monitor: Callable[[], tuple[Any, Recorder]], tmp_path: Path) -> None:
    monitor, _ = make_monitor()
    monitor.add_path(str(tmp_path / "x.py"))
    monitor.start()
    monitor.stop()
    done = threading.Event()

    def join() -> None:
        monitor.join()
        done.set()

    threading.Thread(target=join, daemon=True).start()
    assert done.wait(5), "join() did not return after stop()"


# --------------------------------------------------------------------------- OS events only


EVENT_MONITORS = pytest.mark.parametrize("events", [InotifyFileMonitor, WatchdogFileMonitor],
                                         ids=["inotify", "watchdog"])


@EVENT_MONITORS
def test_os_events_ignore_reads(tmp_path: Path, events: Any) -> None:
    read_me, sentinel = tmp_path / "read.py", tmp_path / "sentinel.py"
    read_me.write_text("x\n")
    sentinel.write_text("s\n")
    seen = Recorder()
    monitor = events(seen, ignore=IgnoreRules())
    monitor.add_path(str(read_me))
    monitor.add_path(str(sentinel))
    monitor.start()
    try:
        for _ in range(3):
            assert read_me.read_text() == "x\n"  # opened / closed_no_write: not a change
        sentinel.write_text("s2\n")
        seen.wait(sentinel)  # events are delivered in order: the reads came before
        assert not seen.seen(read_me)
    finally:
        monitor.stop()
        monitor.join()


@EVENT_MONITORS
def test_os_events_never_register_ignored_folders(tmp_path: Path, events: Any) -> None:
    for folder in ("src/pkg", "node_modules/lib", ".git/objects", ".venv/lib", "src/__pycache__"):
        (tmp_path / folder).mkdir(parents=True)
    seen = Recorder()
    monitor = events(seen, ignore=IgnoreRules())
    monitor.add_path(str(tmp_path / "**" / "*.py"))
    monitor.start()
    try:
        registered = {os.path.relpath(f, tmp_path) for f in monitor.folders}
        assert registered == {".", "src", "src/pkg"}
        # A folder made later inside the tree is followed.
        (tmp_path / "src" / "new").mkdir()
        wait_until(lambda: str(tmp_path / "src" / "new") in monitor.folders)
        (tmp_path / "src" / "new" / "m.py").write_text("x\n")
        seen.wait(tmp_path / "src" / "new" / "m.py")
    finally:
        monitor.stop()
        monitor.join()


@EVENT_MONITORS
def test_os_events_file_in_folder_created_later(tmp_path: Path, events: Any) -> None:
    target = tmp_path / "later" / "deeper" / "app.ini"
    seen = Recorder()
    monitor = events(seen, ignore=IgnoreRules())
    monitor.add_path(str(target))
    monitor.start()
    try:
        target.parent.mkdir(parents=True)
        target.write_text("x\n")
        seen.wait(target)
    finally:
        monitor.stop()
        monitor.join()


@pytest.mark.usefixtures("native")
def test_watchman_is_chosen_for_a_watchmanconfig_and_falls_back_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv(MONITOR_ENV, raising=False)
    monkeypatch.setenv("WATCHMAN_SOCK", str(tmp_path / "no-server"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".watchmanconfig").write_text("{}")
    log = logging.getLogger("test_filemon")
    with caplog.at_level(logging.DEBUG, logger=log.name):
        factory = find_default_monitor_factory(log)
        monitor = factory(Recorder(), ignore=IgnoreRules())
    try:
        assert isinstance(monitor, InotifyFileMonitor)
        said = [r.getMessage() for r in caplog.records]
        assert said[0] == "file monitor: watchman (the project has a .watchmanconfig)"
        assert said[1:] == [f"watchman is not running (no server at {tmp_path}/no-server); "
                            "using InotifyFileMonitor instead"]
    finally:
        monitor.stop()


def _nowhere(path: str, final: bool = False) -> None:
    """A monitor callback for factories that are only called."""


@pytest.mark.parametrize(
    ("env", "choice", "line"),
    [
        ("", "", "file monitor: inotify (the default on linux)"),
        ("", "polling", "file monitor: polling (monitor=polling)"),
        ("polling", "inotify", f"file monitor: polling ({MONITOR_ENV}=polling)"),
    ],
)
@pytest.mark.usefixtures("native")
def test_the_choice_of_monitor_says_why(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path,
    env: str, choice: str, line: str,
) -> None:
    monkeypatch.setenv(MONITOR_ENV, env)
    monkeypatch.chdir(tmp_path)
    log = logging.getLogger("test_filemon")
    with caplog.at_level(logging.DEBUG, logger=log.name):
        find_default_monitor_factory(log, choice)
    assert [r.getMessage() for r in caplog.records] == [line]


def test_the_portable_paths_watch_with_watchdog(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    monkeypatch.delenv(MONITOR_ENV, raising=False)
    monkeypatch.setenv(PORTABLE_ENV, "1")
    monkeypatch.chdir(tmp_path)
    log = logging.getLogger("test_filemon")
    with caplog.at_level(logging.DEBUG, logger=log.name):
        assert find_default_monitor_factory(log) is WatchdogFileMonitor
    assert [r.getMessage() for r in caplog.records] == [
        "file monitor: watchdog (the default on linux (portable))"]


def test_watchdog_hears_of_lost_events_and_looks_again(tmp_path: Path) -> None:
    """watchdog's inotify backend tells of a queue overflow only in its log (watchdog 7):
    the monitor hears it and compares the watched files' mtimes. The overflow itself is
    said by the test, in watchdog's words, on watchdog's logger (the inotify monitor's
    test overflows the kernel's queue for real)."""
    quiet = tmp_path / "quiet.py"
    quiet.write_text("x = 1\n")
    seen = Recorder()
    monitor = WatchdogFileMonitor(seen, ignore=IgnoreRules())
    monitor.add_path(str(quiet))
    stat = quiet.stat()
    quiet.write_text("x = 2\n")  # before the watch is laid: no event will say so
    os.utime(quiet, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    monitor.start()
    try:
        logging.getLogger(OVERFLOW_LOGGER).warning(
            "Inotify queue overflowed; filesystem events were lost")
        seen.wait(quiet)
    finally:
        monitor.stop()
        monitor.join()


def test_recursive_watchdog_covers_a_project_with_one_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the OS watches a tree with one stream (macOS, Windows, the portable paths), a
    project of 3,000 folders costs watchdog one emitter thread, not one per folder, and a
    save in the deepest folder is still seen."""
    monkeypatch.chdir(tmp_path)
    files = []
    for i in range(3000):
        folder = tmp_path / f"pkg{i % 30}" / f"sub{i}"
        folder.mkdir(parents=True)
        (folder / "m.py").write_text("x = 1\n")
        files.append(folder / "m.py")
    seen = Recorder()
    before = set(threading.enumerate())
    monitor = WatchdogFileMonitor(seen, ignore=IgnoreRules(), recursive=True)
    for path in files:
        monitor.add_path(str(path))
    monitor.start()
    try:
        # watchdog's own threads: another test's thread may start meanwhile in this process.
        started = [type(t).__qualname__ for t in set(threading.enumerate()) - before
                   if type(t).__module__.startswith("watchdog.")]
        assert len(started) <= 3, (
            f"the observer, one emitter and (on Linux) its inotify reader: {started}")
        assert len(monitor._watches) == 1
        save_like_editor(files[-1], "x = 2\n")
        seen.wait(files[-1])
    finally:
        monitor.stop()
        monitor.join()


@pytest.fixture
def names_without_case(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """macOS's and Windows's way of comparing names, on this Linux machine."""
    monkeypatch.setattr(platforms, "current", lambda: platforms.MACOS)
    base.case_insensitive.cache_clear()
    base.glob_regex.cache_clear()
    yield
    base.case_insensitive.cache_clear()
    base.glob_regex.cache_clear()


@pytest.mark.usefixtures("names_without_case")
def test_a_save_is_seen_whatever_the_case_the_module_was_imported_under(
    tmp_path: Path,
) -> None:
    """On APFS and NTFS ``Views.py`` imported as ``views.py`` is one file, and the OS
    reports its events under the name on disk: the monitor reports the name it was given."""
    (tmp_path / "app").mkdir()
    on_disk = tmp_path / "app" / "Views.py"
    on_disk.write_text("x = 1\n")
    imported = str(tmp_path / "app" / "views.py")
    seen = Recorder()
    monitor = WatchdogFileMonitor(seen, ignore=IgnoreRules(), recursive=True)
    monitor.add_path(imported)
    monitor.start()
    try:
        save_like_editor(on_disk, "x = 2\n")
        seen.wait(imported)
        assert not seen.seen(on_disk)
    finally:
        monitor.stop()
        monitor.join()


@pytest.mark.usefixtures("names_without_case")
def test_globs_and_ignores_match_without_case() -> None:
    assert glob_regex("/p/**/*.TXT").match("/P/a/b.txt")
    assert not glob_regex("/p/*.txt").match("/p/a/b.txt"), "a * stays in one folder"
    rules = IgnoreRules(["/p/Build/*"])
    assert rules("/p/.GIT/config") and rules("/p/build/out.py")
    assert not rules("/p/app.py")
