"""The error page: a failure as HTML (the user's frames with their source) or plain text.

Rendered in the worker for an exception raised during a request
(:mod:`devreload.web.request_errors`), and in the monitor while the app is broken
(:mod:`devreload.monitor.errorserver`).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from devreload.log import display_path
from devreload.wire.messages import Frame

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<noscript><meta http-equiv="refresh" content="2"></noscript>
<style>
body {{ font: 15px/1.45 system-ui, sans-serif; margin: 2rem; color: #222; }}
h1 {{ font-size: 1.3rem; color: #b00020; margin: 0 0 .3rem; }}
p.where {{ font-family: ui-monospace, monospace; margin: 0 0 1rem; }}
pre {{ background: #f6f6f6; padding: 1rem; overflow-x: auto; border-left: 4px solid #b00020; }}
.frame p {{ font-family: ui-monospace, monospace; margin: 1rem 0 .2rem; }}
.frame pre {{ margin: 0; padding: .5rem 1rem; border-left-color: #bbb; }}
.frame .no {{ display: inline-block; min-width: 3em; color: #888; user-select: none; }}
.frame mark {{ display: block; background: #fde2e4; }}
.frame mark.failing {{ background: #f9c0c5; font-weight: bold; }}
details.library {{ margin: 1rem 0; color: #555; }}
details.library summary {{ cursor: pointer; }}
pre.exception {{ font-weight: bold; }}
small {{ color: #666; }}
</style></head>
<body><h1>{title}</h1><p class="where">{where}</p>{body}
{tail}</body></html>
"""
#: The end of the page while the app cannot start: it waits for the fix by itself.
WAITING = """<small>devreload shows this page until the app starts again; it reloads by itself
once you save a fix.</small>
<script>
(function poll() {
  fetch(location.href, {method: "HEAD", cache: "no-store"}).then(function (r) {
    if (!r.headers.get("X-Devreload-Error")) { location.reload(); }
    else { setTimeout(poll, 100); }
  }, function () { setTimeout(poll, 250); });
})();
</script>"""

HIDDEN = "The app failed to start. The details are in the server's output."
_FRAME = re.compile(r'File "([^"]+)", line (\d+)')


def where(error: str, frames: Sequence[Frame] = (), exception: str = "") -> str:
    """The innermost ``file:line`` of the app's own code (of a traceback's text, without
    ``frames``), and the last line of the exception (with frames, the exception's own
    rather than devreload's line about it)."""
    lines = [line for line in (exception or error).strip().splitlines() if line.strip()]
    last = lines[-1].strip() if lines else "The app failed."
    if frames:
        own = [line for line in lines if not line.startswith("devreload: ")]
        frame = ([f for f in frames if f.user] or list(frames))[-1]
        return f"{display_path(frame.filename)}:{frame.lineno}: {own[-1] if own else last}"
    found = _FRAME.findall(error)
    if found:
        path, line = found[-1]
        return f"{display_path(path)}:{line}: {last}"
    return last


def render(
    error: str,
    accept: str,
    show: bool,
    *,
    title: str = "The app failed to start",
    hidden: str = HIDDEN,
    waiting: bool = True,
    frames: Sequence[Frame] = (),
    exception: str = "",
) -> tuple[str, bytes]:
    """The content type and body of the error response. ``waiting``: the page polls until
    the app is back (a page for one failed request leaves that to live reload instead).
    With ``frames`` (and ``exception``) the HTML shows the app's frames with their source,
    and the libraries' folded; the plain text is always ``error``."""
    text = error if show else hidden
    if "text/html" in accept:
        if show and frames:
            body = render_frames(frames) + f'<pre class="exception">{html.escape(exception)}</pre>'
        else:
            body = f"<pre>{html.escape(text)}</pre>"
        page = PAGE.format(
            title=html.escape(title),
            where=html.escape(where(error, frames, exception) if show else ""),
            body=body,
            tail=WAITING if waiting else "",
        )
        return "text/html; charset=utf-8", _encoded(page)
    return "text/plain; charset=utf-8", _encoded(text)


def _encoded(text: str) -> bytes:
    """UTF-8, with the bytes of a path that is not (kept by Python as surrogates) shown
    escaped, as a traceback shows them in the terminal."""
    return text.encode("utf-8", "backslashreplace")


def render_frames(frames: Sequence[Frame]) -> str:
    """The app's frames first, each with its source and the line it ran marked (the
    innermost one: ``failing``), then every library frame in one ``<details>``, folded,
    as Django's and Werkzeug's pages do: the library frames are rarely the bug."""
    user = [f for f in frames if f.user] or list(frames[-1:])  # none: the innermost
    library = [f for f in frames if not any(f is u for u in user)]
    parts = [_frame_html(f, failing=f is user[-1]) for f in user]
    if library:
        names = ", ".join(dict.fromkeys(_package(f.filename) for f in library))
        count = f"{len(library)} library frame{'s' if len(library) > 1 else ''}"
        parts.append(
            f'<details class="library"><summary>{count} ({html.escape(names)})</summary>\n'
            + "".join(_frame_html(f) for f in library)
            + "</details>\n"
        )
    return '<div class="frames">\n' + "".join(parts) + "</div>\n"


def _frame_html(frame: Frame, failing: bool = False) -> str:
    where = f"{display_path(frame.filename)}, line {frame.lineno}"
    if frame.name:
        where += f", in {frame.name}"
    lines = []
    for number, source in enumerate(frame.context, start=frame.first):
        line = f'<span class="no">{number}</span>{html.escape(source)}'
        if number == frame.lineno:
            line = f"<mark{FAILING if failing else ''}>{line}</mark>"
        else:
            line += "\n"
        lines.append(line)
    source = f"<pre>{''.join(lines)}</pre>" if lines else ""
    kind = "frame user" if frame.user else "frame"
    return f'<div class="{kind}"><p>{html.escape(where)}</p>{source}</div>\n'


FAILING = ' class="failing"'
_PARENTS = re.compile(r"^(site-packages|dist-packages|python\d+(\.\d+)?)$")


def _package(filename: str) -> str:
    """The library a frame's file belongs to, by name (``paste``, ``json``, ``devreload``)."""
    parts = filename.replace("\\", "/").split("/")
    for index in range(len(parts) - 2, -1, -1):
        if _PARENTS.match(parts[index]):
            return parts[index + 1].removesuffix(".py")
    if filename.startswith("<"):
        return "Python"
    return parts[-2] if len(parts) > 1 else filename
