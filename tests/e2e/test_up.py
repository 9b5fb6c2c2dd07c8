"""``devreload up``: a Procfile's stack under one monitor, each process restarted only when
its own files change, the web app answering throughout, everything ended together."""

from __future__ import annotations

import re
import signal
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import (
    HAS_PROC,
    Proc,
    inotify_instances,
    needs_subreaper,
    pid_alive,
    save_like_editor,
    wait_until,
)
from served import SERVING_RE, wait_body

Start = Callable[..., Proc]
WORKER_RE = r"worker +\| WORKER READY pid=(\d+) jobs=(\w+) shared=(\w+) port=(\d+) greeting=(.*)"
TICKER_RE = r"ticker +\| TICKER pid=(\d+) port=(\d+)"


class Requests:
    """A client that asks the web app again and again, and counts what failed."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.done = threading.Event()
        self.answered = 0
        self.failed: list[str] = []
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self) -> None:
        while not self.done.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=10) as response:
                    response.read()
                self.answered += 1
            except (OSError, urllib.error.URLError) as exc:
                self.failed.append(repr(exc))

    def stop(self) -> None:
        self.done.set()
        self.thread.join()


def up(spawn: Start, project: Path, *args: str) -> Proc:
    return spawn([sys.executable, "-m", "devreload", "up", *args], apps=["stack"],
                 cwd=project / "stack", env={"PYTHONPATH": str(project / "stack")})


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    save_like_editor(path, text.replace(old, new))


def web_pid(url: str, pattern: str = "") -> int:
    return int(wait_body(url, pattern).split()[2])


def test_each_process_restarts_only_when_its_own_files_change(
    spawn: Start, project: Path
) -> None:
    proc = up(spawn, project)
    url = proc.wait_for(SERVING_RE, start=0)[1]
    worker = proc.wait_for(WORKER_RE, start=0)
    ticker = int(proc.wait_for(TICKER_RE, start=0)[1])
    assert worker[4] == "5100" and worker[5] == "hello there", "PORT per process, and .env"
    assert "loaded .env" in proc.output
    web = web_pid(url, "^v1 s1 .* hello there$")
    requests = Requests(url)
    stack = project / "stack"
    try:
        edit(stack / "jobs.py", '"j1"', '"j2"')
        moved = proc.wait_for(r"WORKER READY pid=(\d+) jobs=j2", start=0)
        assert web_pid(url) == web, "the web process did not restart for the worker's jobs"

        edit(stack / "webapp.py", '"v1"', '"v2"')
        new_web = web_pid(url, "^v2 ")
        assert new_web != web
        mark = len(proc.lines)
        edit(stack / "shared.py", '"s1"', '"s2"')
        wait_body(url, "^v2 s2 ")
        proc.wait_for(r"WORKER READY pid=(\d+) jobs=j2 shared=s2", start=0)
        # The new web worker may answer before the monitor has logged its restart.
        proc.wait_for(r"web: shared\.py changed; restarted in", start=mark)
    finally:
        requests.stop()
    assert requests.failed == [], f"{len(requests.failed)} failed of {requests.answered}"
    assert requests.answered > 0
    assert proc.count(r"webapp\.py changed", 0) == 1, "the worker was not restarted for views"
    assert proc.count(r"jobs\.py changed", 0) == 1
    assert proc.count(r"devreload \| shared\.py changed, used by web and worker: each restarts",
                      mark) == 1, "one line says which and why"
    assert proc.count(r"(web|worker): shared\.py changed; restarted in", mark) == 2
    assert proc.count(r"TICKER pid=", 0) == 1 and pid_alive(ticker), "the shell loop ran on"
    wait_until(lambda: not pid_alive(int(worker[1])) and not pid_alive(int(moved[1])))
    if HAS_PROC:
        assert inotify_instances(proc.pid) == 1, "one file monitor for the whole stack"
    tree = proc.tree()
    proc.signal(signal.SIGINT)
    assert proc.wait_exit(timeout=5) == 0
    wait_until(lambda: not any(pid_alive(p) for p in [*tree, ticker]), timeout=5)


@needs_subreaper
def test_a_killed_monitor_takes_the_whole_stack_with_it(spawn: Start, project: Path) -> None:
    proc = up(spawn, project)
    url = proc.wait_for(SERVING_RE, start=0)[1]
    worker = int(proc.wait_for(WORKER_RE, start=0)[1])
    ticker = int(proc.wait_for(TICKER_RE, start=0)[1])
    web = web_pid(url)
    tree = proc.tree()
    proc.signal(signal.SIGKILL)
    wait_until(lambda: not any(pid_alive(p) for p in [*tree, worker, ticker, web]), timeout=3)


def test_only_the_processes_named_run(spawn: Start, project: Path) -> None:
    proc = up(spawn, project, "worker")
    proc.wait_for(WORKER_RE)
    assert "serving on" not in proc.output and "TICKER" not in proc.output
    proc.signal(signal.SIGTERM)
    assert proc.wait_exit(timeout=5) == 0


def test_a_process_that_exits_0_is_reported_and_the_others_run_on(
    spawn: Start, project: Path
) -> None:
    (project / "Procfile").write_text(
        "once: echo DONE\nloop: python -c \"import time; print('LOOPING', flush=True); "
        "time.sleep(60)\"\n")
    proc = spawn([sys.executable, "-m", "devreload", "up"])
    proc.wait_for(r"once +\| DONE", start=0)
    proc.wait_for(r"devreload \| once: exited; not restarted", start=0)
    proc.wait_for(r"loop +\| LOOPING", start=0)
    assert proc.returncode is None
    proc.signal(signal.SIGINT)
    assert proc.wait_exit(timeout=5) == 0


@pytest.mark.parametrize(
    ("procfile", "args", "line"),
    [
        (None, (), r"^devreload up: .*Procfile: not found, nor a \[tool\.devreload\.processes\]"),
        ("", (), r"^devreload up: .*Procfile: names no process$"),
        ("web python app.py\n", (), r"^devreload up: .*Procfile:1: not a 'name: command' line"),
        ("web:\n", (), r"^devreload up: .*Procfile:1: 'web' has no command$"),
        ("a: x\na: y\n", (), r"^devreload up: .*Procfile:2: 'a' is named twice"),
        ("a: x\n", ("b",), r"^devreload up: .*Procfile: no process named 'b' \(it has: a\)$"),
    ],
    ids=["missing", "empty", "malformed", "no-command", "duplicate", "unknown-name"],
)
def test_a_bad_procfile_is_one_line_and_exit_2(
    spawn: Start, project: Path, procfile: str | None, args: tuple[str, ...], line: str
) -> None:
    if procfile is not None:
        (project / "Procfile").write_text(procfile)
    proc = spawn([sys.executable, "-m", "devreload", "up", *args])
    assert proc.wait_exit() == 2
    assert len(proc.lines) == 1, proc.output
    proc.wait_for(line, start=0)


def test_a_crashed_process_waits_for_its_fix_while_the_others_run_on(
    spawn: Start, project: Path
) -> None:
    (project / "Procfile").write_text(
        "broken: python broken.py\nloop: python loop.py\n")
    (project / "broken.py").write_text("raise RuntimeError('not yet')\n")
    (project / "loop.py").write_text(
        "import os, time\nprint(f'LOOP pid={os.getpid()}', flush=True)\ntime.sleep(60)\n")
    proc = spawn([sys.executable, "-m", "devreload", "up"])
    loop = int(proc.wait_for(r"loop +\| LOOP pid=(\d+)", start=0)[1])
    proc.wait_for(r"devreload \| broken: worker exited with code 1; waiting for a change",
                  start=0)
    save_like_editor(project / "broken.py", "print('FIXED', flush=True)\n")
    proc.wait_for(r"broken +\| FIXED", start=0)
    proc.wait_for(r"devreload \| broken: broken\.py changed; restarted", start=0)
    assert pid_alive(loop) and proc.count(r"LOOP pid=", 0) == 1
    proc.signal(signal.SIGINT)
    assert proc.wait_exit(timeout=5) == 0
    assert not pid_alive(loop)


def test_a_supervised_process_restarts_on_the_globs_it_names(
    spawn: Start, project: Path
) -> None:
    (project / "pyproject.toml").write_text(
        "[tool.devreload.processes]\n"
        'assets = {command = "echo BUILT pid=$$; exec sleep 60", watch = ["assets/*.css"]}\n'
        'web = "python -c \\"import time; time.sleep(60)\\""\n')
    (project / "assets").mkdir()
    (project / "assets" / "site.css").write_text("body {}\n")
    proc = spawn([sys.executable, "-m", "devreload", "up"])
    first = int(proc.wait_for(r"assets +\| BUILT pid=(\d+)", start=0)[1])
    save_like_editor(project / "assets" / "site.css", "body { color: red }\n")
    proc.wait_for(r"devreload \| assets: assets/site\.css changed; restarted", start=0)
    wait_until(lambda: proc.count(r"BUILT pid=", 0) == 2)
    second = int(re.findall(r"BUILT pid=(\d+)", proc.output)[1])
    assert second != first and not pid_alive(first) and pid_alive(second)
    proc.signal(signal.SIGTERM)
    assert proc.wait_exit(timeout=5) == 0
    wait_until(lambda: not pid_alive(second), timeout=5)


def test_a_cooperative_process_finishes_its_job_before_it_restarts(
    spawn: Start, project: Path
) -> None:
    (project / "pyproject.toml").write_text(
        "[tool.devreload.processes]\n"
        'jobs = {command = "python app_cooperative.py", cooperative = true}\n')
    proc = spawn([sys.executable, "-m", "devreload", "up"], apps=["app_cooperative.py"])
    first = int(proc.wait_for(r"jobs +\| READY pid=(\d+) token=one", start=0)[1])
    proc.wait_for(r"JOB 1 start", start=0)
    app = project / "app_cooperative.py"
    save_like_editor(app, app.read_text().replace('"one"', '"two"'))
    proc.wait_for(r"jobs +\| READY pid=(\d+) token=two", start=0)
    own = [line for line in proc.lines if f"pid={first}" in line and line.startswith("jobs")]
    leaving = next(i for i, line in enumerate(own) if "LEAVING" in line)
    assert "done" in own[leaving - 1], "it left after a whole job, not in the middle"
    assert proc.count(rf"JOB \d+ start pid={first}", 0) == proc.count(
        rf"JOB \d+ done pid={first}", 0)
    proc.signal(signal.SIGINT)
    assert proc.wait_exit(timeout=5) == 0
