"""``devreload serve INI [--reload] [name=value ...]``: the pserve workflow.

``name=value`` variables may stand anywhere after the ini, before or after the options;
they win over the ini's ``[DEFAULT]`` everywhere (see :mod:`devreload.paste`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .errors import DevreloadError
from .paste import IniConfig, monitor_ini, run_ini


def _add_options(parser: argparse.ArgumentParser, defaults: bool = True) -> None:
    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument(
        "--reload",
        action="store_true",
        default=default(False),
        help="restart the app whenever its code, the ini or a watched file changes",
    )
    parser.add_argument(
        "-n",
        "--app-name",
        default=default("main"),
        metavar="NAME",
        help="the [app:NAME] section to serve (default: main)",
    )
    parser.add_argument(
        "--server-name",
        default=default("main"),
        metavar="NAME",
        help="the [server:NAME] section to use (default: main)",
    )
    parser.add_argument(
        "--no-live-reload",
        dest="live_reload",
        action="store_false",
        default=default(True),
        help="do not make open pages follow reloads",
    )
    parser.add_argument(
        "--browser",
        action="store_true",
        default=default(False),
        help="open the app in a web browser once it answers",
    )


def add_serve_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``serve`` subcommand to an argparse ``add_subparsers()`` object."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "serve",
        help="serve a PasteDeploy ini (like pserve)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_options(parser)
    parser.add_argument("config_uri", metavar="INI", help="the ini file")
    parser.add_argument(
        "config_vars",
        nargs=argparse.REMAINDER,
        metavar="name=value",
        help="variables that override the ini's [DEFAULT]",
    )
    parser.set_defaults(func=run_serve)
    return parser


def split_vars(words: list[str]) -> tuple[argparse.Namespace, dict[str, str]]:
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


def run_serve(args: argparse.Namespace) -> int:
    """Run ``devreload serve``; errors become one line on stderr and a non-zero code."""
    try:
        more, variables = split_vars(list(args.config_vars))
    except UsageError as exc:
        print(f"devreload serve: {exc}", file=sys.stderr)
        return 2
    for key, value in vars(more).items():
        setattr(args, key, value)
    config = IniConfig(
        args.config_uri, args.app_name, args.server_name, variables, args.live_reload
    )
    try:
        config.setup_logging()
        context = config.server_context()
        ours = config.is_devreload_server(context)
        reload = args.reload or (ours and config.server_settings(context).reload)
        if reload:
            monitor_ini(config, browser=args.browser)
        else:
            run_ini(config, browser=args.browser)
    except DevreloadError as exc:
        print(f"devreload: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except SystemExit as exc:  # the monitor ends with its final code
        return exc.code if isinstance(exc.code, int) else 1
    return 0
