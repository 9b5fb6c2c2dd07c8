"""Which opened files count as read by the app: under the project, outside libraries, never
written."""

from __future__ import annotations

import os
from pathlib import Path

from devreload.worker.reads import ReadFiles


def test_files_are_sorted_into_read_and_written(tmp_path: Path) -> None:
    project, library = tmp_path / "proj", tmp_path / "proj" / ".venv"
    library.mkdir(parents=True)
    for name in ("settings.yaml", "state.json", "outside.txt"):
        (project / name).write_text("x")
    (library / "lib.txt").write_text("x")
    (tmp_path / "elsewhere.txt").write_text("x")
    files = ReadFiles(str(project), [str(library)])
    files.hook("open", (str(project / "settings.yaml"), "r", os.O_RDONLY))
    files.hook("open", (str(project / "state.json"), "r", os.O_RDONLY))
    files.hook("open", (str(project / "state.json"), "a", os.O_WRONLY | os.O_APPEND))
    files.hook("open", (os.fsencode(project / "outside.txt"), None, os.O_RDONLY))
    files.hook("open", (str(library / "lib.txt"), "rb", os.O_RDONLY))
    files.hook("open", (str(tmp_path / "elsewhere.txt"), "r", os.O_RDONLY))
    files.hook("open", (3, "r", os.O_RDONLY))
    files.hook("exec", (None,))
    assert files.changed()
    read, written = files.take()
    assert read == (str(project / "settings.yaml"), str(project / "outside.txt"))
    assert written == (str(project / "state.json"),)
    assert not files.changed()
    files.hook("open", (str(project / "settings.yaml"), "w", os.O_WRONLY))
    assert files.take() == ((str(project / "outside.txt"),),
                            (str(project / "state.json"), str(project / "settings.yaml")))


def test_a_hook_never_fails_the_apps_open(tmp_path: Path) -> None:
    files = ReadFiles(str(tmp_path), [])
    files.hook("open", ("only", "two"))  # malformed arguments are ignored, not raised
    assert files.take() == ((), ())
