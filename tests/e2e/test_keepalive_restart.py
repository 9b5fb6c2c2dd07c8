"""Keep-alive clients across restarts (issue 11): a connection a client keeps open is handed
from the old worker to the new one, so no request fails because of a reload, and every
request sent once a restart is reported is answered by the new code."""

from __future__ import annotations

import http.client
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import wait_until
from served import SERVING_RE, Spawn, devreload_serve, edit, stop, wait_body

CLIENTS = 4
RESTARTS = 20
#: Each client's bound: the test ends well before it, unless the server stops answering.
MAX_REQUESTS = 5000
RESTARTED_RE = r"restarted in (\d+) ms"


@dataclass(frozen=True)
class Answer:
    sent: float  # time.monotonic() just before the request was written
    token: str  # which code answered
    pid: int  # which worker answered
    port: int  # the client's local port: one per TCP connection


class Clients:
    """``CLIENTS`` threads, each with one reused ``HTTPConnection``, looping GET and a POST
    with a body; every exception or wrong answer is a failure."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.address = (host, int(port))
        self.answers: list[Answer] = []
        self.failures: list[str] = []
        self.done = threading.Event()
        self.threads = [
            threading.Thread(target=self._loop, args=(i,), name=f"client-{i}")
            for i in range(CLIENTS)
        ]

    def __enter__(self) -> Clients:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        for thread in self.threads:
            thread.join(15)

    def _loop(self, client: int) -> None:
        conn = http.client.HTTPConnection(*self.address, timeout=10)
        try:
            for n in range(MAX_REQUESTS):
                if self.done.is_set():
                    return
                self._one(conn, client, n)
        finally:
            conn.close()

    def _one(self, conn: http.client.HTTPConnection, client: int, n: int) -> None:
        body = f"client {client} request {n};".encode() * 40 if n % 2 else None
        method = "POST" if body else "GET"
        sent = time.monotonic()
        try:
            conn.request(method, f"/{client}/{n}", body=body)
            assert conn.sock is not None
            port = conn.sock.getsockname()[1]
            response = conn.getresponse()
            text = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.failures.append(f"client {client} {method} #{n}: {exc!r}")
            conn.close()
            return
        token, pid, echoed = text.split(b" ", 2)
        if response.status != 200 or echoed != (body or b""):
            self.failures.append(f"client {client} {method} #{n}: {response.status} {text!r}")
        self.answers.append(Answer(sent, token.decode(), int(pid[4:]), port))

    def seen(self, token: str) -> bool:
        return any(answer.token == token for answer in self.answers[-50:])


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_keep_alive_clients_see_no_failure_across_twenty_restarts(
    spawn: Spawn, project: Path, kind: str
) -> None:
    proc = devreload_serve(
        spawn, "keepalive.ini", "--reload", f"kind={kind}",
        apps=["keepalive_apps.py", "keepalive.ini"],
    )
    url = proc.wait_for(SERVING_RE)[1]
    wait_body(url, r"^one ")
    tokens = ["one"] + [f"t{n}" for n in range(RESTARTS)]
    reported: list[float] = []  # when the test saw restart n reported
    took: list[int] = []
    began = time.monotonic()
    with Clients(url) as clients:
        wait_until(lambda: len(clients.answers) >= CLIENTS * 4, message="clients never answered")
        for n in range(RESTARTS):
            mark = proc.mark()
            edit(project / "keepalive_apps.py", f'TOKEN = "{tokens[n]}"',
                 f'TOKEN = "{tokens[n + 1]}"')
            took.append(int(proc.wait_for(RESTARTED_RE, start=mark, timeout=15)[1]))
            reported.append(time.monotonic())
            wait_until(lambda n=n: clients.seen(tokens[n + 1]), timeout=10,  # type: ignore[misc]
                       message=f"no answer from {tokens[n + 1]}")
            assert not clients.failures, clients.failures[:10]
    elapsed = time.monotonic() - began
    answers = clients.answers
    print(f"{kind}: {len(answers)} requests in {elapsed:.1f} s over {RESTARTS} restarts; "
          f"restarted in {took} ms (median {statistics.median(took):.0f})")
    assert clients.failures == []
    # Once a restart is reported, only its code (or newer) answers a request sent after.
    for answer in answers:
        newest = sum(1 for when in reported if when < answer.sent)
        assert tokens.index(answer.token) >= newest, answer
    # Connections outlived workers: the same client connection was answered by several.
    pids_per_connection: dict[int, set[int]] = {}
    for answer in answers:
        pids_per_connection.setdefault(answer.port, set()).add(answer.pid)
    assert max(len(pids) for pids in pids_per_connection.values()) > RESTARTS // 2
    assert stop(proc) == 0
    assert "Traceback" not in proc.output


def _ask(conn: http.client.HTTPConnection) -> tuple[int, str, int]:
    """One GET on a kept connection: status, body, and the connection's local port."""
    conn.request("GET", "/")
    assert conn.sock is not None
    port = conn.sock.getsockname()[1]
    response = conn.getresponse()
    return response.status, response.read().decode(), port


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_kept_connections_get_the_error_page_while_broken_then_the_fixed_app(
    spawn: Spawn, project: Path, kind: str
) -> None:
    proc = devreload_serve(
        spawn, "keepalive.ini", "--reload", f"kind={kind}",
        apps=["keepalive_apps.py", "keepalive.ini"],
    )
    url = proc.wait_for(SERVING_RE)[1]
    host, port = url.removeprefix("http://").split(":")
    asking = http.client.HTTPConnection(host, int(port), timeout=10)
    waiting = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        status, body, _ = _ask(asking)
        assert status == 200 and body.startswith("one ")
        status, body, waiting_port = _ask(waiting)
        assert status == 200 and body.startswith("one ")
        mark = proc.mark()
        edit(project / "keepalive_apps.py", 'TOKEN = "one"', 'TOKEN = "one" +')
        proc.wait_for(r"waiting for a change", start=mark, timeout=15)
        # The next request on a kept connection gets the error page, not a reset.
        status, body, _ = _ask(asking)
        assert status == 500 and "SyntaxError" in body
        mark = proc.mark()
        edit(project / "keepalive_apps.py", 'TOKEN = "one" +', 'TOKEN = "two"')
        proc.wait_for(RESTARTED_RE, start=mark, timeout=15)
        # A connection left idle while the app was broken is the fixed app's.
        status, body, again = _ask(waiting)
        assert (status, body.split()[0], again) == (200, "two", waiting_port)
    finally:
        asking.close()
        waiting.close()
    assert stop(proc) == 0


SLOW_APPS = '''\
import asyncio
import os
import time

VERSION = "one"


def _path(name):
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), name)


def wsgi_app(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        open(_path("started"), "w").close()
        while not os.path.exists(_path("release")):
            time.sleep(0.005)
    body = VERSION.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


async def asgi_app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] == "/slow":
        open(_path("started"), "w").close()
        while not os.path.exists(_path("release")):
            await asyncio.sleep(0.005)
    body = VERSION.encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def make(global_config, kind):
    return wsgi_app if kind == "wsgi" else asgi_app
'''

SLOW_INI = """\
[app:main]
use = call:slow_apps:make
kind = {kind}

[server:main]
use = egg:devreload
listen = 127.0.0.1:0
# The old worker's slow request must not reach its drain deadline during the test.
shutdown_interval = 30
"""


def _get(conn: http.client.HTTPConnection, path: str) -> str:
    conn.request("GET", path)
    response = conn.getresponse()
    return response.read().decode()


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_the_next_request_on_a_connection_busy_at_the_restart_gets_the_new_code(
    spawn: Spawn, project: Path, kind: str
) -> None:
    """The old worker finishes the request it had begun, then hands the connection over:
    the client's next request on it, sent after the restart was reported, is the new
    worker's, never parsed by the old one."""
    (project / "slow_apps.py").write_text(SLOW_APPS)
    (project / "slow.ini").write_text(SLOW_INI.format(kind=kind))
    proc = devreload_serve(spawn, "slow.ini", "--reload")
    url = proc.wait_for(SERVING_RE)[1]
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        assert _get(conn, "/") == "one"
        conn.request("GET", "/slow")
        wait_until(lambda: (project / "started").exists(), message="/slow never began")
        mark = proc.mark()
        edit(project / "slow_apps.py", 'VERSION = "one"', 'VERSION = "two"')
        proc.wait_for(RESTARTED_RE, start=mark)
        (project / "release").touch()
        assert conn.getresponse().read().decode() == "one", "begun before the change"
        assert _get(conn, "/") == "two"
    finally:
        conn.close()
    assert stop(proc) == 0
