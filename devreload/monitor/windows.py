"""Windows: how a worker is spawned, stopped and ended with everything it started.

Each worker runs in a process group of its own (``CREATE_NEW_PROCESS_GROUP``: the
console's Ctrl-C is the monitor's alone to decide) and in a job object that kills its
processes when closed: the monitor closes it when the worker exits, and Windows closes it
when the monitor dies, however it dies. The channel end is the one handle the worker
inherits; the listening sockets follow over the channel as ``socket.share`` made them
for the worker. A stop is a message first (the worker runs its graceful path), with a
console break for what the worker started (the worker ignores it), and the job is
terminated at the deadline. No SIGCHLD: a thread per worker waits for its exit.

The OS calls sit in :class:`Kernel32`, thin enough that the rest is tested with it faked.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from devreload.monitor.launch import WORKER_ARGV
from devreload.monitor.spares import stop_message
from devreload.wire.channel import Channel, ChannelClosed, share
from devreload.wire.contract import FDS_ENV
from devreload.wire.messages import SharedSockets

JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE = 0x2000
JOB_OBJECT_EXTENDED_LIMIT_INFORMATION_CLASS = 9
#: The exit code of a worker ended by its job (as TerminateProcess's callers use 1).
TERMINATED = 1


class _BasicLimits(ctypes.Structure):
    _fields_ = [
        ("PerProcessUserTimeLimit", ctypes.c_int64),
        ("PerJobUserTimeLimit", ctypes.c_int64),
        ("LimitFlags", ctypes.c_uint32),
        ("MinimumWorkingSetSize", ctypes.c_size_t),
        ("MaximumWorkingSetSize", ctypes.c_size_t),
        ("ActiveProcessLimit", ctypes.c_uint32),
        ("Affinity", ctypes.c_size_t),
        ("PriorityClass", ctypes.c_uint32),
        ("SchedulingClass", ctypes.c_uint32),
    ]


class _ExtendedLimits(ctypes.Structure):
    _fields_ = [
        ("BasicLimitInformation", _BasicLimits),
        ("IoInfo", ctypes.c_uint64 * 6),
        ("ProcessMemoryLimit", ctypes.c_size_t),
        ("JobMemoryLimit", ctypes.c_size_t),
        ("PeakProcessMemoryUsed", ctypes.c_size_t),
        ("PeakJobMemoryUsed", ctypes.c_size_t),
    ]


class WinApi(Protocol):
    """The Windows calls the spawner makes."""

    def popen(self, argv: list[str], env: dict[str, str], inherit: int,
              output: int | None = None) -> subprocess.Popen[bytes]: ...

    def create_job(self) -> int:
        """A job object that kills its processes once its last handle closes."""

    def assign(self, job: int, process: subprocess.Popen[bytes]) -> None: ...

    def terminate(self, job: int) -> None: ...

    def close(self, handle: int) -> None: ...

    def send_break(self, group: int) -> None:
        """CTRL_BREAK_EVENT to the console process group ``group``."""


class Kernel32:
    """The real calls (``subprocess`` and kernel32 through ctypes)."""

    def popen(self, argv: list[str], env: dict[str, str], inherit: int,
              output: int | None = None) -> subprocess.Popen[bytes]:
        if sys.platform != "win32":
            raise OSError("a Windows call")
        # Popen adds the standard handles to the handle list itself.
        info = subprocess.STARTUPINFO(lpAttributeList={"handle_list": [inherit]})
        return subprocess.Popen(argv, env=env, startupinfo=info, close_fds=True,
                                stdout=output, stderr=output,
                                creationflags=subprocess.CREATE_NEW_PROCESS_GROUP)

    def _kernel32(self) -> ctypes.CDLL:
        if sys.platform != "win32":
            raise OSError("a Windows call")
        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        kernel32.CreateJobObjectW.restype = ctypes.c_void_p
        kernel32.CreateJobObjectW.argtypes = [ctypes.c_void_p, ctypes.c_wchar_p]
        kernel32.SetInformationJobObject.argtypes = [
            ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_uint32]
        kernel32.AssignProcessToJobObject.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        kernel32.TerminateJobObject.argtypes = [ctypes.c_void_p, ctypes.c_uint]
        kernel32.CloseHandle.argtypes = [ctypes.c_void_p]
        return kernel32

    def _check(self, ok: object, what: str) -> None:
        if ok:
            return
        error = 0
        if sys.platform == "win32":
            error = ctypes.get_last_error()
        raise OSError(error, f"{what} failed")

    def create_job(self) -> int:
        kernel32 = self._kernel32()
        job = kernel32.CreateJobObjectW(None, None)
        self._check(job, "CreateJobObjectW")
        limits = _ExtendedLimits()
        limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
        self._check(kernel32.SetInformationJobObject(
            job, JOB_OBJECT_EXTENDED_LIMIT_INFORMATION_CLASS, ctypes.byref(limits),
            ctypes.sizeof(limits)), "SetInformationJobObject")
        return int(job)

    def assign(self, job: int, process: subprocess.Popen[bytes]) -> None:
        handle = int(getattr(process, "_handle"))  # noqa: B009 - Popen keeps it there
        self._check(self._kernel32().AssignProcessToJobObject(job, handle),
                    "AssignProcessToJobObject")

    def terminate(self, job: int) -> None:
        self._kernel32().TerminateJobObject(job, TERMINATED)

    def close(self, handle: int) -> None:
        self._kernel32().CloseHandle(handle)

    def send_break(self, group: int) -> None:
        if sys.platform != "win32":
            raise OSError("a Windows call")
        os.kill(group, signal.CTRL_BREAK_EVENT)


class WindowsSpawner:
    """Workers in a process group and a job object each."""

    def __init__(self, api: WinApi | None = None, output: int | None = None) -> None:
        self.api: WinApi = api or Kernel32()
        self.output = output
        #: Each live worker's job, by pid.
        self.jobs: dict[int, int] = {}

    def spawn(self, env: dict[str, str], channel: Channel, channel_end: socket.socket,
              sockets: Sequence[socket.socket]) -> subprocess.Popen[bytes]:
        channel_end.set_inheritable(True)
        env[FDS_ENV] = str(channel_end.fileno())
        job = self.api.create_job()
        try:
            process = self.api.popen(WORKER_ARGV, env, channel_end.fileno(), self.output)
        except BaseException:
            self.api.close(job)
            raise
        self.jobs[process.pid] = job
        # It waits on its channel for its sockets and spec, so it starts nothing before
        # it is in its job.
        self.api.assign(job, process)
        with contextlib.suppress(ChannelClosed):
            channel.send(SharedSockets(tuple(share(s, process.pid) for s in sockets)))
        return process

    def watch_exit(self, process: subprocess.Popen[bytes], notify: Callable[[], None]) -> None:
        def wait() -> None:
            process.wait()
            notify()

        threading.Thread(target=wait, name=f"devreload-wait-{process.pid}", daemon=True).start()

    def stop(self, process: subprocess.Popen[bytes], channel: Channel) -> None:
        stop_message(channel)
        with contextlib.suppress(OSError):  # no console (pythonw): nothing to break
            self.api.send_break(process.pid)

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        job = self.jobs.get(process.pid)
        if job is not None:
            self.api.terminate(job)

    def ended(self, process: subprocess.Popen[bytes]) -> None:
        job = self.jobs.pop(process.pid, None)
        if job is not None:
            self.api.terminate(job)
            self.api.close(job)

    def close(self) -> None:
        for job in self.jobs.values():
            self.api.terminate(job)
            self.api.close(job)
        self.jobs.clear()
