"""The worker side: the inactive API, the proxy over a real channel, module discovery, and a
real worker process driven over its channel."""

from __future__ import annotations

import importlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from helpers import pid_alive, wait_until

import devreload
from devreload.wire.channel import Channel, ChannelClosed
from devreload.wire.contract import FDS_ENV
from devreload.wire.messages import Modules, Ready, ReloadAsked, ShutdownAsked, Spec, Watch
from devreload.worker import modules, tracebacks
from devreload.worker import proxy as worker

# --------------------------------------------------------------------------- inactive


def test_get_reloader_outside_a_worker_raises() -> None:
    assert worker.is_active() is False
    with pytest.raises(RuntimeError, match="monitor"):
        worker.get_reloader()


def test_module_level_calls_are_noops_when_inactive() -> None:
    # Typed "-> None"; checked at run time all the same.
    assert cast(object, devreload.watch_files(["/nonexistent/file.ini"])) is None
    assert cast(object, devreload.trigger_reload()) is None
    assert devreload.is_active() is False


def test_public_api_is_exported() -> None:
    for name in ("start_reloader", "get_reloader", "is_active", "watch_files", "trigger_reload"):
        assert callable(getattr(devreload, name)), name


# --------------------------------------------------------------------------- the proxy


@pytest.fixture
def proxy_pair() -> Iterator[tuple[worker.ReloaderProxy, Channel]]:
    monitor_end, theirs = Channel.pair()
    proxy = worker.ReloaderProxy(Channel(theirs), [])
    yield proxy, monitor_end
    monitor_end.close()
    proxy._channel.close()


def test_proxy_sends_requests_to_the_monitor(
    proxy_pair: tuple[worker.ReloaderProxy, Channel], tmp_path: Path, monkeypatch: Any
) -> None:
    proxy, monitor = proxy_pair
    monkeypatch.chdir(tmp_path)
    # A path object works too (os.fspath), though watch_files() is annotated with str.
    paths: list[Any] = ["conf/app.ini", tmp_path / "abs.txt"]
    proxy.watch_files(paths)
    assert monitor.recv() == Watch((str(tmp_path / "conf/app.ini"), str(tmp_path / "abs.txt")))
    proxy.trigger_reload()
    assert monitor.recv() == ReloadAsked()
    proxy.graceful_shutdown()
    assert monitor.recv() == ShutdownAsked()
    proxy.notify_ready()
    assert monitor.recv() == Ready()
    assert proxy.sockets == []


def test_module_level_calls_go_through_an_active_proxy(
    proxy_pair: tuple[worker.ReloaderProxy, Channel], monkeypatch: Any
) -> None:
    proxy, monitor = proxy_pair
    monkeypatch.setattr(worker, "_proxy", proxy)
    assert devreload.is_active() is True
    assert devreload.get_reloader() is proxy
    devreload.trigger_reload()
    assert monitor.recv() == ReloadAsked()
    devreload.watch_files(["/etc/hostname"])
    assert monitor.recv() == Watch(("/etc/hostname",))


# --------------------------------------------------------------------------- module discovery


def test_scanner_reports_user_modules_once_and_late_imports(
    tmp_path: Path, monkeypatch: Any
) -> None:
    (tmp_path / "dr_scan_early.py").write_text("X = 1\n")
    (tmp_path / "dr_scan_late.py").write_text("Y = 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("dr_scan_early")
    scanner = modules.ModuleScanner()
    files, libraries = scanner.scan()
    assert str(tmp_path / "dr_scan_early.py") in files
    assert "json" in libraries or "json" not in sys.modules
    assert not any(f.startswith(os.path.dirname(os.__file__) + os.sep) for f in files)
    assert not any("devreload" in os.path.basename(f) for f in files)
    importlib.import_module("dr_scan_late")
    files, _ = scanner.scan()
    assert files == [str(tmp_path / "dr_scan_late.py")]
    assert scanner.scan() == ([], [])
    for name in ("dr_scan_early", "dr_scan_late"):
        sys.modules.pop(name, None)


def test_a_fresh_worker_reports_only_what_it_imported_beyond_the_interpreter(
    tmp_path: Path,
) -> None:
    """A fresh worker (spawned: macOS, Windows, a fork's retry) reports the libraries it
    imports, not the interpreter's own start (sys, builtins), which every template and
    spare has; a user file loaded at start (a sitecustomize) is still reported."""
    (tmp_path / "sitecustomize.py").write_text("")
    code = (
        "import sitecustomize\n"
        "from devreload.worker import modules\n"
        "scanner = modules.template_scanner()\n"
        "assert modules.template_scanner() is scanner\n"
        "import colorsys\n"
        "files, libraries = scanner.scan()\n"
        "print(libraries, [f.rpartition('/')[2] for f in files])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(tmp_path)), timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[0] == "['colorsys'] ['sitecustomize.py']"


def test_a_folder_linked_to_a_library_root_holds_libraries(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """Whether a module is a library goes by its folder's real path: a project folder
    that is a link into site-packages (a vendored checkout) holds libraries, and a link
    from a library root out to the project does not make the project a library."""
    site = tmp_path / "site-packages"
    (site / "dr_vendored").mkdir(parents=True)
    (site / "dr_vendored" / "__init__.py").write_text("")
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "dr_own.py").write_text("")
    (tmp_path / "project" / "vendor").symlink_to(site)
    monkeypatch.syspath_prepend(str(tmp_path / "project"))
    monkeypatch.syspath_prepend(str(tmp_path / "project" / "vendor"))
    scanner = modules.ModuleScanner()
    scanner.roots = (*scanner.roots, str(site) + os.sep)
    scanner.scan()
    importlib.import_module("dr_vendored")
    importlib.import_module("dr_own")
    files, libraries = scanner.scan()
    assert files == [str(tmp_path / "project" / "dr_own.py")]
    assert "dr_vendored" in libraries
    for name in ("dr_vendored", "dr_own"):
        sys.modules.pop(name, None)


def test_traceback_files_name_the_broken_file(tmp_path: Path, monkeypatch: Any) -> None:
    (tmp_path / "dr_raises.py").write_text("raise RuntimeError('boom')\n")
    (tmp_path / "dr_syntax.py").write_text("def broken(:\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("dr_raises", "dr_syntax"):
        with pytest.raises(Exception) as info:
            importlib.import_module(name)
        assert str(tmp_path / f"{name}.py") in tracebacks.traceback_files(info.value)


# --------------------------------------------------------------------------- a real worker


def _start_worker(tmp_path: Path, entry: str) -> tuple[subprocess.Popen[bytes], Channel]:
    (tmp_path / "dr_entry.py").write_text(entry)
    monitor_end, theirs = Channel.pair()
    env = dict(os.environ, **{FDS_ENV: str(theirs.fileno())})
    proc = subprocess.Popen(
        [sys.executable, "-c", "from devreload.worker.runtime import main; main()"],
        pass_fds=[theirs.fileno()],
        env=env,
        cwd=tmp_path,
        start_new_session=True,
    )
    theirs.close()
    spec = Spec(
        sys_path=(str(tmp_path), *sys.path),
        argv=("dr_entry",),
        worker_path="dr_entry.main",
        announce_ready=False,
        args=("a",),
        kwargs={"k": 1},
    )
    monitor_end.send(spec)
    return proc, monitor_end


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)


def test_worker_runs_entry_reports_modules_and_exit_code(tmp_path: Path) -> None:
    (tmp_path / "dr_dep.py").write_text("N = 3\n")
    entry = (
        "import sys\n"
        "def main(*args, **kwargs):\n"
        "    import dr_dep\n"
        "    assert args == ('a',) and kwargs == {'k': 1}, (args, kwargs)\n"
        "    sys.exit(75)\n"
    )
    proc, monitor = _start_worker(tmp_path, entry)
    try:
        messages = []
        with pytest.raises(ChannelClosed):
            while True:
                messages.append(monitor.recv())
        assert proc.wait(10) == 75
        assert Ready() in messages
        reported = {f for m in messages if isinstance(m, Modules) for f in m.files}
        assert str(tmp_path / "dr_entry.py") in reported
        assert str(tmp_path / "dr_dep.py") in reported  # imported by the entry itself
    finally:
        _kill(proc)
        monitor.close()


def test_worker_crash_asks_to_watch_traceback_files(tmp_path: Path) -> None:
    (tmp_path / "dr_bad.py").write_text("def oops(:\n")
    entry = "def main(*args, **kwargs):\n    import dr_bad\n"
    proc, monitor = _start_worker(tmp_path, entry)
    try:
        watched: set[str] = set()
        with pytest.raises(ChannelClosed):
            while True:
                message = monitor.recv()
                if isinstance(message, Watch):
                    watched.update(message.paths)
        assert proc.wait(10) == 1
        assert str(tmp_path / "dr_bad.py") in watched
    finally:
        _kill(proc)
        monitor.close()


def test_worker_and_its_children_die_with_the_channel(tmp_path: Path) -> None:
    entry = (
        "import subprocess, sys, threading\n"
        "def main(*args, **kwargs):\n"
        "    child = subprocess.Popen([sys.executable, '-c', "
        "'import threading; threading.Event().wait()'])\n"
        "    open('child.pid', 'w').write(str(child.pid))\n"
        "    threading.Event().wait()\n"
    )
    proc, monitor = _start_worker(tmp_path, entry)
    try:
        pid_file = tmp_path / "child.pid"
        child = int(wait_until(lambda: pid_file.read_text() if pid_file.exists() else ""))
        monitor.close()  # the monitor "dies"
        proc.wait(5)
        wait_until(lambda: not pid_alive(child), timeout=5)
    finally:
        _kill(proc)


def test_worker_hands_over_sockets(tmp_path: Path) -> None:
    """Listening sockets passed as fds appear, in order, as get_reloader().sockets."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    entry = (
        "import devreload\n"
        "def main(*args, **kwargs):\n"
        "    (sock,) = devreload.get_reloader().sockets\n"
        "    conn, _ = sock.accept()\n"
        "    conn.sendall(b'from-worker')\n"
        "    conn.close()\n"
    )
    (tmp_path / "dr_entry.py").write_text(entry)
    monitor_end, theirs = Channel.pair()
    fds = [theirs.fileno(), listener.fileno()]
    env = dict(os.environ, **{FDS_ENV: ",".join(map(str, fds))})
    proc = subprocess.Popen(
        [sys.executable, "-c", "from devreload.worker.runtime import main; main()"],
        pass_fds=fds,
        env=env,
        cwd=tmp_path,
        start_new_session=True,
    )
    theirs.close()
    try:
        spec = Spec(
            sys_path=(str(tmp_path), *sys.path),
            argv=("x",),
            worker_path="dr_entry:main",
            announce_ready=True,
        )
        monitor_end.send(spec)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            client.settimeout(10)
            assert client.recv(100) == b"from-worker"
        assert proc.wait(10) == 0
    finally:
        _kill(proc)
        listener.close()
        monitor_end.close()
