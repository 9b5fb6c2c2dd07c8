"""One file monitor for a whole stack: each process's reloader gets a *view* that adds
paths to the one real monitor (one inotify instance, one FSEvents stream), and hears
only the changes under the paths it added itself."""

from __future__ import annotations

import functools
import os
import threading
import time
from typing import Any

from devreload.filemon.base import (
    Callback,
    FileMonitor,
    FileMonitorFactory,
    glob_regex,
    is_glob,
    path_key,
)
from devreload.log import Logger, display_path


class View:
    """What one reloader of the stack sees of the shared monitor."""

    def __init__(self, fanout: FanOut, callback: Callback, ignore: Any, name: str = "") -> None:
        self.fanout = fanout
        self.name = name
        self.callback = callback
        self.ignore = ignore
        self.paths: set[str] = set()
        self.globs: list[Any] = []

    def add_path(self, path: str) -> None:
        if is_glob(path):
            self.globs.append(glob_regex(path))
        else:
            self.paths.add(path_key(path))
        self.fanout.add_path(path)

    def wants(self, path: str) -> bool:
        """A path it added, a file below a folder it added, or a match of its globs."""
        key = path_key(path)
        if key in self.paths or any(g.match(path) for g in self.globs):
            return True
        parent = os.path.dirname(key)
        while parent and parent not in self.paths:
            above = os.path.dirname(parent)
            parent = "" if above == parent else above
        return bool(parent)

    def start(self) -> None:
        self.fanout.start()

    def stop(self) -> None:
        self.fanout.forget(self)

    def join(self) -> None:
        pass


class _EveryView:
    """The real monitor ignores only what every view ignores (the rules of
    :class:`~devreload.filemon.base.IgnoreRules`, asked of each)."""

    def __init__(self, views: list[View]) -> None:
        self.views = views

    def _all(self, rule: str, path: str) -> bool:
        return all(view.ignore is not None and getattr(view.ignore, rule)(path)
                   for view in self.views)

    def __call__(self, path: str) -> bool:
        return self._all("__call__", path)

    def ignores_folder(self, folder: str) -> bool:
        return self._all("ignores_folder", folder)

    def glob_ignores(self, path: str) -> bool:
        return self._all("glob_ignores", path)

    def glob_ignores_folder(self, folder: str) -> bool:
        return self._all("glob_ignores_folder", folder)


class FanOut:
    """The shared monitor, built with the first view's settings; its own ``stop`` ends it.
    A change that reaches several processes is said once, with their names, on ``log``."""

    #: One save may come as several events: the line about it is said once this long.
    SAID_FOR = 1.0

    def __init__(self, factory: FileMonitorFactory, log: Logger | None = None) -> None:
        self.factory = factory
        self.log = log
        self.views: list[View] = []
        self.monitor: FileMonitor | None = None
        self._lock = threading.Lock()
        self._started = False
        self._said: dict[tuple[str, tuple[str, ...]], float] = {}

    def view_factory(self, callback: Callback, **kw: Any) -> View:
        """A :class:`FileMonitorFactory`: each reloader's ``monitor_factory``."""
        view = View(self, callback, kw.get("ignore"), kw.pop("name", ""))
        with self._lock:
            self.views.append(view)
        if self.monitor is None:
            kw["ignore"] = _EveryView(self.views)
            self.monitor = self.factory(self._changed, **kw)
        return view

    def for_process(self, name: str) -> FileMonitorFactory:
        """The factory of the process ``name``'s view."""
        return functools.partial(self.view_factory, name=name)

    def add_path(self, path: str) -> None:
        assert self.monitor is not None
        self.monitor.add_path(path)

    def start(self) -> None:
        if not self._started and self.monitor is not None:
            self._started = True
            self.monitor.start()

    def forget(self, view: View) -> None:
        with self._lock:
            if view in self.views:
                self.views.remove(view)

    def _changed(self, path: str, final: bool = False) -> None:
        with self._lock:
            views = [view for view in self.views if view.wants(path)]
        users = tuple(view.name for view in views
                      if not (view.ignore is not None and view.ignore(path)))
        if len(users) > 1:
            self._say(path, users)
        for view in views:
            view.callback(path, final)

    def _say(self, path: str, names: tuple[str, ...]) -> None:
        now = time.monotonic()
        if self.log is None or now < self._said.get((path, names), 0.0):
            return
        self._said[(path, names)] = now + self.SAID_FOR
        self.log.info("%s changed, used by %s: each restarts", display_path(path),
                      " and ".join(names))

    def stop(self) -> None:
        if self.monitor is not None:
            self.monitor.stop()
            self.monitor.join()
