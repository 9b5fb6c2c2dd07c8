"""The rule for what a worker template may preload: which top-level statements are inert,
and how an observer of imports ends the pure prefix."""

from __future__ import annotations

import contextlib
import importlib
import sys
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from devreload.worker import inert, preload
from devreload.worker.modules import library_roots


@pytest.mark.parametrize(
    "source",
    [
        '"""A docstring."""\nimport os\nfrom json import dumps\n',
        "X = 1\nNAMES = ('a', 'b')\n__all__ = ['X']\nA, B = 1, 2\n",
        "def f(a, b=1, *, c=None):\n    os.environ['X'] = '1'\n",
        "class C:\n    x = 1\n    def m(self):\n        return call()\n",
        "try:\n    import ujson as json\nexcept ImportError:\n    import json\n",
        "if TYPE_CHECKING:\n    from x import Y\nelse:\n    pass\n",
        "T: int\nU: list[int] = []\n",
    ],
)
def test_inert_module_bodies(tmp_path: Path, source: str) -> None:
    path = tmp_path / "mod.py"
    path.write_text(source)
    assert inert.inert_before(str(path), None)


@pytest.mark.parametrize(
    "source",
    [
        "import os\nos.environ['MODE'] = 'app'\n",
        "app = make_app()\n",
        "settings.DEBUG = True\n",
        "@decorator\ndef f():\n    pass\n",
        "def f(x=compute()):\n    pass\n",
        "class C(metaclass=Meta):\n    pass\n",
        "class Question(models.Model):\n    text = 'q'\n",
        "class C:\n    registry.add(1)\n",
        "if __name__ == '__main__':\n    main()\n",
        "for x in y:\n    pass\n",
        "print('hello')\n",
    ],
)
def test_code_that_can_change_state_is_not_inert(tmp_path: Path, source: str) -> None:
    path = tmp_path / "mod.py"
    path.write_text(source)
    assert not inert.inert_before(str(path), None)


def test_only_statements_run_so_far_count(tmp_path: Path) -> None:
    path = tmp_path / "mod.py"
    path.write_text(textwrap.dedent("""\
        import os
        import json
        app = make_app()
        import late
        """))
    assert inert.inert_before(str(path), 2), "line 2 is an import after an import"
    assert not inert.inert_before(str(path), 3), "the statement running is a call"
    assert not inert.inert_before(str(path), 4), "make_app() ran before this import"
    assert not inert.inert_before(str(tmp_path / "missing.py"), 1), "unknown code is not inert"


@contextlib.contextmanager
def observing(library: Path, user: Path, names: Sequence[str],
              own: Path | None = None) -> Iterator[preload.ImportObserver]:
    """An import observer first on ``sys.meta_path``, ``library`` and ``user`` importable
    (this test's own frames stand where devreload's worker would: library code); the
    modules ``names`` forgotten afterwards. ``own``: a folder that stands for devreload's
    (then importable instead of ``user``)."""
    sys.path[:0] = [str(library), str(user)]
    roots = [*library_roots(), str(library), str(Path(__file__).parent)]
    observer = preload.ImportObserver(roots, str(own or Path(preload.__file__).parent))
    sys.meta_path.insert(0, observer)
    try:
        yield observer
    finally:
        sys.meta_path.remove(observer)
        sys.path.remove(str(library))
        sys.path.remove(str(user))
        for name in names:
            sys.modules.pop(name, None)


def test_the_prefix_ends_at_the_first_import_after_app_code(tmp_path: Path) -> None:
    """Modules imported by a user module whose earlier statements are inert are pure; once
    a user function is on the stack, or devreload said the app ran, the prefix is over."""
    library = tmp_path / "lib"
    user = tmp_path / "user"
    library.mkdir()
    user.mkdir()
    (library / "dr_lib_one.py").write_text("VALUE = 1\n")
    (library / "dr_lib_two.py").write_text("VALUE = 2\n")
    (library / "dr_lib_three.py").write_text("VALUE = 3\n")
    (user / "dr_user_app.py").write_text(textwrap.dedent("""\
        import dr_lib_one


        def build():
            import dr_lib_two
            return dr_lib_two.VALUE
        """))
    names = ("dr_lib_one", "dr_lib_two", "dr_lib_three", "dr_user_app")
    with observing(library, user, names) as observer:
        user_app = importlib.import_module("dr_user_app")

        assert observer.preloadable("dr_lib_one"), observer.ended
        assert observer.ended is None
        user_app.build()
        assert not observer.preloadable("dr_lib_two")
        assert observer.refusal("dr_lib_two").startswith("imported inside a call to build()")
        importlib.import_module("dr_lib_three")  # after the prefix, whoever imports it

        assert not observer.preloadable("dr_lib_three")


def test_what_devreloads_server_imports_through_a_library_is_warm(tmp_path: Path) -> None:
    """While devreload starts the server, what the server (a library) imports for it is
    warm: the next worker imports it before the app. The same library code run by the
    app's own code is not."""
    library, own, user = tmp_path / "lib", tmp_path / "own", tmp_path / "user"
    for folder in (library, own, user):
        folder.mkdir()
    (library / "dr_srv.py").write_text(
        "import importlib\n\ndef load(name):\n    return importlib.import_module(name)\n")
    (library / "dr_lazy_a.py").write_text("A = 1\n")
    (library / "dr_lazy_b.py").write_text("B = 1\n")
    (library / "dr_lazy_c.py").write_text("C = 1\n")
    (own / "dr_own_runner.py").write_text(
        "import importlib\nimport dr_srv\n\ndef run():\n    return dr_srv.load('dr_lazy_a')\n"
        "\ndef backend():\n    return importlib.import_module('dr_lazy_c')\n")
    (user / "dr_user_calls.py").write_text(
        "import dr_srv\n\ndef run():\n    return dr_srv.load('dr_lazy_b')\n")
    sys.path[:0] = [str(library), str(own), str(user)]
    observer = preload.ImportObserver([*library_roots(), str(library)], str(own))
    sys.meta_path.insert(0, observer)
    names = ("dr_srv", "dr_lazy_a", "dr_lazy_b", "dr_lazy_c", "dr_own_runner", "dr_user_calls")
    try:
        runner = importlib.import_module("dr_own_runner")
        calls = importlib.import_module("dr_user_calls")
        observer.end("the app was loaded")
        runner.backend()  # devreload's own import_module: warm even before the server starts
        assert "dr_lazy_c" in observer.warm
        observer.server_starting = True
        runner.run()
        calls.run()
        assert "dr_lazy_a" in observer.warm
        assert "dr_lazy_b" not in observer.warm
    finally:
        sys.meta_path.remove(observer)
        for folder in (library, own, user):
            sys.path.remove(str(folder))
        for name in names:
            sys.modules.pop(name, None)


def test_what_a_library_body_imports_through_its_own_calls_is_warm(tmp_path: Path) -> None:
    """A library that devreload imports may call library functions in its body that import
    more (uvicorn calls ``multiprocessing.allow_connection_pickling()``): that is part of
    its import, warm too. A library function devreload itself calls is not."""
    library, own = tmp_path / "lib", tmp_path / "own"
    for folder in (library, own):
        folder.mkdir()
    (library / "dr_helper.py").write_text(
        "import importlib\n\ndef load(name):\n    return importlib.import_module(name)\n")
    (library / "dr_body.py").write_text("import dr_helper\n\ndr_helper.load('dr_lazy_d')\n")
    (library / "dr_lazy_d.py").write_text("D = 1\n")
    (library / "dr_lazy_e.py").write_text("E = 1\n")
    (own / "dr_own_backend.py").write_text(
        "import importlib\nimport dr_helper\n\ndef backend():\n"
        "    return importlib.import_module('dr_body')\n\ndef prepare():\n"
        "    return dr_helper.load('dr_lazy_e')\n")
    names = ("dr_helper", "dr_body", "dr_lazy_d", "dr_lazy_e", "dr_own_backend")
    with observing(library, own, names, own=own) as observer:
        own_module = importlib.import_module("dr_own_backend")
        observer.end("the app was loaded")
        own_module.backend()
        own_module.prepare()
        assert "dr_body" in observer.warm and "dr_lazy_d" in observer.warm
        assert "dr_lazy_e" not in observer.warm


def test_a_lazy_attribute_of_a_library_is_in_the_prefix_until_the_statement_calls(
    tmp_path: Path,
) -> None:
    """``class Settings(lazylib.Base)`` looks up ``lazylib.Base`` before it calls anything:
    the module a PEP 562 ``__getattr__`` imports for it is pure; what the class creation
    then imports (a metaclass's lazy import) is not."""
    library, user = tmp_path / "lib", tmp_path / "user"
    (library / "dr_lazylib").mkdir(parents=True)
    user.mkdir()
    (library / "dr_lazylib" / "__init__.py").write_text(textwrap.dedent("""\
        import importlib

        def __getattr__(name):
            return importlib.import_module(".base", __name__).Base
        """))
    (library / "dr_lazylib" / "base.py").write_text(textwrap.dedent("""\
        class Meta(type):
            def __new__(mcs, name, bases, namespace):
                if bases:  # a model of the app's
                    import dr_lazylib.fields  # noqa: F401
                return super().__new__(mcs, name, bases, namespace)

        class Base(metaclass=Meta):
            pass
        """))
    (library / "dr_lazylib" / "fields.py").write_text("FIELDS = 1\n")
    (user / "dr_user_models.py").write_text(textwrap.dedent("""\
        import dr_lazylib

        NAME = "models"

        class Settings(dr_lazylib.Base):
            debug = True
        """))
    names = ("dr_lazylib", "dr_lazylib.base", "dr_lazylib.fields", "dr_user_models")
    with observing(library, user, names) as observer:
        importlib.import_module("dr_user_models")
        assert observer.preloadable("dr_lazylib")
        assert observer.preloadable("dr_lazylib.base"), observer.refusal("dr_lazylib.base")
        assert not observer.preloadable("dr_lazylib.fields")
        assert "dr_user_models.py:5" in observer.refusal("dr_lazylib.fields")


@pytest.mark.parametrize(
    ("statement", "pure"),
    [
        ("class A(lazy.Base):\n    pass\n", True),
        ("@decorate\nclass A(lazy.Base):\n    pass\n", True),
        ("app = make(lazy.Base)\n", True),
        ("app = make(0) or lazy.Base\n", False),
        ("class A(lazy.Base if FLAG else lazy.Other):\n    pass\n", False),
    ],
)
def test_a_statement_is_caught_before_its_first_call(
    tmp_path: Path, statement: str, pure: bool
) -> None:
    """Only loads ran in the statement so far (its first call, jump or store is ahead)."""
    import types

    path = tmp_path / "stmt.py"
    path.write_text("import lazy\nX = 1\n" + statement)
    seen: list[bool] = []

    class Lazy(types.ModuleType):
        def __getattr__(self, name: str) -> type:
            seen.append(inert.inert_so_far(sys._getframe(1)))
            return type(name, (), {})

    namespace = {"lazy": Lazy("lazy"), "make": lambda x: x, "FLAG": True,
                 "decorate": lambda c: c, "__name__": "stmt"}
    exec(compile(path.read_text().replace("import lazy\n", "\n"), str(path), "exec"),
         namespace)
    assert seen[0] is pure


def test_each_import_is_judged_by_the_line_its_module_body_is_at(tmp_path: Path) -> None:
    """The frames under a module body are checked once for all its imports; the body itself
    at every import: a call between two imports ends the prefix, in a nested module too."""
    library, user = tmp_path / "lib", tmp_path / "user"
    library.mkdir()
    user.mkdir()
    for name in ("dr_cp_a", "dr_cp_b", "dr_cp_c", "dr_cp_d"):
        (library / f"{name}.py").write_text("VALUE = 1\n")
    (user / "dr_cp_inner.py").write_text("import dr_cp_b\n")
    (user / "dr_cp_outer.py").write_text(textwrap.dedent("""\
        import dr_cp_a
        import dr_cp_inner
        import dr_cp_c
        VALUES = list(range(3))
        import dr_cp_d
        """))
    names = ("dr_cp_a", "dr_cp_b", "dr_cp_c", "dr_cp_d", "dr_cp_inner", "dr_cp_outer")
    with observing(library, user, names) as observer:
        importlib.import_module("dr_cp_outer")
        assert [observer.preloadable(n) for n in ("dr_cp_a", "dr_cp_b", "dr_cp_c")] == [True] * 3
        assert not observer.preloadable("dr_cp_d")
        assert "dr_cp_outer.py:4" in observer.refusal("dr_cp_d")


class _ExecForwarding:
    """An audit hook for this process's life (hooks cannot be removed): it passes ``exec``
    to the observer of the test under way, as the worker's hook does."""

    def __init__(self) -> None:
        self.observer: preload.ImportObserver | None = None
        sys.addaudithook(self.hook)

    def hook(self, event: str, args: tuple[object, ...]) -> None:
        if event == "exec" and self.observer is not None:
            self.observer.executing(args[0])


@pytest.fixture(scope="session")
def exec_forwarding() -> _ExecForwarding:
    return _ExecForwarding()


@pytest.mark.parametrize(("plain", "pure"), [("X = 0\n", True), ("X = [0]\n", False)])
def test_a_finished_module_of_plain_code_is_judged_by_the_code_that_ran(
    tmp_path: Path, exec_forwarding: _ExecForwarding, plain: str, pure: bool
) -> None:
    """A module body compiled to imports and constants only is inert by its code; its
    source is not read again (here it changed on disk meanwhile). Other code goes to the
    rules on its source."""
    library, user = tmp_path / "lib", tmp_path / "user"
    library.mkdir()
    user.mkdir()
    (library / "dr_pl_lib.py").write_text("VALUE = 1\n")
    leaf = user / "dr_pl_leaf.py"
    leaf.write_text(plain)
    names = ("dr_pl_lib", "dr_pl_leaf")
    with observing(library, user, names) as observer:
        exec_forwarding.observer = observer
        try:
            importlib.import_module("dr_pl_leaf")
            leaf.write_text("print('a call')\n")
            importlib.import_module("dr_pl_lib")
        finally:
            exec_forwarding.observer = None
        assert observer.preloadable("dr_pl_lib") is pure, observer.ended


def test_the_apps_own_submodules_are_not_judged_as_imported_but_once_they_ran(
    tmp_path: Path, exec_forwarding: _ExecForwarding
) -> None:
    """A submodule of the app's own package is never preloaded, so its import is not
    judged; one that ran code still ends the prefix before the next library's import."""
    library, user = tmp_path / "lib", tmp_path / "user"
    library.mkdir()
    (user / "dr_pkg").mkdir(parents=True)
    (library / "dr_pk_one.py").write_text("VALUE = 1\n")
    (library / "dr_pk_two.py").write_text("VALUE = 2\n")
    (user / "dr_pkg" / "__init__.py").write_text("from dr_pkg import inert, active\n")
    (user / "dr_pkg" / "inert.py").write_text("import dr_pk_one\nX = 1\n")
    (user / "dr_pkg" / "active.py").write_text("X = len('a call')\n")
    names = ("dr_pk_one", "dr_pk_two", "dr_pkg", "dr_pkg.inert", "dr_pkg.active")
    with observing(library, user, names) as observer:
        exec_forwarding.observer = observer
        try:
            importlib.import_module("dr_pkg")
            assert observer.preloadable("dr_pk_one"), observer.ended
            assert observer.ended is None, "nothing is judged before a library's import"
            importlib.import_module("dr_pk_two")
        finally:
            exec_forwarding.observer = None
        assert not observer.preloadable("dr_pk_two")
        assert observer.ended is not None and "dr_pkg/active.py" in observer.ended
        assert not any(name.startswith("dr_pkg.") for name in (*observer.pure, *observer.warm))
