"""A failure as the developer wants to read it: the user's own frames first, with the
source around the failing line; library frames (devreload's, PasteDeploy's) kept apart."""

from __future__ import annotations

import linecache
import os
import traceback
from typing import Any

from devreload.errors import DevreloadError
from devreload.log import display_path
from devreload.wire.messages import Frame
from devreload.worker.modules import library_roots

#: Source lines shown above and below the line of each of the app's frames.
CONTEXT_LINES = 3
#: The innermost frames the error page gets (a RecursionError has a thousand).
MAX_PAGE_FRAMES = 100


def traceback_files(exc: BaseException) -> list[str]:
    """Files named in a traceback (and a SyntaxError's file), to watch until they are fixed."""
    files = [frame.filename for frame in traceback.extract_tb(exc.__traceback__)]
    if isinstance(exc, SyntaxError) and exc.filename:
        files.append(exc.filename)
    return [os.path.abspath(f) for f in files if os.path.isfile(f)]


def is_user_file(filename: str, roots: tuple[str, ...] | None = None) -> bool:
    """Whether a traceback's file is the app's own code: not devreload's, the standard
    library's or an installed package's (wherever the distribution put its packages)."""
    if filename.startswith("<frozen "):
        return False
    hidden = PACKAGE_DIR, *(library_roots() if roots is None else roots)
    real = os.path.realpath(filename)
    parts = real.split(os.sep)
    return not real.startswith(hidden) and not {"site-packages", "dist-packages"} & set(parts)


def _user_frames(exc: BaseException) -> tuple[list[traceback.FrameSummary], list[Any]]:
    frames = list(traceback.extract_tb(exc.__traceback__))
    roots = library_roots()
    shown = [f for f in frames if is_user_file(f.filename, roots)]
    return frames, shown


def where_raised(exc: BaseException) -> str:
    """``file:line in function`` of the innermost frame of the user's own code."""
    frames, shown = _user_frames(exc)
    frame = (shown or frames or [None])[-1]
    if frame is None:
        return "?"
    return f"{display_path(frame.filename)}:{frame.lineno} in {frame.name}"


def compact_traceback(exc: BaseException) -> str:
    """The user's own frames (the innermost one when there are none): the frames of
    devreload, runpy, PasteDeploy, the standard library and installed packages say nothing
    about the user's bug (the error page has them, folded: ``failure_details``). A syntax
    error in the app's own file is shown at that file alone: the library that imported
    it (PasteDeploy, pyramid) is no place to look."""
    frames, shown = _user_frames(exc)
    own_syntax = (isinstance(exc, SyntaxError) and bool(exc.filename)
                  and is_user_file(str(exc.filename)))
    if frames and not shown and not own_syntax:
        shown.append(frames[-1])
    head = "Traceback (most recent call last):\n" if shown else ""
    body = "".join(traceback.format_list(shown))
    return head + body + "".join(traceback.format_exception_only(type(exc), exc))


def failure_details(exc: BaseException) -> tuple[tuple[Frame, ...], str]:
    """Every frame of ``exc`` with its source (the error page folds the libraries'), and
    its exception lines; for a DevreloadError, its cause's (none without a cause)."""
    if isinstance(exc, DevreloadError):
        cause = exc.__cause__
        if cause is None or isinstance(cause, DevreloadError):
            return (), ""
        frames, text = failure_details(cause)
        return frames, f"{text}devreload: {exc}\n"
    roots = library_roots()
    places = [(f.filename, f.lineno or 0, f.name) for f in traceback.extract_tb(exc.__traceback__)]
    if isinstance(exc, SyntaxError) and exc.filename and exc.lineno:
        places.append((exc.filename, exc.lineno, ""))  # where the parser stopped
    frames = tuple(_frame(path, line, name, is_user_file(path, roots))
                   for path, line, name in places[-MAX_PAGE_FRAMES:])
    return frames, "".join(traceback.format_exception_only(type(exc), exc))


def _frame(filename: str, lineno: int, name: str, user: bool) -> Frame:
    """A frame with its source: lines around it for the app's code, its own line else."""
    if lineno < 1:
        return Frame(filename, lineno, name, user)
    radius = CONTEXT_LINES if user else 0
    first = max(1, lineno - radius)
    linecache.checkcache(filename)
    numbers = range(first, lineno + radius + 1)
    lines = [linecache.getline(filename, n).rstrip("\r\n") for n in numbers]
    while len(lines) > lineno - first + 1 and not lines[-1].strip():
        lines.pop()  # past the end of the file, or blank lines after the failing one
    if not any(line.strip() for line in lines):
        lines = []  # no source (a file gone since, or code made at run time)
    return Frame(filename, lineno, name, user, first, tuple(lines))


PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
