"""The monitor process: it runs the worker, watches what it depends on, and replaces it.

Every source of news (signals, file monitor threads, the channel readers, the
terminal) only queues an event; one loop in ``ReloadStrategy.run`` decides. Signal
handlers put on a ``SimpleQueue``, whose ``put`` is safe to call from them.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from devreload.channel import Channel, ChannelClosed
from devreload.filemon import (
    FileMonitor,
    FileMonitorFactory,
    IgnoreRules,
    find_default_monitor_factory,
    glob_regex,
    is_glob,
)
from devreload.launch import Launcher, choose_launcher
from devreload.worker import EXIT_RELOAD, ReloaderProxy, get_reloader, is_active

DEFAULT_RELOAD_INTERVAL = 0.05
DEFAULT_SHUTDOWN_INTERVAL = 1.5
MAX_BACKOFF = 5.0
Event = tuple[Any, ...]


class Logger(Protocol):
    """What the monitor logs through; a ``logging.Logger`` fits."""

    def error(self, msg: str, *args: Any) -> None: ...

    def info(self, msg: str, *args: Any) -> None: ...

    def debug(self, msg: str, *args: Any) -> None: ...


class _Formatter(logging.Formatter):
    """``devreload: message``, with the prefix coloured on a terminal only."""

    COLOURS: ClassVar[dict[int, str]] = {
        logging.ERROR: "31",
        logging.WARNING: "33",
        logging.INFO: "32",
        logging.DEBUG: "2",
    }

    def __init__(self, colour: bool) -> None:
        super().__init__("%(message)s")
        self.colour = colour

    def format(self, record: logging.LogRecord) -> str:
        prefix = "devreload:"
        if self.colour:
            prefix = f"\033[{self.COLOURS.get(record.levelno, '0')}m{prefix}\033[0m"
        return f"{prefix} {super().format(record)}"


def default_logger(verbose: int = 1) -> logging.Logger:
    """The ``devreload`` logger, given a stderr handler unless the app configured one."""
    log = logging.getLogger("devreload")
    log.setLevel({0: logging.ERROR, 1: logging.INFO}.get(verbose, logging.DEBUG))
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        colour = sys.stderr.isatty() and "NO_COLOR" not in os.environ
        handler.setFormatter(_Formatter(colour))
        log.addHandler(handler)
        log.propagate = False
    return log


def _display(path: str) -> str:
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


@dataclass
class Worker:
    pid: int
    channel: Channel
    started: float
    #: Wall-clock start, to compare with file mtimes.
    born: float = field(default_factory=time.time)
    ready: bool = False


@dataclass
class Restart:
    """A restart in progress: what asked for it, and when."""

    reasons: list[str]
    began: float
    last: float = field(default=0.0)

    def describe(self) -> str:
        first = _display(self.reasons[0]) if _is_path(self.reasons[0]) else self.reasons[0]
        more = len(set(self.reasons)) - 1
        return f"{first} (+{more} more)" if more else first


class ReloadStrategy:
    """The monitor's decisions, one loop over queued events.

    Subclass it for another trigger: call ``request_reload()`` from any thread (a timer,
    a message queue, a webhook) and override ``should_restart`` to veto. ``startup``,
    ``restart`` and ``shutdown`` may be extended; call the base method.
    """

    def __init__(
        self,
        worker_path: str | Callable[..., Any],
        *,
        reload_interval: float = DEFAULT_RELOAD_INTERVAL,
        shutdown_interval: float = DEFAULT_SHUTDOWN_INTERVAL,
        logger: Logger | None = None,
        worker_args: Sequence[Any] | None = None,
        worker_kwargs: Mapping[str, Any] | None = None,
        before_reload: Callable[[], None] | None = None,
        sockets: Sequence[socket.socket] = (),
        worker_announces_ready: bool = False,
        launcher: Launcher | None = None,
    ) -> None:
        if reload_interval < 0 or shutdown_interval < 0:
            raise ValueError("reload_interval and shutdown_interval must not be negative")
        self.worker_path, self.worker_args = _worker_entry(worker_path, worker_args)
        self.worker_kwargs = dict(worker_kwargs or {})
        self.reload_interval = reload_interval
        self.shutdown_interval = shutdown_interval
        self.log: Logger = logger or default_logger()
        self.before_reload = before_reload
        self.sockets = list(sockets)
        self.worker_announces_ready = worker_announces_ready
        self.launcher = launcher or choose_launcher(self.log)
        self.events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self.worker: Worker | None = None
        self.stopping: dict[int, float] = {}  # pid -> when to SIGKILL its group
        self.restart_state: Restart | None = None
        self.timing: Restart | None = None
        self.crashed = False
        self.last_error = ""
        self.quick_exits = 0
        self.exit_code: int | None = None
        self._terminal = _Terminal()

    # -- the hooks -------------------------------------------------------------------

    def startup(self) -> None:
        """Start the first worker."""
        self._start_worker()

    def should_restart(self, reason: str) -> bool:
        """Whether this trigger (a changed path, or a description) restarts the worker."""
        return True

    def restart(self, reason: str) -> None:
        """Begin a restart: stop the worker now; the new one starts after a quiet window."""
        now = time.monotonic()
        if self.restart_state is not None:
            self.restart_state.reasons.append(reason)
            self.restart_state.last = now
            return
        if self.before_reload is not None:
            self.before_reload()
        self.restart_state = Restart([reason], began=now, last=now)
        self._stop_worker()

    def shutdown(self) -> None:
        """Release what the monitor holds."""
        self.launcher.close()
        for sock in self.sockets:
            sock.close()
        self._terminal.restore()

    # -- the loop --------------------------------------------------------------------

    def request_reload(self, reason: str = "reload requested") -> None:
        """Thread-safe: ask for a restart."""
        self.events.put(("reload", reason))

    def run(self) -> int:
        """Run until the worker exits 0 or the monitor is told to stop; the exit code."""
        previous = self._install_signals()
        try:
            self.startup()
            while not (self.exit_code is not None and self.worker is None and not self.stopping):
                try:
                    event = self.events.get(timeout=self._timeout())
                except queue.Empty:
                    event = None
                if event is not None:
                    self.handle(event)
                self._advance()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.shutdown()
        return self.exit_code or 0

    def _install_signals(self) -> dict[int, Any]:
        put = self.events.put
        previous: dict[int, Any] = {}
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
            previous[sig] = signal.signal(sig, lambda signum, frame: put(("signal", signum)))
        return previous

    def _timeout(self) -> float | None:
        # A killed worker's deadline is infinite: only SIGCHLD can end that wait.
        deadlines = [d for d in self.stopping.values() if math.isfinite(d)]
        if self.restart_state is not None and self.exit_code is None:
            deadlines.append(self.restart_state.last + self.reload_interval)
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - time.monotonic())

    def handle(self, event: Event) -> None:
        kind = event[0]
        if kind == "signal":
            self._on_signal(event[1])
        elif kind == "message":
            self._on_message(event[1], event[2])
        elif kind == "reload":
            self._trigger(event[1])
        elif kind == "enter" and self.crashed:
            self._trigger_fresh("Enter pressed")

    def _trigger(self, reason: str) -> None:
        if self.exit_code is None and self.should_restart(reason):
            self.restart(reason)

    def _trigger_fresh(self, reason: str) -> None:
        """A restart asked for by hand also drops the template, so that libraries
        upgraded since (``pip install -U``) are imported anew."""
        self.launcher.close()
        self._trigger(reason)

    def _advance(self) -> None:
        now = time.monotonic()
        for pid, deadline in list(self.stopping.items()):
            if now >= deadline:
                self.log.debug("worker %d did not stop in %.1f s; killing it", pid,
                               self.shutdown_interval)
                _killpg(pid, signal.SIGKILL)
                self.stopping[pid] = float("inf")
        pending = self.restart_state
        if (
            pending is not None
            and self.exit_code is None
            and self.worker is None
            and not self.stopping
            and now >= pending.last + self.reload_interval
        ):
            self.restart_state = None
            self.timing = pending
            self._start_worker()

    def _on_signal(self, signum: int) -> None:
        if signum == signal.SIGCHLD:
            self._reap()
        elif signum == signal.SIGHUP:
            self._trigger_fresh("SIGHUP")
        elif self.exit_code is not None:
            for pid in list(self.stopping) + ([self.worker.pid] if self.worker else []):
                _killpg(pid, signal.SIGKILL)
        else:
            self._exit(0)

    def _exit(self, code: int) -> None:
        self.exit_code = code
        self.crashed = False
        self._stop_worker()

    # -- workers ---------------------------------------------------------------------

    def _start_worker(self) -> None:
        if self.crashed:
            self.crashed = False
            self.on_recover()
        self.last_error = ""
        channel, theirs = Channel.pair()
        born = time.time()
        try:
            pid = self.launcher.start(theirs, self.sockets)
        finally:
            theirs.close()
        worker = Worker(pid, channel, time.monotonic(), born)
        self.worker = worker
        spec = {
            "worker_path": self.worker_path,
            "args": self.worker_args,
            "kwargs": self.worker_kwargs,
            "sys_path": list(sys.path),
            "argv": list(sys.argv),
            "announce_ready": self.worker_announces_ready,
        }
        try:
            channel.send(("spec", spec))
        except ChannelClosed:
            pass
        threading.Thread(target=self._read_channel, args=(worker,), daemon=True,
                         name=f"devreload-channel-{pid}").start()
        self.log.debug("worker %d started", pid)

    def _read_channel(self, worker: Worker) -> None:
        try:
            while True:
                self.events.put(("message", worker, worker.channel.recv()))
        except ChannelClosed:
            pass

    def _stop_worker(self) -> None:
        worker = self.worker
        if worker is None:
            return
        self.worker = None
        self.stopping[worker.pid] = time.monotonic() + self.shutdown_interval
        _killpg(worker.pid, signal.SIGTERM)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self.launcher.forget(pid):
                continue
            code = os.waitstatus_to_exitcode(status)
            _killpg(pid, signal.SIGKILL)  # the worker's own children end with it
            if pid in self.stopping:
                del self.stopping[pid]
                self._terminal.restore()
            elif self.worker is not None and pid == self.worker.pid:
                lived = time.monotonic() - self.worker.started
                self.worker.channel.close()
                self.worker = None
                self._terminal.restore()
                self._worker_exited(code, lived)

    def _worker_exited(self, code: int, lived: float) -> None:
        if self.exit_code is not None or self.restart_state is not None:
            return
        if code == EXIT_RELOAD:
            # A worker that keeps asking as soon as it starts is a loop: from the second
            # time on, back off, doubling up to MAX_BACKOFF.
            self.quick_exits = self.quick_exits + 1 if lived < 1.0 else 0
            backoff = 0.0
            if self.quick_exits > 1:
                backoff = min(0.1 * 2 ** (self.quick_exits - 2), MAX_BACKOFF)
                self.log.info("the worker asks for a restart as soon as it starts; "
                              "backing off %.1f s", backoff)
            now = time.monotonic()
            self.restart_state = Restart(["exit code 75"], began=now,
                                         last=now + backoff - self.reload_interval)
        elif code == 0:
            self.log.debug("worker exited with code 0")
            self.exit_code = 0
        else:
            how = f"signal {-code}" if code < 0 else f"code {code}"
            self.log.error("worker exited with %s; waiting for a change%s", how,
                           " (or press Enter)" if self._terminal.interactive else "")
            self.crashed = True
            self.on_crash(self.last_error or f"The app exited with {how}.")
            if self._terminal.interactive:
                threading.Thread(target=self._wait_for_enter, daemon=True).start()

    def _wait_for_enter(self) -> None:
        while self.crashed:
            readable, _, _ = select.select([sys.stdin], [], [], 0.2)
            if readable and self.crashed:
                if not os.read(sys.stdin.fileno(), 1024):
                    return
                self.events.put(("enter",))
                return

    def _on_message(self, worker: Worker, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "modules":
            self.on_modules(message[1], worker.born)
            self.launcher.preload(message[2])
        elif kind == "watch":
            self.on_watch(message[1], worker.born)
        elif kind == "error":
            self.last_error = message[1]
            if self.crashed:
                self.on_crash(self.last_error)
        elif worker is not self.worker:
            return
        elif kind == "ready":
            worker.ready = True
            self._report_ready(worker)
        elif kind == "reload":
            self._trigger("trigger_reload()")
        elif kind == "shutdown":
            self._exit(0)

    def _report_ready(self, worker: Worker) -> None:
        timing, self.timing = self.timing, None
        if timing is None:
            self.log.debug("worker %d ready in %.0f ms", worker.pid,
                           (time.monotonic() - worker.started) * 1000)
            return
        elapsed = (time.monotonic() - timing.began) * 1000
        self.log.info("%s changed; restarted in %.0f ms"
                      if _is_path(timing.reasons[0]) else "%s; restarted in %.0f ms",
                      timing.describe(), elapsed)

    def on_crash(self, error: str) -> None:
        """The worker died; ``error`` is its traceback (or one line). Called again if a
        fuller report arrives after the exit."""

    def on_recover(self) -> None:
        """A new worker is about to start after a crash."""

    def on_modules(self, files: list[str], since: float) -> None:
        """Source files imported by a worker started at ``since`` (wall clock)."""

    def on_watch(self, paths: list[str], since: float) -> None:
        """Paths a worker started at ``since`` asked to watch."""


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


def _modified_since(path: str, since: float) -> bool:
    try:
        return os.stat(path).st_mtime > since - MTIME_SLACK
    except OSError:
        return False


def _is_path(reason: str) -> bool:
    return os.sep in reason or os.path.exists(reason)


class Reloader(ReloadStrategy):
    """The strategy with file monitoring: imported modules, extra files and globs."""

    def __init__(
        self,
        worker_path: str | Callable[..., Any],
        *,
        monitor_factory: FileMonitorFactory | None = None,
        ignore_files: Iterable[str] | None = None,
        watch_files: Iterable[str] | None = None,
        static_files: Iterable[str] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(worker_path, **kw)
        self.ignore = IgnoreRules(ignore_files or ())
        self.static = [_static_pattern(p) for p in static_files or ()]
        self.monitor_factory = monitor_factory
        self.watched: set[str] = set()
        self.initial = [os.path.abspath(p) for p in (watch_files or ())]
        self.monitor: FileMonitor | None = None

    def startup(self) -> None:
        factory = self.monitor_factory or find_default_monitor_factory(self.log)
        self.monitor = self._build_monitor(factory)
        self.on_watch(self.initial)
        self._watch(self.static, None)
        super().startup()

    def _build_monitor(self, factory: FileMonitorFactory) -> FileMonitor:
        try:
            monitor = factory(self._changed, interval=self.reload_interval, logger=self.log,
                              ignore=self.ignore)
            monitor.start()
        except OSError as exc:
            monitor = self._polling_instead(exc)
        self.log.debug("using %s", type(monitor).__name__)
        return monitor

    def _polling_instead(self, exc: OSError) -> FileMonitor:
        """The OS refused to watch (its limit, most often): say so once, and poll."""
        from devreload.filemon_polling import PollingFileMonitor

        self.log.error("%s; polling for changes instead", exc)
        monitor = PollingFileMonitor(self._changed, interval=self.reload_interval,
                                     logger=self.log, ignore=self.ignore)
        for path in self.watched:
            monitor.add_path(path)
        monitor.start()
        return monitor

    def _changed(self, path: str) -> None:
        self.events.put(("file", path))

    def handle(self, event: Event) -> None:
        if event[0] != "file":
            super().handle(event)
        elif any(glob_regex(p).match(event[1]) for p in self.static):
            self._push_static(event[1])
        else:
            self._trigger(event[1])

    def _push_static(self, path: str) -> None:
        """A static file needs no new worker: the worker tells the browser instead."""
        if self.ignore(path) or self.worker is None:
            return
        self.log.info("%s changed; pushed to the browser", _display(path))
        try:
            self.worker.channel.send(("static", path))
        except ChannelClosed:
            pass

    def should_restart(self, reason: str) -> bool:
        if _is_path(reason) and self.ignore(reason):
            self.log.debug("ignored a change to %s", _display(reason))
            return False
        return True

    def on_modules(self, files: list[str], since: float) -> None:
        self._watch(files, since)

    def on_watch(self, paths: list[str], since: float | None = None) -> None:
        self.ignore.explicit.update(paths)
        for path in paths:
            if not os.path.exists(path) and not is_glob(path):
                self.log.info("%s does not exist yet; watching for it", _display(path))
        self._watch(paths, since)

    def _watch(self, paths: Iterable[str], since: float | None) -> None:
        """Watch new paths; one already changed since the worker started means the
        worker may have read the old version, so that counts as a change."""
        new = [p for p in paths if p not in self.watched and not self.ignore(p)]
        if not new or self.monitor is None:
            return
        self.watched.update(new)
        for path in new:
            try:
                self.monitor.add_path(path)
            except OSError as exc:
                self._fall_back_to_polling(exc)
            if since is not None and _modified_since(path, since):
                self._changed(path)
        self.log.debug("watching %d paths", len(self.watched))

    def _fall_back_to_polling(self, exc: OSError) -> None:
        if self.monitor is not None:
            self.monitor.stop()
        self.monitor = self._polling_instead(exc)

    def shutdown(self) -> None:
        if self.monitor is not None:
            self.monitor.stop()
        super().shutdown()


class _Terminal:
    """Keeps the terminal's settings so a worker killed at a pdb prompt cannot break them."""

    def __init__(self) -> None:
        self.saved: list[Any] | None = None
        self.interactive = False
        try:
            import termios

            if sys.stdin is not None and sys.stdin.isatty():
                self.saved = termios.tcgetattr(sys.stdin.fileno())
                self.interactive = True
        except (ImportError, OSError, ValueError):
            pass

    def restore(self) -> None:
        if self.saved is None:
            return
        import termios

        try:
            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, self.saved)
        except (OSError, termios.error):
            pass


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _worker_entry(
    path: str | Callable[..., Any], args: Sequence[Any] | None
) -> tuple[str | Callable[..., Any], list[Any]]:
    """A function of ``__main__`` cannot be imported by name: re-run the program instead."""
    if callable(path) and getattr(path, "__module__", None) == "__main__":
        main = sys.modules["__main__"]
        spec = getattr(main, "__spec__", None)
        if spec is not None and spec.name:
            return "devreload.worker:run_program", ["module", spec.name]
        return "devreload.worker:run_program", ["path", sys.argv[0]]
    return path, list(args or ())


def start_reloader(
    worker_path: str | Callable[..., Any],
    reload_interval: float = DEFAULT_RELOAD_INTERVAL,
    shutdown_interval: float = DEFAULT_SHUTDOWN_INTERVAL,
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
) -> ReloaderProxy:
    """Become the monitor of a worker running ``worker_path``; in the worker, return its proxy.

    In the monitor this does not return: it raises ``SystemExit`` with the final exit
    code once the worker exits 0 or the monitor is stopped.
    """
    if is_active():
        return get_reloader()
    reloader = Reloader(
        worker_path,
        reload_interval=reload_interval,
        shutdown_interval=shutdown_interval,
        logger=logger or default_logger(verbose),
        monitor_factory=monitor_factory,
        worker_args=worker_args,
        worker_kwargs=worker_kwargs,
        ignore_files=ignore_files,
        before_reload=before_reload,
        watch_files=watch_files,
        sockets=sockets,
        worker_announces_ready=worker_announces_ready,
        static_files=static_files,
    )
    raise SystemExit(reloader.run())
