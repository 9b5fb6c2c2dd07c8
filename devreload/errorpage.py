"""While the app is broken, the monitor answers on the app's own address.

Without this a browser sees "connection refused" (or a hang) and the developer has to
go and read the terminal. The monitor already holds the listening sockets, so when no
healthy worker is left it accepts the waiting connections itself and answers 500 with
the traceback, until a new worker is about to start (see ``ServingReloader``).
"""

from __future__ import annotations

import html
import re
import selectors
import socket
import threading
from collections.abc import Sequence
from typing import Any

from devreload.log import display_path
from devreload.messages import EVENTS_PATH

READ_TIMEOUT = 2.0
MAX_HEAD = 65536
#: Marks, in the page's selector, a handed-over connection waiting for its next request.
IDLE = "idle"

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<noscript><meta http-equiv="refresh" content="2"></noscript>
<style>
body {{ font: 15px/1.45 system-ui, sans-serif; margin: 2rem; color: #222; }}
h1 {{ font-size: 1.3rem; color: #b00020; margin: 0 0 .3rem; }}
p.where {{ font-family: ui-monospace, monospace; margin: 0 0 1rem; }}
pre {{ background: #f6f6f6; padding: 1rem; overflow-x: auto; border-left: 4px solid #b00020; }}
small {{ color: #666; }}
</style></head>
<body><h1>{title}</h1><p class="where">{where}</p><pre>{body}</pre>
{tail}</body></html>
"""
#: The end of the page while the app cannot start: it waits for the fix by itself.
WAITING = """<small>devreload shows this page until the app starts again; it reloads by itself
once you save a fix.</small>
<script>
(function poll() {
  fetch(location.href, {method: "HEAD", cache: "no-store"}).then(function (r) {
    if (!r.headers.get("X-Devreload-Error")) { location.reload(); }
    else { setTimeout(poll, 500); }
  }, function () { setTimeout(poll, 1000); });
})();
</script>"""

HIDDEN = "The app failed to start. The details are in the server's output."
_FRAME = re.compile(r'File "([^"]+)", line (\d+)')


def where(error: str) -> str:
    """The innermost ``file:line`` a traceback names, and its last line (the exception)."""
    frames = _FRAME.findall(error)
    lines = [line for line in error.strip().splitlines() if line.strip()]
    last = lines[-1].strip() if lines else "The app failed."
    if frames:
        path, line = frames[-1]
        return f"{display_path(path)}:{line}: {last}"
    return last


def render(
    error: str,
    accept: str,
    show: bool,
    *,
    title: str = "The app failed to start",
    hidden: str = HIDDEN,
    waiting: bool = True,
) -> tuple[str, bytes]:
    """The content type and body of the error response. ``waiting``: the page polls until
    the app is back (a page for one failed request leaves that to live reload instead)."""
    text = error if show else hidden
    if "text/html" in accept:
        page = PAGE.format(
            title=html.escape(title),
            where=html.escape(where(error) if show else ""),
            body=html.escape(text),
            tail=WAITING if waiting else "",
        )
        return "text/html; charset=utf-8", page.encode()
    return "text/plain; charset=utf-8", text.encode()


class ErrorPage:
    """Answers every request on the held sockets with the current error, from a thread."""

    def __init__(self, sockets: Sequence[socket.socket], show: bool = True) -> None:
        self.sockets = list(sockets)
        self.show = show
        self.error = ""
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        #: Handed-over keep-alive connections waiting for their next request.
        self._idle: list[socket.socket] = []

    def start(self, error: str) -> None:
        self.error = error
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
                method, path, accept = _read_head(conn, data)
                conn.sendall(self._response(method, path, accept))
            except (OSError, ValueError):
                return

    def _response(self, method: str, path: str, accept: str) -> bytes:
        if path.startswith(EVENTS_PATH):
            head = _head("200 OK", "text/event-stream", None)
            return head + b"event: broken\ndata: {}\n\n"
        ctype, body = render(self.error, accept, self.show)
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


def _read_head(conn: socket.socket, data: bytes = b"") -> tuple[str, str, str]:
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
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "accept":
            accept = value.strip()
    return method.upper(), path, accept
