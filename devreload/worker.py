"""The worker side: what runs inside the process that hosts the user's code.

The one process-global (the proxy to the monitor) sits behind ``get_reloader()`` and
``is_active()``; the module-level ``watch_files`` and ``trigger_reload`` do nothing when
no monitor is there, so applications may call them unconditionally.
"""

from __future__ import annotations

import atexit
import gc
import importlib.util
import io
import os
import runpy
import signal
import site
import socket
import sys
import sysconfig
import threading
import traceback
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

from devreload.channel import Channel, ChannelClosed
from devreload.errors import DevreloadError
from devreload.imports import import_string
from devreload.log import display_path
from devreload.messages import (
    Failed,
    FromWorker,
    Message,
    Modules,
    Ready,
    ReloadAsked,
    ShutdownAsked,
    Spec,
    StaticChanged,
    Watch,
)

#: The exit code with which a worker asks its monitor for a fresh start.
EXIT_RELOAD = 75

FDS_ENV = "DEVRELOAD_WORKER_FDS"
SCAN_INTERVAL = 0.25


class ReloaderProxy:
    """The worker's handle on its monitor."""

    def __init__(
        self,
        channel: Channel,
        sockets: list[socket.socket],
        report_modules: Callable[[], None] | None = None,
    ) -> None:
        self._channel = channel
        self._report_modules = report_modules
        self._static_listeners: list[Callable[[str], None]] = []
        #: Listening sockets the monitor bound and handed over, in the order it was given them.
        self.sockets = sockets

    def watch_files(self, paths: Iterable[str]) -> None:
        """Add files or glob patterns to the monitor's watch list (relative to the cwd)."""
        self._send(Watch(tuple(os.path.abspath(os.fspath(p)) for p in paths)))

    def trigger_reload(self) -> None:
        """Ask for a fresh worker now, whatever the files say."""
        self._send(ReloadAsked())

    def graceful_shutdown(self) -> None:
        """Ask the monitor to stop this worker and exit."""
        self._send(ShutdownAsked())

    def notify_ready(self) -> None:
        """Tell the monitor the app is answering; the restart is timed up to here.

        The modules imported so far are reported first, so that everything the app
        loaded is watched before anyone can see it answer."""
        if self._report_modules is not None:
            self._report_modules()
        self._send(Ready())

    def add_static_listener(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(path)`` (from a background thread) when a static file changes:
        the monitor does not restart the worker for those, it tells it instead."""
        self._static_listeners.append(callback)

    def _dispatch(self, message: Message) -> None:
        if isinstance(message, StaticChanged):
            for callback in list(self._static_listeners):
                callback(message.path)

    def _send(self, message: FromWorker) -> None:
        try:
            self._channel.send(message)
        except ChannelClosed:
            _monitor_gone()


_proxy: ReloaderProxy | None = None


def get_reloader() -> ReloaderProxy:
    """The proxy to the monitor; RuntimeError when this process is not a worker."""
    if _proxy is None:
        raise RuntimeError("this process is not running under a devreload monitor")
    return _proxy


def is_active() -> bool:
    return _proxy is not None


def watch_files(paths: Iterable[str]) -> None:
    """Watch these files too, when running under a monitor; otherwise do nothing."""
    if _proxy is not None:
        _proxy.watch_files(paths)


def trigger_reload() -> None:
    """Restart the app, when running under a monitor; otherwise do nothing."""
    if _proxy is not None:
        _proxy.trigger_reload()


def exit_quickly(code: int = 0) -> NoReturn:
    """End a worker that has finished serving without tearing every module down.

    The monitor starts the next worker only once this one is gone, and finalizing the
    interpreter of a large app takes a hundred milliseconds or more. What finalization
    would do that matters is still done: non-daemon threads are joined, atexit handlers
    run (logging's flush among them), and files still open for writing are flushed.
    """
    main = threading.main_thread()
    for thread in threading.enumerate():
        if thread is not main and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for obj in gc.get_objects():
        if isinstance(obj, io.IOBase) and not obj.closed:
            try:
                if obj.writable():
                    obj.flush()
            except (OSError, ValueError):
                pass
    os._exit(code)


def _monitor_gone() -> NoReturn:
    """The monitor died: take the whole process group down so nothing outlives it."""
    os.killpg(os.getpgrp(), signal.SIGKILL)
    os._exit(1)  # pragma: no cover - the signal has already ended us


def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    roots.update(site.getsitepackages())
    roots.add(site.getusersitepackages())
    return tuple(os.path.realpath(r) + os.sep for r in roots if r)


class ModuleScanner:
    """Finds the source file of every module imported so far, including late imports."""

    def __init__(self) -> None:
        self.roots = _library_roots()
        self.seen: set[tuple[str, Any]] = set()

    def scan(self) -> tuple[list[str], list[str]]:
        """New user source files, and new library module names (for the template to preload)."""
        files: list[str] = []
        libraries: list[str] = []
        for name, module in list(sys.modules.items()):
            key = (name, getattr(module, "__file__", None))
            if key in self.seen:
                continue
            self.seen.add(key)
            if name == "devreload" or name.startswith("devreload."):
                continue
            path = _source_of(module)
            if path is None:
                if _is_builtin(module):
                    libraries.append(name)
            elif os.path.realpath(path).startswith(self.roots):
                if name != "__main__":
                    libraries.append(name)
            else:
                files.append(path)
        return files, libraries


def _is_builtin(module: Any) -> bool:
    spec = getattr(module, "__spec__", None)
    return spec is not None and spec.origin in ("built-in", "frozen")


def _source_of(module: Any) -> str | None:
    path = getattr(module, "__file__", None)
    if not isinstance(path, str):
        return None
    if path.endswith((".pyc", ".pyo")):
        try:
            path = importlib.util.source_from_cache(path)
        except ValueError:
            return None
    path = os.path.abspath(path)
    return path if os.path.isfile(path) else None


def traceback_files(exc: BaseException) -> list[str]:
    """Files named in a traceback (and a SyntaxError's file), to watch until they are fixed."""
    files = [frame.filename for frame in traceback.extract_tb(exc.__traceback__)]
    if isinstance(exc, SyntaxError) and exc.filename:
        files.append(exc.filename)
    return [os.path.abspath(f) for f in files if os.path.isfile(f)]


class _Worker:
    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.scanner = ModuleScanner()
        self._state: tuple[int, int] = (0, 0)
        self._lock = threading.Lock()

    def report_modules(self) -> None:
        """Called by the scanning thread, and by the app's thread when it is ready."""
        with self._lock:
            state = (len(sys.modules), id(sys.modules.get("__main__")))
            if state == self._state:
                return
            self._state = state
            files, libraries = self.scanner.scan()
            if files or libraries:
                self.channel.send(Modules(tuple(files), tuple(libraries)))

    def watch_modules(self) -> None:
        while True:
            threading.Event().wait(SCAN_INTERVAL)
            try:
                self.report_modules()
            except ChannelClosed:
                _monitor_gone()

    def watch_monitor(self, proxy: ReloaderProxy) -> None:
        try:
            while True:
                proxy._dispatch(self.channel.recv())
        except ChannelClosed:
            _monitor_gone()


def run(channel_fd: int, socket_fds: list[int]) -> NoReturn:
    """A worker's life: receive the spec, run the entry point, report what it imported."""
    global _proxy
    channel = Channel.from_fd(channel_fd)
    spec = channel.recv()
    if not isinstance(spec, Spec):
        raise RuntimeError(f"a worker expects its spec first, not {spec!r}")
    sys.path[:] = spec.sys_path
    sys.argv[:] = spec.argv
    sockets = [socket.socket(fileno=fd) for fd in socket_fds]
    worker = _Worker(channel)
    _proxy = ReloaderProxy(channel, sockets, worker.report_modules)
    threading.Thread(target=worker.watch_monitor, args=(_proxy,), name="devreload-monitor",
                     daemon=True).start()
    threading.Thread(target=worker.watch_modules, name="devreload-modules", daemon=True).start()
    code: Any = 0
    try:
        target = _resolve(spec.worker_path)
        if not spec.announce_ready:
            _proxy.notify_ready()
        target(*spec.args, **spec.kwargs)
    except SystemExit as exc:
        code = exc.code
    except KeyboardInterrupt:
        code = 130
    except BaseException as exc:
        code = 1
        _report_failure(exc)
    try:
        worker.report_modules()
    except ChannelClosed:
        pass
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(code)


def _report_failure(exc: BaseException) -> None:
    """Print the failure (one line for a user error), and tell the monitor what and where."""
    if isinstance(exc, DevreloadError):
        cause = exc.__cause__
        text = f"devreload: {exc}\n"
        if cause is not None and not isinstance(cause, DevreloadError):
            text = compact_traceback(cause) + text
    else:
        text = compact_traceback(exc)
    sys.stderr.write(text)
    if _proxy is not None:
        _proxy.watch_files(traceback_files(exc))
        _proxy._send(Failed(text))


def _user_frames(exc: BaseException) -> tuple[list[traceback.FrameSummary], list[Any]]:
    frames = list(traceback.extract_tb(exc.__traceback__))
    hidden = _PACKAGE_DIR, "<frozen ", *_library_roots()
    shown = [f for f in frames if not os.path.realpath(f.filename).startswith(hidden)
             and not f.filename.startswith("<frozen ")]
    return frames, shown


def where_raised(exc: BaseException) -> str:
    """``file:line in function`` of the innermost frame of the user's own code."""
    frames, shown = _user_frames(exc)
    frame = (shown or frames or [None])[-1]
    if frame is None:
        return "?"
    return f"{display_path(frame.filename)}:{frame.lineno} in {frame.name}"


def compact_traceback(exc: BaseException) -> str:
    """The user's own frames, plus the innermost one: the frames of devreload, runpy,
    the standard library and installed packages say nothing about the user's bug."""
    frames, shown = _user_frames(exc)
    if frames and (not shown or shown[-1] is not frames[-1]):
        shown.append(frames[-1])
    head = "Traceback (most recent call last):\n" if shown else ""
    body = "".join(traceback.format_list(shown))
    return head + body + "".join(traceback.format_exception_only(type(exc), exc))


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _resolve(path: str | Callable[..., Any]) -> Callable[..., Any]:
    if callable(path):
        return path
    target: Callable[..., Any] = import_string(path)
    return target


def run_program(kind: str, target: str) -> None:
    """Run a script or ``-m`` module as ``__main__``, the way the interpreter would."""
    if kind == "module":
        sys.path[0] = os.getcwd()
        runpy.run_module(target, run_name="__main__", alter_sys=True)
    else:
        sys.path[0] = os.path.dirname(os.path.abspath(target))
        runpy.run_path(target, run_name="__main__")


def main() -> NoReturn:
    """Entry of a spawned worker: its descriptors come in the environment."""
    channel_fd, *socket_fds = (int(fd) for fd in os.environ.pop(FDS_ENV).split(","))
    run(channel_fd, socket_fds)
