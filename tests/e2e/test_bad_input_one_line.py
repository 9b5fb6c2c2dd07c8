"""Bad input as one line from real ``devreload`` processes (issue 11): an app module that
does not import, a factory that returns no app, DEVRELOAD_MONITOR, listen addresses, server
options, uvicorn's string options, ``--browser`` without a browser, the show_errors hint."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from helpers import Proc, save_like_editor, wait_until
from served import SERVING_RE, Spawn, devreload_serve, get, stop, wait_body

#: The console script next to this interpreter (sys.path[0] is its bin folder, not the cwd).
SCRIPT = str(Path(sys.executable).parent / "devreload")

WSGI_APP = """\
def make(global_config, **settings):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"fine"]
    return app
"""

ASGI_APP = """\
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"asgi fine"})


def make(global_config, **settings):
    return app
"""


def write_ini(project: Path, server: str = "listen = 127.0.0.1:0", use: str = "call:app:make",
              app: str = WSGI_APP) -> Path:
    (project / "app.py").write_text(app)
    path = project / "dev.ini"
    path.write_text(f"[app:main]\nuse = {use}\n\n[server:main]\nuse = egg:devreload\n{server}\n")
    return path


def said(proc: Proc) -> list[str]:
    return [line for line in proc.lines if line.strip()]


# --------------------------------------------------------------------------- the app module


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def make(global_config):\n    x = = 1\n",
         "importing the app failed at app.py:2: SyntaxError: invalid syntax (app.py, line 2)"),
        ("import missing_dependency_xyz\n",
         "importing the app failed at app.py:1 in <module>: ModuleNotFoundError: No module "
         "named 'missing_dependency_xyz'"),
    ],
    ids=["syntax-error", "missing-module"],
)
def test_an_app_module_that_does_not_import_is_one_line_without_reload(
    spawn: Spawn, project: Path, source: str, message: str
) -> None:
    ini = write_ini(project, app=source)
    proc = devreload_serve(spawn, "dev.ini")
    assert proc.wait_exit() == 1
    assert said(proc) == [f"devreload: {ini}: [app:main]: {message}"]
    # The import string says it the same way.
    proc = devreload_serve(spawn, "app:make", "--port", "0")
    assert proc.wait_exit() == 1
    assert said(proc) == [f"devreload: {message.replace('the app', repr('app'))}"]


def test_an_egg_whose_module_does_not_import_is_one_line(spawn: Spawn, project: Path) -> None:
    site = project / "site"
    info = site / "brokenegg-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: brokenegg\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[paste.app_factory]\nmain = brokenegg_app:make\n")
    (site / "brokenegg_app.py").write_text("def make(global_config):\n    return (\n")
    ini = write_ini(project, use="egg:brokenegg")
    proc = devreload_serve(spawn, "dev.ini", env={"PYTHONPATH": str(site)})
    assert proc.wait_exit() == 1
    assert said(proc) == [
        f"devreload: {ini}: [app:main]: importing the app failed at site/brokenegg_app.py:2: "
        "SyntaxError: '(' was never closed (brokenegg_app.py, line 2)"
    ]


def test_a_factory_that_returns_no_app_is_refused_at_start(spawn: Spawn, project: Path) -> None:
    ini = write_ini(project, app="def make(global_config, **settings):\n    return None\n")
    proc = devreload_serve(spawn, "dev.ini")
    assert proc.wait_exit() == 1
    assert said(proc) == [
        f"devreload: {ini}: [app:main]: the app factory app:make returned None, "
        "not an app (a WSGI or ASGI callable)"
    ]
    # Under --reload: the same line, then the fix brings the app.
    proc = devreload_serve(spawn, "dev.ini", "--reload")
    url = proc.wait_for(SERVING_RE)[1]
    proc.wait_for(r"app:make returned None, not an app")
    save_like_editor(project / "app.py", WSGI_APP)
    wait_body(url, "^fine$")
    assert stop(proc) == 0


# --------------------------------------------------------------------------- DEVRELOAD_MONITOR


@pytest.mark.parametrize("command", ["script", "python -m"])
def test_a_bad_monitor_choice_is_one_line_and_exit_2(
    spawn: Spawn, project: Path, command: str
) -> None:
    (project / "prog.py").write_text("print('ran')\n")
    write_ini(project)
    devreload = [SCRIPT] if command == "script" else [sys.executable, "-m", "devreload"]
    line = ("devreload: DEVRELOAD_MONITOR='fsevents' is not a file monitor; use inotify, "
            "watchdog, watchman, polling, or a dotted path to a factory (pkg.module.factory)")
    env = {"DEVRELOAD_MONITOR": "fsevents"}
    for args in (["run", "prog.py"], ["serve", "dev.ini", "--reload"]):
        proc = spawn([*devreload, *args], env=env)
        assert proc.wait_exit() == 2, args
        assert said(proc) == [line], args


@pytest.mark.parametrize("command", ["script", "python -m"])
def test_a_monitor_factory_in_the_current_folder(
    spawn: Spawn, project: Path, command: str
) -> None:
    (project / "mymon.py").write_text(
        "from devreload.filemon.polling import PollingFileMonitor\n\n"
        "def make(callback, **kw):\n"
        "    print('MYMON made', flush=True)\n"
        "    return PollingFileMonitor(callback, **kw)\n"
    )
    (project / "prog.py").write_text("print('ran', flush=True)\n")
    devreload = [SCRIPT] if command == "script" else [sys.executable, "-m", "devreload"]
    proc = spawn([*devreload, "run", "prog.py"], env={"DEVRELOAD_MONITOR": "mymon.make"})
    assert proc.wait_exit() == 0
    assert said(proc) == ["MYMON made", "ran"]


# --------------------------------------------------------------------------- listen


@pytest.mark.parametrize("reload", [False, True], ids=["no-reload", "reload"])
def test_a_unix_socket_beside_an_ip_address_is_one_line(
    spawn: Spawn, project: Path, reload: bool
) -> None:
    ini = write_ini(project, f"listen = unix:{project}/app.sock 127.0.0.1:0")
    proc = devreload_serve(spawn, "dev.ini", *(["--reload"] if reload else []))
    assert proc.wait_exit() == 1
    [line] = said(proc)  # nothing served, no traceback
    assert line.startswith(f"devreload: {ini}: [server:main] listen: ")
    assert "waitress" in line


def test_a_unix_socket_beside_an_ip_address_with_uvicorn(spawn: Spawn, project: Path) -> None:
    write_ini(project, f"listen = unix:{project}/app.sock 127.0.0.1:0\nserver = uvicorn",
              app=ASGI_APP)
    proc = devreload_serve(spawn, "dev.ini", "--reload")
    proc.wait_for(r"serving on unix:")
    url = proc.wait_for(SERVING_RE)[1]
    wait_body(url, "^asgi fine$")
    assert stop(proc) == 0


def test_an_empty_listen_is_one_line(spawn: Spawn, project: Path) -> None:
    ini = write_ini(project, "listen =")
    proc = devreload_serve(spawn, "dev.ini")
    assert proc.wait_exit() == 1
    assert said(proc) == [
        f"devreload: {ini}: [server:main] listen: no listen address given "
        "(expected host:port, [::1]:port or unix:/path)"
    ]


def test_an_edited_address_says_it_needs_a_restart(spawn: Spawn, project: Path) -> None:
    ini = write_ini(project)
    proc = devreload_serve(spawn, "dev.ini", "--reload")
    url = proc.wait_for(SERVING_RE)[1]
    wait_body(url, "^fine$")
    save_like_editor(ini, ini.read_text().replace("127.0.0.1:0", "127.0.0.1:65001"))
    proc.wait_for(
        r"devreload: dev\.ini: \[server:main\] now listens on 127\.0\.0\.1:65001, but devreload "
        r"still serves on 127\.0\.0\.1:0: the monitor binds once, so an address change needs "
        r"a restart of devreload$"
    )
    proc.wait_for(r"dev\.ini changed; restarted in \d+ ms")  # the edit's own restart, done
    wait_body(url, "^fine$")  # still served where it was
    # Another edit of the app, the address as it is: not said again.
    save_like_editor(project / "app.py", WSGI_APP.replace("fine", "finer"))
    wait_body(url, "^finer$")
    wait_until(lambda: proc.count(r"restarted in") >= 2)
    assert proc.count(r"now listens on") == 1
    assert stop(proc) == 0


# --------------------------------------------------------------------------- server options


@pytest.mark.parametrize(
    ("extra", "server"),
    [("reload = true", "waitress or uvicorn"), ("reload = true\nserver = uvicorn", "uvicorn")],
    ids=["auto", "uvicorn"],
)
def test_an_unknown_server_key_under_reload_fails_at_once(
    spawn: Spawn, project: Path, extra: str, server: str
) -> None:
    ini = write_ini(project, f"listen = 127.0.0.1:0\nthreadz = 4\n{extra}")
    proc = devreload_serve(spawn, "dev.ini")
    assert proc.wait_exit() == 1
    assert said(proc) == [
        f"devreload: {ini}: [server:main] threadz: unknown option (server: {server})"
    ]


def test_uvicorn_log_level_from_an_ini(spawn: Spawn, project: Path) -> None:
    write_ini(project, "listen = 127.0.0.1:0\nserver = uvicorn\nlog_level = warning",
              app=ASGI_APP)
    proc = devreload_serve(spawn, "dev.ini")
    url = proc.wait_for(SERVING_RE)[1]
    assert get(url) == "asgi fine"
    assert stop(proc) == 0
    assert "Application startup complete" not in proc.output  # an INFO line: level applied


# --------------------------------------------------------------------------- what is said


def test_browser_without_a_browser_says_the_url(spawn: Spawn, project: Path) -> None:
    write_ini(project)
    env = {"BROWSER": "", "DISPLAY": "", "WAYLAND_DISPLAY": "", "TERM": ""}
    proc = devreload_serve(spawn, "dev.ini", "--browser", env=env)
    url = proc.wait_for(SERVING_RE)[1]
    proc.wait_for(rf"devreload: no web browser could be opened; open {re.escape(url)} yourself$")
    assert stop(proc) == 0


def test_the_show_errors_hint_names_the_section(spawn: Spawn, project: Path) -> None:
    write_ini(project, "listen = 0.0.0.0:0")
    proc = devreload_serve(spawn, "dev.ini", "--reload")
    url = proc.wait_for(SERVING_RE)[1]
    proc.wait_for(
        r"the error page hides tracebacks on a public address; to show them, set "
        r"show_errors = true in \[server:main\] or \[devreload\] of dev\.ini$"
    )
    wait_body(url, "^fine$")  # the monitor is in its loop: SIGTERM is a clean stop
    assert stop(proc) == 0


# --------------------------------------------------------------------------- intervals


@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
@pytest.mark.parametrize("option", ["--reload-interval", "--shutdown-interval"])
@pytest.mark.parametrize("entry", ["run", "serve"])
def test_an_interval_that_is_no_finite_number_of_seconds_is_refused(
    spawn: Spawn, project: Path, entry: str, option: str, value: str
) -> None:
    """``nan`` makes every deadline unreachable, ``inf`` overflows one: both are refused
    where they are written, like a negative one."""
    (project / "app.py").write_text(WSGI_APP + "\napp = make({})\n")
    target = ["app.py"] if entry == "run" else ["app:app", "--reload"]
    proc = spawn([SCRIPT, entry, f"{option}={value}", *target])
    assert proc.wait_exit() == 2
    assert said(proc)[-1].endswith(f"error: argument {option}: {value!r} "
                                   + ("must not be negative" if value == "-1"
                                      else "is not a finite number of seconds"))


@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
@pytest.mark.parametrize("key", ["reload_interval", "shutdown_interval"])
def test_an_interval_in_an_ini_that_is_no_finite_number_is_one_line_and_exit_2(
    spawn: Spawn, project: Path, key: str, value: str
) -> None:
    """The same value is the same usage error in an ini as on the command line."""
    write_ini(project, f"listen = 127.0.0.1:0\n{key} = {value}")
    proc = devreload_serve(spawn, "dev.ini", "--reload")
    assert proc.wait_exit() == 2
    why = "must not be negative" if value == "-1" else "is not a finite number of seconds"
    assert said(proc) == [f"devreload: {project / 'dev.ini'}: [server:main] {key}: "
                          f"{value!r} {why}"]
