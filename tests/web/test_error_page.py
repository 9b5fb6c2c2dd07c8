"""The error page as rendered: what a failure looks like in HTML and in plain text."""

from __future__ import annotations

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
