"""After a restart an open tab gets the new page's body in place, with its scroll position,
when nothing but the body could differ: the same <head>, and no script of the page's own
in either page (a script's listeners and state would not survive a swap). Anything else
reloads the tab. Real processes, a real headless chromium tab."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from helpers import Proc, Spawn, save_like_editor

SERVING_RE = r"serving on http://127\.0\.0\.1:(\d+)"
CONNECTED = "script[data-devreload][data-connected]"

APP = '''\
TITLE = "one"
MESSAGE = "version 0"
SCRIPT = ""


def app(environ, start_response):
    filler = "".join(f"<p>line {i}</p>" for i in range(300))
    body = (f"<!doctype html><html><head><title>{TITLE}</title></head><body>"
            f"<h1 id='message'>{MESSAGE}</h1>{filler}{SCRIPT}</body></html>").encode()
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                              ("Content-Length", str(len(body)))])
    return [body]
'''

RUN = """\
import devreload
from app import app

devreload.serve(app, reload=True, port=0)
"""


def _open(spawn: Spawn, project: Path, page: Any, script: str = "") -> Proc:
    (project / "app.py").write_text(APP.replace('SCRIPT = ""', f"SCRIPT = {script!r}"))
    (project / "run.py").write_text(RUN)
    proc = spawn([sys.executable, "run.py"])
    port = int(proc.wait_for(SERVING_RE)[1])
    page.goto(f"http://127.0.0.1:{port}/")
    page.wait_for_selector(CONNECTED, state="attached")
    return proc


def _save(project: Path, old: str, new: str) -> None:
    source = project / "app.py"
    save_like_editor(source, source.read_text().replace(old, new))


def _follow(page: Any, text: str) -> None:
    page.wait_for_function(
        f"document.getElementById('message').textContent === {text!r}", timeout=15000)
    page.wait_for_selector(CONNECTED, state="attached")


def test_the_new_body_is_swapped_in_with_the_scroll_kept(
    spawn: Spawn, project: Path, browser_page: Any
) -> None:
    page = browser_page
    _open(spawn, project, page)
    loaded = page.evaluate("performance.timeOrigin")
    page.evaluate("window.scrollTo(0, 600)")
    page.evaluate("window.kept = 'state of the tab'")
    for i in (1, 2):  # the second swap works off the first one's tag
        boot = page.evaluate(f"document.querySelector('{CONNECTED}').dataset.boot")
        _save(project, f"version {i - 1}", f"version {i}")
        _follow(page, f"version {i}")
        new_boot = page.evaluate(f"document.querySelector('{CONNECTED}').dataset.boot")
        assert new_boot != boot
        assert page.evaluate(f"document.querySelector('{CONNECTED}').dataset.connected") == new_boot
    assert page.evaluate("performance.timeOrigin") == loaded, "the tab was reloaded"
    assert page.evaluate("window.kept") == "state of the tab"
    assert page.evaluate("window.scrollY") == 600
    assert page.evaluate("document.querySelectorAll('script[data-devreload]').length") == 1


def test_a_page_with_a_script_of_its_own_is_reloaded(
    spawn: Spawn, project: Path, browser_page: Any
) -> None:
    page = browser_page
    _open(spawn, project, page, script="<script>window.own = Date.now();</script>")
    loaded = page.evaluate("performance.timeOrigin")
    _save(project, "version 0", "version 1")
    _follow(page, "version 1")
    assert page.evaluate("performance.timeOrigin") != loaded
    assert page.evaluate("typeof window.own") == "number", "its script ran again"


def test_a_new_head_reloads_the_tab(spawn: Spawn, project: Path, browser_page: Any) -> None:
    page = browser_page
    _open(spawn, project, page)
    loaded = page.evaluate("performance.timeOrigin")
    _save(project, 'TITLE = "one"', 'TITLE = "two"')
    page.wait_for_function("document.title === 'two'", timeout=15000)
    assert page.evaluate("performance.timeOrigin") != loaded
