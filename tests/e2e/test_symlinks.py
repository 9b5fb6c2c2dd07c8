"""A module imported through a symlink: an edit of the file it links to restarts the app
under every monitor (the edit happens in the target's folder, where no event about the
link is seen), and the restart names the module as the app imported it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import MONITORS, Proc, copy_app, save_like_editor

Start = Callable[..., Proc]


@pytest.mark.parametrize(("monitor", "monitor_env"), [(m, m) for m in MONITORS],
                         indirect=["monitor_env"], ids=MONITORS)
def test_editing_a_symlinked_modules_target_restarts(
    project: Path, devreload_run: Start, monitor: str, monitor_env: dict[str, str]
) -> None:
    (project / "shared").mkdir()
    copy_app(["app_basic.py", "ignored_mod.py"], project)
    copy_app(["helper.py"], project / "shared")
    (project / "helper.py").symlink_to(project / "shared" / "helper.py")
    proc = devreload_run("-v", "--monitor", monitor, "app_basic.py", env=monitor_env)
    assert proc.wait_ready().token == "one"
    proc.wait_for(r"^devreload: watching \d+ paths?$")  # the modules are watched from here on
    target = project / "shared" / "helper.py"
    save_like_editor(target, target.read_text().replace('"one"', '"two"'), mode="inplace")
    assert proc.wait_ready().token == "two"
    # Named once, by the name the app imported it by.
    proc.wait_for(r"^devreload: helper\.py changed; restarted in", start=0)


@pytest.mark.parametrize(("monitor", "monitor_env"), [(m, m) for m in MONITORS],
                         indirect=["monitor_env"], ids=MONITORS)
def test_a_module_replaced_by_a_symlink_restarts_and_its_target_is_followed(
    project: Path, devreload_run: Start, monitor: str, monitor_env: dict[str, str]
) -> None:
    """``ln -sf shared/helper.py helper.py``: the module's name now leads to other code,
    and that code is watched from then on."""
    (project / "shared").mkdir()
    copy_app(["app_basic.py", "helper.py", "ignored_mod.py"], project)
    target = project / "shared" / "helper.py"
    target.write_text('TOKEN = "shared"\n')
    proc = devreload_run("-v", "--monitor", monitor, "app_basic.py", env=monitor_env)
    assert proc.wait_ready().token == "one"
    proc.wait_for(r"^devreload: watching \d+ paths?$")
    module = project / "helper.py"
    module.unlink()
    module.symlink_to(target)
    assert proc.wait_ready().token == "shared"
    save_like_editor(target, 'TOKEN = "edited"\n', mode="inplace")
    assert proc.wait_ready().token == "edited"
