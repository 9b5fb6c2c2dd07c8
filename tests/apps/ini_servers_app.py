"""Fixture for the ini server tests: an app that shows what its server gave it, and a server
of its own (wsgiref) for ``use = call:ini_servers_app:wsgiref_server``.

The app answers ``GREETING TOKEN scheme=... pid=N``; ``/meet/N`` answers ``together`` once
N requests are in the app at the same time, or ``alone`` when they never are within a
second (the server has fewer request threads).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

if TYPE_CHECKING:  # types only: the app imports no devreload module at run time
    from devreload.web.wsgi import StartResponse, WSGIApp

TOKEN = "one"
MEET_TIMEOUT = 1.0
_meetings: dict[int, threading.Barrier] = {}
_meetings_lock = threading.Lock()


def _meet(parties: int) -> str:
    with _meetings_lock:
        barrier = _meetings.setdefault(parties, threading.Barrier(parties))
    try:
        barrier.wait(MEET_TIMEOUT)
    except threading.BrokenBarrierError:
        return "alone"
    return "together"


def make_app(global_config: dict[str, str], greeting: str = "Hello", **settings: str) -> WSGIApp:
    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        if path.startswith("/meet/"):
            body = _meet(int(path.removeprefix("/meet/"))).encode()
        else:
            scheme = environ["wsgi.url_scheme"]
            body = f"{greeting} {TOKEN} scheme={scheme} pid={os.getpid()}".encode()
        headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
        start_response("200 OK", headers)
        return [body]

    return app


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def wsgiref_server(
    global_conf: dict[str, str],
    host: str = "127.0.0.1",
    port: str = "8080",
    startup_delay: str = "0",
) -> Callable[[WSGIApp], None]:
    """A ``paste.server_factory`` (what ``use = call:...`` gives a server section): a server
    that binds its own port, after ``startup_delay`` seconds (a server slow to start).
    It prints ``LISTENING pid=N`` once bound, just before it starts to listen."""

    def serve(app: WSGIApp) -> None:
        time.sleep(float(startup_delay))
        server = WSGIServer((host, int(port)), _Quiet, bind_and_activate=False)
        server.set_app(app)
        server.server_bind()
        print(f"LISTENING pid={os.getpid()} on {host}:{port}", flush=True)
        server.server_activate()
        server.serve_forever()

    return serve
