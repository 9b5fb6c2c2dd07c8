"""Files the app reads (not imports) are watched; files it writes are not."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from helpers import Proc, save_like_editor, wait_until

Start = Callable[..., Proc]


def test_a_file_the_app_read_restarts_it_and_one_it_writes_does_not(
    project: Path, devreload_run: Start
) -> None:
    (project / "greeting.txt").write_text("hello\n")
    proc = devreload_run("app_reads.py", apps=["app_reads.py"])
    first = proc.wait_ready()
    assert "greeting=hello" in first.rest
    state = project / "state.txt"
    wait_until(lambda: state.read_text().count(f"tick {first.pid}") >= 20)
    assert len(proc.readies()) == 1, "writing its own state file must not restart the app"

    save_like_editor(project / "greeting.txt", "howdy\n")
    second = proc.wait_ready()
    assert "greeting=howdy" in second.rest and second.pid != first.pid
    proc.wait_for(r"greeting\.txt changed; restarted in \d+ ms", start=0)
    wait_until(lambda: state.read_text().count(f"tick {second.pid}") >= 20)
    assert len(proc.readies()) == 2
