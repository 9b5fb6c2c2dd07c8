"""Which server runs an app, and the checks of its options before any worker runs.

Backends (:mod:`devreload.servers.base`) are imported only when chosen, so a missing
server breaks nothing else. Adding a server is adding a module and its line in
``BACKENDS``.
"""

from __future__ import annotations

import importlib
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from devreload.errors import ServerOptionError
from devreload.servers.base import Backend, Bounds, ReadyCallback
from devreload.sockets import Address, mixes_unix_and_ip
from devreload.web.inflight import REQUESTS
from devreload.web.kinds import is_asgi
from devreload.web.livereload import open_streams
from devreload.worker import preload

#: Server name -> the module that runs it.
BACKENDS: dict[str, str] = {
    "waitress": "devreload.servers.waitress",
    "uvicorn": "devreload.servers.uvicorn",
}
#: Servers that listen either on unix sockets or on IP addresses, never both at once.
ONE_SOCKET_FAMILY = frozenset({"waitress"})
SERVERS = ("auto", *BACKENDS)


def backend(name: str) -> Backend:
    """The backend module called ``name``."""
    if name not in BACKENDS:
        raise ServerOptionError("devreload", "server", f"must be one of {', '.join(SERVERS)}")
    return cast(Backend, importlib.import_module(BACKENDS[name]))


def _name(asgi: bool, server: str) -> str:
    """The server asked for, or the one that fits the app (uvicorn for ASGI, else waitress)."""
    if server == "auto":
        return "uvicorn" if asgi else "waitress"
    backend(server)
    return server


def server_options(server: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The server's keyword arguments from ``options``; unknown keys or bad values raise
    ServerOptionError naming the key and the server."""
    return backend(server).convert_options(options)


@dataclass(frozen=True)
class Chosen:
    """The server for an app, with its options converted: checked once, then carried."""

    name: str
    #: Whether the app is ASGI (asked of it once, where it was loaded).
    asgi: bool
    #: The server's keyword arguments.
    options: dict[str, Any]


def choose(
    asgi: bool,
    server: str,
    options: Mapping[str, Any],
    listening: Iterable[Address | socket.socket] = (),
) -> Chosen:
    """Choose the server for an app of this kind and check ``options`` (and where it is
    to listen, the addresses or the bound sockets) against it, before any worker runs."""
    name = _name(asgi, server)
    converted = server_options(name, options)
    if asgi and not backend(name).ASGI:
        raise ServerOptionError(name, "server", f"cannot serve an ASGI app; use {_asgi_server()}")
    if name in ONE_SOCKET_FAMILY and mixes_unix_and_ip(listening):
        raise ServerOptionError(
            name, "listen", "cannot serve a unix socket and IP addresses at once; "
            "listen on one kind"
        )
    return Chosen(name, asgi, converted)


def check(
    app: object,
    server: str,
    options: Mapping[str, Any],
    listening: Iterable[Address | socket.socket] = (),
) -> str:
    """The server :func:`choose` picks for ``app``; raises what it raises."""
    return choose(is_asgi(app), server, options, listening).name


def check_any(options: Mapping[str, Any]) -> None:
    """``options`` for ``server = auto`` before the app is known: fine when one server
    takes them all; else ServerOptionError, naming every server when none takes a key.
    No options need no server imported (the monitor's start, most often)."""
    if not options:
        return
    errors: list[ServerOptionError] = []
    for name in BACKENDS:
        try:
            server_options(name, options)
            return
        except ServerOptionError as exc:
            errors.append(exc)
        except ImportError:  # a server that is not installed: the worker will say so
            return
    first = errors[0]
    if all((e.key, e.message) == (first.key, first.message) for e in errors):
        raise ServerOptionError(" or ".join(e.server for e in errors), first.key, first.message)
    raise first


def _asgi_server() -> str:
    return next(name for name in BACKENDS if backend(name).ASGI)


def serve_on_sockets(
    app: object,
    sockets: Sequence[socket.socket],
    chosen: Chosen,
    *,
    on_ready: ReadyCallback | None = None,
    on_stop: ReadyCallback | None = None,
    bounds: Bounds,
) -> None:
    """Serve ``app`` with the server ``chosen`` for it on already listening ``sockets``
    until SIGTERM or SIGINT.

    ``on_ready`` runs once the server accepts connections (after ASGI lifespan startup),
    ``on_stop`` once it has stopped accepting them (the next worker may start to).
    On the signal the listening sockets are closed first; requests in progress then get
    the time ``bounds`` give them to finish, and one cut at the deadline is named.
    """
    open_streams()

    def ready() -> None:
        preload.server_starting(False)
        if on_ready is not None:
            on_ready()

    preload.server_starting(True)
    try:
        tracked = REQUESTS.asgi(app) if chosen.asgi else REQUESTS.wsgi(app)  # type: ignore[arg-type]
        backend(chosen.name).run(tracked, sockets, chosen.options, ready, bounds, on_stop)
    finally:
        preload.server_starting(False)
