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


def spawn(argv: list[str], fds: list[int], env: dict[str, str], output: int | None = None) -> int:
    """posix_spawn rather than Popen: the monitor reaps its children itself. The new
    process gets ``fds`` and stdio, no other descriptor of the monitor's; its stdout and
    stderr are ``output`` when given (a process of a stack writes into its own pipe)."""
    if sys.platform == "win32":
        raise OSError("posix_spawn is not on Windows")
    processes.close_on_exec(fds)
    for fd in fds:
        os.set_inheritable(fd, True)
    try:
        actions = [] if output is None else [(os.POSIX_SPAWN_DUP2, output, 1),
                                             (os.POSIX_SPAWN_DUP2, output, 2)]
        return os.posix_spawn(argv[0], argv, env, setsid=True, file_actions=actions)
    finally:
        for fd in fds:
            os.set_inheritable(fd, False)
