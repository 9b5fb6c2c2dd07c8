"""``devreload serve`` and ``devreload.serve()`` as real processes on real ports."""

from __future__ import annotations

import functools
import re
import shutil
import socket
import sys
from pathlib import Path

import pytest
from helpers import needs_fork, wait_until
from served import (
    EXAMPLES,
    SERVING_RE,
    Spawn,
    asking,
    copy_example,
    devreload_serve,
    edit,
    get,
    stop,
    wait_body,
)

# --------------------------------------------------------------------------- without --reload


def test_serves_the_wsgi_example_in_one_process(spawn: Spawn, project: Path) -> None:
    copy_example("wsgi", project)
    proc = devreload_serve(spawn, "development.ini", "http_port=0", "default_greeting=Yo")
    url = proc.wait_for(SERVING_RE)[1]
    assert url.startswith("http://127.0.0.1:")
    assert get(url).startswith(f"Yo! Hello from a WSGI app (pid {proc.pid})")
    proc.wait_for(r"INFO  \[example\] answering /")  # the ini's logging sections apply
    assert stop(proc) == 0
    assert "Traceback" not in proc.output


def test_port_in_use_is_one_line(spawn: Spawn, project: Path) -> None:
    copy_example("wsgi", project)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for extra in ([], ["--reload"]):
            proc = devreload_serve(spawn, "development.ini", f"http_port={port}", *extra)
            assert proc.wait_exit() == 1
            lines = [line for line in proc.lines if line.strip()]
            assert lines == [
                f"devreload: cannot listen on 127.0.0.1:{port}: address already in use "
                "(stop the other server or choose another port)"
            ]


def test_unknown_server_option_is_one_line(spawn: Spawn, project: Path) -> None:
    shutil.copy(EXAMPLES / "include" / "app.py", project)
    (project / "dev.ini").write_text(
        "[app:main]\nuse = call:app:make_app\n\n"
        "[server:main]\nuse = egg:devreload\nlisten = 127.0.0.1:0\nthreadz = 4\n"
    )
    proc = devreload_serve(spawn, "dev.ini")
    assert proc.wait_exit() == 1
    assert proc.lines[-1] == (
        f"devreload: {project}/dev.ini: [server:main] threadz: unknown option (server: waitress)"
    )
    assert "Traceback" not in proc.output


def test_bad_command_line_variable_is_a_usage_error(spawn: Spawn, project: Path) -> None:
    copy_example("wsgi", project)
    proc = devreload_serve(spawn, "development.ini", "oops")
    assert proc.wait_exit() == 2
    assert "unrecognized argument 'oops'" in proc.output


# --------------------------------------------------------------------------- with --reload


def test_reload_follows_the_source_the_ini_and_watched_files(spawn: Spawn, project: Path) -> None:
    copy_example("wsgi", project)
    # Variables before and after the options, overriding [DEFAULT].
    proc = devreload_serve(
        spawn, "development.ini", "default_greeting=Howdy", "--reload", "http_port=0"
    )
    url = proc.wait_for(SERVING_RE)[1]
    first = wait_body(url, r"^Howdy! Hello from a WSGI app")
    edit(project / "app.py", '"Hello from a WSGI app"', '"Edited source"')
    wait_body(url, r"^Howdy! Edited source")
    edit(project / "development.ini", "greeting = %(default_greeting)s", "greeting = Edited ini")
    wait_body(url, r"^Edited ini! Edited source")
    edit(project / "templates" / "page.txt", "{greeting}!", "{greeting}?")
    last = wait_body(url, r"^Edited ini\? Edited source")
    assert first.split("(pid")[1] != last.split("(pid")[1]
    # The monitor logs a restart when the worker says it is ready, which may come just
    # after the worker's first answer; an edit made while that word is on its way joins
    # the restart under way (one line, "+1 more").
    wait_until(lambda: proc.count(r"devreload: .*changed; restarted in \d+ ms") >= 2)
    assert stop(proc) == 0
    assert "Traceback" not in proc.output


def test_reload_follows_an_included_ini(spawn: Spawn, project: Path) -> None:
    copy_example("include", project)
    proc = devreload_serve(spawn, "development.ini", "--reload", "http_port=0")
    url = proc.wait_for(SERVING_RE)[1]
    wait_body(url, r"^Hello from base\.ini$")
    edit(project / "base.ini", "Hello from base.ini", "Edited base")
    wait_body(url, r"^Edited base$")
    edit(
        project / "development.ini",
        "[app:main]\nuse = config:base.ini#main\n",
        "[app:main]\nuse = config:base.ini#main\ngreeting = Local\n",
    )
    wait_body(url, r"^Local$")
    assert stop(proc) == 0


def test_asgi_lifespan_runs_on_every_restart(spawn: Spawn, project: Path) -> None:
    copy_example("asgi", project)
    proc = devreload_serve(spawn, "development.ini", "--reload", "http_port=0")
    url = proc.wait_for(SERVING_RE)[1]
    wait_body(url, r"^Hello from an ASGI app")
    for n in range(2):
        edit(
            project / "app.py",
            f'MESSAGE = "{"Hello from an ASGI app" if n == 0 else "v1"}"',
            f'MESSAGE = "v{n + 1}"',
        )
        wait_body(url, rf"^v{n + 1} ")
    assert stop(proc) == 0
    starts = re.findall(r"lifespan startup pid=(\d+)", proc.output)
    stops = re.findall(r"lifespan shutdown pid=(\d+)", proc.output)
    assert len(set(starts)) == 3
    assert stops == starts


def test_another_paste_server_reloads_too(spawn: Spawn, project: Path) -> None:
    shutil.copy(EXAMPLES / "include" / "app.py", project)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (project / "dev.ini").write_text(
        "[app:main]\nuse = call:app:make_app\ngreeting = one\n\n"
        f"[server:main]\nuse = egg:waitress#main\nlisten = 127.0.0.1:{port}\n"
    )
    proc = devreload_serve(spawn, "dev.ini", "--reload")
    url = f"http://127.0.0.1:{port}"
    wait_body(url, r"^one$")
    edit(project / "dev.ini", "greeting = one", "greeting = two")
    wait_body(url, r"^two$")
    assert stop(proc) == 0


def test_browser_opens_once_the_app_answers(spawn: Spawn, project: Path) -> None:
    copy_example("include", project)
    (project / "opener.py").write_text(
        "import sys\nopen(sys.argv[2], 'a').write(sys.argv[1] + '\\n')\n"
    )
    opened = project / "opened.txt"
    env = {"BROWSER": f"{sys.executable} {project}/opener.py %s {opened}"}
    proc = devreload_serve(
        spawn, "development.ini", "--reload", "--browser", "http_port=0", env=env
    )
    url = proc.wait_for(SERVING_RE)[1]
    wait_until(opened.exists)
    assert wait_until(lambda: opened.read_text().split()) == [url]
    assert stop(proc) == 0


# --------------------------------------------------------------------------- serve() API


@pytest.mark.parametrize("how", ["script", "module"])
def test_serve_from_a_script_and_from_python_m(spawn: Spawn, project: Path, how: str) -> None:
    copy_example("script", project)
    argv = ["serve_app.py"] if how == "script" else ["-m", "serve_app"]
    proc = spawn([sys.executable, *argv], env={"PORT": "0"})
    url = proc.wait_for(SERVING_RE)[1]
    wait_body(url, r"^Hello from a script")
    edit(project / "serve_app.py", '"Hello from a script"', '"Edited script"')
    wait_body(url, r"^Edited script")
    assert stop(proc) == 0
    assert "Traceback" not in proc.output


@needs_fork
def test_a_serving_script_starts_the_worker_template_first(spawn: Spawn, project: Path) -> None:
    """serve(reload=True) starts the template before the monitor's own imports and binds,
    and its next workers are forked from that template."""
    copy_example("script", project)
    (project / "verbose_serve.py").write_text(
        "import logging\nimport runpy\n\n"
        "logging.getLogger('devreload').setLevel(logging.DEBUG)\n"
        "runpy.run_path('serve_app.py', run_name='__main__')\n"
    )
    proc = spawn([sys.executable, "verbose_serve.py"], env={"PORT": "0"})
    url = proc.wait_for(SERVING_RE)[1]
    wait_body(url, r"^Hello from a script")
    proc.wait_for(r"worker template \d+ started ahead, with the monitor")
    edit(project / "serve_app.py", '"Hello from a script"', '"Edited script"')
    wait_body(url, r"^Edited script")
    assert stop(proc) == 0
    assert not proc.count(r"worker template \d+ started$"), "no template but the one ahead"


def test_a_serving_script_that_fails_before_it_serves_leaves_no_template(
    spawn: Spawn, project: Path
) -> None:
    """A bad server option raises in the script after the template was started ahead: the
    template ends with the script (the fixture fails on any process left behind)."""
    copy_example("script", project)
    edit(project / "serve_app.py", "port=port)", "port=port, threadz=4)")
    proc = spawn([sys.executable, "serve_app.py"], env={"PORT": "0"})
    assert proc.wait_exit() == 1
    assert "threadz: unknown option" in proc.output


# --------------------------------------------------------------------------- availability


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_no_request_fails_while_the_app_reloads_ten_times(
    spawn: Spawn, project: Path, kind: str
) -> None:
    proc = devreload_serve(
        spawn,
        "serve_token.ini",
        "--reload",
        f"kind={kind}",
        apps=["serve_apps.py", "serve_token.ini"],
    )
    url = proc.wait_for(SERVING_RE)[1]
    wait_body(url, rf"^{kind} one ")
    with asking(url, pause=0.005) as answers:
        previous = "one"
        for n in range(10):
            edit(project / "serve_apps.py", f'TOKEN = "{previous}"', f'TOKEN = "t{n}"')
            previous = f"t{n}"
            want = f"^{kind} {previous} "
            wait_until(functools.partial(answers.seen, want), timeout=15,
                       message=f"no answer {want!r}")
    assert answers.failures == []
    assert len(answers.bodies) >= 10
    assert stop(proc) == 0


APP_WITH_CLEANUP = """\
import atexit
import os

VERSION = "one"
log = open("unflushed.log", "a")  # written, never flushed: only finalization would
log.write("worker %d wrote\\n" % os.getpid())
atexit.register(lambda: open("atexit.log", "a").write("%d\\n" % os.getpid()))


def make_app(global_conf, **settings):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [("%s %d" % (VERSION, os.getpid())).encode()]
    return app
"""


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def test_a_stopping_worker_still_runs_atexit_and_flushes_files(spawn: Spawn, project: Path) -> None:
    """Workers skip the interpreter's slow teardown; not what it is for."""
    (project / "app.py").write_text(APP_WITH_CLEANUP)
    (project / "development.ini").write_text(
        "[app:main]\nuse = call:app:make_app\n\n"
        "[server:main]\nuse = egg:devreload\nlisten = 127.0.0.1:0\n"
    )
    proc = devreload_serve(spawn, "development.ini", "--reload")
    url = proc.wait_for(SERVING_RE)[1]
    old_pid = wait_body(url, "^one ").split()[1]
    edit(project / "app.py", 'VERSION = "one"', 'VERSION = "two"')
    wait_body(url, "^two ")
    # The old worker exits once the new one has served a moment; buffered files are
    # flushed at the interpreter's teardown, after the atexit handlers.
    wait_until(lambda: old_pid in _text(project / "atexit.log").split())
    wait_until(lambda: f"worker {old_pid} wrote" in _text(project / "unflushed.log"))
    assert stop(proc) == 0
