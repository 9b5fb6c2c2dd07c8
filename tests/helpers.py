"""Helpers shared by the unit tests (tests/) and the real-process tests (tests/e2e/): wait on a
condition, save a file like an editor, start a command and read its output, clean up its tree.

Importable as ``helpers`` everywhere: pyproject.toml puts tests/ on sys.path (pytest
``pythonpath``). Every wait polls a condition against a deadline; nothing here sleeps blindly.
Every child runs in a session of its own so that teardown can kill the whole tree, and the e2e
conftest makes the pytest process a child subreaper (Linux) so that orphans (a worker whose
monitor died) are re-parented to us, where teardown can find them, instead of to init.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import pytest

from devreload import platforms
from devreload.platforms import PORTABLE_ENV

#: How this run works: Linux's own paths, or the portable ones (``DEVRELOAD_PORTABLE=1``).
PLATFORM = platforms.current()
#: For tests of the warm template: only Linux forks workers.
needs_fork = pytest.mark.skipif(
    not PLATFORM.forks, reason="workers are forked from a template only on Linux")
#: For tests of children that leave their worker's session: only a subreaper keeps them.
needs_subreaper = pytest.mark.skipif(
    not PLATFORM.adopts_orphans,
    reason="a child that leaves its worker's session (setsid, a daemon) is kept in reach "
           "only by Linux's subreaper; see the README's table of guarantees")
#: Linux lists processes in /proc; elsewhere (macOS) the harness asks ``ps``.
HAS_PROC = os.path.isdir("/proc/self")
#: For tests that read what only Linux's /proc shows (a thread count, a socket's inode).
needs_proc = pytest.mark.skipif(not HAS_PROC, reason="reads /proc, which only Linux has")
#: For tests of inotify's own knowledge (a close after a write).
needs_inotify = pytest.mark.skipif(
    PLATFORM.file_events != "inotify",
    reason="only inotify tells that a file written in place was closed")

T = TypeVar("T")
P = TypeVar("P", bound="Proc")

APPS = Path(__file__).resolve().parent / "apps"
DEFAULT_TIMEOUT = 10.0
# A READY line as printed by the fixture apps; the trailing newline guards against matching a
# line that is still being written.
READY_RE = r"^READY pid=(?P<pid>\d+) token=(?P<token>\S*)(?P<rest>.*)$"

# Shim run in the new session: make the pty slave (fd 0) our controlling terminal, then exec.
_CTTY_SHIM = (
    "import fcntl, os, sys, termios; "
    "fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execvp(sys.argv[1], sys.argv[1:])"
)


# --------------------------------------------------------------------------- small helpers


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = 0.01,
    message: str = "",
) -> T:
    """Poll ``predicate`` until it returns something truthy; return it, or raise TimeoutError
    (with ``message``, if given) once ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            shown = repr(predicate)
            shown = shown if len(shown) <= 300 else shown[:300] + "..."
            what = message or f"condition not met: {shown}"
            raise TimeoutError(f"{what} (within {timeout} s)")
        time.sleep(interval)


Stat = tuple[str, int, int]


def _ps_table() -> dict[int, Stat]:
    """pid -> (state, ppid, session id) of every process, from ``ps``."""
    out = subprocess.run(["ps", "-A", "-o", "pid=,ppid=,sess=,stat="], capture_output=True,
                         text=True, check=True).stdout
    table: dict[int, Stat] = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 4:
            sess = fields[2]
            table[int(fields[0])] = (fields[3][0], int(fields[1]),
                                     int(sess, 16) if not sess.isdigit() else int(sess))
    return table


def _table() -> dict[int, Stat]:
    if not HAS_PROC:
        return _ps_table()
    table: dict[int, Stat] = {}
    for pid in all_pids():
        stat = _proc_stat(pid)
        if stat is not None:
            table[pid] = stat
    return table


def _proc_stat(pid: int) -> Stat | None:
    """(state, ppid, session id) of ``pid``, or None when it is gone."""
    if not HAS_PROC:
        return _ps_table().get(pid)
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name is in parentheses and may contain spaces: split after the last ")".
    fields = data[data.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[3])


def pid_alive(pid: int) -> bool:
    """True if ``pid`` runs; a zombie (exited, not yet reaped) counts as gone."""
    stat = _proc_stat(pid)
    if stat is not None:
        return stat[0] not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pids_alive(pids: Iterable[int]) -> list[int]:
    """The subset of ``pids`` still running (zombies count as gone)."""
    return [pid for pid in pids if pid_alive(pid)]


def all_pids() -> list[int]:
    if not HAS_PROC:
        return list(_ps_table())
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def inotify_instances(pid: int | str = "self") -> int:
    """How many inotify instances the process ``pid`` holds (Linux)."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            count += os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:inotify"
        except OSError:
            continue
    return count


def descendants_of(pid: int) -> list[int]:
    """Every live process below ``pid`` in the process tree."""
    table: dict[int, list[int]] = {}
    for candidate, stat in _table().items():
        if stat[0] not in ("Z", "X"):
            table.setdefault(stat[1], []).append(candidate)
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in table.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def in_session(sid: int) -> list[int]:
    """Every live process whose session id is ``sid``."""
    return [candidate for candidate, stat in _table().items()
            if stat[2] == sid and stat[0] not in ("Z", "X")]


def reap_orphans() -> None:
    """Reap zombie orphans re-parented to us (we are a subreaper); leave Popen's own children."""
    me = os.getpid()
    for candidate, stat in _table().items():
        if stat[1] == me and stat[0] == "Z" and candidate not in _OWNED:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(candidate, os.WNOHANG)


_OWNED: set[int] = set()  # pids of Popen objects we started: their status belongs to Popen


def become_subreaper() -> bool:
    """Make orphans of our descendants come to us instead of init (Linux PR_SET_CHILD_SUBREAPER)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(36, 1, 0, 0, 0) == 0)  # 36 = PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def save_like_editor(path: str | os.PathLike[str], text: str, mode: str = "rename") -> None:
    """Write ``text`` to ``path`` the way an editor saves.

    inplace:  open the file, truncate, write (nano, VS Code)
    rename:   write a temp file in the same folder, then os.replace() it over the file (vim,
              JetBrains "safe write"); the file gets a new inode
    recreate: delete the file, then create it anew
    vim:      vim's own way: probe the folder with a file "4913", rename the file to a
              backup "name~", write it anew, set its mode back, remove the backup
    """
    path = Path(path)
    if mode == "inplace":
        with open(path, "w") as f:
            f.write(text)
    elif mode == "rename":
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    elif mode == "vim":
        probe = path.parent / "4913"
        probe.touch()
        probe.unlink()
        backup = path.with_name(path.name + "~")
        mode_bits = path.stat().st_mode
        os.replace(path, backup)
        with open(path, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(path, mode_bits)
        backup.unlink()
    elif mode == "recreate":
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        with open(path, "w") as f:
            f.write(text)
    else:
        raise ValueError(f"unknown save mode {mode!r}")


def write_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Create a file so that a reader never sees it half-written."""
    save_like_editor(path, text, mode="rename")


def copy_app(names: Iterable[str], dest: Path) -> None:
    """Copy fixture apps (files or packages) from tests/apps into ``dest``."""
    for name in names:
        src = APPS / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)


# --------------------------------------------------------------------------- the process


@dataclass
class Ready:
    """One READY line: a worker (or program) that finished starting."""

    pid: int
    token: str
    rest: str
    line_no: int


class Proc:
    """A real child process whose stdout+stderr a thread collects into a line buffer."""

    def __init__(
        self,
        argv: Sequence[str],
        cwd: str | os.PathLike[str],
        env: dict[str, str] | None = None,
        tty: bool = False,
        pass_fds: Sequence[int] = (),
    ) -> None:
        """Start ``argv`` in ``cwd``; ``tty``: on a pseudo-terminal of its own (then write()
        types into it); ``pass_fds``: file descriptors the child inherits."""
        self.argv = list(argv)
        self.cwd = str(cwd)
        self.tty = tty
        self._cond = threading.Condition()
        self._buf = ""  # everything read, \r\n normalised to \n
        self._eof = False
        self._cursor = 0  # line index: wait_for() searches from here
        self._text_cursor = 0  # char offset: wait_for_text() searches from here
        self.known_pids: set[int] = set()
        self.master_fd: int | None = None
        self.started = time.monotonic()
        if tty:
            master, slave = os.openpty()
            self.master_fd = master
            self.popen = subprocess.Popen(
                [sys.executable, "-c", _CTTY_SHIM, *self.argv],
                cwd=self.cwd,
                env=env,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                start_new_session=True,
                close_fds=True,
                pass_fds=pass_fds,
            )
            os.close(slave)
            target = self._read_pty
        else:
            self.popen = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                pass_fds=pass_fds,
            )
            target = self._read_pipe
        self.pid = self.popen.pid
        _OWNED.add(self.pid)
        self.known_pids.add(self.pid)
        self._reader = threading.Thread(target=target, name=f"reader-{self.pid}", daemon=True)
        self._reader.start()
        self._stop_sampling = threading.Event()
        self._sampler = threading.Thread(
            target=self._sample, name=f"sampler-{self.pid}", daemon=True
        )
        self._sampler.start()

    def _sample(self) -> None:
        """Remember every descendant seen while the command runs, so that teardown finds a
        grandchild even after its parent died and it left the tree (a new session, re-parented)."""
        while not self._stop_sampling.wait(0.05) and self.popen.poll() is None:
            found = descendants_of(self.pid)
            with self._cond:
                self.known_pids.update(found)

    # ---- reading

    def _feed(self, data: bytes) -> None:
        text = data.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
        with self._cond:
            self._buf += text
            for m in re.finditer(r"\bpid=(\d+)", text):
                self.known_pids.add(int(m.group(1)))
            self._cond.notify_all()

    def _read_pipe(self) -> None:
        assert self.popen.stdout is not None
        fd = self.popen.stdout.fileno()
        while True:
            data = os.read(fd, 65536)
            if not data:
                break
            self._feed(data)
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def _read_pty(self) -> None:
        assert self.master_fd is not None
        while True:
            try:
                data = os.read(self.master_fd, 65536)
            except OSError:  # EIO: every slave fd closed
                break
            if not data:
                break
            self._feed(data)
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    @property
    def output(self) -> str:
        with self._cond:
            return self._buf

    @property
    def lines(self) -> list[str]:
        """Complete lines read so far (a partial last line is left out)."""
        with self._cond:
            return self._buf.split("\n")[:-1]

    def mark(self) -> int:
        """Current line count; pass it as ``start`` to search only lines after now."""
        return len(self.lines)

    def wait_for(
        self, regex: str, timeout: float = DEFAULT_TIMEOUT, start: int | None = None
    ) -> re.Match[str]:
        """Wait for the next complete line matching ``regex`` and return the match.

        Without ``start`` the search begins at the cursor (just after the last line found),
        and the cursor moves past the match; with ``start`` (a line index, see mark()) it
        begins there and the cursor stays where it was."""
        pattern = re.compile(regex)
        deadline = time.monotonic() + timeout
        index = self._cursor if start is None else start
        with self._cond:
            while True:
                lines = self._buf.split("\n")[:-1]
                for i in range(index, len(lines)):
                    m = pattern.search(lines[i])
                    if m:
                        if start is None:
                            self._cursor = i + 1
                        return m
                index = max(index, len(lines))
                remaining = deadline - time.monotonic()
                if self._eof:
                    raise AssertionError(
                        f"process ended (code {self.popen.poll()}) before a line matched "
                        f"{regex!r}; output:\n{self._buf}"
                    )
                if remaining <= 0:
                    raise AssertionError(
                        f"no line matched {regex!r} within {timeout} s; output:\n{self._buf}"
                    )
                self._cond.wait(remaining)

    def wait_for_text(self, regex: str, timeout: float = DEFAULT_TIMEOUT) -> re.Match[str]:
        """Like wait_for() but over the raw text, partial lines included (prompts: "(Pdb) ")."""
        pattern = re.compile(regex)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                m = pattern.search(self._buf, self._text_cursor)
                if m:
                    self._text_cursor = m.end()
                    self._cursor = self._buf.count("\n", 0, m.end())
                    return m
                remaining = deadline - time.monotonic()
                if self._eof:
                    raise AssertionError(
                        f"process ended before {regex!r} appeared; output:\n{self._buf}"
                    )
                if remaining <= 0:
                    raise AssertionError(
                        f"{regex!r} did not appear within {timeout} s; output:\n{self._buf}"
                    )
                self._cond.wait(remaining)

    def count(self, regex: str, start: int = 0) -> int:
        """How many complete lines (from line ``start`` on) match ``regex``."""
        pattern = re.compile(regex)
        return sum(1 for line in self.lines[start:] if pattern.search(line))

    def readies(self) -> list[Ready]:
        """Every READY line so far."""
        pattern = re.compile(READY_RE)
        out = []
        for i, line in enumerate(self.lines):
            m = pattern.search(line)
            if m:
                out.append(Ready(int(m["pid"]), m["token"], m["rest"], i))
        return out

    def wait_ready(self, timeout: float = DEFAULT_TIMEOUT) -> Ready:
        """Wait for the next READY line (a worker that finished starting)."""
        m = self.wait_for(READY_RE, timeout)
        return Ready(int(m["pid"]), m["token"], m["rest"], self._cursor - 1)

    # ---- control

    def signal(self, sig: int) -> None:
        self.popen.send_signal(sig)

    def write(self, data: str | bytes) -> None:
        """Type into the terminal (tty mode only)."""
        assert self.master_fd is not None, "write() needs tty=True"
        raw = data.encode() if isinstance(data, str) else data
        while raw:
            _, writable, _ = select.select([], [self.master_fd], [], DEFAULT_TIMEOUT)
            assert writable, "terminal not writable"
            raw = raw[os.write(self.master_fd, raw) :]

    def wait_exit(self, timeout: float = DEFAULT_TIMEOUT) -> int:
        """Wait for the process to exit; return its code (negative: killed by that signal).
        One still running is aborted, so that its stacks (faulthandler) show why."""
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.send_signal(signal.SIGABRT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(3)
            self._reader.join(2.0)
            raise AssertionError(
                f"process {self.pid} still running after {timeout} s; output:\n{self.output}"
            ) from None
        # Let the reader drain what the process wrote just before it ended.
        self._reader.join(2.0)
        return code

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def tree(self) -> set[int]:
        """Every live process we can attribute to this command: its session, its descendants,
        and any pid it printed (``pid=N``)."""
        pids = set(in_session(self.pid)) | set(descendants_of(self.pid))
        pids |= set(pids_alive(self.known_pids))
        for pid in list(pids):
            pids |= set(descendants_of(pid))
        pids.discard(os.getpid())
        return set(pids_alive(pids))

    def cleanup(self, grace: float = 5.0) -> list[int]:
        """Stop everything this command started. Returns the pids that were still alive after
        SIGTERM and ``grace`` seconds (then SIGKILLed): a leak if the command had already ended,
        or a process that outlived its monitor's clean shutdown."""
        self._stop_sampling.set()
        self._sampler.join(2.0)
        leftovers: list[int] = []
        pids = self.tree()
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(grace)
            with contextlib.suppress(TimeoutError):
                wait_until(lambda: not pids_alive(pids | self.tree()), timeout=grace)
            leftovers = sorted(pids_alive(pids | self.tree()))
        else:
            # The command ended by itself: whatever it left running is a leak. What it
            # ended just before its exit (a spare, the template, the janitor) may still be
            # on its way out for a moment.
            with contextlib.suppress(TimeoutError):
                wait_until(lambda: not pids_alive(pids), timeout=grace)
            leftovers = sorted(pids_alive(pids))
        for pid in pids_alive(pids | self.tree()):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)
        with contextlib.suppress(TimeoutError):
            wait_until(lambda: not pids_alive(pids), timeout=5)
        reap_orphans()
        _OWNED.discard(self.pid)
        if self.master_fd is not None:
            self._reader.join(2.0)
            with contextlib.suppress(OSError):
                os.close(self.master_fd)
            self.master_fd = None
        if self.popen.stdout is not None:
            self._reader.join(2.0)
            self.popen.stdout.close()
        return leftovers

    # ---- as a context manager (tests that start a child without the e2e ``spawn`` fixture)

    def __enter__(self: P) -> P:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the child and its tree, like the e2e ``spawn`` fixture's teardown: if the block
        failed, print the child's output first (pytest shows it under "Captured stdout call");
        if it passed, fail when a process outlived it."""
        if exc is not None:
            print(
                f"child output: {' '.join(self.argv)} (pid {self.pid}, exit {self.returncode})\n"
                f"{self.output or '<no output>'}"
            )
        leftovers = self.cleanup()
        if leftovers and exc is None:
            raise AssertionError(
                f"processes outlived the test: {' '.join(self.argv)}: pids {leftovers} still "
                f"alive; killed\noutput:\n{self.output}"
            )


#: Every file monitor, for the end-to-end tests that run once under each (with the e2e
#: ``monitor_env`` fixture).
MONITORS = ["inotify", "watchdog", "watchman", "polling"]

#: The e2e ``spawn`` and ``devreload_run`` fixtures: start a command, get its Proc.
Spawn = Callable[..., Proc]


def base_env(**extra: str) -> dict[str, str]:
    """The environment for a child: ours without DEVRELOAD_* leaking in, plus ``extra``.

    PYTHONUNBUFFERED is dropped: with it, print() makes two write()s (text, then newline) and
    the monitor's log lines land in the middle of the app's lines on the shared pipe.
    PYTHONDONTWRITEBYTECODE too: a developer's Python caches bytecode (and a child that
    compiles every module anew costs the suite a minute of CPU).
    PYTHONFAULTHANDLER is set: a child that hangs is sent SIGABRT, and its threads' stacks
    end up in the output the failing test prints.
    """
    # DEVRELOAD_WORKER=spawn and DEVRELOAD_PORTABLE=1 pass through: the suite runs that way.
    keep = {"DEVRELOAD_WORKER", PORTABLE_ENV}
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVRELOAD_") or k in keep}
    env.pop("PYTHONBREAKPOINT", None)
    env.pop("PYTHONUNBUFFERED", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONFAULTHANDLER"] = "1"
    env.update(extra)
    return env


class Recorder:
    """A file monitor's change callback: remembers every reported path, thread-safely."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.paths: list[str] = []

    def __call__(self, path: str, final: bool = False) -> None:
        with self._lock:
            self.paths.append(path)

    def seen(self, path: Path | str) -> bool:
        with self._lock:
            return str(path) in self.paths

    def wait(self, path: Path | str) -> None:
        wait_until(lambda: self.seen(path))

    def clear(self) -> None:
        with self._lock:
            self.paths.clear()

    def take(self) -> set[str]:
        """The paths reported so far, forgotten here."""
        with self._lock:
            taken = set(self.paths)
            self.paths.clear()
        return taken


# --------------------------------------------------------------------------- restarts


def token_src(token: str) -> str:
    return f'TOKEN = "{token}"\n'


def gone(pids: list[int], timeout: float = 5.0) -> None:
    """Assert every pid ends within ``timeout``."""
    try:
        wait_until(lambda: not pids_alive(pids), timeout=timeout)
    except TimeoutError:
        raise AssertionError(f"still alive after {timeout} s: {pids_alive(pids)}") from None


def restart_with(proc: Proc, path: Path, token: str, mode: str = "inplace") -> int:
    """Save ``TOKEN = token`` into ``path`` and wait for the worker that sees it; return its pid."""
    before = proc.readies()[-1]
    save_like_editor(path, token_src(token), mode)
    ready = proc.wait_ready()
    assert ready.token == token, f"restarted with {ready.token!r}, expected {token!r}"
    assert ready.pid != before.pid
    gone([before.pid])
    return ready.pid
