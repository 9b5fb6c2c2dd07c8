"""Paths and files as real projects have them: spaces, non-ASCII names, symlinked
folders, and the files an app writes itself."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import MONITORS, Proc, Spawn, restart_with, save_like_editor, wait_until
from served import SERVING_RE

APP = """\
import os
import sqlite3
import sys
import threading
import py_compile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "{src}"))
import helper

if "--write" in sys.argv:
    with open("app.log", "a") as log:
        log.write("started\\n")
    db = sqlite3.connect("data.db")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE IF NOT EXISTS t (x)")
    db.execute("INSERT INTO t VALUES (1)")
    db.commit()
    py_compile.compile("settings.ini.py", cfile="compiled.pyc")
print(f"READY pid={{os.getpid()}} token={{helper.TOKEN}}", flush=True)
threading.Event().wait()
"""


def make(project: Path, folder: str, src: str = ".") -> Path:
    home = project / folder
    home.mkdir(parents=True, exist_ok=True)
    (home / "app.py").write_text(APP.format(src=src))
    return home


def test_paths_with_spaces_and_non_ascii_names(project: Path, devreload_run: Spawn) -> None:
    home = make(project, "my project/ünïcødé dir")
    (home / "helper.py").write_text('TOKEN = "one"\n')
    config = home / "cønfig fïle.ini"
    config.write_text("a = 1\n")
    proc: Proc = devreload_run("-w", str(config), str(home / "app.py"))
    assert proc.wait_ready().token == "one"
    mark = proc.mark()
    restart_with(proc, home / "helper.py", "two")
    # That restart is done (its worker answered the monitor): the next save starts its own,
    # rather than joining a restart whose worker has not yet said it started.
    proc.wait_for(r"ünïcødé dir/helper\.py changed; restarted in \d+ ms", start=mark)
    mark = proc.mark()
    save_like_editor(config, "a = 2\n")
    proc.wait_ready()
    proc.wait_for(r"ünïcødé dir/cønfig fïle\.ini changed; restarted in \d+ ms", start=mark)


@pytest.mark.parametrize(("monitor", "monitor_env"), [(m, m) for m in MONITORS],
                         indirect=["monitor_env"], ids=MONITORS)
def test_a_name_that_is_not_utf8_in_a_watched_tree(
    project: Path, devreload_run: Spawn, monitor: str, monitor_env: dict[str, str]
) -> None:
    """An old archive's Latin-1 name among the watched files: it restarts the app like any
    other, the other files still do, and Ctrl-C still ends devreload at once."""
    (project / "conf").mkdir()
    odd = project / "conf" / os.fsdecode(b"caf\xe9.ini")
    odd.write_text("a = 1\n")
    proc = devreload_run("--monitor", monitor, "-w", "conf/*", "app_basic.py",
                         apps=["app_basic.py", "helper.py", "ignored_mod.py"], env=monitor_env)
    first = proc.wait_ready()
    save_like_editor(odd, "a = 2\n")
    second = proc.wait_ready()
    assert second.pid != first.pid
    assert restart_with(proc, project / "helper.py", "two") != second.pid
    proc.signal(signal.SIGINT)
    proc.wait_exit(timeout=2)


def _error_page(url: str, accept: str) -> tuple[int, str]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", "/", headers={"Accept": accept})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def test_a_project_path_that_is_not_utf8_still_gets_the_error_page(
    project: Path, spawn: Spawn
) -> None:
    """Linux allows any bytes in a name; Python keeps the odd ones as surrogates, which
    no page can encode as they are. The page shows them escaped, as the terminal does."""
    home = project / os.fsdecode(b"proj\xff")
    home.mkdir()
    (home / "app.py").write_text("import nope\n")
    proc = spawn([sys.executable, "-m", "devreload", "serve", "app:app", "--reload",
                  "--port", "0"], cwd=home)
    url = proc.wait_for(SERVING_RE)[1]
    proc.wait_for(r"waiting for a change")
    status, body = _error_page(url, "*/*")
    assert status == 500 and "proj\\udcff" in body and "No module named" in body, body
    status, body = _error_page(url, "text/html")
    assert status == 500 and "No module named" in body, body
    (home / "app.py").write_text(
        "def app(environ, start_response):\n    raise ValueError(__file__)\n")
    wait_until(lambda: "ValueError" in _error_page(url, "*/*")[1])
    for accept in ("*/*", "text/html"):
        status, body = _error_page(url, accept)
        assert status == 500 and "proj\\udcff" in body, body


def test_a_symlinked_source_folder(project: Path, devreload_run: Spawn) -> None:
    real = project / "real_src"
    real.mkdir()
    (real / "helper.py").write_text('TOKEN = "one"\n')
    os.symlink(real, project / "src")
    make(project, ".", src="src")
    proc: Proc = devreload_run("app.py")
    assert proc.wait_ready().token == "one"
    restart_with(proc, real / "helper.py", "two")  # edited through the real path
    restart_with(proc, project / "src" / "helper.py", "three")  # and through the link


def test_files_the_app_writes_never_restart_it(project: Path, devreload_run: Spawn) -> None:
    make(project, ".")
    (project / "helper.py").write_text('TOKEN = "one"\n')
    (project / "settings.ini.py").write_text("X = 1\n")
    # Watch everything in the folder: the app's log, its SQLite files and the .pyc it
    # compiles are still left alone, while a real change restarts it exactly once.
    proc: Proc = devreload_run("-w", "*", "-x", "*/data.db", "app.py", "--write")
    assert proc.wait_ready().token == "one"
    assert (project / "data.db-wal").exists() and (project / "compiled.pyc").exists()
    restart_with(proc, project / "helper.py", "two")
    restart_with(proc, project / "helper.py", "three")
    assert [r.token for r in proc.readies()] == ["one", "two", "three"]


def _unshare() -> str | None:
    """``unshare`` can give the test a user namespace with inotify limits of its own, so
    the real OS limit is reached without touching the machine's."""
    probe = (
        subprocess.run(
            [
                "unshare",
                "--user",
                "--map-root-user",
                "sh",
                "-c",
                "echo 0 > /proc/sys/user/max_inotify_watches",
            ],
            capture_output=True,
        )
        if shutil.which("unshare")
        else None
    )
    return None if probe is not None and probe.returncode == 0 else "no user namespaces here"


@pytest.mark.parametrize("limit", ["max_inotify_instances", "max_inotify_watches"])
def test_the_os_watch_limit_falls_back_to_polling(project: Path, spawn: Spawn, limit: str) -> None:
    reason = _unshare()
    if reason:
        pytest.skip(reason)
    make(project, ".")
    (project / "helper.py").write_text('TOKEN = "one"\n')
    script = f"echo 0 > /proc/sys/user/{limit} && exec {sys.executable} -m devreload run app.py"
    proc: Proc = spawn(["unshare", "--user", "--map-root-user", "sh", "-c", script])
    assert proc.wait_ready().token == "one"
    sysctl = limit.replace("max_inotify_", "max_user_")
    warning = proc.wait_for(r"limit is reached.*polling for changes instead", start=0)[0]
    assert f"sysctl fs.inotify.{sysctl}=" in warning and "Errno" not in warning
    assert proc.count("limit is reached") == 1
    restart_with(proc, project / "helper.py", "two")  # never silently not watching
