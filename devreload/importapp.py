"""Serving an app named by an import string, the way ``uvicorn --reload`` and ``flask run``
do: ``devreload serve 'pkg.module:app' --reload`` or ``devreload serve 'pkg:create_app()'``.

The monitor never imports the app. Each worker does (:func:`serve_import_worker`, a worker
entry that takes the string, which pickles), so an app that cannot be imported is a worker
that failed to start: one line naming the problem, the error page on the app's address,
and a new worker as soon as a file that could fix it is saved.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from typing import Any

from devreload import frameworks, servers, serving
from devreload.errors import AppImportError, DevreloadError
from devreload.imports import import_string
from devreload.log import display_path
from devreload.options import ServeOptions
from devreload.preload import end_prefix
from devreload.servers import NOT_AN_APP, is_app
from devreload.tracebacks import where_raised
from devreload.worker import get_reloader, is_active

#: ``pkg.module:app`` or ``pkg.module:factory()``.
APP_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*(\(\))?$")
WORKER_ENTRY = "devreload.importapp:serve_import_worker"
#: ``devreload serve MODULE:APP`` has no option for it: where tracebacks can be shown.
SHOW_ERRORS_HINT = (
    "serve the app from an ini with show_errors = true in its [devreload] section, "
    "or with devreload.serve(..., show_errors=True)"
)


class AppLoadError(AppImportError):
    """The app's module, or its factory, raised."""


def is_app_target(arg: str) -> bool:
    """Whether a ``devreload serve`` argument names an app (``module:attr``, not an existing
    file) rather than an ini."""
    return APP_TARGET.match(arg.strip()) is not None and not os.path.exists(arg)


def serve_import_string(target: str, options: ServeOptions) -> int:
    """Serve the app ``target`` names: with ``options.reload`` become the monitor of
    workers that import it; else import and serve it here. The exit code."""
    if not APP_TARGET.match(target.strip()):
        raise AppImportError(
            f"bad import string {target!r}: expected 'pkg.module:app' or 'pkg.module:factory()'"
        )
    if options.reload:
        return serving.run_monitor(
            options, WORKER_ENTRY, (target, options), show_errors_hint=SHOW_ERRORS_HINT
        )
    # Prepared before the address is announced: Django's checks fail here, not after.
    show = options.show_errors
    if show is None:
        show = not any(address.is_public for address in options.addresses)
    app = load_app(target)
    servers.check(app, options.server, options.server_options, options.addresses)
    try:
        app = frameworks.prepare(app, show, options.allowed_hosts)
    except DevreloadError:
        raise
    except Exception as exc:
        raise _failed(f"preparing {target}", exc) from exc
    serving.serve_app(app, options)
    return 0


def serve_import_worker(target: str, options: ServeOptions) -> None:
    """Worker entry for ``devreload serve MODULE:APP --reload``: import the app, serve it
    on the monitor's sockets. A bad target raises an
    AppImportError: the worker prints it as one line, the monitor shows the error page."""
    serving.serve_app(load_app(target), options)


def load_app(target: str) -> Any:
    """The app ``target`` names, imported from the current folder first (as ``flask run``
    and uvicorn do), the factory called. Every failure is an AppImportError that says
    what and where; the user's own exception is its ``__cause__``."""
    text = target.strip()
    module_name, _, attr = text.partition(":")
    project_on_path()
    try:
        importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name + ".").startswith(exc.name + "."):
            _watch_for_module(exc.name)
            raise AppImportError(
                f"cannot import {text!r}: no module named {exc.name!r} in "
                f"{os.getcwd()} or the installed packages"
            ) from None
        raise _failed(f"importing {module_name!r}", exc) from exc
    except Exception as exc:
        raise _failed(f"importing {module_name!r}", exc) from exc
    end_prefix(f"imported after {text} was loaded")
    app = import_string(f"{module_name}:{attr.removesuffix('()')}")
    if attr.endswith("()"):
        try:
            app = app()
        except Exception as exc:
            raise _failed(f"calling {text}", exc) from exc
    if not is_app(app):
        raise AppImportError(f"{text!r} is {NOT_AN_APP} but of type {type(app).__name__}")
    return app


def project_on_path() -> None:
    """The current folder first on ``sys.path``: ``main:app`` is ``./main.py``."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)


def _failed(doing: str, exc: BaseException) -> AppLoadError:
    return AppLoadError(f"{doing} failed at {where_failed(exc)}: {type(exc).__name__}: {exc}")


def where_failed(exc: BaseException) -> str:
    """``file:line`` of a syntax error, else where the user's code raised ``exc``."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{display_path(exc.filename)}:{exc.lineno}"
    return where_raised(exc)


def _watch_for_module(name: str) -> None:
    """Under a monitor, watch for the missing module to appear in the current folder:
    saving it starts the app. (Written as globs, which may match nothing yet quietly.)"""
    if not is_active():
        return
    parts = name.split(".")
    base = os.path.join(os.getcwd(), *parts)
    get_reloader().watch_files([f"{base}[.]py", os.path.join(base, "__init__[.]py")])
