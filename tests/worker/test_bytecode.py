"""A starting worker's bytecode caches are written once the app answers."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from importlib.machinery import SourceFileLoader
from pathlib import Path

import pytest
from helpers import wait_until

from devreload.worker.bytecode import DeferredWrites


def test_bytecode_is_held_until_flushed_then_written_as_the_import_system_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "dr_held_one.py").write_text("VALUE = 1\n")
    (tmp_path / "dr_held_two.py").write_text("VALUE = 2\n")
    cached = [Path(importlib.util.cache_from_source(str(tmp_path / f"dr_held_{n}.py")))
              for n in ("one", "two")]
    original = SourceFileLoader.set_data
    writes = DeferredWrites()
    try:
        assert importlib.import_module("dr_held_one").VALUE == 1
        assert not cached[0].exists(), "written while the app starts"
        writes.flush()
        assert SourceFileLoader.set_data is original
        wait_until(cached[0].exists, timeout=5, message="the held bytecode was never written")
        assert importlib.import_module("dr_held_two").VALUE == 2
        assert cached[1].exists(), "an import after the flush writes at once"
    finally:
        SourceFileLoader.set_data = original  # type: ignore[method-assign]
        for name in ("dr_held_one", "dr_held_two"):
            sys.modules.pop(name, None)
    # What was written is what the import system reads back as valid.
    loader = SourceFileLoader("dr_held_one", str(tmp_path / "dr_held_one.py"))
    assert loader.get_code("dr_held_one") is not None
    data = cached[0].read_bytes()
    assert data[:4] == importlib.util.MAGIC_NUMBER
