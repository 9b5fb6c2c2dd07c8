"""The requests a worker is answering, so that one cut short at the drain deadline is
named: a response that ends mid-way without a word looks like a bug of the app."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from devreload.log import Logger, default_logger


class InFlight:
    """HTTP requests under way: from the app's call to the end of its response."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._numbers = itertools.count()
        self._requests: dict[int, tuple[str, str, float]] = {}

    def begin(self, method: str, path: str) -> int:
        number = next(self._numbers)
        with self._lock:
            self._requests[number] = (method, path, time.monotonic())
        return number

    def end(self, number: int) -> None:
        with self._lock:
            self._requests.pop(number, None)

    def __len__(self) -> int:
        return len(self._requests)

    def cut(self, why: str, log: Logger | None = None) -> None:
        """The server gives up on every request still under way: one line for each."""
        log = log or default_logger()
        now = time.monotonic()
        with self._lock:
            cut, self._requests = list(self._requests.values()), {}
        for method, path, began in cut:
            log.warning("%s %s cut after %.1f s: %s", method, path, now - began, why)

    def wsgi(self, app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
        def tracked(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            number = self.begin(environ.get("REQUEST_METHOD", "GET"),
                                environ.get("PATH_INFO", "/"))
            try:
                body = app(environ, start_response)
            except BaseException:
                self.end(number)
                raise
            whole = environ.get("wsgi.file_wrapper")
            if isinstance(body, (list, tuple)) or (isinstance(whole, type)
                                                   and isinstance(body, whole)):
                # Made already, or a file the server sends by itself: left as they are,
                # for the server's own handling of them (its Content-Length, sendfile).
                self.end(number)
                return body
            return DoneAtClose(body, lambda: self.end(number))

        return tracked

    def asgi(self, app: Callable[..., Any]) -> Callable[..., Any]:
        async def tracked(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            number = self.begin(str(scope.get("method", "GET")), str(scope.get("path", "/")))
            try:
                await app(scope, receive, send)
            finally:
                self.end(number)

        return tracked


class DoneAtClose:
    """The app's response iterable, told done when the server closes it (it has sent it)."""

    def __init__(self, body: Iterable[bytes], done: Callable[[], None]) -> None:
        self.body = body
        self.done = done

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.body)

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            self.done()


#: This worker's requests under way (one server per worker).
REQUESTS = InFlight()
