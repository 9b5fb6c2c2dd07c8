"""A ``.env`` file, read the way honcho and foreman read it, and each process's
environment from it: ``.env``, then a ``PORT`` of its own, then what its line sets.

``PORT`` follows honcho: 5000 for the first process, 100 more for each next one, so that
two servers of one stack never ask for the same port; a line that sets ``PORT=...`` keeps
its own.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence

from devreload.serving.procfile import ASSIGNMENT, Process, StackError

#: honcho's and foreman's first port, and the step between two processes.
BASE_PORT = 5000
PORT_STEP = 100
LINE = re.compile(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)\Z")
ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"'}


def read_dotenv(path: str) -> dict[str, str]:
    """``KEY=value`` per line (``export`` allowed), ``#`` comments, values bare, in single
    quotes (as written) or double quotes (with ``\\n``, ``\\t``, ``\\"`` and ``\\\\``)."""
    values: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise StackError(path, None, exc.strerror or str(exc)) from None
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        found = LINE.match(line)
        if found is None:
            raise StackError(f"{path}:{number}", None, f"not a KEY=value line: {line!r}")
        key, value = found.groups()
        values[key] = _value(value.strip(), f"{path}:{number}")
    return values


def _value(text: str, where: str) -> str:
    if text[:1] in ("'", '"'):
        quote = text[0]
        end = _closing(text, quote)
        if end < 0:
            raise StackError(where, None, f"no closing {quote} in {text!r}")
        body = text[1:end]
        if quote == '"':
            body = re.sub(r"\\(.)", lambda m: ESCAPES.get(m[1], "\\" + m[1]), body)
        return body
    return text.split(" #", 1)[0].rstrip()


def _closing(text: str, quote: str) -> int:
    i = 1
    while i < len(text):
        if text[i] == "\\" and quote == '"':
            i += 2
            continue
        if text[i] == quote:
            return i
        i += 1
    return -1


def environment(process: Process, index: int, dotenv: Mapping[str, str],
                base: Mapping[str, str] | None = None) -> dict[str, str]:
    """What ``process`` (the ``index``-th of the stack) runs with."""
    env = dict(os.environ if base is None else base)
    env.update(dotenv)
    env["PORT"] = str(BASE_PORT + PORT_STEP * index)
    env.update(own_assignments(process.argv))
    return env


def own_assignments(argv: Sequence[str]) -> dict[str, str]:
    """The ``NAME=value`` words a line starts with."""
    own: dict[str, str] = {}
    for word in argv:
        if not ASSIGNMENT.match(word):
            break
        key, _, value = word.partition("=")
        own[key] = value
    return own
