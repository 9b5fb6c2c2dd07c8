"""The next worker imports the app while the old one stops, and accepts only once the old
one no longer does. A second change during that start replaces the starting worker: it
must stop at once, never accept, and never wait for the SIGKILL deadline."""

from __future__ import annotations

import contextlib
import os
import re
import signal
from pathlib import Path

import pytest
from helpers import Proc, Spawn, pid_alive, save_like_editor, wait_until
from served import SERVING_RE, devreload_serve, wait_body

WSGI = """\
import os

VERSION = "one"


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"{VERSION} {os.getpid()}".encode()]
"""

ASGI = """\
import os

VERSION = "one"


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": f"{VERSION} {os.getpid()}".encode()})
"""


def _set_version(app: Path, version: str) -> None:
    source = app.read_text()
    save_like_editor(app, re.sub(r'VERSION = "\w+"', f'VERSION = "{version}"', source))


def _started_after(proc: Proc, mark: int) -> int:
    return int(proc.wait_for(r"timeline .* new worker (\d+) started", start=mark)[1])


@pytest.mark.parametrize("source", [WSGI, ASGI], ids=["waitress", "uvicorn"])
def test_a_worker_replaced_while_it_waits_to_accept_stops_at_once(
    spawn: Spawn, project: Path, source: str
) -> None:
    app = project / "app.py"
    app.write_text(source)
    proc = devreload_serve(spawn, "app:app", "--reload", "-v", "--port", "0")
    url = proc.wait_for(SERVING_RE)[1]
    first = int(wait_body(f"{url}/", "^one ").split()[1])
    # The old worker cannot release the sockets while it is stopped: the next one waits.
    os.kill(first, signal.SIGSTOP)
    try:
        mark = proc.mark()
        _set_version(app, "two")
        held = _started_after(proc, mark)
        proc.wait_for(r"timeline .* waiting for the old worker to stop accepting", start=mark)
        mark = proc.mark()
        _set_version(app, "three")
        proc.wait_for(rf"worker {held} told to stop", start=mark)
        wait_until(lambda: not pid_alive(held), timeout=10)
    finally:
        with contextlib.suppress(ProcessLookupError):  # killed at its deadline meanwhile
            os.kill(first, signal.SIGCONT)
    wait_body(f"{url}/", "^three ")
    assert f"worker {held} did not stop" not in proc.output, "it waited for SIGKILL"
