"""Which file monitor runs: the one the user names, else the best this machine has.

Backends are imported only when chosen, so that a missing watchdog never breaks an
import of devreload.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from typing import Any, NamedTuple

from devreload import platforms
from devreload.errors import DevreloadError, MonitorChoiceError
from devreload.filemon.base import Callback, FileMonitor, FileMonitorFactory
from devreload.imports import import_string, project_on_path

MONITOR_ENV = "DEVRELOAD_MONITOR"

#: The monitors devreload has, by the name ``DEVRELOAD_MONITOR`` or ``monitor =`` gives.
MONITORS = {
    "inotify": "devreload.filemon.inotify:InotifyFileMonitor",
    "watchdog": "devreload.filemon.watchdog:WatchdogFileMonitor",
    "watchman": "devreload.filemon.watchman:WatchmanFileMonitor",
    "polling": "devreload.filemon.polling:PollingFileMonitor",
}
MONITOR_CHOICES = (f"use {', '.join(MONITORS)}, or a dotted path to a factory "
                   "(pkg.module.factory)")
DOTTED_PATH = re.compile(r"[A-Za-z_][\w.]*[.:][A-Za-z_][\w.]*")


def monitor_name_problem(choice: str) -> str | None:
    """Why ``choice`` cannot name a monitor, or None: checked where it was written."""
    if choice in MONITORS or DOTTED_PATH.fullmatch(choice):
        return None
    return f"{choice!r} is not a file monitor; {MONITOR_CHOICES}"


def find_default_monitor_factory(log: Any = None, choice: str = "") -> FileMonitorFactory:
    """The monitor ``DEVRELOAD_MONITOR`` names, else ``choice`` (the ``monitor`` setting),
    else: watchman when the project has a ``.watchmanconfig``, inotify on Linux, watchdog
    elsewhere, polling when watchdog is missing. A dotted path names a factory (imported
    from the current folder too, however devreload was started). A bad name raises
    MonitorChoiceError."""
    setting = os.environ.get(MONITOR_ENV, "").strip()
    source = MONITOR_ENV
    if not setting:
        setting, source = choice.strip(), "monitor"
    if setting:
        _chosen(log, setting, f"{source}={setting}")
    if setting == "watchman":
        return _watchman_then(_os_events().factory, log)
    if setting in MONITORS:
        try:
            factory: FileMonitorFactory = import_string(MONITORS[setting])
        except (ImportError, DevreloadError):
            raise MonitorChoiceError(f"{source}={setting}, but it does not import here; "
                                     f"{MONITOR_CHOICES}") from None
        return factory
    if setting:
        return _import_factory(setting, source)
    from devreload.filemon.watchman_client import watchman_asked

    reason = watchman_asked(os.getcwd())
    if reason is not None:
        _chosen(log, "watchman", reason)
        return _watchman_then(_os_events().factory, log)
    default = _os_events()
    _chosen(log, default.name, default.why)
    return default.factory


def _chosen(log: Any, name: str, why: str) -> None:
    """The one line of -v that says which monitor was chosen, and why."""
    if log is not None:
        log.debug("file monitor: %s (%s)", name, why)


class _Default(NamedTuple):
    name: str
    why: str
    factory: FileMonitorFactory


def _os_events() -> _Default:
    """The monitor of the OS's own events here, and why it is the default."""
    platform = platforms.current()
    if platform.file_events == "inotify":
        from devreload.filemon.inotify import InotifyFileMonitor

        return _Default("inotify", f"the default on {platform.name}", InotifyFileMonitor)
    try:
        from devreload.filemon.watchdog import WatchdogFileMonitor
    except ImportError:
        from devreload.filemon.polling import PollingFileMonitor

        return _Default("polling", "watchdog is not installed", PollingFileMonitor)
    return _Default("watchdog", f"the default on {platform.name}", WatchdogFileMonitor)


def _watchman_then(fallback: FileMonitorFactory, log: Any) -> FileMonitorFactory:
    """watchman, or, when it cannot serve (not installed, not running, gone), the monitor
    that would be used without it, said in one line."""

    def watchman_or_next(callback: Callback, **kw: Any) -> FileMonitor:
        from devreload.filemon.watchman import WatchmanFileMonitor

        try:
            return WatchmanFileMonitor(callback, fallback=fallback, **kw)
        except OSError as exc:
            if log is not None:
                log.warning("%s; using %s instead", exc, getattr(fallback, "__name__", fallback))
            return fallback(callback, **kw)

    return watchman_or_next


def _import_factory(choice: str, source: str) -> FileMonitorFactory:
    """The factory ``DEVRELOAD_MONITOR`` names, with the current folder importable."""
    problem = monitor_name_problem(choice)
    if problem is not None:
        raise MonitorChoiceError(f"{source}={problem}")
    added = project_on_path()
    try:
        factory: FileMonitorFactory = import_string(choice)
    except DevreloadError as exc:
        raise MonitorChoiceError(f"{source}={choice!r}: {exc}; {MONITOR_CHOICES}") from None
    except Exception as exc:
        raise MonitorChoiceError(
            f"{source}={choice!r}: importing it failed: {type(exc).__name__}: "
            + " ".join(str(exc).split())
        ) from exc
    finally:
        if added:
            with contextlib.suppress(ValueError):
                sys.path.remove(os.getcwd())
    if not callable(factory):
        raise MonitorChoiceError(f"{source}={choice!r} is not callable (but of type "
                                 f"{type(factory).__name__}); {MONITOR_CHOICES}")
    return factory
