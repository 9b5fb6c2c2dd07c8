"""``devreload serve INI [--reload] [name=value ...]``: the pserve workflow.

``name=value`` variables may stand anywhere after the ini, before or after the options;
they win over the ini's ``[DEFAULT]`` everywhere (see :mod:`devreload.paste`).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import urllib.error
import urllib.request
import webbrowser
from typing import Any

from . import sockets as socks
from .errors import DevreloadError
from .paste import IniConfig, monitor_ini, parse_server_settings, run_ini

BROWSER_DEADLINE = 60.0


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
    config = IniConfig(args.config_uri, args.app_name, args.server_name, variables)
    try:
        config.setup_logging()
        context = config.server_context()
        ours = config.is_devreload_server(context)
        reload = args.reload or (ours and config.server_settings(context).reload)
        if args.browser:
            _open_browser_when_ready(_url_of(config, context, ours))
        if reload:
            monitor_ini(config)
        else:
            run_ini(config)
    except DevreloadError as exc:
        print(f"devreload: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def _url_of(config: IniConfig, context: Any, ours: bool) -> str:
    """The URL the server will answer on, from the server section."""
    conf = context.local_conf
    if ours:
        return parse_server_settings(conf, config.path).addresses[0].url
    try:
        if conf.get("listen"):
            return socks.parse_listen(str(conf["listen"]))[0].url
        return socks.make_address(conf.get("host"), conf.get("port")).url
    except DevreloadError:
        return socks.Address().url


def _open_browser_when_ready(url: str) -> None:
    """Open ``url`` in a browser from a background thread once the app answers it."""

    def wait_then_open() -> None:
        deadline = time.monotonic() + BROWSER_DEADLINE
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=BROWSER_DEADLINE):
                    break
            except urllib.error.HTTPError:
                break
            except OSError:
                time.sleep(0.1)
        else:
            return
        webbrowser.open(url)

    threading.Thread(target=wait_then_open, name="devreload-browser", daemon=True).start()
