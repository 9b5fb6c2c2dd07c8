"""A framework's static files are pushed to open pages, not restarted: a stylesheet
edited under Flask's static folder is swapped in a real headless chromium tab, with no
page reload and no new worker."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from helpers import save_like_editor
from served import SERVING_RE, Spawn, devreload_serve, stop, wait_body

PROJECTS = Path(__file__).resolve().parents[1] / "projects"
COLOUR = "getComputedStyle(document.querySelector('h1')).color"


def test_a_flask_stylesheet_is_swapped_without_a_reload_or_a_restart(
    spawn: Spawn, project: Path, browser_page: Any
) -> None:
    page = browser_page
    shutil.copytree(PROJECTS / "flaskr", project, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    proc = devreload_serve(spawn, "flaskr:create_app()", "--reload", "--port", "0", "-v")
    url = proc.wait_for(SERVING_RE, timeout=20)[1]
    wait_body(f"{url}/auth/login", r"<h1>Log In</h1>")
    proc.wait_for(r"pushing changes to open pages, without a restart: .*flaskr/static/\*\*",
                  start=0)
    page.goto(f"{url}/auth/login")
    page.wait_for_selector("script[data-devreload][data-connected]", state="attached")
    page.evaluate("window.devreloadTestMark = 'same page'")
    assert page.evaluate(COLOUR) == "rgb(55, 123, 168)"

    mark = len(proc.lines)
    css = project / "flaskr" / "static" / "style.css"
    save_like_editor(css, css.read_text().replace("color: #377ba8", "color: rgb(1, 2, 3)", 1))
    page.wait_for_function(f"{COLOUR} === 'rgb(1, 2, 3)'", timeout=15000)
    assert page.evaluate("window.devreloadTestMark") == "same page", "the page reloaded"
    proc.wait_for(r"flaskr/static/style\.css changed; pushed to the browser", start=mark)
    assert proc.count(r"restarted in", start=mark) == 0
    assert proc.count(r"worker \d+ started", start=mark) == 0
    assert stop(proc) == 0
