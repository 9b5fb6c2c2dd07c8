"""A private watchman server for the tests of the watchman monitor: its own socket, state
and log in a folder of its own, and the marks that tell what a test started."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

from helpers import pid_alive, wait_until

WATCHMAN = shutil.which("watchman")


MARK = "WATCHMAN_TEST_MARK"


def accepts(sockname: str) -> bool:
    """Whether a server listens on ``sockname``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(sockname)
        except OSError:
            return False
    return True


def marked_processes(mark: str) -> list[int]:
    """The live processes that inherited ``MARK`` = ``mark`` from this test: its servers, and
    any server spawned by mistake (it starts from our environment)."""
    needle = f"{MARK}={mark}".encode()
    found = []
    for name in os.listdir("/proc"):
        try:
            environ = Path(f"/proc/{name}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if name.isdigit() and needle in environ and pid_alive(int(name)):
            found.append(int(name))
    return found


class Server:
    """A watchman server in the foreground, with its socket, state and log in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.sockname = str(folder / "sock")
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, config: dict[str, Any] | None = None) -> None:
        """Starts the server; ``config`` stands for /etc/watchman.json."""
        assert WATCHMAN is not None
        env = dict(os.environ, TMPDIR=str(self.folder))  # it makes $TMPDIR/$USER-state anyway
        if config is not None:
            env["WATCHMAN_CONFIG_FILE"] = str(self.folder / "watchman.json")
            (self.folder / "watchman.json").write_text(json.dumps(config))
        proc = subprocess.Popen(
            [WATCHMAN, "--foreground", f"--sockname={self.sockname}",
             f"--statefile={self.folder / 'state'}", f"--logfile={self.folder / 'log'}",
             f"--pidfile={self.folder / 'pid'}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, env=env,
        )
        self.procs.append(proc)
        wait_until(lambda: proc.poll() is not None or accepts(self.sockname),
                   message="watchman did not accept connections")
        assert proc.poll() is None, (self.folder / "log").read_text()

    def kill(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(5)

    def command(self, *args: Any) -> dict[str, Any]:
        """One command on a connection of its own, as another client would send it."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(5)
            conn.connect(self.sockname)
            conn.sendall(json.dumps(list(args)).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = conn.recv(65536)
                assert chunk, "watchman closed the connection"
                data += chunk
        answer: dict[str, Any] = json.loads(data)
        return answer
