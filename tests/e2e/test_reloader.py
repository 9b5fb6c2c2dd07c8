"""End-to-end tests of the reloader core: a real monitor, real workers, real files and signals.

Each fixture app prints ``READY pid=<pid> token=<token> ...`` once it has started; a new READY
line with a new pid is a restart. Tests change files the way editors do and wait (with a
deadline) for the outcome; "exactly N restarts" is proven by a later, real change whose restart
must be the next one, never by sleeping.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import termios
import time
from pathlib import Path

import pytest
from helpers import (
    Proc,
    Spawn,
    descendants_of,
    gone,
    needs_fork,
    pids_alive,
    restart_with,
    save_like_editor,
    token_src,
    wait_until,
    write_atomic,
)

BASIC = ["app_basic.py", "helper.py", "ignored_mod.py"]
RELOAD_LINE = r"changed.*restarted in \d+ ms"
# How a stopped monitor may end: cleanly (0), or by the signal it was sent.
CLEAN_STOP = {0, 128 + signal.SIGTERM, -signal.SIGTERM, 128 + signal.SIGINT, -signal.SIGINT, 130}


def reload_lines(proc: Proc, mark: int, count: int) -> list[str]:
    """Wait until the monitor has logged ``count`` reload lines after line ``mark`` (they may
    come a moment after the new worker's READY line); return every such line."""
    wait_until(lambda: proc.count(RELOAD_LINE, start=mark) >= count)
    return [line for line in proc.lines[mark:] if re.search(RELOAD_LINE, line)]


# --------------------------------------------------------------------------- what is watched


def test_change_to_imported_module_restarts(project: Path, devreload_run: Spawn) -> None:
    proc = devreload_run("app_basic.py", apps=BASIC)
    first = proc.wait_ready()
    assert first.token == "one"
    mark = proc.mark()
    restart_with(proc, project / "helper.py", "two")
    # One log line names the file (relative to the cwd) and the restart time.
    (line,) = reload_lines(proc, mark, 1)
    assert re.search(r"(^|\s)helper\.py changed; restarted in \d+ ms$", line), line
    assert str(project) not in line
    assert proc.returncode is None


def test_late_imported_module_is_watched(project: Path, devreload_run: Spawn) -> None:
    proc = devreload_run("app_late.py", apps=["app_late.py", "late_helper.py"])
    first = proc.wait_ready()
    write_atomic(project / "go", "")
    late = proc.wait_for(r"^LATE pid=(\d+) token=(\S+)")
    assert (int(late[1]), late[2]) == (first.pid, "late-one")
    save_like_editor(project / "late_helper.py", token_src("late-two"))
    second = proc.wait_ready()
    assert second.pid != first.pid
    late = proc.wait_for(r"^LATE pid=(\d+) token=(\S+)")
    assert (int(late[1]), late[2]) == (second.pid, "late-two")


def test_watched_extra_file(project: Path, devreload_run: Spawn) -> None:
    (project / "data.txt").write_text("v1")
    proc = devreload_run("-w", "data.txt", "app_basic.py", "data.txt", apps=BASIC)
    first = proc.wait_ready()
    assert "data.txt=v1" in first.rest
    save_like_editor(project / "data.txt", "v2")
    second = proc.wait_ready()
    assert second.pid != first.pid
    assert "data.txt=v2" in second.rest


def test_glob_catches_new_file(project: Path, devreload_run: Spawn) -> None:
    (project / "conf").mkdir()
    (project / "conf" / "base.ini").write_text("[a]\n")
    proc = devreload_run("-w", "conf/*.ini", "app_basic.py", "conf/new.ini", apps=BASIC)
    first = proc.wait_ready()
    assert "conf/new.ini=<missing>" in first.rest
    write_atomic(project / "conf" / "new.ini", "fresh")
    second = proc.wait_ready()
    assert second.pid != first.pid
    assert "conf/new.ini=fresh" in second.rest


@pytest.mark.parametrize("pattern", ["ignored_mod.py", "*/ignored_*.py"])
def test_ignored_file_does_not_restart(project: Path, devreload_run: Spawn, pattern: str) -> None:
    proc = devreload_run("-x", pattern, "app_basic.py", apps=BASIC)
    first = proc.wait_ready()
    assert "ignored=1" in first.rest
    mark = proc.mark()
    save_like_editor(project / "ignored_mod.py", "VALUE = 2\n")
    # A real change now: its restart must be the only one, and its log line must not count
    # the ignored file (which a coalescing quiet window would otherwise hide).
    restart_with(proc, project / "helper.py", "two")
    (line,) = reload_lines(proc, mark, 1)
    assert "helper.py" in line
    assert "ignored_mod" not in line
    assert "more" not in line
    # And a second real change gives exactly the next restart: no late restart came between.
    restart_with(proc, project / "helper.py", "three")
    assert [r.token for r in proc.readies()] == ["one", "two", "three"]
    assert len(reload_lines(proc, mark, 2)) == 2


@pytest.mark.parametrize("mode", ["rename", "recreate"])
def test_editor_saves_each_restart_once(project: Path, devreload_run: Spawn, mode: str) -> None:
    """Rename-over (vim, JetBrains) and delete-and-recreate: the watch survives the new
    inode, so the second save restarts too, and each save gives exactly one restart."""
    proc = devreload_run("app_basic.py", apps=BASIC)
    proc.wait_ready()
    restart_with(proc, project / "helper.py", "two", mode)
    restart_with(proc, project / "helper.py", "three", mode)
    restart_with(proc, project / "helper.py", "four", "inplace")
    assert [r.token for r in proc.readies()] == ["one", "two", "three", "four"]


# --------------------------------------------------------------------------- restart policy


def test_exit_75_restarts_at_once(project: Path, devreload_run: Spawn) -> None:
    proc = devreload_run("app_exit75.py", apps=["app_exit75.py"])
    exiting = proc.wait_for(r"^EXITING code=75 pid=(\d+)")
    started = time.monotonic()
    ready = proc.wait_ready()
    assert time.monotonic() - started < 5
    assert ready.token == "after75"
    assert ready.pid != int(exiting[1])
    assert proc.returncode is None
    assert proc.count("exited with code") == 0  # a requested restart is not a crash


def test_worker_exit_0_ends_monitor_with_0(project: Path, devreload_run: Spawn) -> None:
    proc = devreload_run("app_exit0.py", apps=["app_exit0.py"])
    ready = proc.wait_ready()
    assert proc.wait_exit(10) == 0
    gone([ready.pid])


@pytest.mark.parametrize(
    "broken", ["raise RuntimeError('boom')\n", "def broken(:\n"], ids=["exception", "syntax"]
)
def test_crash_then_fix(project: Path, devreload_run: Spawn, broken: str) -> None:
    """A worker dying on import waits (no thrashing) for the file in its traceback to be fixed."""
    (project / "broken_mod.py").write_text(broken)
    proc = devreload_run("app_crash.py", apps=["app_crash.py"])
    proc.wait_for(r"worker exited with code \d+; waiting for a change")
    assert proc.readies() == []
    assert proc.returncode is None
    save_like_editor(project / "broken_mod.py", token_src("fixed"))
    ready = proc.wait_ready()
    assert ready.token == "fixed"
    assert proc.count(r"worker exited with code") == 1
    assert "broken_mod.py" in proc.output  # the traceback was shown


def test_a_save_that_breaks_the_app_says_restarted_once(
    project: Path, devreload_run: Spawn
) -> None:
    """The forked worker fails, a fresh one is tried to tell whose failure it is: one
    save, one "restarted" line, one traceback, one exit line."""
    (project / "broken_mod.py").write_text(token_src("one"))
    proc = devreload_run("app_crash.py", apps=["app_crash.py"])
    proc.wait_ready()
    mark = proc.mark()
    save_like_editor(project / "broken_mod.py", "raise RuntimeError('boom')\n")
    proc.wait_for(r"worker exited with code 1; waiting for a change", start=mark)
    assert proc.count(RELOAD_LINE, start=mark) == 1
    assert proc.count(r"RuntimeError: boom", start=mark) == 1
    fixed = proc.mark()
    save_like_editor(project / "broken_mod.py", token_src("two"))
    assert proc.wait_ready().token == "two"
    proc.wait_for(RELOAD_LINE, start=fixed)
    assert proc.count(RELOAD_LINE, start=mark) == 2


def test_two_saves_in_one_second_that_keep_the_size_are_both_imported(
    project: Path, devreload_run: Spawn
) -> None:
    """Python trusts cached bytecode whose recorded mtime (whole seconds) and size match
    the source: the second of two such saves was imported as the first."""
    proc = devreload_run("-v", "app_basic.py", apps=BASIC)
    proc.wait_ready()
    proc.wait_for(r"^devreload: watching \d+ paths?$")  # helper.py is watched from here on
    helper = project / "helper.py"
    second = int(time.time())
    for token in ("aaa", "bbb"):
        temporary = project / "helper.tmp"
        temporary.write_text(token_src(token))
        os.utime(temporary, (second, second))
        os.replace(temporary, helper)  # the editor's rename: the mtime comes along
        assert proc.wait_ready().token == token


def test_enter_on_a_terminal_restarts_a_crashed_worker(project: Path, devreload_run: Spawn) -> None:
    # It crashes until a file nobody watches appears: only Enter can bring it back.
    (project / "broken_mod.py").write_text(
        "import os\n\nif not os.path.exists('ok'):\n    raise RuntimeError('not ok')\n"
        "TOKEN = 'entered'\n"
    )
    proc = devreload_run("app_crash.py", apps=["app_crash.py"], tty=True)
    proc.wait_for(r"worker exited with code 1; waiting for a change \(or press Enter\)")
    write_atomic(project / "ok", "")
    proc.write("\r")
    assert proc.wait_ready().token == "entered"
    assert proc.count(r"worker exited with code") == 1


def test_sighup_reloads(project: Path, devreload_run: Spawn) -> None:
    proc = devreload_run("app_basic.py", apps=BASIC)
    first = proc.wait_ready()
    proc.signal(signal.SIGHUP)
    second = proc.wait_ready()
    assert second.pid != first.pid
    gone([first.pid])
    assert proc.returncode is None
    proc.signal(signal.SIGHUP)
    assert proc.wait_ready().pid not in (first.pid, second.pid)


def test_trigger_reload_from_worker(project: Path, devreload_run: Spawn) -> None:
    proc = devreload_run("app_api.py", apps=["app_api.py"])
    first = proc.wait_ready()
    assert "active=True" in first.rest
    write_atomic(project / "reload-request", "")
    proc.wait_for(rf"^TRIGGERING pid={first.pid}$")
    second = proc.wait_ready()
    assert second.pid != first.pid
    gone([first.pid])


def test_watch_files_from_worker(project: Path, devreload_run: Spawn) -> None:
    (project / "api-watched.txt").write_text("w1")
    proc = devreload_run("app_api.py", apps=["app_api.py"])
    first = proc.wait_ready()
    assert first.token == "w1"
    save_like_editor(project / "api-watched.txt", "w2")
    second = proc.wait_ready()
    assert (second.token, second.pid != first.pid) == ("w2", True)


def test_start_reloader_api_and_before_reload(project: Path, spawn: Spawn) -> None:
    proc = spawn(
        [sys.executable, "app_start_reloader.py"], apps=["app_start_reloader.py", "helper.py"]
    )
    monitor = int(proc.wait_for(r"^MONITOR pid=(\d+)")[1])
    assert monitor == proc.pid
    first = proc.wait_ready()
    assert first.pid != monitor
    assert "args=['a1'] kwargs=[('k', 'v')]" in first.rest
    assert not (project / "before_reload.log").exists()
    restart_with(proc, project / "helper.py", "two")
    # before_reload ran once, in the monitor, before the new worker started.
    assert (project / "before_reload.log").read_text().split() == [str(monitor)]
    restart_with(proc, project / "helper.py", "three")
    assert (project / "before_reload.log").read_text().split() == [str(monitor)] * 2


# --------------------------------------------------------------------------- stopping


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stop_signal_ends_every_process(project: Path, devreload_run: Spawn, sig: int) -> None:
    proc = devreload_run("app_child.py", apps=["app_child.py", "helper.py"])
    child = int(proc.wait_for(r"^CHILD pid=(\d+)")[1])
    worker = proc.wait_ready().pid
    assert pids_alive([proc.pid, worker, child]) == [proc.pid, worker, child]
    everything = {proc.pid, worker, child, *descendants_of(proc.pid)}  # a template, too
    if sig == signal.SIGINT:
        os.killpg(proc.pid, sig)  # Ctrl-C: the terminal signals the foreground process group
    else:
        proc.signal(sig)
    code = proc.wait_exit(10)
    assert code in CLEAN_STOP
    gone(sorted(everything))
    assert "Traceback" not in proc.output


def test_sigkill_to_monitor_leaves_no_orphan(project: Path, devreload_run: Spawn) -> None:
    proc = devreload_run("app_child.py", apps=["app_child.py", "helper.py"])
    child = int(proc.wait_for(r"^CHILD pid=(\d+)")[1])
    worker = proc.wait_ready().pid
    everything = {worker, child, *descendants_of(proc.pid)}
    proc.signal(signal.SIGKILL)
    assert proc.wait_exit(5) == -signal.SIGKILL
    gone(sorted(everything), timeout=5)


def test_worker_ignoring_sigterm_is_killed(project: Path, devreload_run: Spawn) -> None:
    proc = devreload_run(
        "--shutdown-interval", "0.5", "app_ignore_term.py", apps=["app_ignore_term.py", "helper.py"]
    )
    first = proc.wait_ready()
    started = time.monotonic()
    save_like_editor(project / "helper.py", token_src("two"))
    gone([first.pid], timeout=6)
    stopped_after = time.monotonic() - started
    second = proc.wait_ready()
    assert second.token == "two"
    # It was given its shutdown_interval, then killed.
    assert 0.45 <= stopped_after < 4, stopped_after


# --------------------------------------------------------------------------- terminal


def _terminal_sane(proc: Proc) -> None:
    assert proc.master_fd is not None
    lflag = termios.tcgetattr(proc.master_fd)[3]
    assert lflag & termios.ECHO, "terminal left without echo"
    assert lflag & termios.ICANON, "terminal left in raw mode"


def test_breakpoint_in_worker_over_a_terminal(project: Path, devreload_run: Spawn) -> None:
    proc = devreload_run("app_breakpoint.py", apps=["app_breakpoint.py"], tty=True)
    worker = proc.wait_ready().pid
    proc.wait_for_text(r"\(Pdb\) ")
    proc.write("p 6*7\r")
    proc.wait_for_text(r"\n42\n")
    proc.wait_for_text(r"\(Pdb\) ")
    proc.write("c\r")
    proc.wait_for(r"^AFTER BREAKPOINT x=6$")
    assert proc.returncode is None
    mark = len(proc.output)
    proc.write("\x03")  # Ctrl-C
    code = proc.wait_exit(10)
    assert code in CLEAN_STOP
    gone([worker])
    assert "Traceback" not in proc.output[mark:]
    _terminal_sane(proc)


def test_ctrl_c_at_pdb_prompt_leaves_terminal_sane(project: Path, devreload_run: Spawn) -> None:
    proc = devreload_run("app_breakpoint.py", apps=["app_breakpoint.py"], tty=True)
    worker = proc.wait_ready().pid
    proc.wait_for_text(r"\(Pdb\) ")
    proc.write("\x03")
    # pdb may take the interrupt itself (and prompt again); a second Ctrl-C after "c" must
    # then stop everything. Either way the monitor ends and the terminal is usable.
    deadline = time.monotonic() + 10
    while proc.returncode is None and time.monotonic() < deadline:
        try:
            proc.wait_for_text(r"\(Pdb\) ", timeout=0.5)
        except AssertionError:
            continue
        proc.write("c\r")
        proc.wait_for(r"^AFTER BREAKPOINT")
        proc.write("\x03")
    assert proc.wait_exit(10) in CLEAN_STOP
    gone([worker])
    _terminal_sane(proc)


# --------------------------------------------------------------------------- bursts, monitors


def _write_burst_package(project: Path, count: int, value: int) -> None:
    pkg = project / "burstpkg"
    pkg.mkdir(exist_ok=True)
    names = [f"m{i:03d}" for i in range(count)]
    (pkg / "__init__.py").write_text(
        f"from . import {', '.join(names)}\n\nTOKEN = {names[0]}.X\nCOUNT = {count}\n"
    )
    for name in names:
        (pkg / f"{name}.py").write_text(f"X = {value}\n")


def test_burst_of_200_files_restarts_once(project: Path, devreload_run: Spawn) -> None:
    _write_burst_package(project, 200, 0)
    proc = devreload_run("app_burst.py", apps=["app_burst.py", "helper.py"])
    first = proc.wait_ready()
    assert "burst=0 modules=200" in first.rest
    mark = proc.mark()
    # A `git checkout`: every module unlinked and written anew.
    for i in range(200):
        path = project / "burstpkg" / f"m{i:03d}.py"
        path.unlink()
        path.write_text("X = 1\n")
    second = proc.wait_ready()
    assert "burst=1" in second.rest
    # The next real change gives the next restart: the burst gave exactly one.
    restart_with(proc, project / "helper.py", "two")
    assert len(proc.readies()) == 3
    burst, sentinel = reload_lines(proc, mark, 2)
    # The line counts the other files. Not always all 199: a module the old worker had not
    # reported yet (it reports every quarter second) when it was stopped is not counted,
    # though the new worker imports its new version all the same.
    more = re.search(r"burstpkg/m\d{3}\.py (?:changed )?\(\+(\d+) more\)", burst)
    assert more, burst
    assert 100 <= int(more[1]) <= 199, burst
    assert "helper.py" in sentinel


def test_polling_monitor_alone(project: Path, devreload_run: Spawn) -> None:
    proc = devreload_run("-v", "app_basic.py", apps=BASIC, env={"DEVRELOAD_MONITOR": "polling"})
    proc.wait_ready()
    assert proc.count(r"(?i)using.*polling") == 1
    assert proc.count(r"(?i)using.*watchdog") == 0
    restart_with(proc, project / "helper.py", "two-polled")
    restart_with(proc, project / "helper.py", "three", "rename")


def test_custom_monitor_factory(project: Path, devreload_run: Spawn, pyenv: dict[str, str]) -> None:
    env = {"DEVRELOAD_MONITOR": "custom_monitor.factory", **pyenv}
    proc = devreload_run("app_basic.py", apps=[*BASIC, "custom_monitor.py"], env=env)
    proc.wait_for(r"^CUSTOM MONITOR created")
    proc.wait_ready()
    restart_with(proc, project / "helper.py", "two")
    watched = (project / "custom-monitor.log").read_text().split()
    assert str(project / "helper.py") in watched


# --------------------------------------------------------------------------- command line


def test_run_module_with_args(project: Path, devreload_run: Spawn) -> None:
    proc = devreload_run("-m", "pkgapp.main", "a", "--flag", apps=["pkgapp"])
    first = proc.wait_ready()
    assert (first.token, first.rest.strip()) == ("pkg-one", "argv=['a', '--flag']")
    save_like_editor(project / "pkgapp" / "helper.py", token_src("pkg-two"))
    second = proc.wait_ready()
    assert (second.token, second.rest.strip()) == ("pkg-two", "argv=['a', '--flag']")
    assert second.pid != first.pid


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--bogus", "app.py"],
        ["run"],
        ["run", "--reload-interval", "soon", "app.py"],
        ["--no-such-option"],
    ],
    ids=["unknown-option", "no-target", "bad-number", "top-level"],
)
def test_bad_cli_option_exits_2(project: Path, spawn: Spawn, args: list[str]) -> None:
    proc = spawn([sys.executable, "-m", "devreload", *args])
    assert proc.wait_exit(10) == 2
    out = proc.output
    assert "Traceback" not in out
    assert "usage:" in out
    errors = [line for line in proc.lines if "error" in line.lower()]
    assert len(errors) == 1, out


def test_an_exit_75_loop_backs_off_and_recovers_on_a_change(
    project: Path, devreload_run: Spawn
) -> None:
    (project / "helper.py").write_text(token_src("loop"))
    proc = devreload_run("app_loop75.py", apps=["app_loop75.py"])
    for delay in ("0.1", "0.2", "0.4"):
        proc.wait_for(rf"backing off {delay} s")
    save_like_editor(project / "helper.py", token_src("fixed"))
    assert proc.wait_ready().token == "fixed"


@needs_fork
def test_sighup_also_renews_the_template(project: Path, devreload_run: Spawn) -> None:
    """A file change forks from the warm template; a restart asked for by hand starts a
    fresh one, so that upgraded libraries are imported anew."""
    proc = devreload_run("-v", "app_basic.py", apps=BASIC)
    proc.wait_ready()
    restart_with(proc, project / "helper.py", "two")
    assert proc.count(r"worker template \d+ started") == 1
    proc.signal(signal.SIGHUP)
    proc.wait_ready()
    wait_until(lambda: proc.count(r"worker template \d+ started") == 2)


def test_a_reload_strategy_subclass_brings_its_own_trigger(project: Path, spawn: Spawn) -> None:
    proc = spawn([sys.executable, "app_strategy.py"], apps=["app_strategy.py"])
    first = proc.wait_ready()
    write_atomic(project / "go", "")
    second = proc.wait_ready()
    assert second.pid != first.pid
    proc.wait_for(r"go appeared; restarted in \d+ ms", start=0)
    gone([first.pid])


@pytest.mark.parametrize("form", [["--monitor", "polling"], ["--monitor=polling"]])
def test_every_value_option_of_run_takes_its_value_either_way(
    project: Path, devreload_run: Spawn, form: list[str]
) -> None:
    """``--monitor NAME`` and ``--monitor=NAME`` alike: the program starts after the
    option's value, not at it."""
    proc = devreload_run("-v", *form, "app_basic.py", apps=BASIC)
    assert proc.wait_ready().token == "one"
    proc.wait_for(r"using PollingFileMonitor", start=0)
    restart_with(proc, project / "helper.py", "two")
