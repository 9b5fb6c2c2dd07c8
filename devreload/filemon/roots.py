"""Recursive watch roots: as few streams as cover every watched folder.

Where the OS watches a tree with one stream (FSEvents on macOS, ReadDirectoryChangesW
on Windows), a stream per folder would cost a thread per folder in watchdog. Folders are
covered by roots instead, and events under a root are matched against the watched files
as any other. Roots inside the project (the current folder) merge at their common
folder, so a project is one stream however many folders it has; a root outside it (a
file named on the command line elsewhere) stays a stream of its own, so that no stream
ever covers a home folder or a whole disk for one file.
"""

from __future__ import annotations

import os


def inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


class Roots:
    """The roots laid so far."""

    def __init__(self, project: str) -> None:
        self.project = project
        self.roots: set[str] = set()

    def cover(self, folder: str) -> tuple[str | None, list[str]]:
        """The root to lay so that ``folder`` is covered (None: it is already), and the
        roots that one replaces (to drop once it is laid)."""
        if any(inside(folder, root) for root in self.roots):
            return None, []
        root = folder
        for other in sorted(self.roots):
            common = os.path.commonpath([root, other])
            if inside(common, self.project):
                root = common
        replaced = sorted(r for r in self.roots if inside(r, root))
        self.roots.difference_update(replaced)
        self.roots.add(root)
        return root, replaced

    def drop(self, root: str) -> bool:
        """``root`` is gone (deleted); False if it was no root."""
        if root not in self.roots:
            return False
        self.roots.discard(root)
        return True
