"""What every file monitor shares: the interface, ignore rules and path patterns.

A file monitor only reports paths, from its own thread; deciding what a change means is
the monitor process's job (:mod:`devreload.monitor.reloader`).
"""

from __future__ import annotations

import errno
import fnmatch
import functools
import os
import re
from collections.abc import Iterable
from typing import Any, Protocol

from devreload import platforms
from devreload.filemon.gitignore import GitIgnores

#: A path separator in a pattern's regex, and any other character: Windows takes both
#: separators.
SEP, NOT_SEP = (r"[\\/]", r"[^\\/]") if os.sep == "\\" else ("/", "[^/]")


class Callback(Protocol):
    """Where a monitor reports a changed path. ``final=True`` says the change is known
    complete (the writer closed the file, or renamed it into place), so a single save can
    be acted on at once; a monitor that cannot tell leaves it False, and the monitor
    process waits for a quiet moment instead."""

    def __call__(self, path: str, final: bool = False) -> None: ...


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
    "*.tmp",  # an atomic write's file before its rename over the real one
    "*/.goutputstream-*",
    "*.kate-swp",
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


class WatchLimitReached(OSError):
    """The OS refused another watch; the caller falls back to polling."""

    def __init__(self, cause: OSError) -> None:
        name = "max_user_instances" if cause.errno == errno.EMFILE else "max_user_watches"
        self.message = (
            f"the OS file-watch limit is reached (raise it with `sysctl fs.inotify.{name}=524288`)"
        )
        super().__init__(cause.errno, self.message)

    def __str__(self) -> str:
        return self.message


def limit_error(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EMFILE)


class FileMonitorFactory(Protocol):
    """Builds a monitor; ``interval``, ``logger`` and ``ignore`` come as keywords."""

    def __call__(self, callback: Callback, **kw: Any) -> FileMonitor: ...


@functools.cache
def case_insensitive() -> bool:
    """Whether file names compare without case here (macOS, Windows)."""
    return platforms.current().case_insensitive_paths


def path_key(path: str) -> str:
    """What two spellings of one file have in common: the path itself, or, where names
    compare without case, the path without case (on Windows with one separator too)."""
    if not case_insensitive():
        return path
    return os.path.normcase(path).casefold()


def _compiled(regex: str) -> re.Pattern[str]:
    return re.compile(regex, re.IGNORECASE if case_insensitive() else 0)


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
        if pattern.startswith("**/", i) or pattern.startswith(f"**{os.sep}", i):
            out.append(f"(?:.*{SEP})?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append(f"{NOT_SEP}*")
            i += 1
        elif pattern[i] == "?":
            out.append(NOT_SEP)
            i += 1
        elif pattern[i] in ("/", os.sep):
            out.append(SEP)
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
    return _compiled("".join(out) + r"\Z")


class IgnoreRules:
    """Shell-style patterns against absolute paths; user patterns always win, the
    defaults yield to a file the user named explicitly. Files the app wrote itself are
    ignored, unless named explicitly. A glob match also skips what ``.gitignore`` files
    exclude (``gitignore=False`` turns that off): a glob names files by shape, and build
    output or caches have the shape of the files the developer edits."""

    def __init__(self, patterns: Iterable[str] = (), *, defaults: bool = True,
                 gitignore: bool = True) -> None:
        self.user = _one_regex(_absolute_pattern(p) for p in patterns)
        self.defaults = _one_regex(DEFAULT_IGNORES if defaults else ())
        self.explicit: set[str] = set()
        self.written: set[str] = set()
        self.gitignore = GitIgnores() if gitignore else None

    def __call__(self, path: str) -> bool:
        if self.user.match(path):
            return True
        if path in self.written and path not in self.explicit:
            return True
        if path in self.explicit:
            return False
        return self.defaults.match(path) is not None

    def ignores_folder(self, folder: str) -> bool:
        return self(folder.rstrip(os.sep) + os.sep)

    def glob_ignores(self, path: str) -> bool:
        """For a file a glob matched, not one named or imported."""
        if self(path):
            return True
        return (self.gitignore is not None and path not in self.explicit
                and self.gitignore.ignored(path))

    def glob_ignores_folder(self, folder: str) -> bool:
        """A folder a glob's walk does not enter (nor registers with the OS)."""
        folder = folder.rstrip(os.sep)
        return self.ignores_folder(folder) or (
            self.gitignore is not None and self.gitignore.ignored(folder, is_dir=True))


def _one_regex(patterns: Iterable[str]) -> re.Pattern[str]:
    """Shell patterns as one compiled alternation: a large tree asks about every file."""
    alternatives = [f"(?:{fnmatch.translate(p)})" for p in patterns]
    regex = "|".join(alternatives) or r"(?!)"
    if os.sep == "\\":  # the patterns say "/": either separator matches
        regex = regex.replace("/", SEP)
    return _compiled(regex)


def _absolute_pattern(pattern: str) -> str:
    pattern = os.path.expanduser(pattern)
    if pattern.startswith("*") or os.path.isabs(pattern):
        return pattern
    return os.path.join(os.getcwd(), pattern)
