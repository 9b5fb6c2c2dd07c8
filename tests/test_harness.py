"""The end-to-end harness lists processes from /proc on Linux and from ``ps`` elsewhere
(macOS): both ways see the same tree, checked here where both exist."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import helpers
import pytest

PARENT = ("import subprocess, sys, time\n"
          "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\n"
          "print(child.pid, flush=True)\n"
          "time.sleep(30)\n")


@pytest.mark.skipif(not helpers.HAS_PROC, reason="compares ps with /proc, which Linux has")
def test_ps_sees_the_tree_that_proc_sees(monkeypatch: pytest.MonkeyPatch) -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    try:
        via_proc = helpers._proc_stat(parent.pid), helpers._proc_stat(child)
        below_via_proc = set(helpers.descendants_of(os.getpid()))
        monkeypatch.setattr(helpers, "HAS_PROC", False)
        via_ps = helpers._proc_stat(parent.pid), helpers._proc_stat(child)
        below_via_ps = set(helpers.descendants_of(os.getpid()))
        assert [s[1:] for s in via_ps if s] == [s[1:] for s in via_proc if s], "ppid, session"
        assert {parent.pid, child} <= below_via_ps & below_via_proc
        assert child in helpers.all_pids()
    finally:
        os.kill(child, signal.SIGKILL)
        parent.kill()
        parent.wait()
        parent.stdout.close()
