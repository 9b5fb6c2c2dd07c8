"""Fixtures for end-to-end tests with real processes (helpers: tests/helpers.py).

    def test_x(project, devreload_run):
        proc = devreload_run("app_basic.py", apps=["app_basic.py", "helper.py"])
        first = proc.wait_ready()

``spawn`` starts any command; ``devreload_run`` starts ``python -m devreload run ...``. Each
child runs in a session of its own; teardown SIGTERMs it, SIGKILLs whatever is left, and fails
the test if a process outlived the command. A failing test shows each child's output.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Generator, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from helpers import Proc, Spawn, base_env, become_subreaper, copy_app
from watchmankit import Server

PROCS_KEY = pytest.StashKey[list[Proc]]()


def pytest_configure(config: pytest.Config) -> None:
    # Orphans of our children come to us, so that teardown sees (and reaps) them.
    become_subreaper()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        procs: list[Proc] = item.stash.get(PROCS_KEY, [])
        for i, proc in enumerate(procs):
            code = proc.returncode
            title = f"child {i} output: {' '.join(proc.argv)} (pid {proc.pid}, exit {code})"
            report.sections.append((title, proc.output or "<no output>"))
    return report


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An empty project folder, the cwd of the commands started in it."""
    path = tmp_path / "proj"
    path.mkdir()
    return path


@pytest.fixture
def spawn(request: pytest.FixtureRequest, project: Path) -> Iterator[Spawn]:
    """Factory: spawn(argv, apps=(), env=None, tty=False, cwd=project) -> Proc."""
    procs: list[Proc] = []
    request.node.stash[PROCS_KEY] = procs

    def start(
        argv: Sequence[str],
        apps: Iterable[str] = (),
        env: dict[str, str] | None = None,
        tty: bool = False,
        cwd: Path | None = None,
    ) -> Proc:
        copy_app(apps, project)
        proc = Proc(argv, cwd or project, env=base_env(**(env or {})), tty=tty)
        procs.append(proc)
        return proc

    yield start

    leaks = []
    for proc in procs:
        leftovers = proc.cleanup()
        if leftovers:
            leaks.append(f"{' '.join(proc.argv)}: pids {leftovers} still alive; killed")
    if leaks:
        pytest.fail("processes outlived the test:\n" + "\n".join(leaks), pytrace=False)


@pytest.fixture
def devreload_run(spawn: Spawn) -> Spawn:
    """Factory: devreload_run(*args, apps=(), env=None, tty=False) runs
    ``python -m devreload run *args`` in the project folder."""

    def start(*args: str, **kwargs: object) -> Proc:
        return spawn([sys.executable, "-m", "devreload", "run", *args], **kwargs)

    return start


@pytest.fixture
def pyenv(project: Path) -> dict[str, str]:
    """Environment that lets the project folder's modules be imported by the monitor too."""
    return {"PYTHONPATH": os.pathsep.join([str(project), os.environ.get("PYTHONPATH", "")])}


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
#: The browser the browser tests drive, when set; else playwright's own, else the system's.
CHROMIUM_ENV = "CHROMIUM"
SYSTEM_CHROMIUMS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium(bundled: str) -> str | None:
    """The chromium to launch: ``$CHROMIUM``, playwright's own (``playwright install
    chromium``), or one on the PATH; None when there is none."""
    chosen = os.environ.get(CHROMIUM_ENV)
    if chosen:
        return chosen
    if bundled and os.path.exists(bundled):
        return bundled
    return next(filter(None, map(shutil.which, SYSTEM_CHROMIUMS)), None)


@pytest.fixture
def browser_page() -> Iterator[Any]:
    """A Playwright page in a real headless chromium; skips when there is none."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright Python package is not installed (pip install playwright)")
    with sync_playwright() as playwright:
        chromium = find_chromium(playwright.chromium.executable_path)
        if chromium is None:
            pytest.skip(f"no chromium: set {CHROMIUM_ENV}, run `playwright install chromium` "
                        "or install the system's (apt-get install chromium)")
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            yield browser.new_context().new_page()
        finally:
            browser.close()


@pytest.fixture
def monitor_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """The environment the monitor runs in: a private watchman server for watchman
    (parametrized indirectly with the monitor's name)."""
    if request.param != "watchman":
        yield {}
        return
    if shutil.which("watchman") is None:
        pytest.skip("watchman is not installed")
    folder = Path(tempfile.mkdtemp(prefix="wm-", dir="/tmp"))
    server = Server(folder)
    try:
        server.start()
        yield {"WATCHMAN_SOCK": server.sockname}
    finally:
        server.kill()
        shutil.rmtree(folder, ignore_errors=True)

