"""The janitor: the process that ends every worker's tree when the monitor dies.

A worker's own threads cannot be relied on for that: the monitor may die by SIGKILL,
and a worker stuck in C code holding the GIL runs no Python at all. The janitor is a
tiny interpreter (``processes.janitor_main``, without devreload's imports) that reads the
pids of live workers from a pipe; EOF on it means the monitor is gone.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

from devreload import platforms, processes
from devreload.monitor.spawn import spawn

#: How long the monitor waits for its janitor to end the workers and exit, at the end.
JANITOR_EXIT = 2.0


class Janitor:
    """The monitor's handle on its janitor process."""

    def __init__(self) -> None:
        read, self.pipe = os.pipe()
        argv = [sys.executable, "-I", "-S", processes.__file__, "janitor", str(read)]
        self.process: subprocess.Popen[bytes] | None = None
        if platforms.current().adopts_orphans:
            self.pid = spawn(argv, [read], dict(os.environ))  # reaped with the workers
        else:
            # Where workers are spawned with Popen, so is it, in a session of its own so
            # that the terminal's Ctrl-C is the monitor's to decide.
            self.process = subprocess.Popen(argv, pass_fds=[read], start_new_session=True)
            self.pid = self.process.pid
        os.close(read)

    def _say(self, line: str) -> None:
        if self.pipe < 0:
            return  # closed: its number may be another descriptor's by now
        with contextlib.suppress(OSError):
            os.write(self.pipe, line.encode())

    def watch(self, pid: int) -> None:
        self._say(f"+{pid}\n")

    def forget(self, pid: int) -> None:
        self._say(f"-{pid}\n")

    def close(self) -> None:
        pipe, self.pipe = self.pipe, -1
        if pipe >= 0:
            with contextlib.suppress(OSError):
                os.close(pipe)
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(JANITOR_EXIT)
