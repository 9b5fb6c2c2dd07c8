"""The monitor's error page on a real listening socket."""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterator

import pytest

from devreload.monitor.errorserver import ErrorPage
from devreload.sockets import any_public as public
from devreload.web.page import render, where

TRACEBACK = """\
Traceback (most recent call last):
  File "/srv/app/views.py", line 12, in home
    return "<b>" + missing
NameError: name 'missing' is not defined
"""


def test_where_names_the_innermost_file_and_line() -> None:
    assert where(TRACEBACK) == "/srv/app/views.py:12: NameError: name 'missing' is not defined"
    assert where("devreload: app.ini: [app:main]: no such section\n").startswith("devreload:")


def test_html_is_escaped_and_text_is_plain() -> None:
    ctype, body = render(TRACEBACK, "text/html,*/*", show=True)
    assert ctype.startswith("text/html")
    assert b"&lt;b&gt;" in body and b"<b>" not in body
    ctype, body = render(TRACEBACK, "*/*", show=True)
    assert ctype.startswith("text/plain") and body == TRACEBACK.encode()
    _, hidden = render(TRACEBACK, "*/*", show=False)
    assert b"views.py" not in hidden


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield sock
    sock.close()


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


def test_answers_while_started_and_not_after_stop(listener: socket.socket) -> None:
    page = ErrorPage([listener])
    page.start(TRACEBACK)
    status, headers, body = ask(listener)
    assert status == 500 and headers["X-Devreload-Error"] == "1" and b"NameError" in body
    status, headers, body = ask(listener, "HEAD")
    assert status == 500 and body == b"" and int(headers["Content-Length"]) == len(TRACEBACK)
    status, headers, body = ask(listener, path="/__devreload__/events")
    assert headers["Content-Type"] == "text/event-stream" and b"event: broken" in body
    page.stop()
    # Stopped: a new connection waits in the backlog for the next worker, unanswered.
    client = socket.create_connection(listener.getsockname()[:2], timeout=0.5)
    client.sendall(b"GET / HTTP/1.0\r\n\r\n")
    with pytest.raises(TimeoutError):
        client.recv(1)
    client.close()


def test_public_addresses_are_told_apart(listener: socket.socket) -> None:
    assert not public([listener])
    wide = socket.socket()
    wide.bind(("0.0.0.0", 0))
    try:
        assert public([wide])
    finally:
        wide.close()
