"""What a git work tree's ``.gitignore`` files exclude, for watch globs.

A glob such as ``src/**`` should not restart the app for build output, coverage data or
anything else the project already told git to ignore. Only the work tree a path is in
counts (the folders up to the one holding ``.git``), with its ``.git/info/exclude``: a
folder outside any repository has no ignore files, as for git itself.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathspec import GitIgnoreSpec

#: How long a read ``.gitignore`` is trusted before its mtime is looked at again: a walk
#: over a large tree asks about every file, an edit of the ignore file is rare.
RECHECK_SECONDS = 1.0

Rules = list[tuple[str, "GitIgnoreSpec"]]


def _read_spec(path: str) -> GitIgnoreSpec | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    # Imported with the first ignore file: pathspec costs a monitor without one its start.
    from pathspec import GitIgnoreSpec

    return GitIgnoreSpec.from_lines(lines)


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


class GitIgnores:
    """Answers "does git ignore this path?", reading each folder's rules once."""

    def __init__(self) -> None:
        # folder -> (checked at, mtime of its .gitignore, its spec)
        self._files: dict[str, tuple[float, int | None, GitIgnoreSpec | None]] = {}
        # folder -> the work tree's root above it, or None outside any work tree
        self._roots: dict[str, str | None] = {}
        # folder -> (checked at, the rules that apply in it, deepest first)
        self._chains: dict[str, tuple[float, Rules]] = {}

    def ignored(self, path: str, *, is_dir: bool = False) -> bool:
        """Whether git would ignore ``path``; the deepest file with a verdict decides."""
        folder = os.path.dirname(path)
        for base, spec in self._rules(folder):
            rel = path[len(base) :].lstrip(os.sep).replace(os.sep, "/")
            verdict = spec.check_file(rel + "/" if is_dir else rel).include
            if verdict is not None:
                return verdict
        return False

    def _rules(self, folder: str) -> Rules:
        now = time.monotonic()
        cached = self._chains.get(folder)
        if cached is not None and now - cached[0] < RECHECK_SECONDS:
            return cached[1]
        rules = self._read_rules(folder)
        self._chains[folder] = (now, rules)
        return rules

    def _read_rules(self, folder: str) -> Rules:
        root = self._root(folder)
        if root is None:
            return []
        rules: Rules = []
        current = folder
        while True:
            spec = self._spec(current, os.path.join(current, ".gitignore"))
            if spec is not None:
                rules.append((current, spec))
            if current == root:
                break
            current = os.path.dirname(current)
        exclude = self._spec(os.path.join(root, ".git"),
                             os.path.join(root, ".git", "info", "exclude"))
        if exclude is not None:
            rules.append((root, exclude))
        return rules

    def _spec(self, key: str, path: str) -> GitIgnoreSpec | None:
        now = time.monotonic()
        cached = self._files.get(key)
        if cached is not None and now - cached[0] < RECHECK_SECONDS:
            return cached[2]
        mtime = _mtime(path)
        if cached is not None and cached[1] == mtime:
            spec = cached[2]
        else:
            spec = _read_spec(path) if mtime is not None else None
        self._files[key] = (now, mtime, spec)
        return spec

    def _root(self, folder: str) -> str | None:
        if folder in self._roots:
            return self._roots[folder]
        parent = os.path.dirname(folder)
        if os.path.exists(os.path.join(folder, ".git")):
            root: str | None = folder
        elif parent == folder:
            root = None
        else:
            root = self._root(parent)
        self._roots[folder] = root
        return root
