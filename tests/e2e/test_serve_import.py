"""``devreload serve MODULE:APP``: an app by import string, like ``uvicorn --reload`` and
``flask run``, as real processes: serving, its options, and bad input as one line (and,
under --reload, the error page until the fix is saved)."""

from __future__ import annotations

import http.client
from pathlib import Path

import pytest
from helpers import save_like_editor, wait_until
from served import SERVING_RE, Spawn, devreload_serve, get, stop, wait_body

APP = '''\
def make_app(greeting="Hello"):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"{greeting} from {environ['PATH_INFO']}".encode()]
    return app


app = make_app()
NOT_AN_APP = 42


def broken_factory():
    raise RuntimeError("no settings for this app")
'''


def error_answer(url: str) -> tuple[int, str] | None:
    """(status, text) of the monitor's error page, or None while something else answers."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", "/", headers={"Accept": "text/plain"})
        response = conn.getresponse()
        body = response.read().decode()
        if response.getheader("X-Devreload-Error") is None:
            return None
        return response.status, body
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


@pytest.mark.parametrize("target", ["webapp:app", "webapp:make_app()"])
def test_serves_an_app_or_a_factory_without_reload(
    spawn: Spawn, project: Path, target: str
) -> None:
    (project / "webapp.py").write_text(APP)
    proc = devreload_serve(spawn, target, "--listen", "127.0.0.1:0")
    url = proc.wait_for(SERVING_RE)[1]
    assert url.startswith("http://127.0.0.1:")
    assert get(f"{url}/x") == "Hello from /x"
    assert stop(proc) == 0


@pytest.mark.parametrize(
    ("target", "line"),
    [
        ("nowhere:app", "devreload: cannot import 'nowhere:app': no module named 'nowhere' in "
         "{project} or the installed packages"),
        ("webapp:nope", "devreload: cannot import 'webapp:nope': module 'webapp' has no "
         "attribute 'nope'"),
        ("webapp:broken_factory()", "devreload: calling webapp:broken_factory() failed at "
         "webapp.py:13 in broken_factory: RuntimeError: no settings for this app"),
        ("webapp:NOT_AN_APP", "devreload: 'webapp:NOT_AN_APP' is not an app (a WSGI or ASGI "
         "callable) but of type int"),
    ],
)
def test_bad_input_is_one_line(spawn: Spawn, project: Path, target: str, line: str) -> None:
    (project / "webapp.py").write_text(APP)
    proc = devreload_serve(spawn, target, "--port", "0")
    assert proc.wait_exit() == 1
    assert [text for text in proc.lines if text.strip()] == [line.format(project=project)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["development.ini", "--port", "8081"], "--port: only for an app import string"),
        (["webapp:app", "greeting=Hi"], "name=value variables (greeting) are for an ini"),
        (["webapp:app", "--listen", "127.0.0.1:0", "--port", "1"], "either --listen or"),
        (["webapp:app", "--port", "http"], "port 'http' is not a number"),
    ],
)
def test_usage_errors(spawn: Spawn, project: Path, args: list[str], message: str) -> None:
    (project / "webapp.py").write_text(APP)
    (project / "development.ini").write_text("[app:main]\nuse = call:webapp:make_app\n")
    proc = devreload_serve(spawn, *args)
    assert proc.wait_exit() in (1, 2)
    assert message in proc.output
    assert "Traceback" not in proc.output


def test_reload_shows_a_missing_module_until_it_is_saved(spawn: Spawn, project: Path) -> None:
    proc = devreload_serve(spawn, "webapp:app", "--reload", "--port", "0")
    url = proc.wait_for(SERVING_RE)[1]
    status, text = wait_until(lambda: error_answer(url))
    assert status == 500
    assert "cannot import 'webapp:app': no module named 'webapp'" in text
    save_like_editor(project / "webapp.py", APP)
    wait_body(f"{url}/", r"^Hello from /$")
    assert stop(proc) == 0


def test_reload_shows_a_failing_factory_until_it_is_fixed(spawn: Spawn, project: Path) -> None:
    (project / "webapp.py").write_text(APP)
    proc = devreload_serve(spawn, "webapp:broken_factory()", "--reload", "--port", "0")
    url = proc.wait_for(SERVING_RE)[1]
    status, text = wait_until(lambda: error_answer(url))
    assert status == 500
    assert 'webapp.py", line 13, in broken_factory' in text
    assert "RuntimeError: no settings for this app" in text
    save_like_editor(
        project / "webapp.py",
        APP.replace('raise RuntimeError("no settings for this app")', 'return make_app("Fixed")'),
    )
    wait_body(f"{url}/", r"^Fixed from /$")
    assert stop(proc) == 0
