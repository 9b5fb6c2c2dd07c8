"""Every ini served the devreload way (issue 10), as real processes on real ports:
``use = egg:waitress#main`` on the monitor's held socket with waitress's own options, another
server runner warned about and timed by when it accepts, and pserve with ``egg:devreload``
following its ini."""

from __future__ import annotations

import functools
import http.client
import socket
import sys
import threading
from pathlib import Path

import pytest
from helpers import Proc, wait_until
from served import SERVING_RE, Spawn, asking, devreload_serve, edit, stop, wait_body

APP = "ini_servers_app.py"
APP_SECTION = "[app:main]\nuse = call:ini_servers_app:make_app\ngreeting = Hello\n\n"


def _restarted(proc: Proc, times: int) -> bool:
    return proc.count(r"changed; restarted in \d+ ms") >= times


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def fetch(url: str, path: str = "/") -> tuple[int, dict[str, str], str]:
    """Status, headers and body of a GET on a new connection (plain text, not HTML)."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", path, headers={"Accept": "text/plain"})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    finally:
        conn.close()


def meet(url: str, parties: int) -> list[str]:
    """``parties`` requests to ``/meet/N`` at once: what each answered."""
    answers: list[str] = []
    threads = [threading.Thread(target=lambda: answers.append(fetch(url, f"/meet/{parties}")[2]))
               for _ in range(parties)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    return answers


# --------------------------------------------------------------------------- egg:waitress#main


def test_waitress_ini_is_served_on_the_held_socket(spawn: Spawn, project: Path) -> None:
    port = free_port()
    (project / "dev.ini").write_text(
        APP_SECTION + "[server:main]\nuse = egg:waitress#main\n"
        f"listen = 127.0.0.1:{port}\nurl_scheme = https\nthreads = 2\n"
    )
    proc = devreload_serve(spawn, "dev.ini", "--reload", apps=[APP])
    url = proc.wait_for(SERVING_RE)[1]
    assert url == f"http://127.0.0.1:{port}"
    # waitress's options, as waitress reads them: the scheme, and two request threads
    # (two requests can be in the app at once, three cannot).
    wait_body(url, r"^Hello one scheme=https pid=\d+$")
    # The app's bytecode cache, held while it started, is written once it answers.
    wait_until(lambda: list((project / "__pycache__").glob("ini_servers_app.*.pyc")),
               message="the app's bytecode was never written")
    assert meet(url, 2) == ["together", "together"]
    assert meet(url, 3) == ["alone", "alone", "alone"]
    with asking(url, pause=0.005) as client:
        previous = "one"
        for n in range(5):
            edit(project / APP, f'TOKEN = "{previous}"', f'TOKEN = "t{n}"')
            previous = f"t{n}"
            wait_until(functools.partial(client.seen, f"^Hello {previous} "), timeout=15)
            # The new worker answers before the monitor has heard it is ready: a save in
            # between would join this restart, one line for both.
            wait_until(functools.partial(_restarted, proc, n + 1),
                       message=f"no restart line for save {n + 1}")
    assert client.failures == []
    assert len(client.bodies) >= 5

    # Broken: the monitor answers on the same address with the error page.
    edit(project / APP, "TOKEN = ", "def broken(:\nTOKEN = ")

    def error_page() -> tuple[int, dict[str, str], str] | None:
        answer = fetch(url)
        return answer if answer[0] == 500 else None

    _, headers, body = wait_until(error_page, timeout=15)
    assert headers.get("X-Devreload-Error") == "1"
    assert "SyntaxError" in body
    assert APP in body
    edit(project / APP, "def broken(:\n", "")
    wait_body(url, r"^Hello t4 scheme=https ")
    assert stop(proc) == 0


def test_waitress_ini_defaults_to_loopback(spawn: Spawn, project: Path) -> None:
    """Only a port: waitress would listen on 0.0.0.0; devreload stays on 127.0.0.1."""
    port = free_port()
    (project / "dev.ini").write_text(
        APP_SECTION + f"[server:main]\nuse = egg:waitress#main\nport = {port}\n"
    )
    proc = devreload_serve(spawn, "dev.ini", apps=[APP])
    assert proc.wait_for(SERVING_RE)[1] == f"http://127.0.0.1:{port}"
    wait_body(f"http://127.0.0.1:{port}", r"^Hello one scheme=http ")
    assert stop(proc) == 0
    assert "public address" not in proc.output


@pytest.mark.parametrize("reload", [True, False])
def test_waitress_ini_unknown_key_is_one_line(spawn: Spawn, project: Path, reload: bool) -> None:
    (project / "dev.ini").write_text(
        APP_SECTION + "[server:main]\nuse = egg:waitress#main\nlisten = 127.0.0.1:0\nthreadz = 4\n"
    )
    proc = devreload_serve(spawn, "dev.ini", *(["--reload"] if reload else []), apps=[APP])
    assert proc.wait_exit() == 1
    assert [line for line in proc.lines if line.strip()] == [
        f"devreload: {project}/dev.ini: [server:main] threadz: unknown option (server: waitress)"
    ]


# --------------------------------------------------------------------------- another runner


def test_another_runner_is_warned_about_and_timed_by_its_listening(
    spawn: Spawn, project: Path
) -> None:
    port = free_port()
    (project / "dev.ini").write_text(
        APP_SECTION + "[server:main]\nuse = call:ini_servers_app:wsgiref_server\n"
        f"host = 127.0.0.1\nport = {port}\nstartup_delay = 0.3\n"
    )
    proc = devreload_serve(spawn, "dev.ini", "--reload", apps=[APP])
    url = f"http://127.0.0.1:{port}"
    proc.wait_for(r"LISTENING pid=")
    wait_body(url, r"^Hello one ")
    warning = (
        r"devreload: dev\.ini: \[server:main\] runs call:ini_servers_app:wsgiref_server, which "
        r"binds its own socket: devreload does not hold it, so requests are refused while the "
        r"app restarts and no error page is shown \(use = egg:devreload for both\)$"
    )
    previous = "one"
    for n in range(2):
        mark = proc.mark()
        edit(project / APP, f'TOKEN = "{previous}"', f'TOKEN = "t{n}"')
        previous = f"t{n}"
        restarted = proc.wait_for(r"changed; restarted in (\d+) ms", timeout=15, start=mark)
        lines = proc.lines[mark:]
        listening = next(i for i, line in enumerate(lines) if "LISTENING pid=" in line)
        done = next(i for i, line in enumerate(lines) if "restarted in" in line)
        assert listening < done, "\n".join(lines)
        assert int(restarted[1]) >= 300  # the runner's own start-up delay is in the timing
        wait_body(url, rf"^Hello t{n} ")
    assert stop(proc) == 0
    assert proc.count(warning) == 1
    assert proc.count(r"binds its own socket") == 1


# --------------------------------------------------------------------------- pserve


def test_pserve_with_egg_devreload_follows_its_ini(spawn: Spawn, project: Path) -> None:
    pytest.importorskip("pyramid.scripts.pserve")
    (project / "development.ini").write_text(
        "[app:main]\nuse = call:ini_servers_app:make_app\ngreeting = Hello\n\n"
        "[server:main]\nuse = egg:devreload\nlisten = 127.0.0.1:0\nreload = true\n"
    )
    proc = spawn([sys.executable, "-m", "pyramid.scripts.pserve", "development.ini"], apps=[APP])
    url = proc.wait_for(SERVING_RE)[1]
    wait_body(url, r"^Hello one ")
    edit(project / "development.ini", "greeting = Hello", "greeting = Edited")
    wait_body(url, r"^Edited one ")
    # The monitor logs the restart when the worker says Ready, which may come just after
    # the worker's first answer.
    proc.wait_for(r"development\.ini changed; restarted in \d+ ms")
    stop(proc)
