"""A worker's life, from its spec to its exit: the entry point the monitor starts, the
reports of what the app imported and read, and the failure report."""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import runpy
import signal
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any, NoReturn

from devreload import platforms, processes
from devreload.errors import DevreloadError
from devreload.imports import import_string
from devreload.wire.channel import Channel, ChannelClosed
from devreload.wire.contract import FDS_ENV
from devreload.wire.messages import (
    Failed,
    Modules,
    Preload,
    Released,
    SharedSockets,
    Spec,
    Stop,
)
from devreload.worker import preload
from devreload.worker.bytecode import DeferredWrites
from devreload.worker.changeover import Changeover
from devreload.worker.modules import ModuleScanner, library_roots, template_scanner
from devreload.worker.preload import ImportObserver
from devreload.worker.proxy import ReloaderProxy, activate
from devreload.worker.reads import ReadFiles
from devreload.worker.stopping import Stopping
from devreload.worker.tracebacks import (
    PACKAGE_DIR,
    compact_traceback,
    failure_details,
    traceback_files,
)

SCAN_INTERVAL = 0.25
#: When the first scan comes in a server's worker: an app that starts sooner reports its
#: modules as it becomes ready, and a scan of thousands of modules beside its start takes
#: the GIL from it. (A program that does not say when it is ready is scanned from the
#: start: its imports come at any time.)
FIRST_SCAN_OF_SERVER = 1.0
#: The longest the app waits for the monitor to take a report of a file become its own.
HEARD_TIMEOUT = 1.0


class _Worker:
    def __init__(self, channel: Channel, scanner: ModuleScanner | None,
                 imports: ImportObserver, files: ReadFiles, bytecode: DeferredWrites | None,
                 stopping: Stopping) -> None:
        self.channel = channel
        #: None in a stand-in: the worker that replaces it imports the app anew and reports
        #: its modules, with what it saw each library imported by.
        self.scanner = scanner
        self.stopping = stopping
        self.imports = imports
        self.files = files
        self.bytecode = bytecode
        self._state: tuple[int, int] = (0, 0)
        self._lock = threading.RLock()
        #: Set by the channel's reader when the monitor says Heard.
        self.heard = threading.Event()
        #: Set once the app's first response has been sent: the held bytecode is written then.
        self.answered = threading.Event()

    def report_files(self) -> None:
        """At once, from the app's thread, before its write, removal or rename happens: a
        file it read is now its own (see ReadFiles). The monitor answers once it knows."""
        with self._lock:
            self.heard.clear()
            try:
                self.channel.send(self.files.take(answer=True))
            except ChannelClosed:
                return
            self.heard.wait(HEARD_TIMEOUT)

    def report_modules(self) -> None:
        """Called by the scanning thread, and by the app's thread when it is ready."""
        with self._lock:
            if self.files.changed():
                self.channel.send(self.files.take())
            state = (len(sys.modules), id(sys.modules.get("__main__")))
            if state == self._state or self.scanner is None:
                return
            self._state = state
            files, libraries = self.scanner.scan()
            preloadable = tuple(n for n in libraries if self.imports.preloadable(n))
            refused = tuple((n, self.imports.refusal(n)) for n in libraries
                            if not self.imports.preloadable(n) and n not in self.imports.warm)
            if files or libraries:
                warm = tuple(n for n in self.imports.warm if n in sys.modules)
                self.channel.send(Modules(tuple(files), preloadable, refused, warm))

    def on_ready(self) -> None:
        """A server answers: what the app reads from now on is data, unless a loader reads;
        the bytecode its start compiled is written after its first response."""
        self.files.started()
        self.report_modules()
        if self.bytecode is not None:
            self.bytecode.flush(after=self.answered)

    def watch_modules(self, interval: float) -> None:
        while True:
            threading.Event().wait(interval)
            interval = SCAN_INTERVAL
            try:
                self.report_modules()
            except ChannelClosed:
                processes.end_own_tree()

    def watch_monitor(self, proxy: ReloaderProxy) -> None:
        try:
            while True:
                message, fds = self.channel.recv_with_fds()
                if isinstance(message, Stop):
                    self.stopping.ask()
                else:
                    proxy._dispatch(message, fds)
        except ChannelClosed:
            processes.end_own_tree()


def run(channel_fd: int, socket_fds: list[int],
        entry: Callable[[], object] | None = None) -> NoReturn:
    """A worker's life: receive the spec, run the entry point, report what it imported.
    ``entry``: what a stand-in (the monitor's own fork, its app imported) runs instead."""
    scanner = template_scanner() if entry is None else None
    # Only this process holds the listening sockets and the channel: nothing it starts.
    for fd in (channel_fd, *socket_fds):
        os.set_inheritable(fd, False)
    if platforms.current().adopts_orphans:
        processes.prctl(processes.PR_SET_CHILD_SUBREAPER, 1)
    os.environ[processes.WORKER_MARK] = str(os.getpid())
    channel = Channel.from_fd(channel_fd)
    sockets = [socket.socket(fileno=fd) for fd in socket_fds]
    spec = _await_spec(channel, sockets)
    if spec.environ is not None:
        os.environ.clear()
        os.environ.update(spec.environ, **{processes.WORKER_MARK: str(os.getpid())})
    # Stopped like Ctrl-C stops a program (a server replaces this with its own stop).
    changeover = Changeover(spec.gated)
    stopping = Stopping(lambda: changeover.released_at is not None)
    stopping.install()
    if sys.platform == "win32":
        # The monitor's console break is for what the worker started; the worker itself
        # is stopped over its channel.
        signal.signal(signal.SIGBREAK, signal.SIG_IGN)
    sys.path[:] = spec.sys_path
    sys.argv[:] = spec.argv
    imports = preload.observe(library_roots(), PACKAGE_DIR)
    files = ReadFiles(os.getcwd(), (*library_roots(), sys.prefix, sys.base_prefix))
    files.on_exec = imports.executing
    sys.addaudithook(files.audit_hook())
    if entry is not None:
        preload.end_prefix("the app was imported before this worker was forked")
    for name in spec.warm:
        with contextlib.suppress(ImportError):  # uninstalled since: the app will say
            importlib.import_module(name)
    # A server says when it answers: its start writes no bytecode until then (a stand-in
    # writes what the monitor's start compiled, held since ``import devreload``).
    worker = _Worker(channel, scanner, imports, files,
                     DeferredWrites() if spec.announce_ready else None, stopping)
    files.on_owned = worker.report_files
    proxy = ReloaderProxy(channel, sockets, worker.on_ready if spec.announce_ready
                          else worker.report_modules, changeover, worker.heard, worker.answered)
    activate(proxy)
    threading.Thread(target=worker.watch_monitor, args=(proxy,), name="devreload-monitor",
                     daemon=True).start()
    first_scan = FIRST_SCAN_OF_SERVER if spec.announce_ready else SCAN_INTERVAL
    threading.Thread(target=worker.watch_modules, args=(first_scan,), name="devreload-modules",
                     daemon=True).start()
    code: Any = 0
    try:
        entry = entry or _entry_point(spec)
        if not spec.announce_ready:
            proxy.notify_ready()
        entry()
    except SystemExit as exc:
        code = exc.code
    except KeyboardInterrupt:
        code = 130
    except BaseException as exc:
        code = 1
        _report_failure(proxy, exc, spec.quiet_failure)
    # The app has stopped serving (its listeners are closed, its requests drained): the
    # next worker may start while this one exits the normal way, with every finalizer
    # (files closed with their trailers, temporary files removed), in its own time.
    proxy.changeover.wait_to_leave()
    with contextlib.suppress(ChannelClosed):
        worker.report_modules()
        if proxy.changeover.release():
            channel.send(Released())
    sys.exit(code)


def _await_spec(channel: Channel, sockets: list[socket.socket]) -> Spec:
    """What comes before the spec: a spare worker, spawned ahead, imports the libraries
    it is told to while it waits; on Windows its listening sockets come as shares. A spare
    whose line closes before its spec was not needed."""
    while True:
        try:
            message = channel.recv()
        except ChannelClosed:
            os._exit(0)
        if isinstance(message, Spec):
            return message
        if isinstance(message, Preload):
            for name in message.modules:
                with contextlib.suppress(Exception):  # it fails in the app, visibly
                    importlib.import_module(name)
        elif isinstance(message, SharedSockets) and sys.platform == "win32":
            sockets.extend(socket.fromshare(share) for share in message.shares)
        else:
            raise RuntimeError(f"a worker expects its spec first, not {message!r}")


def _report_failure(proxy: ReloaderProxy, exc: BaseException, quiet: bool = False) -> None:
    """Print the failure (one line for a user error), and tell the monitor what and where."""
    if isinstance(exc, DevreloadError):
        cause = exc.__cause__
        text = f"devreload: {exc}\n"
        if cause is not None and not isinstance(cause, DevreloadError):
            text = compact_traceback(cause) + text
    else:
        text = compact_traceback(exc)
    # The monitor first: with stderr full or closed, the fix must still be noticed.
    proxy.watch_files(traceback_files(exc))
    proxy._send(Failed(text, *failure_details(exc)))
    if not quiet and sys.stderr is not None:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write(text)
            sys.stderr.flush()


def _entry_point(spec: Spec) -> Callable[[], object]:
    """What the spec says to run, as a call."""
    target = _resolve(spec.worker_path)
    if not getattr(target, "__module__", "").startswith("devreload."):
        # devreload's own entry points end the prefix themselves, when they call the app.
        preload.end_prefix(f"imported after {getattr(target, '__qualname__', target)}() ran")
    return functools.partial(target, *spec.args, **spec.kwargs)


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
