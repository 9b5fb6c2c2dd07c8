"""Helpers for end-to-end tests of the web layer: start ``devreload serve``, poll URLs."""

from __future__ import annotations

import http.client
import re
import shutil
import signal
import sys
import urllib.request
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
