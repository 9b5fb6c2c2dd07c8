"""The monitor with file watching: what the worker imported, what it asked for, globs,
static files pushed instead of restarting, and the error page while the app is broken.

``start_reloader`` is the hupper-style entry: it turns this process into the monitor.
"""

from __future__ import annotations

import os
import queue
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from devreload import processes
from devreload.filemon.base import FileMonitor, FileMonitorFactory, IgnoreRules, glob_regex, is_glob
from devreload.filemon.choice import find_default_monitor_factory
from devreload.imports import drop_bytecode
from devreload.log import Logger, counted, default_logger, display_path
from devreload.monitor.errorserver import ErrorPage
from devreload.monitor.events import Event, FileChanged, Trigger, WorkerSaid
from devreload.monitor.launch import Launcher
from devreload.monitor.pushes import StaticPushes
from devreload.monitor.restarts import quiet_window
from devreload.monitor.settings import ReloadSettings
from devreload.monitor.standin import StandIn
from devreload.monitor.strategy import ReloadStrategy
from devreload.wire.channel import ChannelClosed
from devreload.wire.messages import IMPORTED, Failed, Files, Modules, StaticChanged, Watch
from devreload.worker.modules import ModuleScanner
from devreload.worker.proxy import ReloaderProxy, get_reloader, is_active

#: File timestamps come from a coarse kernel clock that may lag time.time() by a tick.
MTIME_SLACK = 0.005


def _static_pattern(pattern: str) -> str:
    """``*.css`` means anywhere below the current folder; other relative globs start there."""
    pattern = os.path.expanduser(pattern)
    if os.path.isabs(pattern):
        return pattern
    if pattern.startswith("*") and not pattern.startswith("**"):
        pattern = os.path.join("**", pattern)
    return os.path.join(os.getcwd(), pattern)


def _link_target(path: str) -> str | None:
    """The file ``path`` links to, if it is a symlink: an edit of the target happens in
    the target's folder, where no event about the link is ever seen."""
    if is_glob(path) or not os.path.islink(path):
        return None
    return os.path.realpath(path)


def _modified_since(path: str, since: float) -> bool:
    try:
        return os.stat(path).st_mtime > since - MTIME_SLACK
    except OSError:
        return False


class Reloader(ReloadStrategy):
    """The strategy with file monitoring: imported modules, extra files and globs."""

    def __init__(
        self,
        worker_path: str | Callable[..., Any],
        settings: ReloadSettings | None = None,
        *,
        logger: Logger | None = None,
        sockets: Sequence[socket.socket] = (),
        launcher: Launcher | None = None,
        events: queue.SimpleQueue[Event] | None = None,
    ) -> None:
        super().__init__(worker_path, settings, logger=logger, sockets=sockets,
                         launcher=launcher, events=events)
        self.ignore = IgnoreRules(self.settings.ignore_files, gitignore=self.settings.gitignore)
        self.static = [_static_pattern(p) for p in self.settings.static_files]
        self.pushes = StaticPushes()
        #: Watched paths -> when their watch was laid (wall clock).
        self.watched: dict[str, float] = {}
        #: Targets of watched symlinks -> the link's path.
        self.links: dict[str, str] = {}
        self.monitor: FileMonitor | None = None

    def startup(self) -> None:
        factory = self.settings.monitor_factory or find_default_monitor_factory(self.log)
        self.monitor = self._build_monitor(factory)
        if self.workers.stand_in is not None:
            # The first worker is this process's fork, serving what this process imported:
            # watched from here, while the fork serves (its successor reports them again),
            # changed if saved after this process started (a file saved just before, as
            # its timestamp may show it, is not).
            files, _ = ModuleScanner().scan()
            self.on_modules(files, processes.started_at() + MTIME_SLACK)
        self.on_watch([os.path.abspath(p) for p in self.settings.watch_files])
        self._watch(dict.fromkeys(self.static))
        super().startup()

    def _build_monitor(self, factory: FileMonitorFactory) -> FileMonitor:
        try:
            monitor = factory(self._changed, interval=self.settings.poll_interval,
                              logger=self.log, ignore=self.ignore)
            monitor.start()
        except OSError as exc:
            monitor = self._polling_instead(exc)
        settings = self.settings
        self.log.debug("using %s; reload interval %g s, shutdown interval %g s; also watching: "
                       "%s; ignoring: %s", type(monitor).__name__, settings.reload_interval,
                       settings.shutdown_interval,
                       " ".join(map(display_path, settings.watch_files)) or "-",
                       " ".join(settings.ignore_files) or "-")
        return monitor

    def _polling_instead(self, exc: OSError) -> FileMonitor:
        """The OS refused to watch (its limit, most often): say so once, and poll."""
        from devreload.filemon.polling import PollingFileMonitor

        self.log.error("%s; polling for changes instead", exc)
        monitor = PollingFileMonitor(self._changed, interval=self.settings.poll_interval,
                                     logger=self.log, ignore=self.ignore)
        for path in self.watched:
            monitor.add_path(path)
        monitor.start()
        return monitor

    def _changed(self, path: str, final: bool = False) -> None:
        # A link's target changed: it is the file the app knows by the link's name.
        self.events.put(FileChanged(self.links.get(path, path), final))

    def handle(self, event: Event) -> None:
        if isinstance(event, FileChanged) and any(glob_regex(p).match(event.path)
                                                  for p in self.static):
            if not self.ignore(event.path):
                window = quiet_window([event], self.settings.reload_interval)
                self.pushes.changed(event.path, self.clock() + window)
            return
        if isinstance(event, FileChanged):
            drop_bytecode(event.path)
            if event.path in self.watched:
                try:
                    self._follow_link(event.path)
                except OSError as exc:
                    self._fall_back_to_polling(exc)
        super().handle(event)

    def time_to_wait(self) -> float | None:
        timeout, push = super().time_to_wait(), self.pushes.deadline()
        if push is None:
            return timeout
        wait = max(0.0, push - self.clock())
        return wait if timeout is None else min(timeout, wait)

    def advance(self) -> None:
        super().advance()
        for path in self.pushes.due(self.clock()):
            self._push_static(path)

    def _push_static(self, path: str) -> None:
        """A static file needs no new worker: the worker tells the browser instead."""
        if self.worker is None:
            return
        self.log.info("%s changed; pushed to the browser", display_path(path))
        try:
            self.worker.channel.send(StaticChanged(path))
        except ChannelClosed:
            pass

    def should_restart(self, trigger: Trigger) -> bool:
        if isinstance(trigger, FileChanged) and self.ignore(trigger.path):
            self.log.debug("ignored a change to %s", trigger.describe())
            return False
        return True

    def on_report(self, report: Modules | Watch | Files, since: float | None) -> None:
        if isinstance(report, Modules):
            self.on_modules(report.files, since)
        elif isinstance(report, Watch) and report.static:
            self.on_static(report.paths)
        elif isinstance(report, Watch):
            self.on_watch(report.paths, since)
        else:
            self.on_files(report, stale=since is None)

    def on_modules(self, files: Sequence[str], since: float | None) -> None:
        self._watch({path: since for path in files})

    def on_files(self, files: Files, stale: bool = False) -> None:
        self.ignore.written.update(files.written)
        for folder in files.data:
            self.log.debug("not watching what the app reads in %s: read while it served, "
                           "by its own code (data, not code; -w to watch)",
                           display_path(folder))
        for read in files.read:
            if (read.why != IMPORTED and read.path not in self.watched
                    and not self.ignore(read.path)):
                self.log.debug("watching %s: %s", display_path(read.path), read.why)
        self._watch({read.path: None if stale else read.at for read in files.read})

    def on_static(self, paths: Sequence[str]) -> None:
        patterns = [os.path.join(p, "**") if os.path.isdir(p) else p for p in paths]
        new = [p for p in patterns if p not in self.static]
        if new:
            self.log.debug("pushing changes to open pages, without a restart: %s",
                           " ".join(map(display_path, new)))
            self.static.extend(new)
            self._watch(dict.fromkeys(new))

    def on_watch(self, paths: Sequence[str], since: float | None = None) -> None:
        self.ignore.explicit.update(paths)
        for path in paths:
            if not os.path.exists(path) and not is_glob(path):
                self.log.info("%s does not exist yet; watching for it", display_path(path))
        self._watch(dict.fromkeys(paths, since))

    def _watch(self, paths: Mapping[str, float | None]) -> None:
        """Watch new paths, each with when the worker read it. One changed since the read
        and before its watch was laid may be the old version in the worker: that counts
        as a change. So for a path watched already, but from after this worker read it
        (a replaced worker's late report laid the watch; the change came in between)."""
        if self.monitor is None:
            return
        late = [p for p, at in paths.items()
                if at is not None and p in self.watched and at < self.watched[p]]
        new = {p: at for p, at in paths.items() if p not in self.watched and not self.ignore(p)}
        laid = time.time()
        for path in new:
            self.watched[path] = laid
            try:
                self.monitor.add_path(path)
                self._follow_link(path)
            except OSError as exc:
                self._fall_back_to_polling(exc)
        for path in [*late, *new]:
            at = paths[path]
            if at is not None and _modified_since(path, at):
                self.events.put(FileChanged(self.links.get(path, path),
                                            why="changed since the worker read it"))
        if new:
            self.log.debug("watching %s", counted(len(self.watched), "path"))

    def _follow_link(self, path: str) -> None:
        """A watched path that is a symlink (from the start, or since a change): the file
        it leads to is watched too, its changes named by the link."""
        target = _link_target(path)
        if target is not None and self.monitor is not None and target not in self.links:
            self.links[target] = path
            self.monitor.add_path(target)

    def _fall_back_to_polling(self, exc: OSError) -> None:
        if self.monitor is not None:
            self.monitor.stop()
        self.monitor = self._polling_instead(exc)

    def shutdown(self) -> None:
        if self.monitor is not None:
            self.monitor.stop()
        super().shutdown()


class ServingReloader(Reloader):
    """The monitor of a web app: while the app is broken it answers on its listening
    sockets with the error page, until a new worker is about to start."""

    def __init__(
        self,
        worker_path: str | Callable[..., Any],
        settings: ReloadSettings | None = None,
        *,
        logger: Logger | None = None,
        sockets: Sequence[socket.socket] = (),
        launcher: Launcher | None = None,
        events: queue.SimpleQueue[Event] | None = None,
        show_errors: bool = True,
        allowed_hosts: Sequence[str] = (),
        stand_in: StandIn | None = None,
    ) -> None:
        super().__init__(worker_path, settings, logger=logger, sockets=sockets,
                         launcher=launcher, events=events)
        #: The first worker, when the monitor forked it with the app it had imported.
        self.workers.stand_in = stand_in
        self.error_page = ErrorPage(self.sockets, show_errors, allowed_hosts)
        #: The worker's last failure report, with the frames the page shows.
        self.failed = Failed("")

    def handle(self, event: Event) -> None:
        """Keep the worker's failure whole: ``on_crash`` gets its text only."""
        if isinstance(event, WorkerSaid) and isinstance(event.message, Failed):
            self.failed = event.message
        super().handle(event)

    def on_crash(self, error: str) -> None:
        failed = self.failed if self.failed.report == error else Failed(error)
        self.error_page.start(error, failed.frames, failed.exception)
        self.on_parked_connections()

    def on_parked_connections(self) -> None:
        """Parked keep-alive connections get the error page too, like new ones."""
        self.error_page.adopt(self.workers.parked.take())

    def on_recover(self) -> None:
        # Connections still waiting for their next request go to the next worker.
        self.workers.parked.extend(self.error_page.stop())

    def shutdown(self) -> None:
        self.workers.parked.extend(self.error_page.stop())
        super().shutdown()


def start_reloader(
    worker_path: str | Callable[..., Any],
    reload_interval: float = ReloadSettings.reload_interval,
    shutdown_interval: float = ReloadSettings.shutdown_interval,
    verbose: int = 1,
    logger: Logger | None = None,
    monitor_factory: FileMonitorFactory | None = None,
    worker_args: Sequence[Any] | None = None,
    worker_kwargs: Mapping[str, Any] | None = None,
    ignore_files: Iterable[str] | None = None,
    before_reload: Callable[[], None] | None = None,
    *,
    watch_files: Iterable[str] | None = None,
    sockets: Sequence[socket.socket] = (),
    worker_announces_ready: bool = False,
    static_files: Iterable[str] | None = None,
    preload: bool = True,
    preload_exclude: Sequence[str] = (),
    cooperative: bool = False,
    cooperative_timeout: float | None = None,
    gitignore: bool = True,
    poll_interval: float = ReloadSettings.poll_interval,
) -> ReloaderProxy:
    """Become the monitor of a worker running ``worker_path``; in the worker, return its proxy.

    In the monitor this does not return: it raises ``SystemExit`` with the final exit
    code once the worker exits 0 or the monitor is stopped (hupper's contract). The
    arguments are those of :class:`~devreload.monitor.settings.ReloadSettings`, plus
    ``verbose`` (0 quiet, 1 a line per restart, 2 every decision) or a ``logger``, and
    ``sockets``: listening sockets the monitor holds and every worker accepts on
    (``get_reloader().sockets`` there).
    """
    if is_active():
        return get_reloader()
    settings = ReloadSettings(
        reload_interval=reload_interval,
        shutdown_interval=shutdown_interval,
        poll_interval=poll_interval,
        worker_args=tuple(worker_args or ()),
        worker_kwargs=dict(worker_kwargs or {}),
        before_reload=before_reload,
        worker_announces_ready=worker_announces_ready,
        preload=preload,
        preload_exclude=tuple(preload_exclude),
        cooperative=cooperative,
        cooperative_timeout=cooperative_timeout,
        monitor_factory=monitor_factory,
        watch_files=tuple(watch_files or ()),
        ignore_files=tuple(ignore_files or ()),
        static_files=tuple(static_files or ()),
        gitignore=gitignore,
    )
    reloader = Reloader(worker_path, settings, logger=logger or default_logger(verbose),
                        sockets=sockets)
    raise SystemExit(reloader.run())
