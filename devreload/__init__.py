"""devreload: restart a Python app the moment its code or config changes.

The reloader core (``start_reloader`` and friends) follows hupper's API; ``serve``
runs a WSGI or ASGI app with reload, holding the listening socket in the monitor so
no request is refused while the app restarts.
"""

from __future__ import annotations

import importlib

from devreload.worker.bytecode import hold_from_import

#: ``typing.TYPE_CHECKING`` without importing ``typing``: every command, template and
#: worker imports this package first, and ``python -m devreload`` starts the worker
#: template before anything heavier (type checkers take any ``TYPE_CHECKING`` as true).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from devreload.filemon.base import FileMonitor, FileMonitorFactory, IgnoreRules
    from devreload.monitor.events import FileChanged, ReloadRequested, Trigger
    from devreload.monitor.reloader import Reloader, start_reloader
    from devreload.monitor.settings import ReloadSettings
    from devreload.monitor.strategy import ReloadStrategy
    from devreload.serving.options import ServeOptions
    from devreload.serving.serve import serve
    from devreload.wire.contract import EXIT_RELOAD
    from devreload.worker.proxy import (
        ReloaderProxy,
        get_reloader,
        is_active,
        should_restart,
        trigger_reload,
        watch_files,
    )

#: The module each public name comes from, imported on first use: every worker and the
#: worker template import some of devreload's modules, and so this package first; they
#: must not pay for the monitor's and the server's imports at every start.
_HOMES = {
    "FileMonitor": "devreload.filemon.base",
    "FileMonitorFactory": "devreload.filemon.base",
    "IgnoreRules": "devreload.filemon.base",
    "FileChanged": "devreload.monitor.events",
    "ReloadRequested": "devreload.monitor.events",
    "Trigger": "devreload.monitor.events",
    "Reloader": "devreload.monitor.reloader",
    "start_reloader": "devreload.monitor.reloader",
    "ReloadSettings": "devreload.monitor.settings",
    "ReloadStrategy": "devreload.monitor.strategy",
    "ServeOptions": "devreload.serving.options",
    "serve": "devreload.serving.serve",
    "EXIT_RELOAD": "devreload.wire.contract",
    "ReloaderProxy": "devreload.worker.proxy",
    "get_reloader": "devreload.worker.proxy",
    "is_active": "devreload.worker.proxy",
    "should_restart": "devreload.worker.proxy",
    "trigger_reload": "devreload.worker.proxy",
    "watch_files": "devreload.worker.proxy",
}

__all__ = [
    "EXIT_RELOAD",
    "FileChanged",
    "FileMonitor",
    "FileMonitorFactory",
    "IgnoreRules",
    "ReloadRequested",
    "ReloadSettings",
    "ReloadStrategy",
    "Reloader",
    "ReloaderProxy",
    "ServeOptions",
    "Trigger",
    "get_reloader",
    "is_active",
    "serve",
    "should_restart",
    "start_reloader",
    "trigger_reload",
    "watch_files",
]


# From here on, the bytecode caches of the program's imports are written once it serves
# (its app, imported next, starts faster on a fresh checkout): see devreload.worker.bytecode.
hold_from_import()


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'devreload' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
