"""The output of a stack: every line prefixed with the name of the process that wrote it,
aligned, and coloured when a terminal shows it, as honcho and overmind print it.

devreload's own lines come under its own name and say which process they concern.
``NO_COLOR`` (any value but empty) and a ``dumb`` terminal turn colours off.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from typing import TextIO

#: ANSI colours in honcho's order: cyan, yellow, green, magenta, red, blue, then bright.
COLOURS = ("36", "33", "32", "35", "31", "34", "96", "93", "92", "95", "91", "94")
#: The name devreload's own lines are printed under.
OWN_NAME = "devreload"


def wants_colour(stream: TextIO, env: Mapping[str, str]) -> bool:
    isatty = getattr(stream, "isatty", None)
    return (bool(isatty and isatty()) and not env.get("NO_COLOR")
            and env.get("TERM") != "dumb")


class Prefixes:
    """Each process's prefix: its name padded to the longest, in a colour of its own."""

    def __init__(self, names: Sequence[str], colour: bool) -> None:
        width = max(len(n) for n in (*names, OWN_NAME))
        self._prefixes: dict[str, str] = {}
        for index, name in enumerate((*names, OWN_NAME)):
            text = f"{name.ljust(width)} | "
            if colour:
                code = "1" if name == OWN_NAME else COLOURS[index % len(COLOURS)]
                text = f"\033[{code}m{text}\033[0m"
            self._prefixes[name] = text

    def line(self, name: str, text: str) -> str:
        """``text`` (one line, without its newline) as the stack prints it."""
        return self._prefixes[name] + text

    def own(self, process: str, text: str) -> str:
        """One of devreload's lines about ``process``."""
        return self.line(OWN_NAME, f"{process}: {text}")


class Output:
    """Where a stack's lines go: one pipe per process, read by a thread of its own (a
    process writes there across its restarts, its children too), and devreload's lines
    about it, all through one lock so that lines never interleave."""

    def __init__(self, prefixes: Prefixes, stream: TextIO) -> None:
        self.prefixes = prefixes
        self.stream = stream
        self._lock = threading.Lock()
        self._pipes: list[int] = []

    def write(self, line: str) -> None:
        with self._lock, contextlib.suppress(OSError, ValueError):
            self.stream.write(line + "\n")
            self.stream.flush()

    def pipe(self, name: str) -> int:
        """The descriptor ``name``'s processes write to (the monitor keeps it open)."""
        read, write = os.pipe()
        self._pipes.append(write)
        threading.Thread(target=self._pump, args=(name, read), daemon=True,
                         name=f"devreload-output-{name}").start()
        return write

    def _pump(self, name: str, read: int) -> None:
        pending = b""
        while chunk := os.read(read, 65536):
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                self.write(self.prefixes.line(name, line.decode(errors="replace").rstrip("\r")))
        if pending:
            self.write(self.prefixes.line(name, pending.decode(errors="replace")))
        os.close(read)

    def logger(self, name: str | None, level: int) -> logging.Logger:
        """devreload's logger for the process ``name`` (its lines say which process), or,
        without a name, the stack's own (the ``devreload`` logger itself)."""
        log = logging.getLogger("devreload" if name is None else f"devreload.stack.{name}")
        log.setLevel(level)
        log.propagate = False
        log.handlers[:] = [_OwnLines(self, name)]
        return log

    def close(self) -> None:
        for write in self._pipes:
            with contextlib.suppress(OSError):
                os.close(write)
        self._pipes.clear()


class _OwnLines(logging.Handler):
    def __init__(self, output: Output, process: str | None) -> None:
        super().__init__()
        self.output = output
        self.process = process

    def emit(self, record: logging.LogRecord) -> None:
        prefixes = self.output.prefixes
        for line in record.getMessage().splitlines() or [""]:
            self.output.write(prefixes.line(OWN_NAME, line) if self.process is None
                              else prefixes.own(self.process, line))
