"""devreload's own pages refuse a Host that could be a rebound name (403 with the way to
allow it), while the app's own pages answer any: the monitor's error page on a real
socket, the WSGI and ASGI wrappers, waitress's stream channel, the request error page."""

from __future__ import annotations

import asyncio
import http.client
import io
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.util import setup_testing_defaults

import httpx
import pytest
import webtest
from logrecords import devreload_logger_as_it_was
from test_middleware import Waitress

from devreload.monitor.errorserver import ErrorPage
from devreload.web.asgi import LiveReloadASGI
from devreload.web.livereload import HUB, RELOADING, EventHub
from devreload.web.request_errors import RequestErrors, RequestErrorsASGI
from devreload.web.wsgi import LiveReload, StartResponse
from devreload.wire.contract import EVENTS_PATH

TRACEBACK = """\
Traceback (most recent call last):
  File "/srv/app/settings.py", line 3, in <module>
    SECRET_KEY = load()
RuntimeError: SECRET_KEY=hunter2 is not valid
"""
REFUSED = b"devreload: Host 'attacker.example' is not allowed; add it with --allowed-host"
PAGE = b"<!doctype html><html><body><p>the app</p></body></html>"


@pytest.fixture(autouse=True)
def _as_it_was() -> Iterator[None]:
    """The global hub and devreload's logger, as before the test."""
    allowed = HUB.allowed_hosts
    with devreload_logger_as_it_was():
        yield
    HUB.allowed_hosts = allowed
    HUB.reopen()


# --------------------------------------------------------------------------- the monitor's page


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield sock
    sock.close()


def ask(sock: socket.socket, host: str, path: str = "/",
        method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """A request with this exact Host header."""
    address, port = sock.getsockname()[:2]
    conn = http.client.HTTPConnection(address, port, timeout=5)
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    conn.putheader("Host", host)
    conn.putheader("Accept", "text/html")
    conn.endheaders()
    response = conn.getresponse()
    result = response.status, dict(response.getheaders()), response.read()
    conn.close()
    return result


def test_the_error_page_refuses_a_foreign_host(listener: socket.socket) -> None:
    page = ErrorPage([listener])
    page.start(TRACEBACK)
    try:
        status, headers, body = ask(listener, "attacker.example:8080")
        assert status == 403 and body.startswith(REFUSED)
        assert headers["Content-Type"].startswith("text/plain")
        assert b"hunter2" not in body and "X-Devreload-Error" not in headers
        status, _, body = ask(listener, "attacker.example", path=EVENTS_PATH)
        assert status == 403 and b"event:" not in body
        status, _, body = ask(listener, "attacker.example", method="HEAD")
        assert status == 403 and body == b""
        for host in ("localhost", f"localhost:{listener.getsockname()[1]}", "127.0.0.1",
                     "app.localhost:80"):
            status, _, body = ask(listener, host)
            assert status == 500 and b"hunter2" in body, host
    finally:
        page.stop()


def test_the_error_page_answers_an_allowed_name(listener: socket.socket) -> None:
    page = ErrorPage([listener], allowed_hosts=("attacker.example", ".mine.test"))
    page.start(TRACEBACK)
    try:
        assert ask(listener, "attacker.example")[0] == 500
        assert ask(listener, "a.mine.test:8080")[0] == 500
        assert ask(listener, "other.example")[0] == 403
    finally:
        page.stop()


# --------------------------------------------------------------------------- WSGI


def html_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(PAGE)))])
    return [PAGE]


def test_wsgi_stream_refused_while_the_apps_pages_answer() -> None:
    app = webtest.TestApp(LiveReload(html_app, hub=EventHub()))
    refused = app.get(EVENTS_PATH, headers={"Host": "attacker.example"}, status=403)
    assert refused.body.startswith(REFUSED)
    assert app.head(EVENTS_PATH, headers={"Host": "attacker.example"}, status=403).body == b""
    # Anything else under /__devreload__/ is devreload's too.
    app.get("/__devreload__/other", headers={"Host": "attacker.example"}, status=403)
    page = app.get("/", headers={"Host": "attacker.example"})
    assert page.status_int == 200 and b"the app" in page.body  # the app's: not filtered


def test_wsgi_stream_answered_for_localhost_and_allowed_names() -> None:
    hub = EventHub()
    app = LiveReload(html_app, hub=hub, allowed_hosts=["*.mine.test"])
    started: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]],
                       exc_info: Any = None) -> Callable[[bytes], None]:
        started.append(status)
        return lambda data: None

    for host in ("localhost:8080", "a.mine.test", "[::1]:80"):
        started.clear()
        environ = {"PATH_INFO": EVENTS_PATH, "REQUEST_METHOD": "GET", "HTTP_HOST": host}
        stream = iter(app(environ, start_response))
        assert next(stream).startswith(b"event: hello")
        assert started == ["200 OK"], host
        hub.close()
        assert list(stream) == [RELOADING]
        hub.reopen()


# --------------------------------------------------------------------------- ASGI


async def asgi_html(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/html")]})
    await send({"type": "http.response.body", "body": PAGE})


def asgi_get(app: Any, path: str, host: str) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get(path, headers={"Host": host})

    return asyncio.run(go())


def test_asgi_stream_refused_while_the_apps_pages_answer() -> None:
    app = LiveReloadASGI(asgi_html, hub=EventHub())
    refused = asgi_get(app, EVENTS_PATH, "attacker.example")
    assert refused.status_code == 403 and refused.content.startswith(REFUSED)
    page = asgi_get(app, "/", "attacker.example")
    assert page.status_code == 200 and b"the app" in page.content


def test_asgi_stream_answered_for_an_allowed_name() -> None:
    hub = EventHub()
    app = LiveReloadASGI(asgi_html, hub=hub, allowed_hosts=["attacker.example"])
    sent: list[Any] = []

    async def receive() -> Any:
        await asyncio.Event().wait()

    async def send(message: Any) -> None:
        sent.append(message)
        if len(sent) == 2:
            hub.close()

    scope = {"type": "http", "method": "GET", "path": EVENTS_PATH,
             "headers": [(b"host", b"attacker.example:8080")]}
    asyncio.run(asyncio.wait_for(app(scope, receive, send), 5))
    assert sent[0]["status"] == 200 and sent[1]["body"].startswith(b"event: hello")


# --------------------------------------------------------------------------- real waitress
# The threaded waitress of the live-reload tests serves here too.


def raw(port: int, path: str, host: str, until: bytes, timeout: float = 5.0) -> bytes:
    """Send one request with this Host; what came back once ``until`` did (or the end)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    with sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        data = b""
        deadline = time.monotonic() + timeout
        while until not in data and time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def test_waitress_stream_channel_refuses_a_foreign_host() -> None:
    hub = EventHub()
    server = Waitress(LiveReload(html_app, hub=hub, allowed_hosts=["mine.test"]), threads=2)
    try:
        refused = raw(server.port, EVENTS_PATH, "attacker.example", REFUSED)
        assert refused.startswith(b"HTTP/1.1 403 ") and REFUSED in refused
        assert b"event:" not in refused and len(hub) == 0
        page = raw(server.port, "/", "attacker.example", b"</html>")
        assert page.startswith(b"HTTP/1.1 200 ") and b"the app" in page
        for host in ("localhost", "mine.test:80"):
            stream = raw(server.port, EVENTS_PATH, host, b"event: hello")
            assert stream.startswith(b"HTTP/1.1 200 ") and b"event: hello" in stream
    finally:
        hub.close()
        server.close()


# --------------------------------------------------------------------------- request errors


def failing(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    raise RuntimeError("SECRET_KEY=hunter2 is not valid")


def call_wsgi(app: Any, host: str) -> tuple[str, bytes]:
    environ: dict[str, Any] = {"REQUEST_METHOD": "GET", "PATH_INFO": "/",
                               "HTTP_ACCEPT": "text/html", "wsgi.input": io.BytesIO()}
    setup_testing_defaults(environ)
    environ["HTTP_HOST"] = host
    seen: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]],
                       exc_info: Any = None) -> Callable[[bytes], None]:
        seen.append(status)
        return lambda data: None

    body = b"".join(app(environ, start_response))
    return seen[-1], body


def test_the_request_error_page_refuses_a_foreign_host() -> None:
    status, body = call_wsgi(RequestErrors(failing, show=True), "attacker.example")
    assert status.startswith("403 ") and body.startswith(REFUSED) and b"hunter2" not in body
    status, body = call_wsgi(RequestErrors(failing, show=True), "localhost:6543")
    assert status.startswith("500 ") and b"hunter2" in body
    allowed = RequestErrors(failing, show=True, allowed_hosts=["attacker.example"])
    assert call_wsgi(allowed, "attacker.example")[0].startswith("500 ")


def test_the_asgi_request_error_page_refuses_a_foreign_host() -> None:
    async def failing_asgi(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("SECRET_KEY=hunter2 is not valid")

    app = RequestErrorsASGI(failing_asgi, show=True)
    refused = asgi_get(app, "/", "attacker.example")
    assert refused.status_code == 403 and b"hunter2" not in refused.content
    shown = asgi_get(app, "/", "127.0.0.1:8000")
    assert shown.status_code == 500 and b"hunter2" in shown.content
