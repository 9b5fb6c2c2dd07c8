"""What a devreload worker adds to an app's own imports: a generated tree of modules
imported by a plain interpreter and by a worker of ``devreload run``, and the ratio.

    python benchmarks/import_cost.py [--modules 2000] [--repeat 5]

Not a test: a measurement, printed. Bytecode is compiled once before the rounds, as a
developer's tree has it, so the rounds measure importing, not compiling.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

PACKAGES = 20
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
        (package / "__init__.py").write_text("")
        (package / "m0.py").write_text('"""The first module of its package."""\n')
        for m in range(1, per_package):
            (package / f"m{m}.py").write_text(MODULE.format(n=m, previous=f"m{m - 1}"))
        lines.append(f"import pkg{p}.m{per_package - 1}")
    (root / "entry.py").write_text("\n".join(lines) + "\n")
    (root / "measure.py").write_text(MEASURE)


def seconds(argv: list[str], root: Path) -> float:
    env = dict(os.environ, PYTHONPATH=str(root))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    done = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    found = re.search(r"IMPORT_SECONDS ([\d.]+)", done.stdout)
    if found is None:
        raise SystemExit(f"{' '.join(argv)} printed no time:\n{done.stdout}{done.stderr}")
    return float(found[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modules", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        make_tree(root, options.modules)
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(root)], check=True)
        plain_argv = [sys.executable, "measure.py"]
        worker_argv = [sys.executable, "-m", "devreload", "run", "-q", "measure.py"]
        plain, worker = [], []
        for _ in range(options.repeat):  # alternated, so that load hits both alike
            plain.append(seconds(plain_argv, root))
            worker.append(seconds(worker_argv, root))
    p, w = statistics.median(plain), statistics.median(worker)
    print(f"{options.modules} modules, median of {options.repeat}: plain {p * 1000:.0f} ms, "
          f"devreload worker {w * 1000:.0f} ms, ratio {w / p:.2f} "
          f"(plain {min(plain) * 1000:.0f}-{max(plain) * 1000:.0f} ms, "
          f"worker {min(worker) * 1000:.0f}-{max(worker) * 1000:.0f} ms)")


if __name__ == "__main__":
    main()
