"""The watchman monitor against a real watchman server that each test starts on a socket of
its own (never the user's): every way an editor saves, globs, ignore rules, one subscription
per project, the server killed and restarted, the fallback when it stays away, and when
watchman is picked without being asked for."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes import RecordingLogger
from helpers import wait_until
from watchmankit import MARK, Server, marked_processes

from devreload.filemon import watchman as filemon_watchman
from devreload.filemon.base import IgnoreRules
from devreload.filemon.choice import MONITOR_ENV, find_default_monitor_factory
from devreload.filemon.inotify import InotifyFileMonitor
from devreload.filemon.polling import PollingFileMonitor
from devreload.filemon.watchman import WatchmanFileMonitor
from devreload.filemon.watchman_client import WatchmanUnavailable, watchman_asked

if shutil.which("watchman") is None:
    pytest.skip("watchman is not installed", allow_module_level=True)

# --------------------------------------------------------------------------- helpers


class Events:
    """The change callback: a queue of reported paths that a test waits on."""

    def __init__(self) -> None:
        self.queue: queue.Queue[str] = queue.Queue()
        self.hooks: dict[str, Callable[[], None]] = {}  # run (in the monitor's thread) first

    def __call__(self, path: str, final: bool = False) -> None:
        if path in self.hooks:
            self.hooks[path]()
        self.queue.put(path)

    def expect(self, path: Path, timeout: float = 5.0) -> list[str]:
        """Wait for ``path``; returns everything reported until then (and right after)."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while str(path) not in seen:
            remaining = deadline - time.monotonic()
            try:
                seen.append(self.queue.get(timeout=max(remaining, 0.001)))
            except queue.Empty:
                raise AssertionError(f"{path} was not reported within {timeout} s; "
                                     f"reported: {seen}") from None
        while not self.queue.empty():
            seen.append(self.queue.get())
        return seen


@pytest.fixture(autouse=True)
def no_stray_process(request: pytest.FixtureRequest,
                     monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Marks what each test starts, and fails the test if any of it outlives it."""
    mark = f"{os.getpid()}-{request.node.name}"
    monkeypatch.setenv(MARK, mark)
    yield
    leftovers = marked_processes(mark)
    for pid in leftovers:
        os.kill(pid, signal.SIGKILL)
    assert leftovers == [], "a process outlived the test (killed)"


Make = Callable[..., tuple[WatchmanFileMonitor, Events]]


@pytest.fixture
def make_monitor() -> Iterator[Make]:
    """Builds monitors; each is stopped at teardown, and must end at once."""
    made: list[WatchmanFileMonitor] = []

    def make(**kw: Any) -> tuple[WatchmanFileMonitor, Events]:
        events = Events()
        monitor = WatchmanFileMonitor(events, **kw)
        made.append(monitor)
        return monitor, events

    yield make
    for monitor in made:
        started = time.monotonic()
        monitor.stop()
        monitor.join()
        assert time.monotonic() - started < 1.0


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder that watchman takes as a root."""
    root = tmp_path / "proj"
    root.mkdir()
    (root / ".watchmanconfig").write_text("{}")
    return root


# --------------------------------------------------------------------------- saving


def test_delete_then_recreate(server: Server, make_monitor: Make, project: Path) -> None:
    app = project / "app.py"
    app.write_text("x = 1\n")
    monitor, events = make_monitor()
    monitor.start()
    monitor.add_path(str(app))
    app.unlink()
    events.expect(app)
    app.write_text("x = 2\n")
    events.expect(app)


def test_a_file_that_does_not_exist_yet(server: Server, make_monitor: Make,
                                        project: Path) -> None:
    later = project / "later" / "deeper" / "settings.py"
    monitor, events = make_monitor()
    monitor.start()
    monitor.add_path(str(later))
    later.parent.mkdir(parents=True)
    later.write_text("DEBUG = True\n")
    events.expect(later)


def test_metadata_alone_is_no_change(server: Server, make_monitor: Make,
                                     project: Path) -> None:
    app, marker = project / "app.py", project / "marker.py"
    app.write_text("x = 1\n")
    monitor, events = make_monitor()
    monitor.add_path(str(app))
    monitor.add_path(str(marker))
    monitor.start()
    app.chmod(0o600)
    marker.write_text("")
    assert str(app) not in events.expect(marker)
    os.utime(app, ns=(0, 10**18))  # touch: a new mtime is a change, as under polling
    events.expect(app)


# --------------------------------------------------------------------------- globs and ignores


def test_glob_matches_a_new_file_in_a_new_folder(server: Server, make_monitor: Make,
                                                 project: Path) -> None:
    old = project / "old.txt"
    old.write_text("old")
    monitor, events = make_monitor()
    monitor.start()
    monitor.add_path(f"{project}/**/*.txt")
    old.chmod(0o600)  # known since the glob was added: no change
    new = project / "new" / "deeper" / "notes.txt"
    new.parent.mkdir(parents=True)
    (new.parent / "other.py").write_text("")
    new.write_text("new")
    seen = events.expect(new)
    assert str(old) not in seen
    assert str(new.parent / "other.py") not in seen
    old.write_text("changed")
    events.expect(old)


def test_ignored_files_are_not_reported(server: Server, make_monitor: Make,
                                        project: Path) -> None:
    named = project / "named.tmp"
    named.write_text("")
    monitor, events = make_monitor(ignore=IgnoreRules(["*.tmp"]))
    monitor.add_path(f"{project}/*")
    monitor.add_path(str(named))  # the user's patterns win even over a named file
    monitor.start()
    (project / "scratch.tmp").write_text("x")
    named.write_text("x")
    wanted = project / "wanted.txt"
    wanted.write_text("x")
    assert events.expect(wanted) == [str(wanted)]


# --------------------------------------------------------------------------- roots


def test_one_subscription_per_project(server: Server, make_monitor: Make, project: Path,
                                      tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        (project / name).mkdir()
    monitor, events = make_monitor()
    monitor.add_path(str(project / "a" / "one.py"))
    monitor.add_path(str(project / "b" / "two.py"))
    monitor.start()
    monitor.add_path(str(project / "c" / "three.py"))
    monitor.add_path(f"{project}/c/*.ini")
    root = os.path.realpath(project)
    assert monitor.watched.roots == {root}
    subscribers = server.command("debug-get-subscriptions", root)["subscribers"]
    assert len(subscribers) == 1

    other = tmp_path / "other"
    other.mkdir()
    (other / ".watchmanconfig").write_text("{}")
    monitor.add_path(str(other / "four.py"))
    assert monitor.watched.roots == {root, os.path.realpath(other)}
    (project / "c" / "three.py").write_text("")
    events.expect(project / "c" / "three.py")
    (other / "four.py").write_text("")
    events.expect(other / "four.py")


def test_add_path_from_the_callback(server: Server, make_monitor: Make, project: Path,
                                    tmp_path: Path) -> None:
    """The monitor's own thread may add paths (it does not wait for itself)."""
    app, other = project / "app.py", tmp_path / "other"
    other.mkdir()
    (other / ".watchmanconfig").write_text("{}")
    monitor, events = make_monitor()
    monitor.add_path(str(app))
    monitor.start()
    events.hooks[str(app)] = lambda: monitor.add_path(str(other / "late.py"))
    app.write_text("import late\n")
    events.expect(app)
    wait_until(lambda: len(monitor.watched.roots) == 2)
    (other / "late.py").write_text("")
    events.expect(other / "late.py")


def test_a_folder_without_a_project_root(server: Server, make_monitor: Make,
                                         tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    app = bare / "app.py"
    app.write_text("")
    monitor, events = make_monitor()
    monitor.add_path(str(app))
    monitor.start()
    assert monitor.watched.roots == {os.path.realpath(bare)}  # watchman watches the folder itself
    app.write_text("x = 1\n")
    events.expect(app)


def test_a_watched_root_deleted_and_made_again(server: Server, make_monitor: Make,
                                               tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    app = bare / "app.py"
    app.write_text("")
    monitor, events = make_monitor()
    monitor.add_path(str(app))
    monitor.start()
    shutil.rmtree(bare)  # watchman cancels the watch, saying nothing of the files
    events.expect(app)
    assert monitor.watched.roots == {os.path.realpath(tmp_path)}
    bare.mkdir()
    app.write_text("back")
    events.expect(app)


def test_a_refused_watch(server: Server, make_monitor: Make, project: Path,
                         tmp_path: Path) -> None:
    """An administrator's config may forbid folders without a project root: one line at
    start; later, everything goes to the fallback."""
    server.kill()
    server.start(config={"enforce_root_files": True, "root_files": [".watchmanconfig"]})
    bare = tmp_path / "bare"
    bare.mkdir()
    monitor, _ = make_monitor()
    monitor.add_path(str(bare / "app.py"))
    with pytest.raises(WatchmanUnavailable) as info:
        monitor.start()
    message = str(info.value)
    assert message.startswith(f"watchman refused `watch-project {bare}`: ")
    assert "\n" not in message

    log = RecordingLogger()
    monitor, events = make_monitor(logger=log, fallback=PollingFileMonitor, interval=0.25)
    monitor.add_path(str(project / "app.py"))
    monitor.start()
    monitor.add_path(str(bare / "app.py"))
    assert [level for level, _ in log.records] == ["warning"]
    assert log.records[0][1].startswith(f"watchman refused `watch-project {bare}`: ")
    assert log.records[0][1].endswith("; watching with PollingFileMonitor instead")
    (bare / "app.py").write_text("")
    events.expect(bare / "app.py")
    (project / "app.py").write_text("")
    events.expect(project / "app.py")


# --------------------------------------------------------------------------- the server goes away


def test_server_restarted(server: Server, make_monitor: Make, project: Path) -> None:
    app, views = project / "app.py", project / "views.py"
    app.write_text("")
    views.write_text("")
    log = RecordingLogger()
    monitor, events = make_monitor(logger=log, fallback=PollingFileMonitor)
    monitor.add_path(str(app))
    monitor.add_path(str(views))
    monitor.start()
    server.kill()
    app.write_text("changed while the server was down\n")
    server.start()
    assert events.expect(app) == [str(app)]
    views.write_text("changed after the restart\n")
    assert events.expect(views) == [str(views)]
    root = os.path.realpath(project)
    assert len(server.command("debug-get-subscriptions", root)["subscribers"]) == 1
    assert log.records == []


def test_server_gone_for_good_with_fallback(server: Server, make_monitor: Make, project: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(filemon_watchman, "RECONNECT_TIMEOUT", 0.3)
    app, views = project / "app.py", project / "views.py"
    app.write_text("")
    views.write_text("")
    log = RecordingLogger()
    monitor, events = make_monitor(logger=log, fallback=PollingFileMonitor, interval=0.25)
    monitor.add_path(str(app))
    monitor.start()
    server.kill()
    app.write_text("changed while nothing watched\n")
    events.expect(app)
    assert log.records == [("warning", f"watchman stopped (no server at {server.sockname} for "
                                     "0.3 s); watching with PollingFileMonitor instead")]
    monitor.add_path(str(views))
    views.write_text("seen by polling\n")
    events.expect(views)


def test_server_gone_for_good_without_fallback(server: Server, make_monitor: Make,
                                               project: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(filemon_watchman, "RECONNECT_TIMEOUT", 0.3)
    log = RecordingLogger()
    monitor, _ = make_monitor(logger=log)
    monitor.add_path(str(project / "app.py"))
    monitor.start()
    server.kill()
    monitor.join()  # it stops by itself
    assert [level for level, _ in log.records] == ["error"]
    assert "no longer watching for changes" in log.records[0][1]


def test_stop_while_the_server_is_away(server: Server, make_monitor: Make,
                                       project: Path) -> None:
    log = RecordingLogger()
    monitor, _ = make_monitor(logger=log, fallback=PollingFileMonitor)
    monitor.add_path(str(project / "app.py"))
    monitor.start()
    server.kill()
    started = time.monotonic()
    monitor.stop()
    monitor.join()
    assert time.monotonic() - started < 0.5
    assert log.records == []


# --------------------------------------------------------------------------- finding the server


def test_no_server_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Raised by the factory itself, where the caller picks another monitor."""
    nothing = str(tmp_path / "nothing")
    monkeypatch.setenv("WATCHMAN_SOCK", nothing)
    with pytest.raises(WatchmanUnavailable) as info:
        WatchmanFileMonitor(Events())
    assert isinstance(info.value, OSError)
    assert str(info.value) == f"watchman is not running (no server at {nothing})"


def test_not_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHMAN_SOCK", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(WatchmanUnavailable, match=r"^watchman is not installed$"):
        WatchmanFileMonitor(Events())


@pytest.mark.usefixtures("native")
def test_a_running_server_that_watches_the_project_is_not_asked_for(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another tool may have asked the server to watch the folder: that is no sign the
    user wants watchman, whose settle period can hold a save back for seconds."""
    plain = tmp_path / "plain"
    (plain / "pkg").mkdir(parents=True)
    subprocess.run(["watchman", "--sockname", server.sockname, "watch", str(plain)],
                   check=True, capture_output=True, timeout=10)
    assert watchman_asked(str(plain / "pkg")) is None
    monkeypatch.delenv(MONITOR_ENV, raising=False)
    monkeypatch.chdir(plain / "pkg")
    assert find_default_monitor_factory() is InotifyFileMonitor


def test_asked_for_by_a_watchmanconfig(project: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHMAN_SOCK", str(tmp_path / "nothing"))
    (project / "pkg").mkdir()
    assert watchman_asked(str(project / "pkg")) == "the project has a .watchmanconfig"
    assert watchman_asked(str(tmp_path)) is None


def test_not_asked_for_without_watchman(project: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap: no server, no binary, no subprocess, even for a project that has a config."""
    monkeypatch.delenv("WATCHMAN_SOCK", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))

    def no_subprocess(*args: Any, **kw: Any) -> None:
        raise AssertionError("ran a subprocess")

    monkeypatch.setattr(subprocess, "run", no_subprocess)
    assert watchman_asked(str(project)) is None


def test_a_tree_that_never_settles_holds_no_save_back_in_silence(
    server: Server, make_monitor: Make, project: Path
) -> None:
    """watchman delivers nothing while any file of the root changes within its settle
    period: a log written every 5 ms would hold a save back for as long as it is written.
    The monitor asks for what is held back itself, and says once which file keeps the
    tree busy."""
    # A settle period long enough that a writer slowed down by a busy machine still
    # keeps the tree from settling.
    (project / ".watchmanconfig").write_text('{"settle": 300}')
    app = project / "app.py"
    app.write_text("x = 1\n")
    log = RecordingLogger()
    monitor, events = make_monitor(logger=log)
    monitor.start()
    monitor.add_path(str(app))
    stop = threading.Event()

    def keep_writing() -> None:
        with open(project / "requests.log", "a") as f:
            while not stop.wait(0.005):
                f.write("GET /\n")
                f.flush()

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        wait_until(lambda: os.path.getsize(project / "requests.log") if
                   (project / "requests.log").exists() else 0)
        app.write_text("x = 2\n")
        saved = time.monotonic()
        events.expect(app, timeout=5)
        assert time.monotonic() - saved < 1.5
    finally:
        stop.set()
        writer.join()
    (line,) = log.lines("warning")
    assert line.startswith(f"watchman held a change back for over 0.5 s: {project}/requests.log "
                           "keeps changing")
