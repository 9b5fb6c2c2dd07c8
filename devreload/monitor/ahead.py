"""Starting the worker template: when the launcher first needs it, or ahead of that.

``python -m devreload`` spends most of its first quarter-second importing the monitor; the
template spends as long importing the serving layer. Started first thing (Linux, a
command that reloads), the template's start-up overlaps the monitor's instead of
following it, and the first worker is forked that much sooner. The launcher takes it
only if it was started for what the monitor then runs (same environment, same folder,
the same modules preloaded); otherwise it ends and the launcher starts its own.
"""

from __future__ import annotations

import atexit
import os
import socket
from collections.abc import Sequence

from devreload import platforms, processes
from devreload.monitor.spawn import python_argv, spawn
from devreload.wire.contract import TEMPLATE_ENV

#: ``DEVRELOAD_WORKER=spawn``: a fresh interpreter for every worker, no template.
LAUNCHER_ENV = "DEVRELOAD_WORKER"
TEMPLATE_ARGV = python_argv("from devreload.worker.template import main; main()")

#: What a worker imports before the app, by the command that runs it (the modules of the
#: worker entry points: of ``run``, of ``serve`` for an ini and for an import string).
RUN_ENTRY = "devreload.worker.runtime"
INI_ENTRY = "devreload.serving.paste"
APP_ENTRY = "devreload.serving.importapp"


def spawn_template(modules: Sequence[str] = (),
                   output: int | None = None) -> tuple[int, socket.socket]:
    """Spawn a template that imports ``modules`` before it reads its control line; its
    pid and the monitor's end of that line."""
    ours, theirs = socket.socketpair()
    with theirs:
        value = ",".join([str(theirs.fileno()), str(os.getpid()), *modules])
        pid = spawn(TEMPLATE_ARGV, [theirs.fileno()], dict(os.environ, **{TEMPLATE_ENV: value}),
                    output)
    return pid, ours


class Ahead:
    """A template started before the monitor knew it would want one, and what for. (A
    plain class: nothing heavier than spawning it is imported before it starts.)"""

    def __init__(self, pid: int, line: socket.socket, modules: tuple[str, ...],
                 environ: dict[str, str], cwd: str) -> None:
        self.pid = pid
        self.line = line
        self.modules = modules
        self.environ = environ
        self.cwd = cwd

    def fits(self, modules: Sequence[str], output: int | None) -> bool:
        """Whether it is the template the launcher would start now."""
        return (output is None and tuple(modules) == self.modules
                and dict(os.environ) == self.environ and os.getcwd() == self.cwd)

    def end(self) -> None:
        self.line.close()
        try:
            os.kill(self.pid, processes.KILL)
            os.waitpid(self.pid, 0)
        except (ChildProcessError, ProcessLookupError):
            pass


_ahead: list[Ahead] = []


def start_ahead(argv: Sequence[str]) -> None:
    """Start the template now if the command line (devreload's own arguments) will want
    one: called before the rest of devreload is imported."""
    start_ahead_for(_preloads(argv))


def start_ahead_for(modules: tuple[str, ...] | None) -> None:
    """Start the template now, preloading ``modules`` (None: no template is wanted), for a
    monitor that has yet to import its own modules and bind its sockets."""
    if modules is None or not platforms.current().forks or os.environ.get(LAUNCHER_ENV) == "spawn":
        return
    try:
        pid, line = spawn_template(modules)
    except OSError:
        return
    _ahead.append(Ahead(pid, line, modules, dict(os.environ), os.getcwd()))
    atexit.register(end_ahead)  # a command that ends before it forks leaves nothing


def take_ahead(modules: Sequence[str], output: int | None) -> Ahead | None:
    """The template started ahead, if it fits; one that does not is ended."""
    ahead = _ahead.pop() if _ahead else None
    if ahead is not None and ahead.fits(modules, output):
        return ahead
    if ahead is not None:
        ahead.end()
    return None


def end_ahead() -> None:
    """No template is wanted after all: the one started ahead, if any, ends."""
    while _ahead:
        _ahead.pop().end()


def forget_ahead() -> None:
    """In a fork of the monitor: the template is the monitor's, not this process's to end
    (nor to keep alive through its line)."""
    atexit.unregister(end_ahead)
    while _ahead:
        _ahead.pop().line.close()


def _preloads(argv: Sequence[str]) -> tuple[str, ...] | None:
    """What the template will be asked to preload first, or None when the command will
    not fork workers: ``run``, and ``serve --reload``."""
    command, rest = (argv[0], argv[1:]) if argv else ("", [])
    if command == "run":
        own = next((rest[:i] for i, w in enumerate(rest) if not w.startswith("-")), rest)
        return () if "--no-preload" in own else (RUN_ENTRY,)
    if command != "serve" or "--reload" not in rest:
        return None
    if "--no-preload" in rest:
        return ()
    words = [w for w in rest if not w.startswith("-") and "=" not in w]
    app = any(":" in w and not os.path.exists(w) for w in words)
    return (APP_ENTRY,) if app else (INI_ENTRY,)
