"""Loading an app from an import string in this process, and telling an app from an ini."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devreload.errors import AppImportError
from devreload.serving.apps import AppLoadError, load_app
from devreload.serving.importapp import is_app_target


@pytest.fixture
def in_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh folder as the current one; modules imported from it are forgotten after."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        del sys.modules[name]


def test_app_targets_and_inis(in_project: Path) -> None:
    assert is_app_target("main:app")
    assert is_app_target("pkg.module:create_app()")
    assert is_app_target("mysite.wsgi:application")
    assert not is_app_target("development.ini")
    assert not is_app_target("conf/app.ini")
    assert not is_app_target("pkg:create_app('dev')")
    (in_project / "odd:name").write_text("")
    assert not is_app_target("odd:name")  # an existing file is an ini, whatever its name


def test_loads_from_the_current_folder_and_calls_a_factory(in_project: Path) -> None:
    (in_project / "appmod_a.py").write_text(
        "def app(environ, start_response):\n    return []\n\n"
        "def create():\n    return app\n"
    )
    app = load_app("appmod_a:app")
    assert app is load_app("appmod_a:create()")
    assert sys.path[0] == str(in_project)


def test_errors_name_what_and_where(in_project: Path) -> None:
    (in_project / "appmod_b.py").write_text(
        "import missing_dependency_xyz\n"
    )
    (in_project / "appmod_c.py").write_text(
        "def create():\n    return {}['key']\n\napp = 1\n"
    )
    (in_project / "appmod_d.py").write_text("def broken(:\n")
    with pytest.raises(AppImportError, match=r"no module named 'nowhere_xyz' in "):
        load_app("nowhere_xyz:app")
    with pytest.raises(AppLoadError, match=r"^importing 'appmod_b' failed at appmod_b\.py:1 in "
                       r"<module>: ModuleNotFoundError: No module named 'missing_dependency_xyz'"):
        load_app("appmod_b:app")
    with pytest.raises(AppLoadError, match=r"^calling appmod_c:create\(\) failed at "
                       r"appmod_c\.py:2 in create: KeyError: 'key'") as raised:
        load_app("appmod_c:create()")
    assert isinstance(raised.value.__cause__, KeyError)
    with pytest.raises(AppImportError, match=r"has no attribute 'nope'"):
        load_app("appmod_c:nope")
    with pytest.raises(AppImportError, match=r"not an app .* but of type int"):
        load_app("appmod_c:app")
    with pytest.raises(AppLoadError, match=r"appmod_d\.py:1: SyntaxError"):
        load_app("appmod_d:app")
