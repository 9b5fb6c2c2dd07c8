"""While the app is broken, the monitor answers on the app's own address.

Without this a browser sees "connection refused" (or a hang) and the developer has to
go and read the terminal. The monitor already holds the listening sockets, so when no
healthy worker is left it accepts the waiting connections itself and answers 500 with
the traceback, until a new worker is about to start (see ``ServingReloader``).
"""

from __future__ import annotations

import selectors
import socket
import threading
from collections.abc import Sequence
from typing import Any

from devreload.web.hosts import REFUSAL_HEADERS, host_allowed, refusal_body
from devreload.web.page import render
from devreload.wire.contract import EVENTS_PATH
from devreload.wire.messages import Frame

READ_TIMEOUT = 2.0
MAX_HEAD = 65536
#: Marks, in the page's selector, a handed-over connection waiting for its next request.
IDLE = "idle"


class ErrorPage:
    """Answers every request on the listening sockets with the current error, from a thread."""

    def __init__(self, sockets: Sequence[socket.socket], show: bool = True,
                 allowed_hosts: Sequence[str] = ()) -> None:
        self.sockets = list(sockets)
        self.show = show
        #: Names besides localhost and IP literals this page answers (see ``hosts``).
        self.allowed_hosts = tuple(allowed_hosts)
        self.error = ""
        self.frames: tuple[Frame, ...] = ()
        self.exception = ""
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        #: Handed-over keep-alive connections waiting for their next request.
        self._idle: list[socket.socket] = []

    def start(self, error: str, frames: Sequence[Frame] = (), exception: str = "") -> None:
        """Answer with ``error`` (its frames and exception lines, when the worker sent them)."""
        self.error = error
        self.frames, self.exception = tuple(frames), exception
        if self._thread is None and self.sockets:
            self._stop.clear()
            self._thread = threading.Thread(target=self._serve, name="devreload-error-page",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> list[tuple[socket.socket, bytes]]:
        """Returns once no connection will be accepted here any more, with the handed-over
        connections whose next request has not come (the next worker's to answer)."""
        if self._thread is not None:
            self._stop.set()
            self._wake_w.send(b"x")
            self._thread.join()
            self._thread = None
            while self._drain_wake():
                pass
        with self._lock:
            idle, self._idle = self._idle, []
        return [(conn, b"") for conn in idle]

    def _drain_wake(self) -> bool:
        self._wake_r.setblocking(False)
        try:
            return bool(self._wake_r.recv(64))
        except BlockingIOError:
            return False
        finally:
            self._wake_r.setblocking(True)

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._wake_r, selectors.EVENT_READ)
            for sock in self.sockets:
                selector.register(sock, selectors.EVENT_READ)
            watched: set[socket.socket] = set()
            while not self._stop.is_set():
                for key, _ in selector.select():
                    if self._stop.is_set():
                        break
                    if key.fileobj is self._wake_r:
                        self._drain_wake()
                        self._watch_idle(selector, watched)
                        continue
                    if key.data is IDLE:
                        self._answer_idle(selector, key.fileobj)  # type: ignore[arg-type]
                        continue
                    listener: Any = key.fileobj
                    try:
                        conn, _ = listener.accept()
                    except (BlockingIOError, InterruptedError):
                        continue
                    threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def adopt(self, connections: Sequence[tuple[socket.socket, bytes]]) -> None:
        """Keep-alive connections a stopped worker handed over, each with the bytes of its
        next request read already: one is answered once its request comes (never closed
        for being idle: that races with the client's request), and those still idle
        when the page stops go back (see ``stop``)."""
        for conn, data in connections:
            if data or self._thread is None:
                threading.Thread(target=self._answer, args=(conn, data), daemon=True).start()
            else:
                with self._lock:
                    self._idle.append(conn)
        self._wake_w.send(b"+")

    def _watch_idle(self, selector: selectors.BaseSelector, watched: set[socket.socket]) -> None:
        with self._lock:
            new = [conn for conn in self._idle if conn not in watched]
        for conn in new:
            watched.add(conn)
            selector.register(conn, selectors.EVENT_READ, IDLE)

    def _answer_idle(self, selector: selectors.BaseSelector, conn: socket.socket) -> None:
        """The next request (or the client's hang-up) has come on an idle connection."""
        selector.unregister(conn)
        with self._lock:
            self._idle.remove(conn)
        threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket, data: bytes = b"") -> None:
        with conn:
            conn.settimeout(READ_TIMEOUT)
            try:
                method, path, accept, host = _read_head(conn, data)
                if not host_allowed(host, self.allowed_hosts):
                    conn.sendall(_refused(method, host))
                    return
                conn.sendall(self._response(method, path, accept))
            except (OSError, ValueError):
                return

    def _response(self, method: str, path: str, accept: str) -> bytes:
        if path.startswith(EVENTS_PATH):
            head = _head("200 OK", "text/event-stream", None)
            return head + b"event: broken\ndata: {}\n\n"
        ctype, body = render(self.error, accept, self.show, frames=self.frames,
                             exception=self.exception)
        head = _head("500 Internal Server Error", ctype, len(body))
        return head if method == "HEAD" else head + body


def _head(status: str, ctype: str, length: int | None) -> bytes:
    lines = [
        f"HTTP/1.1 {status}",
        f"Content-Type: {ctype}",
        "Cache-Control: no-store",
        "X-Devreload-Error: 1",
        "Connection: close",
    ]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _refused(method: str, host: str | None) -> bytes:
    """The 403 for a ``Host`` devreload's pages do not answer (see ``hosts``)."""
    body = refusal_body(host or "")
    lines = ["HTTP/1.1 403 Forbidden", *(f"{n}: {v}" for n, v in REFUSAL_HEADERS),
             f"Content-Length: {len(body)}", "Connection: close"]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if method == "HEAD" else head + body


def _read_head(conn: socket.socket, data: bytes = b"") -> tuple[str, str, str, str | None]:
    while b"\r\n\r\n" not in data and b"\n\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
        if len(data) > MAX_HEAD:
            raise ValueError("request head too large")
    lines = data.decode("latin-1").splitlines()
    if not lines or len(lines[0].split()) < 2:
        raise ValueError("not an HTTP request")
    method, path = lines[0].split()[:2]
    accept = ""
    host: str | None = None
    for line in lines[1:]:
        if not line:
            break
        name, _, value = line.partition(":")
        if name.strip().lower() == "accept":
            accept = value.strip()
        elif name.strip().lower() == "host":
            host = value.strip()
    return method.upper(), path, accept, host
