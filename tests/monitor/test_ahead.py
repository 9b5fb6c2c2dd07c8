"""The worker template started ahead by ``python -m devreload``: for which commands, and
when the launcher takes it or ends it. Real template processes; the launcher's side runs
in every e2e test that serves with --reload or runs a program."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import pid_alive, wait_until

from devreload.monitor import ahead
from devreload.monitor.ahead import (
    APP_ENTRY,
    INI_ENTRY,
    LAUNCHER_ENV,
    RUN_ENTRY,
    end_ahead,
    take_ahead,
)
from devreload.serving.importapp import WORKER_ENTRY as APP_WORKER_ENTRY
from devreload.serving.paste import WORKER_ENTRY as INI_WORKER_ENTRY
from devreload.wire.channel import Channel
from devreload.wire.contract import RUN_PROGRAM
from devreload.wire.messages import Fork, Forked


@pytest.fixture(autouse=True)
def nothing_ahead() -> Iterator[None]:
    yield
    end_ahead()


@pytest.mark.parametrize(("argv", "preloads"), [
    (["serve", "development.ini", "--reload"], (INI_ENTRY,)),
    (["serve", "--reload", "-v", "development.ini", "port=9000"], (INI_ENTRY,)),
    (["serve", "app:app", "--reload", "--port", "8000"], (APP_ENTRY,)),
    (["serve", "development.ini", "--reload", "--no-preload"], ()),
    (["run", "app.py"], (RUN_ENTRY,)),
    (["run", "-m", "worker", "--no-preload"], (RUN_ENTRY,)),  # the program's option
    (["run", "--no-preload", "app.py"], ()),
    (["serve", "development.ini"], None),  # no reload: no workers at all
    (["up"], None),  # each process's output is piped: its launcher starts its own
    (["--version"], None),
    ([], None),
])
def test_which_commands_start_a_template_ahead(
    argv: list[str], preloads: tuple[str, ...] | None
) -> None:
    assert ahead._preloads(argv) == preloads


def test_the_guessed_entries_are_the_serving_layers_own() -> None:
    assert INI_WORKER_ENTRY.partition(":")[0] == INI_ENTRY
    assert APP_WORKER_ENTRY.partition(":")[0] == APP_ENTRY
    assert RUN_PROGRAM.partition(":")[0] == RUN_ENTRY


def test_a_template_that_fits_is_taken_and_forks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(LAUNCHER_ENV, raising=False)
    ahead.start_ahead(["run", "app.py"])
    taken = take_ahead((RUN_ENTRY,), None)
    assert taken is not None and pid_alive(taken.pid)
    assert take_ahead((RUN_ENTRY,), None) is None, "taken once"
    ctl = Channel(taken.line)
    ctl.sock.settimeout(30)
    ours, theirs = Channel.pair()
    with theirs:
        ctl.send(Fork(spare=True), fds=[theirs.fileno()])
    forked = ctl.recv()
    assert isinstance(forked, Forked) and forked.pid > 0
    ours.close()  # the spare ends when its line closes
    taken.end()
    assert not pid_alive(taken.pid)


@pytest.mark.parametrize("change", ["environment", "folder", "modules", "output"])
def test_a_template_started_for_something_else_is_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """A .env loaded since, a chdir, another entry, a piped output: the launcher starts
    its own, and the one started ahead leaves nothing behind."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(LAUNCHER_ENV, raising=False)
    ahead.start_ahead(["serve", "development.ini", "--reload"])
    started = ahead._ahead[-1].pid
    modules, output = (INI_ENTRY,), None
    if change == "environment":
        monkeypatch.setenv("FROM_DOTENV", "1")
    elif change == "folder":
        (tmp_path / "sub").mkdir()
        monkeypatch.chdir(tmp_path / "sub")
    elif change == "modules":
        modules = (APP_ENTRY,)
    else:
        output = 1
    assert take_ahead(modules, output) is None
    assert not pid_alive(started)


def test_none_when_workers_are_spawned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LAUNCHER_ENV, "spawn")
    ahead.start_ahead(["run", "app.py"])
    assert ahead._ahead == []


def test_the_command_ending_first_ends_it(tmp_path: Path) -> None:
    """``devreload serve missing.ini --reload`` exits at once: its template goes with it."""
    script = tmp_path / "early_exit.py"
    script.write_text(
        "import sys\n"
        "from devreload.monitor import ahead\n"
        "ahead.start_ahead(['run', 'app.py'])\n"
        "print(ahead._ahead[-1].pid, flush=True)\n"
        "sys.exit(2)\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=60, env={k: v for k, v in os.environ.items()
                                           if k != LAUNCHER_ENV})
    assert done.returncode == 2, done.stderr
    pid = int(done.stdout)
    wait_until(lambda: not pid_alive(pid), timeout=10)
