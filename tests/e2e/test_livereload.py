"""Live reload in real processes: ten open tabs' event streams under waitress neither
starve the app nor delay a restart; and (when chromium and Playwright are there) a real
headless browser follows edits of the code, a stylesheet and a broken app."""

from __future__ import annotations

import json
import re
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import Proc, save_like_editor, wait_until

SERVING_RE = r"serving on http://127\.0\.0\.1:(\d+)"
EVENTS = "/__devreload__/events"
ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artefacts"
SHUTDOWN_INTERVAL = 3.0

APP = '''\
"""An HTML app for the live-reload tests."""
import os

MESSAGE = "first version"


def make_app(global_config, **settings):
    def app(environ, start_response):
        path = environ["PATH_INFO"]
        if path == "/static/site.css":
            with open(os.path.join(global_config["here"], "static", "site.css"), "rb") as f:
                body = f.read()
            start_response("200 OK", [("Content-Type", "text/css"),
                                      ("Cache-Control", "no-store")])
            return [body]
        body = (
            '<!doctype html><html><head><link rel="stylesheet" href="/static/site.css">'
            f'</head><body><h1 id="message">{MESSAGE}</h1>'
            f'<p id="pid">{os.getpid()}</p></body></html>'
        ).encode()
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    return app
'''

INI = f"""\
[DEFAULT]
http_port = 0

[pipeline:main]
pipeline = livereload app

[filter:livereload]
use = egg:devreload#livereload

[app:app]
use = call:app:make_app

[server:main]
use = egg:devreload
listen = 127.0.0.1:%(http_port)s
shutdown_interval = {SHUTDOWN_INTERVAL}
"""

CSS = "h1 { color: rgb(255, 0, 0); }\n"

Spawn = Callable[..., Proc]


def make_project(project: Path) -> None:
    (project / "app.py").write_text(APP)
    (project / "development.ini").write_text(INI)
    (project / "static").mkdir()
    (project / "static" / "site.css").write_text(CSS)


def serve(spawn: Spawn, project: Path, *args: str) -> tuple[Proc, int]:
    make_project(project)
    proc = spawn([sys.executable, "-m", "devreload", "serve", "development.ini", *args])
    return proc, int(proc.wait_for(SERVING_RE)[1])


def get(port: int, path: str = "/", timeout: float = 5.0) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as response:
        return response.read().decode()  # type: ignore[no-any-return]


def wait_text(port: int, text: str, timeout: float = 15.0) -> str:
    def answered() -> str | None:
        try:
            body = get(port)
        except (OSError, urllib.error.URLError):
            return None
        return body if text in body else None

    return str(wait_until(answered, timeout=timeout, interval=0.02))


class Stream:
    """One browser tab's event stream, over a raw socket."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.sendall(f"GET {EVENTS} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        self.data = b""

    def read_until(self, pattern: bytes, timeout: float = 5.0) -> bytes:
        deadline = time.monotonic() + timeout
        while pattern not in self.data:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{pattern!r} not received: {self.data!r}"
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(65536)
            assert chunk, f"stream ended before {pattern!r}: {self.data!r}"
            self.data += chunk
        return self.data

    def boot(self) -> str:
        found = re.search(rb"event: hello\ndata: (.*)\n", self.read_until(b"event: hello"))
        assert found
        return str(json.loads(found.group(1))["boot"])

    def wait_end(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"stream still open: {self.data!r}"
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return
            if not chunk:
                return
            self.data += chunk

    def close(self) -> None:
        self.sock.close()


def test_ten_open_streams_neither_starve_the_app_nor_delay_a_reload(
    spawn: Spawn, project: Path
) -> None:
    proc, port = serve(spawn, project, "--reload")
    wait_text(port, "first version")
    # The first event request may only hook waitress (LiveReload by hand); later ones stream.
    warm = Stream(port)
    first_boot = warm.boot()
    warm.close()
    streams = [Stream(port) for _ in range(10)]
    try:
        assert {stream.boot() for stream in streams} == {first_boot}
        started = time.monotonic()
        page = get(port, timeout=2.0)
        answered = time.monotonic() - started
        assert "first version" in page and "data-devreload" in page
        print(f"a page with ten streams open: {answered * 1000:.0f} ms")

        mark = proc.mark()
        saved = time.monotonic()
        save_like_editor(project / "app.py", APP.replace("first version", "second version"))
        for stream in streams:
            stream.wait_end(SHUTDOWN_INTERVAL)
        wait_text(port, "second version", timeout=SHUTDOWN_INTERVAL)
        took = time.monotonic() - saved
        restarted = proc.wait_for(r"restarted in (\d+) ms", start=mark)
        assert took < SHUTDOWN_INTERVAL, "the open streams held the old worker until killed"
        print(f"save to new page with ten streams open: {took * 1000:.0f} ms; {restarted[0]}")

        again = Stream(port)
        assert again.boot() != first_boot
        again.close()
    finally:
        for stream in streams:
            stream.close()
    proc.signal(15)
    assert proc.wait_exit() == 0
    assert "Traceback" not in proc.output


# --------------------------------------------------------------------------- the browser


# No filter: ``devreload serve --reload`` wraps the app by itself.
PLAIN_INI = """\
[app:main]
use = call:app:make_app

[server:main]
use = egg:devreload
listen = 127.0.0.1:0

[devreload]
static_files = static/*.css
"""


def test_a_stylesheet_saved_the_way_vim_saves_is_pushed_once(
    spawn: Spawn, project: Path
) -> None:
    """vim's save is five events on the file (renamed away, made, written, closed, its
    mode set): one push, once the file is whole."""
    make_project(project)
    (project / "static" / "other.css").write_text(CSS)
    (project / "development.ini").write_text(PLAIN_INI)
    proc = spawn([sys.executable, "-m", "devreload", "serve", "development.ini", "--reload"])
    port = int(proc.wait_for(SERVING_RE)[1])
    wait_text(port, "first version")
    mark = proc.mark()
    save_like_editor(project / "static" / "site.css", CSS.replace("255, 0, 0", "0, 0, 255"),
                     mode="vim")
    proc.wait_for(r"static/site\.css changed; pushed to the browser", start=mark)
    # Saved the same way, the other file ends on the same kind of event (its mode set
    # back: not known whole, the full window), so pushes follow their saves in order: once
    # other.css is pushed, any second push of site.css would have been said.
    save_like_editor(project / "static" / "other.css", CSS.replace("255, 0, 0", "0, 255, 0"),
                     mode="vim")
    proc.wait_for(r"static/other\.css changed; pushed to the browser", start=mark)
    assert proc.count(r"site\.css changed; pushed", start=mark) == 1
    assert proc.count(r"restarted in", start=mark) == 0


def text_of(page: Any, selector: str) -> str:
    return str(page.text_content(selector) or "")


def message_is(text: str) -> str:
    return (
        "document.getElementById('message') !== null && "
        f"document.getElementById('message').textContent === {json.dumps(text)}"
    )


def test_the_browser_follows_code_css_and_a_broken_app(
    spawn: Spawn, project: Path, browser_page: Any, request: pytest.FixtureRequest
) -> None:
    page = browser_page
    shots: list[tuple[str, bytes]] = []
    make_project(project)
    (project / "development.ini").write_text(PLAIN_INI)
    proc = spawn([sys.executable, "-m", "devreload", "serve", "development.ini", "--reload"])
    port = int(proc.wait_for(SERVING_RE)[1])
    try:
        wait_text(port, "first version")
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_function(message_is("first version"))
        shots.append(("1-first", page.screenshot()))

        # Edit the code: the page shows the new text with no action in the browser.
        saved = time.monotonic()
        save_like_editor(project / "app.py", APP.replace("first version", "second version"))
        page.wait_for_function(message_is("second version"), timeout=15000)
        print(f"save to new text in the browser: {(time.monotonic() - saved) * 1000:.0f} ms")
        shots.append(("2-second", page.screenshot()))

        # Edit the stylesheet: the computed colour changes, the worker stays the same.
        # (The reloaded page must be listening first: an event sent before is not kept.)
        page.wait_for_selector("script[data-devreload][data-connected]", state="attached")
        pid = text_of(page, "#pid")
        colour = "getComputedStyle(document.getElementById('message')).color"
        assert page.evaluate(colour) == "rgb(255, 0, 0)"
        save_like_editor(project / "static" / "site.css", CSS.replace("255, 0, 0", "0, 0, 255"))
        page.wait_for_function(f"{colour} === 'rgb(0, 0, 255)'", timeout=15000)
        assert text_of(page, "#pid") == pid
        assert pid in get(port)  # the same worker still answers
        shots.append(("3-css", page.screenshot()))

        # Break the app: the browser shows the monitor's error page; fix it: the app is back.
        save_like_editor(project / "app.py", APP.replace("def make_app(", "def make_app(:"))
        page.wait_for_function("document.title === 'The app failed to start'", timeout=15000)
        shots.append(("4-broken", page.screenshot()))
        save_like_editor(project / "app.py", APP.replace("first version", "fixed version"))
        page.wait_for_function(message_is("fixed version"), timeout=15000)
        shots.append(("5-fixed", page.screenshot()))
    except BaseException:
        ARTEFACTS.mkdir(exist_ok=True)
        shots.append(("last", page.screenshot()))
        for name, png in shots:
            (ARTEFACTS / f"{request.node.name}-{name}.png").write_bytes(png)
        raise
    proc.signal(15)
    assert proc.wait_exit() == 0


@pytest.mark.parametrize("off", ["--no-live-reload", "live=false"])
def test_live_reload_is_on_by_default_and_can_be_switched_off(
    spawn: Spawn, project: Path, off: str
) -> None:
    make_project(project)
    ini = PLAIN_INI + "live_reload = %(live)s\n"
    (project / "development.ini").write_text("[DEFAULT]\nlive = true\n\n" + ini)
    on = spawn([sys.executable, "-m", "devreload", "serve", "development.ini", "--reload"])
    port = int(on.wait_for(SERVING_RE)[1])
    assert "data-devreload" in wait_text(port, "first version")
    args = [off]
    quiet = spawn(
        [sys.executable, "-m", "devreload", "serve", "development.ini", "--reload", *args]
    )
    port = int(quiet.wait_for(SERVING_RE)[1])
    assert "data-devreload" not in wait_text(port, "first version")


def test_eight_tabs_all_follow_a_reload(spawn: Spawn, project: Path, browser_page: Any) -> None:
    """More tabs than a browser's six connections per host: they still all load and all
    reload (one tab holds the event stream and tells the others)."""
    make_project(project)
    (project / "development.ini").write_text(PLAIN_INI)
    proc = spawn([sys.executable, "-m", "devreload", "serve", "development.ini", "--reload"])
    port = int(proc.wait_for(SERVING_RE)[1])
    wait_text(port, "first version")
    pages = [browser_page] + [browser_page.context.new_page() for _ in range(7)]
    for page in pages:
        page.goto(f"http://127.0.0.1:{port}/", timeout=10000)
        page.wait_for_selector("script[data-devreload][data-connected]", state="attached")
    save_like_editor(project / "app.py", APP.replace("first version", "second version"))
    for page in pages:
        page.wait_for_function(message_is("second version"), timeout=15000)
