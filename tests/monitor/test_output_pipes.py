"""A stack's output: what a process writes into its pipe comes out line by line under its
name, devreload's own lines under devreload's, never cut into each other."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator

import pytest
from helpers import wait_until

from devreload.monitor.output import Output, Prefixes


@pytest.fixture
def own_logger() -> Iterator[None]:
    """``Output.logger(None)`` takes over the ``devreload`` logger, as ``devreload up``
    does for its whole process: given back after the test."""
    log = logging.getLogger("devreload")
    saved = log.handlers[:], log.level, log.propagate
    yield
    log.handlers[:], log.level, log.propagate = saved


def test_a_process_lines_and_devreload_lines_come_out_whole(own_logger: None) -> None:
    stream = io.StringIO()
    output = Output(Prefixes(["web", "worker"], colour=False), stream)
    pipe = output.pipe("worker")
    os.write(pipe, b"first line\nsecond ")
    os.write(pipe, b"half\r\n")
    output.logger("web", logging.INFO).info("app.py changed; restarted in %d ms", 20)
    output.logger(None, logging.INFO).warning("stopping")
    wait_until(lambda: stream.getvalue().count("\n") == 4)
    output.close()
    lines = sorted(stream.getvalue().splitlines())
    assert lines == sorted([
        "worker    | first line",
        "worker    | second half",
        "devreload | web: app.py changed; restarted in 20 ms",
        "devreload | stopping",
    ])
