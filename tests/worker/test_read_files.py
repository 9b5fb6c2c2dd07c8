"""Which opened files count as code or configuration: under the project, outside
libraries, never written; read while the app starts, while a module is imported, or by a
template or config loader; and unchanged since the worker started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from helpers import wait_until

from devreload.wire.messages import Files
from devreload.worker.reads import ReadFiles


def _open_as(module: str, files: ReadFiles, path: Path) -> None:
    """Open ``path`` from code whose module is ``module``, the way a library would (the
    event reaches the hook through the function the worker installs)."""
    scope: dict[str, Any] = {"__name__": module, "audited": files.audit_hook(),
                             "path": str(path)}
    exec("audited('open', (path, 'r', 0))", scope)


def test_the_installed_hook_passes_on_only_the_events_it_uses(tmp_path: Path) -> None:
    (tmp_path / "settings.ini").write_text("x")
    files = ReadFiles(str(tmp_path), [])
    ran: list[object] = []
    files.on_exec = ran.append
    audited = files.audit_hook()
    for event in ("compile", "import", "object.__getattr__", "marshal.loads"):
        audited(event, (str(tmp_path / "settings.ini"), "r", os.O_RDONLY))
    assert not files.changed() and ran == []
    audited("exec", ("code",))
    audited("open", (str(tmp_path / "settings.ini"), "r", os.O_RDONLY))
    assert ran == ["code"]
    assert [r.path for r in files.take().read] == [str(tmp_path / "settings.ini")]


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
    assert files.changed()
    taken = files.take()
    assert [r.path for r in taken.read] == [str(project / "settings.yaml"),
                                           str(project / "outside.txt")]
    assert {r.why for r in taken.read} == {"read while starting"}
    assert taken.written == (str(project / "state.json"),)
    assert not files.changed()
    files.hook("open", (str(project / "settings.yaml"), "w", os.O_WRONLY))
    taken = files.take()
    assert [r.path for r in taken.read] == [str(project / "outside.txt")]
    assert taken.written == (str(project / "state.json"), str(project / "settings.yaml"))


def test_after_start_only_loaders_and_imports_read_code(tmp_path: Path) -> None:
    for name in ("job.json", "page.html", "config.py", "schema.sql", "upload.bin"):
        (tmp_path / name).write_text("x")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "row.csv").write_text("x")
    files = ReadFiles(str(tmp_path), [])
    files.started()
    before = files.take()
    files.hook("open", (str(tmp_path / "job.json"), "r", os.O_RDONLY))
    files.hook("open", (str(tmp_path / "data" / "row.csv"), "r", os.O_RDONLY))
    _open_as("jinja2.utils", files, tmp_path / "page.html")
    _open_as("flask.config", files, tmp_path / "config.py")
    _open_as("flaskr.jinja2ish", files, tmp_path / "upload.bin")  # a prefix is not a package
    _open_as("importlib._bootstrap", files, tmp_path / "schema.sql")  # as a module's source
    _open_as("linecache", files, tmp_path / "upload.bin")  # shown in a traceback
    taken = files.take()
    assert before.read == () and files.take() == taken
    assert {(Path(r.path).name, r.why) for r in taken.read} == {
        ("page.html", "read by jinja2.utils"),
        ("config.py", "read by flask.config"),
        ("schema.sql", "imported"),
    }
    assert set(taken.data) == {str(tmp_path), str(tmp_path / "data")}
    assert all(r.at >= files.born for r in taken.read)


IMPORTING_PROGRAM = """\
import os, sys
from devreload.worker.reads import ReadFiles
files = ReadFiles(os.getcwd(), [])
sys.addaudithook(files.audit_hook())
sys.path.insert(0, os.getcwd())
import imported_here
print(sorted((os.path.basename(r.path), r.why) for r in files.take().read))
"""


def test_the_import_systems_read_of_a_source_is_an_imported_read(tmp_path: Path) -> None:
    """Through the short path the worker takes for it (an audit hook stays for the
    process's life: this runs in one of its own)."""
    (tmp_path / "imported_here.py").write_text("X = 1\n")
    environ = dict(os.environ, PYTHONDONTWRITEBYTECODE="1",
                   PYTHONPATH=os.pathsep.join(sys.path))
    done = subprocess.run([sys.executable, "-c", IMPORTING_PROGRAM], cwd=tmp_path,
                          env=environ, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "[('imported_here.py', 'imported')]", done.stderr


def test_a_read_during_an_import_names_the_module_imported(tmp_path: Path) -> None:
    (tmp_path / "schema.sql").write_text("x")
    (tmp_path / "reading_at_import.py").write_text(
        "import sys\nFILES.hook('open', (PATH, 'r', 0))\n")
    files = ReadFiles(str(tmp_path), [])
    files.started()
    sys.path.insert(0, str(tmp_path))
    try:
        import builtins
        builtins.FILES, builtins.PATH = files, str(tmp_path / "schema.sql")  # type: ignore[attr-defined]
        __import__("reading_at_import")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("reading_at_import", None)
        del builtins.FILES, builtins.PATH  # type: ignore[attr-defined]
    (read,) = files.take().read
    assert read.why == "read while importing reading_at_import"


def test_devreloads_own_look_at_a_module_source_is_no_read(tmp_path: Path) -> None:
    """The pure-prefix rule reads an app module's source to judge its statements: the
    module is watched as a module, not as a file the app read."""
    (tmp_path / "app.py").write_text("x")
    files = ReadFiles(str(tmp_path), [])
    _open_as("devreload.worker.inert", files, tmp_path / "app.py")
    taken = files.take()
    assert taken.read == () and taken.data == ()


def test_a_file_that_appeared_after_the_worker_started_is_data(tmp_path: Path) -> None:
    (tmp_path / "settings.ini").write_text("x")
    files = ReadFiles(str(tmp_path), [], born=os.stat(tmp_path / "settings.ini").st_ctime)

    def job_is_younger() -> bool:  # the file clock ticks coarsely: write until it moved
        (tmp_path / "job.json").write_text("x")
        return os.stat(tmp_path / "job.json").st_ctime > files.born

    wait_until(job_is_younger)
    files.hook("open", (str(tmp_path / "settings.ini"), "r", os.O_RDONLY))
    files.hook("open", (str(tmp_path / "job.json"), "r", os.O_RDONLY))
    taken = files.take()
    assert [Path(r.path).name for r in taken.read] == ["settings.ini"]
    assert taken.data == (str(tmp_path),)


def test_files_the_app_removes_or_renames_are_its_own(tmp_path: Path) -> None:
    for name in ("a.job", "b.job"):
        (tmp_path / name).write_text("x")
    files = ReadFiles(str(tmp_path), [])
    told: list[Files] = []
    files.on_owned = lambda: told.append(files.take(answer=True))
    files.hook("open", (str(tmp_path / "a.job"), "r", os.O_RDONLY))
    files.hook("open", (str(tmp_path / "b.job"), "r", os.O_RDONLY))
    assert len(files.take().read) == 2
    files.hook("os.rename", (str(tmp_path / "a.job"), str(tmp_path / "claimed.job"), -1, -1))
    files.hook("os.remove", (str(tmp_path / "b.job"), -1))
    files.hook("os.remove", (str(tmp_path / "never-read.job"), -1))
    # Told at once, in the hook (before the rename happens), for each watched read only.
    assert [len(t.read) for t in told] == [1, 0] and all(t.answer for t in told)
    taken = files.take()
    assert taken.read == ()
    assert set(taken.written) == {str(tmp_path / n)
                                  for n in ("a.job", "claimed.job", "b.job", "never-read.job")}


def test_a_hook_never_fails_the_apps_open(tmp_path: Path) -> None:
    files = ReadFiles(str(tmp_path), [])
    files.hook("open", ("only", "two"))  # malformed arguments are ignored, not raised
    files.hook("os.rename", ())
    taken = files.take()
    assert (taken.read, taken.written, taken.data) == ((), (), ())
