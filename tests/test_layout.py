"""The house keeps its shape: the folder a module sits in says which process runs it, code
flows one way (nothing imports a floor above its own, no two modules import each other),
and no room grows too big. Read from the source, so a violation names its file."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "devreload"

#: The floors, bottom first: a module may import its own floor and the ones below.
FLOORS = [
    {"errors", "log", "imports", "platforms", "processes", "sockets", "values"},
    {"wire"},
    {"filemon"},
    {"worker"},
    {"web"},
    {"servers"},
    {"monitor"},
    {"serving"},
    {"cli", "__init__", "__main__", "middleware", "middleware_asgi"},
]
MAX_TOP_MODULES = 12
MAX_MODULE_LINES = 400
MAX_CLASS_LINES = 250


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path


def room(module: str) -> str:
    """The folder (or top-level module) a module is in: ``devreload.monitor.x`` → monitor."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def floor(module: str) -> int:
    return next(i for i, rooms in enumerate(FLOORS) if room(module) in rooms)


def imports(path: Path, known: set[str]) -> set[str]:
    """The devreload modules ``path`` imports, at its top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in known else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name in known}


GRAPH = {name: imports(path, {m for m, _ in modules()}) - {name} for name, path in modules()}


def test_every_room_is_on_a_floor() -> None:
    rooms = {room(name) for name in GRAPH}
    assert rooms <= set().union(*FLOORS), f"not on a floor: {rooms - set().union(*FLOORS)}"


def test_no_import_runs_back_up() -> None:
    upward = [
        f"{name} imports {target}"
        for name, targets in GRAPH.items()
        for target in targets
        if target != "devreload" and floor(target) > floor(name)
    ]
    assert upward == []


def test_no_import_circle() -> None:
    def reaches(start: str) -> set[str]:
        seen: set[str] = set()
        todo = list(GRAPH[start])
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(GRAPH.get(name, ()))
        return seen

    circles = [name for name in GRAPH if name != "devreload" and name in reaches(name)]
    assert circles == []


def test_rooms_stay_small() -> None:
    top = [p.name for p in PACKAGE.glob("*.py")]
    assert len(top) <= MAX_TOP_MODULES, top
    too_long, too_big = [], []
    for name, path in modules():
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > MAX_MODULE_LINES:
            too_long.append(name)
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                assert node.end_lineno is not None
                if node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES:
                    too_big.append(f"{name}.{node.name}")
    assert too_long == [] and too_big == []


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("devreload.middleware", "LiveReload"),
        ("devreload.middleware", "livereload_filter"),
        ("devreload.middleware_asgi", "LiveReloadASGI"),
        ("devreload", "start_reloader"),
        ("devreload", "ReloadSettings"),
    ],
)
def test_documented_import_paths_load(module: str, name: str) -> None:
    assert callable(getattr(importlib.import_module(module), name))


def test_every_public_name_loads() -> None:
    import devreload

    assert all(getattr(devreload, name, None) is not None for name in devreload.__all__)


@pytest.mark.parametrize(
    ("group", "name"),
    [("paste.server_runner", "main"), ("paste.filter_app_factory", "livereload"),
     ("console_scripts", "devreload")],
)
def test_entry_points_load(group: str, name: str) -> None:
    (entry,) = [
        e for e in importlib.metadata.entry_points(group=group, name=name)
        if e.dist is not None and e.dist.name == "devreload"
    ]
    assert callable(entry.load())
