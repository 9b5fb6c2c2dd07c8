"""Finding the app an import string names (``pkg.module:app``, ``pkg:factory()``), the
way ``flask run`` and uvicorn do, with one clear line for every way it can fail.

Runs in the worker: ``serve("pkg:app")``, ``devreload serve MODULE:APP`` and an ini's
app factory errors all go through here.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from devreload.errors import AppImportError
from devreload.imports import import_string, project_on_path
from devreload.log import display_path
from devreload.web.kinds import NOT_AN_APP, is_app
from devreload.worker.preload import end_prefix
from devreload.worker.proxy import get_reloader, is_active
from devreload.worker.tracebacks import where_raised


class AppLoadError(AppImportError):
    """The app's module, or its factory, raised."""


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
        raise load_failure(f"importing {module_name!r}", exc) from exc
    except Exception as exc:
        raise load_failure(f"importing {module_name!r}", exc) from exc
    end_prefix(f"imported after {text} was loaded")
    app = import_string(f"{module_name}:{attr.removesuffix('()')}")
    if attr.endswith("()"):
        try:
            app = app()
        except Exception as exc:
            raise load_failure(f"calling {text}", exc) from exc
    if not is_app(app):
        raise AppImportError(f"{text!r} is {NOT_AN_APP} but of type {type(app).__name__}")
    return app


def load_failure(doing: str, exc: BaseException) -> AppLoadError:
    """One line: what failed, where in the user's code, and the exception."""
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
