"""The stack ``devreload up`` runs: the processes a ``Procfile`` (or the
``[tool.devreload.processes]`` table of ``pyproject.toml``) names, each told apart by its
command line alone.

Three kinds, without configuration: ``devreload serve ...`` is served the devreload way
(held socket, error page, live reload); a Python program (``python script.py``,
``python -m module``, a script ending in ``.py``, or a console script a Python package
installed, such as ``celery`` or ``rq``) runs as a devreload worker, watched by what it
imports and reads; anything else (``npm run dev``, a shell loop) is supervised, and
restarted only on the globs its table entry names under ``watch``.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import re
import shlex
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from devreload.errors import ConfigError

#: A process name, as honcho, foreman and overmind take it.
NAME = re.compile(r"[A-Za-z0-9_-]+\Z")
#: A leading ``NAME=value`` of a command line: the process's own environment.
ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
#: What makes a line the shell's to run, not one program's (``$PORT`` is not: variables
#: are expanded for a program too, as honcho's shell would).
SHELL_SYNTAX = re.compile(r"[|&;<>()`]")
PYTHON = re.compile(r"python(\d+(\.\d+)?)?(\.exe)?\Z")
#: ``$NAME`` or ``${NAME}`` in a command line.
VARIABLE = re.compile(r"\$(?:([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)\})")


class StackError(ConfigError):
    """A Procfile or processes table that cannot be run as written: a usage error (exit
    code 2), named by file and line (or key)."""


class Kind(enum.Enum):
    SERVE = "devreload serve"
    PYTHON = "a Python program"
    OTHER = "supervised"


@dataclass(frozen=True)
class Process:
    """One line of the stack."""

    name: str
    command: str
    kind: Kind
    #: Where it was written: ``Procfile:3``, or ``pyproject.toml: [tool.devreload.processes] web``.
    source: str
    #: Globs that restart it (for a supervised process: the only ones).
    watch: tuple[str, ...] = ()
    #: A Python program told of a change leaves at a safe point (``should_restart()``),
    #: or is stopped anyway after ``cooperative_timeout`` seconds when that is set.
    cooperative: bool = False
    cooperative_timeout: float | None = None

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.command)

    def words(self, env: Mapping[str, str]) -> list[str]:
        """The command line without its leading assignments, ``$NAME`` expanded from
        ``env`` as the shell would."""
        words = self.argv
        while words and ASSIGNMENT.match(words[0]):
            words.pop(0)
        return [VARIABLE.sub(lambda m: env.get(m[1] or m[2], ""), word) for word in words]

    def serve_words(self, env: Mapping[str, str]) -> list[str]:
        """A ``devreload serve`` line: what comes after ``serve``."""
        words = self.words(env)
        return words[words.index("serve") + 1 :]

    def python_program(self, env: Mapping[str, str]) -> tuple[str, str, list[str]]:
        """A Python line as ``devreload run`` takes it: ``("module", name, argv)`` or
        ``("path", script, argv)``; a console script is the script pip wrote."""
        words = self.words(env)
        if PYTHON.match(os.path.basename(words[0]).lower()):
            rest = words[1:]
            while rest and rest[0].startswith("-") and rest[0] != "-m":
                if rest.pop(0) in ("-X", "-W") and rest:
                    rest.pop(0)
            if rest[:1] == ["-m"] and len(rest) > 1:
                return "module", rest[1], rest[1:]
            if not rest or rest[0] == "-m":
                raise StackError(self.source, None, "runs python without a script or -m module")
            return "path", rest[0], rest
        script = words[0] if os.path.isfile(words[0]) else shutil.which(words[0]) or words[0]
        return "path", script, [script, *words[1:]]


def read_procfile(path: str) -> list[Process]:
    """Every process of a Procfile: ``name: command`` per line; blank lines and ``#``
    comments are skipped."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise StackError(path, None, exc.strerror or str(exc)) from None
    processes: list[Process] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path}:{number}"
        name, colon, command = line.partition(":")
        name, command = name.strip(), command.strip()
        if not colon or not NAME.match(name):
            raise StackError(where, None, f"not a 'name: command' line: {line!r}")
        if not command:
            raise StackError(where, None, f"{name!r} has no command")
        processes.append(_process(name, command, where, ()))
    if not processes:
        raise StackError(path, None, "names no process")
    _no_duplicates(processes)
    return processes


def read_table(path: str, table: dict[str, object]) -> list[Process]:
    """The ``[tool.devreload.processes]`` table: ``name = "command"``, or ``name = {command
    = "...", watch = ["glob", ...], cooperative = true | SECONDS}``."""
    processes = []
    for name, value in table.items():
        where = f"{path}: [tool.devreload.processes] {name}"
        if not NAME.match(name):
            raise StackError(where, None, "is not a process name (letters, digits, - and _)")
        entry = value if isinstance(value, dict) else {"command": value}
        unknown = sorted(set(entry) - {"command", "watch", "cooperative"})
        if unknown:
            raise StackError(where, None, f"unknown key {unknown[0]!r} (command, watch and "
                                          "cooperative are known)")
        command, watch = entry.get("command"), entry.get("watch", ())
        cooperative = entry.get("cooperative", False)
        if not isinstance(command, str) or not command.strip():
            raise StackError(where, None, "needs a command (a string)")
        if not isinstance(watch, (list, tuple)) or not all(isinstance(g, str) for g in watch):
            raise StackError(where, None, "watch must be a list of globs")
        if not isinstance(cooperative, (bool, int, float)) or cooperative < 0:
            raise StackError(where, None, "cooperative must be true, false, or the seconds "
                                          "to wait before stopping it anyway")
        process = _process(name, command.strip(), where, tuple(watch))
        processes.append(dataclasses.replace(
            process, cooperative=cooperative is not False,
            cooperative_timeout=None if isinstance(cooperative, bool) else float(cooperative)))
    if not processes:
        raise StackError(f"{path}: [tool.devreload.processes]", None, "names no process")
    return processes


def read_stack(folder: str, file: str | None = None) -> list[Process]:
    """The stack of ``folder``: ``file`` if given, else its ``Procfile``, else the
    ``[tool.devreload.processes]`` table of its ``pyproject.toml``."""
    if file is not None:
        return read_procfile(file)
    procfile = os.path.join(folder, "Procfile")
    if os.path.exists(procfile):
        return read_procfile(procfile)
    pyproject = os.path.join(folder, "pyproject.toml")
    table = _processes_table(pyproject) if os.path.exists(pyproject) else None
    if table is None:
        raise StackError(procfile, None, "not found, nor a [tool.devreload.processes] table "
                                          "in pyproject.toml")
    return read_table(pyproject, table)


def _processes_table(path: str) -> dict[str, object] | None:
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise StackError(path, None, str(exc)) from None
    table = data.get("tool", {}).get("devreload", {}).get("processes")
    if table is not None and not isinstance(table, dict):
        raise StackError(path, "tool.devreload.processes", "must be a table")
    return table


def chosen(processes: Sequence[Process], names: Sequence[str], source: str) -> list[Process]:
    """The processes ``names`` asks for (all when empty), in the file's order."""
    known = {p.name for p in processes}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise StackError(source, None, f"no process named {unknown[0]!r} (it has: "
                                        f"{', '.join(p.name for p in processes)})")
    return [p for p in processes if not names or p.name in names]


def _no_duplicates(processes: Sequence[Process]) -> None:
    seen: dict[str, str] = {}
    for process in processes:
        if process.name in seen:
            raise StackError(process.source, None,
                             f"{process.name!r} is named twice (first at {seen[process.name]})")
        seen[process.name] = process.source


def _process(name: str, command: str, where: str, watch: tuple[str, ...]) -> Process:
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise StackError(where, None, f"{name!r}: {exc}") from None
    return Process(name, command, kind_of(command, argv), where, watch)


def kind_of(command: str, argv: Sequence[str]) -> Kind:
    """Which of the three kinds a command line is, from the line alone (and, for a console
    script, the file it names)."""
    words = list(argv)
    while words and ASSIGNMENT.match(words[0]):
        words.pop(0)
    if not words or SHELL_SYNTAX.search(command):
        return Kind.OTHER
    program = os.path.basename(words[0])
    if PYTHON.match(program.lower()):
        if words[1:3] == ["-m", "devreload"] and words[3:4] == ["serve"]:
            return Kind.SERVE
        for word in words[1:]:
            if word == "-c":
                return Kind.OTHER  # a program in the line: no file to run as a worker
            if word == "-m" or not word.startswith("-"):
                break
        return Kind.PYTHON
    if program in ("devreload", "devreload.exe"):  # its other commands are monitors of their own
        return Kind.SERVE if words[1:2] == ["serve"] else Kind.OTHER
    if program.endswith(".py") or _is_python_script(words[0]):
        return Kind.PYTHON
    return Kind.OTHER


def _is_python_script(program: str) -> bool:
    """A console script a Python package installed: its first line runs a Python (on
    Windows: a launcher beside this interpreter)."""
    found = shutil.which(program)
    if found is None:
        return False
    if sys.platform == "win32":
        return os.path.dirname(found).lower() == os.path.dirname(sys.executable).lower()
    try:
        with open(found, "rb") as f:
            head = f.read(512)
    except OSError:
        return False
    # pip writes "#!/path/python", or for a long path "#!/bin/sh" and an exec of it.
    return head.startswith(b"#!") and b"python" in head.lower()
