"""WSGI/ASGI detection, server options, and real servers on pre-bound sockets."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import APPS, Proc, base_env, needs_proc, wait_until

from devreload import sockets as socks
from devreload.errors import AppImportError, ServerOptionError
from devreload.imports import import_string
from devreload.servers import choice as servers
from devreload.servers import waitress as server_waitress
from devreload.web.kinds import is_asgi

# --------------------------------------------------------------------------- detection


async def asgi_function(scope: Any, receive: Any, send: Any) -> None:
    """An ASGI app."""


class AsgiObject:
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """An ASGI app object (Starlette-style)."""


def wsgi_function(environ: Any, start_response: Any) -> list[bytes]:
    return []


class WsgiObject:
    def __call__(self, environ: Any, start_response: Any) -> list[bytes]:
        return []


async def two_arguments(a: Any, b: Any) -> None:
    """A coroutine function, but not an ASGI app."""


@pytest.mark.parametrize(
    ("app", "expected"),
    [
        (asgi_function, True),
        (AsgiObject(), True),
        (wsgi_function, False),
        (WsgiObject(), False),
        (two_arguments, False),
        (AsgiObject, False),
        (42, False),
    ],
)
def test_is_asgi(app: object, expected: bool) -> None:
    assert is_asgi(app) is expected


def test_choose_server() -> None:
    assert servers.check(asgi_function, "auto", {}) == "uvicorn"
    assert servers.check(wsgi_function, "auto", {}) == "waitress"
    assert servers.check(wsgi_function, "uvicorn", {}) == "uvicorn"
    with pytest.raises(ServerOptionError, match="server"):
        servers.check(wsgi_function, "gunicorn", {})


def test_load_app_import_strings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(APPS))
    import serve_apps

    assert import_string("serve_apps:wsgi_app") is serve_apps.wsgi_app
    assert import_string("serve_apps:make_asgi()") is serve_apps.asgi_app
    for bad, words in [
        ("serve_apps", "expected"),
        ("no_such_module_xyz:app", "no module named"),
        ("serve_apps:missing", "no attribute"),
    ]:
        with pytest.raises(AppImportError, match=words):
            import_string(bad)


# --------------------------------------------------------------------------- options


def test_server_options_defaults_and_conversion() -> None:
    assert servers.server_options("waitress", {"threads": "2"})["threads"] == 2
    assert servers.server_options("waitress", {})["threads"] == server_waitress.DEFAULTS["threads"]
    options = servers.server_options(
        "uvicorn",
        {"timeout_keep_alive": "7", "access_log": "false", "limit_concurrency": "", "ws": "none"},
    )
    assert options["timeout_keep_alive"] == 7
    assert options["access_log"] is False
    assert options["limit_concurrency"] is None
    assert options["ws"] == "none"
    assert options["lifespan"] == "on"


@pytest.mark.parametrize(
    ("server", "options", "key"),
    [
        ("waitress", {"thread": "4"}, "thread"),
        ("waitress", {"port": "80"}, "port"),
        ("waitress", {"threads": "many"}, "threads"),
        ("uvicorn", {"workers": "4"}, "workers"),
        ("uvicorn", {"nope": "1"}, "nope"),
        ("uvicorn", {"timeout_keep_alive": "soon"}, "timeout_keep_alive"),
    ],
)
def test_bad_server_options_name_the_key_and_the_server(
    server: str, options: dict[str, str], key: str
) -> None:
    with pytest.raises(ServerOptionError) as info:
        servers.server_options(server, options)
    assert info.value.key == key
    assert key in str(info.value) and server in str(info.value)


def test_waitress_refuses_asgi_apps() -> None:
    with pytest.raises(ServerOptionError, match="ASGI"):
        servers.choose(True, "waitress", {})


# --------------------------------------------------------------------------- real servers


class Served(Proc):
    """A child serving a fixture app on a socket this test bound and still holds."""

    def __init__(self, kind: str, sock: socket.socket, grace: float = 2.0) -> None:
        super().__init__(
            [sys.executable, str(APPS / "serve_prebound.py"), kind],
            cwd=os.getcwd(),
            env=base_env(SERVE_FD=str(sock.fileno()), GRACE=str(grace), PYTHONPATH=str(APPS)),
            pass_fds=[sock.fileno()],
        )
        self.port: int = sock.getsockname()[1]

    def get(self, path: str = "/") -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read().decode()
        finally:
            conn.close()


@pytest.fixture
def bound() -> Iterator[socket.socket]:
    sock = socks.bind(socks.make_address("127.0.0.1", 0))
    yield sock
    sock.close()


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_serves_on_a_prebound_socket_and_stops_accepting_at_once(
    kind: str, bound: socket.socket
) -> None:
    with Served(kind, bound) as served:
        served.wait_for(r"^READY")
        status, body = served.get()
        assert status == 200 and body.startswith(f"{kind} one pid={served.pid}")
        served.signal(signal.SIGTERM)
        assert served.wait_exit(5) == 0
        served.wait_for(r"^STOPPED")
        # The socket is still ours: a new connection waits in the backlog, not refused,
        # for whoever accepts next (here, the test itself).
        client = socket.create_connection(("127.0.0.1", served.port), timeout=5)
        bound.settimeout(5)
        conn, _ = bound.accept()
        conn.close()
        client.close()
        if kind == "asgi":
            served.wait_for(r"^LIFESPAN startup", start=0)
            served.wait_for(r"^LIFESPAN shutdown", start=0)


@needs_proc
@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_sigterm_drains_the_request_in_progress_but_accepts_nothing_new(
    kind: str, bound: socket.socket
) -> None:
    with Served(kind, bound) as served:
        served.wait_for(r"^READY")
        result: dict[str, Any] = {}
        slow = threading.Thread(target=lambda: result.update(slow=served.get("/slow")))
        slow.start()
        wait_until(
            lambda: _has_connection(served.pid, served.port),
            timeout=5,
            message="the slow request never reached the server",
        )
        served.signal(signal.SIGTERM)
        # A connection opened after the signal is left in the backlog for the next worker.
        late = socket.create_connection(("127.0.0.1", served.port), timeout=5)
        late.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        slow.join(5)
        assert result["slow"][0] == 200
        assert served.wait_exit(5) == 0
        bound.settimeout(5)
        conn, _ = bound.accept()
        assert conn.recv(100).startswith(b"GET / HTTP/1.1")
        conn.close()
        late.close()


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_an_endless_stream_does_not_hold_the_exit_past_the_bound(
    bound: socket.socket, kind: str
) -> None:
    """A streaming response (like server-sent events) is cut at the drain bound."""
    with Served(kind, bound, grace=0.2) as served:
        served.wait_for(r"^READY")
        conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
        conn.request("GET", "/stream")
        response = conn.getresponse()
        assert response.readline() == b"tick\n"
        served.signal(signal.SIGTERM)
        assert served.wait_exit(5) == 0  # SIGKILL would come at the monitor's bound
        conn.close()


def test_an_open_websocket_does_not_hold_the_exit_past_the_bound(bound: socket.socket) -> None:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    with Served("asgi", bound, grace=0.2) as served:
        served.wait_for(r"^READY")
        with connect(f"ws://127.0.0.1:{served.port}/ws", open_timeout=5) as ws:
            ws.send("ping")
            assert ws.recv(timeout=5) == "ping"
            served.signal(signal.SIGTERM)
            assert served.wait_exit(5) == 0
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=5)


def _quietly(func: Any, *args: Any) -> None:
    try:
        func(*args)
    except OSError:
        pass


def _has_connection(pid: int, port: int) -> bool:
    """True once ``pid`` holds an established connection on ``port`` (read from /proc)."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        return False
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].split(":")[1], 16)
            if local_port == port and fields[3] == "01" and fields[9] in inodes:
                return True
    return False
