"""The ``devreload`` command: ``run`` for any program, ``serve`` for a PasteDeploy ini or
an app import string, ``up`` for a whole stack.

Only this layer turns errors into a line and an exit code.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from devreload.errors import DevreloadError, MonitorChoiceError, SettingValueError
from devreload.filemon.choice import MONITORS, find_default_monitor_factory, monitor_name_problem
from devreload.log import default_logger
from devreload.monitor.reloader import start_reloader
from devreload.monitor.settings import ReloadSettings
from devreload.serving.importapp import is_app_target, serve_import_string
from devreload.serving.ini import IniConfig
from devreload.serving.options import ServeOptions
from devreload.serving.paste import serve_ini
from devreload.serving.serve import InStack
from devreload.serving.up import add_up_parser, run_up
from devreload.sockets import DEFAULT_HOST, DEFAULT_PORT, make_address, parse_listen
from devreload.values import seconds
from devreload.wire.contract import RUN_PROGRAM

SERVE_DESCRIPTION = """\
devreload serve INI [--reload] [name=value ...]: the pserve workflow.
devreload serve MODULE:APP [--reload] [--host H] [--port P | --listen ADDR]: an app by
import string, like uvicorn and flask run: 'pkg.module:app' or 'pkg:create_app()'.

name=value variables may stand anywhere after the ini, before or after the options;
they win over the ini's [DEFAULT] everywhere.
"""
#: Where ``devreload serve MODULE:APP`` listens; an ini says it in [server:main] instead.
ADDRESS_OPTIONS = ("host", "port", "listen")


def _interval(text: str) -> float:
    try:
        return seconds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class _Version(argparse.Action):
    """``--version``, looked up only when asked: importlib.metadata costs every start."""

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("devreload")
        except PackageNotFoundError:
            found = "(not installed)"
        parser.exit(message=f"devreload {found}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="devreload",
        description="Restart a Python program or web app whenever its code or config changes.",
    )
    parser.add_argument("--version", action=_Version, nargs=0, help="show the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    run = commands.add_parser(
        "run",
        help="run a script or module, restarting it on change",
        usage="devreload run [options] (-m MODULE | SCRIPT) [ARGS ...]",
    )
    _add_run_options(run)
    run.set_defaults(run_parser=run)
    _add_serve_parser(commands)
    add_up_parser(commands)
    return parser


def _add_run_options(run: argparse.ArgumentParser) -> argparse.ArgumentParser:
    run.add_argument("-m", dest="module", metavar="MODULE", help="run a module, like python -m")
    _add_watch_options(run, lambda value: value)
    run.add_argument("--cooperative", action="store_true",
                     help="on a change, let the program finish its work: it calls "
                     "devreload.should_restart() and exits 75 when it is safe")
    run.add_argument("--cooperative-timeout", type=_interval, default=None, metavar="S",
                     help="with --cooperative, stop the program anyway after this many "
                     "seconds (default: never)")
    _add_preload_options(run, lambda value: value)
    loudness = run.add_mutually_exclusive_group()
    loudness.add_argument("-q", "--quiet", action="store_true", help="only report errors")
    loudness.add_argument("-v", "--verbose", action="store_true", help="explain every decision")
    return run


def _add_watch_options(parser: argparse.ArgumentParser,
                       default: Callable[[object], object]) -> None:
    """What to watch and how fast to restart: the same on every entry."""
    parser.add_argument("-w", "--watch", action="append", default=default([]), metavar="PATH",
                        help="also watch this file, folder or glob (repeatable)")
    parser.add_argument("-x", "--ignore", action="append", default=default([]),
                        metavar="PATTERN", help="ignore changes to paths matching this shell "
                        "pattern, e.g. 'data/**' (repeatable)")
    parser.add_argument("--reload-interval", type=_interval,
                        default=default(ReloadSettings.reload_interval), metavar="S",
                        help="quiet window that coalesces bursts of changes, in seconds "
                        "(default: %(default)s)")
    parser.add_argument("--shutdown-interval", type=_interval,
                        default=default(ReloadSettings.shutdown_interval), metavar="S",
                        help="how long a worker may take to stop before it is killed, in "
                        "seconds (default: %(default)s)")


def _add_preload_options(parser: argparse.ArgumentParser,
                         default: Callable[[object], object]) -> None:
    parser.add_argument("--no-preload", dest="preload", action="store_false",
                        default=default(True), help="start workers without libraries "
                        "imported ahead of time")
    parser.add_argument("--preload-exclude", action="append", default=default([]),
                        metavar="MODULE", help="never import this library module (and its "
                        "submodules) ahead of time (repeatable)")
    _add_monitor_options(parser, default)


def _add_monitor_options(parser: argparse.ArgumentParser,
                         default: Callable[[object], object]) -> None:
    parser.add_argument("--monitor", default=default(""), metavar="NAME", type=_monitor_name,
                        help=f"the file monitor: {', '.join(MONITORS)} or pkg.module.factory "
                        "(default: the best this machine has; DEVRELOAD_MONITOR overrides)")
    parser.add_argument("--no-gitignore", dest="gitignore", action="store_false",
                        default=default(True),
                        help="let watch globs match what .gitignore files exclude")


def _monitor_name(text: str) -> str:
    problem = monitor_name_problem(text) if text else None
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return text


def _value_options(parser: argparse.ArgumentParser) -> set[str]:
    """The options of ``parser`` that take a value (``--monitor NAME``), read off the
    parser itself: an option added there is known here too."""
    return {name for action in parser._actions if action.nargs != 0
            for name in action.option_strings}


def _split_run(argv: list[str], value_options: set[str]) -> tuple[list[str], list[str]]:
    """devreload's options come before the program; everything after it is the program's."""
    for i, token in enumerate(argv):
        if token == "--":
            return argv[:i], argv[i + 1 :]
        if token == "-m":
            return argv[: i + 2], argv[i + 2 :]
        if token in value_options or (i > 0 and argv[i - 1] in value_options):
            continue
        if not token.startswith("-") or token == "-":
            return argv[:i], argv[i:]
    return argv, []


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    finally:
        _settle_stdio()


def _main(args: list[str]) -> int:
    parser = build_parser()
    if args and args[0] == "run":
        own, program = _split_run(args[1:], _value_options(_add_run_options(
            argparse.ArgumentParser(add_help=False))))
        options = parser.parse_args(["run", *own])
        if not options.module and not program:
            options.run_parser.error("a SCRIPT or -m MODULE is required")
        return _run(options, program)
    options = parser.parse_args(args)
    if options.command == "up":
        return run_up(options, lambda words, in_stack: _run_serve(
            parser.parse_args(["serve", *words]), in_stack))
    if options.config_uri is None:  # argparse would ask for name=value too
        options.serve_parser.error("an INI file or a MODULE:APP is required")
    return _run_serve(options)


def _settle_stdio() -> None:
    """Output that cannot be written (stderr on a full disk) must not turn a clean exit
    into Python's exit code 120."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            setattr(sys, name, open(os.devnull, "w"))  # noqa: SIM115 - Python closes it


def _run(options: argparse.Namespace, program: list[str]) -> int:
    if options.module:
        kind, target = "module", options.module
    else:
        kind, target = "path", program.pop(0)
        if not os.path.isfile(target):
            print(f"devreload: no such script: {target}", file=sys.stderr)
            return 2
    sys.argv = [target, *program]
    log = default_logger(0 if options.quiet else 2 if options.verbose else 1)
    try:
        start_reloader(
            RUN_PROGRAM,
            reload_interval=options.reload_interval,
            shutdown_interval=options.shutdown_interval,
            logger=log,
            monitor_factory=find_default_monitor_factory(log, options.monitor),
            gitignore=options.gitignore,
            worker_args=[kind, target],
            ignore_files=options.ignore,
            watch_files=options.watch,
            preload=options.preload,
            preload_exclude=options.preload_exclude,
            cooperative=options.cooperative,
            cooperative_timeout=options.cooperative_timeout,
        )
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except MonitorChoiceError as exc:
        print(f"devreload: {exc}", file=sys.stderr)
        return 2
    return 0


def _add_options(parser: argparse.ArgumentParser, defaults: bool = True) -> None:
    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument("--reload", action="store_true", default=default(False),
                        help="restart the app whenever its code, the ini or a watched file "
                        "changes")
    parser.add_argument("-n", "--app-name", default=default("main"), metavar="NAME",
                        help="the [app:NAME] section to serve (default: main)")
    parser.add_argument("--server-name", default=default("main"), metavar="NAME",
                        help="the [server:NAME] section to use (default: main)")
    parser.add_argument("--no-live-reload", dest="live_reload", action="store_false",
                        default=default(True), help="do not make open pages follow reloads")
    parser.add_argument("--browser", action="store_true", default=default(False),
                        help="open the app in a web browser once it answers")
    parser.add_argument("--host", default=default(None), metavar="HOST",
                        help=f"MODULE:APP only: the address to listen on (default {DEFAULT_HOST})")
    parser.add_argument("--port", default=default(None), metavar="PORT",
                        help=f"MODULE:APP only: the port to listen on (default {DEFAULT_PORT})")
    parser.add_argument("--listen", default=default(None), metavar="ADDR",
                        help="MODULE:APP only: host:port, [::1]:port or unix:/path (several "
                        "separated by spaces), instead of --host/--port")
    parser.add_argument("--allowed-host", dest="allowed_hosts", action="append",
                        default=default([]), metavar="NAME",
                        help="a name devreload's own pages (error page, live-reload stream) "
                        "answer besides localhost and IP addresses; .example.com or "
                        "*.example.com for subdomains (repeatable)")
    _add_watch_options(parser, default)
    _add_preload_options(parser, default)
    parser.add_argument("-v", "--verbose", action="store_const", const=2,
                        dest="verbosity", default=default(1), help="explain every decision")
    parser.add_argument("-q", "--quiet", action="store_const", const=0,
                        dest="verbosity", default=default(1), help="only report errors")


def _add_serve_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "serve",
        help="serve a PasteDeploy ini (like pserve), or an app by import string",
        usage="devreload serve [options] INI [name=value ...]\n"
        "       devreload serve [options] MODULE:APP",
        description=SERVE_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_options(parser)
    parser.add_argument("config_uri", metavar="INI|MODULE:APP", nargs="?",
                        help="the ini file, or the app: 'pkg.module:app', 'pkg:factory()'")
    parser.add_argument("config_vars", nargs=argparse.REMAINDER, metavar="name=value",
                        help="variables that override the ini's [DEFAULT]")
    parser.set_defaults(serve_parser=parser)
    return parser


def _split_vars(words: list[str]) -> tuple[argparse.Namespace, dict[str, str]]:
    """Options and ``name=value`` variables from the words after the ini, in any order."""
    parser = argparse.ArgumentParser(prog="devreload serve", add_help=False)
    _add_options(parser, defaults=False)
    options, rest = parser.parse_known_args(words)
    variables: dict[str, str] = {}
    for word in rest:
        name, sep, value = word.partition("=")
        if not sep or not name or name.startswith("-"):
            raise UsageError(f"unrecognized argument {word!r} (variables look like name=value)")
        variables[name.strip()] = value
    return options, variables


class UsageError(DevreloadError):
    """A command line that does not parse."""


def _run_serve(args: argparse.Namespace, in_stack: InStack | None = None) -> int:
    """Run ``devreload serve``; errors become one line on stderr and a non-zero code."""
    try:
        more, variables = _split_vars(list(args.config_vars))
    except UsageError as exc:
        print(f"devreload serve: {exc}", file=sys.stderr)
        return 2
    for key, value in vars(more).items():
        if isinstance(value, list):  # a repeatable option, given before and after the ini
            value = [*getattr(args, key), *value]
        setattr(args, key, value)
    if is_app_target(args.config_uri):
        return _serve_app(args, variables, in_stack)
    given = [f"--{key}" for key in ADDRESS_OPTIONS if getattr(args, key) is not None]
    if given:
        print(f"devreload serve: {', '.join(given)}: only for an app import string "
              "(MODULE:APP); an ini says where to listen in its server section", file=sys.stderr)
        return 2
    default_logger(args.verbosity)
    config = IniConfig(
        args.config_uri,
        args.app_name,
        args.server_name,
        variables,
        command_line=ServeOptions(
            live_reload=args.live_reload,
            preload=args.preload,
            preload_exclude=tuple(args.preload_exclude),
            allowed_hosts=tuple(args.allowed_hosts),
            **_watch_options(args),
        ),
    )
    return _one_line_errors(lambda: serve_ini(config, args.reload, args.browser, in_stack))


def _watch_options(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`ServeOptions` fields the watch and monitor options set."""
    return {"watch_files": tuple(args.watch), "ignore_files": tuple(args.ignore),
            "reload_interval": args.reload_interval, "shutdown_interval": args.shutdown_interval,
            "monitor": args.monitor, "gitignore": args.gitignore}


def _one_line_errors(serve: Callable[[], int]) -> int:
    """The exit code of ``serve``; a library error becomes its one line on stderr."""
    try:
        return serve()
    except UsageError as exc:
        print(f"devreload serve: {exc}", file=sys.stderr)
        return 2
    except (MonitorChoiceError, SettingValueError) as exc:
        print(f"devreload: {exc}", file=sys.stderr)
        return 2
    except DevreloadError as exc:
        print(f"devreload: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _serve_app(args: argparse.Namespace, variables: dict[str, str],
               in_stack: InStack | None = None) -> int:
    """``devreload serve MODULE:APP``: errors become one line and a non-zero code."""
    if variables:
        print(f"devreload serve: name=value variables ({', '.join(variables)}) are for an ini, "
              "not an app import string", file=sys.stderr)
        return 2
    if args.app_name != "main" or args.server_name != "main":
        print("devreload serve: --app-name and --server-name are for an ini, "
              "not an app import string", file=sys.stderr)
        return 2

    def serve() -> int:
        if args.listen is not None:
            if args.host is not None or args.port is not None:
                raise UsageError("give either --listen or --host/--port, not both")
            addresses = parse_listen(args.listen)
        else:
            addresses = [make_address(args.host, args.port)]
        default_logger(args.verbosity)
        options = ServeOptions(
            addresses=tuple(addresses),
            reload=args.reload,
            browser=args.browser,
            live_reload=args.live_reload,
            preload=args.preload,
            preload_exclude=tuple(args.preload_exclude),
            allowed_hosts=tuple(args.allowed_hosts),
            **_watch_options(args),
        )
        return serve_import_string(args.config_uri, options, in_stack)

    return _one_line_errors(serve)
