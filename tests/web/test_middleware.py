"""LiveReload: the script goes into whole HTML pages only, and the event streams follow
the hub, under webtest (WSGI), an in-process ASGI call and a real waitress."""

from __future__ import annotations

import asyncio
import gzip
import http.client
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from importlib.metadata import entry_points
from typing import Any

import httpx
import pytest
import waitress
import webtest
from serverkit import ThreadedWaitress
from waitress import wasyncore
from webob import Request

from devreload.web import injection, livereload
from devreload.web.asgi import LiveReloadASGI
from devreload.web.livereload import EventHub
from devreload.web.wsgi import LiveReload, StartResponse, WSGIApp
from devreload.wire.contract import EVENTS_PATH

PAGE = b"<!doctype html><html><body><p>Hi</p></body></html>"
PAGE_UPPER = b"<HTML><BODY><p>one</p></BODY><p>tail</p></BODY></HTML>"
FRAGMENT = b"<p>no body end here</p>"


def wsgi_app(
    body: bytes | Iterable[bytes],
    headers: list[tuple[str, str]],
    status: str = "200 OK",
    length: bool = True,
) -> WSGIApp:
    """An app answering ``body`` (bytes: a list; else the iterable as is) with ``headers``."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        all_headers = list(headers)
        if isinstance(body, bytes):
            if length:
                all_headers.append(("Content-Length", str(len(body))))
            start_response(status, all_headers)
            return [body]
        start_response(status, all_headers)
        return body

    return app


HTML = [("Content-Type", "text/html; charset=utf-8")]


def tag_len() -> int:
    return len(livereload.script())


# --------------------------------------------------------------------------- WSGI


def test_injects_before_the_last_body_end_and_fixes_the_length() -> None:
    app = webtest.TestApp(LiveReload(wsgi_app(PAGE_UPPER, [*HTML, ("ETag", '"x"')])))
    res = app.get("/")
    body = res.body
    assert body.count(b"<script data-devreload") == 1
    assert body.index(b"<script data-devreload") > body.index(b"<p>tail</p>")
    assert body.endswith(b"</BODY></HTML>")
    assert int(res.headers["Content-Length"]) == len(body) == len(PAGE_UPPER) + tag_len()
    assert "ETag" not in res.headers  # it described the page without the script
    assert livereload.boot_id().encode() in body
    assert EVENTS_PATH.encode() in body


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (PAGE, [("Content-Type", "text/plain")]),
        (PAGE, [("Content-Type", "application/json")]),
        (gzip.compress(PAGE), [*HTML, ("Content-Encoding", "gzip")]),
    ],
    ids=["text", "json", "gzip"],
)
def test_other_responses_pass_byte_for_byte(body: bytes, headers: list[tuple[str, str]]) -> None:
    status, headerlist, app_iter = Request.blank("/").call_application(
        LiveReload(wsgi_app(body, headers))
    )
    assert (status, headerlist) == ("200 OK", [*headers, ("Content-Length", str(len(body)))])
    assert b"".join(app_iter) == body
    res = webtest.TestApp(LiveReload(wsgi_app(body, headers))).get("/")  # lint-checked
    assert b"data-devreload" not in res.body


def test_a_streamed_page_is_not_buffered() -> None:
    def chunks() -> Iterator[bytes]:
        yield b"<html><body>"
        yield b"</body></html>"

    app = webtest.TestApp(LiveReload(wsgi_app(chunks(), HTML)))
    assert app.get("/").body == b"<html><body></body></html>"


def test_a_generator_with_a_length_is_read_and_injected() -> None:
    def chunks() -> Iterator[bytes]:
        yield PAGE[:10]
        yield PAGE[10:]

    headers = [*HTML, ("Content-Length", str(len(PAGE)))]
    res = webtest.TestApp(LiveReload(wsgi_app(chunks(), headers))).get("/")
    assert b"data-devreload" in res.body
    assert res.headers["Content-Length"] == str(len(PAGE) + tag_len())


def test_csp_nonce_is_put_on_the_script() -> None:
    csp = "default-src 'self'; script-src 'self' 'nonce-r4nd0m+/='; style-src 'self'"
    test = webtest.TestApp(LiveReload(wsgi_app(PAGE, [*HTML, ("Content-Security-Policy", csp)])))
    assert b'<script data-devreload nonce="r4nd0m+/=" ' in test.get("/").body


def test_nonce_from_default_src_and_none_without() -> None:
    assert livereload.csp_nonce(["default-src 'nonce-abc'"]) == "abc"
    assert livereload.csp_nonce(["default-src 'nonce-a'; script-src 'self' 'nonce-b'"]) == "b"
    assert livereload.csp_nonce(["img-src 'nonce-abc'"]) is None


def test_legacy_write_passes_through() -> None:
    def app(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        write = start_response("200 OK", HTML)
        write(PAGE)
        return []

    assert webtest.TestApp(LiveReload(app)).get("/").body == PAGE


def test_wrapping_twice_injects_once() -> None:
    test = webtest.TestApp(LiveReload(LiveReload(wsgi_app(PAGE, HTML))))
    assert test.get("/").body.count(b"data-devreload") == 1


def test_paste_filter_wraps_the_app() -> None:
    (entry,) = entry_points(group="paste.filter_app_factory", name="livereload")
    wrapped = entry.load()(wsgi_app(PAGE, HTML), {})
    assert isinstance(wrapped, LiveReload)
    with pytest.raises(ValueError, match="takes no options"):
        entry.load()(wsgi_app(PAGE, HTML), {}, colour="red")


def test_events_in_a_thread_for_servers_we_cannot_hook() -> None:
    """wsgiref-style fallback: the hello first, then what the hub publishes, then the end."""
    hub = EventHub()
    app = LiveReload(wsgi_app(PAGE, HTML), hub=hub)
    started: list[str] = []

    def write(data: bytes) -> None:
        raise AssertionError("an event stream is an iterable, never written")

    def start_response(status: str, headers: list[tuple[str, str]]) -> Callable[[bytes], None]:
        started.append(status)
        return write

    environ = {"PATH_INFO": EVENTS_PATH, "REQUEST_METHOD": "GET"}
    stream = iter(app(environ, start_response))
    assert started == ["200 OK"]
    first = next(stream)
    assert first.startswith(b"event: hello\n")
    assert json.loads(first.split(b"data: ")[1])["boot"] == livereload.boot_id()
    hub.publish_static("static/site.css")
    assert next(stream) == b'event: css\ndata: {"path": "static/site.css"}\n\n'
    hub.publish_static("templates/page.html")
    assert next(stream).startswith(b"event: reload\n")
    hub.close()
    assert list(stream) == [livereload.RELOADING]  # then it ends: the page asks again at once
    assert len(hub) == 0


# --------------------------------------------------------------------------- ASGI


def asgi_app(body: bytes, headers: list[tuple[str, str]], chunks: int = 1,
             length: bool = True, status: int = 200) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raw = [(n.lower().encode(), v.encode()) for n, v in headers]
        if length:
            raw.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        if scope["method"] == "HEAD":
            await send({"type": "http.response.body", "body": b""})
            return
        step = max(1, len(body) // chunks)
        parts = [body[i:i + step] for i in range(0, len(body), step)] or [b""]
        for i, part in enumerate(parts):
            await send({"type": "http.response.body", "body": part,
                        "more_body": i < len(parts) - 1})

    return app


def asgi_get(app: Any, method: str = "GET", path: str = "/",
             headers: dict[str, str] | None = None) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.request(method, path, headers=headers)

    return asyncio.run(go())


def test_liveReload_returns_the_asgi_twin() -> None:
    assert isinstance(LiveReload(asgi_app(PAGE, HTML)), LiveReloadASGI)
    assert isinstance(LiveReload(wsgi_app(PAGE, HTML)), LiveReload)


@pytest.mark.parametrize("chunks", [1, 3])
def test_asgi_injects_and_fixes_the_length(chunks: int) -> None:
    res = asgi_get(LiveReload(asgi_app(PAGE, HTML, chunks=chunks)))
    assert res.content.count(b"<script data-devreload") == 1
    assert res.content.endswith(b"</body></html>")
    assert res.headers["content-length"] == str(len(PAGE) + tag_len())


def asgi_raw(app: Any, method: str = "GET") -> tuple[dict[str, str], bytes]:
    """Call ``app`` by hand: the response headers and the raw body bytes, as sent."""
    messages: list[Any] = []

    async def receive() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        messages.append(message)

    scope = {"type": "http", "method": method, "path": "/", "root_path": "", "headers": []}
    asyncio.run(app(scope, receive, send))
    headers = {n.decode(): v.decode() for n, v in messages[0]["headers"]}
    return headers, b"".join(m.get("body", b"") for m in messages[1:])


@pytest.mark.parametrize(
    ("body", "headers", "chunks", "length"),
    [
        (PAGE, [("Content-Type", "text/css")], 1, True),
        (gzip.compress(PAGE), [*HTML, ("Content-Encoding", "gzip")], 1, True),
        (PAGE, HTML, 3, False),  # streamed: no length, several messages
    ],
    ids=["css", "gzip", "stream"],
)
def test_asgi_other_responses_pass_byte_for_byte(
    body: bytes, headers: list[tuple[str, str]], chunks: int, length: bool
) -> None:
    app = asgi_app(body, headers, chunks=chunks, length=length)
    assert asgi_raw(LiveReload(app)) == asgi_raw(app)
    assert asgi_raw(LiveReload(app))[1] == body


def test_asgi_events_end_when_the_hub_closes() -> None:
    hub = EventHub()
    app = LiveReloadASGI(asgi_app(PAGE, HTML), hub=hub)
    sent: list[Any] = []

    async def receive() -> Any:
        await asyncio.Event().wait()

    async def send(message: Any) -> None:
        sent.append(message)
        if len(sent) == 2:
            threading.Thread(target=hub.publish_static, args=("a.css",)).start()
        if len(sent) == 3:
            hub.close()

    scope = {"type": "http", "method": "GET", "path": EVENTS_PATH}

    async def run() -> None:
        await asyncio.wait_for(app(scope, receive, send), 5)

    asyncio.run(run())
    assert sent[0]["status"] == 200
    assert sent[1]["body"].startswith(b"event: hello\n")
    assert sent[2]["body"].startswith(b"event: css\n")
    assert sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert len(hub) == 0


def test_asgi_events_end_on_disconnect() -> None:
    hub = EventHub()
    app = LiveReloadASGI(asgi_app(PAGE, HTML), hub=hub)
    sent: list[Any] = []

    async def receive() -> Any:
        await asyncio.sleep(0)
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": EVENTS_PATH}
    asyncio.run(asyncio.wait_for(app(scope, receive, send), 5))
    assert len(hub) == 0


# --------------------------------------------------------------------------- real waitress


def open_stream(port: int, path: str = EVENTS_PATH) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    return sock


def read_until(sock: socket.socket, marker: bytes, timeout: float = 5.0) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while marker not in data:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    assert marker in data, data
    return data


def test_waitress_streams_hold_no_request_thread() -> None:
    hub = EventHub()
    server = ThreadedWaitress(LiveReload(wsgi_app(PAGE, HTML), hub=hub), threads=2)
    streams: list[socket.socket] = []
    try:
        for _ in range(10):
            streams.append(open_stream(server.port))
        for sock in streams:
            head = read_until(sock, b"event: hello")
            assert b"text/event-stream" in head
        started = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.request("GET", "/")
        assert b"data-devreload" in conn.getresponse().read()
        assert time.monotonic() - started < 1.0
        conn.close()
        hub.publish_static("x.css")
        for sock in streams:
            read_until(sock, b"event: css")
        streams[0].close()
        hub.close()
        for sock in streams[1:]:
            sock.settimeout(5)
            rest = b""
            while chunk := sock.recv(65536):
                rest += chunk
            # Only the word that makes the page ask again at once, then the end.
            assert rest.count(b"event: ") == 1
            assert b"event: reloading" in rest
        assert len(hub) == 0
    finally:
        for sock in streams:
            sock.close()
        server.close()


def test_waitress_by_hand_adopts_the_connection() -> None:
    """LiveReload under a plain waitress (no install): the first event request answers the
    hello alone and hooks the server; the next one streams from the main loop."""
    hub = EventHub()
    app = LiveReload(wsgi_app(PAGE, HTML), hub=hub)
    amap: dict[int, Any] = {}
    server = waitress.create_server(app, map=amap, host="127.0.0.1", port=0, threads=1)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            wasyncore.loop(timeout=0.05, map=amap, count=1)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.effective_port, timeout=5)
        conn.request("GET", EVENTS_PATH)
        assert conn.getresponse().read().startswith(b"event: hello")
        conn.close()
        streams = [open_stream(server.effective_port) for _ in range(3)]
        for sock in streams:
            read_until(sock, b"event: hello")
        assert len(hub) == 3
        plain = http.client.HTTPConnection("127.0.0.1", server.effective_port, timeout=5)
        plain.request("GET", "/")
        assert plain.getresponse().status == 200
        plain.close()
        hub.close()
        for sock in streams:
            sock.close()
    finally:
        stop.set()
        thread.join(5)
        server.task_dispatcher.shutdown(timeout=1)
        wasyncore.close_all(amap)


@pytest.fixture(autouse=True)
def _fresh_global_hub() -> Iterator[None]:
    yield
    livereload.HUB.reopen()


# --------------------------------------------------------------------------- pages without </body>

# The Flask tutorial's base template: no </body>, no </html>.
NO_BODY_END = (
    b"<!doctype html>\n<title>Flaskr</title>\n<nav><h1>Flaskr</h1></nav>\n"
    b"<section class=\"content\"><p>post</p></section>\n"
)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"<html><body><p>x</p></body></html>", b"<html><body><p>x</p>TAG</body></html>"),
        (NO_BODY_END, NO_BODY_END + b"TAG"),
        (FRAGMENT, FRAGMENT + b"TAG"),
        (b"<html><p>x</p></html>\n", b"<html><p>x</p></html>\nTAG"),
        (b"", None),
        (b" \r\n", None),
        (b"<p>x</p><script data-devreload data-boot=\"1\"></script>", None),
    ],
    ids=["body-end", "template", "fragment", "html-end", "empty", "blank", "has-script"],
)
def test_inject_before_the_body_end_else_at_the_end(body: bytes, expected: bytes | None) -> None:
    assert injection.inject(body, b"TAG") == expected


def test_a_page_without_body_end_gets_the_script_at_its_end() -> None:
    res = webtest.TestApp(LiveReload(wsgi_app(NO_BODY_END, [*HTML, ("ETag", '"x"')]))).get("/")
    assert res.body == NO_BODY_END + livereload.script()
    assert res.headers["Content-Length"] == str(len(NO_BODY_END) + tag_len())
    assert "ETag" not in res.headers


def test_a_page_without_body_end_is_injected_once_when_wrapped_twice() -> None:
    res = webtest.TestApp(LiveReload(LiveReload(wsgi_app(NO_BODY_END, HTML)))).get("/")
    assert res.body.count(b"data-devreload") == 1
    assert res.headers["Content-Length"] == str(len(res.body))


@pytest.mark.parametrize("length", [True, False])
def test_an_empty_html_body_passes_untouched(length: bool) -> None:
    test = webtest.TestApp(LiveReload(wsgi_app(b"", HTML, length=length)))
    for res in (test.get("/"), test.head("/")):
        assert res.body == b""
        assert res.headers.get("Content-Length") == ("0" if length else None)


@pytest.mark.parametrize("chunks", [1, 3])
def test_asgi_a_page_without_body_end_gets_the_script_at_its_end(chunks: int) -> None:
    app = LiveReload(asgi_app(NO_BODY_END, HTML, chunks=chunks))
    headers, body = asgi_raw(app)
    assert body == NO_BODY_END + livereload.script()
    assert headers["content-length"] == str(len(body))
    twice = asgi_get(LiveReload(LiveReload(asgi_app(NO_BODY_END, HTML))))
    assert twice.content.count(b"data-devreload") == 1


def test_asgi_an_empty_html_body_passes_untouched() -> None:
    app = asgi_app(b"", HTML)
    assert asgi_raw(LiveReload(app)) == asgi_raw(app)
    assert asgi_raw(LiveReload(app), "HEAD") == asgi_raw(app, "HEAD")


# --------------------------------------------------------------------------- only pages

NAVIGATE = {"Sec-Fetch-Dest": "document", "Sec-Fetch-Mode": "navigate"}
NOT_PAGES = {
    "htmx": ({"HX-Request": "true", **NAVIGATE}, "200 OK", [], PAGE),
    "fetch": ({"Sec-Fetch-Dest": "empty"}, "200 OK", [], PAGE),
    "iframe-less image": ({"Sec-Fetch-Dest": "image"}, "200 OK", [], PAGE),
    "fragment": ({}, "200 OK", [], FRAGMENT),
    "fragment of a 404": ({}, "404 Not Found", [], FRAGMENT),
    "redirect": (NAVIGATE, "302 Found", [("Location", "/x")], PAGE),
    "attachment": (NAVIGATE, "200 OK", [("Content-Disposition", "attachment; filename=a.html")],
                   PAGE),
}


@pytest.mark.parametrize("case", NOT_PAGES)
@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_what_is_not_a_page_passes_byte_for_byte(case: str, kind: str) -> None:
    request, status, extra, body = NOT_PAGES[case]
    headers = [*HTML, *extra]
    if kind == "wsgi":
        res = webtest.TestApp(LiveReload(wsgi_app(body, headers, status=status)))
        answer = res.get("/", headers=request, status="*")
        assert (answer.body, answer.headers["Content-Length"]) == (body, str(len(body)))
    else:
        code = int(status.split()[0])
        answer = asgi_get(LiveReload(asgi_app(body, headers, status=code)), headers=request)
        assert (answer.content, answer.headers["content-length"]) == (body, str(len(body)))


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_head_passes_untouched(kind: str) -> None:
    if kind == "wsgi":
        res = webtest.TestApp(LiveReload(wsgi_app(PAGE, HTML))).head("/", headers=NAVIGATE)
        assert res.headers["Content-Length"] == str(len(PAGE))
    else:
        app = asgi_app(PAGE, HTML)
        assert asgi_raw(LiveReload(app), "HEAD") == asgi_raw(app, "HEAD")


@pytest.mark.parametrize("body", [FRAGMENT, NO_BODY_END], ids=["fragment", "no body end"])
@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_a_navigation_gets_the_script_even_without_body_end(kind: str, body: bytes) -> None:
    if kind == "wsgi":
        got = webtest.TestApp(LiveReload(wsgi_app(body, HTML))).get("/", headers=NAVIGATE).body
    else:
        got = asgi_get(LiveReload(asgi_app(body, HTML)), headers=NAVIGATE).content
    assert got.startswith(body) and got[len(body):] == livereload.script()


@pytest.mark.parametrize("body", [PAGE, PAGE_UPPER, NO_BODY_END, b"\n  <html lang=en><p>x"])
def test_without_a_browser_saying_a_whole_document_gets_the_script(body: bytes) -> None:
    got = webtest.TestApp(LiveReload(wsgi_app(body, HTML))).get("/").body
    assert got.count(b"<script data-devreload") == 1
