"""Launchers of one stack share the monitor's children: each takes only its own exits."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="waitpid")

# Run in a fresh interpreter: waitpid(-1) there reaps nothing of the test runner's.
SCRIPT = textwrap.dedent("""
    import os, sys, time
    from devreload.monitor.launch import ExitPool

    def child(code):
        return os.posix_spawn(sys.executable, [sys.executable, "-c", f"raise SystemExit({code})"],
                              dict(os.environ))

    pool = ExitPool()
    a, b, stray = child(3), child(4), child(5)
    pool.join(lambda pid: pid == a)
    pool.join(lambda pid: pid == b)
    taken_a, taken_b = [], []

    def reaped(pid):  # without reaping it (WNOWAIT)
        try:
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            return False
        except ChildProcessError:
            return True

    deadline = time.monotonic() + 10
    while not (taken_a and taken_b and reaped(stray)) and time.monotonic() < deadline:
        taken_a += pool.take(lambda pid: pid == a)
        taken_b += pool.take(lambda pid: pid == b)
        time.sleep(0.01)
    codes = lambda taken: [(pid, os.waitstatus_to_exitcode(s)) for pid, s in taken]
    assert codes(taken_a) == [(a, 3)], codes(taken_a)
    assert codes(taken_b) == [(b, 4)], codes(taken_b)
    assert reaped(stray) and pool.pending == {}, "a stray's exit is reaped and dropped"
    print("OK")
""")


def test_each_launcher_takes_its_own_exits_and_strays_are_reaped() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=30)
    assert done.stdout.strip() == "OK", done.stdout + done.stderr
