"""The worker side: what runs inside the process that hosts the user's code.

The one process-global (the proxy to the monitor) sits behind ``get_reloader()`` and
``is_active()``; the module-level ``watch_files`` and ``trigger_reload`` do nothing when
no monitor is there, so applications may call them unconditionally.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import runpy
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from types import FrameType
from typing import Any, NoReturn

from devreload import preload, processes
from devreload.channel import (
    Channel,
    ChannelClosed,
)
from devreload.errors import DevreloadError
from devreload.handoff import ConnectionHandoff
from devreload.imports import import_string
from devreload.messages import (
    Connections,
    ConnectionsTaken,
    Failed,
    Files,
    FromWorker,
    Go,
    Leave,
    Message,
    Milestone,
    Modules,
    Ready,
    Released,
    ReloadAsked,
    RestartPending,
    ShutdownAsked,
    Spec,
    StandDown,
    StaticChanged,
    Watch,
)
from devreload.modules import ModuleScanner, library_roots
from devreload.preload import ImportObserver
from devreload.reads import ReadFiles
from devreload.tracebacks import _PACKAGE_DIR, compact_traceback, failure_details, traceback_files

#: The longest a stopped server waits for the next worker to serve before it exits.
LEAVE_WAIT = 0.5
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
        self._restart_pending = threading.Event()
        #: Listening sockets the monitor bound and handed over, in the order it was given them.
        self.sockets = sockets
        #: Keep-alive connections between this worker and the ones before and after it.
        self.connections = ConnectionHandoff(channel)
        self._go = threading.Event()  # the previous worker has stopped accepting
        self._go.set()
        self._stand_down = False  # not needed after all: stop instead of accepting
        self._released: float | None = None  # when this one stopped accepting
        self._leave = threading.Event()  # the next worker serves: exit now

    def watch_files(self, paths: Iterable[str | os.PathLike[str]]) -> None:
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
        loaded is watched before anyone can see it answer. A worker started while the
        previous one still accepted waits here for its Go: no request after a change is
        answered by the code from before it. Told to stand down instead, it stops."""
        if self._report_modules is not None:
            self._report_modules()
        if not self._go.is_set():
            self.milestone("server started; waiting for the old worker to let go")
        self._go.wait()
        if self._stand_down:
            # The server's own SIGTERM handler runs before this returns: it stops at once.
            signal.raise_signal(signal.SIGTERM)
            return
        self._send(Ready())

    def milestone(self, phase: str) -> None:
        """Tell the monitor a step of this worker's start happened now, for its reload
        timeline (-v)."""
        self._send(Milestone(phase, time.time()))

    def notify_released(self) -> None:
        """Tell the monitor this worker no longer accepts (its requests may still be
        finishing): the next one may accept from now on."""
        if self._released is None:
            self._released = time.monotonic()
            self._send(Released())

    def wait_to_leave(self) -> None:
        """A server that stopped for a restart exits once the next worker serves (its
        exit would share the CPU with that worker's start), or after LEAVE_WAIT."""
        if self._released is not None:
            self._leave.wait(max(0.0, self._released + LEAVE_WAIT - time.monotonic()))

    def should_restart(self) -> bool:
        """True once a change is waiting (under a cooperative monitor): leave at the next
        safe point by exiting with ``EXIT_RELOAD`` (75)."""
        return self._restart_pending.is_set()

    def add_static_listener(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(path)`` (from a background thread) when a static file changes:
        the monitor does not restart the worker for those, it tells it instead."""
        self._static_listeners.append(callback)

    def _dispatch(self, message: Message, fds: Sequence[int] = ()) -> None:
        if isinstance(message, Connections):
            self.connections._arrived(message, fds)
            return
        for fd in fds:  # no other message carries any
            os.close(fd)
        if isinstance(message, ConnectionsTaken):
            self.connections._confirmed_one()
        elif isinstance(message, StaticChanged):
            for callback in list(self._static_listeners):
                callback(message.path)
        elif isinstance(message, RestartPending):
            self._restart_pending.set()
        elif isinstance(message, Go):
            self._go.set()
        elif isinstance(message, StandDown):
            self._stand_down = True
            self._go.set()
        elif isinstance(message, Leave):
            self._leave.set()

    def _send(self, message: FromWorker) -> None:
        try:
            self._channel.send(message)
        except ChannelClosed:
            processes.end_own_tree()


_proxy: ReloaderProxy | None = None


def get_reloader() -> ReloaderProxy:
    """The proxy to the monitor; RuntimeError when this process is not a worker."""
    if _proxy is None:
        raise RuntimeError("this process is not running under a devreload monitor")
    return _proxy


def handoff_for(sockets: Sequence[socket.socket]) -> ConnectionHandoff | None:
    """The hand-over of keep-alive connections, for a server listening on ``sockets``: only
    a worker serving the monitor's own sockets has a next worker to hand them to."""
    if _proxy is None or not sockets:
        return None
    if all(any(sock is held for held in _proxy.sockets) for sock in sockets):
        return _proxy.connections
    return None


def is_active() -> bool:
    return _proxy is not None


def watch_files(paths: Iterable[str | os.PathLike[str]]) -> None:
    """Watch these files too, when running under a monitor; otherwise do nothing."""
    if _proxy is not None:
        _proxy.watch_files(paths)


def milestone(phase: str) -> None:
    """Tell the monitor a step of this worker's start happened now, for its reload
    timeline (-v); nothing outside a monitor."""
    if _proxy is not None:
        _proxy.milestone(phase)


def trigger_reload() -> None:
    """Restart the app, when running under a monitor; otherwise do nothing."""
    if _proxy is not None:
        _proxy.trigger_reload()


def should_restart() -> bool:
    """Whether the monitor waits for this worker to leave (a cooperative restart is
    pending); always False when no monitor runs."""
    return _proxy is not None and _proxy.should_restart()


#: The template's scan of what it has imported: a worker forked from it scans only what
#: it imports itself (all the template has are libraries the monitor knows already).
_scanner: ModuleScanner | None = None


def scan_ahead() -> None:
    """In the worker template, after each preload: take the modules it has as seen."""
    global _scanner
    if _scanner is None:
        _scanner = ModuleScanner()
    _scanner.scan()


class _Worker:
    def __init__(self, channel: Channel, imports: ImportObserver, files: ReadFiles) -> None:
        self.channel = channel
        self.imports = imports
        self.files = files
        self.scanner = _scanner or ModuleScanner()
        self._state: tuple[int, int] = (0, 0)
        self._lock = threading.Lock()

    def report_modules(self) -> None:
        """Called by the scanning thread, and by the app's thread when it is ready."""
        with self._lock:
            if self.files.changed():
                self.channel.send(Files(*self.files.take()))
            state = (len(sys.modules), id(sys.modules.get("__main__")))
            if state == self._state:
                return
            self._state = state
            files, libraries = self.scanner.scan()
            preloadable = tuple(n for n in libraries if self.imports.preloadable(n))
            refused = tuple((n, self.imports.refusal(n)) for n in libraries
                            if not self.imports.preloadable(n))
            if files or libraries:
                warm = tuple(n for n in self.imports.warm if n in sys.modules)
                self.channel.send(Modules(tuple(files), preloadable, refused, warm))

    def watch_modules(self) -> None:
        while True:
            threading.Event().wait(SCAN_INTERVAL)
            try:
                self.report_modules()
            except ChannelClosed:
                processes.end_own_tree()

    def watch_monitor(self, proxy: ReloaderProxy) -> None:
        try:
            while True:
                proxy._dispatch(*self.channel.recv_with_fds())
        except ChannelClosed:
            processes.end_own_tree()


def run(channel_fd: int, socket_fds: list[int]) -> NoReturn:
    """A worker's life: receive the spec, run the entry point, report what it imported."""
    global _proxy
    # Only this process holds the listening sockets and the channel: nothing it starts.
    for fd in (channel_fd, *socket_fds):
        os.set_inheritable(fd, False)
    processes.prctl(processes.PR_SET_CHILD_SUBREAPER, 1)
    os.environ[processes.WORKER_MARK] = str(os.getpid())
    channel = Channel.from_fd(channel_fd)
    spec = channel.recv()
    if not isinstance(spec, Spec):
        raise RuntimeError(f"a worker expects its spec first, not {spec!r}")
    # Stopped like Ctrl-C stops a program: finally blocks, atexit handlers and buffered
    # writes run (a server replaces this with its own stop).
    signal.signal(signal.SIGTERM, _leave)
    sys.path[:] = spec.sys_path
    sys.argv[:] = spec.argv
    sockets = [socket.socket(fileno=fd) for fd in socket_fds]
    imports = preload.observe(library_roots(), _PACKAGE_DIR)
    files = ReadFiles(os.getcwd(), (*library_roots(), sys.prefix, sys.base_prefix))
    sys.addaudithook(files.hook)
    for name in spec.warm:
        with contextlib.suppress(ImportError):  # uninstalled since: the app will say
            importlib.import_module(name)
    worker = _Worker(channel, imports, files)
    _proxy = ReloaderProxy(channel, sockets, worker.report_modules)
    if spec.hold:
        _proxy._go.clear()
    threading.Thread(target=worker.watch_monitor, args=(_proxy,), name="devreload-monitor",
                     daemon=True).start()
    threading.Thread(target=worker.watch_modules, name="devreload-modules", daemon=True).start()
    code: Any = 0
    try:
        target = _resolve(spec.worker_path)
        if not getattr(target, "__module__", "").startswith("devreload."):
            # devreload's own entry points end the prefix themselves, when they call the app.
            preload.end_prefix(f"imported after {getattr(target, '__qualname__', target)}() ran")
        if not spec.announce_ready:
            _proxy.notify_ready()
        target(*spec.args, **spec.kwargs)
    except SystemExit as exc:
        code = exc.code
    except KeyboardInterrupt:
        code = 130
    except BaseException as exc:
        code = 1
        _report_failure(exc, spec.quiet_failure)
    # The app has stopped serving (its listeners are closed, its requests drained): the
    # next worker may start while this one exits the normal way, with every finalizer
    # (files closed with their trailers, temporary files removed), in its own time.
    _proxy.wait_to_leave()
    with contextlib.suppress(ChannelClosed):
        worker.report_modules()
        if _proxy._released is None:
            channel.send(Released())
    sys.exit(code)


def _leave(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _report_failure(exc: BaseException, quiet: bool = False) -> None:
    """Print the failure (one line for a user error), and tell the monitor what and where."""
    if isinstance(exc, DevreloadError):
        cause = exc.__cause__
        text = f"devreload: {exc}\n"
        if cause is not None and not isinstance(cause, DevreloadError):
            text = compact_traceback(cause) + text
    else:
        text = compact_traceback(exc)
    if _proxy is not None:
        # The monitor first: with stderr full or closed, the fix must still be noticed.
        _proxy.watch_files(traceback_files(exc))
        _proxy._send(Failed(text, *failure_details(exc)))
    if not quiet and sys.stderr is not None:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write(text)
            sys.stderr.flush()




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
