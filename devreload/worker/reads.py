"""Files the app reads that are not modules: config read with ``from_pyfile``, ``.env``,
YAML settings, templates. Found in the worker through an audit hook on ``open``.

Code and configuration are watched; data is not. A read shapes the app when it happens
while the app starts (until it is ready), while a module is imported, or through a
template or configuration loader (recognised by who reads: Jinja2, Django templates,
``from_pyfile``...). What the app's own code reads while it serves or works (a job, an
upload, a data file, a cache) is data: watching it would turn another process's writes
into restarts. So is a file that appeared or changed after the worker started, even
while it starts: no program starts from a file that did not exist yet.

Only files under the project folder count, never the interpreter's or installed
libraries' own files; a file the app writes, removes or renames (a log, a database, a
claimed job) is its own data, never watched, or every write would restart the app.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from importlib.machinery import SourceFileLoader
from types import FrameType
from typing import Any

from devreload.wire.messages import IMPORTED, Files, Read

#: ``os.open`` flags that mean the file is written.
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC

#: Packages whose reads are templates or configuration, whenever they happen.
LOADERS = (
    "jinja2", "mako", "chameleon", "genshi", "django.template", "django.conf",
    "django.utils.translation", "flask.config", "quart.config", "configparser",
    "logging.config", "gettext", "dotenv", "decouple", "environ", "pydantic_settings",
    "paste.deploy", "plaster", "plaster_pastedeploy", "pyramid.config", "pyramid.renderers",
    "pyramid_jinja2", "pyramid_chameleon", "pyramid_mako", "tornado.template", "babel",
)

#: The import system's own modules: a read below them happens while a module is imported.
IMPORTING = ("importlib._bootstrap", "importlib._bootstrap_external")
#: What reads a program's source to run it (the whole program runs below ``runpy``, so only
#: its own reads count).
RUNNING = ("runpy", "pkgutil")
#: What reads source to show it (a traceback, a warning, devreload's own messages) or to
#: judge it (the pure-prefix rule, of a module the app imports): no read of the app's.
SHOWING = ("linecache", "tokenize", "inspect", "traceback", "warnings", "devreload.worker.inert")


#: What the import system reads a module's source with (also ``pkgutil.get_data``'s way).
_LOADER_READ = SourceFileLoader.get_data.__code__


def reader(frame: FrameType | None) -> str | None:
    """Why a read by this stack is code or configuration, or None for the app's data; ""
    for a read that is not the app's (source shown in a traceback)."""
    below = ""
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if name != __name__:
            if name in SHOWING and not below:
                return ""
            if name in (*IMPORTING, *RUNNING) and not below:
                return IMPORTED
            if name in IMPORTING:
                return f"read while importing {below}"
            if any(name == p or name.startswith(p + ".") for p in LOADERS):
                return f"read by {name}"
            below = name
        frame = frame.f_back
    return None


class ReadFiles:
    """An audit hook that sorts the files this process opens into watched reads, data
    folders and its own files."""

    def __init__(self, project: str, outside: Sequence[str], born: float | None = None) -> None:
        self.project = os.path.join(os.path.abspath(project), "")
        self.outside = tuple(os.path.join(p, "") for p in outside)
        self.born = time.time() if born is None else born
        self.starting = True
        #: Called (in the app's thread, before the write, removal or rename happens) when
        #: a watched read becomes the app's own: the monitor must hear it before its file
        #: monitor sees the change, or it restarts the app for its own doing.
        self.on_owned: Callable[[], None] | None = None
        #: Called with the code ``exec`` is about to run (a module body, as it is imported):
        #: the one audit hook of the worker serves the import observer too.
        self.on_exec: Callable[[object], None] | None = None
        self._lock = threading.Lock()
        self.read: dict[str, Read] = {}
        self.written: dict[str, None] = {}
        self.data: dict[str, None] = {}
        self._sent = (0, 0, 0)

    def started(self) -> None:
        """The app is ready: from now on only loaders and imports read code."""
        self.starting = False

    def audit_hook(self) -> Callable[[str, tuple[Any, ...]], None]:
        """The function to install with ``sys.addaudithook``. Tens of thousands of events
        come while a big app imports (``exec`` and ``compile`` for each function a
        dataclass makes): those :meth:`hook` does not use cost a set lookup, not a method
        call (about 14 ms of a 2,000-module import)."""
        used = frozenset({"open", "exec", "os.remove", "os.rename"})
        hook = self.hook

        def audited(event: str, args: tuple[Any, ...]) -> None:
            if event not in used:
                return
            if event == "exec":
                if self.on_exec is not None:
                    self.on_exec(args[0])
                return
            if event == "open" and args[0].__class__ is str and "__pycache__" in args[0]:
                return  # the import system's own bytecode
            hook(event, args)

        return audited

    def hook(self, event: str, args: tuple[Any, ...]) -> None:
        """An open, a removal or a rename :meth:`audit_hook` passes on, called from its
        function: the import system's reads of sources return after a look at the frame
        under that one."""
        try:
            if event == "open":
                opener = sys._getframe(1).f_back
                if opener is not None and opener.f_code is _LOADER_READ:
                    self._imported(args[0])
                else:
                    self._opened(*args)
            else:
                for path in (args[0], args[1]) if event == "os.rename" else (args[0],):
                    self._owned(self._project_path(path))
        except Exception:  # an audit hook that raises would fail the app's open()
            pass

    def _imported(self, path: Any) -> None:
        """A read by the import system (a module's source, to compile it): one of thousands
        while an app starts, so neither stat'ed nor its stack looked at."""
        path = self._project_path(path)
        if path is None or path in self.read:
            return
        at = time.time()
        with self._lock:
            if path not in self.written:
                self.read.setdefault(path, Read(path, at, IMPORTED))

    def _project_path(self, path: Any) -> str | None:
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not isinstance(path, str):
            return None  # a file descriptor: opened before, or not a path at all
        full = os.path.abspath(path)
        if (
            not full.startswith(self.project)
            or full.startswith(self.outside)
            or "__pycache__" in full
        ):
            return None
        return full

    def _owned(self, path: str | None) -> None:
        if path is None:
            return
        with self._lock:
            self.written[path] = None
            was_watched = self.read.pop(path, None) is not None
        if was_watched and self.on_owned is not None:
            self.on_owned()

    def _opened(self, path: Any, mode: Any, flags: int) -> None:
        path = self._project_path(path)
        if path is None:
            return
        if any(c in mode for c in "wax+") if isinstance(mode, str) else flags & WRITE_FLAGS:
            self._owned(path)
            return
        if path in self.read or path in self.written or not os.path.isfile(path):
            return
        at = time.time()
        why = reader(sys._getframe(1))
        if why == "":
            return
        if why is None and self.starting and not self._appeared_since_birth(path):
            why = "read while starting"
        with self._lock:
            if why is None:
                self.data[os.path.dirname(path)] = None
            elif path not in self.written:
                self.read.setdefault(path, Read(path, at, why))

    def _appeared_since_birth(self, path: str) -> bool:
        try:
            return os.stat(path).st_ctime > self.born
        except OSError:
            return True

    def changed(self) -> bool:
        return self._sent != (len(self.read), len(self.written), len(self.data))

    def take(self, answer: bool = False) -> Files:
        """Every watched read never written, every file written, and every folder data
        was read from, so far."""
        with self._lock:
            self._sent = (len(self.read), len(self.written), len(self.data))
            return Files(tuple(r for p, r in self.read.items() if p not in self.written),
                         tuple(self.written), tuple(self.data), answer)
