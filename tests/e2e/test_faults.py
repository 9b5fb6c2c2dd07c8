"""When things go wrong: the monitor shows the error on the app's address and recovers by itself."""

from __future__ import annotations

import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from helpers import Proc, pids_alive, save_like_editor, wait_until
from served import SERVING_RE, Spawn, devreload_serve, get, wait_body

APP = """\
import os
import subprocess
import sys

VERSION = "good-1"


def make_app(global_conf, **settings):
    def app(environ, start_response):
        if environ["PATH_INFO"] == "/spawn":
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
            body = str(child.pid)
        elif environ["PATH_INFO"] == "/die":
            os._exit(3)
        else:
            body = "%s pid=%d" % (VERSION, os.getpid())
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body.encode()]
    return app
"""

INI = """\
[app:main]
use = call:app:make_app

[server:main]
use = egg:devreload
listen = {listen}
"""


def fetch(url: str, accept: str = "") -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def error_page(url: str, accept: str = "", timeout: float = 10.0) -> tuple[dict[str, str], str]:
    """Poll until the monitor's error page answers; its headers and body."""

    def broken() -> tuple[dict[str, str], str] | None:
        status, headers, body = fetch(url, accept)
        return (headers, body) if status == 500 and "X-Devreload-Error" in headers else None

    result: tuple[dict[str, str], str] = wait_until(broken, timeout=timeout, interval=0.01)
    return result


def start(spawn: Spawn, project: Path, listen: str = "127.0.0.1:0") -> tuple[str, Proc]:
    (project / "app.py").write_text(APP)
    (project / "development.ini").write_text(INI.format(listen=listen))
    proc = devreload_serve(spawn, "development.ini", "--reload")
    url = proc.wait_for(SERVING_RE)[1]
    url = url.replace("0.0.0.0", "127.0.0.1").rstrip("/") + "/"
    wait_body(url, "good-1")
    return url, proc


def test_broken_code_is_shown_on_the_apps_address_then_recovers(
    spawn: Spawn, project: Path
) -> None:
    url, proc = start(spawn, project)
    source = project / "app.py"
    broken_at = time.monotonic()
    save_like_editor(source, APP.replace('VERSION = "good-1"', 'VERSION = "<b>" +'))
    headers, page = error_page(url, accept="text/html")
    shown_after = time.monotonic() - broken_at
    assert headers["Content-Type"].startswith("text/html")
    assert "app.py" in page and "line 5" in page  # the failing file and line
    assert "&lt;b&gt;" in page and "<b>" not in page  # the source line, escaped
    assert "SyntaxError" in page
    _, text = error_page(url)
    assert "SyntaxError" in text and "<html" not in text  # plain text for non-HTML clients
    fixed_at = time.monotonic()
    save_like_editor(source, APP.replace("good-1", "good-2"))
    wait_body(url, "good-2")
    back_after = time.monotonic() - fixed_at
    print(
        f"error page {shown_after * 1000:.0f} ms after the broken save; "
        f"app back {back_after * 1000:.0f} ms after the fix"
    )
    proc.wait_for(r"worker exited with code 1; waiting for a change")
    assert proc.output.count("SyntaxError: invalid syntax") == 1  # logged once, not a wall


def test_a_worker_dying_while_serving_shows_the_error_page(spawn: Spawn, project: Path) -> None:
    url, _ = start(spawn, project)
    with pytest.raises(OSError):
        get(url + "die")
    _, text = error_page(url)
    assert "exited with code 3" in text
    save_like_editor(project / "app.py", APP.replace("good-1", "good-2"))
    wait_body(url, "good-2")


def test_the_app_factory_raising_is_shown_and_watched(spawn: Spawn, project: Path) -> None:
    url, _ = start(spawn, project)
    source = project / "app.py"
    save_like_editor(
        source, APP.replace("    def app(", "    raise RuntimeError('no db')\n    def app(")
    )
    _, text = error_page(url)
    assert "RuntimeError: no db" in text and "in make_app" in text
    save_like_editor(source, APP.replace("good-1", "good-3"))
    wait_body(url, "good-3")


def test_public_address_hides_the_traceback(spawn: Spawn, project: Path) -> None:
    url, proc = start(spawn, project, listen="0.0.0.0:0")
    proc.wait_for(r"hides tracebacks on a public address")
    save_like_editor(project / "app.py", APP.replace('VERSION = "good-1"', "VERSION = ("))
    _, text = error_page(url)
    assert "SyntaxError" not in text and "app.py" not in text
    assert "failed to start" in text


def test_sigterm_ends_the_apps_children_too(spawn: Spawn, project: Path) -> None:
    url, proc = start(spawn, project)
    child = int(get(url + "spawn"))
    worker = int(wait_body(url, "good-1").split("pid=")[1])
    assert not set(pids_alive([child, worker])) ^ {child, worker}
    proc.signal(signal.SIGTERM)
    assert proc.wait_exit() == 0
    wait_until(lambda: not pids_alive([child, worker]), timeout=5)
    assert "Traceback" not in proc.output


def test_sigkill_of_the_monitor_frees_the_port(spawn: Spawn, project: Path) -> None:
    url, proc = start(spawn, project)
    child = int(get(url + "spawn"))
    proc.signal(signal.SIGKILL)
    # The app's child, the worker and the janitor that ends them.
    wait_until(lambda: not pids_alive([child, *proc.tree()]), timeout=5)

    def refused() -> bool:
        try:
            get(url, timeout=2)
        except urllib.error.URLError as exc:
            return isinstance(exc.reason, ConnectionRefusedError)
        except OSError:  # a connection queued while the socket was still open is reset
            return False
        return False

    wait_until(refused, timeout=5)


def test_an_app_factory_raising_without_reload_is_one_line(spawn: Spawn, project: Path) -> None:
    (project / "app.py").write_text(
        APP.replace("    def app(", "    raise KeyError('db')\n    def app(")
    )
    (project / "development.ini").write_text(INI.format(listen="127.0.0.1:0"))
    proc = devreload_serve(spawn, "development.ini")
    assert proc.wait_exit() == 1
    assert "Traceback" not in proc.output
    (line,) = proc.lines
    assert "development.ini: [app:main]" in line and "app.py:9 in make_app: KeyError" in line
