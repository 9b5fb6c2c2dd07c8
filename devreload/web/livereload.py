"""Live reload's shared half: the event hub that fans events out to open pages, the
script tag (the client is ``livereload.js`` beside this file) and how it goes into a page.

The script listens to server-sent events on ``/__devreload__/events``: the first event
names this worker's boot id, so a page whose id differs was made by older code and
reloads, once, but only after the new worker is answering (never onto a refused
connection). Static files that need no restart are pushed as ``css`` (swapped in place)
or ``reload`` events. The WSGI and ASGI wrappers are in :mod:`~devreload.web.wsgi` and
:mod:`~devreload.web.asgi`; waitress serves the streams from its main loop
(:mod:`~devreload.web.waitress_streams`).
"""

from __future__ import annotations

import html
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from devreload.log import default_logger, display_path
from devreload.web.hosts import host_allowed
from devreload.wire.contract import EVENTS_PATH
from devreload.worker import proxy

#: Everything devreload serves itself lives here: only allowed hosts get it.
OWN_PREFIX = EVENTS_PATH.rsplit("/", 1)[0] + "/"

#: A comment line every so often keeps proxies and the server's idle timeout away.
KEEPALIVE_INTERVAL = 15.0
#: Largest HTML body (by its Content-Length) read into memory to inject the script.
MAX_BUFFER = 8 * 1024 * 1024

Deliver = Callable[[bytes | None], None]


class _ThisProcess:
    """What live reload says once per process: a forked worker is another process, with
    a boot id of its own, and tells its first page and its CSP warning anew, as a fresh
    one would."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        #: A page that saw another boot id reloads.
        self.boot_id = f"{self.pid}-{time.time_ns()}"
        self.page_told = False
        self.csp_warned = False


_process: _ThisProcess | None = None


def this_process() -> _ThisProcess:
    global _process
    if _process is None or _process.pid != os.getpid():
        _process = _ThisProcess()
    return _process


def boot_id() -> str:
    """This process's id: a forked or spawned worker always gets a new one."""
    return this_process().boot_id


def sse(event: str, data: Any) -> bytes:
    """One server-sent event, its data as JSON."""
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


KEEPALIVE = b": keep-alive\n\n"
RELOADING = sse("reloading", {})
SSE_HEADERS = [
    ("Content-Type", "text/event-stream"),
    ("Cache-Control", "no-store"),
    ("X-Accel-Buffering", "no"),
]


def hello() -> bytes:
    """The first event of a stream: a page made by another worker reloads on it."""
    process = this_process()
    if not process.page_told:
        process.page_told = True
        proxy.milestone("page told")
    return sse("hello", {"boot": process.boot_id})


# --------------------------------------------------------------------------- the hub


class EventHub:
    """Fans events out to every open stream, whatever serves it.

    A subscriber is a ``deliver(message)`` callable that must not block: it hands the
    bytes to its own loop (waitress's trigger, an asyncio loop, a queue). ``None`` means
    the stream must end now.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: dict[int, Deliver] = {}
        self._next = 0
        self._closed = False
        self._attached = False
        self._ticker: threading.Thread | None = None
        #: Set once a LiveReload exists in this process: only then are streams served.
        self.enabled = False
        #: Names the streams answer besides localhost and IP literals: those of every
        #: LiveReload on this hub (see ``hosts``).
        self.allowed_hosts: tuple[str, ...] = ()

    def allow(self, names: Iterable[str]) -> None:
        """Answer these ``Host`` names too (``hosts.host_allowed``'s rules)."""
        with self._lock:
            self.allowed_hosts = tuple(dict.fromkeys((*self.allowed_hosts, *names)))

    def host_allowed(self, host: str | None) -> bool:
        """Whether a stream may be served to a request with this ``Host``."""
        return host_allowed(host, self.allowed_hosts)

    def subscribe(self, deliver: Deliver) -> int:
        """Register a stream; a closed hub ends it at once."""
        with self._lock:
            closed = self._closed
            if not closed:
                self._next += 1
                token = self._next
                self._subscribers[token] = deliver
                self._start_ticker()
        if closed:
            deliver(None)
            return 0
        return token

    def unsubscribe(self, token: int) -> None:
        with self._lock:
            self._subscribers.pop(token, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def publish(self, event: str, data: Any) -> None:
        self._send(sse(event, data))

    def publish_static(self, path: str) -> None:
        """A static file changed: a stylesheet is swapped, anything else reloads."""
        kind = "css" if path.lower().endswith(".css") else "reload"
        self.publish(kind, {"path": display_path(path)})

    def close(self) -> None:
        """End every stream now and refuse new ones: the server is stopping. Each page is
        told first, so that it reconnects at once (its request waits in the listening
        socket's queue for the next worker) rather than after a back-off."""
        with self._lock:
            self._closed = True
            subscribers = list(self._subscribers.values())
            self._subscribers.clear()
        for deliver in subscribers:
            deliver(RELOADING)
            deliver(None)

    def reopen(self) -> None:
        """Accept streams again after ``close()``."""
        with self._lock:
            self._closed = False

    def attach_to_worker(self) -> None:
        """Under a devreload monitor, forward its static-file changes to the streams."""
        with self._lock:
            if self._attached or not proxy.is_active():
                return
            self._attached = True
        proxy.get_reloader().add_static_listener(self.publish_static)

    def _send(self, message: bytes) -> None:
        with self._lock:
            subscribers = list(self._subscribers.values())
        for deliver in subscribers:
            deliver(message)

    def _start_ticker(self) -> None:
        if self._ticker is None or not self._ticker.is_alive():
            self._ticker = threading.Thread(target=self._tick, name="devreload-keepalive",
                                            daemon=True)
            self._ticker.start()

    def _tick(self) -> None:
        while True:
            time.sleep(KEEPALIVE_INTERVAL)
            self._send(KEEPALIVE)


HUB = EventHub()


def open_streams() -> None:
    """Accept streams again: a server is starting (this process may have served before)."""
    HUB.reopen()


def close_streams() -> None:
    """End every open event stream: call it when the server starts to stop, so that no
    stream delays the restart. Thread-safe; not from a signal handler."""
    HUB.close()


# --------------------------------------------------------------------------- the page


def _read_client() -> str:
    """The browser client, a plain file beside this module (importlib.resources would
    import zipfile and more into a worker's first request)."""
    with open(os.path.join(os.path.dirname(__file__), "livereload.js"), encoding="utf-8") as f:
        return f.read()


#: Read when the module is imported: the worker template has it ready for every worker.
CLIENT_SOURCE = _read_client()


def script(events_url: str = EVENTS_PATH, nonce: str | None = None) -> bytes:
    """The tag injected into pages, carrying this worker's boot id and the stream's URL."""
    attr = f' nonce="{html.escape(nonce)}"' if nonce else ""
    boot, url = html.escape(boot_id()), html.escape(events_url)
    source = CLIENT_SOURCE.replace("</", "<\\/")
    text = f'<script data-devreload{attr} data-boot="{boot}" data-url="{url}">\n{source}</script>'
    return text.encode()


_NONCE = re.compile(r"'nonce-([A-Za-z0-9+/_=-]+)'")


def csp_nonce(policies: Iterable[str]) -> str | None:
    """The nonce that lets our inline script run under these Content-Security-Policy values."""
    for directive in ("script-src-elem", "script-src", "default-src"):
        for policy in policies:
            for part in policy.split(";"):
                words = part.split()
                if words and words[0].lower() == directive:
                    found = _NONCE.search(part)
                    if found:
                        return found.group(1)
    return None


def csp_blocks_script(policies: Iterable[str]) -> str | None:
    """The directive of these Content-Security-Policy values that blocks our inline script
    (one without 'unsafe-inline' and without a nonce for us to use), or None. A hash or
    'strict-dynamic' turns 'unsafe-inline' off; every policy given is enforced."""
    for policy in policies:
        parts: dict[str, list[str]] = {}
        for part in policy.split(";"):
            words = part.split()
            if words:
                parts.setdefault(words[0].lower(), [w.lower() for w in words[1:]])
        for directive in ("script-src-elem", "script-src", "default-src"):
            if directive not in parts:
                continue
            sources = parts[directive]
            if any(s.startswith("'nonce-") for s in sources):
                break
            inline_off = "'strict-dynamic'" in sources or any(
                s.startswith(("'sha256-", "'sha384-", "'sha512-")) for s in sources)
            if "'unsafe-inline'" not in sources or inline_off:
                return " ".join([directive, *sources])
            break
    return None


def warn_blocking_csp(policies: Iterable[str]) -> None:
    """Say once, in the worker's log, that a page's CSP keeps live reload out of it:
    otherwise pages silently stop following reloads, with a note in the browser console."""
    process = this_process()
    if process.csp_warned:
        return
    blocking = csp_blocks_script(policies)
    if blocking is None:
        return
    process.csp_warned = True
    default_logger().warning(
        "a page's Content-Security-Policy (%s) blocks the live-reload script, so pages "
        "with it do not follow reloads; add a nonce to script-src ('nonce-...', devreload "
        "puts it on its script) or turn live reload off (live_reload = false, "
        "--no-live-reload)", blocking)


def tag_for(headers: Iterable[tuple[str, str]], events_url: str) -> bytes:
    """The script tag for a page with these headers (its CSP may ask for a nonce)."""
    policies = [v for n, v in headers if n.lower() == "content-security-policy"]
    warn_blocking_csp(policies)
    return script(events_url, csp_nonce(policies))
