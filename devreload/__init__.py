"""devreload: restart a Python app the moment its code or config changes.

The reloader core (``start_reloader`` and friends) follows hupper's API; ``serve``
runs a WSGI or ASGI app with reload, holding the listening socket in the monitor so
no request is refused while the app restarts.
"""

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
