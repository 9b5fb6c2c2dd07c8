"""Helpers for end-to-end tests of the web layer: start ``devreload serve``, poll URLs."""

from __future__ import annotations

import contextlib
import http.client
import re
import shutil
import signal
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from helpers import Proc, save_like_editor, wait_until
from helpers import Spawn as Spawn  # re-exported: the web tests import it from here

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SERVING_RE = r"serving on (http://\S+)"


def devreload_serve(spawn: Spawn, *args: str, **kwargs: object) -> Proc:
    return spawn([sys.executable, "-m", "devreload", "serve", *args], **kwargs)


def copy_example(name: str, project: Path) -> None:
    shutil.copytree(EXAMPLES / name, project, dirs_exist_ok=True)


def get(url: str, timeout: float = 10.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read().decode()  # type: ignore[no-any-return]


def wait_body(url: str, pattern: str, timeout: float = 15.0) -> str:
    """Poll until the answer matches ``pattern`` (a restart may refuse nothing, but a
    foreign server rebinding may); returns the matching body."""

    def matching() -> str | None:
        try:
            body = get(url, timeout=5)
        except (OSError, http.client.HTTPException):
            return None
        return body if re.search(pattern, body) else None

    try:
        return str(wait_until(matching, timeout=timeout, interval=0.02))
    except TimeoutError:
        raise AssertionError(f"{url} never answered {pattern!r}") from None


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    save_like_editor(path, text.replace(old, new))


def stop(proc: Proc) -> int:
    proc.signal(signal.SIGTERM)
    return proc.wait_exit()


@dataclass
class Answers:
    """What a client asking again and again got: the bodies of its 200s, every other
    outcome, in order."""

    bodies: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def seen(self, pattern: str) -> bool:
        """Whether one of the last few bodies matches ``pattern``."""
        return any(re.search(pattern, body) for body in self.bodies[-5:])


@contextlib.contextmanager
def asking(url: str, pause: float = 0.0) -> Iterator[Answers]:
    """GET ``url`` from a thread, a new connection each time, until the block ends."""
    host, port = url.removeprefix("http://").split(":")
    answers = Answers()
    done = threading.Event()

    def client() -> None:
        while not done.is_set():
            conn = http.client.HTTPConnection(host, int(port), timeout=10)
            try:
                conn.request("GET", "/")
                response = conn.getresponse()
                body = response.read().decode()
                if response.status == 200:
                    answers.bodies.append(body)
                else:
                    answers.failures.append(f"HTTP {response.status}")
            except (OSError, http.client.HTTPException) as exc:
                answers.failures.append(repr(exc))
            finally:
                conn.close()
            time.sleep(pause)

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    try:
        yield answers
    finally:
        done.set()
        thread.join(15)
