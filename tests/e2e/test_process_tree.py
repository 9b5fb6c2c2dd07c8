"""Nothing left behind: whatever the app started, however it detached, ends with its
worker, on a restart and when the monitor is killed; no process the app starts keeps the
listening socket."""

from __future__ import annotations

import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import Proc, needs_subreaper, pid_alive, pids_alive, save_like_editor, wait_until
from served import SERVING_RE

Start = Callable[..., Proc]


def children(proc: Proc) -> list[int]:
    found = proc.wait_for(r"CHILDREN popen=(\d+) setsid=(\d+)")
    return [int(found[1]), int(found[2])]


def all_end(proc: Proc, pids: list[int]) -> None:
    """Wait until ``pids`` and every process of the killed monitor's tree are gone: its
    janitor too, which exits once it has ended the workers."""
    wait_until(lambda: not pids_alive([*pids, *proc.tree()]), timeout=5)


def child(proc: Proc, start: int = 0) -> int:
    return int(proc.wait_for(r"CHILD pid=(\d+)", start=start)[1])


def test_a_child_ends_with_its_worker_on_a_restart(project: Path, devreload_run: Start) -> None:
    """On every platform's path: a child in the worker's own group ends with it."""
    proc = devreload_run("app_child.py", apps=["app_child.py"])
    first = child(proc)
    proc.wait_ready()
    mark = proc.mark()
    app = project / "app_child.py"
    save_like_editor(app, app.read_text().replace('"one"', '"two"'))
    second = child(proc, mark)
    proc.wait_ready()
    wait_until(lambda: not pid_alive(first), timeout=5)
    assert pid_alive(second)


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_a_child_ends_when_the_monitor_ends(
    project: Path, devreload_run: Start, how: signal.Signals
) -> None:
    """Ctrl-C, a polite kill, or the monitor's SIGKILL (then the janitor ends it)."""
    proc = devreload_run("app_child.py", apps=["app_child.py"])
    started = child(proc)
    worker = proc.wait_ready().pid
    proc.signal(how)
    all_end(proc, [worker, started])


@needs_subreaper
def test_detached_children_end_with_their_worker_on_a_restart(
    project: Path, devreload_run: Start
) -> None:
    proc = devreload_run("app_detached.py", apps=["app_detached.py"])
    first = children(proc)
    proc.wait_ready()
    assert all(pid_alive(pid) for pid in first)
    app = project / "app_detached.py"
    save_like_editor(app, app.read_text().replace('"one"', '"two"'))
    second = children(proc)
    proc.wait_ready()
    wait_until(lambda: not any(pid_alive(pid) for pid in first), timeout=5)
    assert all(pid_alive(pid) for pid in second)


@needs_subreaper
def test_detached_children_end_when_the_monitor_is_killed(
    project: Path, devreload_run: Start
) -> None:
    proc = devreload_run("app_detached.py", apps=["app_detached.py"])
    started = children(proc)
    worker = proc.wait_ready().pid
    proc.signal(signal.SIGKILL)
    all_end(proc, [worker, *started])


@pytest.mark.parametrize("sighups", [0, 2])
def test_a_worker_holding_the_gil_ends_when_the_monitor_is_killed(
    project: Path, devreload_run: Start, sighups: int
) -> None:
    """Only the janitor can end it; restarts asked for by SIGHUP keep the janitor."""
    proc = devreload_run("app_gil.py", apps=["app_gil.py"])
    worker = proc.wait_ready().pid
    for _ in range(sighups):
        proc.signal(signal.SIGHUP)
        worker = proc.wait_ready().pid
    proc.signal(signal.SIGKILL)
    all_end(proc, [worker])


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:"):
                inodes.add(target)
    except OSError:
        pass
    return inodes


@needs_subreaper
def test_only_the_monitor_and_the_worker_hold_the_listening_socket(
    project: Path, spawn: Start
) -> None:
    (project / "app.py").write_text(
        "import os, subprocess\n"
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'hi']\n"
        "out = subprocess.run('setsid sleep 120 >/dev/null 2>&1 & echo $!', shell=True,\n"
        "                     close_fds=False, capture_output=True, text=True).stdout\n"
        "print(f'CHILDREN popen=0 setsid={out.strip()}', flush=True)\n"
    )
    (project / "dev.ini").write_text(
        "[app:main]\nuse = call:app:make\n[server:main]\nuse = egg:devreload\n"
        "listen = 127.0.0.1:0\n"
    )
    with open(project / "app.py", "a") as f:
        f.write("def make(global_config, **settings):\n    return app\n")
    proc = spawn([sys.executable, "-m", "devreload", "serve", "dev.ini", "--reload"],
                 env={"PYTHONPATH": str(project)})
    url = proc.wait_for(SERVING_RE)[1]
    port = int(url.rsplit(":", 1)[1])
    grandchild = children(proc)[1]
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
    assert _socket_inodes(proc.pid), "the monitor holds its listening socket"
    assert not _socket_inodes(grandchild) & _socket_inodes(proc.pid), (
        "a process the app started holds one of the monitor's sockets"
    )
    proc.signal(signal.SIGTERM)
    assert proc.wait_exit() == 0
    wait_until(lambda: not pid_alive(grandchild), timeout=5)
    with socket.create_server(("127.0.0.1", port)):
        pass  # the port is free again


@needs_subreaper
@pytest.mark.parametrize("launcher", ["fork", "spawn"])
def test_a_classic_daemon_ends_with_its_worker_and_frees_the_port(
    project: Path, spawn: Start, launcher: str
) -> None:
    """Forked twice with ``setsid`` and no exec: it holds the worker's listening socket and
    carries no mark in its environment, yet it ends on a restart and on Ctrl-C."""
    proc = spawn([sys.executable, "-m", "devreload", "serve", "app_daemon:app", "--reload",
                  "--port", "0"], apps=["app_daemon.py"],
                 env={"PYTHONPATH": str(project), "DEVRELOAD_WORKER": launcher})
    port = int(proc.wait_for(SERVING_RE)[1].rsplit(":", 1)[1])
    first = int(proc.wait_for(r"DAEMON pid=(\d+) token=one")[1])
    app = project / "app_daemon.py"
    save_like_editor(app, app.read_text().replace('"one"', '"two"'))
    second = int(proc.wait_for(r"DAEMON pid=(\d+) token=two")[1])
    wait_until(lambda: not pid_alive(first), timeout=5)
    assert pid_alive(second)
    proc.signal(signal.SIGINT)
    assert proc.wait_exit() == 0
    wait_until(lambda: not pid_alive(second), timeout=5)
    with socket.create_server(("127.0.0.1", port)):
        pass  # the port is free again


@needs_subreaper
def test_a_classic_daemon_ends_when_the_monitor_is_killed(
    project: Path, spawn: Start
) -> None:
    proc = spawn([sys.executable, "-m", "devreload", "serve", "app_daemon:app", "--reload",
                  "--port", "0"], apps=["app_daemon.py"], env={"PYTHONPATH": str(project)})
    proc.wait_for(SERVING_RE)
    daemon = int(proc.wait_for(r"DAEMON pid=(\d+)")[1])
    proc.signal(signal.SIGKILL)
    all_end(proc, [daemon])


def test_a_stop_that_lands_where_exceptions_are_ignored_still_stops_the_worker(
    project: Path, devreload_run: Start
) -> None:
    """SIGTERM raised inside ``__del__`` is lost to Python ("Exception ignored"): the
    worker raises it again, and leaves the normal way (atexit runs), not by SIGKILL."""
    proc = devreload_run("app_unraisable.py", apps=["app_unraisable.py"])
    proc.wait_for(r"^IN __del__$")
    proc.signal(signal.SIGTERM)
    assert proc.wait_exit() == 0
    assert "ATEXIT ran" in proc.output
    assert "Exception ignored" not in proc.output

