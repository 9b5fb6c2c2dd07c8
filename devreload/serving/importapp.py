"""Serving an app named by an import string, the way ``uvicorn --reload`` and ``flask run``
do: ``devreload serve 'pkg.module:app' --reload`` or ``devreload serve 'pkg:create_app()'``.

The monitor never imports the app. Each worker does (:func:`serve_import_worker`, a worker
entry that takes the string, which pickles), so an app that cannot be imported is a worker
that failed to start: one line naming the problem, the error page on the app's address,
and a new worker as soon as a file that could fix it is saved.
"""

from __future__ import annotations

import os
import re

from devreload.errors import AppImportError
from devreload.servers.choice import choose
from devreload.serving.apps import load_app
from devreload.serving.options import ServeOptions
from devreload.serving.serve import InStack, prepared, run_monitor, serve_app
from devreload.web.kinds import is_asgi

#: ``pkg.module:app`` or ``pkg.module:factory()``.
APP_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*(\(\))?$")
WORKER_ENTRY = "devreload.serving.importapp:serve_import_worker"
#: ``devreload serve MODULE:APP`` has no option for it: where tracebacks can be shown.
SHOW_ERRORS_HINT = (
    "serve the app from an ini with show_errors = true in its [devreload] section, "
    "or with devreload.serve(..., show_errors=True)"
)


def is_app_target(arg: str) -> bool:
    """Whether a ``devreload serve`` argument names an app (``module:attr``, not an existing
    file) rather than an ini."""
    return APP_TARGET.match(arg.strip()) is not None and not os.path.exists(arg)


def serve_import_string(target: str, options: ServeOptions,
                        in_stack: InStack | None = None) -> int:
    """Serve the app ``target`` names: with ``options.reload`` (always in a stack) become
    the monitor of workers that import it; else import and serve it here. The exit code."""
    if not APP_TARGET.match(target.strip()):
        raise AppImportError(
            f"bad import string {target!r}: expected 'pkg.module:app' or 'pkg.module:factory()'"
        )
    if options.reload or in_stack:
        return run_monitor(options, WORKER_ENTRY, (target, options),
                           show_errors_hint=SHOW_ERRORS_HINT, in_stack=in_stack)
    # Prepared before the address is announced: Django's checks fail here, not after.
    app = load_app(target)
    asgi = is_asgi(app)
    choose(asgi, options.server, options.server_options, options.addresses)
    app = prepared(app, target, options.shows_errors(options.addresses), options.allowed_hosts,
                   asgi)
    serve_app(app, options)
    return 0


def serve_import_worker(target: str, options: ServeOptions) -> None:
    """Worker entry for ``devreload serve MODULE:APP --reload``: import the app, serve it
    on the monitor's sockets. A bad target raises an
    AppImportError: the worker prints it as one line, the monitor shows the error page."""
    serve_app(target, options)
