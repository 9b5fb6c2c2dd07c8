"""What the event-driven monitors share: watch folders, match names.

Folders are watched, not file inodes, so that every way an editor saves (in place,
rename over, delete and recreate) is seen; events are then matched by name. A folder on
a file system where OS events do not arrive (NFS, SMB, 9p, virtiofs, Docker Desktop
mounts) is polled instead, by listing it: the rest keep their events.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from devreload.filemon.base import (
    Callback,
    IgnoreRules,
    case_insensitive,
    glob_regex,
    glob_root,
    is_glob,
    path_key,
)
from devreload.filemon.filesystems import Mount, MountTable, describe

#: A listing of a folder on a network mount costs a round trip; once a second is what
#: the peers that poll use, and the interval grows with the folders' count.
POLL_INTERVAL = 1.0
#: At most this share of a core goes to polling, however many folders.
POLL_CPU_SHARE = 0.01

Listing = dict[str, tuple[int, int, int, bool]]  # name -> mtime_ns, size, inode, is a folder


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _listing(folder: str) -> Listing:
    found: Listing = {}
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                try:
                    st = entry.stat(follow_symlinks=False)
                    found[entry.name] = (st.st_mtime_ns, st.st_size, st.st_ino, entry.is_dir())
                except OSError:
                    continue
    except OSError:
        pass
    return found


class FolderMonitor:
    """One non-recursive watch per folder holding a watched file; globs watch their root.
    Subclasses register a folder with the OS (``_register``) and feed what it reports
    to ``_event``."""

    def __init__(
        self,
        callback: Callback,
        interval: float = POLL_INTERVAL,
        logger: Any = None,
        ignore: IgnoreRules | None = None,
        mounts: MountTable | None = None,
        **kw: Any,
    ) -> None:
        self.callback = callback
        self.log = logger
        self.ignore = ignore or IgnoreRules(defaults=False, gitignore=False)
        self.mounts = mounts if mounts is not None else MountTable.read()
        self.files: set[str] = set()
        #: Where names compare without case: each file by its key (``path_key``), so that
        #: an event under the name on disk reports the name the file was added under.
        self.keys: dict[str, str] = {}
        self.globs: set[str] = set()
        self.folders: set[str] = set()
        self.trees: set[str] = set()  # roots of recursive globs, followed into new folders
        self.aliases: dict[str, set[str]] = {}  # a watched folder's real path -> its links
        self.pending: set[tuple[str, bool]] = set()  # folders that do not exist yet
        self.mtimes: dict[str, int | None] = {}  # last known mtime of files reported or named
        self.polled: dict[str, Listing] = {}  # folders without OS events -> their last listing
        self.poll_wait = max(interval, POLL_INTERVAL)
        self._named_mounts: set[Mount] = set()
        self._lock = threading.RLock()
        self._stopped = threading.Event()
        self._poller: threading.Thread | None = None
        self._running = False
        self.started_ns = time.time_ns()

    def _register(self, folder: str) -> None:
        """Ask the OS for events of ``folder`` (a real path); OSError when it refuses."""
        raise NotImplementedError

    def add_path(self, path: str) -> None:
        with self._lock:
            if is_glob(path):
                if path in self.globs:
                    return
                self.globs.add(path)
                root = glob_root(path)
                recursive = os.sep in path[len(root) + 1 :] or "**" in path
                self._watch_folder(root, recursive)
            elif path not in self.files:
                self.files.add(path)
                if case_insensitive():
                    self.keys[path_key(path)] = path
                self.mtimes[path] = _mtime(path)
                self._watch_folder(os.path.dirname(path), False)
            self._start_poller()

    def _watch_folder(self, folder: str, recursive: bool) -> None:
        """Recursive watches are laid folder by folder so ignored trees are never registered."""
        if not os.path.isdir(folder):
            self.pending.add((folder, recursive))
            parent = os.path.dirname(folder)
            if parent != folder:
                self._watch_folder(parent, False)
            return
        if recursive:
            self.trees.add(folder)
            for top, dirs, _ in os.walk(folder):
                dirs[:] = [d for d in dirs
                           if not self.ignore.glob_ignores_folder(os.path.join(top, d))]
                self._schedule(top)
        else:
            self._schedule(folder)

    def _schedule(self, folder: str) -> None:
        if folder in self.folders:
            return
        self.folders.add(folder)
        # A watch on a symlinked folder would watch the link itself: watch the target, and
        # report events under the name the folder was asked for.
        real = os.path.realpath(folder)
        if real != folder:
            self.aliases.setdefault(real, set()).add(folder)
            if real in self.folders:
                return
            self.folders.add(real)
        mount = self.mounts.events_unreliable(real)
        if mount is None:
            self._register(real)
            return
        self.polled[real] = _listing(real)
        if mount not in self._named_mounts:
            self._named_mounts.add(mount)
            if self.log is not None:
                self.log.info("%s: file events do not arrive there; polling its folders",
                              describe(mount))

    def start(self) -> None:
        with self._lock:
            self.started_ns = time.time_ns()
            self._running = True
            self._start_poller()

    def stop(self) -> None:
        self._stopped.set()

    def join(self) -> None:
        if self._poller is not None:
            self._poller.join()

    def _start_poller(self) -> None:
        if self._running and self.polled and self._poller is None:
            self._poller = threading.Thread(target=self._poll, name="devreload-poll",
                                            daemon=True)
            self._poller.start()

    def _poll(self) -> None:
        wait = self.poll_wait
        while not self._stopped.wait(wait):
            began = time.thread_time()
            with self._lock:
                folders = list(self.polled.items())
            for folder, before in folders:
                now = _listing(folder)
                with self._lock:
                    if folder not in self.polled:
                        continue
                    self.polled[folder] = now
                for name in before.keys() | now.keys():
                    if before.get(name) == now.get(name):
                        continue
                    entry = now.get(name) or before[name]
                    kind = "deleted" if name not in now else (
                        "created" if name not in before else "modified")
                    self._event(kind, os.path.join(folder, name), is_dir=entry[3])
            wait = max(self.poll_wait, (time.thread_time() - began) / POLL_CPU_SHARE)

    def _event(self, kind: str, path: str, *, is_dir: bool = False, final: bool = False) -> None:
        """An OS event: ``kind`` is created, modified, deleted or attrib (metadata only:
        counts when the mtime moved, as ``touch`` does); ``final``: the change is whole."""
        if is_dir:
            if kind == "created":
                self._folder_appeared(path)
            return
        attrib = kind == "attrib"
        folder, name = os.path.split(path)
        with self._lock:
            if self.keys:
                path = self.keys.get(path_key(path), path)
            aliases = self.aliases.get(folder, ())
            for candidate in [path, *(os.path.join(a, name) for a in aliases)]:
                if self._wanted(candidate) and self._mtime_moved(candidate, attrib):
                    self.callback(candidate, final)

    def _rescan(self) -> None:
        """Events were lost (the kernel's queue overflowed): report every watched file
        whose mtime is not the one last seen; a glob's match, if newer than the start."""
        with self._lock:
            candidates = set(self.files)
            if self.globs:
                for folder in self.folders:
                    candidates.update(self._files_in(folder, False))
            for path in sorted(candidates):
                if not self._wanted(path):
                    continue
                now = _mtime(path)
                if path in self.mtimes:
                    moved = now != self.mtimes[path]
                else:
                    moved = now is not None and now > self.started_ns
                if moved:
                    self.mtimes[path] = now
                    self.callback(path)

    def _mtime_moved(self, path: str, attrib: bool) -> bool:
        """Remember ``path``'s mtime; for a metadata event, whether it moved (a file not
        known yet counts as moved: a glob's match touched for the first time)."""
        now = _mtime(path)
        with self._lock:
            before = self.mtimes.get(path, -1)
            self.mtimes[path] = now
        return not attrib or before != now

    def _wanted(self, path: str) -> bool:
        if path in self.files:
            return not self.ignore(path)
        return (any(glob_regex(g).match(path) for g in self.globs)
                and not self.ignore.glob_ignores(path))

    def _folder_gone(self, folder: str) -> None:
        """The OS dropped a watched folder (deleted, or moved away): watch for its return,
        as a ``git checkout`` that removes a package and brings it back would need. It may
        be back already, or come back before its parent is watched: no event will tell of
        what it holds then, so look."""
        with self._lock:
            self.folders.discard(folder)
            self.polled.pop(folder, None)
            inside_tree = any(folder == t or folder.startswith(t + os.sep) for t in self.trees)
            self._watch_folder(folder, inside_tree)
            back = os.path.isdir(folder)
        looked = self._folder_appeared(folder)
        if back and folder not in looked:
            self._report_files(folder, inside_tree)

    def _folder_appeared(self, folder: str) -> set[str]:
        """Watch what appeared; the folders whose files were reported."""
        ready: list[tuple[str, bool]] = []
        with self._lock:
            # A folder made inside one that was not watched yet sent no event: look again
            # after each watch is laid, until nothing pending exists.
            while found := [(f, r) for f, r in self.pending if os.path.isdir(f)]:
                for entry in found:
                    self.pending.discard(entry)
                    self._watch_folder(*entry)
                ready += found
            inside_tree = any(folder.startswith(t + os.sep) for t in self.trees)
            if inside_tree and not self.ignore.glob_ignores_folder(folder):
                self._watch_folder(folder, True)
                ready.append((folder, True))
            self._start_poller()
        for root, recursive in ready:
            self._report_files(root, recursive)
        return {root for root, _ in ready}

    def _report_files(self, root: str, recursive: bool) -> None:
        """Every watched file in ``root``: it appeared while no watch could see it."""
        for path in self._files_in(root, recursive):
            if self._wanted(path) and self._mtime_moved(path, False):
                self.callback(path)

    def _files_in(self, root: str, recursive: bool) -> list[str]:
        found = []
        for top, dirs, names in os.walk(root):
            dirs[:] = [d for d in dirs
                       if recursive and not self.ignore.glob_ignores_folder(os.path.join(top, d))]
            found += [os.path.join(top, name) for name in names]
        return found
