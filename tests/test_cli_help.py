"""The command line's own words (issue 11): help without markup and with the defaults, a
version, and what a bare ``devreload serve`` asks for."""

from __future__ import annotations

import importlib.metadata

import pytest

from devreload.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    captured = capsys.readouterr()
    code = exited.value.code
    return code if isinstance(code, int) else 0, captured.out + captured.err


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["serve", "--help"]])
def test_help_is_plain_text(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    code, text = run(capsys, *args)
    assert code == 0
    assert "``" not in text and ":func:" not in text


def test_run_help_shows_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    _, text = run(capsys, "run", "--help")
    flat = " ".join(text.split())
    assert "(default: 0.05)" in flat
    assert "(default: 1.5)" in flat
    assert "(default: never)" in flat


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, text = run(capsys, "--version")
    assert code == 0
    assert text.strip() == f"devreload {importlib.metadata.version('devreload')}"


def test_bare_serve_asks_for_an_ini_or_an_app(capsys: pytest.CaptureFixture[str]) -> None:
    code, text = run(capsys, "serve")
    assert code == 2
    assert text.splitlines()[-1] == (
        "devreload serve: error: an INI file or a MODULE:APP is required"
    )
    assert "name=value" not in text.splitlines()[-1]
