"""devreload's own log lines: ``devreload: message``, and paths shown the short way."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, ClassVar, Protocol

LOGGER_NAME = "devreload"


class Logger(Protocol):
    """What the monitor logs through; a ``logging.Logger`` fits."""

    def error(self, msg: str, *args: Any) -> None: ...

    def warning(self, msg: str, *args: Any) -> None: ...

    def info(self, msg: str, *args: Any) -> None: ...

    def debug(self, msg: str, *args: Any) -> None: ...


class _Formatter(logging.Formatter):
    """``devreload: message``, with the prefix coloured on a terminal only."""

    COLOURS: ClassVar[dict[int, str]] = {
        logging.ERROR: "31",
        logging.WARNING: "33",
        logging.INFO: "32",
        logging.DEBUG: "2",
    }

    def __init__(self, colour: bool) -> None:
        super().__init__("%(message)s")
        self.colour = colour

    def format(self, record: logging.LogRecord) -> str:
        prefix = "devreload:"
        if self.colour:
            prefix = f"\033[{self.COLOURS.get(record.levelno, '0')}m{prefix}\033[0m"
        return f"{prefix} {super().format(record)}"


def default_logger(verbose: int | None = None) -> logging.Logger:
    """The ``devreload`` logger, given a stderr handler unless the app configured one.

    ``verbose`` 0 shows errors only, 1 the reload lines, 2 every decision; None keeps the
    level already set (INFO the first time)."""
    log = logging.getLogger(LOGGER_NAME)
    if verbose is not None:
        log.setLevel({0: logging.ERROR, 1: logging.INFO}.get(verbose, logging.DEBUG))
    elif log.level == logging.NOTSET:
        log.setLevel(logging.INFO)
    if not log.handlers:
        handler: logging.Handler = logging.NullHandler()  # stderr closed (2>&-)
        if sys.stderr is not None:
            handler = logging.StreamHandler(sys.stderr)
            colour = sys.stderr.isatty() and "NO_COLOR" not in os.environ
            handler.setFormatter(_Formatter(colour))
        log.addHandler(handler)
        log.propagate = False
    return log


def display_path(path: str) -> str:
    """A path relative to the current folder when it is below it, absolute otherwise."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def first_names(names: Sequence[str], shown: int = 8) -> str:
    """``a, b, c (+5 more)``: a long list of names in a log line that stays one line."""
    more = f" (+{len(names) - shown} more)" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def counted(number: int, noun: str) -> str:
    """``1 path``, ``2 paths``: a count the way a sentence says it."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
