"""The output of a stack: every line prefixed with the name of the process that wrote it,
aligned, and coloured when a terminal shows it, as honcho and overmind print it.

devreload's own lines come under its own name and say which process they concern.
``NO_COLOR`` (any value but empty) and a ``dumb`` terminal turn colours off.
"""

from __future__ import annotations

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
