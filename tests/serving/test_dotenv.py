"""``.env`` read as honcho and foreman read it, and each process's environment: ``.env``,
a ``PORT`` of its own (5000, 5100, ...), then what its own line sets."""

from __future__ import annotations

from pathlib import Path

import pytest

from devreload.serving.dotenv import environment, read_dotenv
from devreload.serving.procfile import Kind, Process, StackError


def test_a_dotenv_in_the_forms_people_write(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(
        "# settings\n"
        "DEBUG=1\n"
        "export DATABASE_URL=postgres://localhost/app\n"
        "GREETING = hello world  # a comment\n"
        "SINGLE='kept \\n as $written'\n"
        'DOUBLE="two\\nlines and a \\"quote\\""\n'
        "EMPTY=\n"
    )
    assert read_dotenv(str(path)) == {
        "DEBUG": "1",
        "DATABASE_URL": "postgres://localhost/app",
        "GREETING": "hello world",
        "SINGLE": "kept \\n as $written",
        "DOUBLE": 'two\nlines and a "quote"',
        "EMPTY": "",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("DEBUG=1\nnot a setting\n", ":2: not a KEY=value line: 'not a setting'"),
        ('A="open\n', ":1: no closing \" in '\"open'"),
    ],
)
def test_a_bad_dotenv_line_is_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / ".env"
    path.write_text(text)
    with pytest.raises(StackError) as caught:
        read_dotenv(str(path))
    assert str(caught.value) == f"{path}{message}"


def test_each_process_gets_its_port_unless_its_line_sets_one() -> None:
    web = Process("web", "devreload serve dev.ini", Kind.SERVE, "Procfile:1")
    api = Process("api", "PORT=8000 DEBUG=0 python api.py", Kind.PYTHON, "Procfile:2")
    worker = Process("worker", "python worker.py", Kind.PYTHON, "Procfile:3")
    dotenv = {"DEBUG": "1", "PORT": "1234"}
    base = {"PATH": "/usr/bin"}
    assert environment(web, 0, dotenv, base) == {"PATH": "/usr/bin", "DEBUG": "1",
                                                 "PORT": "5000"}
    assert environment(api, 1, dotenv, base)["PORT"] == "8000"
    assert environment(api, 1, dotenv, base)["DEBUG"] == "0", "the line wins over .env"
    assert environment(worker, 2, dotenv, base)["PORT"] == "5200"
