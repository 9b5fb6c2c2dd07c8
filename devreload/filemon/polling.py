"""The fallback monitor: stat the watched files at an interval.

It works where OS events do not arrive (Docker bind mounts, WSL's /mnt, network
file systems) and when the OS watch limit is reached. A round stats the watched files,
the files globs matched, and the folders globs can match into; a folder is listed again
only when its mtime moved (an entry was added, removed or renamed), so a round costs a
stat per file and folder, and the wait between rounds grows with that cost, keeping the
thread at about 1% of a core however many files there are.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from devreload.filemon.base import Callback, glob_regex, glob_root, is_glob

#: Stat-polling thousands of files more often than this costs CPU and gains nothing.
MIN_INTERVAL = 0.25
#: The wait between rounds is at least this many rounds long: about 1% of a core.
ROUND_SHARE = 100
#: A folder whose mtime is this close to when it was listed is listed again next round:
#: an entry added in the same clock tick (2 s on FAT, a few ms on ext4) but after the
#: listing leaves the mtime as it was.
RACY_NS = 2_000_000_000

Signature = tuple[int, int, int] | None
#: How many folder levels below a folder a glob still reaches; None under ``**``.
Depth = int | None


def _signature(path: str) -> Signature:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _folder_signature(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_ino)


@dataclass
class _Folder:
    """A folder globs reach, and what its last listing found there."""

    globs: dict[str, Depth] = field(default_factory=dict)
    signature: tuple[int, int] | None = None  # mtime and inode when it was last listed
    relist: bool = False  # list it next round whatever its signature
    dirs: set[str] = field(default_factory=set)  # its subfolders the globs reach
    matches: set[str] = field(default_factory=set)  # its files the globs match


def _folder_rule(ignore: Callable[[str], bool]) -> Callable[[str], bool]:
    """Which folders a glob never enters: ``glob_ignores_folder`` (the ignore rules plus
    .gitignore) where the rules have it, ``ignores_folder``, or the rules themselves."""
    for name in ("glob_ignores_folder", "ignores_folder"):
        rule: Callable[[str], bool] | None = getattr(ignore, name, None)
        if rule is not None:
            return rule
    return lambda folder: ignore(folder.rstrip(os.sep) + os.sep)


class PollingFileMonitor:
    """Compares each file's mtime, size and inode with the previous round."""

    def __init__(
        self,
        callback: Callback,
        interval: float = 1.0,
        logger: Any = None,
        ignore: Callable[[str], bool] | None = None,
        **kw: Any,
    ) -> None:
        self.callback = callback
        self.interval = max(interval, MIN_INTERVAL)
        self.log = logger
        self.ignore = ignore or (lambda path: False)
        self._ignores_folder = _folder_rule(self.ignore)
        self._glob_ignores: Callable[[str], bool] = getattr(self.ignore, "glob_ignores",
                                                            self.ignore)
        self.files: dict[str, Signature] = {}  # named files and glob matches
        self.named: set[str] = set()  # kept when no glob matches them any more
        self.globs: dict[str, re.Pattern[str]] = {}
        self.folders: dict[str, _Folder] = {}
        self.listed = 0  # folders listed so far; a quiet round lists none
        self.round_time = 0.0  # seconds the last round took
        self.next_wait = self.interval  # seconds until the next round
        self._told = False
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="devreload-polling", daemon=True)

    def add_path(self, path: str) -> None:
        with self._lock:
            if is_glob(path):
                if path not in self.globs:
                    for match in self._expand(path):
                        self.files.setdefault(match, _signature(match))
            elif path not in self.named:
                self.named.add(path)
                self.files.setdefault(path, _signature(path))

    def _expand(self, pattern: str) -> list[str]:
        """Follow ``pattern`` from its root into the folders it can match in, never into
        an ignored one (``node_modules`` with its 20,000 files, ``.git``); return the
        files it matches now."""
        self.globs[pattern] = glob_regex(pattern)
        root = glob_root(pattern)
        rest = pattern[len(root) :].lstrip(os.sep)
        depth = None if "**" in rest else rest.count(os.sep)  # levels below the root
        found: list[str] = []
        self._cover(root, {pattern: depth}, found)
        return found

    def _cover(self, path: str, globs: dict[str, Depth], found: list[str]) -> None:
        """Add ``globs`` to the folder ``path`` and to the folders below it they reach,
        listing each once; the files they match go to ``found``."""
        folder = self.folders.get(path)
        fresh = folder is None
        if folder is None:
            folder = self.folders[path] = _Folder()
        globs = {g: depth for g, depth in globs.items() if g not in folder.globs}
        if not globs:
            return
        folder.globs.update(globs)
        # A folder already known keeps the signature of its last full listing, so that
        # a change this listing (for the new globs only) sees is still looked at.
        dirs, matches = self._sort(self._list(path, folder if fresh else None), globs,
                                  folder)
        folder.dirs.update(dirs)
        folder.matches.update(matches)
        found.extend(matches)
        for sub, below in dirs.items():
            self._cover(sub, below, found)

    def _list(self, path: str, folder: _Folder | None) -> list[os.DirEntry[str]]:
        """The entries of ``path``; its signature is noted first (in ``folder``), so that
        a change made while listing shows in the next round."""
        if folder is not None:
            now = time.time_ns()
            try:
                st = os.stat(path)
            except OSError:
                folder.signature, folder.relist = None, False
                return []
            folder.signature = (st.st_mtime_ns, st.st_ino)
            folder.relist = st.st_mtime_ns > now - RACY_NS
        self.listed += 1
        try:
            with os.scandir(path) as listing:
                return list(listing)
        except OSError:
            return []

    def _sort(self, entries: list[os.DirEntry[str]], globs: dict[str, Depth], known: _Folder
              ) -> tuple[dict[str, dict[str, Depth]], set[str]]:
        """The subfolders ``globs`` reach (with how deep they reach below each) and the
        files they match, among ``entries``. The ignore rules (tens of patterns) are asked
        only about entries the folder's last listing did not have."""
        dirs: dict[str, dict[str, Depth]] = {}
        matches: set[str] = set()
        for entry in entries:
            try:
                if entry.is_dir():
                    # Under ``**`` a link to a folder is not followed: a loop would never end.
                    link = entry.is_symlink()
                    below = {g: None if depth is None else depth - 1
                             for g, depth in globs.items()
                             if depth != 0 and not (depth is None and link)}
                    if below and (entry.path in known.dirs
                                  or not self._ignores_folder(entry.path)):
                        dirs[entry.path] = below
                elif (entry.is_file() and any(self.globs[g].match(entry.path) for g in globs)
                      and (entry.path in known.matches or not self._glob_ignores(entry.path))):
                    matches.add(entry.path)
            except OSError:
                continue
        return dirs, matches

    def _relist(self, path: str, folder: _Folder, changed: dict[str, None]) -> None:
        """List a folder whose entries changed: follow new subfolders, forget vanished
        ones, and put new and vanished matches in ``changed``."""
        dirs, matches = self._sort(self._list(path, folder), folder.globs, folder)
        for sub in folder.dirs:
            known = self.folders.get(sub)
            if known is not None:
                lost = (folder.globs.keys() & known.globs.keys()) - dirs.get(sub, {}).keys()
                self._drop(sub, lost, changed)
        folder.dirs = set(dirs)
        for gone in folder.matches - matches:
            self._forget(gone, changed)
        found = list(matches - folder.matches)
        folder.matches = matches
        for sub, below in dirs.items():
            self._cover(sub, below, found)
        for match in found:
            if match not in self.files:
                self.files[match] = _signature(match)
                changed[match] = None

    def _drop(self, path: str, globs: set[str], changed: dict[str, None]) -> None:
        """Stop following ``globs`` into ``path`` and below; a folder no glob reaches any
        more is forgotten, with its matches."""
        folder = self.folders.get(path)
        if folder is None or not globs & folder.globs.keys():
            return
        for g in globs:
            folder.globs.pop(g, None)
        for sub in folder.dirs:
            self._drop(sub, globs, changed)
        if folder.globs:
            folder.relist = True  # what it holds for the globs that still reach it
        else:
            del self.folders[path]
            for match in folder.matches:
                self._forget(match, changed)

    def _forget(self, match: str, changed: dict[str, None]) -> None:
        """A glob match is gone: a change, unless the last round already saw it go."""
        if match not in self.named and self.files.pop(match, None) is not None:
            changed[match] = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def join(self) -> None:
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stopped.wait(self.next_wait):
            self.check()

    def check(self) -> None:
        """One polling round: stat the files and the folders (without the lock, so that
        ``add_path`` does not wait), list the folders whose entries changed, then report
        each path whose signature moved. Its time leaves out waiting for the lock: an
        ``add_path`` walking a new tree is not this round's cost."""
        with self._lock:
            start = time.perf_counter()
            files = list(self.files.items())
            folders = [(path, f.signature) for path, f in self.folders.items() if not f.relist]
            relist = [path for path, f in self.folders.items() if f.relist]
        moved = [(path, sig) for path, old in files if (sig := _signature(path)) != old]
        relist += [path for path, old in folders if _folder_signature(path) != old]
        took = time.perf_counter() - start
        changed: dict[str, None] = {}
        with self._lock:
            start = time.perf_counter()
            for path, sig in moved:
                if path in self.files:
                    self.files[path] = sig
                    changed[path] = None
            for path in sorted(relist):  # a folder before those below it
                folder = self.folders.get(path)
                if folder is not None:
                    self._relist(path, folder, changed)
            counts = len(self.files), len(self.folders)
            took += time.perf_counter() - start
        self._pace(took, *counts)
        for path in changed:
            self.callback(path)

    def _pace(self, took: float, files: int, folders: int) -> None:
        """Wait ``ROUND_SHARE`` times as long as the round took, at least the interval;
        wall time, so that a slow network mount is spared as well as the CPU."""
        self.round_time = took
        self.next_wait = max(self.interval, took * ROUND_SHARE)
        if self.next_wait > self.interval and not self._told:
            self._told = True
            if self.log is not None:
                self.log.debug("polling %d files and %d folders takes %.0f ms; checking "
                               "every %.1f s", files, folders, took * 1000, self.next_wait)
