"""Finding code by name: dotted paths and import strings, and how ``__main__`` was started.

Used on both sides of every process boundary: a worker resolves its entry point by name,
``DEVRELOAD_MONITOR`` names a factory, ``serve("pkg.mod:app")`` names an app, and a
monitor re-runs its own program as the worker.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from typing import Any, Literal

from devreload.errors import AppImportError, DevreloadError

ProgramKind = Literal["module", "path"]


def import_string(spec: str) -> Any:
    """``"pkg.mod:attr.path"``, ``"pkg.mod.attr"``, or ``"pkg.mod:factory()"`` (called).

    Raises AppImportError naming the spec when the module or the attribute is missing;
    an error raised inside the imported module propagates as it is.
    """
    text = spec.strip()
    module_name, sep, attr = text.partition(":")
    if not sep:
        module_name, _, attr = text.rpartition(".")
    call = attr.endswith("()")
    attr = attr.removesuffix("()")
    if not module_name or not attr:
        raise AppImportError(
            f"bad import string {spec!r}: expected 'pkg.module:name' or 'pkg.module:factory()'"
        )
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name + ".").startswith(exc.name + "."):
            raise AppImportError(f"cannot import {spec!r}: no module named {exc.name!r}") from None
        raise
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AppImportError(
                f"cannot import {spec!r}: module {module_name!r} has no attribute {attr!r}"
            ) from None
    return obj() if call else obj


def current_program() -> tuple[ProgramKind, str]:
    """How this interpreter was started: ("module", name) for ``-m``, else ("path", script)."""
    main = sys.modules["__main__"]
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name and spec.name != "__main__":
        name: str = spec.name
        return "module", name.removesuffix(".__main__")
    path = getattr(main, "__file__", None) or (sys.argv[0] if sys.argv else "")
    if not path or not os.path.isfile(path):
        raise DevreloadError(
            "reloading re-runs the current program, but it is not a script or a "
            "-m module (an interactive session or -c?)"
        )
    return "path", os.path.abspath(path)


def project_on_path() -> bool:
    """The current folder first on ``sys.path`` (``main:app`` is ``./main.py``, as under
    ``python -m``, also for the ``devreload`` script, whose ``sys.path[0]`` is its bin
    folder); True when this put it there."""
    cwd = os.getcwd()
    if cwd in sys.path or "" in sys.path:
        return False
    sys.path.insert(0, cwd)
    return True


def drop_bytecode(source: str) -> None:
    """Remove what Python cached of ``source``'s bytecode. It trusts a cached ``.pyc``
    whose recorded mtime (in whole seconds) and size match the source, so a second save
    in the same second that keeps the size (``version 1`` to ``version 2``) would be
    imported as the first."""
    if not source.endswith(".py"):
        return
    for optimization in ("", 1, 2):
        try:
            os.remove(importlib.util.cache_from_source(source, optimization=optimization))
        except (OSError, ValueError, NotImplementedError):
            pass
