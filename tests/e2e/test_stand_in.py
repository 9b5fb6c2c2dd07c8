"""A script that imports its app before ``serve(reload=True)``: the first worker is the
monitor's own fork, serving at once, and a worker started the usual way replaces it
without a request lost. Real processes, sockets and signals."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest
from helpers import needs_fork, pids_alive, save_like_editor, wait_until
from served import SERVING_RE, Spawn, asking, edit, stop, wait_body

pytestmark = needs_fork

APP = """\
import logging
import os
{extra}
import devreload

MESSAGE = "first"


def app(environ, start_response):
    body = f"{{MESSAGE}} {{os.getpid()}}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


if __name__ == "__main__":
    logging.getLogger("devreload").setLevel(logging.DEBUG)
    devreload.serve(app, reload=True, port=int(os.environ["PORT"]))
"""

ASGI_APP = """\
import logging
import os

import devreload

MESSAGE = "first"


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({{"type": "lifespan.startup.complete"}})
        await send({{"type": "lifespan.shutdown.complete"}})
        return
    body = f"{{MESSAGE}} {{os.getpid()}}".encode()
    await send({{"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]}})
    await send({{"type": "http.response.body", "body": body}})


if __name__ == "__main__":
    logging.getLogger("devreload").setLevel(logging.DEBUG)
    devreload.serve(app, reload=True, port=int(os.environ["PORT"]))
"""

FORKED_RE = r"worker (\d+) forked from the monitor, with the app it imported"
REPLACES_RE = r"worker (\d+), started the usual way, replaces worker (\d+) once it is ready"


def write_app(project: Path, extra: str = "") -> None:
    (project / "standin_app.py").write_text(APP.format(extra=extra))


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_the_monitors_fork_serves_first_and_a_fresh_worker_replaces_it(
    spawn: Spawn, project: Path, kind: str
) -> None:
    (project / "standin_app.py").write_text(
        APP.format(extra="") if kind == "wsgi" else ASGI_APP.format())
    proc = spawn([sys.executable, "standin_app.py"], env={"PORT": "0"})
    stand_in = int(proc.wait_for(FORKED_RE, start=0)[1])
    url = proc.wait_for(SERVING_RE)[1]
    with asking(url) as answers:
        replaced = proc.wait_for(REPLACES_RE, start=0)
        successor = int(replaced[1])
        assert int(replaced[2]) == stand_in
        wait_until(lambda: answers.seen(rf" {successor}$"))
    assert not answers.failures, f"{answers.failures[:3]}; output:\n{proc.output}"
    assert answers.bodies[0] == f"first {stand_in}", "the first answer is the fork's"
    served_by = {int(a.rsplit(" ", 1)[1]) for a in answers.bodies}
    assert served_by == {stand_in, successor}, answers.bodies
    proc.wait_for(rf"worker {successor} ready in", start=0)  # (said after its answers)
    assert not proc.count("restarted in"), "the takeover is no restart"
    edit(project / "standin_app.py", 'MESSAGE = "first"', 'MESSAGE = "edited"')
    wait_body(url, r"^edited \d+$")
    assert stop(proc) == 0
    assert "Traceback" not in proc.output
    # The stand-in's exit left the template started ahead alone: every worker since was
    # forked from it.
    assert not proc.count(r"worker template \d+ started$|template unavailable")


def test_a_save_while_the_stand_in_serves_is_a_restart(spawn: Spawn, project: Path) -> None:
    """Saved right after the first answer, with the same size, likely in the same second:
    the monitor watches what it imported from the start, so the save restarts the app
    (never a successor that serves the cache the monitor compiled from the old text)."""
    write_app(project)
    proc = spawn([sys.executable, "standin_app.py"], env={"PORT": "0"})
    url = proc.wait_for(SERVING_RE)[1]
    wait_body(url, r"^first \d+$")
    save_like_editor(project / "standin_app.py",
                     APP.format(extra="").replace('"first"', '"fixed"'))
    wait_body(url, r"^fixed \d+$")
    proc.wait_for(r"standin_app\.py changed; restarted in", start=0)
    assert stop(proc) == 0


def test_a_program_running_a_thread_imports_its_app_in_the_first_worker(
    spawn: Spawn, project: Path
) -> None:
    """A fork keeps only the thread that forks: an app that started another at import
    would run without it, so the first worker imports the app anew."""
    write_app(project, "import threading\nthreading.Thread(target=threading.Event().wait,"
                       " daemon=True).start()")
    proc = spawn([sys.executable, "standin_app.py"], env={"PORT": "0"})
    proc.wait_for(r"the first worker imports the app anew: the program runs more than one "
                  r"thread", start=0)
    url = proc.wait_for(SERVING_RE)[1]
    wait_body(url, r"^first \d+$")
    assert not proc.count(FORKED_RE)
    assert stop(proc) == 0


def test_ctrl_c_while_the_stand_in_is_replaced_ends_every_process(
    spawn: Spawn, project: Path
) -> None:
    """Every import after the monitor's takes seconds: Ctrl-C comes while the stand-in
    serves and its successor imports. The stand-in, the successor and the template all
    end with the monitor (the fixture fails on any process left behind)."""
    write_app(project, "import pathlib\nimport time\n\n_MARK = pathlib.Path('imported.once')\n"
                       "if _MARK.exists():\n    time.sleep(3)\n_MARK.touch()\n")
    proc = spawn([sys.executable, "standin_app.py"], env={"PORT": "0"})
    url = proc.wait_for(SERVING_RE)[1]
    wait_body(url, r"^first \d+$")
    proc.wait_for(REPLACES_RE, start=0)
    proc.popen.send_signal(signal.SIGINT)
    assert proc.wait_exit() == 0
    assert "Traceback" not in proc.output


def test_sigkill_of_the_monitor_while_the_stand_in_serves_ends_the_tree(
    spawn: Spawn, project: Path
) -> None:
    """The stand-in is the monitor's child like any worker: the janitor ends it, and what
    is starting behind it, when the monitor is killed outright."""
    write_app(project, "import pathlib\nimport time\n\n_MARK = pathlib.Path('imported.once')\n"
                       "if _MARK.exists():\n    time.sleep(3)\n_MARK.touch()\n")
    proc = spawn([sys.executable, "standin_app.py"], env={"PORT": "0"})
    stand_in = int(proc.wait_for(FORKED_RE, start=0)[1])
    url = proc.wait_for(SERVING_RE)[1]
    wait_body(url, rf"^first {stand_in}$")
    proc.wait_for(REPLACES_RE, start=0)
    tree = proc.tree()
    assert stand_in in tree
    proc.signal(signal.SIGKILL)
    wait_until(lambda: not pids_alive(tree), timeout=5)
