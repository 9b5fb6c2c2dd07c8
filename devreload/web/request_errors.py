"""An exception that escapes the app during a request gets devreload's error page.

Without this, waitress answers a bare "Internal Server Error" and uvicorn the same, and
the developer goes to the terminal to read the traceback. With it the browser shows the
traceback (the app's own frames, the failing line first) on the page it asked for, as
the monitor does while the app cannot start: 500, HTML or plain text by ``Accept``, the
traceback only where the error page shows one (loopback, unless ``show_errors``). It is
never an interactive debugger: nothing on the page runs code.

Only an exception raised before any of the response was sent can be answered this way;
one raised later (a stream that fails half-way) goes to the server as before. Either way
it is logged once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from types import TracebackType
from typing import Any

from devreload.log import default_logger
from devreload.web.hosts import REFUSAL_HEADERS, host_allowed, refusal_body
from devreload.web.kinds import is_asgi
from devreload.web.page import render
from devreload.worker.tracebacks import compact_traceback, failure_details

TITLE = "The app raised an exception"
HIDDEN = "The app raised an exception. The details are in the server's output."

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
StartResponse = Callable[..., Callable[[bytes], Any]]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def show_request_errors(
    app: Any, show: bool, allowed_hosts: Sequence[str] = (), *, asgi: bool | None = None
) -> Any:
    """``app`` (WSGI or ASGI) wrapped so that an exception it raises before responding
    becomes devreload's error page; ``show``: with the traceback; ``allowed_hosts``: the
    names besides localhost and IP literals it answers (see ``hosts``); ``asgi``: the
    app's kind, when the caller knows it."""
    if is_asgi(app) if asgi is None else asgi:
        return RequestErrorsASGI(app, show, allowed_hosts)
    return RequestErrors(app, show, allowed_hosts)


def error_response(exc: BaseException, method: str, path: str, accept: str,
                   show: bool, host: str | None = None,
                   allowed_hosts: Sequence[str] = ()) -> tuple[int, list[tuple[str, str]], bytes]:
    """Log ``exc`` once, and the status, headers and body of the 500 that tells the
    browser; a 403 instead for a ``Host`` devreload's pages do not answer."""
    report = compact_traceback(exc)
    default_logger().error("%s %s raised an exception:\n%s", method, path, report.rstrip())
    if not host_allowed(host, allowed_hosts):
        refused = refusal_body(host or "")
        headers = [*REFUSAL_HEADERS, ("Content-Length", str(len(refused)))]
        return 403, headers, b"" if method == "HEAD" else refused
    frames, exception = failure_details(exc)
    ctype, body = render(report, accept, show, title=TITLE, hidden=HIDDEN, waiting=False,
                         frames=frames, exception=exception)
    headers = [
        ("Content-Type", ctype),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
        ("X-Devreload-Error", "request"),
    ]
    return 500, headers, b"" if method == "HEAD" else body


class RequestErrors:
    """WSGI middleware: the error page for an exception raised by the app's call."""

    def __init__(self, app: WSGIApp, show: bool, allowed_hosts: Sequence[str] = ()) -> None:
        self.app = app
        self.show = show
        self.allowed_hosts = tuple(allowed_hosts)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        wrote = False

        def tracked(status: str, headers: list[tuple[str, str]],
                    exc_info: ExcInfo | None = None) -> Callable[[bytes], Any]:
            write = start_response(status, headers, exc_info)

            def tracked_write(data: bytes) -> Any:
                nonlocal wrote
                wrote = True
                return write(data)

            return tracked_write

        try:
            return self.app(environ, tracked)
        except Exception as exc:
            if wrote:  # the legacy write() sent part of the response: too late for a page
                raise
            status, headers, body = error_response(
                exc,
                environ.get("REQUEST_METHOD", "GET"),
                environ.get("PATH_INFO", "/"),
                environ.get("HTTP_ACCEPT", ""),
                self.show,
                environ.get("HTTP_HOST"),
                self.allowed_hosts,
            )
            # exc_info lets a server replace headers the app had already given.
            reason = "Internal Server Error" if status == 500 else "Forbidden"
            start_response(f"{status} {reason}", headers, (type(exc), exc, exc.__traceback__))
            return [body]


class RequestErrorsASGI:
    """ASGI middleware: the error page for an exception raised before
    ``http.response.start`` was sent; websockets and lifespan pass untouched."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]],
                 show: bool, allowed_hosts: Sequence[str] = ()) -> None:
        self.app = app
        self.show = show
        self.allowed_hosts = tuple(allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message.get("type") == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            if started:
                raise
            accept = ""
            host: str | None = None
            for name, value in scope.get("headers", ()):
                if name.lower() == b"accept":
                    accept = value.decode("latin-1")
                elif name.lower() == b"host":
                    host = value.decode("latin-1")
            method = scope.get("method", "GET")
            status, headers, body = error_response(exc, method, scope.get("path", "/"), accept,
                                                   self.show, host, self.allowed_hosts)
            await send({
                "type": "http.response.start",
                "status": status,
                "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
            })
            await send({"type": "http.response.body", "body": body})
