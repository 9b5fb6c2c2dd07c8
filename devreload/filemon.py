"""What every file monitor shares: the interface, path patterns and the default choice.

A file monitor only reports paths; deciding what a change means is the monitor
process's job (``reloader.py``). Backends are imported lazily so that a missing
watchdog never breaks an import of devreload.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import os
import re
import sys
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from devreload.errors import DevreloadError, MonitorChoiceError
from devreload.imports import import_string

Callback = Callable[[str], None]

MONITOR_ENV = "DEVRELOAD_MONITOR"

#: Files nobody wants a reload for: version control, virtualenvs, caches, build output
#: of the interpreter, editors' swap/backup/probe files, and what apps write themselves.
DEFAULT_IGNORES: tuple[str, ...] = (
    "*/.git/*",
    "*/.hg/*",
    "*/.svn/*",
    "*/.venv/*",
    "*/venv/*",
    "*/.tox/*",
    "*/.nox/*",
    "*/__pycache__/*",
    "*/.mypy_cache/*",
    "*/.pytest_cache/*",
    "*/.ruff_cache/*",
    "*/node_modules/*",
    "*.py[cod]",
    "*.py[cod].[0-9]*",  # the interpreter's temporary name while it writes a .pyc
    "*.sw[a-p]",
    "*.sw[px]",
    "*~",
    "*/4913",
    "*/.#*",
    "*/#*#",
    "*___jb_tmp___",
    "*___jb_old___",
    "*.log",
    "*-wal",
    "*-shm",
    "*-journal",
)


class FileMonitor(Protocol):
    """Reports changes to the paths it is given, from its own thread."""

    def add_path(self, path: str) -> None:
        """Watch an absolute file path, or a glob pattern (``*``, ``?``, ``[..]``, ``**``)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def join(self) -> None: ...


class FileMonitorFactory(Protocol):
    """Builds a monitor; ``interval``, ``logger`` and ``ignore`` come as keywords."""

    def __call__(self, callback: Callback, **kw: Any) -> FileMonitor: ...


def is_glob(path: str) -> bool:
    return any(ch in path for ch in "*?[")


def glob_root(pattern: str) -> str:
    """The deepest folder of a glob that has no wildcard: where new matches will appear."""
    parts = pattern.split(os.sep)
    for i, part in enumerate(parts):
        if is_glob(part):
            return os.sep.join(parts[:i]) or os.sep
    return os.path.dirname(pattern)


@functools.lru_cache(maxsize=256)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """Glob semantics for new files: ``*`` stays in one folder, ``**/`` spans many."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            end = pattern.find("]", i + 2)
            if end < 0:
                out.append(re.escape("["))
                i += 1
            else:
                body = pattern[i + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


class IgnoreRules:
    """Shell-style patterns against absolute paths; user patterns always win, the
    defaults yield to a file the user named explicitly. Files the app wrote itself are
    ignored, unless named explicitly."""

    def __init__(self, patterns: Iterable[str] = (), *, defaults: bool = True) -> None:
        self.user = tuple(_absolute_pattern(p) for p in patterns)
        self.defaults = DEFAULT_IGNORES if defaults else ()
        self.explicit: set[str] = set()
        self.written: set[str] = set()

    def __call__(self, path: str) -> bool:
        if any(fnmatch.fnmatchcase(path, p) for p in self.user):
            return True
        if path in self.written and path not in self.explicit:
            return True
        if path in self.explicit:
            return False
        return any(fnmatch.fnmatchcase(path, p) for p in self.defaults)

    def ignores_folder(self, folder: str) -> bool:
        return self(folder.rstrip(os.sep) + os.sep)


def _absolute_pattern(pattern: str) -> str:
    pattern = os.path.expanduser(pattern)
    if pattern.startswith("*") or os.path.isabs(pattern):
        return pattern
    return os.path.join(os.getcwd(), pattern)


def find_default_monitor_factory(log: Any = None) -> FileMonitorFactory:
    """watchdog when it imports, polling otherwise; ``DEVRELOAD_MONITOR`` overrides
    with ``watchdog``, ``polling`` or a dotted path to a factory (imported from the current
    folder too, however devreload was started). A bad value raises MonitorChoiceError."""
    choice = os.environ.get(MONITOR_ENV, "").strip()
    if choice == "polling":
        from devreload.filemon_polling import PollingFileMonitor

        return PollingFileMonitor
    if choice and choice != "watchdog":
        return _import_factory(choice)
    try:
        from devreload.filemon_watchdog import WatchdogFileMonitor
    except ImportError:
        if choice == "watchdog":
            raise MonitorChoiceError(f"{MONITOR_ENV}=watchdog, but watchdog does not "
                                     f"import; {MONITOR_CHOICES}") from None
        if log is not None:
            log.debug("watchdog is not installed; polling for changes")
        from devreload.filemon_polling import PollingFileMonitor

        return PollingFileMonitor
    return WatchdogFileMonitor


MONITOR_CHOICES = "use watchdog, polling, or a dotted path to a factory (pkg.module.factory)"


def _import_factory(choice: str) -> FileMonitorFactory:
    """The factory ``DEVRELOAD_MONITOR`` names, with the current folder importable (as under
    ``python -m devreload``, also for the ``devreload`` script, whose sys.path[0] is its
    bin folder)."""
    if not re.fullmatch(r"[A-Za-z_][\w.]*[.:][A-Za-z_][\w.]*", choice):
        raise MonitorChoiceError(f"{MONITOR_ENV}={choice!r} is not a file monitor; "
                                 f"{MONITOR_CHOICES}")
    added = os.getcwd() not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, os.getcwd())
    try:
        factory: FileMonitorFactory = import_string(choice)
    except DevreloadError as exc:
        raise MonitorChoiceError(f"{MONITOR_ENV}={choice!r}: {exc}; {MONITOR_CHOICES}") from None
    except Exception as exc:
        raise MonitorChoiceError(
            f"{MONITOR_ENV}={choice!r}: importing it failed: {type(exc).__name__}: "
            + " ".join(str(exc).split())
        ) from exc
    finally:
        if added:
            with contextlib.suppress(ValueError):
                sys.path.remove(os.getcwd())
    if not callable(factory):
        raise MonitorChoiceError(f"{MONITOR_ENV}={choice!r} is not callable (but of type "
                                 f"{type(factory).__name__}); {MONITOR_CHOICES}")
    return factory
