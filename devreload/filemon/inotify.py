"""The default monitor on Linux: one inotify instance, read by one thread.

watchdog starts a thread per watched folder, and (before version 7) an inotify instance
per folder too: an app importing from 3,000 folders ran 3,000 threads, and past the
per-user limit of 128 instances fell back to polling. The kernel's interface needs
neither: one instance holds any number of watches, and one ``read`` returns the events
of all of them. It is called here through ctypes, so it needs no compiled module.
"""

from __future__ import annotations

import ctypes
import errno
import os
import select
import struct
import threading
from typing import Any

from devreload.filemon.base import Callback, IgnoreRules, WatchLimitReached, limit_error
from devreload.filemon.folders import FolderMonitor

IN_ATTRIB = 0x4
IN_CLOSE_WRITE = 0x8
IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_MOVE_SELF = 0x800
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x1000000
IN_EXCL_UNLINK = 0x4000000
IN_ISDIR = 0x40000000
IN_NONBLOCK: int = getattr(os, "O_NONBLOCK", 0)  # (a Linux module: never 0 where it runs)
IN_CLOEXEC = 0o2000000

#: A write in place (once the writer closes the file: its content is whole then, where
#: IN_MODIFY comes with each write), a rename over, a delete and recreate, ``touch``; and
#: the folder itself moved away (its watch would go on reporting under the old name).
MASK = (IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
        | IN_MOVE_SELF | IN_ONLYDIR | IN_EXCL_UNLINK)

EVENT_HEADER = struct.Struct("iIII")  # wd, mask, cookie, length of the name
READ_SIZE = 64 * 1024


def _kind(mask: int) -> tuple[str, bool]:
    """The event's kind, and whether the file is whole now (closed after writing, renamed
    into place, touched): a created file is still being written."""
    if mask & IN_MOVED_TO:
        return "created", True
    if mask & IN_CREATE:
        return "created", False
    if mask & (IN_DELETE | IN_MOVED_FROM):
        return "deleted", False
    if mask & IN_ATTRIB:
        return "attrib", True
    return "modified", True


class InotifyFileMonitor(FolderMonitor):
    """Watches every folder on one inotify file descriptor."""

    def __init__(self, callback: Callback, logger: Any = None,
                 ignore: IgnoreRules | None = None, **kw: Any) -> None:
        super().__init__(callback, logger=logger, ignore=ignore, **kw)
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._fd = self._libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self._fd < 0:
            raise self._error("inotify_init1", ctypes.get_errno())
        self._wakeup_r, self._wakeup_w = os.pipe()
        self._watches: dict[int, str] = {}  # watch descriptor -> folder
        self._renamed: set[int] = set()  # watches already moved to a folder's new name
        self._reader = threading.Thread(target=self._read, name="devreload-inotify",
                                        daemon=True)

    def _error(self, call: str, code: int) -> OSError:
        exc = OSError(code, f"{call}: {os.strerror(code)}")
        return WatchLimitReached(exc) if limit_error(exc) else exc

    def _register(self, folder: str) -> None:
        wd = self._libc.inotify_add_watch(self._fd, os.fsencode(folder), MASK)
        if wd < 0:
            code = ctypes.get_errno()
            if code in (errno.ENOENT, errno.ENOTDIR):  # gone since it was looked at
                self.pending.add((folder, False))
                return
            raise self._error("inotify_add_watch", code)
        previous = self._watches.get(wd)
        self._watches[wd] = folder
        if previous is not None and previous != folder:
            # The same folder under a new name (a move seen from its parent first): the
            # watch stays, the old name is gone, its own IN_MOVE_SELF is news no more.
            self._renamed.add(wd)
            self._folder_gone(previous)

    def start(self) -> None:
        self._reader.start()
        super().start()

    def stop(self) -> None:
        if self._stopped.is_set():
            return
        super().stop()
        if self._reader.ident is None:  # never started: nothing reads, nothing will close
            self._close()
        else:
            os.write(self._wakeup_w, b"x")

    def _close(self) -> None:
        for fd in (self._fd, self._wakeup_r, self._wakeup_w):
            os.close(fd)

    def join(self) -> None:
        if self._reader.is_alive():
            self._reader.join()
        super().join()

    def _read(self) -> None:
        try:
            while True:
                ready, _, _ = select.select([self._fd, self._wakeup_r], [], [])
                if self._wakeup_r in ready:
                    return
                try:
                    data = os.read(self._fd, READ_SIZE)
                except BlockingIOError:
                    continue
                self._dispatch(data)
        finally:
            self._close()

    def _dispatch(self, data: bytes) -> None:
        offset = 0
        while offset < len(data):
            wd, mask, _, length = EVENT_HEADER.unpack_from(data, offset)
            start = offset + EVENT_HEADER.size
            name = os.fsdecode(data[start : start + length].rstrip(b"\0"))
            offset = start + length
            if mask & IN_Q_OVERFLOW:
                if self.log is not None:
                    self.log.info("the kernel dropped file events (its queue overflowed); "
                                  "comparing the watched files' mtimes instead")
                self._rescan()
                continue
            with self._lock:
                folder = self._watches.get(wd)
                if folder is None:
                    continue
                if mask & IN_MOVE_SELF and wd in self._renamed:
                    self._renamed.discard(wd)
                    continue
                if mask & (IN_IGNORED | IN_MOVE_SELF):
                    self._drop(wd, folder, mask)
                    continue
                if name:
                    kind, final = _kind(mask)
                    self._event(kind, os.path.join(folder, name), is_dir=bool(mask & IN_ISDIR),
                                final=final)

    def _drop(self, wd: int, folder: str, mask: int) -> None:
        del self._watches[wd]
        if not mask & IN_IGNORED:  # moved away: its events would carry the old name
            self._libc.inotify_rm_watch(self._fd, wd)
        self._folder_gone(folder)
