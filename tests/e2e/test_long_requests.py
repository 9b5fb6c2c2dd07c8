"""A request under way when the app restarts finishes with the code it started with,
however long it takes (up to the drain interval), while the next worker already answers
with the new code; one cut at the drain deadline is named in one line."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import pytest
from served import SERVING_RE, Spawn, devreload_serve, edit, get, stop, wait_body


def _get_later(url: str) -> concurrent.futures.Future[str]:
    return concurrent.futures.ThreadPoolExecutor(1).submit(get, url, 20)


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_a_slow_request_sent_before_a_save_completes_with_the_old_code(
    spawn: Spawn, project: Path, kind: str
) -> None:
    proc = devreload_serve(spawn, f"serve_apps:{kind}_app", "--reload", "--port", "0",
                           apps=["serve_apps.py"])
    url = proc.wait_for(SERVING_RE)[1]
    old_pid = wait_body(url, rf"^{kind} one ").split("pid=")[1]
    mark = len(proc.lines)
    slow = _get_later(f"{url}/sleep/3")
    proc.wait_for(rf"^SLEEPING pid={old_pid}$", start=mark)
    edit(project / "serve_apps.py", 'TOKEN = "one"', 'TOKEN = "two"')
    assert wait_body(url, rf"^{kind} two ", timeout=10)
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
    url = proc.wait_for(SERVING_RE)[1]
    old_pid = wait_body(url, rf"^{kind} one ").split("pid=")[1]
    mark = len(proc.lines)
    slow = _get_later(f"{url}/sleep/8")
    proc.wait_for(rf"^SLEEPING pid={old_pid}$", start=mark)
    edit(project / "serve_apps.py", 'TOKEN = "one"', 'TOKEN = "two"')
    line = proc.wait_for(r"GET /sleep/8 cut after (\d+\.\d) s: the worker's 1 s to finish "
                         r"its requests ran out$", start=mark)
    assert 0.9 <= float(line[1]) < 3
    with pytest.raises(OSError):
        slow.result(timeout=10)
    assert proc.count(r" cut after ", start=mark) == 1
    assert wait_body(url, rf"^{kind} two ")
    assert stop(proc) == 0


def test_ctrl_c_does_not_wait_for_a_drain(spawn: Spawn, project: Path) -> None:
    """Everything stopping cuts the drain to the shutdown interval."""
    proc = devreload_serve(spawn, "serve_apps:wsgi_app", "--reload", "--port", "0",
                           apps=["serve_apps.py"])
    url = proc.wait_for(SERVING_RE)[1]
    wait_body(url, r"^wsgi one ")
    mark = len(proc.lines)
    _get_later(f"{url}/sleep/20")
    proc.wait_for(r"^SLEEPING pid=", start=mark)
    edit(project / "serve_apps.py", 'TOKEN = "one"', 'TOKEN = "two"')
    wait_body(url, r"^wsgi two ")
    assert stop(proc) == 0
    proc.wait_for(r"GET /sleep/20 cut after \d+\.\d s: devreload stopped$", start=mark)
