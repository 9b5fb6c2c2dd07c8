"""Which ``Host`` devreload's own pages answer (localhost, ``*.localhost``, IP literals
and the allowed names), on every page it serves: the monitor's error page, the event
streams under WSGI, ASGI and waitress's loop, the request error page; and how
``allowed_hosts`` reaches each of them from the ini, the command line and ``serve()``."""

from __future__ import annotations

import asyncio
import http.client
import io
import logging
import socket
import textwrap
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import httpx
import pytest
import webtest
from logrecords import Records, devreload_logger_as_it_was, devreload_records
from serverkit import ThreadedWaitress

from devreload import sockets
from devreload.cli import build_parser
from devreload.monitor import reloader
from devreload.monitor.errorserver import ErrorPage
from devreload.monitor.launch import SpawnLauncher
from devreload.monitor.reloader import ServingReloader
from devreload.serving import serve as serving
from devreload.serving.ini import IniConfig
from devreload.serving.options import ServeOptions
from devreload.web import hosts
from devreload.web.asgi import LiveReloadASGI
from devreload.web.hosts import host_allowed, refusal
from devreload.web.livereload import HUB, RELOADING, EventHub
from devreload.web.request_errors import RequestErrors, RequestErrorsASGI
from devreload.web.wsgi import LiveReload, StartResponse
from devreload.wire.contract import EVENTS_PATH

ALLOWED_BY_DEFAULT = [
    "localhost",
    "localhost:8080",
    "LOCALHOST:6543",
    "localhost.",
    "app.localhost",
    "a.b.localhost:8000",
    "127.0.0.1",
    "127.0.0.1:8080",
    "10.0.0.7:80",
    "0.0.0.0:8080",
    "[::1]",
    "[::1]:8080",
    "[fe80::1%25eth0]:80",
    "[2001:db8::1]:443",
    "",  # no Host at all (an HTTP/1.0 tool): a browser always sends one
    None,
]


REFUSED_BY_DEFAULT = [
    "attacker.example",
    "attacker.example:8080",
    "localhost.attacker.example",
    "notlocalhost",
    "evil-localhost",
    "127.0.0.1.nip.io",
    "::1",  # IPv6 without brackets is no Host
    "[::1",
    "[::1]x",
    "[not-an-ip]:80",
    "localhost:http",
    "localhost:80:80",
    "a b",
    "user@localhost",
    "127.1",
    "example.com/x",
]


@pytest.mark.parametrize("host", ALLOWED_BY_DEFAULT)
def test_answered_without_any_allowed_name(host: str | None) -> None:
    assert host_allowed(host)


@pytest.mark.parametrize("host", REFUSED_BY_DEFAULT)
def test_refused_without_any_allowed_name(host: str) -> None:
    assert not host_allowed(host)


@pytest.mark.parametrize(
    ("host", "allowed", "expected"),
    [
        ("myapp.test", ["myapp.test"], True),
        ("myapp.test:8080", ["MyApp.Test"], True),
        ("myapp.test", ["myapp.test:8080"], True),  # a port in the entry is ignored
        ("other.test", ["myapp.test"], False),
        ("sub.myapp.test", ["myapp.test"], False),
        # A leading dot: the name and its subdomains (Django's ALLOWED_HOSTS).
        ("example.com", [".example.com"], True),
        ("a.b.example.com:80", [".example.com"], True),
        ("badexample.com", [".example.com"], False),
        # *. : subdomains only.
        ("a.example.com", ["*.example.com"], True),
        ("example.com", ["*.example.com"], False),
        ("badexample.com", ["*.example.com"], False),
        # * : any name (still a well-formed one).
        ("anything.at.all", ["*"], True),
        ("::1", ["*"], False),
        # Empty entries allow nothing more.
        ("attacker.example", ["", "  "], False),
        ("attacker.example", ["other.test", "attacker.example"], True),
    ],
)
def test_allowed_names(host: str, allowed: list[str], expected: bool) -> None:
    assert host_allowed(host, allowed) is expected


@pytest.fixture
def devreload_log() -> Iterator[Records]:
    with devreload_records() as records:
        yield records


def test_the_refusal_says_how_to_allow_the_name_and_is_logged_once(
    devreload_log: Records,
) -> None:
    hosts._warned.discard("refused-once.example")
    line = refusal("refused-once.example:8080")
    assert refusal("refused-once.example") == line
    assert line == (
        "devreload: Host 'refused-once.example' is not allowed; "
        "add it with --allowed-host / allowed_hosts"
    )
    logged = [r for r in devreload_log.records if "refused-once.example" in r.getMessage()]
    assert len(logged) == 1 and logged[0].levelno == logging.WARNING


def test_the_refusal_shows_a_hostile_name_harmlessly() -> None:
    line = refusal("\x1b[31mx" + "a" * 500)
    assert "\x1b" not in line and len(line) < 250


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


def test_the_error_page_refuses_a_foreign_host(listening: socket.socket) -> None:
    page = ErrorPage([listening])
    page.start(TRACEBACK)
    try:
        status, headers, body = ask(listening, "attacker.example:8080")
        assert status == 403 and body.startswith(REFUSED)
        assert headers["Content-Type"].startswith("text/plain")
        assert b"hunter2" not in body and "X-Devreload-Error" not in headers
        status, _, body = ask(listening, "attacker.example", path=EVENTS_PATH)
        assert status == 403 and b"event:" not in body
        status, _, body = ask(listening, "attacker.example", method="HEAD")
        assert status == 403 and body == b""
        for host in ("localhost", f"localhost:{listening.getsockname()[1]}", "127.0.0.1",
                     "app.localhost:80"):
            status, _, body = ask(listening, host)
            assert status == 500 and b"hunter2" in body, host
    finally:
        page.stop()


def test_the_error_page_answers_an_allowed_name(listening: socket.socket) -> None:
    page = ErrorPage([listening], allowed_hosts=("attacker.example", ".mine.test"))
    page.start(TRACEBACK)
    try:
        assert ask(listening, "attacker.example")[0] == 500
        assert ask(listening, "a.mine.test:8080")[0] == 500
        assert ask(listening, "other.example")[0] == 403
    finally:
        page.stop()


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
    server = ThreadedWaitress(LiveReload(html_app, hub=hub, allowed_hosts=["mine.test"]), threads=2)
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


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def test_the_server_section_and_the_devreload_section_add_up(tmp_path: Path) -> None:
    ini = write(
        tmp_path / "dev.ini",
        """\
        [app:main]
        use = call:nowhere:app

        [server:main]
        use = egg:devreload
        allowed_hosts = myapp.test .dev.example

        [devreload]
        allowed_hosts =
            *.tunnel.example
        """,
    )
    config = IniConfig(str(ini), command_line=ServeOptions(allowed_hosts=("cli.example",)))
    options = config.serve_options(config.server_context())
    assert options.allowed_hosts == (
        "myapp.test", ".dev.example", "*.tunnel.example", "cli.example"
    )
    assert "allowed_hosts" not in options.server_options  # devreload's, not waitress's


def test_a_waitress_section_takes_them_from_devreload(tmp_path: Path) -> None:
    ini = write(
        tmp_path / "dev.ini",
        """\
        [app:main]
        use = call:nowhere:app

        [server:main]
        use = egg:waitress#main
        listen = localhost:6543

        [devreload]
        allowed_hosts = myapp.test
        """,
    )
    config = IniConfig(str(ini))
    assert config.serve_options(config.server_context()).allowed_hosts == ("myapp.test",)


def test_the_command_line_repeats_the_option() -> None:
    args = build_parser().parse_args(
        ["serve", "--allowed-host", "a.test", "--allowed-host", ".b.test", "dev.ini"]
    )
    assert args.allowed_hosts == ["a.test", ".b.test"]
    assert build_parser().parse_args(["serve", "dev.ini"]).allowed_hosts == []


def test_serve_passes_them_on(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[ServeOptions] = []
    monkeypatch.setattr(serving, "serve_app", lambda app, options: seen.append(options))
    serving.serve("main:app", allowed_hosts=["myapp.test"])
    assert seen[0].allowed_hosts == ("myapp.test",)


def test_the_monitor_gives_them_to_its_error_page(monkeypatch: pytest.MonkeyPatch) -> None:
    made: dict[str, Any] = {}

    class Recorded(ServingReloader):
        def __init__(self, *args: Any, **kw: Any) -> None:
            super().__init__(*args, **{**kw, "launcher": SpawnLauncher()})  # no template

        def run(self) -> int:
            made["page"] = self.error_page
            return 0

    monkeypatch.setattr(reloader, "ServingReloader", Recorded)  # run_monitor imports it late
    monkeypatch.setattr(serving, "announce", lambda bound, browser=False, log=None: None)
    options = ServeOptions(addresses=(sockets.make_address("127.0.0.1", 0),),
                           allowed_hosts=("myapp.test",))
    assert serving.run_monitor(options, "nowhere:main") == 0
    assert made["page"].allowed_hosts == ("myapp.test",)


def test_the_worker_gives_them_to_its_wrappers(monkeypatch: pytest.MonkeyPatch) -> None:
    served: dict[str, Any] = {}
    monkeypatch.setattr(serving, "serve_on_sockets",
                        lambda app, *args, **kw: served.update(app=app))
    saved = HUB.allowed_hosts

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise AssertionError("not called")

    try:
        with socket.socket() as sock:
            serving._serve(app, [sock], ServeOptions(allowed_hosts=("myapp.test",)),
                           live_reload=True)
        assert "myapp.test" in HUB.allowed_hosts  # the stream (and waitress's channel)
        assert served["app"].app.allowed_hosts == ("myapp.test",)  # the request error page
    finally:
        HUB.allowed_hosts = saved
