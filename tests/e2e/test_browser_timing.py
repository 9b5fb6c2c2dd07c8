"""What the developer waits for, measured in a real headless chromium tab: save to the new
text on screen, and save to the new stylesheet, ten saves each. The figures are printed
(run with -s), not asserted: a test never times; the benchmark and the notes quote them."""

from __future__ import annotations

import functools
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from helpers import Proc, Spawn, save_like_editor, wait_until

SERVING_RE = r"serving on http://127\.0\.0\.1:(\d+)"
SAVES = 10

APP = '''\
import os

MESSAGE = "version 0"


def app(environ, start_response):
    if environ["PATH_INFO"] == "/site.css":
        with open(os.path.join(os.path.dirname(__file__), "site.css"), "rb") as f:
            body = f.read()
        start_response("200 OK", [("Content-Type", "text/css"), ("Cache-Control", "no-store")])
        return [body]
    body = ('<!doctype html><html><head><link rel="stylesheet" href="/site.css"></head>'
            f'<body><h1 id="message">{MESSAGE}</h1></body></html>').encode()
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                              ("Content-Length", str(len(body)))])
    return [body]
'''

RUN = """\
import devreload
from app import app

devreload.serve(app, reload=True, port=0, static_files=["site.css"])
"""

#: In every document the tab loads: when each text of #message first appeared, on the
#: wall clock (ms), whether it came by a reload or by a body swapped in place.
SEEN = """
window.seenAt = {};
new MutationObserver(() => {
  const message = document.getElementById('message');
  if (message && !(message.textContent in window.seenAt)) {
    window.seenAt[message.textContent] = performance.timeOrigin + performance.now();
  }
}).observe(document, {subtree: true, childList: true, characterData: true});
"""
#: When the newest swapped-in stylesheet arrived, on the wall clock (ms).
CSS_AT = """(() => {
  const swapped = performance.getEntriesByType('resource')
    .filter(e => e.name.includes('devreload='));
  return performance.timeOrigin + swapped[swapped.length - 1].responseEnd;
})()"""


def _restarts_said(proc: Proc, times: int) -> bool:
    return proc.count(r"restarted in") >= times


def _summary(name: str, samples: list[float]) -> str:
    return (f"{name}: median {statistics.median(samples):.0f} ms "
            f"[{min(samples):.0f}-{max(samples):.0f}] over {len(samples)} saves")


def test_save_to_screen(spawn: Spawn, project: Path, browser_page: Any) -> None:
    page = browser_page
    (project / "app.py").write_text(APP)
    (project / "site.css").write_text("h1 { color: rgb(0, 0, 0); }\n")
    (project / "run.py").write_text(RUN)
    proc = spawn([sys.executable, "run.py"])
    port = int(proc.wait_for(SERVING_RE)[1])
    page.add_init_script(SEEN)
    page.goto(f"http://127.0.0.1:{port}/")
    connected = "script[data-devreload][data-connected]"
    page.wait_for_selector(connected, state="attached")

    text: list[float] = []
    in_place = 0
    for i in range(1, SAVES + 1):
        loaded = page.evaluate("performance.timeOrigin")
        saved = time.time() * 1000
        save_like_editor(project / "app.py", APP.replace("version 0", f"version {i}"))
        page.wait_for_function(
            f"document.getElementById('message').textContent === 'version {i}'", timeout=15000)
        text.append(page.evaluate(f"window.seenAt['version {i}']") - saved)
        in_place += page.evaluate("performance.timeOrigin") == loaded
        page.wait_for_selector(connected, state="attached")
        # The new worker answers before the monitor has heard it is ready: a save in
        # between would join this restart, one line for both.
        wait_until(functools.partial(_restarts_said, proc, i))

    css: list[float] = []
    colour = "getComputedStyle(document.getElementById('message')).color"
    for i in range(1, SAVES + 1):
        saved = time.time() * 1000
        save_like_editor(project / "site.css", f"h1 {{ color: rgb({i}, 0, 0); }}\n")
        page.wait_for_function(f"{colour} === 'rgb({i}, 0, 0)'", timeout=15000)
        css.append(page.evaluate(CSS_AT) - saved)

    print()
    print(_summary("save to new text in the tab", text))
    print(f"  the body swapped in place, without a reload: {in_place} of {SAVES} saves")
    print(_summary("save to new stylesheet in the tab", css))
    assert len(text) == len(css) == SAVES
    assert in_place == SAVES, "a page without scripts of its own is never reloaded"
    assert proc.count(r"restarted in") == SAVES, "a save after the last restart's line"
