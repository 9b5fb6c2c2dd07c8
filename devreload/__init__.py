"""devreload: restart a Python app the moment its code or config changes.

The reloader core (``start_reloader`` and friends) follows hupper's API; ``serve``
runs a WSGI or ASGI app with reload, holding the listening socket in the monitor so
no request is refused while the app restarts.
"""

from devreload.filemon import FileMonitor, FileMonitorFactory, IgnoreRules
from devreload.reloader import Reloader, ReloadStrategy, start_reloader
from devreload.servers import serve
from devreload.worker import (
    EXIT_RELOAD,
    ReloaderProxy,
    get_reloader,
    is_active,
    trigger_reload,
    watch_files,
)

__all__ = [
    "EXIT_RELOAD",
    "FileMonitor",
    "FileMonitorFactory",
    "IgnoreRules",
    "ReloadStrategy",
    "Reloader",
    "ReloaderProxy",
    "get_reloader",
    "is_active",
    "serve",
    "start_reloader",
    "trigger_reload",
    "watch_files",
]
