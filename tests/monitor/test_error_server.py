"""The monitor's error page on a real listening socket."""

from __future__ import annotations

import http.client
import socket

import pytest

from devreload.monitor.errorserver import ErrorPage
from devreload.sockets import any_public as public

TRACEBACK = """\
Traceback (most recent call last):
  File "/srv/app/views.py", line 12, in home
    return "<b>" + missing
NameError: name 'missing' is not defined
"""


def ask(
    sock: socket.socket, method: str = "GET", path: str = "/", accept: str = "*/*"
) -> tuple[int, dict[str, str], bytes]:
    host, port = sock.getsockname()[:2]
    conn = http.client.HTTPConnection(host, port, timeout=5)
    conn.request(method, path, headers={"Accept": accept})
    response = conn.getresponse()
    result = response.status, dict(response.getheaders()), response.read()
    conn.close()
    return result


def test_answers_while_started_and_not_after_stop(listening: socket.socket) -> None:
    page = ErrorPage([listening])
    page.start(TRACEBACK)
    status, headers, body = ask(listening)
    assert status == 500 and headers["X-Devreload-Error"] == "1" and b"NameError" in body
    status, headers, body = ask(listening, "HEAD")
    assert status == 500 and body == b"" and int(headers["Content-Length"]) == len(TRACEBACK)
    status, headers, body = ask(listening, path="/__devreload__/events")
    assert headers["Content-Type"] == "text/event-stream" and b"event: broken" in body
    page.stop()
    # Stopped: a new connection waits in the backlog for the next worker, unanswered.
    client = socket.create_connection(listening.getsockname()[:2], timeout=0.5)
    client.sendall(b"GET / HTTP/1.0\r\n\r\n")
    with pytest.raises(TimeoutError):
        client.recv(1)
    client.close()


def test_public_addresses_are_told_apart(listening: socket.socket) -> None:
    assert not public([listening])
    wide = socket.socket()
    wide.bind(("0.0.0.0", 0))
    try:
        assert public([wide])
    finally:
        wide.close()
