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
<small>devreload shows this page until the app starts again; it reloads by itself
once you save a fix.</small>
<script>
(function poll() {{
  fetch(location.href, {{method: "HEAD", cache: "no-store"}}).then(function (r) {{
    if (!r.headers.get("X-Devreload-Error")) {{ location.reload(); }}
    else {{ setTimeout(poll, 500); }}
  }}, function () {{ setTimeout(poll, 1000); }});
}})();
</script></body></html>
"""

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


def render(error: str, accept: str, show: bool) -> tuple[str, bytes]:
    """The content type and body of the error response."""
    text = error if show else HIDDEN
    if "text/html" in accept:
        page = PAGE.format(
            title="The app failed to start",
            where=html.escape(where(error) if show else ""),
            body=html.escape(text),
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

    def start(self, error: str) -> None:
        self.error = error
        if self._thread is None and self.sockets:
            self._stop.clear()
            self._thread = threading.Thread(target=self._serve, name="devreload-error-page",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Returns once no connection will be accepted here any more."""
        if self._thread is None:
            return
        self._stop.set()
        self._wake_w.send(b"x")
        self._thread.join()
        self._thread = None
        while self._drain_wake():
            pass

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
            while not self._stop.is_set():
                for key, _ in selector.select():
                    if self._stop.is_set() or key.fileobj is self._wake_r:
                        break
                    listener: Any = key.fileobj
                    try:
                        conn, _ = listener.accept()
                    except (BlockingIOError, InterruptedError):
                        continue
                    threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(READ_TIMEOUT)
            try:
                method, path, accept = _read_head(conn)
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


def _read_head(conn: socket.socket) -> tuple[str, str, str]:
    data = b""
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
