"""Which responses get the live-reload script, and how it goes in.

Only a page being navigated to: a script in anything else breaks it. htmx partials,
fragments fetched by scripts, redirect bodies and API helpers answer ``text/html`` too, so
the content type is not enough. Browsers mark a navigation with ``Sec-Fetch-Dest:
document`` and every other request with another destination; without that header (an
older browser, a script, curl) only a 200 body that is an HTML document (a doctype,
``<html>`` or ``<body>``) gets the script, never a fragment.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

#: How the injected tag starts: a page that has it already is left alone.
MARKER = b"<script data-devreload"
_DOCUMENT = re.compile(rb"<!doctype\s+html|<html[\s>]|<body[\s>]", re.IGNORECASE)


def navigation(method: str, header: Callable[[str], str | None]) -> bool | None:
    """What the request says of itself: True, a browser navigates to a page; False, it
    never wants a page (HEAD, htmx, a fetch, an image...); None, it does not say and the
    body decides. ``header`` gives a request header by its lower-case name."""
    if method.upper() == "HEAD" or header("hx-request") is not None:
        return False
    dest = header("sec-fetch-dest")
    if dest is None:
        return None
    return dest.strip().lower() == "document"


def injectable(status: int, headers: Iterable[tuple[str, str]]) -> bool:
    """An HTML response, whole and readable, that is not a redirect, an empty answer or a
    download: no other response is ever touched."""
    if status < 200 or status in (204, 206) or 300 <= status < 400:
        return False
    said = {name.lower(): media_type(value) for name, value in headers}
    return (
        said.get("content-type") == "text/html"
        and said.get("content-encoding", "identity") in ("", "identity")
        and said.get("content-disposition") != "attachment"
    )


def is_page(navigating: bool | None, status: int, body: bytes) -> bool:
    """Whether this body is a page to put the script in (see :func:`navigation`)."""
    if navigating is None:
        return status == 200 and _DOCUMENT.search(body) is not None
    return navigating


def inject(body: bytes, tag: bytes) -> bytes | None:
    """``body`` with ``tag`` before its last ``</body>``, or at its end when it has none
    (a template without one: browsers put a trailing script in the body). None means
    "leave it as it is": the body is empty or the page has the script already
    (LiveReload wrapped twice)."""
    if MARKER in body or not body.strip():
        return None
    index = body.lower().rfind(b"</body>")
    if index < 0:
        return body + tag
    return body[:index] + tag + body[index:]


def media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def content_length(headers: Iterable[tuple[str, str]]) -> int | None:
    for name, value in headers:
        if name.lower() == "content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def rewrite_headers(headers: Iterable[tuple[str, str]], length: int) -> list[tuple[str, str]]:
    """The headers of an injected page: its new length, and no validators, which
    described the page without the script."""
    out = []
    for name, value in headers:
        lowered = name.lower()
        if lowered == "content-length":
            out.append((name, str(length)))
        elif lowered not in ("etag", "last-modified"):
            out.append((name, value))
    return out
