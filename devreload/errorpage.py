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

from devreload.hosts import REFUSAL_HEADERS, host_allowed, refusal_body
from devreload.log import display_path
from devreload.messages import EVENTS_PATH, Frame

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
.frame p {{ font-family: ui-monospace, monospace; margin: 1rem 0 .2rem; }}
.frame pre {{ margin: 0; padding: .5rem 1rem; border-left-color: #bbb; }}
.frame .no {{ display: inline-block; min-width: 3em; color: #888; user-select: none; }}
.frame mark {{ display: block; background: #fde2e4; }}
.frame mark.failing {{ background: #f9c0c5; font-weight: bold; }}
details.library {{ margin: 1rem 0; color: #555; }}
details.library summary {{ cursor: pointer; }}
pre.exception {{ font-weight: bold; }}
small {{ color: #666; }}
</style></head>
<body><h1>{title}</h1><p class="where">{where}</p>{body}
{tail}</body></html>
"""
#: The end of the page while the app cannot start: it waits for the fix by itself.
WAITING = """<small>devreload shows this page until the app starts again; it reloads by itself
once you save a fix.</small>
<script>
(function poll() {
  fetch(location.href, {method: "HEAD", cache: "no-store"}).then(function (r) {
    if (!r.headers.get("X-Devreload-Error")) { location.reload(); }
    else { setTimeout(poll, 100); }
  }, function () { setTimeout(poll, 250); });
})();
</script>"""

HIDDEN = "The app failed to start. The details are in the server's output."
_FRAME = re.compile(r'File "([^"]+)", line (\d+)')


def where(error: str, frames: Sequence[Frame] = (), exception: str = "") -> str:
    """The innermost ``file:line`` of the app's own code (of a traceback's text, without
    ``frames``), and the last line of the exception (with frames, the exception's own
    rather than devreload's line about it)."""
    lines = [line for line in (exception or error).strip().splitlines() if line.strip()]
    last = lines[-1].strip() if lines else "The app failed."
    if frames:
        own = [line for line in lines if not line.startswith("devreload: ")]
        frame = ([f for f in frames if f.user] or list(frames))[-1]
        return f"{display_path(frame.filename)}:{frame.lineno}: {own[-1] if own else last}"
    found = _FRAME.findall(error)
    if found:
        path, line = found[-1]
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
    frames: Sequence[Frame] = (),
    exception: str = "",
) -> tuple[str, bytes]:
    """The content type and body of the error response. ``waiting``: the page polls until
    the app is back (a page for one failed request leaves that to live reload instead).
    With ``frames`` (and ``exception``) the HTML shows the app's frames with their source,
    and the libraries' folded; the plain text is always ``error``."""
    text = error if show else hidden
    if "text/html" in accept:
        if show and frames:
            body = render_frames(frames) + f'<pre class="exception">{html.escape(exception)}</pre>'
        else:
            body = f"<pre>{html.escape(text)}</pre>"
        page = PAGE.format(
            title=html.escape(title),
            where=html.escape(where(error, frames, exception) if show else ""),
            body=body,
            tail=WAITING if waiting else "",
        )
        return "text/html; charset=utf-8", page.encode()
    return "text/plain; charset=utf-8", text.encode()


def render_frames(frames: Sequence[Frame]) -> str:
    """The app's frames first, each with its source and the line it ran marked (the
    innermost one: ``failing``), then every library frame in one ``<details>``, folded,
    as Django's and Werkzeug's pages do: the library frames are rarely the bug."""
    user = [f for f in frames if f.user] or list(frames[-1:])  # none: the innermost
    library = [f for f in frames if not any(f is u for u in user)]
    parts = [_frame_html(f, failing=f is user[-1]) for f in user]
    if library:
        names = ", ".join(dict.fromkeys(_package(f.filename) for f in library))
        count = f"{len(library)} library frame{'s' if len(library) > 1 else ''}"
        parts.append(
            f'<details class="library"><summary>{count} ({html.escape(names)})</summary>\n'
            + "".join(_frame_html(f) for f in library)
            + "</details>\n"
        )
    return '<div class="frames">\n' + "".join(parts) + "</div>\n"


def _frame_html(frame: Frame, failing: bool = False) -> str:
    where = f"{display_path(frame.filename)}, line {frame.lineno}"
    if frame.name:
        where += f", in {frame.name}"
    lines = []
    for number, source in enumerate(frame.context, start=frame.first):
        line = f'<span class="no">{number}</span>{html.escape(source)}'
        if number == frame.lineno:
            line = f"<mark{FAILING if failing else ''}>{line}</mark>"
        else:
            line += "\n"
        lines.append(line)
    source = f"<pre>{''.join(lines)}</pre>" if lines else ""
    kind = "frame user" if frame.user else "frame"
    return f'<div class="{kind}"><p>{html.escape(where)}</p>{source}</div>\n'


FAILING = ' class="failing"'
_PARENTS = re.compile(r"^(site-packages|dist-packages|python\d+(\.\d+)?)$")


def _package(filename: str) -> str:
    """The library a frame's file belongs to, by name (``paste``, ``json``, ``devreload``)."""
    parts = filename.replace("\\", "/").split("/")
    for index in range(len(parts) - 2, -1, -1):
        if _PARENTS.match(parts[index]):
            return parts[index + 1].removesuffix(".py")
    if filename.startswith("<"):
        return "Python"
    return parts[-2] if len(parts) > 1 else filename


class ErrorPage:
    """Answers every request on the held sockets with the current error, from a thread."""

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
