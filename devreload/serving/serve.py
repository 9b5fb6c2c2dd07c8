"""Serving an app, with the process boundary in plain sight.

- :func:`run_monitor` is the monitor side: bind the addresses once, say where the app
  answers, open the browser, and run the :class:`ServingReloader` until the end.
- :func:`serve_in_worker` is the worker side: wrap the app for live reload and serve it
  on the sockets the monitor handed over.
- :func:`serve_here` serves in this one process, without reload.

``serve()`` (and ``egg:devreload`` under pserve) run the same program in both processes,
so :func:`serve_app` is the one place that asks which side this is.
"""

from __future__ import annotations

import functools
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from devreload import sockets
from devreload.errors import DevreloadError
from devreload.imports import current_program
from devreload.log import Logger, default_logger
from devreload.servers.base import ReadyCallback
from devreload.servers.choice import check, choose, serve_on_sockets
from devreload.serving.apps import load_app, load_failure
from devreload.serving.options import ServeOptions
from devreload.web.frameworks import prepare
from devreload.web.kinds import is_asgi
from devreload.web.static import static_folders
from devreload.web.wsgi import LiveReload, first_response_told
from devreload.wire.contract import RUN_PROGRAM
from devreload.worker.bytecode import write_held
from devreload.worker.proxy import get_reloader, is_active, milestone

if TYPE_CHECKING:  # the monitor's classes: a worker, which imports this module, never runs them
    from devreload.filemon.base import FileMonitorFactory
    from devreload.monitor.events import Event
    from devreload.monitor.launch import Launcher
    from devreload.monitor.reloader import ServingReloader

#: How long ``--browser`` waits for the app to answer before giving up.
BROWSER_DEADLINE = 60.0
#: Where a ``serve()`` user shows tracebacks on a public address (other callers say theirs).
SERVE_SHOW_ERRORS = "pass show_errors=True to devreload.serve()"


def serve(
    app: object,
    reload: bool = False,
    host: str = sockets.DEFAULT_HOST,
    port: int | str = sockets.DEFAULT_PORT,
    *,
    listen: str | Sequence[str] | None = None,
    server: str = ServeOptions.server,
    reload_interval: float = ServeOptions.reload_interval,
    shutdown_interval: float = ServeOptions.shutdown_interval,
    drain_interval: float = ServeOptions.drain_interval,
    poll_interval: float = ServeOptions.poll_interval,
    watch_files: Iterable[str] = (),
    ignore_files: Iterable[str] = (),
    browser: bool = ServeOptions.browser,
    show_errors: bool | None = ServeOptions.show_errors,
    live_reload: bool = ServeOptions.live_reload,
    static_files: Iterable[str] = (),
    preload: bool = ServeOptions.preload,
    preload_exclude: Iterable[str] = (),
    allowed_hosts: Iterable[str] = (),
    monitor: str = ServeOptions.monitor,
    gitignore: bool = ServeOptions.gitignore,
    **server_options: Any,
) -> None:
    """Serve a WSGI or ASGI app (an object, ``"pkg.mod:app"`` or ``"pkg.mod:factory()"``).

    With ``reload=True`` this process becomes the monitor: it binds the socket once and
    re-runs the current program (same argv, ``-m`` kept) in a worker, where this call
    serves on the inherited socket; every edit then restarts the worker. The monitor
    ends by raising ``SystemExit`` with its exit code.
    ``listen`` ("host:port", "[::1]:port", "unix:/path", several separated by spaces)
    replaces ``host``/``port``; ``browser=True`` opens the app in a web browser once it
    answers; ``show_errors`` shows tracebacks on the error page even on a public address
    (the default shows them on loopback only). With reload, open pages follow every
    restart unless ``live_reload=False``, and files matching ``static_files`` (say
    ``"static/*.css"``) are pushed to them without a restart. ``preload=False`` (or
    ``preload_exclude``) keeps libraries out of the worker template. devreload's own pages
    (the error pages, ``/__devreload__/``) answer only localhost, ``*.localhost``, IP
    literals and the names in ``allowed_hosts`` (``".example.com"`` or ``"*.example.com"``
    for subdomains), against DNS rebinding. ``monitor`` names the file monitor (by
    default the best this machine has); ``gitignore=False`` lets watch globs match what
    ``.gitignore`` files exclude; ``poll_interval`` is how often a polling monitor looks
    at the most; ``drain_interval`` is how long an old worker may finish its requests
    once the next one serves. Other keyword arguments go to waitress or uvicorn.
    """
    addresses = sockets.parse_listen(listen) if listen else [sockets.make_address(host, port)]
    options = ServeOptions(
        addresses=tuple(addresses),
        reload=reload,
        reload_interval=reload_interval,
        shutdown_interval=shutdown_interval,
        drain_interval=drain_interval,
        poll_interval=poll_interval,
        watch_files=tuple(watch_files),
        ignore_files=tuple(ignore_files),
        static_files=tuple(static_files),
        live_reload=live_reload,
        show_errors=show_errors,
        browser=browser,
        preload=preload,
        preload_exclude=tuple(preload_exclude),
        allowed_hosts=tuple(allowed_hosts),
        monitor=monitor,
        gitignore=gitignore,
        server=server,
        server_options=server_options,
    )
    serve_app(app, options)


def serve_app(
    app: object, options: ServeOptions, *, show_errors_hint: str = SERVE_SHOW_ERRORS
) -> None:
    """Serve ``app`` in whichever process this is: the worker of a monitor that holds
    the sockets, a new monitor (``options.reload``), or a plain single process.
    ``show_errors_hint`` says where the caller's user sets ``show_errors``."""
    if is_active() and get_reloader().sockets:
        serve_in_worker(app, options)
    elif options.reload and not is_active():
        from devreload.monitor.ahead import RUN_ENTRY, start_ahead_for

        # This process becomes the monitor of workers that re-run the program: their
        # template starts now, while the monitor imports its own modules and binds.
        start_ahead_for((RUN_ENTRY,) if options.preload else ())
        if not isinstance(app, str):
            check(app, options.server, options.server_options, options.addresses)
        # The app is imported here already: the first worker may be this process's fork.
        first = None if isinstance(app, str) else functools.partial(serve_in_worker, app, options)
        raise SystemExit(run_monitor(options, RUN_PROGRAM, current_program(),
                                     show_errors_hint=show_errors_hint, first_worker=first))
    else:
        serve_here(app, options)


@dataclass
class InStack:
    """A served app that is one process of a stack (``devreload up``): its reloader joins
    the stack's loop, with the stack's file monitor, output and environment."""

    log: Logger
    events: queue.SimpleQueue[Event]
    monitor_factory: FileMonitorFactory
    argv: tuple[str, ...]
    environ: Mapping[str, str]
    launcher: Callable[[bool, Sequence[str]], Launcher]
    #: Takes the reloader and the sockets it holds (the stack closes them at its end).
    join: Callable[[ServingReloader, list[socket.socket]], None]


def run_monitor(
    options: ServeOptions,
    worker_path: str,
    worker_args: Sequence[Any] = (),
    *,
    hold_sockets: bool = True,
    worker_announces_ready: bool | None = None,
    before_reload: Callable[[], None] | None = None,
    show_errors_hint: str = SERVE_SHOW_ERRORS,
    in_stack: InStack | None = None,
    first_worker: Callable[[], object] | None = None,
) -> int:
    """The monitor side: run ``worker_path(*worker_args)`` in a worker and replace it on
    every change; the exit code. With ``hold_sockets`` the addresses are bound here, once,
    the worker is ready when its server listens on them, and while the app is broken the
    error page answers on them; without, the worker binds by itself (another server).
    ``worker_announces_ready`` (default: ``hold_sockets``) makes the monitor wait for the
    worker's Ready before it reports a restart done. ``before_reload`` runs in the monitor
    before each restart; ``show_errors_hint`` says where the user sets ``show_errors``.
    ``in_stack``: the reloader joins a stack's loop instead of running its own.
    ``first_worker`` serves the app this process has imported: the first worker may be
    this process's fork, running it (see :mod:`devreload.monitor.standin`)."""
    from devreload.filemon.choice import find_default_monitor_factory

    log = in_stack.log if in_stack else default_logger()
    # A bad DEVRELOAD_MONITOR is one line before anything is bound or announced.
    monitor_factory = (in_stack.monitor_factory if in_stack
                       else find_default_monitor_factory(log, options.monitor))
    bound = sockets.bind_all(options.addresses) if hold_sockets else []
    try:
        stand_in = None
        if first_worker is not None and bound and in_stack is None:
            # Forked before anything here starts a thread (the browser's, the monitor's).
            from devreload.monitor.standin import fork_stand_in

            stand_in = fork_stand_in(first_worker, bound, log, options.preload)
        from devreload.monitor.reloader import ServingReloader

        announce(bound, options.browser, log)
        show_errors = options.shows_errors(bound)
        if options.show_errors is None and not show_errors:
            log.warning("the error page hides tracebacks on a public address; to show "
                        "them, %s", show_errors_hint)
        settings = options.reload_settings(
            worker_args=tuple(worker_args),
            before_reload=before_reload,
            monitor_factory=monitor_factory,
            worker_announces_ready=(
                bool(bound) if worker_announces_ready is None else worker_announces_ready
            ),
            **({"argv": in_stack.argv, "environ": in_stack.environ} if in_stack else {}),
        )
        reloader = ServingReloader(
            worker_path, settings, logger=log, sockets=bound, show_errors=show_errors,
            allowed_hosts=options.allowed_hosts,
            launcher=in_stack.launcher(options.preload, options.preload_exclude)
            if in_stack else None,
            events=in_stack.events if in_stack else None, stand_in=stand_in)
        if in_stack is None:
            return reloader.run()
        in_stack.join(reloader, bound)
        bound = []
        return 0
    finally:
        sockets.close_all(bound)


def serve_in_worker(app: object, options: ServeOptions) -> None:
    """The worker side: serve on the monitor's sockets and tell it once the server listens."""
    proxy = get_reloader()
    _serve(app, proxy.sockets, options, live_reload=options.live_reload,
           on_ready=proxy.notify_ready, on_stop=proxy.notify_released)


def serve_here(app: object, options: ServeOptions) -> None:
    """Serve in this process, without reload, until SIGTERM or Ctrl-C."""
    bound = sockets.bind_all(options.addresses)
    try:
        announce(bound, options.browser)
        write_held()
        _serve(app, bound, options, live_reload=False)
    finally:
        sockets.close_all(bound)


def _serve(
    app: object,
    listening: Sequence[socket.socket],
    options: ServeOptions,
    *,
    live_reload: bool,
    on_ready: ReadyCallback | None = None,
    on_stop: ReadyCallback | None = None,
) -> None:
    loaded: Any = load_app(app) if isinstance(app, str) else app
    asgi = is_asgi(loaded)  # asked once: the app's wrappers keep its kind
    if live_reload and is_active():
        get_reloader().watch_static(static_folders(loaded))
    loaded = prepared(loaded, app if isinstance(app, str) else "the app",
                      options.shows_errors(listening), options.allowed_hosts, asgi)
    chosen = choose(asgi, options.server, options.server_options, listening)
    if live_reload:
        loaded = LiveReload(loaded, allowed_hosts=options.allowed_hosts)
    if on_ready is not None:
        loaded = first_response_told(loaded, asgi)
        milestone("app built")
    serve_on_sockets(
        loaded,
        listening,
        chosen,
        on_ready=on_ready,
        on_stop=on_stop,
        bounds=options.bounds(get_reloader().changeover.hurried
                              if on_ready is not None and is_active() else None),
    )


def prepared(app: Any, name: str, show_errors: bool, allowed_hosts: Sequence[str],
             asgi: bool) -> Any:
    """``app`` prepared for development (see ``prepare``); a failure there (Django's
    checks, its URLconf) raises an AppLoadError: one line, as for a failed import."""
    try:
        return prepare(app, show_errors, allowed_hosts, asgi=asgi)
    except DevreloadError:
        raise
    except Exception as exc:
        raise load_failure(f"preparing {name}", exc) from exc


def announce(bound: Sequence[socket.socket], browser: bool = False,
             log: Logger | None = None) -> None:
    """One line per listening socket, the first thing a user looks for; with ``browser``,
    open the first one in a web browser once the app answers."""
    log = log or default_logger()
    for sock in bound:
        log.info("serving on %s", sockets.describe(sock))
    if browser and bound and bound[0].family != sockets.UNIX:
        open_browser_when_ready(sockets.describe(bound[0]))


def open_browser_when_ready(url: str, deadline: float = BROWSER_DEADLINE) -> None:
    """Open ``url`` in a web browser, from a background thread, once the app answers it."""
    # Imported here: a monitor that opens no browser starts without them.
    import urllib.error
    import urllib.request
    import webbrowser

    def wait_then_open() -> None:
        give_up = time.monotonic() + deadline
        while time.monotonic() < give_up:
            try:
                with urllib.request.urlopen(url, timeout=deadline):
                    break
            except urllib.error.HTTPError:
                break
            except OSError:
                time.sleep(0.1)
        else:
            return
        try:
            opened = webbrowser.open(url)
        except (webbrowser.Error, OSError):
            opened = False
        if not opened:  # no display, no browser installed: the URL is what is left to say
            default_logger().warning("no web browser could be opened; open %s yourself", url)

    threading.Thread(target=wait_then_open, name="devreload-browser", daemon=True).start()

