"""Talking to watchman over its unix socket: finding the server, asking whether a
project wants it, and one connection (in BSER, see :mod:`devreload.filemon.bser`) that
tells a command's answer from the subscription updates that arrive between them. The
stdlib only (pywatchman is an sdist with a C extension).
"""

from __future__ import annotations

import collections
import json
import os
import re
import shutil
import socket
import subprocess
from typing import Any

from devreload.filemon import bser
from devreload.sockets import UNIX

#: How long a running server may take to list what it watches, when devreload asks
#: whether to choose it: a server that hangs is not chosen.
#: Spawning a server takes ~30 ms; only a broken install takes longer.
SOCKNAME_TIMEOUT = 5.0
#: watchman's own limit for the crawl of a new root is 60 s; an answer later than this
#: comes from a server that hangs.
COMMAND_TIMEOUT = 90.0


class WatchmanUnavailable(OSError):
    """watchman cannot serve (not installed, no server, a refused watch); ``str()`` is one line.

    An OSError, so that the caller's fallback for monitors that cannot start applies."""


class Refused(WatchmanUnavailable):
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


def watchman_asked(cwd: str) -> str | None:
    """Why the project asks for watchman, or None. Only a ``.watchmanconfig`` asks: a
    running server may watch the folder because another tool wanted it, and watchman
    holds every event until the whole tree is quiet, so it is never chosen unasked."""
    if not os.environ.get("WATCHMAN_SOCK") and shutil.which("watchman") is None:
        return None
    folder = os.path.abspath(cwd)
    while True:
        if os.path.isfile(os.path.join(folder, ".watchmanconfig")):
            return "the project has a .watchmanconfig"
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


class Connection:
    """One socket to the server: BSER both ways. Subscription updates are put aside as
    they come, so that a command's answer is never taken for one, nor one lost."""

    def __init__(self, sockname: str, timeout: float = COMMAND_TIMEOUT) -> None:
        if UNIX is None:
            raise WatchmanUnavailable("watchman's named pipe on Windows is not supported yet")
        self.sock = socket.socket(UNIX, socket.SOCK_STREAM)
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
        self.sock.sendall(bser.encode(list(args)))
        while not self.answers:
            self.receive()
        answer = self.answers.popleft()
        if "error" in answer:
            what = " ".join(str(a) for a in args[:2])
            raise Refused(f"watchman refused `{what}`: " + " ".join(str(answer["error"]).split()))
        return answer

    def receive(self) -> None:
        """Read what the server sent (blocking until something comes) and sort it."""
        data = self.sock.recv(1 << 16)
        if not data:
            raise WatchmanUnavailable("the server closed the connection")
        self.buffer += data
        while True:
            try:
                size = bser.pdu_size(self.buffer)
                if size is None or len(self.buffer) < size:
                    return
                pdu = bser.decode(self.buffer[:size])
            except bser.BserError as exc:
                raise WatchmanUnavailable(f"the server sent something that is not BSER ({exc})") \
                    from exc
            del self.buffer[:size]
            if not isinstance(pdu, dict):
                raise WatchmanUnavailable(f"the server sent {type(pdu).__name__}, not an object")
            unilateral = pdu.get("unilateral") or "subscription" in pdu
            (self.unilateral if unilateral else self.answers).append(pdu)
