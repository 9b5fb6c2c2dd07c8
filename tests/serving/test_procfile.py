"""The stack ``devreload up`` reads: a Procfile or a pyproject table, each line one of three
kinds told apart by the command alone, and every mistake one line naming file and line."""

from __future__ import annotations

import os
import re
import shlex
import stat
import sys
from pathlib import Path

import pytest

from devreload.serving.procfile import (
    Kind,
    Process,
    StackError,
    chosen,
    kind_of,
    read_procfile,
    read_stack,
)


def kind(command: str) -> Kind:
    return kind_of(command, shlex.split(command))


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("devreload serve dev.ini --reload", Kind.SERVE),
        ("devreload serve app:app", Kind.SERVE),
        ("python -m devreload serve dev.ini", Kind.SERVE),
        ("python worker.py", Kind.PYTHON),
        ("python3 -m myapp.consumer --queue high", Kind.PYTHON),
        ("python3.12 manage.py rqworker", Kind.PYTHON),
        ("./manage.py runworker", Kind.PYTHON),
        ("DEBUG=1 python worker.py", Kind.PYTHON),
        ("python app.py --port $PORT", Kind.PYTHON),
        ("devreload run app.py", Kind.OTHER),
        ("python -u -c pass", Kind.OTHER),
        ("npm run dev", Kind.OTHER),
        ("while true; do date; sleep 1; done", Kind.OTHER),
        ("python worker.py | tee log.txt", Kind.OTHER),
        ("tailwindcss -i in.css -o out.css --watch", Kind.OTHER),
    ],
)
def test_three_kinds_told_apart_by_the_command(command: str, expected: Kind) -> None:
    assert kind(command) is expected


def test_a_console_script_of_a_python_package_is_a_python_program(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``celery -A proj worker``: the script pip installed runs a Python."""
    for name, head in [("celery", f"#!{sys.executable}\n"),
                       ("longpath", "#!/bin/sh\n'''exec' \"/very/long/bin/python3\" \"$0\"\n"),
                       ("node", "#!/usr/bin/env node\n")]:
        script = tmp_path / name
        script.write_text(head + "pass\n")
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(tmp_path) + os.pathsep + os.environ["PATH"])
    assert kind("celery -A proj worker -l info") is Kind.PYTHON
    assert kind("longpath run") is Kind.PYTHON
    assert kind("node server.js") is Kind.OTHER
    assert kind("not-installed-anywhere --x") is Kind.OTHER


def test_a_procfile_is_read_in_order(tmp_path: Path) -> None:
    procfile = tmp_path / "Procfile"
    procfile.write_text(
        "# the stack\n"
        "web: devreload serve dev.ini --reload\n"
        "\n"
        "worker:   python worker.py\n"
        "assets: npm run dev\n"
    )
    processes = read_procfile(str(procfile))
    assert [(p.name, p.command, p.kind) for p in processes] == [
        ("web", "devreload serve dev.ini --reload", Kind.SERVE),
        ("worker", "python worker.py", Kind.PYTHON),
        ("assets", "npm run dev", Kind.OTHER),
    ]
    assert processes[1].source == f"{procfile}:4"
    assert processes[1].argv == ["python", "worker.py"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("web devreload serve dev.ini\n", ":1: not a 'name: command' line: "
                                          "'web devreload serve dev.ini'"),
        ("web: python a.py\nbad name: python b.py\n", ":2: not a 'name: command' line"),
        ("web:\n", ":1: 'web' has no command"),
        ("web: python a.py\nweb: python b.py\n", ":2: 'web' is named twice (first at "),
        ("web: python 'a.py\n", ":1: 'web': No closing quotation"),
        ("# nothing\n\n", ": names no process"),
    ],
)
def test_a_bad_procfile_is_one_line_naming_its_line(
    tmp_path: Path, text: str, message: str
) -> None:
    procfile = tmp_path / "Procfile"
    procfile.write_text(text)
    with pytest.raises(StackError) as caught:
        read_procfile(str(procfile))
    line = str(caught.value)
    assert line.startswith(f"{procfile}{message}") and "\n" not in line


def test_the_processes_table_of_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.devreload.processes]\n"
        'web = "devreload serve app:app"\n'
        'css = {command = "tailwindcss --watch", watch = ["tailwind.config.js"]}\n'
        'jobs = {command = "python jobs.py", cooperative = 30}\n'
        'mail = {command = "python mail.py", cooperative = true}\n'
    )
    web, css, jobs, mail = read_stack(str(tmp_path))
    assert (web.name, web.kind, web.cooperative) == ("web", Kind.SERVE, False)
    assert (css.kind, css.watch) == (Kind.OTHER, ("tailwind.config.js",))
    assert (jobs.cooperative, jobs.cooperative_timeout) == (True, 30.0)
    assert (mail.cooperative, mail.cooperative_timeout) == (True, None)
    (tmp_path / "Procfile").write_text("only: python a.py\n")
    assert [p.name for p in read_stack(str(tmp_path))] == ["only"], "a Procfile comes first"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('web = 3\n', "[tool.devreload.processes] web: needs a command (a string)"),
        ('css = {command = "x", watch = "a"}\n',
         "[tool.devreload.processes] css: watch must be a list of globs"),
        ('"a b" = "python a.py"\n', "[tool.devreload.processes] a b: is not a process name"),
        ('w = {command = "x", wacth = ["a"]}\n',
         "[tool.devreload.processes] w: unknown key 'wacth'"),
        ('w = {command = "x", cooperative = "yes"}\n',
         "[tool.devreload.processes] w: cooperative must be true, false, or the seconds"),
    ],
)
def test_a_bad_table_is_one_line_naming_its_key(tmp_path: Path, table: str, message: str) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.devreload.processes]\n" + table)
    with pytest.raises(StackError, match=re.escape(f"pyproject.toml: {message}")):
        read_stack(str(tmp_path))


def test_no_stack_at_all_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(StackError) as caught:
        read_stack(str(tmp_path))
    assert str(caught.value) == (f"{tmp_path / 'Procfile'}: not found, nor a "
                                 "[tool.devreload.processes] table in pyproject.toml")
    with pytest.raises(StackError, match=r"Other\.procfile: No such file"):
        read_stack(str(tmp_path), str(tmp_path / "Other.procfile"))


def test_processes_chosen_by_name(tmp_path: Path) -> None:
    procfile = tmp_path / "Procfile"
    procfile.write_text("web: python w.py\nworker: python q.py\nbeat: python b.py\n")
    processes = read_procfile(str(procfile))
    assert [p.name for p in chosen(processes, ["beat", "web"], str(procfile))] == ["web", "beat"]
    assert chosen(processes, [], str(procfile)) == processes
    with pytest.raises(StackError) as caught:
        chosen(processes, ["wrker"], str(procfile))
    assert str(caught.value) == (f"{procfile}: no process named 'wrker' (it has: web, "
                                 "worker, beat)")


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("python worker.py --queue high", ("path", "worker.py", ["worker.py", "--queue", "high"])),
        ("python3 -u -X dev -m app.consumer -c 2",
         ("module", "app.consumer", ["app.consumer", "-c", "2"])),
        ("DEBUG=1 python app.py --port $PORT", ("path", "app.py", ["app.py", "--port", "5100"])),
        ("python app.py ${PORT}x", ("path", "app.py", ["app.py", "5100x"])),
    ],
)
def test_a_python_line_as_devreload_run_takes_it(
    command: str, expected: tuple[str, str, list[str]]
) -> None:
    process = Process("worker", command, Kind.PYTHON, "Procfile:2")
    assert process.python_program({"PORT": "5100"}) == expected


def test_python_without_a_program_is_one_line() -> None:
    with pytest.raises(StackError, match=r"^Procfile:2: runs python without a script"):
        Process("worker", "python -u", Kind.PYTHON, "Procfile:2").python_program({})


def test_a_serve_line_gives_what_follows_serve() -> None:
    process = Process("web", "python -m devreload serve dev.ini --reload port=$PORT", Kind.SERVE,
                      "Procfile:1")
    assert process.serve_words({"PORT": "5000"}) == ["dev.ini", "--reload", "port=5000"]
