"""A starting worker's bytecode caches are written once the app answers."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import threading
from collections.abc import Iterator
from importlib.machinery import SourceFileLoader
from pathlib import Path

import pytest
from helpers import wait_until

from devreload.worker.bytecode import DeferredWrites

#: The steps of the import system a hold takes the place of, as the import system has them
#: (the test session holds nothing: see conftest).
STEPS = {name: getattr(SourceFileLoader, name) for name in ("path_stats", "_cache_bytecode")}


@pytest.fixture(autouse=True)
def _import_system_restored() -> Iterator[None]:
    """A test that fails while holding must not leave the loader changed for the rest."""
    yield
    for name, step in STEPS.items():
        setattr(SourceFileLoader, name, step)


def _import_system_is_itself() -> bool:
    return all(getattr(SourceFileLoader, name) is step for name, step in STEPS.items())


def test_bytecode_is_held_until_flushed_then_written_as_the_import_system_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "dr_held_one.py").write_text("VALUE = 1\n")
    (tmp_path / "dr_held_two.py").write_text("VALUE = 2\n")
    cached = [Path(importlib.util.cache_from_source(str(tmp_path / f"dr_held_{n}.py")))
              for n in ("one", "two")]
    writes = DeferredWrites()
    try:
        assert importlib.import_module("dr_held_one").VALUE == 1
        assert not cached[0].exists(), "written while the app starts"
        writes.flush()
        assert _import_system_is_itself()
        wait_until(cached[0].exists, timeout=5, message="the held bytecode was never written")
        assert importlib.import_module("dr_held_two").VALUE == 2
        assert cached[1].exists(), "an import after the flush writes at once"
    finally:
        for name in ("dr_held_one", "dr_held_two"):
            sys.modules.pop(name, None)
    # What was written is what the import system reads back as valid.
    loader = SourceFileLoader("dr_held_one", str(tmp_path / "dr_held_one.py"))
    assert loader.get_code("dr_held_one") is not None
    data = cached[0].read_bytes()
    assert data[:4] == importlib.util.MAGIC_NUMBER


def test_a_held_cache_gets_the_mode_the_import_system_gives_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The source's permissions, writable by its owner (the stat for it is made when the
    cache is written, not while the app imports)."""
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    monkeypatch.syspath_prepend(str(tmp_path))
    source = tmp_path / "dr_mode.py"
    source.write_text("VALUE = 1\n")
    source.chmod(0o440)
    cached = Path(importlib.util.cache_from_source(str(source)))
    writes = DeferredWrites()
    try:
        importlib.import_module("dr_mode")
    finally:
        sys.modules.pop("dr_mode", None)
    writes.flush(wait=True)
    assert cached.stat().st_mode & 0o777 == 0o640


def test_a_cache_held_while_its_source_changed_is_never_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Saved again in the same second with the same size (here one nanosecond later), the
    source would pass the import system's check of the old cache: the held one is
    dropped, not written."""
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    monkeypatch.syspath_prepend(str(tmp_path))
    source = tmp_path / "dr_changed.py"
    source.write_text('VALUE = "a"\n')
    cached = Path(importlib.util.cache_from_source(str(source)))
    writes = DeferredWrites()
    try:
        assert importlib.import_module("dr_changed").VALUE == "a"
        stat = source.stat()
        source.unlink()  # as git checkout does it
        source.write_text('VALUE = "b"\n')  # same size, and the same second for Python
        second, fraction = divmod(stat.st_mtime_ns, 1_000_000_000)
        later_same_second = second * 1_000_000_000 + (fraction + 1) % 1_000_000_000
        os.utime(source, ns=(stat.st_atime_ns, later_same_second))
        writes.flush()
        marker = tmp_path / "dr_marker.py"
        marker.write_text("X = 1\n")
        assert importlib.import_module("dr_marker").X == 1  # written at once, after the flush
        wait_until(lambda: not any(t.name == "devreload-bytecode"
                                   for t in threading.enumerate()), timeout=5)
        assert not cached.exists()
    finally:
        for name in ("dr_changed", "dr_marker"):
            sys.modules.pop(name, None)


def test_held_caches_wait_for_the_first_response(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A big app's thousands of writes would share the first response's time."""
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "dr_after_one.py").write_text("VALUE = 1\n")
    cached = Path(importlib.util.cache_from_source(str(tmp_path / "dr_after_one.py")))
    answered = threading.Event()
    try:
        writes = DeferredWrites()
        importlib.import_module("dr_after_one")
        writes.flush(after=answered)
        writer = wait_until(lambda: next((t for t in threading.enumerate()
                                          if t.name == "devreload-bytecode"), None))
        assert not cached.exists(), "written before the first response"
        answered.set()
        writer.join(5)
        assert cached.exists()
    finally:
        answered.set()
        sys.modules.pop("dr_after_one", None)


HOLDING_PROGRAM = """\
import importlib.util, os, sys
import devreload
import dr_program_module
cached = importlib.util.cache_from_source(dr_program_module.__file__)
print("cached while it runs:", os.path.exists(cached), flush=True)
{after}
"""


def _run_program(tmp_path: Path, after: str = "", **env: str) -> tuple[str, Path]:
    """A program that imports devreload, then a module of its own; its output, and where
    that module's cache goes."""
    import subprocess

    (tmp_path / "dr_program_module.py").write_text("VALUE = 1\n")
    (tmp_path / "program.py").write_text(HOLDING_PROGRAM.format(after=after))
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    environ.update(env, PYTHONPATH=os.pathsep.join(sys.path))
    done = subprocess.run([sys.executable, "program.py"], cwd=tmp_path, env=environ,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout, Path(importlib.util.cache_from_source(
        str(tmp_path / "dr_program_module.py")))


def test_a_program_that_imports_devreload_holds_its_caches_until_its_exit(
    tmp_path: Path,
) -> None:
    """Its app may be served by the monitor's own fork, which writes them once it
    answers; a program that never serves writes them as it exits."""
    output, cached = _run_program(tmp_path)
    assert "cached while it runs: False" in output
    assert cached.exists(), "a program that never served never wrote its caches"


def test_a_monitor_drops_the_caches_it_held_its_workers_write_theirs(tmp_path: Path) -> None:
    output, cached = _run_program(
        tmp_path, "from devreload.worker.bytecode import drop_hold\ndrop_hold()")
    assert "cached while it runs: False" in output
    assert not cached.exists()


def test_a_worker_devreload_started_holds_nothing_at_import(tmp_path: Path) -> None:
    """A spawned worker (its descriptors in the environment) holds its own, from its spec
    on: ``import devreload`` there changes nothing."""
    output, cached = _run_program(tmp_path, DEVRELOAD_WORKER_FDS="-1")
    assert "cached while it runs: True" in output and cached.exists()
