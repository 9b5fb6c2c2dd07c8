"""``devreload up``: the whole development stack under one monitor.

Each process of the Procfile becomes a member of one :class:`~devreload.monitor.stack.Stack`:
a ``devreload serve`` line a serving reloader (held socket, error page), a Python program a
reloader of its worker, anything else a supervised process. All of them share one file
monitor, one exit pool and one output; each restarts only when its own files change.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from collections.abc import Callable, Sequence
from typing import Any

from devreload import sockets
from devreload.errors import DevreloadError
from devreload.filemon.choice import find_default_monitor_factory
from devreload.filemon.fanout import FanOut
from devreload.monitor.choice import choose_launcher
from devreload.monitor.launch import ExitPool, Launcher
from devreload.monitor.output import Output, Prefixes, wants_colour
from devreload.monitor.reloader import Reloader, ServingReloader
from devreload.monitor.settings import ReloadSettings
from devreload.monitor.stack import Stack
from devreload.monitor.supervised import Supervised
from devreload.serving.dotenv import environment, read_dotenv
from devreload.serving.procfile import Kind, Process, StackError, chosen, read_stack
from devreload.serving.serve import InStack
from devreload.wire.contract import RUN_PROGRAM

#: How the command line serves a ``devreload serve`` line's words in a stack (the CLI's
#: own parsing, handed down); its exit code, 0 once the reloader joined.
ServeLine = Callable[[list[str], InStack], int]


def add_up_parser(subparsers: Any) -> None:
    up = subparsers.add_parser(
        "up", help="run a Procfile's processes, each restarted when its own code changes",
        usage="devreload up [-f FILE] [-v | -q] [NAME ...]")
    up.add_argument("names", nargs="*", metavar="NAME", help="only these processes")
    up.add_argument("-f", "--procfile", metavar="FILE",
                    help="the Procfile (default: ./Procfile, else [tool.devreload.processes] "
                    "in ./pyproject.toml)")
    loudness = up.add_mutually_exclusive_group()
    loudness.add_argument("-v", "--verbose", action="store_true", help="explain every decision")
    loudness.add_argument("-q", "--quiet", action="store_true", help="only report errors")


def run_up(options: argparse.Namespace, serve_line: ServeLine) -> int:
    """Read the stack and run it; a bad Procfile or .env is one line and exit code 2."""
    folder = ""  # the current folder, named as the user would: "Procfile:3"
    try:
        processes = read_stack(folder, options.procfile)
        processes = chosen(processes, options.names, processes[0].source.split(":")[0])
        dotenv_path = os.path.join(folder, ".env")
        dotenv = read_dotenv(dotenv_path) if os.path.exists(dotenv_path) else {}
    except StackError as exc:
        print(f"devreload up: {exc}", file=sys.stderr)
        return 2
    level = logging.ERROR if options.quiet else logging.DEBUG if options.verbose else logging.INFO
    names = [p.name for p in processes]
    output = Output(Prefixes(names, wants_colour(sys.stdout, os.environ)), sys.stdout)
    log = output.logger(None, level)
    if dotenv:
        log.info("loaded %s into every process's environment: %s", ".env", ", ".join(dotenv))
    build = _Build(Stack(log), output, level, serve_line)
    try:
        for index, process in enumerate(processes):
            build.add(process, environment(process, index, dotenv))
    except DevreloadError as exc:
        build.close()
        print(f"devreload up: {exc}", file=sys.stderr)
        return 2
    except BaseException:
        build.close()
        raise
    return build.stack.run()


class _Build:
    """The stack's members as the Procfile's lines are read, and what they share."""

    def __init__(self, stack: Stack, output: Output, level: int, serve_line: ServeLine) -> None:
        self.stack = stack
        self.output = output
        self.level = level
        self.serve_line = serve_line
        self.exits = ExitPool()
        self.fanout = FanOut(find_default_monitor_factory(stack.log, ""), stack.log)
        self.bound: list[socket.socket] = []
        stack.closers += [self.fanout.stop, lambda: sockets.close_all(self.bound), output.close]

    def add(self, process: Process, env: dict[str, str]) -> None:
        log = self.output.logger(process.name, self.level)
        pipe = self.output.pipe(process.name)
        events = self.stack.queue_for(process.name)

        def launcher(preload: bool = True, exclude: Sequence[str] = ()) -> Launcher:
            return choose_launcher(log, preload, exclude, exits=self.exits, output=pipe)

        if process.kind is Kind.SERVE:
            self._serve(process, env, InStack(log, events, self.fanout.for_process(process.name),
                                              tuple(process.words(env)), env, launcher,
                                              lambda r, bound: self._joined(process, r, bound)))
        elif process.kind is Kind.PYTHON:
            kind, target, argv = process.python_program(env)
            settings = ReloadSettings(worker_args=(kind, target), argv=tuple(argv), environ=env,
                                      monitor_factory=self.fanout.for_process(process.name),
                                      watch_files=process.watch,
                                      cooperative=process.cooperative,
                                      cooperative_timeout=process.cooperative_timeout)
            self.stack.add(process.name, Reloader(RUN_PROGRAM, settings, logger=log,
                                                  launcher=launcher(), events=events))
        else:
            self.stack.add(process.name, Supervised(
                process.command, env, log, output=pipe, exits=self.exits, events=events,
                watch=process.watch, monitor_factory=self.fanout.for_process(process.name)))

    def _serve(self, process: Process, env: dict[str, str], in_stack: InStack) -> None:
        try:
            code = self.serve_line(process.serve_words(env), in_stack)
        except SystemExit as exc:  # argparse: its usage line is printed already
            code = exc.code if isinstance(exc.code, int) else 2
        finally:
            logging.getLogger("devreload").setLevel(self.level)
        if process.name not in self.stack.members:
            raise StackError(process.source, None, f"{process.name!r} cannot be served (the "
                                                   f"line above; exit code {code})")

    def _joined(self, process: Process, reloader: ServingReloader,
                bound: list[socket.socket]) -> None:
        self.stack.add(process.name, reloader)
        self.bound.extend(bound)

    def close(self) -> None:
        for close in self.stack.closers:
            close()
