"""What devreload asks the OS about its own processes."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from devreload import processes


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
def test_a_process_start_is_never_placed_before_it_happened() -> None:
    """A file saved just before the program started is no change to what it imported."""
    before = time.time()
    done = subprocess.run(
        [sys.executable, "-c",
         "import time; from devreload import processes; "
         "print(processes.started_at(), time.time())"],
        capture_output=True, text=True, check=True, timeout=60)
    started, now = map(float, done.stdout.split())
    assert before <= started <= now


def test_this_process_started_before_now() -> None:
    assert processes.started_at() <= time.time()
