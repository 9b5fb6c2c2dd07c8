"""Live reload reaches a page without ``</body>`` (the Flask tutorial's base template has
none): the script goes at the end of the document, and a real headless chromium (when it
and Playwright are there) reloads the page after an edit of the app under
``devreload serve --reload``. An HTML fragment fetched by the page (htmx, jQuery) comes
without the script."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from helpers import save_like_editor, wait_until
from served import SERVING_RE, Spawn

APP = '''\
"""Pages like the Flask tutorial's: no </body>, no </html>; and a fragment, like htmx's."""
import os

MESSAGE = "first version"


def make_app(global_config, **settings):
    def app(environ, start_response):
        if environ["PATH_INFO"] == "/fragment":
            body = b'<p id="swapped">swapped in</p>'
        else:
            body = (
                "<!doctype html>\\n<title>Notes</title>\\n"
                f'<nav><h1 id="message">{MESSAGE}</h1></nav>\\n'
                f'<section id="content"><p id="pid">{os.getpid()}</p></section>\\n'
            ).encode()
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    return app
'''

# No filter: ``devreload serve --reload`` wraps the app by itself.
INI = """\
[app:main]
use = call:app:make_app

[server:main]
use = egg:devreload
listen = 127.0.0.1:0
"""

CONNECTED = "script[data-devreload][data-connected]"


def get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()  # type: ignore[no-any-return]
    except (OSError, urllib.error.URLError):
        return None


def message_is(text: str) -> str:
    return (
        "document.getElementById('message') !== null && "
        f"document.getElementById('message').textContent === {json.dumps(text)}"
    )


def test_a_page_without_body_end_reloads_in_the_browser(
    spawn: Spawn, project: Path, browser_page: Any
) -> None:
    page = browser_page
    (project / "app.py").write_text(APP)
    (project / "development.ini").write_text(INI)
    proc = spawn([sys.executable, "-m", "devreload", "serve", "development.ini", "--reload"])
    url = proc.wait_for(SERVING_RE)[1]
    first = wait_until(lambda: get(url + "/"), timeout=15)
    assert "</body>" not in first and first.rstrip().endswith("</script>")

    page.goto(url + "/")
    page.wait_for_selector(CONNECTED, state="attached")
    # The browser put the trailing script in the body, where it runs.
    assert page.evaluate("document.querySelector('script[data-devreload]').parentElement"
                         ".tagName") == "BODY"

    # A fragment fetched by the page's script (Sec-Fetch-Dest: empty) comes byte for byte,
    # with no second script in it, and is swapped in the way htmx does.
    fragment = page.evaluate(
        """fetch('/fragment').then(r => r.text()).then(html => {
             const content = document.getElementById('content');
             content.append(document.createRange().createContextualFragment(html));
             return html;
           })"""
    )
    assert fragment == '<p id="swapped">swapped in</p>'
    page.wait_for_selector("#swapped")
    assert page.evaluate("document.querySelectorAll('script[data-devreload]').length") == 1

    save_like_editor(project / "app.py", APP.replace("first version", "second version"))
    page.wait_for_function(message_is("second version"), timeout=15000)
    page.wait_for_selector(CONNECTED, state="attached")
    assert page.evaluate(f"document.querySelectorAll('{CONNECTED}').length") == 1
    proc.signal(15)
    assert proc.wait_exit() == 0
    assert "Traceback" not in proc.output
