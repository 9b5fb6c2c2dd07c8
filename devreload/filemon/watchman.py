"""A monitor that asks a watchman server: its JSON protocol, spoken over its unix socket.

watchman keeps one recursive watch per project root for every tool of the machine, so
devreload adds no watches of its own, and pays no crawl when the server already watches the
project. One connection and one thread per monitor: the thread (or start(), before it runs)
sends every command and reads every answer, and the subscription updates that arrive
between them. watchman 4.9 leaves the second of two requests that arrive in one read
unanswered, so a command is only sent once the previous one was answered.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import re
import select
import shutil
import socket
import subprocess
import threading
import time
from typing import Any

from devreload.filemon.base import (
    Callback,
    FileMonitor,
    FileMonitorFactory,
    IgnoreRules,
    glob_regex,
    glob_root,
    is_glob,
)
from devreload.log import LOGGER_NAME

#: How long a restarted server may take to accept again before devreload stops using it.
RECONNECT_TIMEOUT = 5.0
#: The pause between two connection attempts (stop() cuts it short).
RETRY_INTERVAL = 0.1
#: How long a running server may take to list what it watches, when devreload asks
#: whether to choose it: a server that hangs is not chosen.
WATCH_LIST_TIMEOUT = 0.5
#: Spawning a server takes ~30 ms; only a broken install takes longer.
SOCKNAME_TIMEOUT = 5.0
#: watchman's own limit for the crawl of a new root is 60 s; an answer later than this
#: comes from a server that hangs.
COMMAND_TIMEOUT = 90.0

EXPRESSION = ["type", "f"]  # a deleted file keeps its type
FIELDS = ["name", "exists", "mtime_ms", "size", "ino"]

#: What is known of a file: (mtime in ms, size, inode), or None while it does not exist. The
#: inode tells a file renamed over it in the same clock tick, as the polling monitor does.
Signature = tuple[int, int, int] | None


class WatchmanUnavailable(OSError):
    """watchman cannot serve (not installed, no server, a refused watch); ``str()`` is one line.

    An OSError, so that the caller's fallback for monitors that cannot start applies."""


class _Refused(WatchmanUnavailable):
    """The server answered a command with an error: connecting again would not help."""


def find_socket(spawn: bool = True) -> str:
    """``WATCHMAN_SOCK``, else the server's default socket, started first if ``spawn``."""
    sockname = os.environ.get("WATCHMAN_SOCK")
    if sockname:
        return sockname
    if shutil.which("watchman") is None:
        raise WatchmanUnavailable("watchman is not installed")
    argv = ["watchman", "--no-pretty", "get-sockname"]
    if not spawn:
        argv.insert(1, "--no-spawn")
    try:
        done = subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL,
                              timeout=SOCKNAME_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise WatchmanUnavailable(
            f"watchman did not answer within {SOCKNAME_TIMEOUT:g} s") from None
    except OSError as exc:
        raise WatchmanUnavailable(f"watchman does not run ({exc})") from exc
    try:
        sockname = json.loads(done.stdout)["sockname"]
    except (ValueError, KeyError, TypeError):
        lines = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()
        # Its messages start with a timestamp and a thread name: "2024-...: [] ..."
        why = re.sub(r"^\S+: \[[^\]]*\] ", "", lines[-1]) if lines else "no answer"
        raise WatchmanUnavailable(f"watchman could not start ({why})") from None
    return str(sockname)


def watchman_available(cwd: str) -> str | None:
    """Why watchman should be chosen without being asked for, or None. Never starts a server:
    one that runs for the user and already watches the project counts, and so does a
    ``.watchmanconfig`` (the project's opt-in, which the monitor honours by spawning one)."""
    if not os.environ.get("WATCHMAN_SOCK") and shutil.which("watchman") is None:
        return None
    folder = os.path.abspath(cwd)
    while True:
        if os.path.isfile(os.path.join(folder, ".watchmanconfig")):
            return "the project has a .watchmanconfig"
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    try:
        sockname = find_socket(spawn=False)
    except WatchmanUnavailable:
        return None
    project = os.path.realpath(cwd)
    try:
        conn = _Connection(sockname, WATCH_LIST_TIMEOUT)
    except WatchmanUnavailable:
        return None
    try:
        roots = conn.command("watch-list").get("roots", [])
    except OSError:  # refused, hung or gone: not a server to rely on
        return None
    finally:
        conn.sock.close()
    # A server that does not watch this project yet would first crawl all of it (seconds
    # on a large tree) for nothing inotify does not give: it is left alone.
    for root in roots:
        if project == root or project.startswith(root.rstrip(os.sep) + os.sep):
            return f"the running watchman server watches {root}"
    return None


def _signature(path: str) -> Signature:
    """What watchman would say of ``path``: its mtime_ms field is the mtime, floored."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns // 1_000_000, st.st_size, st.st_ino)


def _locate(folder: str) -> tuple[str, str]:
    """The nearest existing folder at or above ``folder`` (a watch needs one), and its real
    path (what watchman names its files by)."""
    existing = folder
    while not os.path.isdir(existing):
        parent = os.path.dirname(existing)
        if parent == existing:
            break
        existing = parent
    return existing, os.path.realpath(existing)


def _folder(path: str) -> str:
    return glob_root(path) if is_glob(path) else os.path.dirname(path)


class _Connection:
    """One socket to the server: JSON lines both ways. Subscription updates are put aside as
    they come, so that a command's answer is never taken for one, nor one lost."""

    def __init__(self, sockname: str, timeout: float = COMMAND_TIMEOUT) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(sockname)
        except OSError as exc:
            self.sock.close()
            raise WatchmanUnavailable(f"watchman is not running (no server at {sockname})") \
                from exc
        self.buffer = bytearray()
        self.answers: collections.deque[dict[str, Any]] = collections.deque()
        self.unilateral: collections.deque[dict[str, Any]] = collections.deque()

    def command(self, *args: Any) -> dict[str, Any]:
        self.sock.sendall(json.dumps(list(args)).encode() + b"\n")
        while not self.answers:
            self.receive()
        answer = self.answers.popleft()
        if "error" in answer:
            what = " ".join(str(a) for a in args[:2])
            raise _Refused(f"watchman refused `{what}`: " + " ".join(str(answer["error"]).split()))
        return answer

    def receive(self) -> None:
        """Read what the server sent (blocking until something comes) and sort it."""
        data = self.sock.recv(1 << 16)
        if not data:
            raise WatchmanUnavailable("the server closed the connection")
        self.buffer += data
        while (end := self.buffer.find(b"\n")) >= 0:
            line = self.buffer[:end].decode("utf-8", "surrogateescape")
            del self.buffer[: end + 1]
            if not line.strip():
                continue
            try:
                pdu = json.loads(line)
            except ValueError as exc:
                raise WatchmanUnavailable(f"the server sent something that is not JSON ({exc})") \
                    from exc
            unilateral = pdu.get("unilateral") or "subscription" in pdu
            (self.unilateral if unilateral else self.answers).append(pdu)


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
        # A glob's matches also heed .gitignore where the rules know how (glob_ignores).
        self._glob_ignores = getattr(self.ignore, "glob_ignores", self.ignore)
        self.fallback = fallback
        self.files: set[str] = set()
        self.globs: set[str] = set()
        self.known: dict[str, Signature] = {}
        self.roots: set[str] = set()  # subscribed, as watchman names them (real paths)
        self.aliases: set[tuple[str, str]] = set()  # (a folder as asked for, its real path)
        self._pending: list[str] = []  # paths whose folder needs a command first
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._stopped = threading.Event()
        self._finished = False
        self._wake_r = self._wake_w = -1
        self._delegate: FileMonitor | None = None
        self._thread = threading.Thread(target=self._run, name="devreload-watchman", daemon=True)
        self._sockname = find_socket()
        self._conn = _Connection(self._sockname)

    # ---- the interface

    def add_path(self, path: str) -> None:
        """A file under a root already subscribed is registered here and now; otherwise the
        thread subscribes (or queries a glob's current matches) and this waits for it."""
        glob = is_glob(path)
        existing, real = _locate(_folder(path))
        signature = None if glob else _signature(path)
        with self._cond:
            if self._delegate is not None:
                self._delegate.add_path(path)
                return
            if path in self.files or path in self.globs:
                return
            if glob:
                self.globs.add(path)
            else:
                self.files.add(path)
                self.known[path] = signature
                if self._root_of(real) is not None:
                    if existing != real:
                        self.aliases.add((existing, real))
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
            except _Refused as exc:
                return str(exc)
            except OSError:  # the connection broke: the server stopped, or restarts
                try:
                    if not self._reconnect() and not self._stopped.is_set():
                        return (f"watchman stopped (no server at {self._sockname} for "
                                f"{RECONNECT_TIMEOUT:g} s)")
                except _Refused as exc:
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
            readable, _, _ = select.select([conn.sock.fileno(), self._wake_r], [], [])
            if self._wake_r in readable:
                os.read(self._wake_r, 512)
            if conn.sock.fileno() in readable:
                conn.receive()

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
            self._setup(path)
            with self._cond:
                self._pending.remove(path)
                self._cond.notify_all()

    def _setup(self, path: str) -> None:
        """Subscribe to the root of the path's nearest existing folder (watchman watches a
        folder with no project root above it by itself); for a glob, learn its matches."""
        existing, real = _locate(_folder(path))
        with self._lock:
            root = self._root_of(real)
        if root is None:
            answer = self._conn.command("watch-project", existing)
            root = str(answer["watch"])
            if "relative_path" in answer:
                real = os.path.join(root, answer["relative_path"])
            else:
                real = root
            if root not in self.roots:
                self._subscribe(root)
        with self._lock:
            if existing != real:
                self.aliases.add((existing, real))
        if is_glob(path):
            self._query(root, real)  # what matches now is known, not changed

    def _subscribe(self, root: str) -> None:
        """No ``since``: subscribing waits for the root's crawl, and what changed before is
        found by comparing signatures."""
        self._conn.command("subscribe", root, f"devreload:{root}", {
            "expression": EXPRESSION,
            "fields": FIELDS,
            "empty_on_fresh_instance": True,
        })
        with self._lock:
            self.roots.add(root)

    def _query(self, root: str, real: str) -> list[str]:
        """The files under folder ``real`` as the server knows them now; returns the
        watched ones that changed."""
        spec: dict[str, Any] = {"expression": EXPRESSION, "fields": FIELDS}
        relative = os.path.relpath(real, root)
        if relative != os.curdir:
            spec["relative_root"] = relative
        answer = self._conn.command("query", root, spec)
        return self._apply(real, answer.get("files") or [])

    def _handle(self, pdu: dict[str, Any]) -> list[str]:
        root = pdu.get("root")
        if "subscription" not in pdu or not isinstance(root, str):
            return []
        if pdu.get("canceled"):
            return self._root_gone(root)
        # The server lost track of the root (not after a mere recrawl in 4.9): look again.
        changed = self._recheck() if pdu.get("is_fresh_instance") else []
        return changed + self._apply(root, pdu.get("files") or [])

    def _root_gone(self, root: str) -> list[str]:
        """The root folder was deleted, and watchman says no more of its files: watch each
        path again from its nearest existing folder, then report what is gone (or back)."""
        with self._lock:
            self.roots.discard(root)
            paths = sorted(self.files | self.globs)
        folders = {path: _locate(_folder(path))[1] for path in paths}
        with self._lock:
            self._pending.extend(p for p in paths if self._root_of(folders[p]) is None)
        self._setup_pending()
        return self._restat()

    def _apply(self, folder: str, files: list[dict[str, Any]]) -> list[str]:
        changed = []
        with self._lock:
            for entry in files:
                signature = ((entry["mtime_ms"], entry["size"], entry["ino"]) if entry["exists"]
                             else None)
                for path in self._names(os.path.join(folder, entry["name"])):
                    if self.known.get(path) != signature and self._wanted(path):
                        self.known[path] = signature
                        changed.append(path)
        return changed

    def _restat(self) -> list[str]:
        """The known files whose signature moved while the server could not tell."""
        with self._lock:
            known = dict(self.known)
        now = {path: _signature(path) for path in known}
        with self._lock:
            changed = [p for p, s in now.items() if s != known[p] and self._wanted(p)]
            self.known.update((p, now[p]) for p in changed)
        return changed

    def _recheck(self) -> list[str]:
        """After a new server or a recrawl: known files by stat, new glob matches by query."""
        changed = self._restat()
        with self._lock:
            globs = sorted(self.globs)
        for pattern in globs:
            _, real = _locate(glob_root(pattern))
            with self._lock:
                root = self._root_of(real)
            if root is not None:
                changed += self._query(root, real)
        return changed

    def _reconnect(self) -> bool:
        """Connect again while the server restarts; subscribe anew and catch up."""
        deadline = time.monotonic() + RECONNECT_TIMEOUT
        while not self._stopped.wait(RETRY_INTERVAL):
            try:
                conn = _Connection(self._sockname)
                with self._lock:
                    self._conn.sock.close()
                    self._conn = conn
                    if self._stopped.is_set():  # stop() shut the previous one down
                        return False
                    roots = sorted(self.roots)
                for root in roots:
                    conn.command("watch-project", root)
                    self._subscribe(root)
                changed = self._recheck()
            except _Refused:
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
                for path in sorted(self.files | self.globs):
                    delegate.add_path(path)
                delegate.start()
            except OSError as exc:
                self.log.error("%s, and the fallback failed (%s); no longer watching for "
                               "changes", reason, exc)
                return
            self._delegate = delegate
            self.log.warning("%s; watching with %s instead", reason, type(delegate).__name__)
        self._report(self._restat())

    # ---- matching (with the lock held)

    def _root_of(self, real: str) -> str | None:
        for root in self.roots:
            if real == root or real.startswith(root + os.sep):
                return root
        return None

    def _names(self, real: str) -> set[str]:
        """A file as watchman names it, and as it was asked for through linked folders."""
        names = {real}
        for asked, target in self.aliases:
            if real.startswith(target + os.sep):
                names.add(asked + real[len(target) :])
        return names

    def _wanted(self, path: str) -> bool:
        if path in self.files:
            return not self.ignore(path)
        return (any(glob_regex(g).match(path) for g in self.globs)
                and not self._glob_ignores(path))

    def _report(self, paths: list[str]) -> None:
        for path in paths:
            self.callback(path)
