"""One file monitor for a stack: each reloader hears only the changes under its own paths."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from helpers import Recorder

from devreload.filemon.base import Callback, IgnoreRules
from devreload.filemon.fanout import FanOut
from devreload.log import display_path


class Real:
    """The one real monitor, as the fan-out drives it (the OS side has tests of its own)."""

    made = 0

    def __init__(self, callback: Callback, **kw: Any) -> None:
        Real.made += 1
        self.callback = callback
        self.ignore = kw["ignore"]
        self.paths: list[str] = []
        self.started = self.stopped = 0

    def add_path(self, path: str) -> None:
        self.paths.append(path)

    def start(self) -> None:
        self.started += 1

    def stop(self) -> None:
        self.stopped += 1

    def join(self) -> None:
        pass


def test_a_change_reaches_only_the_views_that_watch_it(tmp_path: Path) -> None:
    Real.made = 0
    fanout = FanOut(Real)
    web, worker = Recorder(), Recorder()
    web_view = fanout.view_factory(web, ignore=IgnoreRules())
    worker_view = fanout.view_factory(worker, ignore=IgnoreRules())
    web_view.start()
    worker_view.start()
    shared, views, jobs = (str(tmp_path / n) for n in ("shared.py", "views.py", "jobs.py"))
    web_view.add_path(views)
    web_view.add_path(shared)
    worker_view.add_path(jobs)
    worker_view.add_path(shared)
    worker_view.add_path(str(tmp_path / "tasks" / "*.py"))
    real = fanout.monitor
    assert isinstance(real, Real) and Real.made == 1 and real.started == 1
    for path in (views, jobs, shared, str(tmp_path / "tasks" / "mail.py")):
        real.callback(path, True)
    assert web.paths == [views, shared]
    assert worker.paths == [jobs, shared, str(tmp_path / "tasks" / "mail.py")]
    worker_view.stop()
    real.callback(shared, True)
    assert worker.paths.count(shared) == 1, "a stopped view hears nothing more"
    fanout.stop()
    assert real.stopped == 1


def test_a_folder_covers_the_files_below_it(tmp_path: Path) -> None:
    fanout = FanOut(Real)
    heard = Recorder()
    view = fanout.view_factory(heard, ignore=IgnoreRules())
    view.add_path(str(tmp_path / "templates"))
    assert view.wants(str(tmp_path / "templates" / "a" / "b.html"))
    assert not view.wants(str(tmp_path / "templates-old" / "b.html"))
    assert not view.wants(os.sep)


def test_the_real_monitor_ignores_only_what_every_view_ignores(tmp_path: Path) -> None:
    fanout = FanOut(Real)
    fanout.view_factory(Recorder(), ignore=IgnoreRules([str(tmp_path / "build" / "*")]))
    fanout.view_factory(Recorder(), ignore=IgnoreRules())
    real = fanout.monitor
    assert isinstance(real, Real)
    built = str(tmp_path / "build" / "out.js")
    assert not real.ignore(built), "the second view wants it"
    assert real.ignore(str(tmp_path / "x.swp"))


def test_a_change_two_processes_use_is_said_once_with_their_names(tmp_path: Path) -> None:
    lines: list[str] = []

    class Log:
        def info(self, msg: str, *args: Any) -> None:
            lines.append(msg % args)

        error = warning = debug = info

    fanout = FanOut(Real, Log())
    shared = str(tmp_path / "shared.py")
    for name in ("web", "worker"):
        fanout.for_process(name)(Recorder(), ignore=IgnoreRules()).add_path(shared)
    real = fanout.monitor
    assert isinstance(real, Real)
    real.callback(shared, False)
    real.callback(shared, True)  # the same save, seen twice
    assert lines == [f"{display_path(shared)} changed, used by web and worker: each restarts"]
