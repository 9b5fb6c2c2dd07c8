"""Run a WSGI app under waitress or an ASGI app under uvicorn, on sockets bound beforehand.

The sockets usually belong to the monitor, which keeps them open across restarts. A worker
told to stop (SIGTERM, or SIGINT when serving in one process) closes its copy of the
listening sockets at once, so every new connection waits in the backlog for the next
worker and none is answered by the old code, then drains its open requests within a bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import logging
import os
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
import webbrowser
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import FrameType
from typing import Any

from . import sockets as socks
from .errors import AppImportError, DevreloadError, ServerOptionError
from .middleware import LiveReload, close_streams, install_waitress_events, open_streams

logger = logging.getLogger("devreload")

SERVERS = ("auto", "waitress", "uvicorn")

#: How long a stopping worker waits for requests in progress, unless told otherwise.
DEFAULT_GRACEFUL_TIMEOUT = 1.0
#: A connection accepted just before the stop but with no request yet gets this long to send one.
FRESH_CONNECTION_GRACE = 0.2

#: Keys devreload sets itself: the sockets decide where to listen, the monitor does reloading.
_WAITRESS_RESERVED = frozenset({"host", "port", "listen", "unix_socket", "sockets", "ipv4", "ipv6"})
_UVICORN_RESERVED = frozenset(
    {
        "app",
        "host",
        "port",
        "uds",
        "fd",
        "reload",
        "reload_dirs",
        "reload_delay",
        "reload_includes",
        "reload_excludes",
        "workers",
        "callback_notify",
    }
)

WAITRESS_DEFAULTS: dict[str, Any] = {"threads": 8}
UVICORN_DEFAULTS: dict[str, Any] = {"lifespan": "on"}

ReadyCallback = Callable[[], None]


# --------------------------------------------------------------------------- apps


def is_asgi(app: object) -> bool:
    """True for an ASGI 3 app: a coroutine function (or an object whose ``__call__`` is one)
    taking scope, receive and send."""
    if inspect.isclass(app):
        return False
    call: object = app if inspect.iscoroutinefunction(app) else type(app).__call__
    if not inspect.iscoroutinefunction(call) or not callable(app):
        return False
    try:
        inspect.signature(app).bind(None, None, None)
    except TypeError:
        return False
    except ValueError:
        return True
    return True


def load_app(spec: str) -> Any:
    """Import ``"pkg.module:app"`` (an attribute path) or call ``"pkg.module:factory()"``."""
    module_name, sep, attr = spec.strip().partition(":")
    call = attr.endswith("()")
    if call:
        attr = attr[:-2]
    if not sep or not module_name or not attr:
        raise AppImportError(
            f"bad app import string {spec!r}: expected 'pkg.module:app' or 'pkg.module:factory()'"
        )
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name + ".").startswith(exc.name + "."):
            raise AppImportError(f"cannot import {spec!r}: no module named {exc.name!r}") from None
        raise
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AppImportError(
                f"cannot import {spec!r}: module {module_name!r} has no attribute {attr!r}"
            ) from None
    return obj() if call else obj


def choose_server(app: object, server: str = "auto") -> str:
    """``waitress`` or ``uvicorn``: the one asked for, or the one that fits the app."""
    if server not in SERVERS:
        raise ServerOptionError("devreload", "server", f"must be one of {', '.join(SERVERS)}")
    if server == "auto":
        return "uvicorn" if is_asgi(app) else "waitress"
    return server


# --------------------------------------------------------------------------- options


def server_options(server: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The chosen server's keyword arguments: devreload's dev defaults, then ``options``
    (ini strings converted to the types the server wants). Unknown keys raise."""
    if server == "waitress":
        return {**WAITRESS_DEFAULTS, **_waitress_options(options)}
    if server == "uvicorn":
        return {**UVICORN_DEFAULTS, **_uvicorn_options(options)}
    raise ServerOptionError("devreload", "server", "must be waitress or uvicorn")


def _waitress_options(options: Mapping[str, Any]) -> dict[str, Any]:
    from waitress.adjustments import Adjustments

    converters: Mapping[str, Callable[[Any], Any]] = Adjustments._param_map
    out: dict[str, Any] = {}
    for key, value in options.items():
        if key in _WAITRESS_RESERVED:
            raise ServerOptionError("waitress", key, "is set by devreload; use listen instead")
        if key not in converters:
            raise ServerOptionError("waitress", key, "unknown option")
        try:
            out[key] = converters[key](value)
        except (TypeError, ValueError) as exc:
            raise ServerOptionError("waitress", key, f"bad value {value!r} ({exc})") from None
    return out


def _uvicorn_options(options: Mapping[str, Any]) -> dict[str, Any]:
    import uvicorn

    parameters = inspect.signature(uvicorn.Config.__init__).parameters
    out: dict[str, Any] = {}
    for key, value in options.items():
        if key in _UVICORN_RESERVED:
            raise ServerOptionError("uvicorn", key, "is set by devreload; use listen instead")
        if key not in parameters or key == "self":
            raise ServerOptionError("uvicorn", key, "unknown option")
        out[key] = _convert(key, value, str(parameters[key].annotation))
    return out


def _convert(key: str, value: Any, annotation: str) -> Any:
    """Turn an ini string into the type a uvicorn.Config parameter is annotated with."""
    if not isinstance(value, str):
        return value
    kinds = {part.strip() for part in annotation.split("|")}
    text = value.strip()
    try:
        if "None" in kinds and text.lower() in ("", "none"):
            return None
        if "bool" in kinds:
            return asbool(text)
        if "int" in kinds:
            return int(text)
        if "float" in kinds:
            return float(text)
    except ValueError as exc:
        raise ServerOptionError("uvicorn", key, f"bad value {value!r} ({exc})") from None
    return value


def asbool(text: str) -> bool:
    """An ini's idea of true and false."""
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on", "y", "t"):
        return True
    if lowered in ("0", "false", "no", "off", "n", "f", ""):
        return False
    raise ValueError(f"{text!r} is not a boolean")


# --------------------------------------------------------------------------- running


def serve_on_sockets(
    app: object,
    sockets: Sequence[socket.socket],
    server: str = "auto",
    options: Mapping[str, Any] | None = None,
    *,
    on_ready: ReadyCallback | None = None,
    graceful_timeout: float = DEFAULT_GRACEFUL_TIMEOUT,
) -> None:
    """Serve ``app`` on already listening ``sockets`` until SIGTERM or SIGINT.

    ``on_ready`` runs once the server accepts connections (after ASGI lifespan startup).
    On the signal the listening sockets are closed first; requests in progress then get
    ``graceful_timeout`` seconds to finish.
    """
    kind = choose_server(app, server)
    kwargs = server_options(kind, options or {})
    open_streams()
    if kind == "waitress":
        if is_asgi(app):
            raise ServerOptionError("waitress", "server", "cannot serve an ASGI app; use uvicorn")
        _run_waitress(app, sockets, kwargs, on_ready, graceful_timeout)
    else:
        _run_uvicorn(app, sockets, kwargs, on_ready, graceful_timeout)


@contextlib.contextmanager
def _stop_signals(handler: Callable[[int, FrameType | None], None]) -> Iterator[None]:
    """Install ``handler`` for SIGTERM and SIGINT (main thread only), restore them after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _run_waitress(
    app: object,
    sockets: Sequence[socket.socket],
    options: Mapping[str, Any],
    on_ready: ReadyCallback | None,
    graceful_timeout: float,
) -> None:
    import waitress
    from waitress import wasyncore
    from waitress.channel import HTTPChannel
    from waitress.server import BaseWSGIServer

    socket_map: dict[int, Any] = {}
    server = waitress.create_server(app, map=socket_map, sockets=list(sockets), **options)
    install_waitress_events(server)
    listeners = [obj for obj in socket_map.values() if isinstance(obj, BaseWSGIServer)]
    adj = listeners[0].adj
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        # Runs before the loop looks at what poll() returned: no accept in this round.
        for listener in listeners:
            listener.accepting = False
        stop.set()
        listeners[0].pull_trigger()

    with _stop_signals(request_stop):
        if on_ready is not None:
            on_ready()
        while not stop.is_set():
            wasyncore.loop(
                timeout=adj.asyncore_loop_timeout,
                map=socket_map,
                use_poll=adj.asyncore_use_poll,
                count=1,
            )
        close_streams()
        for listener in listeners:
            listener.del_channel()
            listener.socket.close()
        stopped = time.monotonic()
        deadline = stopped + graceful_timeout
        while time.monotonic() < deadline:
            channels = [obj for obj in socket_map.values() if isinstance(obj, HTTPChannel)]
            pending = False
            for channel in channels:
                busy = channel.requests or channel.request is not None or channel.total_outbufs_len
                fresh = channel.last_activity == channel.creation_time
                if busy or (fresh and time.monotonic() < stopped + FRESH_CONNECTION_GRACE):
                    pending = True
                else:
                    channel.handle_close()
            if not pending:
                break
            wasyncore.loop(timeout=0.01, map=socket_map, use_poll=adj.asyncore_use_poll, count=1)
        server.task_dispatcher.shutdown(timeout=max(0.0, deadline - time.monotonic()))
        wasyncore.close_all(socket_map)


def _run_uvicorn(
    app: object,
    sockets: Sequence[socket.socket],
    options: Mapping[str, Any],
    on_ready: ReadyCallback | None,
    graceful_timeout: float,
) -> None:
    import uvicorn

    options = dict(options)
    bound = options.pop("timeout_graceful_shutdown", None)
    timeout = graceful_timeout if bound is None else float(bound)
    if logging.getLogger().handlers:
        # Logging is configured already (an ini's sections): let uvicorn's loggers use it.
        options.setdefault("log_config", None)

    class Server(uvicorn.Server):
        """uvicorn, but closing its listeners the moment it is told to stop, and draining
        within ``timeout`` without uvicorn's fixed pauses."""

        loop: asyncio.AbstractEventLoop | None = None
        wake: asyncio.Event | None = None

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            self.loop = asyncio.get_running_loop()
            self.wake = asyncio.Event()
            await super().startup(sockets=sockets)
            if self.started and not self.should_exit and on_ready is not None:
                on_ready()

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if self.should_exit and sig == signal.SIGINT:
                self.force_exit = True
            self.should_exit = True
            if self.loop is not None:
                self.loop.call_soon_threadsafe(self.stop_accepting)

        def stop_accepting(self) -> None:
            close_streams()
            # Stop reading the listeners without closing the asyncio servers yet: a
            # connection accepted a moment ago still gets its transport (closing first
            # makes asyncio drop it, a reset for the client).
            if self.loop is not None:
                for listener in getattr(self, "servers", []):
                    for sock in listener.sockets:
                        self.loop.remove_reader(sock.fileno())
            if self.wake is not None:
                self.wake.set()

        async def main_loop(self) -> None:
            counter = 0
            while not await self.on_tick(counter):
                assert self.wake is not None
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), 0.1)
                counter = (counter + 1) % 864000

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            self.stop_accepting()
            assert self.loop is not None
            for _ in range(5):  # let just-accepted connections reach connection_made
                await asyncio.sleep(0)
            began = self.loop.time()
            deadline = began + timeout
            state = self.server_state
            closing: set[Any] = set()
            while (state.connections or state.tasks) and not self.force_exit:
                now = self.loop.time()
                if now >= deadline:
                    for task in state.tasks:
                        task.cancel()
                    break
                for connection in list(state.connections):
                    # A connection accepted just before the stop whose request is still on
                    # its way gets a moment to send it; any other closes after its response.
                    fresh = getattr(connection, "cycle", None) is None
                    if connection not in closing and (
                        not fresh or now >= began + FRESH_CONNECTION_GRACE
                    ):
                        connection.shutdown()
                        closing.add(connection)
                await asyncio.sleep(0.01)
            for listener in self.servers:
                listener.close()
            for sock in sockets or []:
                sock.close()
            if not self.force_exit:
                await self.lifespan.shutdown()

    asgi_app: Any = app
    config = uvicorn.Config(asgi_app, **options)
    Server(config).run(sockets=list(sockets))


# --------------------------------------------------------------------------- serve()


def serve(
    app: object,
    reload: bool = False,
    host: str = socks.DEFAULT_HOST,
    port: int | str = socks.DEFAULT_PORT,
    *,
    listen: str | Sequence[str] | None = None,
    server: str = "auto",
    reload_interval: float = 0.05,
    shutdown_interval: float = 1.5,
    watch_files: Iterable[str] = (),
    ignore_files: Iterable[str] = (),
    browser: bool = False,
    show_errors: bool | None = None,
    live_reload: bool = True,
    static_files: Iterable[str] = (),
    **server_options: Any,
) -> None:
    """Serve a WSGI or ASGI app (an object, ``"pkg.mod:app"`` or ``"pkg.mod:factory()"``).

    With ``reload=True`` this process becomes the monitor: it binds the socket once and
    re-runs the current program (same argv, ``-m`` kept) in a worker, where this call
    serves on the inherited socket; every edit then restarts the worker.
    ``listen`` ("host:port", "[::1]:port", "unix:/path", several separated by spaces)
    replaces ``host``/``port``; ``browser=True`` opens the app in a web browser once it
    answers; ``show_errors`` shows tracebacks on the error page even on a public address
    (the default shows them on loopback only). With reload, open pages follow every
    restart unless ``live_reload=False``, and files matching ``static_files`` (say
    ``"static/*.css"``) are pushed to them without a restart. Other keyword arguments go
    to waitress or uvicorn.
    """
    from . import worker

    if worker.is_active():
        proxy = worker.get_reloader()
        if proxy.sockets:
            _serve_app(
                app,
                proxy.sockets,
                server,
                server_options,
                proxy.notify_ready,
                shutdown_interval,
                live_reload,
            )
            return
    addresses = socks.parse_listen(listen) if listen else [socks.make_address(host, port)]
    if reload and not worker.is_active():
        if not isinstance(app, str):
            choose_and_check(app, server, server_options)
        kind, target = _current_program()
        bound = socks.bind_all(addresses)
        log_serving(bound, browser)
        start_monitor(
            "devreload.worker.run_program",
            bound,
            worker_args=(kind, target),
            reload_interval=reload_interval,
            shutdown_interval=shutdown_interval,
            watch_files=watch_files,
            ignore_files=ignore_files,
            show_errors=show_errors,
            static_files=static_files,
        )
        return
    bound = socks.bind_all(addresses)
    log_serving(bound, browser)
    try:
        _serve_app(app, bound, server, server_options, None, shutdown_interval)
    finally:
        socks.close_all(bound)


def choose_and_check(app: object, server: str, options: Mapping[str, Any]) -> str:
    """Choose the server for ``app`` and check ``options`` against it, before any worker runs."""
    kind = choose_server(app, server)
    server_options(kind, options)
    return kind


def graceful_timeout_for(shutdown_interval: float) -> float:
    """The worker's own drain bound: well inside the monitor's SIGKILL deadline."""
    return max(0.1, shutdown_interval * 2 / 3)


def _serve_app(
    app: object,
    sockets: Sequence[socket.socket],
    server: str,
    options: Mapping[str, Any],
    on_ready: ReadyCallback | None,
    shutdown_interval: float,
    live_reload: bool = False,
) -> None:
    loaded: Any = load_app(app) if isinstance(app, str) else app
    if live_reload:
        loaded = LiveReload(loaded)
    serve_on_sockets(
        loaded,
        sockets,
        server,
        options,
        on_ready=on_ready,
        graceful_timeout=graceful_timeout_for(shutdown_interval),
    )


def _current_program() -> tuple[str, str]:
    """How this interpreter was started: ("module", name) for ``-m``, else ("path", script)."""
    main = sys.modules["__main__"]
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name != "__main__":
        name: str = spec.name
        return "module", name.removesuffix(".__main__")
    path = getattr(main, "__file__", None) or (sys.argv[0] if sys.argv else "")
    if not path or not os.path.isfile(path):
        raise DevreloadError(
            "serve(reload=True) re-runs the current program, but it is not a script or a "
            "-m module (an interactive session or -c?)"
        )
    return "path", os.path.abspath(path)


def log_serving(sockets: Sequence[socket.socket], browser: bool = False) -> None:
    """One line per listening socket, the first thing a user looks for; with ``browser``,
    open the first one in a web browser once the app answers."""
    from .reloader import default_logger

    log = default_logger()
    for sock in sockets:
        log.info("serving on %s", socks.describe(sock))
    if browser and sockets and sockets[0].family != socket.AF_UNIX:
        open_browser_when_ready(socks.describe(sockets[0]))


def open_browser_when_ready(url: str, deadline: float = 60.0) -> None:
    """Open ``url`` in a web browser, from a background thread, once the app answers it."""

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
        webbrowser.open(url)

    threading.Thread(target=wait_then_open, name="devreload-browser", daemon=True).start()


def start_monitor(
    worker_path: str,
    sockets: Sequence[socket.socket],
    *,
    worker_args: Sequence[Any] = (),
    worker_kwargs: Mapping[str, Any] | None = None,
    reload_interval: float = 0.05,
    shutdown_interval: float = 1.5,
    watch_files: Iterable[str] = (),
    ignore_files: Iterable[str] = (),
    show_errors: bool | None = None,
    static_files: Iterable[str] = (),
) -> None:
    """Become the monitor: run ``worker_path`` in a worker, restart it on every change.

    With ``sockets`` (bound here, once) the worker is ready when its server listens on
    them, and while the app is broken the monitor answers on them with the error; without,
    the worker binds by itself (another paste server) and is ready at once. Tracebacks are
    not shown on a public address unless ``show_errors`` is true. Raises ``SystemExit``
    with the monitor's exit code.
    """
    from .errorpage import ServingReloader, public
    from .reloader import default_logger

    log = default_logger()
    if show_errors is None:
        show_errors = not public(sockets)
        if not show_errors:
            log.warning(
                "the error page hides tracebacks on a public address; "
                "set show_errors = true to show them"
            )
    reloader = ServingReloader(
        worker_path,
        show_errors=show_errors,
        logger=log,
        reload_interval=reload_interval,
        shutdown_interval=shutdown_interval,
        worker_args=list(worker_args),
        worker_kwargs=dict(worker_kwargs or {}),
        ignore_files=list(ignore_files),
        watch_files=list(watch_files),
        sockets=list(sockets),
        worker_announces_ready=bool(sockets),
        static_files=list(static_files),
    )
    raise SystemExit(reloader.run())
