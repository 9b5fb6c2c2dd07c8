"""Which libraries a worker template may import ahead of time: the pure prefix.

A forked worker must behave exactly like a freshly started one. A library's import-time
state can depend on anything that ran before its import: settings an app factory applied
(Kinto's CORS services), an environment variable the app set, a registry
``django.setup()`` filled. The template can only reproduce what ran before the app's own
code did anything, so a library is preloaded only when it was imported in that prefix of
the worker's life:

- every frame of user code on the stack is a module body whose earlier statements, and the
  statement being run, are inert (imports, docstrings, plain ``def``, classes without a
  base, names bound to literals: nothing that calls, nothing that changes another object,
  no class that a library's metaclass sees), or the statement being run has so far only
  looked names up (a library's lazy attribute, as ``pydantic.BaseModel`` in the bases of a
  class statement: see :mod:`devreload.worker.inert`);
- no user function is on the stack (the import is not inside a call the app made);
- no user module that finished running had a statement that was not inert;
- devreload has not yet called into the app (a factory, a worker function).

The first import that fails a test ends the prefix for good: every later import is refused,
with the reason. Library code is whatever lives under the interpreter's library folders.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import CodeType, FrameType, ModuleType

from devreload.log import display_path
from devreload.worker.inert import first_active, inert_before, inert_so_far, plainly_inert
from devreload.worker.modules import real_folder

_IMPORT_MODULE = importlib.import_module.__code__


class ImportObserver:
    """A ``sys.meta_path`` entry that finds nothing: it only watches imports begin."""

    def __init__(self, library_roots: Sequence[str], own_dir: str) -> None:
        self.roots = (*library_roots, own_dir)
        #: What a library's file name starts with, unresolved (the interpreter's own too).
        self._library_prefixes = ("<", *self.roots)
        self.own_dir = own_dir
        #: Module names imported in the pure prefix, in order (those of the interpreter's
        #: start and devreload's bootstrap are in the template too).
        self.pure: dict[str, None] = dict.fromkeys(sys.modules)
        #: Modules devreload itself imported after the prefix (a server): the next worker
        #: imports them first, so that they are in its prefix.
        self.warm: dict[str, None] = {}
        #: Why the prefix ended; None while it lasts.
        self.ended: str | None = None
        #: devreload is starting the server (until it accepts): see _imported_by_devreload.
        self.server_starting = False
        #: Modules imported in the prefix, maybe still running: True for those known to be
        #: the app's own (in its packages).
        self._unchecked: dict[str, bool] = {}
        self._lock = threading.Lock()
        self._kinds: dict[str, bool] = {}
        #: Whether each top-level package imported so far is the app's own.
        self._packages: dict[str, bool] = {}
        #: The frame under the last module body checked, and the files of the frames below
        #: it (see _stack_reason).
        self._checked_under: FrameType | None = None
        self._checked_files: set[str] = set()
        #: The code of the module bodies run in the prefix, by file, until checked.
        self._codes: dict[str, CodeType] = {}

    # -- the finder protocol ------------------------------------------------------------

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name not in sys.modules:
            with self._lock:
                if self._in_user_package(name):
                    if self.ended is None:
                        self._unchecked[name] = True
                elif self.ended is None:
                    self._observe(name, sys._getframe(1))
                elif self._imported_by_devreload(sys._getframe(1)):
                    self.warm[name] = None
        return None

    def invalidate_caches(self) -> None:
        pass

    def executing(self, code: object) -> None:
        """A body about to run (the audit event ``exec``): a module's code, kept while the
        prefix lasts, tells whether it is inert without its source read and parsed. Kept
        unless plainly a library's (whose code is dropped once it ran): which modules are
        the app's is known once they ran, and the question costs a system call."""
        if (self.ended is None and isinstance(code, CodeType) and code.co_name == "<module>"
                and not code.co_filename.startswith(self._library_prefixes)):
            self._codes[code.co_filename] = code

    # -- decisions ----------------------------------------------------------------------

    def end(self, reason: str) -> None:
        """End the prefix (devreload is about to call into the app)."""
        with self._lock:
            if self.ended is None:
                self.ended = reason
            self._checked_under = None
            self._codes.clear()

    def preloadable(self, name: str) -> bool:
        return name in self.pure

    def refusal(self, name: str) -> str:
        """Why ``name`` is not preloaded."""
        return self.ended or "imported after the app's code ran"

    def _imported_by_devreload(self, frame: FrameType | None) -> bool:
        """Whether the code asking for this import is devreload's own (below the import
        system, ``importlib.import_module`` and any module bodies of libraries it pulls in,
        with the library functions those bodies call; while devreload starts the server,
        below any library code: uvicorn loading its protocol modules), with none of the
        app's code in between."""
        in_call = False  # a library function runs, not yet known to run in a library body
        while frame is not None:
            code = frame.f_code
            filename = code.co_filename
            if filename.startswith(self.own_dir):
                return not in_call
            if self._is_user(filename):
                return False
            if code.co_name == "<module>":
                in_call = False
            elif not (self.server_starting or filename.startswith("<frozen")
                      or code is _IMPORT_MODULE):
                in_call = True
            frame = frame.f_back
        return False

    def _observe(self, name: str, frame: FrameType | None) -> None:
        on_stack: set[str] = set()
        reason = self._stack_reason(frame, on_stack) or self._finished_reason(on_stack)
        if reason is not None:
            self.ended = reason
            self._checked_under = None
            self._codes.clear()
            return
        self.pure[name] = None
        self._unchecked[name] = False

    def _stack_reason(self, frame: FrameType | None, on_stack: set[str]) -> str | None:
        """Why the code on the stack may have changed state before this import, or None.

        A big app imports thousands of modules from a few module bodies, each time over the
        same frames below them. The frames under the caller of the topmost module body
        cannot have run since the last import (they wait for it to return): they are
        checked once, not at every import."""
        under: FrameType | None = None  # the caller of the topmost user module body
        below: set[str] | None = None  # the files of the frames under it
        while frame is not None:
            code = frame.f_code
            filename = code.co_filename
            on_stack.add(filename)
            if below is not None:
                below.add(filename)
            if not self._is_user(filename):
                pass
            elif code.co_name != "<module>":
                where = f"{display_path(filename)}:{frame.f_lineno}"
                return f"imported inside a call to {code.co_name}() at {where}"
            elif not inert_before(filename, frame.f_lineno) and not inert_so_far(frame):
                first = int(first_active(filename)) or frame.f_lineno
                return f"imported after the app's code ran ({display_path(filename)}:{first})"
            elif under is None:
                under = frame.f_back
            if frame is under:
                below = set()
            if frame is self._checked_under:
                on_stack |= self._checked_files
                if below is not None:
                    below |= self._checked_files
                break
            frame = frame.f_back
        if under is not None and below is not None:
            self._checked_under, self._checked_files = under, below
        return None

    def _finished_reason(self, on_stack: set[str]) -> str | None:
        """A user module that ran to its end may have done anything its statements say:
        only an inert one keeps the prefix going."""
        for name in list(self._unchecked):
            module = sys.modules.get(name)
            filename = getattr(module, "__file__", None)
            if module is None or filename in on_stack:
                continue  # not imported (a failed optional import), or still running
            own = self._unchecked.pop(name)
            if not isinstance(filename, str):
                continue
            code = self._codes.pop(filename, None)
            if not own and not self._is_user(filename):
                continue
            if code is not None and plainly_inert(code):
                continue
            if not inert_before(filename, None):
                return f"imported after the app's code ran ({display_path(filename)})"
        return None

    def _in_user_package(self, name: str) -> bool:
        """Whether ``name`` is a submodule of one of the app's own packages. Such a module
        is never preloaded and the stack it is imported from decides nothing a library's
        import will not: its import is not judged (an app imports thousands of its own
        modules, each a walk of the stack). Whether it ran inert is checked all the same,
        at the next library's import."""
        top, dot, _ = name.partition(".")
        if not dot:
            return False
        kind = self._packages.get(top)
        if kind is None:
            filename = getattr(sys.modules.get(top), "__file__", None)
            if not isinstance(filename, str):
                return False  # a namespace package: its parts may live anywhere
            kind = self._packages[top] = self._is_user(filename)
        return kind

    def _is_user(self, filename: str) -> bool:
        kind = self._kinds.get(filename)
        if kind is None:
            kind = not (filename.startswith("<") or self._real(filename).startswith(self.roots))
            self._kinds[filename] = kind
        return kind

    def _real(self, filename: str) -> str:
        """The real path of ``filename``, its folder resolved once for all its modules."""
        if os.path.islink(filename):
            return os.path.realpath(filename)
        folder, name = os.path.split(os.path.abspath(filename))
        return real_folder(folder) + name


# --------------------------------------------------------------------------- the worker's one


_observer: ImportObserver | None = None


def observe(library_roots: Sequence[str], own_dir: str) -> ImportObserver:
    """Start watching this worker's imports (first on ``sys.meta_path``)."""
    global _observer
    _observer = ImportObserver(library_roots, own_dir)
    sys.meta_path.insert(0, _observer)
    return _observer


def server_starting(starting: bool) -> None:
    """devreload starts the server now (True), or it accepts (False): what the server's
    own code imports in between is the server's, whatever library code asks for it."""
    if _observer is not None:
        _observer.server_starting = starting


def end_prefix(reason: str) -> None:
    """devreload is about to run the app's own code: no later import is preloaded."""
    if _observer is not None:
        _observer.end(reason)
