"""What devreload's own logger says during a test: it does not propagate (so pytest's
caplog misses it), and earlier tests may have set its level."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from devreload.log import LOGGER_NAME


class Records(logging.Handler):
    """Collects the records of devreload's logger."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self, containing: str = "") -> list[str]:
        return [r.getMessage() for r in self.records if containing in r.getMessage()]


@contextlib.contextmanager
def devreload_records() -> Iterator[Records]:
    """Every record of devreload's logger inside the block, whatever its level was."""
    log = logging.getLogger(LOGGER_NAME)
    handler = Records()
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


@contextlib.contextmanager
def devreload_logger_as_it_was() -> Iterator[None]:
    """Logging gives devreload's logger a handler of its own (``default_logger``): take it
    away again, so that tests of logging setup that run later see the logger they expect."""
    log = logging.getLogger(LOGGER_NAME)
    saved = log.handlers[:], log.propagate, log.level
    try:
        yield
    finally:
        log.handlers[:], log.propagate = saved[0], saved[1]
        log.setLevel(saved[2])
