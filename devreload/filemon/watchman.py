"""A monitor that asks a watchman server (:mod:`devreload.filemon.watchman_client`).

watchman keeps one recursive watch per project root for every tool of the machine, so
devreload adds no watches of its own, and pays no crawl when the server already watches the
project. One connection and one thread per monitor: the thread (or start(), before it runs)
sends every command and reads every answer, and the subscription updates that arrive
between them. watchman 4.9 leaves the second of two requests that arrive in one read
unanswered, so a command is only sent once the previous one was answered.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import sys
import threading
import time
from typing import Any

from devreload.filemon.base import (
    Callback,
    FileMonitor,
    FileMonitorFactory,
    IgnoreRules,
    is_glob,
)
from devreload.filemon.watchman_client import (
    COMMAND_TIMEOUT,
    Connection,
    Refused,
    WatchmanUnavailable,
    find_socket,
)
from devreload.filemon.watchman_state import (
    Subscriptions,
    WatchedFiles,
    folder_of,
    locate,
    signature,
)
from devreload.log import LOGGER_NAME, display_path

#: How long a restarted server may take to accept again before devreload stops using it.
RECONNECT_TIMEOUT = 5.0
#: The pause between two connection attempts (stop() cuts it short).
RETRY_INTERVAL = 0.1
#: How long a change may wait undelivered before the monitor asks for it itself: watchman
#: delivers nothing until the whole root has been quiet for its settle period, and a file
#: written every few milliseconds anywhere in it (a log, a journal) holds every save back.
HELD_BACK = 0.5
BUSY = ("watchman held a change back for over %g s: %s keeps changing, and watchman waits "
        "until its whole tree is quiet; ignore it (\"ignore_dirs\" in .watchmanconfig, or -x) "
        "or use another monitor (--monitor inotify)")


class WatchmanFileMonitor:
    """One subscription per watchman root holding a watched file or glob; the files the
    server reports are matched by name, and reported when their mtime, size, inode or
    existence moved (watchman also reports a chmod, and every file it recrawls).

    It connects when built, so that a missing server raises WatchmanUnavailable where the
    factory is called; a watch the server refuses raises it from start()."""

    def __init__(
        self,
        callback: Callback,
        interval: float = 1.0,
        logger: Any = None,
        ignore: IgnoreRules | None = None,
        fallback: FileMonitorFactory | None = None,
        **kw: Any,
    ) -> None:
        self.callback = callback
        self.interval = interval
        self.log = logger if logger is not None else logging.getLogger(LOGGER_NAME)
        self.ignore = ignore or IgnoreRules(defaults=False)
        self.fallback = fallback
        #: What is watched and known of it, read and changed with the lock held.
        self.watched = WatchedFiles(self.ignore)
        self._pending: list[str] = []  # paths whose folder needs a command first
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._stopped = threading.Event()
        self._finished = False
        self._wake_r = self._wake_w = -1
        self._delegate: FileMonitor | None = None
        self._said_busy = False
        self._thread = threading.Thread(target=self._run, name="devreload-watchman", daemon=True)
        self._sockname = find_socket()
        self._conn = Connection(self._sockname)
        self._session = Subscriptions(self._conn, self.watched, self._lock)

    # ---- the interface

    def add_path(self, path: str) -> None:
        """A file under a root already subscribed is registered here and now; otherwise the
        thread subscribes (or queries a glob's current matches) and this waits for it."""
        glob = is_glob(path)
        existing, real = locate(folder_of(path))
        known = None if glob else signature(path)
        with self._cond:
            if self._delegate is not None:
                self._delegate.add_path(path)
                return
            if not self.watched.add(path, glob, known):
                return
            if not glob and self.watched.root_of(real) is not None:
                if existing != real:
                    self.watched.aliases.add((existing, real))
                return
            self._pending.append(path)
            if not self._thread.is_alive() or threading.current_thread() is self._thread:
                return  # start() or the thread's next round takes it
            self._wake()
            self._cond.wait_for(lambda: path not in self._pending or self._finished,
                                COMMAND_TIMEOUT)

    def start(self) -> None:
        """Subscribes for the paths added so far, so that a refused watch raises here, where
        the caller can pick another monitor."""
        try:
            self._setup_pending()
        except OSError as exc:
            self._conn.sock.close()
            if isinstance(exc, WatchmanUnavailable):
                raise
            raise WatchmanUnavailable(f"watchman stopped ({exc})") from exc
        self._wake_r, self._wake_w = os.pipe()
        if sys.platform != "win32":  # (watchman is not used there: see its Connection)
            os.set_blocking(self._wake_w, False)
        self._thread.start()

    def stop(self) -> None:
        with self._lock:
            self._stopped.set()
            if self._thread.ident is None:
                self._conn.sock.close()  # never started: no thread will
            else:
                with contextlib.suppress(OSError):
                    self._conn.sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked recv
            self._wake()
            delegate = self._delegate
        if delegate is not None:
            delegate.stop()

    def join(self) -> None:
        if self._thread.ident is not None:
            self._thread.join()
        if self._delegate is not None:
            self._delegate.join()

    # ---- the thread

    def _run(self) -> None:
        try:
            try:
                reason = self._loop()
            finally:
                with self._lock:
                    self._conn.sock.close()
                    os.close(self._wake_r)
                    os.close(self._wake_w)
                    self._wake_w = -1
            if reason:
                self._give_up(reason)
        finally:
            with self._cond:
                self._finished = True  # add_path() waits no more
                self._cond.notify_all()

    def _loop(self) -> str:
        """Serves until stopped (returns "") or until watchman cannot go on (returns why)."""
        while not self._stopped.is_set():
            try:
                self._serve()
            except Refused as exc:
                return str(exc)
            except OSError:  # the connection broke: the server stopped, or restarts
                try:
                    if not self._reconnect() and not self._stopped.is_set():
                        return (f"watchman stopped (no server at {self._sockname} for "
                                f"{RECONNECT_TIMEOUT:g} s)")
                except Refused as exc:
                    return str(exc)
        return ""

    def _serve(self) -> None:
        """Until stopped: set up added paths, and report what the subscriptions say."""
        conn = self._conn
        while not self._stopped.is_set():
            self._setup_pending()
            if conn.unilateral:
                self._report(self._handle(conn.unilateral.popleft()))
                continue
            readable, _, _ = select.select([conn.sock.fileno(), self._wake_r], [], [], HELD_BACK)
            if not readable:
                self._catch_up()
            if self._wake_r in readable:
                os.read(self._wake_r, 512)
            if conn.sock.fileno() in readable:
                conn.receive()

    def _catch_up(self) -> None:
        """Nothing came for a while: report what the server holds back, and say once why."""
        changed, busy = self._session.held_back(HELD_BACK)
        if changed and not self._said_busy:
            self._said_busy = True
            self.log.warning(BUSY, HELD_BACK, display_path(busy) if busy else "another file")
        self._report(changed)

    def _wake(self) -> None:
        """Interrupts the thread's select(); called with the lock held (the pipe closes)."""
        if self._wake_w >= 0:
            with contextlib.suppress(BlockingIOError):
                os.write(self._wake_w, b"x")

    def _setup_pending(self) -> None:
        while True:
            with self._lock:
                if not self._pending:
                    return
                path = self._pending[0]
            self._session.setup(path)
            with self._cond:
                self._pending.remove(path)
                self._cond.notify_all()

    def _handle(self, pdu: dict[str, Any]) -> list[str]:
        root = pdu.get("root")
        if "subscription" not in pdu or not isinstance(root, str):
            return []
        if pdu.get("canceled"):
            return self._root_gone(root)
        # The server lost track of the root (not after a mere recrawl in 4.9): look again.
        changed = self._session.recheck() if pdu.get("is_fresh_instance") else []
        self._session.delivered(root, pdu)
        with self._lock:
            return changed + self.watched.apply(root, pdu.get("files") or [])

    def _root_gone(self, root: str) -> list[str]:
        """The root folder was deleted, and watchman says no more of its files: watch each
        path again from its nearest existing folder, then report what is gone (or back)."""
        with self._lock:
            self.watched.roots.discard(root)
            paths = self.watched.paths()
        folders = {path: locate(folder_of(path))[1] for path in paths}
        with self._lock:
            self._pending.extend(p for p in paths if self.watched.root_of(folders[p]) is None)
        self._setup_pending()
        return self._session.restat()

    def _reconnect(self) -> bool:
        """Connect again while the server restarts; subscribe anew and catch up."""
        deadline = time.monotonic() + RECONNECT_TIMEOUT
        while not self._stopped.wait(RETRY_INTERVAL):
            try:
                conn = Connection(self._sockname)
                with self._lock:
                    self._conn.sock.close()
                    self._conn = conn
                    self._session = Subscriptions(conn, self.watched, self._lock)
                    if self._stopped.is_set():  # stop() shut the previous one down
                        return False
                    roots = sorted(self.watched.roots)
                for root in roots:
                    conn.command("watch-project", root)
                    self._session.subscribe(root)
                changed = self._session.recheck()
            except Refused:
                raise
            except OSError:
                if time.monotonic() < deadline:
                    continue
                return False
            self._report(changed)
            return True
        return False

    def _give_up(self, reason: str) -> None:
        """Hand every path to the fallback monitor (with what changed meanwhile), or stop."""
        with self._lock:
            if self._stopped.is_set():
                return
            if self.fallback is None:
                self.log.error("%s; no longer watching for changes", reason)
                return
            try:
                delegate = self.fallback(self.callback, interval=self.interval,
                                         logger=self.log, ignore=self.ignore)
                for path in self.watched.paths():
                    delegate.add_path(path)
                delegate.start()
            except OSError as exc:
                self.log.error("%s, and the fallback failed (%s); no longer watching for "
                               "changes", reason, exc)
                return
            self._delegate = delegate
            self.log.warning("%s; watching with %s instead", reason, type(delegate).__name__)
        self._report(self._session.restat())

    def _report(self, paths: list[str]) -> None:
        for path in paths:
            self.callback(path)
