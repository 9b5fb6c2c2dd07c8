"""The error page's traceback: the app's frames first with their source (the failing line
marked), library frames folded, a short plain text."""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from logrecords import devreload_logger_as_it_was
from paste.deploy import loadapp

from devreload.errors import AppFactoryError
from devreload.web import livereload
from devreload.web.page import render, where
from devreload.wire.messages import Frame
from devreload.worker.tracebacks import compact_traceback, failure_details, is_user_file

VIEWS = '''\
import json


def settings(text):
    # the settings are JSON
    return json.loads(text)


def home():
    value = "<b>"
    return settings("{" + value)
'''


@pytest.fixture(autouse=True)
def _logger_as_it_was() -> Iterator[None]:
    with devreload_logger_as_it_was():
        yield


@pytest.fixture
def views(tmp_path: Path) -> Iterator[ModuleType]:
    """A module of the app's own (outside every library folder) that calls a library."""
    path = tmp_path / "views.py"
    path.write_text(VIEWS)
    spec = importlib.util.spec_from_file_location("views_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("views_under_test", None)


def raised(module: ModuleType) -> BaseException:
    try:
        module.home()
    except ValueError as exc:
        return exc
    raise AssertionError("home() did not raise")


def test_frames_carry_the_source_around_the_apps_lines(views: ModuleType) -> None:
    frames, exception = failure_details(raised(views))
    user = [f for f in frames if f.user and f.filename == views.__file__]
    assert [(f.name, f.lineno) for f in user] == [("home", 11), ("settings", 6)]
    # Three lines either side.
    assert (user[-1].first, user[-1].context) == (3, (
        "", "def settings(text):", "    # the settings are JSON", "    return json.loads(text)",
        "", "", "def home():",
    ))
    assert user[0].context[-1] == '    return settings("{" + value)'
    library = [f for f in frames if not f.user]
    assert library and all("json" in f.filename for f in library)
    assert all(len(f.context) <= 1 for f in library)  # a library frame: its own line only
    assert exception.startswith("json.decoder.JSONDecodeError: ")


def test_plain_text_has_the_apps_frames_and_the_exception_only(views: ModuleType) -> None:
    text = compact_traceback(raised(views))
    assert "views.py" in text and "json/decoder.py" not in text and "json/__init__" not in text
    assert text.rstrip().splitlines()[-1].startswith("json.decoder.JSONDecodeError")


def test_a_syntax_error_imported_by_a_library_starts_at_the_apps_file(tmp_path: Path) -> None:
    """PasteDeploy imported the broken module: no frame of its comes first."""
    (tmp_path / "broken_app.py").write_text("def make_app(:\n    pass\n")
    (tmp_path / "app.ini").write_text("[app:main]\nuse = call:broken_app:make_app\n")
    sys.path.insert(0, str(tmp_path))
    try:
        loadapp(f"config:{tmp_path / 'app.ini'}")
    except SyntaxError as exc:
        assert exc.__traceback__ is not None
        # As in a worker, whose outer frames are devreload's: from the library's on.
        raised = exc.with_traceback(exc.__traceback__.tb_next)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("broken_app", None)
    text = compact_traceback(raised)
    assert text.startswith(f'  File "{tmp_path / "broken_app.py"}", line 1'), text
    assert "paste" not in text and "Traceback" not in text
    assert text.rstrip().endswith("SyntaxError: invalid syntax")


def test_the_page_shows_the_failing_line_in_context_and_folds_libraries(
    views: ModuleType,
) -> None:
    exc = raised(views)
    frames, exception = failure_details(exc)
    report = compact_traceback(exc)
    _, body = render(report, "text/html", show=True, frames=frames, exception=exception)
    page = body.decode()
    failing = re.findall(r'<mark class="failing">(.*?)</mark>', page)
    assert failing == ['<span class="no">6</span>    return json.loads(text)']
    # The lines around it, numbered; the app's source escaped.
    assert '<span class="no">5</span>    # the settings are JSON' in page
    assert '<span class="no">10</span>    value = &quot;&lt;b&gt;&quot;' in page
    assert "<b>" not in page.split("<body>")[1]
    # The app's frames first, then the libraries' in one folded <details>.
    details = page.index('<details class="library">')
    assert page.index("views.py, line 11, in home") < page.index("line 6, in settings") < details
    assert "json/decoder.py" in page[details:] and "json/decoder.py" not in page[:details]
    assert re.search(r"<summary>\d+ library frames \(json\)</summary>", page)
    assert "<details open" not in page
    assert '<p class="where">' in page and "views.py:6: json.decoder.JSONDecodeError" in page
    # The plain text stays short.
    _, text = render(report, "*/*", show=True, frames=frames, exception=exception)
    assert text == report.encode()


def test_hidden_tracebacks_show_no_frames(views: ModuleType) -> None:
    exc = raised(views)
    frames, exception = failure_details(exc)
    _, body = render(compact_traceback(exc), "text/html", show=False, frames=frames,
                     exception=exception)
    assert b"views.py" not in body and b"<details" not in body


def test_a_syntax_error_shows_the_line_the_parser_stopped_at(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text("A = 1\nB = 2\nVERSION = '<b>' +\nC = 3\n")
    try:
        compile(path.read_text(), str(path), "exec")
    except SyntaxError as exc:
        frames, exception = failure_details(exc)
    else:
        raise AssertionError("no SyntaxError")
    assert frames[-1].user and frames[-1].filename == str(path) and frames[-1].lineno == 3
    _, body = render("x", "text/html", show=True, frames=frames, exception=exception)
    assert (b'<mark class="failing"><span class="no">3</span>VERSION = &#x27;&lt;b&gt;&#x27; +'
            in body)
    assert b"SyntaxError" in body


def test_a_devreload_error_shows_its_causes_frames(views: ModuleType) -> None:
    cause = raised(views)
    try:
        raise AppFactoryError("/srv/app.ini", "app:main", "views.py:6 in settings",
                              cause) from cause
    except AppFactoryError as exc:
        frames, exception = failure_details(exc)
    assert [f.name for f in frames if f.filename == views.__file__] == ["home", "settings"]
    assert exception.splitlines()[-1].startswith("devreload: /srv/app.ini: [app:main]")
    # The page names the app's line and the exception itself, not devreload's line about it.
    assert where("", frames, exception).endswith("views.py:6: " + exception.splitlines()[0])


@pytest.mark.parametrize(
    ("path", "user"),
    [
        ("/usr/lib/python3/dist-packages/paste/deploy/loadwsgi.py", False),
        ("/home/me/.local/lib/python3.11/site-packages/flask/app.py", False),
        ("<frozen importlib._bootstrap>", False),
        (livereload.__file__, False),  # devreload's own
        (sys.modules["json"].__file__ or "", False),  # the standard library
        ("/home/me/project/app/views.py", True),
    ],
)
def test_library_files_wherever_they_are_installed(path: str, user: bool) -> None:
    assert is_user_file(path) is user


def test_frames_without_the_apps_own_show_the_innermost() -> None:
    frames = (Frame("/x/site-packages/lib/a.py", 3, "a", False, 3, ("a()",)),
              Frame("/x/site-packages/lib/b.py", 9, "b", False, 9, ("raise X",)))
    _, body = render("X", "text/html", show=True, frames=frames, exception="X\n")
    page = body.decode()
    assert '<mark class="failing"><span class="no">9</span>raise X</mark>' in page
    assert "1 library frame (lib)" in page
