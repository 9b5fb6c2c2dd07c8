"""When a restart starts: at once after a single save, after a quiet moment after a burst.
Checked through the reload timeline (-v), never by timing: a single save's restart is
decided without the burst window, a 200-file ``git checkout`` and a save followed by a
formatter's rewrite are one restart each."""

from __future__ import annotations

import re
import sys
import urllib.request
from pathlib import Path

import pytest
from helpers import Proc, Spawn, save_like_editor, wait_until

SERVING_RE = r"serving on http://127\.0\.0\.1:(\d+)"
RESTARTED = r"changed; restarted in \d+ ms"
MODULES = 200

APP = '''\
import importlib
import os

MESSAGE = "one"
MODULES = [importlib.import_module(f"mods.m{{i}}") for i in range({count})]


def app(environ, start_response):
    values = "".join(sorted({{m.VALUE for m in MODULES}}))
    body = f"{{MESSAGE}} {{values}} {{os.getpid()}}".encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
'''


def _body(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            return str(response.read().decode())
    except OSError:
        return ""


def _wait_body(port: int, prefix: str) -> str:
    return str(wait_until(lambda: (b := _body(port)).startswith(prefix) and b, timeout=15))


@pytest.fixture
def served(spawn: Spawn, project: Path) -> tuple[Proc, int]:
    (project / "mods").mkdir()
    (project / "mods" / "__init__.py").write_text("")
    for i in range(MODULES):
        (project / "mods" / f"m{i}.py").write_text('VALUE = "a"\n')
    (project / "app.py").write_text(APP.format(count=MODULES))
    proc = spawn([sys.executable, "-m", "devreload", "serve", "app:app", "--reload", "-v",
                  "--port", "0"])
    port = int(proc.wait_for(SERVING_RE)[1])
    _wait_body(port, "one a ")
    # The worker serves as soon as it has said what it imported; on a busy machine the
    # monitor may watch those files only after a save the test makes at once. That save is
    # still seen (changed since the worker read it) but cannot be known whole.
    proc.wait_for(r"worker \d+ ready in \d+ ms")
    # The worker writes the modules' bytecode once it serves. Each cache is renamed into
    # place, and watchdog (the portable paths) holds every event behind a rename for up to
    # 0.5 s to pair it: a checkout made meanwhile would be seen in two parts, late.
    pycache = project / "mods" / "__pycache__"
    wait_until(lambda: pycache.is_dir() and len(list(pycache.glob("m*.pyc"))) >= MODULES,
               message="the worker did not write the modules' bytecode")
    return proc, port


def _decisions(proc: Proc, mark: int) -> list[str]:
    return [m[1] for line in proc.lines[mark:]
            if (m := re.search(r"restart decided \(quiet for (\d+) ms\)", line))]


def _restarts_until_sentinel(proc: Proc, port: int, project: Path, mark: int) -> int:
    """The restarts logged since ``mark`` before a later save's restart began: the events
    are handled in order, so a late extra restart would come before it. (A restart's line
    may come after its first response: the monitor logs when it hears the worker serves.)
    The sentinel is saved once a restart is logged: saved while the worker that answered
    is still starting (a late event joined its restart), it would be that restart's."""
    wait_until(lambda: any(re.search(RESTARTED, line) for line in proc.lines[mark:]))
    source = (project / "app.py").read_text()
    message = re.search(r'MESSAGE = "([^"]+)"', source)
    assert message
    save_like_editor(project / "app.py", source.replace(message[0], 'MESSAGE = "sentinel"'))
    pid = _wait_body(port, "sentinel ").split()[-1]

    def sentinel_began() -> int | None:
        lines = proc.lines
        return next((i + 1 for i in range(mark, len(lines))
                     if f"new worker {pid} started" in lines[i]), None)

    began = wait_until(sentinel_began)
    return sum(1 for line in proc.lines[mark:began] if re.search(RESTARTED, line))


@pytest.mark.parametrize("mode", ["rename", "inplace"])
def test_a_single_save_is_acted_on_at_once(
    served: tuple[Proc, int], project: Path, mode: str
) -> None:
    proc, port = served
    mark = proc.mark()
    source = (project / "app.py").read_text()
    save_like_editor(project / "app.py", source.replace('"one"', '"two"'), mode)
    _wait_body(port, "two a ")
    wait_until(lambda: _decisions(proc, mark))
    assert _decisions(proc, mark) == ["3"]


def test_a_200_file_checkout_is_one_restart(served: tuple[Proc, int], project: Path) -> None:
    proc, port = served
    mark = proc.mark()
    for i in range(MODULES):  # as git does it: unlink, then create
        path = project / "mods" / f"m{i}.py"
        path.unlink()
        path.write_text('VALUE = "b"\n')
    _wait_body(port, "one b ")
    assert _restarts_until_sentinel(proc, port, project, mark) == 1
    # The worker that served was started once the burst had been quiet. (On a busy machine
    # the first file may look like a single save; the next one joins its restart, whose
    # worker never answers.)
    # The last decision is the sentinel's own.
    assert _decisions(proc, mark)[-2] == "50", "the burst waited for quiet"


def test_a_save_then_a_formatter_rewrite_is_one_restart(
    served: tuple[Proc, int], project: Path
) -> None:
    proc, port = served
    mark = proc.mark()
    source = (project / "app.py").read_text()
    save_like_editor(project / "app.py", source.replace('"one"', "'two'"))
    (project / "app.py").write_text(source.replace('"one"', '"two"'))  # the formatter
    body = _wait_body(port, "two a ")
    assert _restarts_until_sentinel(proc, port, project, mark) == 1
    assert body.startswith("two a ")
