"""What a devreload worker adds to an app's own imports: a generated tree of modules
imported by a plain interpreter and by a worker of ``devreload run``, and the ratio.

    python benchmarks/import_cost.py [--modules 2000] [--repeat 5] [--parts] [--fresh]

``--parts`` also imports the tree in a plain interpreter with one of the worker's
mechanisms installed at a time (the import observer, the audit hook of files read, the
module scanner's thread), to say what each costs.

Not a test: a measurement, printed. Bytecode is compiled once before the rounds, as a
developer's tree has it, so the rounds measure importing, not compiling. ``--fresh``
measures a tree just cloned instead: no bytecode, every module compiled in every round,
and none written (``PYTHONDONTWRITEBYTECODE``, in both interpreters: what writing costs
depends on the filesystem more than on anything here).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

PACKAGES = 20
#: One mechanism of the worker at a time, installed in a plain interpreter before the tree
#: is imported (then ``measure.py`` runs as the worker would run it).
PARTS = {
    "observer": "from devreload.worker import preload\n"
                "from devreload.worker.modules import library_roots\n"
                "from devreload.worker.tracebacks import PACKAGE_DIR\n"
                "preload.observe(library_roots(), PACKAGE_DIR)\n",
    "audit hook": "import os, sys\n"
                  "from devreload.worker.modules import library_roots\n"
                  "from devreload.worker.reads import ReadFiles\n"
                  "files = ReadFiles(os.getcwd(), (*library_roots(), sys.prefix))\n"
                  "sys.addaudithook(files.audit_hook())\n",
    "scanner": "import threading\n"
               "from devreload.worker.modules import ModuleScanner\n"
               "scanner = ModuleScanner()\n"
               "def scan():\n"
               "    while True:\n"
               "        threading.Event().wait(0.25)\n"
               "        scanner.scan()\n"
               "threading.Thread(target=scan, daemon=True).start()\n",
}
RUN_MEASURE = ("import runpy, sys\nsys.argv = ['measure.py']\n"
               "runpy.run_path('measure.py', run_name='__main__')\n")
MEASURE = """\
import time
start = time.perf_counter()
import entry
print(f"IMPORT_SECONDS {time.perf_counter() - start:.6f}", flush=True)
"""
MODULE = """\
\"\"\"Module {n}: a little of what real modules hold.\"\"\"
import dataclasses
import functools

from . import {previous}

CONSTANT_{n} = {n}


@dataclasses.dataclass
class Record{n}:
    name: str = "{n}"
    size: int = {n}

    def describe(self) -> str:
        return f"{{self.name}}:{{self.size}}"


@functools.lru_cache
def compute_{n}(x: int) -> int:
    return x * {n} + len({previous}.__name__)
"""


def make_tree(root: Path, modules: int) -> None:
    per_package = max(1, modules // PACKAGES)
    lines = []
    for p in range(PACKAGES):
        package = root / f"pkg{p}"
        package.mkdir()
        # In order, so that each module's import of the one before finds it loaded: the
        # import depth stays at two, as in real packages.
        (package / "__init__.py").write_text(
            "".join(f"from . import m{m}\n" for m in range(per_package)))
        (package / "m0.py").write_text('"""The first module of its package."""\n')
        for m in range(1, per_package):
            (package / f"m{m}.py").write_text(MODULE.format(n=m, previous=f"m{m - 1}"))
        lines.append(f"import pkg{p}")
    (root / "entry.py").write_text("\n".join(lines) + "\n")
    (root / "measure.py").write_text(MEASURE)


def seconds(argv: list[str], root: Path, fresh: bool = False) -> float:
    env = dict(os.environ, PYTHONPATH=str(root))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if fresh:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        for cache in list(root.rglob("__pycache__")):
            shutil.rmtree(cache)
    done = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    found = re.search(r"IMPORT_SECONDS ([\d.]+)", done.stdout)
    if found is None:
        raise SystemExit(f"{' '.join(argv)} printed no time:\n{done.stdout}{done.stderr}")
    return float(found[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modules", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--parts", action="store_true", help="each mechanism on its own too")
    parser.add_argument("--fresh", action="store_true",
                        help="no bytecode: every module compiled, none written")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        make_tree(root, options.modules)
        if not options.fresh:
            subprocess.run([sys.executable, "-m", "compileall", "-q", str(root)], check=True)
        runs = {"plain": [sys.executable, "measure.py"],
                "devreload worker": [sys.executable, "-m", "devreload", "run", "-q",
                                     "measure.py"]}
        if options.parts:
            runs.update({f"plain + {part}": [sys.executable, "-c", prelude + RUN_MEASURE]
                         for part, prelude in PARTS.items()})
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(options.repeat):  # alternated, so that load hits all alike
            for name, argv in runs.items():
                times[name].append(seconds(argv, root, options.fresh))
    plain, fastest = statistics.median(times["plain"]), min(times["plain"])
    how = "compiled, not written" if options.fresh else "from bytecode"
    print(f"{options.modules} modules imported ({how}), median of {options.repeat} (min-max):")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"  {name:<22} {median * 1000:6.0f} ms  x{median / plain:.2f}  "
              f"(min {min(samples) * 1000:.0f} ms, x{min(samples) / fastest:.2f}; "
              f"max {max(samples) * 1000:.0f} ms)")


if __name__ == "__main__":
    main()
