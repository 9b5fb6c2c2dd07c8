"""What a worker imported: the interpreter's library folders, and the source of every
module loaded so far (the monitor watches the user's, the template preloads libraries)."""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.util
import os
import site
import sys
import sysconfig
from typing import Any


@functools.cache
def library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    roots.update(site.getsitepackages())
    roots.add(site.getusersitepackages())
    return tuple(os.path.realpath(r) + os.sep for r in roots if r)


@functools.cache
def real_folder(folder: str) -> str:
    """The real path of ``folder``, ending in a separator, resolved once: thousands of
    modules live in a few hundred folders, and each system call made beside the app's
    imports (a scan, the import observer) hands the GIL back and forth. On POSIX a folder
    that is not a link is its parent's real path and its name: one ``lstat`` for a
    folder whose parent was resolved, where ``realpath`` makes one for every part."""
    parent, name = os.path.split(folder)
    if (os.name == "posix" and name not in ("", ".", "..") and os.path.isabs(parent)
            and not os.path.islink(folder)):
        return real_folder(parent) + name + os.sep
    return os.path.join(os.path.realpath(folder), "")


class ModuleScanner:
    """Finds the source file of every module imported so far, including late imports."""

    def __init__(self) -> None:
        self.roots = library_roots()
        self.seen: set[tuple[str, Any]] = set()

    def _in_library(self, path: str) -> bool:
        return real_folder(os.path.dirname(path)).startswith(self.roots)

    def scan(self, *, keep_files: bool = False) -> tuple[list[str], list[str]]:
        """New user source files, and new library module names (for the template to
        preload). With ``keep_files`` the user files stay new, for the next scan."""
        files: list[str] = []
        libraries: list[str] = []
        for name, module in list(sys.modules.items()):
            key = (name, getattr(module, "__file__", None))
            if key in self.seen:
                continue
            if name == "devreload" or name.startswith("devreload."):
                self.seen.add(key)
                continue
            path = _source_of(module)
            if path is not None and not self._in_library(path):
                if not keep_files:
                    self.seen.add(key)
                    files.append(path)
                continue
            self.seen.add(key)
            if path is None:
                if _is_builtin(module):
                    libraries.append(name)
            elif name != "__main__":
                libraries.append(name)
        return files, libraries


def _is_builtin(module: Any) -> bool:
    spec = getattr(module, "__spec__", None)
    return spec is not None and spec.origin in ("built-in", "frozen")


def _source_of(module: Any) -> str | None:
    path = getattr(module, "__file__", None)
    if not isinstance(path, str):
        return None
    if path.endswith((".pyc", ".pyo")):
        try:
            path = importlib.util.source_from_cache(path)
        except ValueError:
            return None
    path = os.path.abspath(path)
    if isinstance(getattr(module, "__loader__", None), importlib.machinery.SourceFileLoader):
        return path  # read from there just now (no stat: see ModuleScanner._in_library)
    return path if os.path.isfile(path) else None


#: What this process had loaded before the worker's own imports: the template's scan (a
#: worker forked from it scans only what it imports itself; the template's libraries the
#: monitor knows already), or a fresh worker's first look (see template_scanner).
_scanner: ModuleScanner | None = None


def scan_ahead() -> ModuleScanner:
    """In the worker template after each preload, in a fresh worker first thing: take the
    libraries loaded so far as seen. A user file loaded at start (a ``sitecustomize``)
    stays new: the worker reports it, to be watched."""
    global _scanner
    if _scanner is None:
        _scanner = ModuleScanner()
    _scanner.scan(keep_files=True)
    return _scanner


def template_scanner() -> ModuleScanner:
    """The scanner a worker goes on with: the template's, when it was forked from one. A
    fresh worker asks first thing, before its spec and its app: what the interpreter and
    devreload's runtime have loaded by then, a template or a spare has loaded too."""
    return _scanner or scan_ahead()
