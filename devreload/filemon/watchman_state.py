"""What the watchman monitor knows: the paths asked for, the roots subscribed, and what is
known of each file; the matching of what the server reports against them, and the
subscriptions and queries that tell it."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from devreload.filemon.base import IgnoreRules, glob_regex, glob_root, is_glob
from devreload.filemon.watchman_client import Connection

#: What is known of a file: (mtime in ms, size, inode), or None while it does not exist. The
#: inode tells a file renamed over it in the same clock tick, as the polling monitor does.
Signature = tuple[int, int, int] | None


def signature(path: str) -> Signature:
    """What watchman would say of ``path``: its mtime_ms field is the mtime, floored; of a
    symlink, the link's own (a link's target is watched as a file of its own)."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_mtime_ns // 1_000_000, st.st_size, st.st_ino)


def locate(folder: str) -> tuple[str, str]:
    """The nearest existing folder at or above ``folder`` (a watch needs one), and its real
    path (what watchman names its files by)."""
    existing = folder
    while not os.path.isdir(existing):
        parent = os.path.dirname(existing)
        if parent == existing:
            break
        existing = parent
    return existing, os.path.realpath(existing)


def folder_of(path: str) -> str:
    return glob_root(path) if is_glob(path) else os.path.dirname(path)


#: Files and symlinks (a module may be replaced by a link); a deleted one keeps its type.
EXPRESSION = ["anyof", ["type", "f"], ["type", "l"]]
FIELDS = ["name", "exists", "mtime_ms", "size", "ino"]


class WatchedFiles:
    """The monitor's watch list, read and changed with the monitor's lock held."""

    def __init__(self, ignore: IgnoreRules) -> None:
        self.ignore = ignore
        # A glob's matches also heed .gitignore where the rules know how (glob_ignores).
        self._glob_ignores = getattr(ignore, "glob_ignores", ignore)
        self.files: set[str] = set()
        self.globs: set[str] = set()
        self.known: dict[str, Signature] = {}
        #: Subscribed, as watchman names them (real paths).
        self.roots: set[str] = set()
        #: (a folder as asked for, its real path).
        self.aliases: set[tuple[str, str]] = set()

    def add(self, path: str, glob: bool, known: Signature) -> bool:
        """Watch ``path`` (a file with what is known of it, or a glob); False if it was."""
        if path in self.files or path in self.globs:
            return False
        if glob:
            self.globs.add(path)
        else:
            self.files.add(path)
            self.known[path] = known
        return True

    def paths(self) -> list[str]:
        return sorted(self.files | self.globs)

    def root_of(self, real: str) -> str | None:
        for root in self.roots:
            if real == root or real.startswith(root + os.sep):
                return root
        return None

    def names(self, real: str) -> set[str]:
        """A file as watchman names it, and as it was asked for through linked folders."""
        names = {real}
        for asked, target in self.aliases:
            if real.startswith(target + os.sep):
                names.add(asked + real[len(target) :])
        return names

    def wanted(self, path: str) -> bool:
        if path in self.files:
            return not self.ignore(path)
        return (any(glob_regex(g).match(path) for g in self.globs)
                and not self._glob_ignores(path))

    def apply(self, folder: str, files: list[dict[str, Any]]) -> list[str]:
        """What the server says of the files under ``folder``; the watched ones that moved."""
        changed = []
        for entry in files:
            known = ((entry["mtime_ms"], entry["size"], entry["ino"]) if entry["exists"]
                     else None)
            for path in self.names(os.path.join(folder, entry["name"])):
                if self.known.get(path) != known and self.wanted(path):
                    self.known[path] = known
                    changed.append(path)
        return changed

    def moved(self, before: dict[str, Signature], now: dict[str, Signature]) -> list[str]:
        """The watched files whose signature moved from ``before`` to ``now`` (stat'ed
        without the lock), now known."""
        changed = [p for p, s in now.items() if s != before[p] and self.wanted(p)]
        self.known.update((p, now[p]) for p in changed)
        return changed


class Subscriptions:
    """The monitor's subscriptions on one connection, and the queries that tell what
    changed under them; ``watched`` is read and changed with ``lock`` held."""

    def __init__(self, conn: Connection, watched: WatchedFiles, lock: threading.Lock) -> None:
        self.conn = conn
        self.watched = watched
        self.lock = lock
        #: Each root's clock at its subscription's last delivery.
        self.clocks: dict[str, str] = {}

    def setup(self, path: str) -> None:
        """Subscribe to the root of the path's nearest existing folder (watchman watches a
        folder with no project root above it by itself); for a glob, learn its matches."""
        existing, real = locate(folder_of(path))
        with self.lock:
            root = self.watched.root_of(real)
        if root is None:
            answer = self.conn.command("watch-project", existing)
            root = str(answer["watch"])
            if "relative_path" in answer:
                real = os.path.join(root, answer["relative_path"])
            else:
                real = root
            if root not in self.watched.roots:
                self.subscribe(root)
        with self.lock:
            if existing != real:
                self.watched.aliases.add((existing, real))
        if is_glob(path):
            self.query(root, real)  # what matches now is known, not changed

    def subscribe(self, root: str) -> None:
        """No ``since``: subscribing waits for the root's crawl, and what changed before is
        found by comparing signatures."""
        answer = self.conn.command("subscribe", root, f"devreload:{root}", {
            "expression": EXPRESSION,
            "fields": FIELDS,
            "empty_on_fresh_instance": True,
        })
        with self.lock:
            self.watched.roots.add(root)
        self.delivered(root, answer)

    def delivered(self, root: str, pdu: dict[str, Any]) -> None:
        if isinstance(pdu.get("clock"), str):
            self.clocks[root] = pdu["clock"]

    def held_back(self, age: float) -> tuple[list[str], str | None]:
        """What the server knows but has not delivered for ``age`` seconds (it waits until
        the whole root is quiet): the watched files that changed, and the file changed
        last besides them (the one that keeps the root busy, most likely)."""
        changed: list[str] = []
        busy: tuple[float, str] | None = None
        oldest = (time.time() - age) * 1000
        for root, clock in sorted(self.clocks.items()):
            answer = self.conn.command("query", root, {"expression": EXPRESSION,
                                                       "fields": FIELDS, "since": clock})
            files = [f for f in answer.get("files") or [] if f.get("mtime_ms", 0) <= oldest]
            with self.lock:
                found = self.watched.apply(root, files)
            changed += found
            for entry in answer.get("files") or []:
                path = os.path.join(root, entry["name"])
                mtime = entry.get("mtime_ms", 0)
                if path not in found and (busy is None or mtime > busy[0]):
                    busy = (mtime, path)
        return changed, None if busy is None else busy[1]

    def query(self, root: str, real: str) -> list[str]:
        """The files under folder ``real`` as the server knows them now; returns the
        watched ones that changed."""
        spec: dict[str, Any] = {"expression": EXPRESSION, "fields": FIELDS}
        relative = os.path.relpath(real, root)
        if relative != os.curdir:
            spec["relative_root"] = relative
        answer = self.conn.command("query", root, spec)
        with self.lock:
            return self.watched.apply(real, answer.get("files") or [])

    def restat(self) -> list[str]:
        """The known files whose signature moved while the server could not tell."""
        with self.lock:
            known = dict(self.watched.known)
        now = {path: signature(path) for path in known}
        with self.lock:
            return self.watched.moved(known, now)

    def recheck(self) -> list[str]:
        """After a new server or a recrawl: known files by stat, new glob matches by query."""
        changed = self.restat()
        with self.lock:
            globs = sorted(self.watched.globs)
        for pattern in globs:
            _, real = locate(glob_root(pattern))
            with self.lock:
                root = self.watched.root_of(real)
            if root is not None:
                changed += self.query(root, real)
        return changed
