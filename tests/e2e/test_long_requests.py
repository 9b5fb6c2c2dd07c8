"""A request under way when the app restarts finishes with the code it started with,
however long it takes (up to the drain interval), while the next worker already answers
with the new code; one cut at the drain deadline is named in one line."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import pytest
from helpers import Proc
from served import SERVING_RE, Spawn, devreload_serve, edit, get, stop, wait_body


def _save_during_a_request(proc: Proc, project: Path, kind: str, seconds: int
                           ) -> tuple[str, concurrent.futures.Future[str], int]:
    """Send ``GET /sleep/SECONDS``, and save a code edit while the app sleeps in it: the
    old worker's pid, the request's answer to come, and the output line it started at."""
    url = proc.wait_for(SERVING_RE)[1]
    old_pid = wait_body(url, rf"^{kind} one ").split("pid=")[1]
    mark = len(proc.lines)
    slow = concurrent.futures.ThreadPoolExecutor(1).submit(get, f"{url}/sleep/{seconds}", 30)
    proc.wait_for(rf"^SLEEPING pid={old_pid}$", start=mark)
    edit(project / "serve_apps.py", 'TOKEN = "one"', 'TOKEN = "two"')
    return old_pid, slow, mark


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_a_slow_request_sent_before_a_save_completes_with_the_old_code(
    spawn: Spawn, project: Path, kind: str
) -> None:
    proc = devreload_serve(spawn, f"serve_apps:{kind}_app", "--reload", "--port", "0",
                           apps=["serve_apps.py"])
    old_pid, slow, _ = _save_during_a_request(proc, project, kind, 3)
    assert wait_body(proc.wait_for(SERVING_RE, start=0)[1], rf"^{kind} two ", timeout=10)
    assert not slow.done(), "the new worker answered only after the slow request ended"
    assert slow.result(timeout=10) == f"{kind} one pid={old_pid}"
    assert proc.count(r" cut after ") == 0
    assert stop(proc) == 0


INI = """\
[app:main]
use = call:serve_apps:make_{kind}

[server:main]
use = egg:devreload
listen = 127.0.0.1:0
drain_interval = 1
"""


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_a_request_cut_at_the_drain_deadline_is_named(
    spawn: Spawn, project: Path, kind: str
) -> None:
    (project / "development.ini").write_text(INI.format(kind=kind))
    proc = devreload_serve(spawn, "development.ini", "--reload", apps=["serve_apps.py"])
    _, slow, mark = _save_during_a_request(proc, project, kind, 8)
    line = proc.wait_for(r"GET /sleep/8 cut after (\d+\.\d) s: the worker's 1 s to finish "
                         r"its requests ran out$", start=mark)
    assert 0.9 <= float(line[1]) < 3
    with pytest.raises(OSError):
        slow.result(timeout=10)
    assert proc.count(r" cut after ", start=mark) == 1
    assert wait_body(proc.wait_for(SERVING_RE, start=0)[1], rf"^{kind} two ")
    assert stop(proc) == 0


def test_ctrl_c_does_not_wait_for_a_drain(spawn: Spawn, project: Path) -> None:
    """Everything stopping cuts the drain to the shutdown interval."""
    proc = devreload_serve(spawn, "serve_apps:wsgi_app", "--reload", "--port", "0",
                           apps=["serve_apps.py"])
    _, _, mark = _save_during_a_request(proc, project, "wsgi", 20)
    wait_body(proc.wait_for(SERVING_RE, start=0)[1], r"^wsgi two ")
    assert stop(proc) == 0
    proc.wait_for(r"GET /sleep/20 cut after \d+\.\d s: devreload stopped$", start=mark)
