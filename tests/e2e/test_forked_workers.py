"""A worker forked from the template behaves exactly like a fresh one.

Stand-ins installed as libraries (in a user site-packages) reproduce each way a library's
import-time state can depend on what the app did first; each test compares what the app
sees after reloads with what it saw at its first start, with the template preloading and
without.
"""

from __future__ import annotations

import shutil
import sysconfig
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import APPS, Proc, needs_fork, save_like_editor

EXPECTED = {
    "env": "value=set-by-app",
    "settings": "value=https://app.example",
    "registry": "value=True:blog,shop",
}
#: The library module each case must keep out of the template, and why.
REFUSED = {
    "env": ("standin_env", r"imported after the app's code ran \(preload_env_app\.py:10\)"),
    "settings": ("standin_settings.views", r"imported inside a call to settings_case\(\)"),
    "registry": ("standin_registry.models", r"imported inside a call to registry_case\(\)"),
}

Start = Callable[..., Proc]


def install_standins(project: Path) -> dict[str, str]:
    """Put the stand-ins in a user site-packages: devreload counts it as installed code."""
    base = project.parent / "userbase"
    site_packages = Path(sysconfig.get_path("purelib", "posix_user", {"userbase": str(base)}))
    shutil.copytree(APPS / "standins", site_packages)
    return {"PYTHONUSERBASE": str(base), "PYTHONPATH": str(site_packages)}


def reload(proc: Proc, project: Path, token: str, script: str = "preload_app.py") -> None:
    app = project / script
    text = app.read_text()
    save_like_editor(app, text.replace(text.split('TOKEN = "')[1].split('"')[0], token, 1))


@pytest.mark.parametrize("preload", [True, False], ids=["preload", "no-preload"])
@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_a_reloaded_worker_sees_what_a_fresh_one_saw(
    case: str, preload: bool, project: Path, devreload_run: Start
) -> None:
    env = install_standins(project)
    options = ["-v"] if preload else ["-v", "--no-preload"]
    script = "preload_env_app.py" if case == "env" else "preload_app.py"
    proc = devreload_run(*options, script, case, apps=[script], env=env)
    first = proc.wait_ready()
    assert first.rest.split() == ["pure", EXPECTED[case]]
    # The first worker too came from a template, the one started with the command.
    proc.wait_for(r"worker template \d+ started ahead, with the monitor", start=0)
    for token in ("two", "three", "four"):
        reload(proc, project, token, script)
        again = proc.wait_ready()
        assert again.token == token and again.pid != first.pid
        assert again.rest == first.rest, f"a reloaded worker differs:\n{proc.output}"
    module, reason = REFUSED[case]
    if preload:
        proc.wait_for(rf"not preloading .*\b{module}\b.*: {reason}", start=0)
        assert not proc.count(r"not preloading .*\bstandin_pure\b"), "pure libraries are preloaded"
        assert proc.count(r"preloading \d+ more library modules?")
    else:
        assert not proc.count(r"preloading \d+ more library modules?")


@needs_fork
def test_a_library_that_breaks_when_forked_falls_back_to_fresh_workers_once(
    project: Path, devreload_run: Start
) -> None:
    env = install_standins(project)
    proc = devreload_run("-v", "preload_app.py", "pid", apps=["preload_app.py"], env=env)
    first = proc.wait_ready()
    assert first.rest.split() == ["pure", "value=same-process"]
    # The template has the app's libraries once the worker has reported them.
    proc.wait_for(r"preloading \d+ more library modules?", start=first.line_no)
    for token in ("two", "three", "four"):
        reload(proc, project, token)
        assert proc.wait_ready().rest == first.rest
    assert proc.count(r"a worker forked from the template failed where a fresh one starts") == 1
    assert not proc.count(r"worker exited with code"), "the failed fork is not reported as a crash"


def test_excluded_libraries_are_not_preloaded(project: Path, devreload_run: Start) -> None:
    env = install_standins(project)
    proc = devreload_run(
        "-v", "--preload-exclude", "standin_pid", "preload_app.py", "pid",
        apps=["preload_app.py"], env=env,
    )
    first = proc.wait_ready()
    for token in ("two", "three"):
        reload(proc, project, token)
        assert proc.wait_ready().rest == first.rest
    assert not proc.count(r"failed where a fresh one starts"), "never forked with it imported"
