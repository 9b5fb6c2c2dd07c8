"""How the monitor starts a Python process of its own (a worker, the template, the
janitor): ``posix_spawn`` in a new session, with only the descriptors it is given."""

from __future__ import annotations

import os
import subprocess
import sys

from devreload import processes


def python_argv(code: str) -> list[str]:
    """This interpreter, with its own flags (``-X``, ``-W``...), running ``code``."""
    flags: list[str] = subprocess._args_from_interpreter_flags()  # type: ignore[attr-defined]
    return [sys.executable, *flags, "-c", code]


def spawn(argv: list[str], fds: list[int], env: dict[str, str]) -> int:
    """posix_spawn rather than Popen: the monitor reaps its children itself. The new
    process gets ``fds`` and stdio, no other descriptor of the monitor's."""
    if sys.platform == "win32":
        raise OSError("posix_spawn is not on Windows")
    processes.close_on_exec(fds)
    for fd in fds:
        os.set_inheritable(fd, True)
    try:
        return os.posix_spawn(argv[0], argv, env, setsid=True)
    finally:
        for fd in fds:
            os.set_inheritable(fd, False)
