"""Process trees on Linux: who descends from whom, ending a whole tree, and the kernel
switches (``prctl``) that keep orphans in reach.

A worker is a child subreaper, so whatever it starts stays in its tree however it detaches
(a new session, a double fork); ending the tree from the top then ends everything.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Collection, Iterable

TYPE_CHECKING = False  # (``typing`` unimported: this module also runs as a bare script)
if TYPE_CHECKING:
    from typing import NoReturn

#: Set in every worker, so inherited by whatever it starts: how the monitor tells what a
#: worker left behind from processes of its own (a web browser it opened).
WORKER_MARK = "DEVRELOAD_WORKER_PID"
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
#: The signal that ends a process at once (Windows: TerminateProcess, whatever the number).
KILL = signal.SIGTERM
if sys.platform != "win32":
    KILL = signal.SIGKILL
#: Rounds of killing, for processes forked while their tree is being ended.
KILL_ROUNDS = 5


def prctl(option: int, value: int) -> bool:
    """Linux ``prctl(option, value)``; False where it is not available."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes  # here: the monitor spawns its first process before it needs ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(option, value, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def started_at() -> float:
    """When this process started (wall clock), at most a clock tick (10 ms) late, never
    early; now where that is unknown."""
    if not sys.platform.startswith("linux"):
        return time.time()
    try:
        with open("/proc/self/stat", "rb") as f:
            data = f.read()
        ticks = int(data[data.rindex(b")") + 2 :].split()[19]) + 1
        uptime = time.clock_gettime(time.CLOCK_BOOTTIME)
    except (OSError, ValueError, IndexError, AttributeError):
        return time.time()
    return time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process we can see."""
    parents: dict[int, int] = {}
    if not os.path.isdir("/proc"):
        return parents  # macOS: the process groups are what is left to end trees by
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        fields = data[data.rindex(b")") + 2 :].split()
        if fields[0] not in (b"Z", b"X"):
            parents[int(name)] = int(fields[1])
    return parents


def children_of(pid: int) -> list[int]:
    """The live processes whose parent is ``pid``."""
    return [child for child, parent in _parents().items() if parent == pid]


def command_line(argv: Iterable[str]) -> bytes:
    """``argv`` as ``/proc/PID/cmdline`` shows it."""
    return b"".join(os.fsencode(arg) + b"\0" for arg in argv)


def started_by_a_worker(pid: int, command_lines: Collection[bytes] = ()) -> bool:
    """Whether ``pid`` descends from a worker: it carries the worker's mark, or, forked
    without exec (a classic daemon), it still has a worker's ``command_lines``."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            if f"{WORKER_MARK}=".encode() in f.read():
                return True
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read() in command_lines
    except OSError:
        return False


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid``."""
    below: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        below.setdefault(parent, []).append(child)
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in below.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_all(pids: Iterable[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, KILL)


def signal_group(pid: int, sig: int) -> None:
    """Send ``sig`` to the process group ``pid`` leads (a worker's: it and what it started
    without leaving it). Windows has no such groups: job objects end workers' trees there."""
    if sys.platform != "win32":
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)


def kill_group(pid: int) -> None:
    signal_group(pid, KILL)


def kill_tree(pid: int) -> None:
    """SIGKILL every process below ``pid`` (``pid`` itself is left to the caller)."""
    for _ in range(KILL_ROUNDS):
        below = descendants(pid)
        if not below:
            return
        kill_all(below)


def end_own_tree() -> NoReturn:
    """The monitor died: take everything this worker started down with it (the worker is
    a subreaper: what it started is below it however it detached), then the worker."""
    kill_tree(os.getpid())
    if sys.platform != "win32":
        os.killpg(os.getpgrp(), signal.SIGKILL)
    os._exit(1)


def close_on_exec(keep: Iterable[int] = ()) -> None:
    """Mark every descriptor but stdio and ``keep`` close-on-exec: a listening socket or an
    inotify instance must not travel into the processes started from here."""
    kept = {0, 1, 2, *keep}
    listing = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"
    for name in os.listdir(listing):
        fd = int(name)
        if fd not in kept:
            with contextlib.suppress(OSError):
                os.set_inheritable(fd, False)


def janitor_main(pipe: int) -> None:
    """The janitor (see ``monitor.janitor``): run as a script, without devreload's imports."""
    workers: set[int] = set()
    pending = b""
    while chunk := os.read(pipe, 4096):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.startswith(b"+"):
                workers.add(int(line[1:]))
            elif line.startswith(b"-"):
                workers.discard(int(line[1:]))
    for pid in workers:
        kill_tree(pid)
        kill_group(pid)
    kill_all(workers)


if __name__ == "__main__" and sys.argv[1:2] == ["janitor"]:
    janitor_main(int(sys.argv[2]))
