"""The error page for an exception raised during a request (WSGI and ASGI), and the
framework conveniences applied before an app is served."""

from __future__ import annotations

import asyncio
import io
import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest

from devreload.log import LOGGER_NAME
from devreload.web.frameworks import prepare
from devreload.web.request_errors import RequestErrors, RequestErrorsASGI, show_request_errors

Environ = dict[str, Any]


@pytest.fixture(autouse=True)
def devreload_logger_as_it_was() -> Iterator[None]:
    """Logging an error gives devreload's logger a handler of its own: take it away again,
    so that tests of logging setup run after these see the logger they expect."""
    log = logging.getLogger(LOGGER_NAME)
    saved = log.handlers[:], log.propagate, log.level
    yield
    log.handlers[:], log.propagate = saved[0], saved[1]
    log.setLevel(saved[2])


def failing(environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
    raise LookupError("no such <thing>")


def call(app: Any, path: str = "/", accept: str = "text/html",
         method: str = "GET") -> tuple[str, dict[str, str], bytes]:
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "HTTP_ACCEPT": accept,
               "wsgi.input": io.BytesIO()}
    setup_testing_defaults(environ)
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]],
                       exc_info: Any = None) -> Callable[[bytes], None]:
        seen["status"], seen["headers"] = status, dict(headers)
        return lambda data: None

    body = b"".join(app(environ, start_response))
    return seen["status"], seen["headers"], body


def test_wsgi_exception_becomes_the_error_page_with_the_apps_frames() -> None:
    status, headers, body = call(RequestErrors(failing, show=True), "/things")
    assert status.startswith("500 ")
    assert headers["X-Devreload-Error"] == "request"
    assert headers["Content-Type"].startswith("text/html")
    assert int(headers["Content-Length"]) == len(body)
    page = body.decode()
    assert "The app raised an exception" in page
    assert "test_request_errors.py" in page and "no such &lt;thing&gt;" in page
    assert "HEAD" not in page  # no polling: live reload brings the page back after a fix
    _, headers, body = call(RequestErrors(failing, show=True), accept="*/*")
    assert headers["Content-Type"].startswith("text/plain")
    assert body.decode().endswith("LookupError: no such <thing>\n")


def test_wsgi_traceback_hidden_unless_shown() -> None:
    _, _, body = call(RequestErrors(failing, show=False), accept="*/*")
    assert b"LookupError" not in body and b"test_request_errors" not in body
    assert body.startswith(b"The app raised an exception.")


def test_wsgi_head_has_no_body_and_answers_pass_untouched() -> None:
    status, headers, body = call(RequestErrors(failing, show=True), method="HEAD")
    assert status.startswith("500 ") and body == b"" and int(headers["Content-Length"]) > 0

    def fine(environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"nothing here"]

    assert call(RequestErrors(fine, show=True)) == (
        "404 Not Found", {"Content-Type": "text/plain"}, b"nothing here"
    )


def test_wsgi_exception_after_write_is_left_to_the_server() -> None:
    def streams(environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"half")
        raise ValueError("too late")

    with pytest.raises(ValueError, match="too late"):
        call(RequestErrors(streams, show=True))


async def _asgi_failing(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["path"] == "/late":
        await send({"type": "http.response.start", "status": 200, "headers": []})
    raise KeyError("asgi trouble")


def asgi_call(app: Any, path: str = "/",
              accept: bytes = b"text/plain") -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": path, "headers": [(b"accept", accept)]}
    asyncio.run(app(scope, receive, send))
    return sent


def test_asgi_exception_becomes_the_error_page() -> None:
    app = show_request_errors(_asgi_failing, show=True)
    assert isinstance(app, RequestErrorsASGI)
    start, body = asgi_call(app)
    assert start["status"] == 500
    assert (b"x-devreload-error", b"request") in start["headers"]
    assert body["body"].decode().endswith("KeyError: 'asgi trouble'\n")
    with pytest.raises(KeyError):
        asgi_call(app, "/late")  # the response had started: the server's business


def test_flask_propagates_to_the_error_page_and_reloads_templates() -> None:
    from flask import Flask

    app = Flask("flask_fixture")

    @app.route("/")
    def index() -> str:
        raise RuntimeError("flask view failed")

    served = prepare(app, show_errors=True)
    assert isinstance(served, RequestErrors)
    assert served.app is app
    assert app.config["PROPAGATE_EXCEPTIONS"] is True
    assert app.jinja_env.auto_reload is True
    status, _, body = call(served, accept="text/plain")
    assert status.startswith("500 ") and body.decode().endswith(
        "RuntimeError: flask view failed\n"
    )
    hidden = Flask("flask_hidden")
    hidden.config["TEMPLATES_AUTO_RELOAD"] = False
    prepare(hidden, show_errors=False)
    # Where tracebacks are not shown, Flask's own 500 page stays; a setting made is kept.
    assert hidden.config["PROPAGATE_EXCEPTIONS"] is None
    assert hidden.config["TEMPLATES_AUTO_RELOAD"] is False


def test_preparing_a_plain_app_imports_no_framework() -> None:
    before = set(sys.modules)
    wrapped = prepare(failing, show_errors=True)
    assert prepare(wrapped, show_errors=True) is wrapped  # prepared once only
    prepare(_asgi_failing, show_errors=True)
    assert not {m.split(".")[0] for m in set(sys.modules) - before} & {
        "django", "flask", "pyramid", "fastapi", "starlette"
    }
